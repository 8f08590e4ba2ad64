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
#include "common/collection/collector.h"
#include "common/diagnosis/diagnosis.h"
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
ABSL_FLAG(std::string, counting, "auto",
          "How ESTABLISHED and TIME_WAIT are counted: counters (from kernel counters, skipping "
          "those sockets in the dump: cheap at scale, no per-family split), full (dump every "
          "socket), or auto: counters unless --by-family or --port-pressure needs every "
          "socket. counters falls back to full by itself where the kernel's counters do not "
          "match a dump.");
ABSL_FLAG(bool, close_wait_owners, true,
          "When there are CLOSE_WAIT sockets, name the processes holding them "
          "(tcpstates_close_wait, tcpstates_close_wait_summary) (--close-wait-owners).");
ABSL_FLAG(int, top, 10, "How many CLOSE_WAIT owners to name per gather.");
ABSL_FLAG(bool, listen_ports, true,
          "One tcpstates_listen line per listening port, and tcpstates_listen_vanished for "
          "ports that stopped listening since the previous gather (--listen-ports).");
ABSL_FLAG(int, max_listen_ports, 256,
          "At most this many listening ports get a line (bounded series cardinality) "
          "(--max-listen-ports).");
ABSL_FLAG(bool, port_pressure, false,
          "The remote endpoint closest to exhausting the ephemeral port range "
          "(tcpstates_port_pressure). Needs every ESTABLISHED and TIME_WAIT socket: a full "
          "dump every gather (--port-pressure).");

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
    "                       [--source=auto|netlink|proc] [--counting=auto|full|counters]\n"
    "                       [--noclose-wait-owners] [--top=10] [--nolisten-ports]\n"
    "                       [--max-listen-ports=256] [--port-pressure]\n\n"
    "One batch per gather, flushed at once, every line with the gather's timestamp:\n"
    "  tcpstates tcp_connections=9i,tcp_established=4i,...,tcp_closing=0i <unix ns>\n"
    "(plus one per family with --by-family), then the diagnosis: tcpstates_close_wait per\n"
    "CLOSE_WAIT owner and tcpstates_close_wait_summary (when there are CLOSE_WAIT sockets),\n"
    "tcpstates_listen per listening port, tcpstates_listen_vanished per port gone since the\n"
    "last gather, and with --port-pressure tcpstates_port_pressure.\n"
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

absl::string_view CountingName(Counting counting) {
  return counting == Counting::kKernelCounters ? "counters" : "full";
}

class Gatherer {
 public:
  // `why_counting`: how the requested counting was decided, for the log line.
  Gatherer(Collector collector, BatchOptions options, std::optional<DiagnosisOptions> diagnosis,
           std::string why_counting)
      : collector_(std::move(collector)),
        options_(std::move(options)),
        diagnosis_options_(std::move(diagnosis)),
        why_counting_(std::move(why_counting)) {
    if (diagnosis_options_) diagnoser_.emplace(*diagnosis_options_);
    ReportCounting();
  }

  // The batch for one gather; an error when nothing could be read.
  absl::StatusOr<std::string> Gather() {
    // Without a diagnosis there is no visitor at all: the collector only counts.
    absl::StatusOr<Snapshot> snapshot =
        diagnoser_ ? collector_.Collect([this](const SocketRecord& r) { diagnoser_->Observe(r); })
                   : collector_.Collect();
    if (!snapshot.ok()) {
      // Forget the sockets seen before the failure. Finishing them instead would make a
      // partial listener set the baseline, and the next gather would report listeners as
      // vanished that never went away; the last good gather stays the reference.
      if (diagnoser_) diagnoser_->Discard();
      return snapshot.status();
    }
    ReportSourceAndProblems(*snapshot);
    ReportCounting();
    if (!diagnoser_) return RenderBatch(*snapshot, options_);
    const Diagnosis diagnosis = diagnoser_->Finish();
    ReportDiagnosisLimits(diagnosis);
    return RenderBatch(*snapshot, options_, &diagnosis);
  }

 private:
  // Once at start, and again if it changes (a netlink dump refused later switches to /proc,
  // which always dumps in full).
  void ReportCounting() {
    const Counting counting = collector_.counting();
    if (last_counting_ == counting) return;
    std::string why = why_counting_;
    if (last_counting_) {
      why = "changed with the source";
    } else if (counting == Counting::kKernelCounters) {
      absl::StrAppend(&why,
                      "; ESTABLISHED and TIME_WAIT totals from kernel counters, no "
                      "per-family split of them");
    }
    Log('I', absl::StrCat("counting: ", CountingName(counting), " (", why, ")"));
    last_counting_ = counting;
  }

