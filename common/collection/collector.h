// Collector: takes snapshots of the caller's network namespace from the best available
// source. Adapters create one at start-up and call Collect() once per interval; it keeps the
// netlink socket and the read buffers between calls, so a collection allocates nothing per
// socket.
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
#include "absl/strings/string_view.h"
#include "common/kernel/counter_probe.h"
#include "common/kernel/netlink_socket_table.h"
#include "common/model/snapshot.h"

namespace tcpstates {

// How ESTABLISHED and TIME_WAIT, the states that dominate busy servers, are counted.
//   kFullDump        every socket is dumped: exact per family, every visitor sees every socket.
//   kKernelCounters  the dump skips ESTABLISHED and TIME_WAIT (the kernel still walks them
//                    but builds no message for them) and their totals are derived from
//                    /proc/net/snmp CurrEstab and /proc/net/sockstat tw, minus what those
//                    include on this kernel (probed: counter_probe.h). Gives up: the
//                    per-family split of those two states (Snapshot::unsplit), and visitors
//                    never see those sockets. Create() keeps it only where it is exact: it
//                    needs netlink, readable counters, a conclusive probe, and a start-up
//                    self-check against a full dump (exact where the counters did not move
//                    during it, within their move otherwise); else it falls back to
//                    kFullDump and says why in source_detail.
enum class Counting : uint8_t { kFullDump, kKernelCounters };

struct CollectorOptions {
  SourceKind source = SourceKind::kAuto;
  Counting counting = Counting::kFullDump;
  // Where tcp and tcp6 are read from by the /proc source, and snmp and sockstat by counter
  // counting. Tests point it at captured tables.
  std::string proc_net_dir = "/proc/net";
  // What the kernel counters include; unset: probed at Create() (see counter_probe.h).
  std::optional<CounterIdentities> counter_identities = std::nullopt;
};

// Parses "auto" | "netlink" | "proc"; InvalidArgument names the accepted values.
absl::StatusOr<SourceKind> ParseSourceKind(absl::string_view text);

class Collector {
 public:
  // Fails only when the requested source cannot be opened (netlink explicitly asked for and
  // refused). kAuto always succeeds; a missing netlink shows in source_detail.
  static absl::StatusOr<Collector> Create(const CollectorOptions& options);

  Collector(Collector&&) noexcept;
  Collector& operator=(Collector&&) noexcept;
  ~Collector();

  // Counts every TCP socket. `also` (optional) sees each socket as it is counted, for
  // features that need more than counts (on failure it may have seen part of a collection:
  // see Diagnoser::Discard). Fails only when nothing could be read; with kAuto a netlink
  // dump the kernel refuses switches to /proc for this and every later collection.
  absl::StatusOr<Snapshot> Collect(std::optional<SocketVisitor> also = std::nullopt);

  // The source the next Collect() will use, and why.
  SourceKind source() const { return source_; }
  Counting counting() const { return counting_; }
  const std::string& source_detail() const { return source_detail_; }

 private:
  Collector(const CollectorOptions& options);

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
  absl::Status CollectFromProc(Snapshot* snapshot, std::optional<SocketVisitor> also);

  CollectorOptions options_;
  CounterIdentities identities_;
  SourceKind source_;
  Counting counting_ = Counting::kFullDump;
  std::string source_detail_;
  std::optional<NetlinkSocketTable> netlink_;
  static constexpr size_t kProcBufferSize = 64 * 1024;
  std::unique_ptr<char[]> proc_buffer_;
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_COLLECTION_COLLECTOR_H_
