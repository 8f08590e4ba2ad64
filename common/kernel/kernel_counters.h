// Exact O(1) per-namespace counters the kernel keeps, which make the expensive part of a
// dump unnecessary on busy servers:
//   /proc/net/snmp     Tcp: CurrEstab  = ESTABLISHED (+ CLOSE_WAIT on most kernels)
//   /proc/net/sockstat TCP: ... tw N   = time-wait sockets (TIME_WAIT, and orphaned FIN_WAIT2)
// What each includes on the running kernel is probed, not assumed: counter_probe.h.
#ifndef TCPSTATES_COMMON_KERNEL_KERNEL_COUNTERS_H_
#define TCPSTATES_COMMON_KERNEL_KERNEL_COUNTERS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/kernel/proc_files.h"

namespace tcpstates {

struct TcpCounters {
  uint64_t curr_estab = 0;
  uint64_t time_wait_buckets = 0;
};

// Parsers over the files' text (exposed for tests); InvalidArgument when the field is absent.
absl::StatusOr<uint64_t> ParseCurrEstab(absl::string_view snmp);
absl::StatusOr<uint64_t> ParseSockstatTimeWait(absl::string_view sockstat);

// Reads both from `proc` (normally /proc).
absl::StatusOr<TcpCounters> ReadTcpCounters(const ProcRoot& proc);

// /proc/net/netstat TcpExt: connections a listener dropped because its accept queue was full
// (ListenOverflows), and every SYN or ACK dropped at a listener (ListenDrops, which includes
// the overflows). Monotonic since the namespace was created.
struct ListenCounters {
  uint64_t overflows = 0;
  uint64_t drops = 0;
};
absl::StatusOr<ListenCounters> ParseListenCounters(absl::string_view netstat);
absl::StatusOr<ListenCounters> ReadListenCounters(const ProcRoot& proc);

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_KERNEL_KERNEL_COUNTERS_H_