  // Partial diagnoses are not errors, but an operator should learn why once, not per gather.
  void ReportDiagnosisLimits(const Diagnosis& diagnosis) {
    if (diagnosis.close_wait && diagnosis.close_wait->unattributed > 0 &&
        diagnosis.close_wait->processes_unreadable > 0 && !reported_unreadable_) {
      Log('I',
          absl::StrCat("CLOSE_WAIT owners are partial: the fds of ",
                       diagnosis.close_wait->processes_unreadable,
                       " processes are not readable by this user (tcpstates_close_wait_summary "
                       "counts the unattributed sockets); root or CAP_SYS_PTRACE + "
                       "CAP_DAC_READ_SEARCH attribute them all"));
      reported_unreadable_ = true;
    }
    const uint64_t untracked = diagnosis.listen ? diagnosis.listen->untracked_sockets : 0;
    if (untracked > 0 && last_untracked_listeners_ == 0) {
      Log('W', absl::StrCat(untracked,
                            " listening sockets are on ports beyond --max-listen-ports and "
                            "have no tcpstates_listen line"));
    }
    last_untracked_listeners_ = untracked;
  }

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
  std::optional<DiagnosisOptions> diagnosis_options_;
  std::optional<Diagnoser> diagnoser_;
  std::string why_counting_;
  std::optional<Counting> last_counting_;
  bool reported_unreadable_ = false;
  uint64_t last_untracked_listeners_ = 0;
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

  const int top = absl::GetFlag(FLAGS_top);
  const int max_listen_ports = absl::GetFlag(FLAGS_max_listen_ports);
  if (top < 0) return usage_error("--top must be >= 0");
  if (max_listen_ports < 1) {
    return usage_error("--max-listen-ports must be >= 1 (--nolisten-ports turns the series off)");
  }
  const bool port_pressure = absl::GetFlag(FLAGS_port_pressure);
  std::optional<DiagnosisOptions> diagnosis;
  if (absl::GetFlag(FLAGS_close_wait_owners) || absl::GetFlag(FLAGS_listen_ports) ||
      port_pressure) {
    diagnosis.emplace();
    diagnosis->close_wait_owners = absl::GetFlag(FLAGS_close_wait_owners);
    diagnosis->owners.top = top;
    diagnosis->listen_inventory = absl::GetFlag(FLAGS_listen_ports);
    diagnosis->max_listen_ports = static_cast<size_t>(max_listen_ports);
    diagnosis->port_pressure = port_pressure;
  }

  // Per-family lines and port pressure need every ESTABLISHED and TIME_WAIT socket, which a
  // counter-assisted dump skips; everything else is as exact from counters, and cheaper.
  const std::string counting_flag = absl::GetFlag(FLAGS_counting);
  const char* needs_every_socket =
      options.by_family ? "--by-family" : (port_pressure ? "--port-pressure" : nullptr);
  Counting counting;
  std::string why_counting;
  if (counting_flag == "auto") {
    counting = needs_every_socket ? Counting::kFullDump : Counting::kKernelCounters;
    why_counting = needs_every_socket ? absl::StrCat("--counting=auto: ", needs_every_socket,
                                                     " needs every socket")
                                      : "--counting=auto";
  } else if (counting_flag == "full") {
    counting = Counting::kFullDump;
    why_counting = "--counting=full";
  } else if (counting_flag == "counters") {
    if (needs_every_socket) {
      return usage_error(absl::StrCat("--counting=counters cannot serve ", needs_every_socket,
                                      ", which needs every socket; use --counting=auto"));
    }
    counting = Counting::kKernelCounters;
    why_counting = "--counting=counters";
  } else {
    return usage_error(
        absl::StrCat("--counting: \"", counting_flag, "\" is not one of auto, full, counters"));
  }

  absl::StatusOr<Collector> collector =
      Collector::Create({.source = *source, .counting = counting});
  if (!collector.ok()) {
    Log('E', absl::StrCat("cannot open the socket table: ", collector.status().ToString()));
    return kExitFailure;
  }
  if (counting == Counting::kKernelCounters && collector->counting() != counting) {
    // The self-check or the source ruled counters out; the source line says why.
    absl::StrAppend(&why_counting,
                    "; kernel counters not usable here: ", collector->source_detail());
  }

  if (absl::GetFlag(FLAGS_once)) {
    Gatherer gatherer(*std::move(collector), std::move(options), diagnosis, why_counting);
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
  Gatherer gatherer(*std::move(collector), std::move(options), diagnosis, why_counting);
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
