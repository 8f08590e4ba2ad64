// tcpstates-soak: back-to-back collections through the core's API (Collector + Diagnoser, as
// the CLI and the long-running adapters use them), printing this process's open fds and
// memory at the start, every --every collections and at the end, so a leak of either shows
// as a trend.
//
//   tcpstates-soak --netns=/proc/PID/ns/net --collections=10000 [--counting=full|counters]
//   -> "collections=N fds=N rss_kib=N hwm_kib=N sockets=N close_wait=N elapsed_s=S"
#include <cstdio>
#include <string>

#include "bench/bench_util.h"
#include "common/collection/collector.h"
#include "common/command_line/command_line.h"

int main(int argc, char** argv) {
  std::string netns;
  int total = 10000;
  int every = 1000;
  tcpstates::CountingChoice counting = tcpstates::CountingChoice::kFull;
  tcpstates::command_line::Flags flags({.name = "tcpstates-soak",
                                        .summary = "collects back to back, sampling fds and RSS",
                                        .synopsis = "[--netns=PATH] [--collections=N]"});
  flags.String("netns", &netns, "PATH", "Network namespace to collect from (/proc/PID/ns/net).")
      .Int("collections", &total, 1, 100000000, "Collections to make, back to back.")
      .Int("every", &every, 1, 100000000, "Print a sample every this many collections.")
      .Custom("counting", "full|counters", "full", "How to count.", [&](absl::string_view text) {
        absl::StatusOr<tcpstates::CountingChoice> parsed = tcpstates::ParseCountingChoice(text);
        if (parsed.ok()) counting = *parsed;
        return parsed.status();
      });
  if (std::optional<int> exit_code = flags.ParseOrExit(argc, argv)) return *exit_code;
  if (!tcpstates::bench::EnterNetns(netns)) {
    std::perror("setns");
    return 1;
  }
  tcpstates::CollectionRequest request{.counting = counting};
  request.diagnosis.emplace();
  // Port pressure needs every socket, which counters never show.
  request.diagnosis->port_pressure = counting == tcpstates::CountingChoice::kFull;
  absl::StatusOr<tcpstates::Collector> collector = tcpstates::Collector::Create(request);
  if (!collector.ok()) {
    std::fprintf(stderr, "%s\n", collector.status().ToString().c_str());
    return 1;
  }
  std::printf("source: %s\n", collector->source_detail().c_str());
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
  for (int done = 1; done <= total; ++done) {
    absl::StatusOr<tcpstates::Collection> collection = collector->Collect();
    if (!collection.ok()) {
      std::fprintf(stderr, "collection %d: %s\n", done, collection.status().ToString().c_str());
      return 1;
    }
    if (done % every == 0 || done == total) sample(done, &collection->snapshot);
  }
  return 0;
}
