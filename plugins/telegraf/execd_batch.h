// What tcpstates-execd prints for one gather: a snapshot turned into a batch of line-protocol
// lines. A pure function of the snapshot and the options, so it is tested without a process
// and new series are added here without touching the gather loop.
#ifndef TCPSTATES_PLUGINS_TELEGRAF_EXECD_BATCH_H_
#define TCPSTATES_PLUGINS_TELEGRAF_EXECD_BATCH_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/snapshot.h"

namespace tcpstates::telegraf {

inline constexpr absl::string_view kDefaultMeasurement = "tcpstates";
// Telegraf inputs.netstat's measurement, used by --netstat-compat.
inline constexpr absl::string_view kNetstatMeasurement = "netstat";

struct BatchOptions {
  // Empty: kDefaultMeasurement, or kNetstatMeasurement with netstat_compat.
  std::string measurement;
  // Adds one line per address family, tagged family=ipv4|ipv6, after the all-families line.
  bool by_family = false;
  // Telegraf inputs.netstat's field set: tcp_<state> for every state, no tcp_connections.
  // (netstat's tcp_none and udp_socket are not emitted: netstat filled them from unix and UDP
  // sockets, which tcpstates does not count; see README.md.)
  bool netstat_compat = false;
};

// The lines for one snapshot, each ending in '\n', all stamped with snapshot.taken_at:
//   tcpstates tcp_connections=N,tcp_established=N,tcp_time_wait=N,tcp_close_wait=N,
//             tcp_listen=N,tcp_syn_sent=N,... <ns>
// every state present, integers with `i`. Fails only when options.measurement cannot be
// encoded (InvalidArgument), so checking the options once at start-up is enough.
absl::StatusOr<std::string> RenderBatch(const Snapshot& snapshot, const BatchOptions& options);

}  // namespace tcpstates::telegraf

#endif  // TCPSTATES_PLUGINS_TELEGRAF_EXECD_BATCH_H_
