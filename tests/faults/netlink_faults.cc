// An LD_PRELOAD library for tests: makes NETLINK_SOCK_DIAG fail the ways kernels and locked-down
// containers make it fail, chosen by environment variables, so that the programs' fallbacks can
// be tested through the real binaries (tests/integration/faults.py sets it up). Other sockets
// are untouched. Every variable is optional; errno values are numbers (13 = EACCES).
//
//   TCPSTATES_FAULT_SOCKET=E        socket(AF_NETLINK, ..., NETLINK_SOCK_DIAG) fails with errno E
//   TCPSTATES_FAULT_LEGACY=E        a legacy TCPDIAG_GETSOCK request is not sent; the next receive
//                                   gets the NLMSG_ERROR -E a kernel without it answers
//   TCPSTATES_FAULT_DUMP=N:R:E      the Nth sock_diag request of the process (1-based; 0: every
//                                   one) fails at its Rth receive with errno E: R=1 before any
//                                   socket is delivered (a refused dump), R>1 part-way through
//   TCPSTATES_FAULT_RECV_DELAY_MS=D every sock_diag receive first sleeps D ms (a slow gather)
//   TCPSTATES_FAULT_WHILE=PATH      the three faults above apply only while PATH exists
//   TCPSTATES_FAULT_LOG=PATH        appends "<CLOCK_MONOTONIC ns> request|recv|fail ..." lines
//
// Written against the C library only (no C++ runtime): it is loaded into collectd too.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace {

struct Config {
  int socket_errno = 0;
  int legacy_errno = 0;
  long dump_number = -1;  // -1: no dump fault
  long dump_recv = 0;
  int dump_errno = 0;
  long recv_delay_ms = 0;
  const char* while_path = nullptr;
  const char* log = nullptr;
};

Config config;

constexpr int kMaxFd = 4096;
struct FdState {
  long receives = 0;     // receives since this fd's last request
  bool failing = false;  // this fd's current request is the one to fail
  bool legacy_refused = false;
  nlmsghdr refused_request{};
};
FdState fds[kMaxFd];
long requests = 0;
pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;

int EnvInt(const char* name) {
  const char* value = getenv(name);
  return value ? atoi(value) : 0;
}

__attribute__((constructor)) void LoadConfig() {
  config.socket_errno = EnvInt("TCPSTATES_FAULT_SOCKET");
  config.legacy_errno = EnvInt("TCPSTATES_FAULT_LEGACY");
  config.recv_delay_ms = EnvInt("TCPSTATES_FAULT_RECV_DELAY_MS");
  config.log = getenv("TCPSTATES_FAULT_LOG");
  config.while_path = getenv("TCPSTATES_FAULT_WHILE");
  if (const char* dump = getenv("TCPSTATES_FAULT_DUMP")) {
    if (sscanf(dump, "%ld:%ld:%d", &config.dump_number, &config.dump_recv, &config.dump_errno) !=
        3) {
      fprintf(stderr, "netlink_faults: TCPSTATES_FAULT_DUMP=%s is not N:R:E\n", dump);
      abort();
    }
  }
}

template <typename F>
F Real(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

void Log(const char* format, ...) {
  if (config.log == nullptr) return;
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  char line[256];
  int n = snprintf(line, sizeof line, "%lld ",
                   static_cast<long long>(now.tv_sec) * 1000000000LL + now.tv_nsec);
  va_list args;
  va_start(args, format);
  n += vsnprintf(line + n, sizeof line - n, format, args);
  va_end(args);
  if (n >= static_cast<int>(sizeof line) - 1) n = sizeof line - 2;
  line[n++] = '\n';
  const int fd = open(config.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t ignored = write(fd, line, n);
  (void)ignored;
  close(fd);
}

bool Active() { return config.while_path == nullptr || access(config.while_path, F_OK) == 0; }

bool IsSockDiag(int fd) {
  if (fd < 0 || fd >= kMaxFd) return false;
  int domain = 0, protocol = 0;
  socklen_t length = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0) return false;
  length = sizeof protocol;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &length) != 0) return false;
  return domain == AF_NETLINK && protocol == NETLINK_SOCK_DIAG;
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) {
  static auto real = Real<int (*)(int, int, int)>("socket");
  if (domain == AF_NETLINK && protocol == NETLINK_SOCK_DIAG && config.socket_errno && Active()) {
    Log("fail socket errno=%d", config.socket_errno);
    errno = config.socket_errno;
    return -1;
  }
  return real(domain, type, protocol);
}

