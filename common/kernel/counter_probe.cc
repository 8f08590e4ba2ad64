#include "common/kernel/counter_probe.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/base/const_init.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/kernel/kernel_counters.h"
#include "common/kernel/network_namespace.h"
#include "common/kernel/posix_error.h"

namespace tcpstates {
namespace {

// Enough connections that other processes' churn during a step (microseconds to a few
// milliseconds) cannot pass for the probe's own move; few enough to cost nothing.
constexpr int kPairs = 32;
constexpr int64_t kTolerance = kPairs / 4;
constexpr absl::Duration kStepTimeout = absl::Seconds(1);
constexpr int kAttempts = 3;

// The kernel's state numbers, as TCP_INFO reports them.
constexpr int kFinWait2 = 5;
constexpr int kCloseWait = 8;

// Closes with an RST: the socket leaves no TIME_WAIT behind, and a time-wait peer that
// receives the RST is killed.
void Abort(int fd) {
  linger abort{.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  close(fd);
}

int StateOf(int fd) {
  tcp_info info{};
  socklen_t size = sizeof info;
  return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) == 0 ? info.tcpi_state : -1;
}

absl::Status AwaitState(const std::vector<int>& fds, int state) {
  const absl::Time deadline = absl::Now() + kStepTimeout;
  for (;;) {
    bool all = true;
    for (int fd : fds) all = all && StateOf(fd) == state;
    if (all) return absl::OkStatus();
    if (absl::Now() > deadline) return absl::AbortedError("probe connections did not settle");
    absl::SleepFor(absl::Milliseconds(1));
  }
}

absl::Status AwaitReadable(int fd, short events) {
  pollfd ready{.fd = fd, .events = events, .revents = 0};
  int n;
  do {
    n = poll(&ready, 1, static_cast<int>(absl::ToInt64Milliseconds(kStepTimeout)));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return PosixError(errno, "counter probe: poll");
  if (n == 0) return absl::UnavailableError("counter probe: loopback connection timed out");
  return absl::OkStatus();
}

// kPairs connected loopback pairs; every socket still open is aborted on destruction.
class ProbeConnections {
 public:
  ProbeConnections() = default;
  ProbeConnections(const ProbeConnections&) = delete;
  ProbeConnections& operator=(const ProbeConnections&) = delete;
  ~ProbeConnections() {
    for (const std::vector<int>* fds : {&clients, &servers}) {
      for (int fd : *fds) Abort(fd);
    }
    if (listener_ >= 0) Abort(listener_);
  }

  absl::Status Open() {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listener_ < 0) return Unavailable("socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        listen(listener_, kPairs + 8) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return Unavailable("listen on 127.0.0.1");
    }
    for (int i = 0; i < kPairs; ++i) {
      int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (client < 0) return Unavailable("socket");
      clients.push_back(client);
      if (connect(client, reinterpret_cast<sockaddr*>(&address), length) != 0 &&
          errno != EINPROGRESS) {
        return Unavailable("connect to 127.0.0.1");
      }
      if (absl::Status status = AwaitReadable(listener_, POLLIN); !status.ok()) return status;
      int server = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (server < 0) return Unavailable("accept");
      servers.push_back(server);
    }
    return absl::OkStatus();
  }

  // Aborts and forgets every socket in `fds` (one of the two lists).
  static void AbortAll(std::vector<int>* fds) {
    for (int fd : *fds) Abort(fd);
    fds->clear();
  }

  std::vector<int> clients;
  std::vector<int> servers;

 private:
  static absl::Status Unavailable(absl::string_view what) {
    return absl::UnavailableError(
        absl::StrCat("counter probe: ", PosixError(errno, what).message(), " (is loopback up?)"));
  }
  int listener_ = -1;
};

bool Near(int64_t move, int64_t expected) { return std::llabs(move - expected) <= kTolerance; }

int64_t Move(uint64_t before, uint64_t after) {
  return static_cast<int64_t>(after) - static_cast<int64_t>(before);
}

// One reading of CurrEstab around ESTABLISHED -> CLOSE_WAIT -> CLOSE; nullopt when the moves
// fit neither answer.
absl::StatusOr<std::optional<bool>> ProbeCloseWaitOnce(CounterReader read_counters) {
  ProbeConnections probe;
  if (absl::Status status = probe.Open(); !status.ok()) return status;
  absl::StatusOr<TcpCounters> before = read_counters();
  if (!before.ok()) return before.status();
  for (int client : probe.clients) shutdown(client, SHUT_WR);
  if (absl::Status status = AwaitState(probe.servers, kCloseWait); !status.ok()) return status;
  if (absl::Status status = AwaitState(probe.clients, kFinWait2); !status.ok()) return status;
  absl::StatusOr<TcpCounters> in_close_wait = read_counters();
  if (!in_close_wait.ok()) return in_close_wait.status();
  ProbeConnections::AbortAll(&probe.servers);  // CLOSE_WAIT -> CLOSE, inside close()
  absl::StatusOr<TcpCounters> closed = read_counters();
  if (!closed.ok()) return closed.status();
  const int64_t shutdown_move = Move(before->curr_estab, in_close_wait->curr_estab);
  const int64_t abort_move = Move(in_close_wait->curr_estab, closed->curr_estab);
  if (Near(shutdown_move, -kPairs) && Near(abort_move, -kPairs)) return true;
  if (Near(shutdown_move, -2 * kPairs) && Near(abort_move, 0)) return false;
  return std::nullopt;
}

// One reading of tw around orphaning FIN_WAIT2 sockets and killing them again.
absl::StatusOr<std::optional<bool>> ProbeFinWait2Once(CounterReader read_counters) {
  ProbeConnections probe;
  if (absl::Status status = probe.Open(); !status.ok()) return status;
  for (int client : probe.clients) {
    // At most a second in FIN_WAIT2 once orphaned: short enough for the kernel to keep
    // them in time-wait form whatever tcp_fin_timeout says, and for any the RST misses to
    // be gone at once.
    int seconds = 1;
    setsockopt(client, IPPROTO_TCP, TCP_LINGER2, &seconds, sizeof seconds);
    shutdown(client, SHUT_WR);
  }
  if (absl::Status status = AwaitState(probe.clients, kFinWait2); !status.ok()) return status;
  absl::StatusOr<TcpCounters> before = read_counters();
  if (!before.ok()) return before.status();
  for (int client : probe.clients) close(client);  // FIN_WAIT2 -> time-wait form, inside close()
  probe.clients.clear();
  absl::StatusOr<TcpCounters> orphaned = read_counters();
  if (!orphaned.ok()) return orphaned.status();
  ProbeConnections::AbortAll(&probe.servers);  // their RSTs kill the time-wait sockets
  // The RSTs are delivered asynchronously: wait for tw to come back down, where it went up.
  const int64_t orphan_move = Move(before->time_wait_buckets, orphaned->time_wait_buckets);
  absl::StatusOr<TcpCounters> killed = orphaned;
  const absl::Time deadline = absl::Now() + kStepTimeout;
  while (Near(orphan_move, kPairs) &&
         !Near(Move(orphaned->time_wait_buckets, killed->time_wait_buckets), -kPairs) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
    killed = read_counters();
    if (!killed.ok()) return killed.status();
  }
  const int64_t kill_move = Move(orphaned->time_wait_buckets, killed->time_wait_buckets);
  if (Near(orphan_move, kPairs) && Near(kill_move, -kPairs)) return true;
  if (Near(orphan_move, 0) && Near(kill_move, 0)) return false;
  return std::nullopt;
}

template <typename ProbeOnce>
absl::StatusOr<bool> Answer(absl::string_view question, ProbeOnce probe_once) {
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    absl::StatusOr<std::optional<bool>> answer = probe_once();
    if (!answer.ok()) return answer.status();
    if (answer->has_value()) return **answer;
  }
  return absl::AbortedError(absl::StrCat("counter probe: could not tell whether ", question,
                                         ": the counters moved with other traffic in ", kAttempts,
                                         " tries"));
}

}  // namespace

