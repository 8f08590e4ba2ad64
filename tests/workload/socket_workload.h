// Builds an exact, known TCP socket population over loopback, for tests and benchmarks.
//
// Each requested count is created for real through the kernel (connect, shutdown, close) so
// that the expected per-state numbers follow from construction, not from observation:
//   listen      N listening sockets on their own ports
//   established N client/server pairs           -> 2N ESTABLISHED
//   close_wait  N pairs, the client shut down    -> N CLOSE_WAIT (server) + N FIN_WAIT2 (client)
//   time_wait   N pairs, the client closed first -> N TIME_WAIT (needs tcp_tw_reuse=0)
//   orphan_fin_wait2 N pairs, the client closed, the server never does
//                                               -> N CLOSE_WAIT + N FIN_WAIT2 (orphaned,
//                                                  kept by the kernel in time-wait form)
//   syn_recv    N clients of a TCP_DEFER_ACCEPT listener that send nothing
//                                               -> N SYN_RECV (server) + N ESTABLISHED (client)
//   syn_sent    N clients of a backlog-0 listener whose accept queue is already full: their
//               SYNs are dropped, so they stay in SYN_SENT
//                                               -> N SYN_SENT, plus the one connection that
//                                                  filled the queue: 2 ESTABLISHED
//   bound_only  N sockets bound to a loopback port, neither listening nor connected
//                                               -> nothing: /proc and `ss -tan` show none
// Every helper listener that pairs are made through counts as one more LISTEN socket.
#ifndef TCPSTATES_TESTS_WORKLOAD_SOCKET_WORKLOAD_H_
#define TCPSTATES_TESTS_WORKLOAD_SOCKET_WORKLOAD_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model/snapshot.h"

namespace tcpstates::workload {

struct Spec {
  int listen = 0;
  int established = 0;
  int close_wait = 0;
  int time_wait = 0;
  int syn_recv = 0;
  int orphan_fin_wait2 = 0;
  int syn_sent = 0;
  int bound_only = 0;
};

// A process holding sockets. Closing `fds` releases them.
struct Holdings {
  std::vector<int> fds;
  StateCounts expected;  // what the kernel should now report for this family
};

// Puts the calling process in a fresh network namespace with lo up, tcp_tw_reuse=0,
// backlogs large enough for the workload, and SYN retries that keep SYN_SENT sockets for
// hours instead of two minutes. Needs CAP_SYS_ADMIN. A non-empty `port_range`
// ("LOW HIGH") narrows net.ipv4.ip_local_port_range there.
absl::Status EnterFreshNetworkNamespace(absl::string_view port_range = "");

// A child process named `name` (its comm: any bytes but NUL, at most 15) that holds `count`
// CLOSE_WAIT sockets (and their FIN_WAIT2 peers and one listener), optionally moved into the
// cgroup v2 directory `cgroup_dir` first. Returns its pid once the sockets exist; the child
// lives until this process exits.
absl::StatusOr<int> StartCloseWaitHolder(const std::string& name, int count, Family family,
                                         const std::string& cgroup_dir);

// Raises the open-file soft limit to the hard limit.
void RaiseFileLimit();

// Creates the sockets of `spec` for `family` on loopback and adds them to `holdings`.
absl::Status Build(const Spec& spec, Family family, Holdings* holdings);

// "established=N syn_sent=N ... closing=N" in kernel state order.
std::string FormatCounts(const StateCounts& counts);

}  // namespace tcpstates::workload

#endif  // TCPSTATES_TESTS_WORKLOAD_SOCKET_WORKLOAD_H_
