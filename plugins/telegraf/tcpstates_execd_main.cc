// tcpstates-execd: TCP socket counts for Telegraf's inputs.execd, as line protocol on stdout.
// A thin adapter: the core collects, execd_batch renders, gather_trigger decides when; this
// file wires them to Telegraf's process contract (see README.md in this folder).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/collector.h"
#include "common/program_usage.h"
#include "common/version.h"
#include "plugins/telegraf/command_line.h"
#include "plugins/telegraf/execd_batch.h"
#include "plugins/telegraf/gather_trigger.h"
#include "plugins/telegraf/output_writer.h"

ABSL_FLAG(std::string, signal, "stdin",
          "What triggers a gather: stdin (one gather per newline, Telegraf's signal = \"STDIN\"), "
          "sighup, sigusr1, sigusr2, or none (gather every --interval on our own).");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(30),
          "With --signal=none: gather at every wall-clock multiple of this interval.");
ABSL_FLAG(bool, once, false, "Print one batch and exit.");
ABSL_FLAG(std::string, measurement, "",
          "Measurement name (default \"tcpstates\", or \"netstat\" with --netstat-compat).");
ABSL_FLAG(bool, by_family, false,
          "Also print one line per address family, tagged family=ipv4|ipv6 (--by-family).");
ABSL_FLAG(bool, netstat_compat, false,
          "Print Telegraf inputs.netstat's measurement and field names, so netstat dashboards "
          "keep working (--netstat-compat).");
ABSL_FLAG(std::string, source, "auto",
          "Where to read sockets from: auto (netlink, else /proc), netlink, or proc.");

namespace tcpstates::telegraf {
namespace {

// Exit codes (also in --help and README.md).
constexpr int kExitOk = 0;       // stopped as asked: stdin EOF, SIGTERM/SIGINT, reader gone
constexpr int kExitFailure = 1;  // cannot read sockets or write stdout
constexpr int kExitUsage = 2;    // bad command line

constexpr absl::string_view kUsage =
    "prints this network namespace's TCP socket counts as InfluxDB line protocol,\n"
    "for Telegraf's [[inputs.execd]] (data_format = \"influx\").\n"
    "Usage: tcpstates-execd [--signal=stdin|sighup|sigusr1|sigusr2|none] [--interval=30s]\n"
    "                       [--once] [--by-family] [--netstat-compat] [--measurement=NAME]\n"
    "                       [--source=auto|netlink|proc]\n\n"
    "One line per gather (plus one per family with --by-family), flushed at once:\n"
    "  tcpstates tcp_connections=9i,tcp_established=4i,...,tcp_closing=0i <unix ns>\n"
    "Stops on stdin EOF, SIGTERM or SIGINT, and when stdout's reader goes away. Diagnostics\n"
    "go to stderr prefixed E!, W!, I! for Telegraf. Flag names take '-' or '_'.\n"
    "Exit status: 0 when stopped (including a closed stdout), 1 when the socket table\n"
    "cannot be read (at start-up, or for --once) or stdout fails, 2 on bad usage.";

// One diagnostic line with Telegraf's level prefix, written with a single write(2) so lines
// from a dying process are never interleaved or torn.
void Log(char level, absl::string_view message) {
  std::string line = absl::StrCat(std::string(1, level), "! ",
                                  absl::StrReplaceAll(message, {{"\n", " "}, {"\r", " "}}), "\n");
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;  // nowhere left to report a failing stderr
}

// A closed fd 0, 1 or 2 would be handed to the next open() - our signalfd could become
// "stdin". Point missing ones at /dev/null: a missing stdin then reads as EOF (stop).
void EnsureStandardFdsOpen() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) == -1) {
      int opened = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
      if (opened >= 0 && opened != fd) {
        dup2(opened, fd);
        close(opened);
      }
    }
  }
}

class Gatherer {
 public:
  Gatherer(Collector collector, BatchOptions options)
      : collector_(std::move(collector)), options_(std::move(options)) {}

  // The batch for one gather; an error when nothing could be read.
  absl::StatusOr<std::string> Gather() {
    absl::StatusOr<Snapshot> snapshot = collector_.Collect();
    if (!snapshot.ok()) return snapshot.status();
    ReportSourceAndProblems(*snapshot);
    return RenderBatch(*snapshot, options_);
  }

 private:
  // Once at start and whenever it changes (e.g. netlink refused, fell back to /proc), not
  // every interval.
  void ReportSourceAndProblems(const Snapshot& snapshot) {
    std::string source =
        absl::StrCat(SourceKindName(snapshot.source), " (", snapshot.source_detail, ")");
    if (source != last_source_) {
      Log('I', absl::StrCat("reading sockets from ", source));
      last_source_ = std::move(source);
    }
    if (snapshot.malformed != last_malformed_ && snapshot.malformed > 0) {
      Log('W', absl::StrCat(snapshot.malformed,
                            " socket table lines or messages were malformed "
                            "and skipped"));
    }
    if (snapshot.unknown_state != last_unknown_state_ && snapshot.unknown_state > 0) {
      Log('W', absl::StrCat(snapshot.unknown_state,
                            " sockets are in states this version does not know; they are in "
                            "no field"));
    }
    last_malformed_ = snapshot.malformed;
    last_unknown_state_ = snapshot.unknown_state;
  }

