// Dumps the kernel's TCP socket table over netlink sock_diag.
//
// One dump per collection: the legacy TCPDIAG_GETSOCK request makes the kernel walk its
// socket hash once for IPv4 and IPv6 together, which is measurably cheaper than one
// SOCK_DIAG_BY_FAMILY dump per family. Kernels that refuse the legacy request get the two
// per-family dumps instead. No extensions are requested: the base message carries all we need,
// and asking for tcp_info nearly doubles the kernel's work.
#ifndef TCPSTATES_COMMON_NETLINK_SOCKET_TABLE_H_
#define TCPSTATES_COMMON_NETLINK_SOCKET_TABLE_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/socket_record.h"

namespace tcpstates {

// Bit (1 << state) for each state wanted; kAllStateMask asks for every socket.
inline constexpr uint32_t kAllStateMask = 0xffffffffu;

// Where a walk of received bytes stands.
enum class DumpProgress { kMore, kDone };

// Decodes one receive buffer of netlink messages belonging to the dump with sequence number
// `seq`: each socket message goes to `visitor`, messages too short to hold a socket are
// counted malformed, messages of other sequence numbers (left over from an earlier, abandoned
// dump) are skipped. kDone once NLMSG_DONE is seen; an NLMSG_ERROR becomes its errno's status.
// Safe on arbitrary bytes.
absl::StatusOr<DumpProgress> WalkDiagMessages(absl::Span<const uint8_t> data, uint32_t seq,
                                              SocketVisitor visitor, WalkStats* stats);

class NetlinkSocketTable {
 public:
  // Opens a NETLINK_SOCK_DIAG socket in the caller's network namespace. Fails with the
  // errno's status (e.g. PermissionDenied in a locked-down container, or an unsupported
  // protocol where the kernel has no sock_diag).
  static absl::StatusOr<NetlinkSocketTable> Open();

  NetlinkSocketTable(NetlinkSocketTable&& other) noexcept;
  NetlinkSocketTable& operator=(NetlinkSocketTable&& other) noexcept;
  ~NetlinkSocketTable();

  // Visits every TCP socket (IPv4 and IPv6) whose state bit is set in `state_mask`.
  absl::Status Dump(uint32_t state_mask, SocketVisitor visitor, WalkStats* stats);

  // True once the kernel refused the legacy single dump and per-family dumps are in use.
  bool using_per_family_dumps() const { return per_family_; }

 private:
  explicit NetlinkSocketTable(int fd);

  // Sends one dump request and receives its reply to the end.
  absl::Status DumpOnce(bool legacy, uint8_t family, uint32_t state_mask, SocketVisitor visitor,
                        WalkStats* stats);

  int fd_ = -1;
  uint32_t seq_ = 0;
  bool per_family_ = false;
  // One reused receive buffer. The kernel never builds a dump message batch larger than
  // 32 KiB, so this size never truncates.
  static constexpr size_t kReceiveBufferSize = 32768;
  std::unique_ptr<uint8_t[]> buffer_;
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_NETLINK_SOCKET_TABLE_H_
