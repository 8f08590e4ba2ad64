// The hash tables of everything that runs inside collectd: std::unordered_map and
// std::unordered_set with abseil's hash, not absl::flat_hash_map / flat_hash_set.
//
// Why: collectd loads the core into its own process, where a failed allocation is a
// std::bad_alloc that the plugin catches (its callbacks are noexcept guards) so that the read
// fails and the daemon lives on. That needs tables that stay valid when an allocation throws.
// The standard's do (an insert that throws has no effect; a rehash that throws leaves the
// table as it was). abseil's do not, by design: a resize whose allocation throws leaves the new
// capacity with the old slots, and an element constructor that throws leaves a slot marked
// full, so the table corrupts the heap when it is destroyed (abseil issues #388 and #1581;
// tests/faults/throwing_new.cc found it here). A few nanoseconds per lookup are the price.
#ifndef TCPSTATES_COMMON_MODEL_HASH_TABLES_H_
#define TCPSTATES_COMMON_MODEL_HASH_TABLES_H_

#include <unordered_map>
#include <unordered_set>

#include "absl/hash/hash.h"

namespace tcpstates {

template <typename Key, typename Value>
using HashMap = std::unordered_map<Key, Value, absl::Hash<Key>>;

template <typename Key>
using HashSet = std::unordered_set<Key, absl::Hash<Key>>;

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_MODEL_HASH_TABLES_H_
