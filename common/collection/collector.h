// Collector: takes collections of one network namespace (the caller's) as a request asks:
// the socket counts from the best available source, and the diagnosis riding along with
// the same dump. Adapters create one at start-up and call Collect() once per interval; it
// keeps the netlink socket, the read buffers and the analyses' memory between calls, so a
// collection allocates nothing per socket.
//
// Source selection (SourceKind::kAuto): netlink sock_diag, else /proc/net/tcp{,6} when
// netlink cannot be used (no sock_diag in the kernel, EACCES/EPERM in a locked-down
// container). The choice and its reason travel with every snapshot (source_detail).
#ifndef TCPSTATES_COMMON_COLLECTION_COLLECTOR_H_
#define TCPSTATES_COMMON_COLLECTION_COLLECTOR_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/collection/collection_request.h"
#include "common/collection/socket_tally.h"
#include "common/diagnosis/diagnosis.h"
#include "common/kernel/counter_probe.h"
#include "common/kernel/netlink_socket_table.h"
#include "common/model/snapshot.h"

namespace tcpstates {

// One collection: what every adapter renders.
struct Collection {
  Snapshot snapshot;
  std::optional<Diagnosis> diagnosis;  // when the request asked for any analysis
};

class Collector {
 public:
  // Validates the request (ValidateRequest: InvalidArgument), plans its counting
  // (PlanCounting; counters are kept only where the kernel's counters prove exact, see
  // counting()) and opens its source. Fails otherwise only when the requested source cannot
  // be opened (netlink explicitly asked for and refused); kAuto always succeeds.
  static absl::StatusOr<Collector> Create(const CollectionRequest& request);

  Collector(Collector&&) noexcept;
  Collector& operator=(Collector&&) noexcept;
  ~Collector();

  // Counts every TCP socket and runs the requested analyses over the same dump. Fails only
  // when nothing could be read (the analyses then forget that collection's sockets); with
  // kAuto a netlink dump the kernel refuses switches to /proc for this and every later one.
  absl::StatusOr<Collection> Collect();

  // The source the next Collect() will use, how it counts, and why.
  SourceKind source() const { return source_; }
  Counting counting() const { return counting_; }
  const std::string& source_detail() const { return source_detail_; }
  // What the policy planned before the kernel had its say (counting() may be full where
  // the plan was counters).
  const CountingPlan& plan() const { return plan_; }

 private:
  explicit Collector(const CollectionRequest& request);

  absl::StatusOr<Snapshot> CollectSnapshot(std::optional<SocketVisitor> also);
  // One netlink dump of the states in `state_mask`, counted into *snapshot; also counts the
  // orphaned FIN_WAIT2 sockets kept in time-wait form, which the counter formulas need.
  absl::Status DumpNetlink(uint32_t state_mask, Snapshot* snapshot,
                           std::optional<SocketVisitor> also, uint64_t* orphaned_fin_wait2);
  // Dumps all but ESTABLISHED and TIME_WAIT and derives those from kernel counters.
  absl::Status CollectWithCounters(Snapshot* snapshot, std::optional<SocketVisitor> also);
  // Start-up: probes what the counters include on this kernel, then checks the formulas
  // against a full dump (exactly, when nothing moved meanwhile). Switches to
  // kKernelCounters only when both succeed, and records why in source_detail either way.
  void CheckCountersAgree();
  // One comparison of the counter-derived totals with a full dump (the counters read before
  // and after it).
  struct CounterCheck {
    absl::Status status;
    bool quiet = false;  // neither counter moved during the dump
    bool agreed = false;
    uint64_t churn_difference = 0;
    std::string disagreement;
  };
  CounterCheck CompareCountersWithDump();
  absl::Status CollectFromProc(Snapshot* snapshot, std::optional<SocketVisitor> also);
  // Counters leave ESTABLISHED and TIME_WAIT out of the main dump: the configured ports get
  // a dump of their own, which the kernel filters (only their sockets get a message).
  absl::Status CountPortsFiltered(Snapshot* snapshot);
  // tcp_info of the CLOSE_WAIT sockets only (a dump of that state alone), for their ages.
  absl::Status ObserveCloseWaitAges();

  CollectionRequest request_;
  CountingPlan plan_;
  CounterIdentities identities_;
  std::string probed_where_;  // empty when the request brought its own identities
  SourceKind source_;
  Counting counting_ = Counting::kFullDump;
  std::string source_detail_;
  std::optional<NetlinkSocketTable> netlink_;
  std::optional<Diagnoser> diagnoser_;
  SocketTally tally_;
  static constexpr size_t kProcBufferSize = 64 * 1024;
  std::unique_ptr<char[]> proc_buffer_;
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_COLLECTION_COLLECTOR_H_
