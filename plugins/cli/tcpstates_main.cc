// tcpstates: prints this network namespace's TCP socket counts for a human (or, with
// --json, for a script), with the diagnosis that turns counts into answers. A thin adapter:
// the core collects and diagnoses, this file only schedules and renders.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/collection/collector.h"
#include "common/diagnosis/diagnosis.h"
#include "common/program_usage.h"
#include "plugins/cli/render.h"

ABSL_FLAG(bool, json, false, "Print one JSON object (per collection) instead of the table.");
ABSL_FLAG(std::string, source, "auto",
          "Where to read sockets from: auto (netlink, else /proc), netlink, or proc.");
ABSL_FLAG(std::string, counting, "full",
          "full: dump every socket (exact per family); counters: derive ESTABLISHED and "
          "TIME_WAIT totals from kernel counters (cheaper at scale; no per-family split of "
          "those two states, no port pressure).");
ABSL_FLAG(bool, diagnose, true,
          "Name CLOSE_WAIT owners, listening ports and ephemeral-port pressure "
          "(--nodiagnose: counts only).");
ABSL_FLAG(int, top, 10, "How many CLOSE_WAIT owners to name.");
ABSL_FLAG(int, count, 1,
          "Collections to print; with more than one, listeners that vanished between two "
          "collections are named. 0: until interrupted.");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(5), "Time between collections.");

namespace {

bool Print(const std::string& text) {
  if (std::fputs(text.c_str(), stdout) < 0 || std::fflush(stdout) != 0) {
    std::perror("tcpstates: stdout");
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  tcpstates::SetUpProgramUsage(
      "tcpstates",
      "prints the TCP socket counts of this machine's network namespace.\n"
      "Usage: tcpstates [--json] [--source=auto|netlink|proc] [--count=N --interval=5s]\n\n"
      "The five headline metrics come first (tcp_connections counts every socket,\n"
      "LISTEN and TIME_WAIT included), then every kernel state by family, then why:\n"
      "which processes hold CLOSE_WAIT sockets, listeners that vanished, and the\n"
      "remote endpoint closest to exhausting the ephemeral port range; last the\n"
      "source used and how long the collection took.\n"
      "Exit status: 0 on success, 1 when no socket table could be read, 2 on bad usage.",
      "plugins/cli/");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr, "tcpstates: unexpected argument \"%s\" (see --help)\n", positional[1]);
    return 2;
  }
  const int count = absl::GetFlag(FLAGS_count);
  const int top = absl::GetFlag(FLAGS_top);
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);
  if (count < 0 || top < 0 || interval <= absl::ZeroDuration()) {
    std::fprintf(stderr, "tcpstates: --count and --top must be >= 0, --interval > 0\n");
    return 2;
  }
  absl::StatusOr<tcpstates::SourceKind> source =
      tcpstates::ParseSourceKind(absl::GetFlag(FLAGS_source));
  if (!source.ok()) {
    std::fprintf(stderr, "tcpstates: --source: %s\n",
                 std::string(source.status().message()).c_str());
    return 2;
  }

  const std::string counting_flag = absl::GetFlag(FLAGS_counting);
  if (counting_flag != "full" && counting_flag != "counters") {
    std::fprintf(stderr, "tcpstates: --counting: expected full or counters\n");
    return 2;
  }
  const tcpstates::Counting counting = counting_flag == "counters"
                                           ? tcpstates::Counting::kKernelCounters
                                           : tcpstates::Counting::kFullDump;
  absl::StatusOr<tcpstates::Collector> collector =
      tcpstates::Collector::Create({.source = *source, .counting = counting});
  if (!collector.ok()) {
    std::fprintf(stderr, "tcpstates: cannot open the socket table: %s\n",
                 collector.status().ToString().c_str());
    return 1;
  }
  const bool diagnose = absl::GetFlag(FLAGS_diagnose);
  tcpstates::DiagnosisOptions diagnosis_options;
  diagnosis_options.owners.top = top;
  // Port pressure needs every ESTABLISHED and TIME_WAIT socket, which counters never show.
  diagnosis_options.port_pressure = collector->counting() == tcpstates::Counting::kFullDump;
  tcpstates::Diagnoser diagnoser(diagnosis_options);

  for (int i = 0; count == 0 || i < count; ++i) {
    if (i > 0) absl::SleepFor(interval);
    absl::StatusOr<tcpstates::Snapshot> snapshot =
        diagnose ? collector->Collect(
                       [&](const tcpstates::SocketRecord& record) { diagnoser.Observe(record); })
                 : collector->Collect();
    if (!snapshot.ok()) {
      std::fprintf(stderr, "tcpstates: cannot read the socket table: %s\n",
                   snapshot.status().ToString().c_str());
      return 1;
    }
    std::optional<tcpstates::Diagnosis> diagnosis;
    if (diagnose) diagnosis = diagnoser.Finish();
    const tcpstates::Diagnosis* why = diagnosis ? &*diagnosis : nullptr;
    std::string text = absl::GetFlag(FLAGS_json) ? tcpstates::cli::RenderJson(*snapshot, why)
                                                 : tcpstates::cli::RenderTable(*snapshot, why);
    if (i > 0 && !absl::GetFlag(FLAGS_json)) text.insert(0, "\n");
    if (!Print(text)) return 1;
  }
  return 0;
}
