// TCP socket states as the kernel numbers them (include/net/tcp_states.h), and the
// address families the counts are split by. Everything that names a state for humans or
// for metrics gets the name from here, so every adapter spells them the same way.
#ifndef TCPSTATES_COMMON_MODEL_TCP_STATE_H_
#define TCPSTATES_COMMON_MODEL_TCP_STATE_H_

#include <array>
#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace tcpstates {

// The kernel's numbering, which both sock_diag and /proc/net/tcp report. Request sockets
// (TCP_NEW_SYN_RECV inside the kernel) are reported by both as kSynRecv.
enum class TcpState : uint8_t {
  kEstablished = 1,
  kSynSent = 2,
  kSynRecv = 3,
  kFinWait1 = 4,
  kFinWait2 = 5,
  kTimeWait = 6,
  kClose = 7,
  kCloseWait = 8,
  kLastAck = 9,
  kListen = 10,
  kClosing = 11,
};

inline constexpr int kFirstState = 1;
inline constexpr int kLastState = 11;
inline constexpr int kStateCount = kLastState - kFirstState + 1;

// All states in kernel order, for loops that must visit every state.
inline constexpr std::array<TcpState, kStateCount> kAllStates = {
    TcpState::kEstablished, TcpState::kSynSent,  TcpState::kSynRecv, TcpState::kFinWait1,
    TcpState::kFinWait2,    TcpState::kTimeWait, TcpState::kClose,   TcpState::kCloseWait,
    TcpState::kLastAck,     TcpState::kListen,   TcpState::kClosing,
};

// Maps a kernel state number to a state; nullopt for numbers no TCP socket reports.
std::optional<TcpState> StateFromKernel(unsigned number);

// Lower-case metric name: "established", "time_wait", "syn_recv", ... (the names the
// collectd type instances and line-protocol fields are built from).
absl::string_view MetricName(TcpState state);

// The kernel's upper-case name as `ss` and netstat print it: "ESTABLISHED", "TIME-WAIT" is
// ss's spelling, we use the kernel's: "TIME_WAIT", "CLOSE_WAIT", ...
absl::string_view KernelName(TcpState state);

// Parses either spelling above (case-insensitive, '-' accepted for '_').
std::optional<TcpState> ParseState(absl::string_view name);

enum class Family : uint8_t { kIpv4 = 0, kIpv6 = 1 };
inline constexpr std::array<Family, 2> kAllFamilies = {Family::kIpv4, Family::kIpv6};

// "ipv4" / "ipv6".
absl::string_view FamilyName(Family family);

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_MODEL_TCP_STATE_H_
