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

#include "bench/bench_util.h"
#include "common/collection/collector.h"
#include "common/command_line/command_line.h"

namespace {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string netns;
  int collections = 20;
  bool diagnose = false;
  tcpstates::command_line::Flags flags(
      {.name = "tcpstates-collect-cost",
       .summary = "times the core's collections in each counting",
       .synopsis = "[--netns=PATH] [--collections=N] [--diagnose]"});
  flags.String("netns", &netns, "PATH", "Network namespace to measure (a /proc/PID/ns/net path).")
      .Int("collections", &collections, 1, 1000000, "Collections per mode (after one warm-up).")
      .Bool("diagnose", &diagnose, "Run the diagnosis along, as the CLI does by default.");
  if (std::optional<int> exit_code = flags.ParseOrExit(argc, argv)) return *exit_code;
  if (!tcpstates::bench::EnterNetns(netns)) {
    std::perror("setns");
    return 1;
  }
  for (tcpstates::CountingChoice counting :
       {tcpstates::CountingChoice::kFull, tcpstates::CountingChoice::kCounters}) {
    const double create_wall = tcpstates::bench::MonotonicSeconds();
    const double create_cpu = tcpstates::bench::CpuSeconds();
    tcpstates::CollectionRequest request{.counting = counting};
    if (diagnose) {
      request.diagnosis.emplace();
      // Port pressure needs every socket, which counters never show.
      request.diagnosis->port_pressure = counting == tcpstates::CountingChoice::kFull;
    }
    absl::StatusOr<tcpstates::Collector> collector = tcpstates::Collector::Create(request);
    if (!collector.ok()) {
      std::fprintf(stderr, "%s\n", collector.status().ToString().c_str());
      return 1;
    }
    const double create_wall_s = tcpstates::bench::MonotonicSeconds() - create_wall;
    const double create_cpu_s = tcpstates::bench::CpuSeconds() - create_cpu;
    std::vector<double> wall, cpu;
    uint64_t sockets = 0;
    for (int i = 0; i <= collections; ++i) {
      const double w = tcpstates::bench::MonotonicSeconds();
      const double c = tcpstates::bench::CpuSeconds();
      absl::StatusOr<tcpstates::Collection> collection = collector->Collect();
      if (!collection.ok()) {
        std::fprintf(stderr, "%s\n", collection.status().ToString().c_str());
        return 1;
      }
      if (i == 0) continue;  // warm-up: buffers grow, pages fault in
      wall.push_back(tcpstates::bench::MonotonicSeconds() - w);
      cpu.push_back(tcpstates::bench::CpuSeconds() - c);
      sockets = collection->snapshot.connections();
    }
    std::printf(
        "requested=%s used=%s sockets=%llu create_wall_s=%.6f create_cpu_s=%.6f "
        "collect_wall_s=%.6f collect_cpu_s=%.6f detail=\"%s\"\n",
        std::string(tcpstates::CountingChoiceName(counting)).c_str(),
        collector->counting() == tcpstates::Counting::kFullDump ? "full" : "counters",
        static_cast<unsigned long long>(sockets), create_wall_s, create_cpu_s, Median(wall),
        Median(cpu), collector->source_detail().c_str());
    std::fflush(stdout);
  }
  return 0;
}
