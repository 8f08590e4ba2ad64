// tcpstates-execd: TCP socket counts for Telegraf's inputs.execd, as line protocol on stdout.
// A thin adapter: the core collects, execd_gatherer renders, gather_trigger decides when;
// this file wires them to Telegraf's process contract (see README.md in this folder).
#include <signal.h>
#include <unistd.h>

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/collection/collector.h"
#include "common/command_line/command_line.h"
#include "common/version.h"
#include "plugins/telegraf/execd_config.h"
#include "plugins/telegraf/execd_gatherer.h"
#include "plugins/telegraf/execd_log.h"
#include "plugins/telegraf/gather_trigger.h"
#include "plugins/telegraf/output_writer.h"

namespace tcpstates::telegraf {
namespace {

using command_line::kExitCannotRead;
using command_line::kExitOk;

// The exit code of a write that did not go through; nullopt when it did.
std::optional<int> ExitFor(const WriteResult& result) {
  switch (result.outcome) {
    case WriteResult::Outcome::kWritten:
    case WriteResult::Outcome::kWouldBlock:
      return std::nullopt;
    case WriteResult::Outcome::kReaderGone:
      Log(LogLevel::kInfo, "stdout closed by the reader; exiting");
      return kExitOk;
    case WriteResult::Outcome::kFailed:
      Log(LogLevel::kError, result.error.ToString());
      return kExitCannotRead;
  }
  return kExitCannotRead;
}

// Signals that are not the trigger are reported once each, then ignored.
class IgnoredSignals {
 public:
  explicit IgnoredSignals(TriggerMode mode) : mode_(mode) {}
  void Report(const std::string& signal) {
    if (!reported_.insert(signal).second) return;
    Log(LogLevel::kWarning,
        absl::StrCat("received ", signal,
                     ", which is not the gather trigger here (--signal=", TriggerModeName(mode_),
                     "): ignored. Telegraf's `signal` and this command's --signal must agree"));
  }

 private:
  TriggerMode mode_;
  absl::flat_hash_set<std::string> reported_;
};

// Writes one batch, waiting for room through the trigger so that a stop ends the wait; the
// exit code to stop with, or nullopt to go on.
std::optional<int> Emit(absl::string_view batch, GatherTrigger* trigger, IgnoredSignals* ignored) {
  absl::string_view rest = batch;
  while (!rest.empty()) {
    absl::StatusOr<GatherTrigger::Event> event = trigger->WaitUntilWritable();
    if (!event.ok()) {
      Log(LogLevel::kError, absl::StrCat("waiting for stdout: ", event.status().ToString()));
      return kExitCannotRead;
    }
    if (event->kind == GatherTrigger::Event::Kind::kIgnoredSignal) {
      ignored->Report(event->reason);
      continue;
    }
    if (event->kind == GatherTrigger::Event::Kind::kStop) {
      Log(LogLevel::kInfo, absl::StrCat("stopping: ", event->reason, " while stdout was blocked; ",
                                        batch.size() - rest.size(), " of ", batch.size(),
                                        " bytes of the batch written, in whole lines"));
      return kExitOk;
    }
    if (std::optional<int> exit_code = ExitFor(WritePiece(STDOUT_FILENO, &rest))) return exit_code;
  }
  return std::nullopt;
}

int GatherOnce(Gatherer* gatherer) {
  absl::StatusOr<std::string> batch = gatherer->Gather();
  if (!batch.ok()) {
    Log(LogLevel::kError,
        absl::StrCat("cannot read the socket table: ", batch.status().ToString()));
    return kExitCannotRead;
  }
  return ExitFor(WriteFully(STDOUT_FILENO, *batch)).value_or(kExitOk);
}

int GatherOnTrigger(const ExecdConfig& config, Gatherer* gatherer) {
  absl::StatusOr<GatherTrigger> trigger =
      GatherTrigger::Create(config.mode, config.interval, STDIN_FILENO, STDOUT_FILENO);
  if (!trigger.ok()) {
    Log(LogLevel::kError,
        absl::StrCat("cannot set up gather triggers: ", trigger.status().ToString()));
    return kExitCannotRead;
  }
  Log(LogLevel::kInfo,
      absl::StrCat("tcpstates-execd ", TCPSTATES_VERSION,
                   " started: signal=", TriggerModeName(config.mode),
                   config.mode == TriggerMode::kNone
                       ? absl::StrCat(", interval=", absl::FormatDuration(config.interval))
                       : ""));
  IgnoredSignals ignored(config.mode);
  while (true) {
    absl::StatusOr<GatherTrigger::Event> event = trigger->Wait();
    if (!event.ok()) {
      Log(LogLevel::kError,
          absl::StrCat("waiting for a gather trigger: ", event.status().ToString()));
      return kExitCannotRead;
    }
    switch (event->kind) {
      case GatherTrigger::Event::Kind::kIgnoredSignal:
        ignored.Report(event->reason);
        continue;
      case GatherTrigger::Event::Kind::kStop:
        Log(LogLevel::kInfo, absl::StrCat("stopping: ", event->reason));
        return kExitOk;
      case GatherTrigger::Event::Kind::kGather:
        break;
    }
    absl::StatusOr<std::string> batch;
    {
      GatherTrigger::Working working;  // a stop now ends us within kStopDeadline
      batch = gatherer->Gather();
    }
    if (!batch.ok()) {
      // Skip this interval, try again at the next: the table may be readable again.
      Log(LogLevel::kError, absl::StrCat("gather failed: ", batch.status().ToString()));
    } else if (std::optional<int> exit_code = Emit(*batch, &*trigger, &ignored)) {
      return *exit_code;
    }
    if (std::optional<std::string> stop = GatherTrigger::StopRequestedWhileWorking()) {
      Log(LogLevel::kInfo, absl::StrCat("stopping: ", *stop));
      return kExitOk;
    }
  }
}

absl::StatusOr<Gatherer> MakeGatherer(const ExecdConfig& config) {
  if (config.all_namespaces) {
    absl::StatusOr<NamespacesCollector> namespaces =
        NamespacesCollector::Create(config.Request(), static_cast<size_t>(config.max_namespaces));
    if (!namespaces.ok()) return namespaces.status();
    return Gatherer(*std::move(namespaces), config.batch);
  }
  absl::StatusOr<Collector> collector = Collector::Create(config.Request());
  if (!collector.ok()) return collector.status();
  return Gatherer(*std::move(collector), config.batch);
}

int Run(int argc, char** argv) {
  command_line::EnsureStandardFdsOpen();
  // A write to a pipe nobody reads must fail with EPIPE, which we handle, not kill us.
  signal(SIGPIPE, SIG_IGN);

  ExecdConfig config;
  command_line::Flags flags = DefineFlags(&config);
  if (std::optional<int> exit_code = flags.ParseOrExit(argc, argv)) return *exit_code;
  if (absl::Status status = Validate(config); !status.ok()) {
    return flags.UsageError(status.message());
  }
  SetStderrLevel(config.stderr_level);

  absl::StatusOr<Gatherer> gatherer = MakeGatherer(config);
  if (!gatherer.ok()) {
    Log(LogLevel::kError,
        absl::StrCat("cannot open the socket table: ", gatherer.status().ToString()));
    return kExitCannotRead;
  }
  return config.once ? GatherOnce(&*gatherer) : GatherOnTrigger(config, &*gatherer);
}

}  // namespace
}  // namespace tcpstates::telegraf

int main(int argc, char** argv) { return tcpstates::telegraf::Run(argc, argv); }
