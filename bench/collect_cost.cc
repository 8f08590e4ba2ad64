// tcpstates-collect-cost: the steady-state cost of one collection, per counting mode, measured
// inside the process (no process start-up, no output), as a long-running adapter pays it.
//
//   tcpstates-collect-cost --netns=/proc/PID/ns/net --collections=20 [--diagnose]
//
// For each mode (full dump, kernel counters) it prints what Create() cost (for counters that
// includes the start-up self-check: one full and one counter-assisted collection), which
// counting the collector settled on, and the median wall and CPU time per collection.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/bench_util.h"
#include "common/collection/collector.h"
#include "common/diagnosis/diagnosis.h"

ABSL_FLAG(std::string, netns, "", "Network namespace to measure (a /proc/PID/ns/net path).");
ABSL_FLAG(int, collections, 20, "Collections per mode (after one warm-up).");
ABSL_FLAG(bool, diagnose, false, "Run the Diagnoser along, as the CLI does by default.");

namespace {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (!tcpstates::bench::EnterNetns(absl::GetFlag(FLAGS_netns))) {
    std::perror("setns");
    return 1;
  }
  for (tcpstates::Counting counting :
       {tcpstates::Counting::kFullDump, tcpstates::Counting::kKernelCounters}) {
    const double create_wall = tcpstates::bench::MonotonicSeconds();
    const double create_cpu = tcpstates::bench::CpuSeconds();
    absl::StatusOr<tcpstates::Collector> collector =
        tcpstates::Collector::Create({.counting = counting});
    if (!collector.ok()) {
      std::fprintf(stderr, "%s\n", collector.status().ToString().c_str());
      return 1;
    }
    const double create_wall_s = tcpstates::bench::MonotonicSeconds() - create_wall;
    const double create_cpu_s = tcpstates::bench::CpuSeconds() - create_cpu;
    tcpstates::DiagnosisOptions options;
    options.port_pressure = collector->counting() == tcpstates::Counting::kFullDump;
    tcpstates::Diagnoser diagnoser(options);
    std::vector<double> wall, cpu;
    uint64_t sockets = 0;
    for (int i = 0; i <= absl::GetFlag(FLAGS_collections); ++i) {
      const double w = tcpstates::bench::MonotonicSeconds();
      const double c = tcpstates::bench::CpuSeconds();
      absl::StatusOr<tcpstates::Snapshot> snapshot =
          absl::GetFlag(FLAGS_diagnose)
              ? collector->Collect([&](const tcpstates::SocketRecord& r) { diagnoser.Observe(r); })
              : collector->Collect();
      if (absl::GetFlag(FLAGS_diagnose)) diagnoser.Finish();
      if (!snapshot.ok()) {
        std::fprintf(stderr, "%s\n", snapshot.status().ToString().c_str());
        return 1;
      }
      if (i == 0) continue;  // warm-up: buffers grow, pages fault in
      wall.push_back(tcpstates::bench::MonotonicSeconds() - w);
      cpu.push_back(tcpstates::bench::CpuSeconds() - c);
      sockets = snapshot->connections();
    }
    std::printf(
        "requested=%s used=%s sockets=%llu create_wall_s=%.6f create_cpu_s=%.6f "
        "collect_wall_s=%.6f collect_cpu_s=%.6f detail=\"%s\"\n",
        counting == tcpstates::Counting::kFullDump ? "full" : "counters",
        collector->counting() == tcpstates::Counting::kFullDump ? "full" : "counters",
        static_cast<unsigned long long>(sockets), create_wall_s, create_cpu_s, Median(wall),
        Median(cpu), collector->source_detail().c_str());
    std::fflush(stdout);
  }
  return 0;
}
