// tcpstates-scale-workload: builds a large TCP socket population (10k .. 1M+) in a private
// network namespace and holds it until stdin closes, for benchmarks and soak runs.
//
//   tcpstates-scale-workload --sockets=1000000 [--established_pct=60 --close_wait_pct=20
//       --time_wait_pct=10 --listen_pct=10 --ipv6_pct=50] [--workers=0] [--churn=0]
//
// It prints, and flushes:
//   netns /proc/<pid>/ns/net
//   workers N
//   expect established=N syn_sent=N ... closing=N     (planned, both families)
//   build_seconds S
//   ready
// then holds the sockets until stdin reaches EOF (or SIGTERM, or its parent dies).
//
// Why it is not tests/workload's tcpstates-workload: that one builds sequentially in one
// process through one listener per kind, which is exact but stops at the fd limit (20000 per
// process here) and at ~28k ephemeral ports per destination. Here:
//  * Worker processes each hold at most RLIMIT_NOFILE's hard limit of sockets.
//  * Every socket binds an address of its own before connecting: IPv4 uses 127.<1+worker>.x.y
//    (all of 127/8 is local), IPv6 uses fd00::<1+worker>:x:y under an AnyIP route
//    ("local fd00::/64 dev lo" + net.ipv6.ip_nonlocal_bind=1), ports 10000..59999. Every
//    4-tuple is unique by construction, so the kernel never searches for an ephemeral port and
//    nothing ever runs out, TIME_WAIT included.
//  * TIME_WAIT lasts 60 s; the parent polls the namespace's tw count (/proc/net/sockstat) four
//    times a second and has the workers rebuild what expired, so the count stays near target.
//  * --churn=R adds a process that opens R connections a second and closes each about a
//    second later (by RST, by a graceful close, or via a brief CLOSE_WAIT), for soak runs.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/command_line/command_line.h"
#include "common/model/snapshot.h"
#include "tests/workload/socket_workload.h"

// The command line (see DefineFlags).
struct Options {
  int sockets = 100000;
  int established_pct = 60;
  int close_wait_pct = 20;
  int time_wait_pct = 10;
  int listen_pct = 10;
  int ipv6_pct = 50;
  int workers = 0;
  bool keep_time_wait = true;
  int churn = 0;
};
Options g;

namespace {

using tcpstates::Family;
using tcpstates::TcpState;

constexpr int kFirstPort = 10000;
constexpr int kPortsPerAddress = 50000;

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

bool WriteFile(const char* path, const std::string& value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  close(fd);
  return ok;
}

void Die(const std::string& what) {
  std::fprintf(stderr, "tcpstates-scale-workload[%d]: %s: %s\n", static_cast<int>(getpid()),
               what.c_str(), std::strerror(errno));
  _exit(1);
}

// Hands out addresses no other socket in the namespace uses: worker-private address blocks,
// then (address, port) in order. `slot` never repeats, so neither does any 4-tuple.
class Addresses {
 public:
  explicit Addresses(int worker) : worker_(worker) {}

