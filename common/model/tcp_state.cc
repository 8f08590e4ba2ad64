#include "common/model/tcp_state.h"

#include "absl/strings/ascii.h"

namespace tcpstates {
namespace {

struct StateNames {
  absl::string_view metric;
  absl::string_view kernel;
};

// Indexed by kernel number - kFirstState.
constexpr std::array<StateNames, kStateCount> kNames = {{
    {"established", "ESTABLISHED"},
    {"syn_sent", "SYN_SENT"},
    {"syn_recv", "SYN_RECV"},
    {"fin_wait1", "FIN_WAIT1"},
    {"fin_wait2", "FIN_WAIT2"},
    {"time_wait", "TIME_WAIT"},
    {"close", "CLOSE"},
    {"close_wait", "CLOSE_WAIT"},
    {"last_ack", "LAST_ACK"},
    {"listen", "LISTEN"},
    {"closing", "CLOSING"},
}};

const StateNames& NamesOf(TcpState state) { return kNames[static_cast<int>(state) - kFirstState]; }

}  // namespace

std::optional<TcpState> StateFromKernel(unsigned number) {
  if (number < kFirstState || number > kLastState) return std::nullopt;
  return static_cast<TcpState>(number);
}

absl::string_view MetricName(TcpState state) { return NamesOf(state).metric; }

absl::string_view KernelName(TcpState state) { return NamesOf(state).kernel; }

std::optional<TcpState> ParseState(absl::string_view name) {
  std::string normalized = absl::AsciiStrToLower(name);
  for (char& c : normalized) {
    if (c == '-') c = '_';
  }
  for (TcpState state : kAllStates) {
    if (MetricName(state) == normalized) return state;
  }
  return std::nullopt;
}

absl::string_view FamilyName(Family family) { return family == Family::kIpv4 ? "ipv4" : "ipv6"; }

}  // namespace tcpstates
