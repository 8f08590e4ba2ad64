// When tcpstates-execd gathers, and when it stops: the part of Telegraf's execd contract that
// is about time and signals, kept apart from what a gather prints.
//
// Telegraf asks for a gather by writing "\n" to the child's stdin (signal = "STDIN"), by
// sending SIGHUP/SIGUSR1/SIGUSR2, or not at all (signal = "none": the child keeps its own
// schedule). It stops a child by closing its stdin, then SIGTERM 5 s later, then SIGKILL.
// So in every mode: stdin EOF, SIGTERM and SIGINT mean "stop", and so does the reader of
// stdout going away (nobody can receive our lines any more).
//
// Everything is one poll(2) over stdin, a signalfd and (for "none") a timerfd: no threads, no
// signal handlers, no busy loop.
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
    enum class Kind { kGather, kStop };
    Kind kind;
    // For kStop: why, for the log ("stdin closed", "SIGTERM", ...).
    std::string reason;
    // For kStop: the reader of output_fd went away (the caller may want to say so).
    bool output_closed = false;
  };

  // Blocks SIGTERM, SIGINT and the trigger signal (they arrive through a signalfd instead),
  // so call it before any thread exists. `interval` is used by kNone only: gathers happen on
  // wall-clock multiples of it (00:00:30, 00:01:00, ... for 30 s), like Telegraf's own
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

 private:
  GatherTrigger(TriggerMode mode, absl::Duration interval, int input_fd, int output_fd)
      : mode_(mode), interval_(interval), input_fd_(input_fd), output_fd_(output_fd) {}

  absl::Status ArmTimer();
  // Each returns whether a gather was asked for; sets *stop when the program must stop.
  absl::StatusOr<bool> ReadInput(std::optional<Event>* stop);
  absl::StatusOr<bool> ReadSignals(std::optional<Event>* stop);
  absl::StatusOr<bool> ReadTimer();

  TriggerMode mode_;
  absl::Duration interval_;
  int input_fd_;
  int output_fd_;
  int signal_fd_ = -1;
  int timer_fd_ = -1;
  std::optional<Event> pending_stop_;
};

}  // namespace tcpstates::telegraf

#endif  // TCPSTATES_PLUGINS_TELEGRAF_GATHER_TRIGGER_H_