  socklen_t Next(Family family, sockaddr_storage* out) {
    uint64_t slot = next_[family == Family::kIpv4 ? 0 : 1]++;
    uint32_t host = static_cast<uint32_t>(slot / kPortsPerAddress) + 1;
    uint16_t port = static_cast<uint16_t>(kFirstPort + slot % kPortsPerAddress);
    std::memset(out, 0, sizeof *out);
    if (family == Family::kIpv4) {
      if (host > 0xfffe) Die("IPv4 address block exhausted");
      auto* in = reinterpret_cast<sockaddr_in*>(out);
      in->sin_family = AF_INET;
      in->sin_port = htons(port);
      in->sin_addr.s_addr = htonl((127u << 24) | ((1u + worker_) << 16) | host);
      return sizeof(sockaddr_in);
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    uint8_t* b = in6->sin6_addr.s6_addr;
    b[0] = 0xfd;  // fd00::<1+worker>:<host>
    b[10] = static_cast<uint8_t>((1 + worker_) >> 8);
    b[11] = static_cast<uint8_t>(1 + worker_);
    b[12] = static_cast<uint8_t>(host >> 24);
    b[13] = static_cast<uint8_t>(host >> 16);
    b[14] = static_cast<uint8_t>(host >> 8);
    b[15] = static_cast<uint8_t>(host);
    return sizeof(sockaddr_in6);
  }

 private:
  int worker_;
  uint64_t next_[2] = {0, 0};
};

int BoundSocket(Addresses* addresses, Family family, sockaddr_storage* address, socklen_t* length) {
  int fd = socket(family == Family::kIpv4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket");
  *length = addresses->Next(family, address);
  if (bind(fd, reinterpret_cast<sockaddr*>(address), *length) != 0) Die("bind");
  return fd;
}

struct Listener {
  int fd = -1;
  sockaddr_storage address{};
  socklen_t length = 0;
};

struct Pair {
  int client;
  int server;
};

void AwaitEof(int fd) {
  char byte;
  for (;;) {
    ssize_t n = read(fd, &byte, 1);
    if (n == 0) return;
    if (n < 0 && errno != EINTR) Die("read");
  }
}

// One worker's sockets. Helper listeners (one per kind and family, made on first use) count
// as LISTEN sockets too; `helpers` says how many exist.
class Worker {
 public:
  explicit Worker(int index) : addresses_(index) {}

  Listener Listen(Family family, int backlog) {
    Listener l;
    l.fd = BoundSocket(&addresses_, family, &l.address, &l.length);
    if (listen(l.fd, backlog) != 0) Die("listen");
    return l;
  }

  Pair Connect(Family family, int kind) {
    Listener& l = helpers_[kind][family == Family::kIpv4 ? 0 : 1];
    if (l.fd < 0) {
      l = Listen(family, 4096);
      ++helper_count_;
    }
    sockaddr_storage address;
    socklen_t length;
    int client = BoundSocket(&addresses_, family, &address, &length);
    if (connect(client, reinterpret_cast<const sockaddr*>(&l.address), l.length) != 0) {
      Die("connect");
    }
    int server = accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (server < 0) Die("accept");
    return {client, server};
  }

  void BuildListen(Family family, int64_t n) {
    for (int64_t i = 0; i < n; ++i) held_.push_back(Listen(family, 8).fd);
  }
  void BuildEstablished(Family family, int64_t pairs) {
    for (int64_t i = 0; i < pairs; ++i) {
      Pair p = Connect(family, 0);
      held_.push_back(p.client);
      held_.push_back(p.server);
    }
  }
  void BuildCloseWait(Family family, int64_t pairs) {
    for (int64_t i = 0; i < pairs; ++i) {
      Pair p = Connect(family, 1);
      // The client's FIN puts the server in CLOSE_WAIT and the client in FIN_WAIT2.
      if (shutdown(p.client, SHUT_WR) != 0) Die("shutdown");
      AwaitEof(p.server);
      held_.push_back(p.client);
      held_.push_back(p.server);
    }
  }
  void BuildTimeWait(Family family, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      Pair p = Connect(family, 2);
      close(p.client);  // active close: the client ends in TIME_WAIT, holding no fd
      AwaitEof(p.server);
      close(p.server);
    }
  }

  Addresses& addresses() { return addresses_; }
  int helper_count() const { return helper_count_; }

 private:
  Addresses addresses_;
  Listener helpers_[4][2];
  int helper_count_ = 0;
  std::vector<int> held_;
};

// Splits `total` over `parts`; part `i` gets its share.
int64_t Share(int64_t total, int parts, int i) { return total / parts + (i < total % parts); }

struct Plan {
  int64_t listen[2], established_pairs[2], close_wait_pairs[2], time_wait[2];
};

Plan MakePlan(int64_t sockets) {
  auto split = [&](int64_t n, int64_t out[2]) {
    out[1] = n * g.ipv6_pct / 100;
    out[0] = n - out[1];
  };
  Plan plan;
  split(sockets * g.listen_pct / 100, plan.listen);
  split(sockets * g.established_pct / 200, plan.established_pairs);
  split(sockets * g.close_wait_pct / 200, plan.close_wait_pairs);
  split(sockets * g.time_wait_pct / 100, plan.time_wait);
  return plan;
}

void SendLine(int fd, const std::string& line) {
  std::string text = line + "\n";
  if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) Die("write");
}

// Reads one '\n'-terminated line (commands and replies are short and written whole).
bool ReadLine(int fd, std::string* line) {
  line->clear();
  char c;
  for (;;) {
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (c == '\n') return true;
    line->push_back(c);
  }
}

// A worker builds its share, reports "built <helper listeners>", then serves "tw N4 N6"
// requests (replying "tw") until its command pipe closes.
[[noreturn]] void RunWorker(int index, int workers, const Plan& plan, int commands, int replies) {
  Worker worker(index);
  for (int f = 0; f < 2; ++f) {
    Family family = f == 0 ? Family::kIpv4 : Family::kIpv6;
    worker.BuildListen(family, Share(plan.listen[f], workers, index));
    worker.BuildEstablished(family, Share(plan.established_pairs[f], workers, index));
    worker.BuildCloseWait(family, Share(plan.close_wait_pairs[f], workers, index));
    worker.BuildTimeWait(family, Share(plan.time_wait[f], workers, index));
  }
  SendLine(replies, absl::StrCat("built ", worker.helper_count()));
  std::string line;
  while (ReadLine(commands, &line)) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    int64_t n4 = 0, n6 = 0;
    if (words.size() == 3 && words[0] == "tw" && absl::SimpleAtoi(words[1], &n4) &&
        absl::SimpleAtoi(words[2], &n6)) {
      worker.BuildTimeWait(Family::kIpv4, n4);
      worker.BuildTimeWait(Family::kIpv6, n6);
      SendLine(replies, "tw");
    }
  }
  _exit(0);
}