absl::StatusOr<CounterIdentities> ProbeCounterIdentities(CounterReader read_counters) {
  CounterIdentities identities;
  absl::StatusOr<bool> close_wait =
      Answer("CurrEstab counts CLOSE_WAIT", [&] { return ProbeCloseWaitOnce(read_counters); });
  if (!close_wait.ok()) return close_wait.status();
  identities.curr_estab_includes_close_wait = *close_wait;
  absl::StatusOr<bool> fin_wait2 =
      Answer("tw counts orphaned FIN_WAIT2", [&] { return ProbeFinWait2Once(read_counters); });
  if (!fin_wait2.ok()) return fin_wait2.status();
  identities.tw_includes_orphaned_fin_wait2 = *fin_wait2;
  return identities;
}

}  // namespace tcpstates

namespace tcpstates {
namespace {

// The probe on a thread of its own in a fresh network namespace: network namespaces are per
// thread, so the rest of the process stays where it is, and everything the probe made goes
// away with the namespace when the thread ends.
absl::StatusOr<CounterIdentities> ProbeInPrivateNamespace() {
  absl::StatusOr<CounterIdentities> result = absl::UnknownError("probe thread did not run");
  absl::Status started = RunOnOwnThread([&result] {
    if (unshare(CLONE_NEWNET) != 0) {
      result = PosixError(errno, "unshare(CLONE_NEWNET)");
      return;
    }
    if (absl::Status status = BringLoopbackUp(); !status.ok()) {
      result = status;
      return;
    }
    // /proc/thread-self/net is this thread's namespace, /proc/self/net the process's.
    const ProcRoot thread_proc("/proc/thread-self");
    result = ProbeCounterIdentities([&] { return ReadTcpCounters(thread_proc); });
  });
  if (!started.ok()) return started;
  return result;
}

}  // namespace

absl::StatusOr<ProbedIdentities> KernelCounterIdentities(const ProcRoot& proc) {
  static absl::Mutex mutex(absl::kConstInit);
  static std::optional<absl::StatusOr<ProbedIdentities>>* known = nullptr;
  absl::MutexLock lock(&mutex);
  if (known != nullptr) return **known;
  absl::StatusOr<ProbedIdentities> probed;
  if (absl::StatusOr<CounterIdentities> identities = ProbeInPrivateNamespace(); identities.ok()) {
    probed = ProbedIdentities{*identities, true};
  } else if (absl::StatusOr<CounterIdentities> here =
                 ProbeCounterIdentities([&] { return ReadTcpCounters(proc); });
             here.ok()) {
    probed = ProbedIdentities{*here, false};
  } else {
    probed = here.status();
  }
  // Answers are remembered; "cannot tell now" (loopback down here, churn) is not.
  if (probed.ok()) known = new std::optional<absl::StatusOr<ProbedIdentities>>(probed);
  return probed;
}

}  // namespace tcpstates
