// tcpstates-soak: back-to-back collections through the core's API (Collector + Diagnoser, as
// the CLI and the long-running adapters use them), printing this process's open fds and
// memory at the start, every --every collections and at the end, so a leak of either shows
// as a trend.
//
//   tcpstates-soak --netns=/proc/PID/ns/net --collections=10000 [--counting=full|counters]
//   -> "collections=N fds=N rss_kib=N hwm_kib=N sockets=N close_wait=N elapsed_s=S"
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/bench_util.h"
#include "common/collection/collector.h"
#include "common/diagnosis/diagnosis.h"

ABSL_FLAG(std::string, netns, "", "Network namespace to collect from (a /proc/PID/ns/net path).");
ABSL_FLAG(int, collections, 10000, "Collections to make, back to back.");
ABSL_FLAG(int, every, 1000, "Print a sample every this many collections.");
ABSL_FLAG(std::string, counting, "full", "full or counters.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (!tcpstates::bench::EnterNetns(absl::GetFlag(FLAGS_netns))) {
    std::perror("setns");
    return 1;
  }
  absl::StatusOr<tcpstates::Collector> collector =
      tcpstates::Collector::Create({.counting = absl::GetFlag(FLAGS_counting) == "counters"
                                                    ? tcpstates::Counting::kKernelCounters
                                                    : tcpstates::Counting::kFullDump});
  if (!collector.ok()) {
    std::fprintf(stderr, "%s\n", collector.status().ToString().c_str());
    return 1;
  }
  std::printf("source: %s\n", collector->source_detail().c_str());
  tcpstates::DiagnosisOptions options;
  options.port_pressure = collector->counting() == tcpstates::Counting::kFullDump;
  tcpstates::Diagnoser diagnoser(options);
  const double start = tcpstates::bench::MonotonicSeconds();
  auto sample = [&](int done, const tcpstates::Snapshot* last) {
    std::printf(
        "collections=%d fds=%d rss_kib=%lld hwm_kib=%lld sockets=%llu close_wait=%llu "
        "elapsed_s=%.1f\n",
        done, tcpstates::bench::OpenFds(),
        static_cast<long long>(tcpstates::bench::StatusKib("VmRSS")),
        static_cast<long long>(tcpstates::bench::StatusKib("VmHWM")),
        static_cast<unsigned long long>(last ? last->connections() : 0),
        static_cast<unsigned long long>(last ? last->Count(tcpstates::TcpState::kCloseWait) : 0),
        tcpstates::bench::MonotonicSeconds() - start);
    std::fflush(stdout);
  };
  sample(0, nullptr);
  const int total = absl::GetFlag(FLAGS_collections);
  for (int done = 1; done <= total; ++done) {
    absl::StatusOr<tcpstates::Snapshot> snapshot =
        collector->Collect([&](const tcpstates::SocketRecord& r) { diagnoser.Observe(r); });
    if (!snapshot.ok()) {
      std::fprintf(stderr, "collection %d: %s\n", done, snapshot.status().ToString().c_str());
      return 1;
    }
    tcpstates::Diagnosis diagnosis = diagnoser.Finish();
    if (done % absl::GetFlag(FLAGS_every) == 0 || done == total) sample(done, &*snapshot);
  }
  return 0;
}
