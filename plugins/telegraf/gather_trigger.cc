#include "plugins/telegraf/gather_trigger.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/kernel/posix_error.h"

namespace tcpstates::telegraf {
namespace {

struct ModeName {
  TriggerMode mode;
  absl::string_view name;
};
constexpr ModeName kModeNames[] = {
    {TriggerMode::kStdin, "stdin"},     {TriggerMode::kSighup, "sighup"},
    {TriggerMode::kSigusr1, "sigusr1"}, {TriggerMode::kSigusr2, "sigusr2"},
    {TriggerMode::kNone, "none"},
};

// The signal that asks for a gather, 0 when none does.
int TriggerSignal(TriggerMode mode) {
  switch (mode) {
    case TriggerMode::kSighup:
      return SIGHUP;
    case TriggerMode::kSigusr1:
      return SIGUSR1;
    case TriggerMode::kSigusr2:
      return SIGUSR2;
    default:
      return 0;
  }
}

// Reads and drains at most this much per Wait(), so a writer flooding stdin cannot keep us
// from ever gathering.
constexpr int kMaxDrainRounds = 64;

// Every signal Telegraf may send: the stops, and all three triggers whatever the mode, so
// that a trigger meant for another mode is reported instead of killing us.
sigset_t HandledSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  for (int signal_number : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) {
    sigaddset(&signals, signal_number);
  }
  return signals;
}

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

volatile sig_atomic_t stop_signal_while_working = 0;

// Async-signal-safe: a flag, and an alarm that ends the process at the deadline.
void NoteStop(int signal_number) {
  if (stop_signal_while_working != 0) return;
  stop_signal_while_working = signal_number;
  itimerval deadline = {};
  deadline.it_value.tv_usec =
      static_cast<suseconds_t>(absl::ToInt64Microseconds(GatherTrigger::kStopDeadline));
  setitimer(ITIMER_REAL, &deadline, nullptr);
}

void ExitNow(int) { _exit(0); }

}  // namespace

absl::StatusOr<TriggerMode> ParseTriggerMode(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (const ModeName& entry : kModeNames) {
    if (entry.name == lower) return entry.mode;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown signal \"", text, "\": expected stdin, sighup, sigusr1, sigusr2 or none"));
}

absl::string_view TriggerModeName(TriggerMode mode) {
  for (const ModeName& entry : kModeNames) {
    if (entry.mode == mode) return entry.name;
  }
  return "?";
}

absl::StatusOr<GatherTrigger> GatherTrigger::Create(TriggerMode mode, absl::Duration interval,
                                                    int input_fd, int output_fd) {
  GatherTrigger trigger(mode, interval, input_fd, output_fd);

  sigset_t signals = HandledSignals();
  // Blocked signals stay pending until the signalfd reads them: one arriving in the middle
  // of a gather interrupts nothing and is seen by the next Wait().
  if (sigprocmask(SIG_BLOCK, &signals, nullptr) != 0) return PosixError(errno, "sigprocmask");
  trigger.signal_fd_ = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (trigger.signal_fd_ < 0) return PosixError(errno, "signalfd");

  if (mode == TriggerMode::kNone) {
    if (interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError("the interval must be positive");
    }
    trigger.timer_fd_ = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (trigger.timer_fd_ < 0) return PosixError(errno, "timerfd_create");
    if (absl::Status status = trigger.ArmTimer(); !status.ok()) return status;
  }
  return trigger;
}

GatherTrigger::GatherTrigger(GatherTrigger&& other) noexcept
    : mode_(other.mode_),
      interval_(other.interval_),
      input_fd_(other.input_fd_),
      output_fd_(other.output_fd_),
      signal_fd_(other.signal_fd_),
      timer_fd_(other.timer_fd_),
      pending_stop_(std::move(other.pending_stop_)),
      pending_gather_(other.pending_gather_) {
  other.signal_fd_ = -1;
  other.timer_fd_ = -1;
}

GatherTrigger::~GatherTrigger() {
  if (signal_fd_ >= 0) close(signal_fd_);
  if (timer_fd_ >= 0) close(timer_fd_);
}

