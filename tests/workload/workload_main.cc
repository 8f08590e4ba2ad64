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

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/command_line/command_line.h"
#include "tests/workload/socket_workload.h"

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
  bool new_netns = false;
  std::string families = "ipv4,ipv6";
  tcpstates::workload::Spec spec;
  std::vector<std::string> close_wait_holders;
  std::string holder_cgroup;
  std::string port_range;
  tcpstates::command_line::Flags flags(
      {.name = "tcpstates-workload",
       .summary = "holds a known TCP socket population for tests and benchmarks",
       .synopsis = "[--new_netns] [--listen=N] ... [--families=ipv4,ipv6]"});
  flags.Bool("new_netns", &new_netns, "Build the sockets in a fresh network namespace (root).")
      .String("families", &families, "LIST", "Families to build each count for.")
      .Int("listen", &spec.listen, 0, 10000000, "Listening sockets per family.")
      .Int("established", &spec.established, 0, 10000000,
           "ESTABLISHED pairs per family (2 sockets each).")
      .Int("close_wait", &spec.close_wait, 0, 10000000, "CLOSE_WAIT/FIN_WAIT2 pairs per family.")
      .Int("time_wait", &spec.time_wait, 0, 10000000, "TIME_WAIT sockets per family.")
      .Int("orphan_fin_wait2", &spec.orphan_fin_wait2, 0, 10000000,
           "CLOSE_WAIT pairs per family whose client closed: orphaned FIN_WAIT2 peers.")
      .Int("syn_recv", &spec.syn_recv, 0, 10000000,
           "SYN_RECV request sockets per family (plus their ESTABLISHED clients).")
      .Int("syn_sent", &spec.syn_sent, 0, 10000000,
           "SYN_SENT clients per family (of a full backlog-0 listener: plus 1 LISTEN, 2 "
           "ESTABLISHED).")
      .Int("bound_only", &spec.bound_only, 0, 10000000,
           "Sockets per family bound to a loopback port, never listening or connecting (none "
           "of them is reported).")
      .Custom("close_wait_holder", "HEXNAME:COUNT,...", "",
              "For each, a child process named by the hex-encoded bytes (so any byte but NUL "
              "can be tested) holding COUNT CLOSE_WAIT sockets of the first family.",
              [&](absl::string_view text) {
                close_wait_holders = absl::StrSplit(text, ',', absl::SkipEmpty());
                return absl::OkStatus();
              })
      .String("holder_cgroup", &holder_cgroup, "DIR",
              "cgroup v2 directory the CLOSE_WAIT holders move into before building.")
      .String("port_range", &port_range, "\"LOW HIGH\"",
              "net.ipv4.ip_local_port_range in the new namespace.");
  if (std::optional<int> exit_code = flags.ParseOrExit(argc, argv)) return *exit_code;
  // Never outlive the test that started us, whatever happens to it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;

  if (new_netns) {
    absl::Status status = tcpstates::workload::EnterFreshNetworkNamespace(port_range);
    if (!status.ok()) {
      std::fprintf(stderr, "tcpstates-workload: %s\n", status.ToString().c_str());
      return 1;
    }
  }
  tcpstates::workload::RaiseFileLimit();
  std::printf("netns /proc/%d/ns/net\n", static_cast<int>(getpid()));

  std::vector<tcpstates::workload::Holdings> held;
  for (absl::string_view name : absl::StrSplit(families, ',')) {
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
      for (const std::string& holder : close_wait_holders) {
        std::vector<std::string> parts = absl::StrSplit(holder, ':');
        int count;
        if (parts.size() != 2 || !IsHex(parts[0]) || !absl::SimpleAtoi(parts[1], &count)) {
          std::fprintf(stderr, "tcpstates-workload: bad --close_wait_holder \"%s\"\n",
                       holder.c_str());
          return 2;
        }
        absl::StatusOr<int> pid = tcpstates::workload::StartCloseWaitHolder(
            absl::HexStringToBytes(parts[0]), count, family, holder_cgroup);
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
