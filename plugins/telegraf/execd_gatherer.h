// One gather of tcpstates-execd: a collection rendered as a batch of line protocol, and the
// diagnostics an operator should read once rather than every interval (the source and
// counting in use and when they change, malformed input, why CLOSE_WAIT owners are partial,
// listeners beyond the cap).
#ifndef TCPSTATES_PLUGINS_TELEGRAF_EXECD_GATHERER_H_
#define TCPSTATES_PLUGINS_TELEGRAF_EXECD_GATHERER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/collection/collector.h"
#include "common/collection/namespaces_collector.h"
#include "plugins/telegraf/execd_batch.h"

namespace tcpstates::telegraf {

class Gatherer {
 public:
  // One namespace: the caller's.
  Gatherer(Collector collector, BatchOptions options);
  // --all-namespaces: every line tagged with its namespace.
  Gatherer(NamespacesCollector namespaces, BatchOptions options);

  // The batch for one gather; an error when nothing could be read.
  absl::StatusOr<std::string> Gather();

 private:
  absl::StatusOr<std::string> GatherAllNamespaces();
  void ReportNamespaces(const NamespacesCollection& all);
  void ReportCounting();
  void ReportSourceAndProblems(const Snapshot& snapshot);
  void ReportDiagnosisLimits(const Diagnosis& diagnosis);

  std::optional<Collector> collector_;
  std::optional<NamespacesCollector> namespaces_;
  BatchOptions options_;
  absl::flat_hash_set<std::string> reported_unreadable_;
  bool reported_unreadable_other_ = false;
  std::optional<Counting> last_counting_;
  std::string last_source_;
  uint64_t last_malformed_ = 0;
  uint64_t last_unknown_state_ = 0;
  bool reported_partial_owners_ = false;
  uint64_t last_untracked_listeners_ = 0;
};

}  // namespace tcpstates::telegraf

#endif  // TCPSTATES_PLUGINS_TELEGRAF_EXECD_GATHERER_H_