// Opens `rate` connections a second and closes each after about a second, a third each by
// RST (no TIME_WAIT), by a graceful client-first close (TIME_WAIT), and after a stay in
// CLOSE_WAIT (the client shuts down first, both close a tick later).
[[noreturn]] void RunChurn(int index, int rate) {
  Worker worker(index);
  struct Open {
    Pair pair;
    double opened;
    int how;
  };
  std::deque<Open> open;
  std::vector<Pair> closing;
  uint64_t made = 0;
  const double start = Now();
  for (;;) {
    for (const Pair& p : closing) {
      close(p.client);
      close(p.server);
    }
    closing.clear();
    const double now = Now();
    while (!open.empty() && now - open.front().opened >= 1.0) {
      Open o = open.front();
      open.pop_front();
      if (o.how == 0) {
        linger abort{1, 0};
        setsockopt(o.pair.client, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
        close(o.pair.client);
        close(o.pair.server);
      } else if (o.how == 1) {
        close(o.pair.client);
        AwaitEof(o.pair.server);
        close(o.pair.server);
      } else {
        shutdown(o.pair.client, SHUT_WR);
        closing.push_back(o.pair);
      }
    }
    const uint64_t due = static_cast<uint64_t>((now - start) * rate);
    for (; made < due; ++made) {
      Family family = made % 2 ? Family::kIpv6 : Family::kIpv4;
      open.push_back({worker.Connect(family, 3), now, static_cast<int>(made % 3)});
    }
    usleep(10000);
  }
}

int64_t SockstatTimeWait() {
  char buffer[1024];
  int fd = open("/proc/net/sockstat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buffer, sizeof buffer - 1);
  close(fd);
  if (n <= 0) return -1;
  buffer[n] = '\0';
  const char* tw = std::strstr(buffer, " tw ");
  return tw ? std::strtoll(tw + 4, nullptr, 10) : -1;
}

void SetUpNamespace(int64_t time_wait) {
  absl::Status status = tcpstates::workload::EnterFreshNetworkNamespace("1024 65535");
  if (!status.ok()) {
    std::fprintf(stderr, "tcpstates-scale-workload: %s\n", status.ToString().c_str());
    std::exit(1);
  }
  // Room for every TIME_WAIT socket plus the churn's, and per-socket IPv6 source addresses.
  const std::string tw_buckets = std::to_string(std::max<int64_t>(2 * time_wait, 262144));
  if (!WriteFile("/proc/sys/net/ipv4/tcp_max_tw_buckets", tw_buckets) ||
      !WriteFile("/proc/sys/net/ipv6/ip_nonlocal_bind", "1")) {
    Die("sysctl");
  }
  if (std::system("ip -6 route add local fd00::/64 dev lo") != 0) {
    std::fprintf(stderr, "tcpstates-scale-workload: ip -6 route add local fd00::/64 failed\n");
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  tcpstates::command_line::Flags flags(
      {.name = "tcpstates-scale-workload",
       .summary = "holds a large TCP socket population for benchmarks",
       .synopsis = "[--sockets=N] [FLAG]..."});
  flags.Int("sockets", &g.sockets, 1, 20000000, "Total sockets to build (TIME_WAIT included).")
      .Int("established_pct", &g.established_pct, 0, 100,
           "Percent of --sockets that are ESTABLISHED (in pairs).")
      .Int("close_wait_pct", &g.close_wait_pct, 0, 100,
           "Percent of --sockets in CLOSE_WAIT/FIN_WAIT2 pairs (half CLOSE_WAIT, half FIN_WAIT2).")
      .Int("time_wait_pct", &g.time_wait_pct, 0, 100,
           "Percent of --sockets in TIME_WAIT, kept topped up.")
      .Int("listen_pct", &g.listen_pct, 0, 100, "Percent of --sockets that are LISTEN.")
      .Int("ipv6_pct", &g.ipv6_pct, 0, 100, "Percent of each kind built as IPv6.")
      .Int("workers", &g.workers, 0, 250,
           "Worker processes (0: as many as the fd hard limit needs, >= 2).")
      .Bool("keep_time_wait", &g.keep_time_wait, "Rebuild TIME_WAIT sockets as they expire.")
      .Int("churn", &g.churn, 0, 1000000,
           "Connections opened (and closed ~1 s later) per second, in addition.");
  if (std::optional<int> exit_code = flags.ParseOrExit(argc, argv)) return *exit_code;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  signal(SIGPIPE, SIG_IGN);

  const Plan plan = MakePlan(g.sockets);
  const int64_t time_wait_target = plan.time_wait[0] + plan.time_wait[1];
  SetUpNamespace(time_wait_target);
  tcpstates::workload::RaiseFileLimit();
  rlimit limit;
  getrlimit(RLIMIT_NOFILE, &limit);
  const int64_t budget = static_cast<int64_t>(limit.rlim_cur) - 64;
  int64_t fds = 0;
  for (int f = 0; f < 2; ++f) {
    fds += plan.listen[f] + 2 * plan.established_pairs[f] + 2 * plan.close_wait_pairs[f];
  }
  const int workers =
      std::max<int>(g.workers > 0 ? g.workers : 2, static_cast<int>((fds + budget - 1) / budget));
  if (workers > 250) {
    std::fprintf(stderr, "tcpstates-scale-workload: %d workers needed, at most 250\n", workers);
    return 1;
  }
  std::printf("netns /proc/%d/ns/net\nworkers %d\n", static_cast<int>(getpid()), workers);
  std::fflush(stdout);

  const double start = Now();
  int replies[2];
  if (pipe2(replies, O_CLOEXEC) != 0) Die("pipe");
  std::vector<int> commands(workers);
  std::vector<pid_t> children;
  for (int i = 0; i < workers; ++i) {
    int command[2];
    if (pipe2(command, O_CLOEXEC) != 0) Die("pipe");
    pid_t pid = fork();
    if (pid < 0) Die("fork");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      close(command[1]);
      close(replies[0]);
      RunWorker(i, workers, plan, command[0], replies[1]);
    }
    close(command[0]);
    commands[i] = command[1];
    children.push_back(pid);
  }
  int helpers = 0;
  std::string line;
  for (int i = 0; i < workers; ++i) {
    int n = 0;
    if (!ReadLine(replies[0], &line) || !absl::SimpleAtoi(line.substr(6), &n)) {
      std::fprintf(stderr, "tcpstates-scale-workload: a worker failed\n");
      for (pid_t pid : children) kill(pid, SIGKILL);
      return 1;
    }
    helpers += n;
  }
  const double built = Now() - start;
  if (g.churn > 0) {
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      RunChurn(workers, g.churn);
    }
    children.push_back(pid);
  }

  tcpstates::StateCounts expected;
  for (int f = 0; f < 2; ++f) {
    expected[TcpState::kListen] += plan.listen[f];
    expected[TcpState::kEstablished] += 2 * plan.established_pairs[f];
    expected[TcpState::kCloseWait] += plan.close_wait_pairs[f];
    expected[TcpState::kFinWait2] += plan.close_wait_pairs[f];
    expected[TcpState::kTimeWait] += plan.time_wait[f];
  }
  expected[TcpState::kListen] += helpers;
  std::printf("expect %s\nbuild_seconds %.1f\nready\n",
              tcpstates::workload::FormatCounts(expected).c_str(), built);
  std::fflush(stdout);

  // Hold until stdin closes; meanwhile replace expired TIME_WAIT sockets. One request round
  // at a time, so a slow rebuild is never requested twice.
  int outstanding = 0;
  for (;;) {
    pollfd fds_to_poll[2] = {{STDIN_FILENO, POLLIN, 0}, {replies[0], POLLIN, 0}};
    int ready = poll(fds_to_poll, 2, 250);
    if (ready < 0 && errno != EINTR) Die("poll");
    if (fds_to_poll[0].revents) {
      char buffer[256];
      if (read(STDIN_FILENO, buffer, sizeof buffer) <= 0) break;
    }
    if (fds_to_poll[1].revents & POLLIN) {
      if (ReadLine(replies[0], &line)) --outstanding;
    }
    if (outstanding > 0 || !g.keep_time_wait) continue;
    const int64_t deficit = time_wait_target - SockstatTimeWait();
    if (deficit <= std::max<int64_t>(time_wait_target / 200, 8)) continue;
    const int64_t v6 = deficit * g.ipv6_pct / 100;
    for (int i = 0; i < workers; ++i) {
      SendLine(commands[i],
               absl::StrCat("tw ", Share(deficit - v6, workers, i), " ", Share(v6, workers, i)));
      ++outstanding;
    }
  }
  for (pid_t pid : children) kill(pid, SIGKILL);
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  return 0;
}
