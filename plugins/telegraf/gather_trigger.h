// When tcpstates-execd gathers, and when it stops: the part of Telegraf's execd contract that
// is about time and signals, kept apart from what a gather prints.
//
// Telegraf asks for a gather by writing "\n" to the child's stdin (signal = "STDIN"), by
// sending SIGHUP/SIGUSR1/SIGUSR2, or not at all (signal = "none": the child keeps its own
// schedule). It stops a child by closing its stdin, then SIGTERM 5 s later, then SIGKILL.
// So in every mode: stdin EOF, SIGTERM and SIGINT mean "stop", and so does the reader of
// stdout going away (nobody can receive our lines any more). A trigger signal that is not
// this mode's (SIGHUP when started with --signal=stdin: Telegraf's `signal` and our flag
// disagree) must not kill us - the default action of all three - nor pass unnoticed: it is
// reported once per signal and ignored.
//
// Waiting is one poll(2) over stdin, a signalfd and (for "none") a timerfd: no threads, no
// busy loop. The only signal handler is for the work between two waits (see Working).
#ifndef TCPSTATES_PLUGINS_TELEGRAF_GATHER_TRIGGER_H_
#define TCPSTATES_PLUGINS_TELEGRAF_GATHER_TRIGGER_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tcpstates::telegraf {

enum class TriggerMode { kStdin, kSighup, kSigusr1, kSigusr2, kNone };

// "stdin", "sighup", "sigusr1", "sigusr2", "none", case-insensitive (Telegraf's config spells
// them "STDIN", "SIGHUP", ...). InvalidArgument lists the accepted names.
absl::StatusOr<TriggerMode> ParseTriggerMode(absl::string_view text);
absl::string_view TriggerModeName(TriggerMode mode);

class GatherTrigger {
 public:
  struct Event {
    // kIgnoredSignal: a signal that is not this mode's trigger arrived (reason names it);
    // the caller reports it and waits again.
    enum class Kind { kGather, kStop, kIgnoredSignal };
    Kind kind;
    // For kStop and kIgnoredSignal: what happened, for the log ("stdin closed", "SIGTERM",
    // "SIGHUP").
    std::string reason;
  };

  // Blocks SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 (they arrive through a signalfd
  // instead), so call it before any thread exists. `interval` is used by kNone only: gathers happen
  // on wall-clock multiples of it (00:00:30, 00:01:00, ... for 30 s), like Telegraf's own
  // round_interval. `output_fd` is watched for its reader closing (pass -1 not to).
  static absl::StatusOr<GatherTrigger> Create(TriggerMode mode, absl::Duration interval,
                                              int input_fd, int output_fd);

  GatherTrigger(GatherTrigger&& other) noexcept;
  GatherTrigger& operator=(GatherTrigger&&) = delete;
  GatherTrigger(const GatherTrigger&) = delete;
  ~GatherTrigger();

  // Blocks until a gather is due or the program must stop. Every trigger that arrived since
  // the previous call counts once: a burst of newlines or signals during a gather becomes
  // exactly one more gather, never a queue. When a stop arrives together with a trigger, the
  // gather is returned first and the stop on the next call, so its batch is not lost.
  // Errors are failures of poll/read themselves.
  absl::StatusOr<Event> Wait();

  // Blocks until `output_fd` can take a write, or the program must stop (kStop: stdin EOF,
  // SIGTERM, SIGINT, the reader gone) - so a reader that stops reading cannot keep us from
  // stopping. Gather triggers that arrive meanwhile are kept for the next Wait();
  // kIgnoredSignal is returned as from Wait(). kGather means "writable".
  absl::StatusOr<Event> WaitUntilWritable();

  // For the work between two waits (a gather takes up to a second at a million sockets):
  // while alive, SIGTERM and SIGINT are noted at once (StopRequestedWhileWorking) and start
  // a deadline of kStopDeadline, at which the process ends with exit status 0 whatever it is
  // doing. A gather that finishes in time still gets its batch written, then the program
  // stops; a stuck one never keeps it from stopping.
  class Working {
   public:
    Working();
    ~Working();
    Working(const Working&) = delete;
    Working& operator=(const Working&) = delete;
  };
  static constexpr absl::Duration kStopDeadline = absl::Milliseconds(750);

  // "SIGTERM" or "SIGINT" when one arrived during Working; nullopt otherwise.
  static std::optional<std::string> StopRequestedWhileWorking();

 private:
  GatherTrigger(TriggerMode mode, absl::Duration interval, int input_fd, int output_fd)
      : mode_(mode), interval_(interval), input_fd_(input_fd), output_fd_(output_fd) {}

  absl::Status ArmTimer();
  // Each returns whether a gather was asked for; sets *stop when the program must stop.
  absl::StatusOr<bool> ReadInput(std::optional<Event>* stop);
  // Also sets *ignored to a signal that is not the trigger.
  absl::StatusOr<bool> ReadSignals(std::optional<Event>* stop, std::optional<Event>* ignored);
  absl::StatusOr<bool> ReadTimer();
  // One poll over the inputs (and `output_fd_` for `output_events`); what it found is merged
  // into the arguments. `timeout_ms` as poll(2).
  absl::StatusOr<int> PollOnce(int timeout_ms, short output_events, bool* gather,
                               std::optional<Event>* stop, std::optional<Event>* ignored,
                               bool* output_ready);

  TriggerMode mode_;
  absl::Duration interval_;
  int input_fd_;
  int output_fd_;
  int signal_fd_ = -1;
  int timer_fd_ = -1;
  std::optional<Event> pending_stop_;
  bool pending_gather_ = false;  // a trigger seen while waiting to write
};

}  // namespace tcpstates::telegraf

#endif  // TCPSTATES_PLUGINS_TELEGRAF_GATHER_TRIGGER_H_
