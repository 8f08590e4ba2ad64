// Micro-benchmarks of the core's hot loops, on captured and synthetic input (no kernel):
// bytes/s of the /proc text parser and of the netlink message walker, per socket cost of
// counting. Compare runs of the same binary; absolute numbers depend on the machine.
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "common/kernel/netlink_socket_table.h"
#include "common/kernel/proc_net_tcp.h"
#include "common/model/snapshot.h"
#include "plugins/telegraf/line_protocol.h"

namespace tcpstates {
namespace {

// The captured tables' rows repeated to ~`rows` lines.
std::string ProcText(const char* file, int rows) {
  std::ifstream in(std::string(TCPSTATES_TESTDATA_DIR) + "/" + file);
  std::stringstream captured;
  captured << in.rdbuf();
  const std::string table = captured.str();
  const std::string header = table.substr(0, table.find('\n') + 1);
  const std::string body = table.substr(header.size());
  std::string text = header;
  while (static_cast<int>(std::count(text.begin(), text.end(), '\n')) < rows) text += body;
  return text;
}

void BM_ProcParse(benchmark::State& state, const char* file, Family family) {
  const std::string text = ProcText(file, 100000);
  uint64_t sockets = 0;
  for (auto _ : state) {
    Snapshot snapshot;
    WalkStats stats;
    ParseProcNetTcpText(
        text, family, [&](const SocketRecord& r) { CountSocket(r, &snapshot); }, &stats);
    sockets += stats.sockets;
    benchmark::DoNotOptimize(snapshot);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetItemsProcessed(static_cast<int64_t>(sockets));
}
BENCHMARK_CAPTURE(BM_ProcParse, tcp, "proc_net_tcp.txt", Family::kIpv4);
BENCHMARK_CAPTURE(BM_ProcParse, tcp6, "proc_net_tcp6.txt", Family::kIpv6);

// A receive buffer as the kernel fills it: ~32 KiB of socket messages.
std::vector<uint8_t> NetlinkBuffer(uint32_t seq) {
  std::vector<uint8_t> bytes;
  const size_t message = NLMSG_ALIGN(NLMSG_LENGTH(sizeof(inet_diag_msg) + 12));
  for (uint32_t i = 0; bytes.size() + message <= 32768; ++i) {
    nlmsghdr header{};
    header.nlmsg_len = NLMSG_LENGTH(sizeof(inet_diag_msg) + 12);
    header.nlmsg_type = TCPDIAG_GETSOCK;
    header.nlmsg_seq = seq;
    inet_diag_msg msg{};
    msg.idiag_family = i % 2 ? AF_INET6 : AF_INET;
    msg.idiag_state = static_cast<uint8_t>(1 + i % 11);
    msg.id.idiag_sport = htons(static_cast<uint16_t>(i));
    msg.idiag_inode = i;
    nlattr attr{12, INET_DIAG_CGROUP_ID};
    uint64_t cgroup = 1;
    const size_t at = bytes.size();
    bytes.resize(at + message, 0);
    std::memcpy(&bytes[at], &header, sizeof header);
    std::memcpy(&bytes[at + NLMSG_HDRLEN], &msg, sizeof msg);
    std::memcpy(&bytes[at + NLMSG_HDRLEN + sizeof msg], &attr, sizeof attr);
    std::memcpy(&bytes[at + NLMSG_HDRLEN + sizeof msg + sizeof attr], &cgroup, 8);
  }
  return bytes;
}

void BM_NetlinkWalk(benchmark::State& state) {
  const std::vector<uint8_t> bytes = NetlinkBuffer(1);
  uint64_t sockets = 0;
  for (auto _ : state) {
    Snapshot snapshot;
    WalkStats stats;
    auto progress = WalkDiagMessages(
        absl::MakeConstSpan(bytes), 1, [&](const SocketRecord& r) { CountSocket(r, &snapshot); },
        &stats);
    benchmark::DoNotOptimize(progress);
    sockets += stats.sockets;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
  state.SetItemsProcessed(static_cast<int64_t>(sockets));
}
BENCHMARK(BM_NetlinkWalk);

// One gather's headline line as tcpstates-execd prints it (a tag, twelve integer fields, a
// timestamp), built and encoded into a reused buffer: the per-gather cost of the encoder.
void BM_LineProtocolHeadline(benchmark::State& state) {
  std::string out;
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    out.clear();
    line_protocol::LinePoint point("tcpstates");
    point.AddTag("family", "all");
    int64_t value = 1000000;
    point.AddInt("tcp_connections", value);
    for (TcpState s : kAllStates) point.AddInt(MetricName(s), value--);
    point.SetTime(now);
    benchmark::DoNotOptimize(point.AppendTo(&out));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_LineProtocolHeadline);

// A CLOSE_WAIT owner line whose process name needs every kind of escaping.
void BM_LineProtocolHostileTag(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    line_protocol::LinePoint point("tcpstates_close_wait_owner");
    point.AddTag("comm", "a b,c=d\\te\nf\"g\\");
    point.AddTag("pid", "123456");
    point.AddInt("sockets", 10000);
    point.AddString("cmdline", "/usr/bin/srv --name=\"x y\"\n\\");
    benchmark::DoNotOptimize(point.AppendTo(&out));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_LineProtocolHostileTag);

}  // namespace
}  // namespace tcpstates

BENCHMARK_MAIN();
