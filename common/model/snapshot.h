// A snapshot: how many TCP sockets a network namespace holds in each state, per family,
// and how the numbers were obtained. This is the value every adapter renders.
#ifndef TCPSTATES_COMMON_MODEL_SNAPSHOT_H_
#define TCPSTATES_COMMON_MODEL_SNAPSHOT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/model/socket_record.h"
#include "common/model/tcp_state.h"

namespace tcpstates {

// Socket counts indexed by state.
class StateCounts {
 public:
  uint64_t operator[](TcpState state) const { return counts_[Index(state)]; }
  uint64_t& operator[](TcpState state) { return counts_[Index(state)]; }

  // Sockets in any state: what tcp_connections reports.
  uint64_t Total() const;

  StateCounts& operator+=(const StateCounts& other);
  friend bool operator==(const StateCounts&, const StateCounts&) = default;

 private:
  static size_t Index(TcpState state) { return static_cast<size_t>(state) - kFirstState; }
  std::array<uint64_t, kStateCount> counts_{};
};

// Which reader produced the numbers.
enum class SourceKind : uint8_t { kAuto, kNetlink, kProc };

// How ESTABLISHED and TIME_WAIT, the states that dominate busy servers, were counted.
//   kFullDump        every socket was dumped: exact per family.
//   kKernelCounters  their totals come from the kernel's O(1) counters (see
//                    common/collection/collection_request.h): no per-family split of them.
enum class Counting : uint8_t { kFullDump, kKernelCounters };

// "auto", "netlink", "proc".
absl::string_view SourceKindName(SourceKind kind);

// Per-port counts, as collectd's tcpconns keeps them: the sockets whose local port (or remote
// port) is a configured one, every state.
enum class PortDirection : uint8_t { kLocal, kRemote };
absl::string_view PortDirectionName(PortDirection direction);  // "local" | "remote"

struct PortCounts {
  uint16_t port = 0;
  PortDirection direction = PortDirection::kLocal;
  StateCounts counts;
  friend bool operator==(const PortCounts&, const PortCounts&) = default;
};

// The sums of Recv-Q and Send-Q over a family's sockets (listeners left out: their queues
// count connections, reported per listening port instead), as node_exporter's tcpstat and
// Vector's host_metrics report them.
struct QueuedBytes {
  uint64_t receive = 0;
  uint64_t send = 0;
  friend bool operator==(const QueuedBytes&, const QueuedBytes&) = default;
};

struct Snapshot {
  StateCounts ipv4;
  StateCounts ipv6;
  // Sockets whose state number is outside 1..11: counted here, in no state and no total, so
  // a future kernel state shows up instead of vanishing.
  uint64_t unknown_state = 0;
  // Lines or messages that could not be decoded.
  uint64_t malformed = 0;

  // Counts known only as totals. In counter-assisted collections (Counting::kKernelCounters)
  // ESTABLISHED and TIME_WAIT come from kernel counters that do not split by family: they
  // are here, and ipv4/ipv6 hold 0 for them. All zero in a full dump.
  StateCounts unsplit;
  Counting counting = Counting::kFullDump;

  // The configured ports, local ones first, each in the order configured (empty without).
  std::vector<PortCounts> ports;
  // Per family (indexed by Family), when asked for.
  std::optional<std::array<QueuedBytes, 2>> queued;

  SourceKind source = SourceKind::kNetlink;  // never kAuto: the reader actually used
  std::string source_detail;                 // how, and why this reader (for humans and logs)
  absl::Time taken_at;                       // when the collection started
  absl::Duration elapsed;                    // how long it took

  StateCounts All() const;
  // Both families' queued bytes (zero when not asked for).
  QueuedBytes AllQueued() const;
  const StateCounts& ForFamily(Family family) const {
    return family == Family::kIpv4 ? ipv4 : ipv6;
  }

  // The headline metrics (totals include `unsplit`).
  uint64_t connections() const { return ipv4.Total() + ipv6.Total() + unsplit.Total(); }
  uint64_t Count(TcpState state) const { return ipv4[state] + ipv6[state] + unsplit[state]; }
};

// Adds what `from` counted (states, per-port counts, queued bytes) to *into: how namespaces
// beyond a cap are summed. The ports must be the same configured ones (or *into's empty).
void AddCounts(const Snapshot& from, Snapshot* into);

// Adds one socket to a snapshot's counts (the counting visitor).
void CountSocket(const SocketRecord& record, Snapshot* snapshot);

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_MODEL_SNAPSHOT_H_
