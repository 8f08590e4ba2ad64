// tcpstates-workload: holds a known TCP socket population until stdin closes.
//
//   tcpstates-workload --new_netns --listen=300 --established=300 ... [--families=ipv4,ipv6]
//
// Once every socket exists it prints, and flushes:
//   netns /proc/<pid>/ns/net
//   expect ipv4 established=N syn_sent=N ... closing=N
//   expect ipv6 ...
//   holder <pid> <hex name> <count>     (one per --close_wait_holder)
//   ready
// Then it holds the sockets until stdin reaches EOF (or SIGTERM, or its parent dies), so a
// test can measure the population from inside the namespace (nsenter --net=..., setns).
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/program_usage.h"
#include "tests/workload/socket_workload.h"

ABSL_FLAG(bool, new_netns, false, "Build the sockets in a fresh network namespace (needs root).");
ABSL_FLAG(std::string, families, "ipv4,ipv6", "Families to build each count for.");
ABSL_FLAG(int, listen, 0, "Listening sockets per family.");
ABSL_FLAG(int, established, 0, "ESTABLISHED pairs per family (2 sockets each).");
ABSL_FLAG(int, close_wait, 0, "CLOSE_WAIT/FIN_WAIT2 pairs per family.");
ABSL_FLAG(int, time_wait, 0, "TIME_WAIT sockets per family.");
ABSL_FLAG(int, orphan_fin_wait2, 0,
          "CLOSE_WAIT pairs per family whose client closed: orphaned FIN_WAIT2 peers.");
ABSL_FLAG(int, syn_recv, 0,
          "SYN_RECV request sockets per family (plus their ESTABLISHED clients).");
ABSL_FLAG(int, syn_sent, 0,
          "SYN_SENT clients per family (of a full backlog-0 listener: plus 1 LISTEN, 2 "
          "ESTABLISHED).");
ABSL_FLAG(int, bound_only, 0,
          "Sockets per family bound to a loopback port, never listening or connecting (none "
          "of them is reported).");
ABSL_FLAG(std::vector<std::string>, close_wait_holder, {},
          "HEXNAME:COUNT,...: for each, a child process named by the hex-encoded bytes (so any "
          "byte but NUL can be tested) holding COUNT CLOSE_WAIT sockets of the first family.");
ABSL_FLAG(std::string, holder_cgroup, "",
          "cgroup v2 directory the CLOSE_WAIT holders move into before building.");
ABSL_FLAG(std::string, port_range, "",
          "\"LOW HIGH\" for net.ipv4.ip_local_port_range in the new namespace.");

namespace {

bool IsHex(absl::string_view text) {
  if (text.empty() || text.size() % 2 != 0) return false;
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  tcpstates::SetUpProgramUsage("tcpstates-workload",
                               "holds a known TCP socket population for tests and benchmarks",
                               "tests/workload/");
  absl::ParseCommandLine(argc, argv);
  // Never outlive the test that started us, whatever happens to it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;

  if (absl::GetFlag(FLAGS_new_netns)) {
    absl::Status status =
        tcpstates::workload::EnterFreshNetworkNamespace(absl::GetFlag(FLAGS_port_range));
    if (!status.ok()) {
      std::fprintf(stderr, "tcpstates-workload: %s\n", status.ToString().c_str());
      return 1;
    }
  }
  tcpstates::workload::RaiseFileLimit();
  std::printf("netns /proc/%d/ns/net\n", static_cast<int>(getpid()));

  tcpstates::workload::Spec spec{
      .listen = absl::GetFlag(FLAGS_listen),
      .established = absl::GetFlag(FLAGS_established),
      .close_wait = absl::GetFlag(FLAGS_close_wait),
      .time_wait = absl::GetFlag(FLAGS_time_wait),
      .syn_recv = absl::GetFlag(FLAGS_syn_recv),
      .orphan_fin_wait2 = absl::GetFlag(FLAGS_orphan_fin_wait2),
      .syn_sent = absl::GetFlag(FLAGS_syn_sent),
      .bound_only = absl::GetFlag(FLAGS_bound_only),
  };
  std::vector<tcpstates::workload::Holdings> held;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_families), ',')) {
    tcpstates::Family family;
    if (name == "ipv4") {
      family = tcpstates::Family::kIpv4;
    } else if (name == "ipv6") {
      family = tcpstates::Family::kIpv6;
    } else {
      std::fprintf(stderr, "tcpstates-workload: unknown family \"%s\"\n",
                   std::string(name).c_str());
      return 2;
    }
    tcpstates::workload::Holdings& holdings = held.emplace_back();
    absl::Status status = tcpstates::workload::Build(spec, family, &holdings);
    if (!status.ok()) {
      std::fprintf(stderr, "tcpstates-workload: %s: %s\n", std::string(name).c_str(),
                   status.ToString().c_str());
      return 1;
    }
    if (held.size() == 1) {
      // Holders build in the first family; their sockets are part of its expectation.
      for (const std::string& holder : absl::GetFlag(FLAGS_close_wait_holder)) {
        std::vector<std::string> parts = absl::StrSplit(holder, ':');
        int count;
        if (parts.size() != 2 || !IsHex(parts[0]) || !absl::SimpleAtoi(parts[1], &count)) {
          std::fprintf(stderr, "tcpstates-workload: bad --close_wait_holder \"%s\"\n",
                       holder.c_str());
          return 2;
        }
        absl::StatusOr<int> pid = tcpstates::workload::StartCloseWaitHolder(
            absl::HexStringToBytes(parts[0]), count, family, absl::GetFlag(FLAGS_holder_cgroup));
        if (!pid.ok()) {
          std::fprintf(stderr, "tcpstates-workload: %s\n", pid.status().ToString().c_str());
          return 1;
        }
        std::printf("holder %d %s %d\n", *pid, parts[0].c_str(), count);
        holdings.expected[tcpstates::TcpState::kCloseWait] += count;
        holdings.expected[tcpstates::TcpState::kFinWait2] += count;
        holdings.expected[tcpstates::TcpState::kListen] += 1;
      }
    }
    std::printf("expect %s %s\n", std::string(name).c_str(),
                tcpstates::workload::FormatCounts(holdings.expected).c_str());
  }
  std::printf("ready\n");
  std::fflush(stdout);

  char buffer[256];
  while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
  }
  return 0;
}
