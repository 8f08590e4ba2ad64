#include "tests/workload/socket_workload.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/kernel/network_namespace.h"
#include "common/kernel/posix_error.h"

namespace tcpstates::workload {
namespace {

absl::Status WriteSysctl(const char* path, absl::string_view value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, path);
  ssize_t n = write(fd, value.data(), value.size());
  int error = errno;
  close(fd);
  if (n != static_cast<ssize_t>(value.size())) return PosixError(error, path);
  return absl::OkStatus();
}

struct Endpoint {
  sockaddr_storage address{};
  socklen_t length = 0;
};

Endpoint Loopback(Family family) {
  Endpoint e;
  if (family == Family::kIpv4) {
    auto* in = reinterpret_cast<sockaddr_in*>(&e.address);
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    e.length = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&e.address);
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    e.length = sizeof(sockaddr_in6);
  }
  return e;
}

int DomainOf(Family family) { return family == Family::kIpv4 ? AF_INET : AF_INET6; }

// A listening socket on an ephemeral loopback port; `endpoint` receives its address.
absl::StatusOr<int> Listen(Family family, int backlog, bool defer_accept, Endpoint* endpoint) {
  int fd = socket(DomainOf(family), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return PosixError(errno, "socket");
  *endpoint = Loopback(family);
  if (family == Family::kIpv6) {
    int one = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (defer_accept) {
    int seconds = 3600;  // far longer than any test: the request sockets stay in SYN_RECV
    if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds) != 0) {
      close(fd);
      return PosixError(errno, "TCP_DEFER_ACCEPT");
    }
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&endpoint->address), endpoint->length) != 0 ||
      listen(fd, backlog) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&endpoint->address), &endpoint->length) != 0) {
    int error = errno;
    close(fd);
    return PosixError(error, "bind/listen");
  }
  return fd;
}

absl::StatusOr<int> Connect(Family family, const Endpoint& endpoint) {
  int fd = socket(DomainOf(family), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return PosixError(errno, "socket");
  if (connect(fd, reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.length) != 0) {
    int error = errno;
    close(fd);
    return PosixError(error, "connect");
  }
  return fd;
}

struct Pair {
  int client;
  int server;
};

// `count` connected pairs through one new listener (kept, so it counts as LISTEN).
absl::Status ConnectPairs(Family family, int count, Holdings* holdings, std::vector<Pair>* pairs) {
  Endpoint endpoint;
  absl::StatusOr<int> listener = Listen(family, count + 16, false, &endpoint);
  if (!listener.ok()) return listener.status();
  holdings->fds.push_back(*listener);
  ++holdings->expected[TcpState::kListen];
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<int> client = Connect(family, endpoint);
    if (!client.ok()) return client.status();
    int server = accept4(*listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (server < 0) {
      close(*client);
      return PosixError(errno, "accept");
    }
    pairs->push_back({*client, server});
  }
  return absl::OkStatus();
}

// ConnectPairs, with both ends of every pair held (closed with the holdings).
absl::Status ConnectHeldPairs(Family family, int count, Holdings* holdings,
                              std::vector<Pair>* pairs) {
  absl::Status status = ConnectPairs(family, count, holdings, pairs);
  for (const Pair& p : *pairs) {
    holdings->fds.push_back(p.client);
    holdings->fds.push_back(p.server);
  }
  return status;
}

// Waits until the peer's FIN has arrived (read returns 0).
absl::Status AwaitEof(int fd) {
  char byte;
  for (;;) {
    ssize_t n = read(fd, &byte, 1);
    if (n == 0) return absl::OkStatus();
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "read");
  }
}

// Waits until the listener's accept queue holds `length` connections (TCP_INFO reports a
// listener's queue length in tcpi_unacked).
absl::Status AwaitAcceptQueue(int listener, uint32_t length) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    tcp_info info{};
    socklen_t size = sizeof info;
    if (getsockopt(listener, IPPROTO_TCP, TCP_INFO, &info, &size) != 0) {
      return PosixError(errno, "TCP_INFO");
    }
    if (info.tcpi_unacked >= length) return absl::OkStatus();
    usleep(1000);
  }
  return absl::DeadlineExceededError("the accept queue did not fill");
}

