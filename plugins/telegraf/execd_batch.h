// What tcpstates-execd prints for one gather: a snapshot turned into a batch of line-protocol
// lines. A pure function of the snapshot and the options, so it is tested without a process
// and new series are added here without touching the gather loop.
#ifndef TCPSTATES_PLUGINS_TELEGRAF_EXECD_BATCH_H_
#define TCPSTATES_PLUGINS_TELEGRAF_EXECD_BATCH_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/collection/collector.h"

namespace tcpstates::telegraf {

inline constexpr absl::string_view kDefaultMeasurement = "tcpstates";
// Telegraf inputs.netstat's measurement, used by --netstat-compat.
inline constexpr absl::string_view kNetstatMeasurement = "netstat";

// The diagnosis series. Fixed names: the shipped Grafana dashboard and InfluxDB rollups
// query them, so --measurement renames only the counts lines.
inline constexpr absl::string_view kCloseWaitMeasurement = "tcpstates_close_wait";
inline constexpr absl::string_view kCloseWaitSummaryMeasurement = "tcpstates_close_wait_summary";
inline constexpr absl::string_view kListenMeasurement = "tcpstates_listen";
inline constexpr absl::string_view kListenVanishedMeasurement = "tcpstates_listen_vanished";
inline constexpr absl::string_view kListenNewMeasurement = "tcpstates_listen_new";
inline constexpr absl::string_view kListenSummaryMeasurement = "tcpstates_listen_summary";
inline constexpr absl::string_view kPortMeasurement = "tcpstates_port";
inline constexpr absl::string_view kPortPressureMeasurement = "tcpstates_port_pressure";

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
//             tcp_listen=N,tcp_syn_sent=N,...[,rx_queued_bytes=N,tx_queued_bytes=N] <ns>
// every state present, integers with `i` (queued bytes when the snapshot has them). Then
//   tcpstates_port,direction=local|remote,port=P tcp_connections=N,tcp_established=N,...
// per configured port, and for each analysis the collection's diagnosis carries:
//   tcpstates_close_wait,comm=C,unit=U sockets=N,pid=P,processes=N[,age_seconds=S]
//                     per owner (by comm+unit)
//   tcpstates_close_wait_summary attributed=N,other=N,other_owners=N,unattributed=N,
//                     not_accepted=N,processes_unreadable=N,processes_hidden=N,
//                     processes_failed=N,budget_exhausted=0|1,owner_search="...",why="..."
//                     [,age_seconds=S,older_than_60s=N,older_than_1h=N]
//                     (both only when the snapshot has CLOSE_WAIT sockets; the owner lines
//                     plus `other` always make `attributed`; ages where the kernel told them)
//   tcpstates_listen,family=F,port=P sockets=N,queue=N,backlog=N,fill=R   per listening port
//   tcpstates_listen_vanished,family=F,port=P sockets=N   per port gone since the last gather
//   tcpstates_listen_new,family=F,port=P,comm=C,unit=U sockets=N[,pid=P]
//                     per port new since the last gather, per owner found
//   tcpstates_listen_summary ports=N,untracked_sockets=N[,overflows=N,drops=N]
//   tcpstates_port_pressure[,endpoint=E] ports_in_use=N,ratio=R,range_size=N,range_low=N,
//                     range_high=N,tcp_fin_timeout=N,tcp_tw_reuse=N,tcp_max_tw_buckets=N
// Fails only when options.measurement cannot be encoded (InvalidArgument): every other name
// is fixed and hostile values (process names) are always encodable, so checking the options
// once at start-up is enough.
// Tags every line of a batch carries (with --all-namespaces: netns, pod, container).
using BatchTags = std::vector<std::pair<std::string, std::string>>;

absl::StatusOr<std::string> RenderBatch(const Collection& collection, const BatchOptions& options,
                                        const BatchTags& tags = {});

}  // namespace tcpstates::telegraf

#endif  // TCPSTATES_PLUGINS_TELEGRAF_EXECD_BATCH_H_