  Collector collector_;
  BatchOptions options_;
  std::string last_source_;
  uint64_t last_malformed_ = 0;
  uint64_t last_unknown_state_ = 0;
};

// Writes a batch; returns the exit code to stop with, or -1 to go on.
int Emit(const std::string& batch) {
  WriteResult result = WriteFully(STDOUT_FILENO, batch);
  switch (result.outcome) {
    case WriteResult::Outcome::kWritten:
      return -1;
    case WriteResult::Outcome::kReaderGone:
      Log('I', "stdout closed by the reader; exiting");
      return kExitOk;
    case WriteResult::Outcome::kFailed:
      Log('E', result.error.ToString());
      return kExitFailure;
  }
  return kExitFailure;
}

int Run(int argc, char** argv) {
  EnsureStandardFdsOpen();
  // A write to a pipe nobody reads must fail with EPIPE, which we handle, not kill us.
  signal(SIGPIPE, SIG_IGN);

  SetUpProgramUsage("tcpstates-execd", kUsage, "plugins/telegraf/");
  if (absl::Status status = NormalizeAndCheckCommandLine(argc, argv); !status.ok()) {
    Log('E', absl::StrCat("tcpstates-execd: ", status.message()));
    std::fprintf(stderr, "%s\nTry --help.\n", std::string(kUsage).c_str());
    return kExitUsage;
  }
  absl::ParseCommandLine(argc, argv);

  auto usage_error = [](absl::string_view message) {
    Log('E', absl::StrCat("tcpstates-execd: ", message, " (see --help)"));
    return kExitUsage;
  };
  absl::StatusOr<TriggerMode> mode = ParseTriggerMode(absl::GetFlag(FLAGS_signal));
  if (!mode.ok()) return usage_error(absl::StrCat("--signal: ", mode.status().message()));
  const absl::Duration interval = absl::GetFlag(FLAGS_interval);
  if (interval <= absl::ZeroDuration()) return usage_error("--interval must be positive");
  absl::StatusOr<SourceKind> source = ParseSourceKind(absl::GetFlag(FLAGS_source));
  if (!source.ok()) return usage_error(absl::StrCat("--source: ", source.status().message()));
  BatchOptions options{.measurement = absl::GetFlag(FLAGS_measurement),
                       .by_family = absl::GetFlag(FLAGS_by_family),
                       .netstat_compat = absl::GetFlag(FLAGS_netstat_compat)};
  // The measurement is the only thing rendering can reject: try it once, now.
  if (absl::StatusOr<std::string> probe = RenderBatch(Snapshot{}, options); !probe.ok()) {
    return usage_error(absl::StrCat("--measurement: ", probe.status().message()));
  }

  absl::StatusOr<Collector> collector = Collector::Create({.source = *source});
  if (!collector.ok()) {
    Log('E', absl::StrCat("cannot open the socket table: ", collector.status().ToString()));
    return kExitFailure;
  }
  Gatherer gatherer(*std::move(collector), std::move(options));

  if (absl::GetFlag(FLAGS_once)) {
    absl::StatusOr<std::string> batch = gatherer.Gather();
    if (!batch.ok()) {
      Log('E', absl::StrCat("cannot read the socket table: ", batch.status().ToString()));
      return kExitFailure;
    }
    const int exit_code = Emit(*batch);
    return exit_code < 0 ? kExitOk : exit_code;
  }

  absl::StatusOr<GatherTrigger> trigger =
      GatherTrigger::Create(*mode, interval, STDIN_FILENO, STDOUT_FILENO);
  if (!trigger.ok()) {
    Log('E', absl::StrCat("cannot set up gather triggers: ", trigger.status().ToString()));
    return kExitFailure;
  }
  Log('I', absl::StrCat("tcpstates-execd ", TCPSTATES_VERSION,
                        " started: signal=", TriggerModeName(*mode),
                        *mode == TriggerMode::kNone
                            ? absl::StrCat(", interval=", absl::FormatDuration(interval))
                            : ""));
  while (true) {
    absl::StatusOr<GatherTrigger::Event> event = trigger->Wait();
    if (!event.ok()) {
      Log('E', absl::StrCat("waiting for a gather trigger: ", event.status().ToString()));
      return kExitFailure;
    }
    if (event->kind == GatherTrigger::Event::Kind::kStop) {
      Log('I', absl::StrCat("stopping: ", event->reason));
      return kExitOk;
    }
    absl::StatusOr<std::string> batch = gatherer.Gather();
    if (!batch.ok()) {
      // Skip this interval, try again at the next: the table may be readable again.
      Log('E', absl::StrCat("gather failed: ", batch.status().ToString()));
      continue;
    }
    if (int exit_code = Emit(*batch); exit_code >= 0) return exit_code;
  }
}

}  // namespace
}  // namespace tcpstates::telegraf

int main(int argc, char** argv) { return tcpstates::telegraf::Run(argc, argv); }