// `count` clients stuck in SYN_SENT: a backlog-0 listener's accept queue takes one
// connection, which is never accepted; every later SYN finds the queue full and is dropped,
// and the client keeps retrying.
absl::Status BuildSynSent(Family family, int count, Holdings* holdings) {
  Endpoint endpoint;
  absl::StatusOr<int> listener = Listen(family, 0, false, &endpoint);
  if (!listener.ok()) return listener.status();
  holdings->fds.push_back(*listener);
  absl::StatusOr<int> first = Connect(family, endpoint);
  if (!first.ok()) return first.status();
  holdings->fds.push_back(*first);
  if (absl::Status status = AwaitAcceptQueue(*listener, 1); !status.ok()) return status;
  for (int i = 0; i < count; ++i) {
    int fd = socket(DomainOf(family), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return PosixError(errno, "socket");
    holdings->fds.push_back(fd);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.length) == 0 ||
        errno != EINPROGRESS) {
      return PosixError(errno, "connect to a full listener did not stay in progress");
    }
  }
  holdings->expected[TcpState::kListen] += 1;
  holdings->expected[TcpState::kEstablished] += 2;  // the queued connection, both ends
  holdings->expected[TcpState::kSynSent] += count;
  return absl::OkStatus();
}

// `count` sockets bound to an ephemeral loopback port and nothing more: a client that binds
// its source address before connecting, or a port reservation. Kernels since 6.8 can report
// them (TCP_BOUND_INACTIVE) when asked; /proc and `ss -tan` never show them.
absl::Status BuildBoundOnly(Family family, int count, Holdings* holdings) {
  for (int i = 0; i < count; ++i) {
    int fd = socket(DomainOf(family), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return PosixError(errno, "socket");
    holdings->fds.push_back(fd);
    Endpoint endpoint = Loopback(family);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.length) != 0) {
      return PosixError(errno, "bind");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EnterFreshNetworkNamespace(absl::string_view port_range) {
  if (unshare(CLONE_NEWNET) != 0) return PosixError(errno, "unshare(CLONE_NEWNET)");
  absl::Status status = BringLoopbackUp();
  if (!status.ok()) return status;
  // Active closes must leave TIME_WAIT sockets, and big populations need big backlogs.
  for (auto [path, value] : {std::pair{"/proc/sys/net/ipv4/tcp_tw_reuse", "0"},
                             std::pair{"/proc/sys/net/core/somaxconn", "65535"},
                             std::pair{"/proc/sys/net/ipv4/tcp_max_syn_backlog", "65535"},
                             std::pair{"/proc/sys/net/ipv4/tcp_syn_retries", "127"}}) {
    status = WriteSysctl(path, value);
    if (!status.ok()) return status;
  }
  if (!port_range.empty()) {
    return WriteSysctl("/proc/sys/net/ipv4/ip_local_port_range", port_range);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> StartCloseWaitHolder(const std::string& name, int count, Family family,
                                         const std::string& cgroup_dir) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return PosixError(errno, "pipe");
  pid_t pid = fork();
  if (pid < 0) return PosixError(errno, "fork");
  if (pid == 0) {
    close(ready[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, name.c_str());
    if (!cgroup_dir.empty() &&
        !WriteSysctl((cgroup_dir + "/cgroup.procs").c_str(), std::to_string(getpid())).ok()) {
      _exit(1);
    }
    Spec spec;
    spec.close_wait = count;
    Holdings holdings;
    if (!Build(spec, family, &holdings).ok()) _exit(1);
    char ok = 1;
    if (write(ready[1], &ok, 1) != 1) _exit(1);
    close(ready[1]);
    for (;;) pause();
  }
  close(ready[1]);
  char ok = 0;
  ssize_t n;
  do {
    n = read(ready[0], &ok, 1);
  } while (n < 0 && errno == EINTR);
  close(ready[0]);
  if (n != 1 || ok != 1) return absl::InternalError("CLOSE_WAIT holder failed to start");
  return pid;
}

void RaiseFileLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

absl::Status Build(const Spec& spec, Family family, Holdings* holdings) {
  StateCounts& expected = holdings->expected;
  for (int i = 0; i < spec.listen; ++i) {
    Endpoint endpoint;
    absl::StatusOr<int> fd = Listen(family, 16, false, &endpoint);
    if (!fd.ok()) return fd.status();
    holdings->fds.push_back(*fd);
    ++expected[TcpState::kListen];
  }

  if (spec.established > 0) {
    std::vector<Pair> pairs;
    absl::Status status = ConnectHeldPairs(family, spec.established, holdings, &pairs);
    if (!status.ok()) return status;
    expected[TcpState::kEstablished] += 2 * pairs.size();
  }

  if (spec.close_wait > 0) {
    std::vector<Pair> pairs;
    absl::Status status = ConnectHeldPairs(family, spec.close_wait, holdings, &pairs);
    if (!status.ok()) return status;
    for (const Pair& p : pairs) {
      // The client's FIN puts the server in CLOSE_WAIT; the client, still open, waits in
      // FIN_WAIT2 for a FIN that the server never sends.
      if (shutdown(p.client, SHUT_WR) != 0) return PosixError(errno, "shutdown");
      status = AwaitEof(p.server);
      if (!status.ok()) return status;
    }
    expected[TcpState::kCloseWait] += pairs.size();
    expected[TcpState::kFinWait2] += pairs.size();
  }

  if (spec.time_wait > 0) {
    std::vector<Pair> pairs;
    absl::Status status = ConnectPairs(family, spec.time_wait, holdings, &pairs);
    for (const Pair& p : pairs) {
      // Active close by the client: it ends in TIME_WAIT once the server closes too.
      close(p.client);
      if (status.ok()) status = AwaitEof(p.server);
      close(p.server);
    }
    if (!status.ok()) return status;
    expected[TcpState::kTimeWait] += pairs.size();
  }

  if (spec.orphan_fin_wait2 > 0) {
    std::vector<Pair> pairs;
    absl::Status status = ConnectPairs(family, spec.orphan_fin_wait2, holdings, &pairs);
    for (const Pair& p : pairs) {
      holdings->fds.push_back(p.server);
      close(p.client);  // orphaned: FIN_WAIT2 without a file, once the server ACKs the FIN
      if (status.ok()) status = AwaitEof(p.server);
    }
    if (!status.ok()) return status;
    expected[TcpState::kCloseWait] += pairs.size();
    expected[TcpState::kFinWait2] += pairs.size();
  }

  if (spec.syn_recv > 0) {
    Endpoint endpoint;
    absl::StatusOr<int> listener = Listen(family, spec.syn_recv + 16, true, &endpoint);
    if (!listener.ok()) return listener.status();
    holdings->fds.push_back(*listener);
    ++expected[TcpState::kListen];
    for (int i = 0; i < spec.syn_recv; ++i) {
      // The handshake completes for the client, but with TCP_DEFER_ACCEPT the server keeps
      // a request socket until data arrives, and none ever does.
      absl::StatusOr<int> client = Connect(family, endpoint);
      if (!client.ok()) return client.status();
      holdings->fds.push_back(*client);
    }
    expected[TcpState::kSynRecv] += spec.syn_recv;
    expected[TcpState::kEstablished] += spec.syn_recv;
  }

  if (spec.syn_sent > 0) {
    if (absl::Status status = BuildSynSent(family, spec.syn_sent, holdings); !status.ok()) {
      return status;
    }
  }
  return BuildBoundOnly(family, spec.bound_only, holdings);
}

std::string FormatCounts(const StateCounts& counts) {
  std::string out;
  for (TcpState state : kAllStates) {
    absl::StrAppend(&out, out.empty() ? "" : " ", MetricName(state), "=", counts[state]);
  }
  return out;
}

}  // namespace tcpstates::workload
