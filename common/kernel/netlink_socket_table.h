// Dumps the kernel's TCP socket table over netlink sock_diag.
//
// One dump per collection: the legacy TCPDIAG_GETSOCK request makes the kernel walk its
// socket hash once for IPv4 and IPv6 together, which is measurably cheaper than one
// SOCK_DIAG_BY_FAMILY dump per family. Kernels that refuse the legacy request get the two
// per-family dumps instead. No extensions are requested: the base message carries all we need,
// and asking for tcp_info nearly doubles the kernel's work.
#ifndef TCPSTATES_COMMON_KERNEL_NETLINK_SOCKET_TABLE_H_
#define TCPSTATES_COMMON_KERNEL_NETLINK_SOCKET_TABLE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/socket_record.h"

namespace tcpstates {

// Bit (1 << state) for each state wanted. kShownStateMask asks for exactly the sockets
// /proc/net/tcp{,6} and `ss -tan` show: the TCP states 1..11 and request sockets (the
// kernel's TCP_NEW_SYN_RECV, 12, which it reports as SYN_RECV). Never more: a set bit can
// change what the kernel walks, not only what it reports - bit 13 (TCP_BOUND_INACTIVE, Linux
// 6.8) makes it also walk the bind tables and report sockets that are only bound, as CLOSE.
inline constexpr uint32_t kNewSynRecvState = 12;
inline constexpr uint32_t kShownStateMask = ((1u << (kNewSynRecvState + 1)) - 1) & ~1u;

// Where a walk of received bytes stands.
enum class DumpProgress { kMore, kDone };

// Decodes one receive buffer of netlink messages belonging to the dump with sequence number
// `seq`: each socket message goes to `visitor`, messages too short to hold a socket are
// counted malformed, messages of other sequence numbers (left over from an earlier, abandoned
// dump) are skipped. kDone once NLMSG_DONE is seen; an NLMSG_ERROR becomes its errno's status.
// Safe on arbitrary bytes.
absl::StatusOr<DumpProgress> WalkDiagMessages(absl::Span<const uint8_t> data, uint32_t seq,
                                              SocketVisitor visitor, WalkStats* stats);

// What one dump asks for.
struct DumpRequest {
  uint32_t states = kShownStateMask;  // bits outside kShownStateMask are never sent
  // tcp_info for every socket reported (SocketRecord::last_received_ms): roughly doubles
  // the kernel's work per message, so only for small dumps (one state, a filter).
  bool tcp_info = false;
  // inet_diag bytecode the kernel runs on each socket before building its message (see
  // PortFilter); empty: every socket in `states`.
  std::vector<uint8_t> filter = {};
};

// Bytecode that matches sockets whose local port is one of `local` or whose remote port is
// one of `remote` - what `ss '( sport = :22 or dport = :5432 )'` sends. Only matching
// sockets get a message; the kernel still walks the table. Empty when both are empty.
std::vector<uint8_t> PortFilter(absl::Span<const uint16_t> local,
                                absl::Span<const uint16_t> remote);

// The bytes of one dump request: the legacy TCPDIAG_GETSOCK (both families, `family`
// ignored) or SOCK_DIAG_BY_FAMILY for `family`. Exposed so tests can check exactly what is
// asked of the kernel.
std::vector<uint8_t> BuildDumpRequest(bool legacy, uint8_t family, const DumpRequest& dump,
                                      uint32_t seq);

class NetlinkSocketTable {
 public:
  // Opens a NETLINK_SOCK_DIAG socket in the caller's network namespace. Fails with the
  // errno's status (e.g. PermissionDenied in a locked-down container, or an unsupported
  // protocol where the kernel has no sock_diag).
  static absl::StatusOr<NetlinkSocketTable> Open();

  NetlinkSocketTable(NetlinkSocketTable&& other) noexcept;
  NetlinkSocketTable& operator=(NetlinkSocketTable&& other) noexcept;
  ~NetlinkSocketTable();

  // Visits every TCP socket (IPv4 and IPv6) the request matches.
  absl::Status Dump(const DumpRequest& request, SocketVisitor visitor, WalkStats* stats);
  absl::Status Dump(uint32_t state_mask, SocketVisitor visitor, WalkStats* stats) {
    return Dump(DumpRequest{.states = state_mask}, visitor, stats);
  }

  // True once the kernel refused the legacy single dump and per-family dumps are in use.
  bool using_per_family_dumps() const { return per_family_; }

 private:
  explicit NetlinkSocketTable(int fd);

  // Sends one dump request and receives its reply to the end.
  absl::Status DumpOnce(bool legacy, uint8_t family, const DumpRequest& request,
                        SocketVisitor visitor, WalkStats* stats);
  // After a failed receive: reads and drops what is left of dump `seq`.
  void DiscardRestOfDump(uint32_t seq);

  int fd_ = -1;
  uint32_t seq_ = 0;
  bool per_family_ = false;
  // One reused receive buffer. The kernel never builds a dump message batch larger than
  // 32 KiB, so this size never truncates.
  static constexpr size_t kReceiveBufferSize = 32768;
  std::unique_ptr<uint8_t[]> buffer_;
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_KERNEL_NETLINK_SOCKET_TABLE_H_