ssize_t sendto(int fd, const void* buffer, size_t length, int flags, const sockaddr* address,
               socklen_t address_length) {
  static auto real =
      Real<ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t)>("sendto");
  if (length < sizeof(nlmsghdr) || !IsSockDiag(fd)) {
    return real(fd, buffer, length, flags, address, address_length);
  }
  nlmsghdr header;
  memcpy(&header, buffer, sizeof header);
  const bool active = Active();
  pthread_mutex_lock(&mutex);
  const long number = ++requests;
  FdState& state = fds[fd];
  state.receives = 0;
  state.failing = active && (config.dump_number == 0 || config.dump_number == number);
  state.legacy_refused = active && header.nlmsg_type == TCPDIAG_GETSOCK && config.legacy_errno != 0;
  if (state.legacy_refused) state.refused_request = header;
  pthread_mutex_unlock(&mutex);
  Log("request %ld type=%s", number, header.nlmsg_type == TCPDIAG_GETSOCK ? "legacy" : "by-family");
  if (state.legacy_refused) return static_cast<ssize_t>(length);  // "sent"; answered below
  return real(fd, buffer, length, flags, address, address_length);
}

ssize_t recvmsg(int fd, msghdr* message, int flags) {
  static auto real = Real<ssize_t (*)(int, msghdr*, int)>("recvmsg");
  if (!IsSockDiag(fd)) return real(fd, message, flags);
  if (config.recv_delay_ms > 0) {
    timespec delay{config.recv_delay_ms / 1000, (config.recv_delay_ms % 1000) * 1000000};
    while (nanosleep(&delay, &delay) != 0) {
    }
  }
  FdState& state = fds[fd];
  pthread_mutex_lock(&mutex);
  if (state.legacy_refused) {
    // What a kernel without the legacy interface sends: NLMSG_ERROR carrying -errno and the
    // request's header.
    state.legacy_refused = false;
    struct {
      nlmsghdr header;
      nlmsgerr error;
    } reply{};
    reply.header.nlmsg_len = sizeof reply;
    reply.header.nlmsg_type = NLMSG_ERROR;
    reply.header.nlmsg_seq = state.refused_request.nlmsg_seq;
    reply.error.error = -config.legacy_errno;
    reply.error.msg = state.refused_request;
    pthread_mutex_unlock(&mutex);
    const size_t n =
        message->msg_iov[0].iov_len < sizeof reply ? message->msg_iov[0].iov_len : sizeof reply;
    memcpy(message->msg_iov[0].iov_base, &reply, n);
    message->msg_flags = n < sizeof reply ? MSG_TRUNC : 0;
    Log("refuse legacy errno=%d", config.legacy_errno);
    return static_cast<ssize_t>(n);
  }
  const long receive = ++state.receives;
  const bool fail = state.failing && config.dump_number >= 0 && receive == config.dump_recv;
  if (fail) state.failing = false;
  pthread_mutex_unlock(&mutex);
  if (fail) {
    Log("fail recv %ld errno=%d", receive, config.dump_errno);
    errno = config.dump_errno;
    return -1;
  }
  const ssize_t received = real(fd, message, flags);
  Log("recv %ld bytes=%zd", receive, received);
  return received;
}

}  // extern "C"
