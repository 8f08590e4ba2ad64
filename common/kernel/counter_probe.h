// What the kernel's O(1) TCP counters include, established by watching them move rather than
// assumed from a kernel version.
//
//   /proc/net/snmp CurrEstab   counts ESTABLISHED, and CLOSE_WAIT too since the kernel change
//                              "tcp: count CLOSE-WAIT sockets for TCP_MIB_CURRESTAB" (mainline
//                              2024; stable backports reached some series, e.g. Debian's
//                              6.1.98, and not others).
//   /proc/net/sockstat tw      counts time-wait sockets: TIME_WAIT, and orphaned FIN_WAIT2
//                              sockets that the kernel keeps in time-wait form.
//
// The probe makes a few dozen loopback connections in the caller's network namespace, moves
// them through the transitions in question and reads the counters around each step:
//   CLOSE_WAIT   peers shut down their side (servers ESTABLISHED -> CLOSE_WAIT), then the
//                servers abort (CLOSE_WAIT -> CLOSE). CurrEstab drops by 2K then 0 where it
//                excludes CLOSE_WAIT, by K then K where it includes it.
//   FIN_WAIT2    clients in FIN_WAIT2 close (-> time-wait form, at once, in close()), then
//                their peers abort, whose RST kills those time-wait sockets. tw rises by K and
//                falls by K where it counts them, and does not move where it does not.
// Each answer needs both of its steps to agree, each within K/4 of the expected move, so
// churn from other processes cannot fake it. Nothing is left behind: every probe socket ends
// aborted (no TIME_WAIT), and the time-wait sockets are killed, or expire within a second.
//
// What the counters include is a property of the kernel, not of a namespace, so the probe
// runs where nobody watches it when it can: on a thread of its own moved into a fresh,
// private network namespace (needs CAP_SYS_ADMIN, as root has), which vanishes with the
// thread. Otherwise (an unprivileged run) it runs in the caller's namespace, where other
// monitors may see its connections for the few milliseconds they exist.
#ifndef TCPSTATES_COMMON_KERNEL_COUNTER_PROBE_H_
#define TCPSTATES_COMMON_KERNEL_COUNTER_PROBE_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "common/kernel/kernel_counters.h"

namespace tcpstates {

struct CounterIdentities {
  bool curr_estab_includes_close_wait = true;
  bool tw_includes_orphaned_fin_wait2 = true;
  friend bool operator==(const CounterIdentities&, const CounterIdentities&) = default;
};

// Runs the probe in the caller's network namespace, reading the counters with
// `read_counters` (normally ReadTcpCounters of /proc/net; tests model other kernels). Fails,
// saying why, when it cannot tell: loopback down or sockets refused (Unavailable), or
// counters moving too much with other traffic to read a clear answer in three tries
// (Aborted). Needs no privilege; takes a few milliseconds on a quiet machine.
using CounterReader = absl::FunctionRef<absl::StatusOr<TcpCounters>()>;
absl::StatusOr<CounterIdentities> ProbeCounterIdentities(CounterReader read_counters);

// Where and how the kernel was probed, for logs.
struct ProbedIdentities {
  CounterIdentities identities;
  bool in_private_namespace = false;
};

// What the running kernel's counters include: probed once per process (in a private
// namespace where allowed, else in the caller's, reading `proc`), then remembered.
// Thread-safe.
absl::StatusOr<ProbedIdentities> KernelCounterIdentities(const ProcRoot& proc);

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_KERNEL_COUNTER_PROBE_H_