absl::Status GatherTrigger::ArmTimer() {
  // The next wall-clock multiple of the interval strictly after now. Re-armed after every
  // expiry rather than periodic, so a gather that overruns skips boundaries instead of
  // queueing them, and a clock step re-aligns at once (TFD_TIMER_CANCEL_ON_SET).
  const int64_t interval_ns = absl::ToInt64Nanoseconds(interval_);
  const int64_t now_ns = absl::ToUnixNanos(absl::Now());
  const int64_t next_ns = (now_ns / interval_ns + 1) * interval_ns;
  itimerspec when{};
  when.it_value.tv_sec = next_ns / 1'000'000'000;
  when.it_value.tv_nsec = next_ns % 1'000'000'000;
  if (timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &when, nullptr) !=
      0) {
    return PosixError(errno, "timerfd_settime");
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> GatherTrigger::ReadInput(std::optional<Event>* stop) {
  char buffer[4096];
  ssize_t n = read(input_fd_, buffer, sizeof buffer);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return false;
    *stop = Event{Event::Kind::kStop, PosixError(errno, "reading stdin").ToString()};
    input_fd_ = -1;
    return false;
  }
  if (n == 0) {
    *stop = Event{Event::Kind::kStop, "stdin closed"};
    input_fd_ = -1;  // poll() would report EOF forever: stop watching it
    return false;
  }
  // Only STDIN mode gathers on input; other modes read stdin just to notice EOF.
  return mode_ == TriggerMode::kStdin && std::memchr(buffer, '\n', n) != nullptr;
}

absl::StatusOr<bool> GatherTrigger::ReadSignals(std::optional<Event>* stop,
                                                std::optional<Event>* ignored) {
  bool gather = false;
  signalfd_siginfo info;
  while (true) {
    ssize_t n = read(signal_fd_, &info, sizeof info);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return gather;
      return PosixError(errno, "reading signalfd");
    }
    if (n != sizeof info) return absl::InternalError("short read from signalfd");
    const int signal_number = static_cast<int>(info.ssi_signo);
    if (signal_number == SIGTERM || signal_number == SIGINT) {
      *stop = Event{Event::Kind::kStop, signal_number == SIGTERM ? "SIGTERM" : "SIGINT"};
    } else if (signal_number == TriggerSignal(mode_)) {
      gather = true;
    } else {
      const char* name = sigabbrev_np(signal_number);
      *ignored = Event{Event::Kind::kIgnoredSignal,
                       name ? absl::StrCat("SIG", name) : absl::StrCat("signal ", signal_number)};
      return gather;  // one at a time: the next Wait() reads the rest
    }
  }
}

absl::StatusOr<bool> GatherTrigger::ReadTimer() {
  uint64_t expirations = 0;
  ssize_t n = read(timer_fd_, &expirations, sizeof expirations);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return false;
    // The wall clock was set: re-align without gathering off-schedule.
    if (errno == ECANCELED) {
      if (absl::Status status = ArmTimer(); !status.ok()) return status;
      return false;
    }
    return PosixError(errno, "reading timerfd");
  }
  if (absl::Status status = ArmTimer(); !status.ok()) return status;
  return true;
}

