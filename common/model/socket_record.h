// One socket as a socket-table walker sees it. Walkers (netlink, /proc) decode each socket
// into this small value and hand it to a visitor; counting and diagnosis are visitors. The
// record points into nothing, so a visitor may copy it freely.
#ifndef TCPSTATES_COMMON_MODEL_SOCKET_RECORD_H_
#define TCPSTATES_COMMON_MODEL_SOCKET_RECORD_H_

#include <array>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "common/model/tcp_state.h"

namespace tcpstates {

struct SocketRecord {
  Family family = Family::kIpv4;
  // The kernel's state number as reported (1..11 for every socket a healthy kernel
  // reports). Walkers pass numbers they do not know through unchanged; the visitor decides.
  uint8_t state = 0;
  // The kernel's timer code: 3 marks a time-wait socket (including orphaned FIN_WAIT2
  // sockets the kernel keeps in time-wait form), which the counter-assisted mode needs to
  // tell apart from full FIN_WAIT2 sockets.
  uint8_t timer = 0;
  uint16_t local_port = 0;   // host byte order
  uint16_t remote_port = 0;  // host byte order
  // Remote address in network byte order; IPv4 uses the first 4 bytes.
  std::array<uint8_t, 16> remote_address{};
  // Socket inode (0 for TIME_WAIT and request sockets, which own no file).
  uint64_t inode = 0;
  // cgroup v2 id of the owning cgroup, when the source knows it (netlink on kernels >= 5.7
  // for full sockets); 0 otherwise.
  uint64_t cgroup_id = 0;
  // What `ss` shows as Recv-Q and Send-Q: bytes not yet read by the application and not yet
  // acknowledged by the peer - and for a listener, its accept queue's length and its backlog.
  uint32_t receive_queue = 0;
  uint32_t send_queue = 0;
  // Milliseconds since the peer was last heard from (a segment received), when the dump
  // asked for tcp_info; kUnknownAge otherwise.
  static constexpr uint32_t kUnknownAge = UINT32_MAX;
  uint32_t last_received_ms = kUnknownAge;
};

using SocketVisitor = absl::FunctionRef<void(const SocketRecord&)>;

// What a walk saw besides sockets: problems are counted, never silently dropped.
struct WalkStats {
  uint64_t sockets = 0;    // records handed to the visitor
  uint64_t malformed = 0;  // lines or messages that could not be decoded and were skipped
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_MODEL_SOCKET_RECORD_H_
