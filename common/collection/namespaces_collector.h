// Collections of every network namespace of the host from one agent (the all-namespaces
// mode): per container, pod and `ip netns`, the same counts and diagnosis a Collector takes
// of one namespace.
//
// Each collection finds the namespaces again (network_namespaces.h) and keeps one Collector
// per live namespace between collections - its netlink socket created inside the namespace,
// its counters, its listening ports and owner search of its own. A namespace that appeared
// gets one; one that vanished (no process in it, no /run/netns entry) loses its Collector,
// whose socket would otherwise keep the dead namespace alive. A namespace that vanishes
// during a collection is dropped from it quietly.
//
// Bounded: at most `max_namespaces` get collections of their own. Those reported at the
// previous collection keep their place while they live; new ones fill what is left, host
// first, then by name. The counts of the rest are summed (`other`), collected through
// Collectors made for that collection only, so memory and open sockets stay bounded too.
#ifndef TCPSTATES_COMMON_COLLECTION_NAMESPACES_COLLECTOR_H_
#define TCPSTATES_COMMON_COLLECTION_NAMESPACES_COLLECTOR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/collection/collector.h"
#include "common/model/hash_tables.h"
#include "common/namespaces/network_namespaces.h"

namespace tcpstates {

struct NamespaceCollection {
  NetworkNamespace ns;
  // NotFound/PermissionDenied/...: this namespace could not be read this time (the reason is
  // in the status; its counts are in no total).
  absl::StatusOr<Collection> collection;
};

struct NamespacesCollection {
  std::vector<NamespaceCollection> namespaces;  // host first, then by name
  Snapshot other;                               // the counts of namespaces beyond the cap, summed
  size_t other_namespaces = 0;                  // how many that is (0: `other` is empty)
  size_t unreadable_namespaces = 0;  // of those beyond the cap, how many could not be read
  int processes_unidentified = 0;    // see NamespaceScan
  absl::Time taken_at;
};

class NamespacesCollector {
 public:
  // `request` is what each namespace gets (its target is set per namespace). InvalidArgument
  // as ValidateRequest.
  static absl::StatusOr<NamespacesCollector> Create(const CollectionRequest& request,
                                                    size_t max_namespaces,
                                                    std::string run_netns_dir = "/run/netns");

  absl::StatusOr<NamespacesCollection> Collect();

  // Namespaces that appeared and vanished at the last Collect(), for the log.
  const std::vector<std::string>& appeared() const { return appeared_; }
  const std::vector<std::string>& vanished() const { return vanished_; }

 private:
  NamespacesCollector(const CollectionRequest& request, size_t max_namespaces,
                      std::string run_netns_dir)
      : request_(request),
        max_namespaces_(max_namespaces),
        run_netns_dir_(std::move(run_netns_dir)) {}

  // The request for one namespace: ours untouched for our own, else targeted.
  CollectionRequest RequestFor(const NetworkNamespace& ns) const;
  // Which found namespaces get collections of their own (indices into `found`).
  std::vector<size_t> Chosen(const std::vector<NetworkNamespace>& found) const;
  void CollectOthers(const std::vector<NetworkNamespace>& found, const std::vector<size_t>& chosen,
                     NamespacesCollection* out);

  CollectionRequest request_;
  size_t max_namespaces_;
  std::string run_netns_dir_;
  uint64_t own_inode_ = 0;
  HashMap<uint64_t, Collector> collectors_;  // by namespace inode
  HashMap<uint64_t, std::string> names_;     // of those, for appeared/vanished
  std::vector<std::string> appeared_;
  std::vector<std::string> vanished_;
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_COLLECTION_NAMESPACES_COLLECTOR_H_