absl::StatusOr<int> GatherTrigger::PollOnce(int timeout_ms, short output_events, bool* gather,
                                            std::optional<Event>* stop,
                                            std::optional<Event>* ignored, bool* output_ready) {
  enum { kInput, kSignals, kTimer, kOutput, kFdCount };
  pollfd fds[kFdCount] = {
      {.fd = input_fd_, .events = POLLIN, .revents = 0},
      {.fd = signal_fd_, .events = POLLIN, .revents = 0},
      {.fd = timer_fd_, .events = POLLIN, .revents = 0},
      // Even with no events requested, poll reports POLLERR once a pipe's reader is gone.
      {.fd = output_fd_, .events = output_events, .revents = 0},
  };
  int ready = poll(fds, kFdCount, timeout_ms);
  if (ready < 0) {
    if (errno == EINTR) return 0;
    return PosixError(errno, "poll");
  }
  if (fds[kSignals].revents & POLLIN) {
    absl::StatusOr<bool> asked = ReadSignals(stop, ignored);
    if (!asked.ok()) return asked.status();
    *gather |= *asked;
  }
  if (fds[kTimer].revents & POLLIN) {
    absl::StatusOr<bool> asked = ReadTimer();
    if (!asked.ok()) return asked.status();
    *gather |= *asked;
  }
  if (fds[kInput].revents & POLLNVAL) {
    input_fd_ = -1;
    if (mode_ == TriggerMode::kStdin) *stop = Event{Event::Kind::kStop, "stdin is not open"};
  } else if (fds[kInput].revents & (POLLIN | POLLHUP | POLLERR)) {
    absl::StatusOr<bool> asked = ReadInput(stop);
    if (!asked.ok()) return asked.status();
    *gather |= *asked;
  }
  if (fds[kOutput].revents & POLLNVAL) {
    output_fd_ = -1;
  } else if (fds[kOutput].revents & (POLLERR | POLLHUP)) {
    // Nobody will read a batch: do not gather, stop now.
    *stop = Event{Event::Kind::kStop, "stdout closed by the reader"};
  } else if ((fds[kOutput].revents & POLLOUT) && output_ready != nullptr) {
    *output_ready = true;
  }
  return ready;
}

absl::StatusOr<GatherTrigger::Event> GatherTrigger::Wait() {
  // Loops only when a wake-up asked for nothing (stdin data without a newline, a signal mode's
  // stdin chatter, a clock step).
  while (true) {
    bool gather = std::exchange(pending_gather_, false);
    std::optional<Event> stop = std::exchange(pending_stop_, std::nullopt);
    std::optional<Event> ignored;
    // The first poll blocks unless something is already due; later rounds only collect what
    // is already there, so everything that arrived during the previous gather is merged into
    // one answer.
    for (int round = 0; round < kMaxDrainRounds && !stop; ++round) {
      const bool blocking = round == 0 && !gather;
      absl::StatusOr<int> ready = PollOnce(blocking ? -1 : 0, 0, &gather, &stop, &ignored, nullptr);
      if (!ready.ok()) return ready.status();
      if (ignored) {
        pending_gather_ = gather;
        pending_stop_ = std::move(stop);
        return *ignored;
      }
      if (*ready == 0 && !blocking) break;
    }
    if (gather) {
      pending_stop_ = std::move(stop);
      return Event{Event::Kind::kGather, ""};
    }
    if (stop) return *stop;
  }
}

absl::StatusOr<GatherTrigger::Event> GatherTrigger::WaitUntilWritable() {
  while (true) {
    // A stdout we stopped watching (not open) is "writable": the write then fails and is
    // reported.
    if (output_fd_ < 0) return Event{Event::Kind::kGather, ""};
    bool gather = false;
    bool writable = false;
    std::optional<Event> stop;
    std::optional<Event> ignored;
    absl::StatusOr<int> ready = PollOnce(-1, POLLOUT, &gather, &stop, &ignored, &writable);
    if (!ready.ok()) return ready.status();
    pending_gather_ |= gather;
    if (stop) return *stop;
    if (ignored) return *ignored;
    if (writable) return Event{Event::Kind::kGather, ""};
  }
}

GatherTrigger::Working::Working() {
  struct sigaction exit_now = {};
  exit_now.sa_handler = ExitNow;
  sigaction(SIGALRM, &exit_now, nullptr);
  struct sigaction note_stop = {};
  note_stop.sa_handler = NoteStop;
  sigaction(SIGTERM, &note_stop, nullptr);
  sigaction(SIGINT, &note_stop, nullptr);
  sigset_t stops = StopSignals();
  sigprocmask(SIG_UNBLOCK, &stops, nullptr);
}

GatherTrigger::Working::~Working() {
  sigset_t stops = StopSignals();
  sigprocmask(SIG_BLOCK, &stops, nullptr);
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  sigaction(SIGTERM, &default_action, nullptr);
  sigaction(SIGINT, &default_action, nullptr);
  // SIGALRM keeps ExitNow: a deadline started during the work still ends the process.
}

std::optional<std::string> GatherTrigger::StopRequestedWhileWorking() {
  switch (stop_signal_while_working) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return std::nullopt;
  }
}

}  // namespace tcpstates::telegraf
