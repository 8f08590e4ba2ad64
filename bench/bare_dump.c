/* bare_dump: the baseline of the benchmarks. One legacy inet_diag dump (TCPDIAG_GETSOCK: the
 * kernel walks IPv4 and IPv6 together) of TCP states 1..12 - exactly what `ss -tan` and
 * /proc/net/tcp{,6} show, never bit 13 (TCP_BOUND_INACTIVE) - and a count per state. No
 * extensions, no filter, no project code: the least any netlink counter must do, and the same
 * request the project's core sends (common/kernel/netlink_socket_table.cc).
 *
 *   bare_dump [--netns=PATH]... [--repeat=N] [--stdin]
 *
 * One netlink socket per --netns (created inside that namespace, kept for every pass; none
 * given: the caller's). A pass dumps each socket once, in order.
 *   default     one pass; prints the count per state and the total.
 *   --repeat=N  N passes; one line per pass: cpu_s= wall_s= sockets= (CPU of this process,
 *               the kernel's dump work included: it runs in our recvmsg).
 *   --stdin     a pass per line read on stdin, answered with one line "sockets=N" (the
 *               harness times it from outside, like a stdin-triggered tcpstates-execd).
 *
 * Built with BARE_DUMP_NO_MAIN, the functions below serve the C++ bench binaries, which
 * interleave bare passes with the collections they measure.
 */
#define _GNU_SOURCE
#include "bare_dump.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* States 1..12: TCP_ESTABLISHED .. TCP_CLOSING and TCP_NEW_SYN_RECV. Bit 0 and bit 13 up are
 * never asked for. */
#define BARE_STATE_MASK 0x1ffeu

static unsigned char receive_buffer[32768];

int bare_dump_open(const char* netns_path) {
  int back = -1;
  if (netns_path != NULL && netns_path[0] != '\0') {
    back = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int target = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (back < 0 || target < 0 || setns(target, CLONE_NEWNET) != 0) {
      if (target >= 0) close(target);
      if (back >= 0) close(back);
      return -1;
    }
    close(target);
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (back >= 0) {
    if (setns(back, CLONE_NEWNET) != 0) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
    close(back);
  }
  return fd;
}

int bare_dump_pass(int fd, uint64_t counts[BARE_DUMP_STATES]) {
  static uint32_t seq;
  struct {
    struct nlmsghdr header;
    struct inet_diag_req body;
  } request;
  memset(&request, 0, sizeof request);
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = TCPDIAG_GETSOCK;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = ++seq;
  request.body.idiag_family = AF_INET; /* ignored by the legacy request: every family */
  request.body.idiag_states = BARE_STATE_MASK;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, &request, sizeof request, 0, (struct sockaddr*)&kernel, sizeof kernel) < 0) {
    return -errno;
  }
  for (;;) {
    ssize_t n = recv(fd, receive_buffer, sizeof receive_buffer, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EPIPE;
    int length = (int)n;
    for (struct nlmsghdr* h = (struct nlmsghdr*)receive_buffer; NLMSG_OK(h, length);
         h = NLMSG_NEXT(h, length)) {
      if (h->nlmsg_seq != request.header.nlmsg_seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr* e = NLMSG_DATA(h);
        return e->error != 0 ? e->error : -EPROTO;
      }
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
      const struct inet_diag_msg* m = NLMSG_DATA(h);
      ++counts[m->idiag_state < BARE_DUMP_STATES ? m->idiag_state : 0];
    }
  }
}

#ifndef BARE_DUMP_NO_MAIN

static const char* const kStateNames[BARE_DUMP_STATES] = {
    "other", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",   "TIME_WAIT",
    "CLOSE", "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "CLOSING",   "NEW_SYN_RECV"};

static double clock_seconds(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int pass(const int* fds, int n, uint64_t counts[BARE_DUMP_STATES]) {
  memset(counts, 0, BARE_DUMP_STATES * sizeof counts[0]);
  for (int i = 0; i < n; ++i) {
    int error = bare_dump_pass(fds[i], counts);
    if (error != 0) {
      fprintf(stderr, "bare_dump: dump %d: %s\n", i, strerror(-error));
      return -1;
    }
  }
  return 0;
}

static uint64_t total(const uint64_t counts[BARE_DUMP_STATES]) {
  uint64_t sum = 0;
  for (int s = 0; s < BARE_DUMP_STATES; ++s) sum += counts[s];
  return sum;
}

int main(int argc, char** argv) {
  int capacity = argc + 1, n = 0, repeat = 0, from_stdin = 0;
  int* fds = calloc(capacity, sizeof *fds);
  if (fds == NULL) return 1;
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], "--netns=", 8) == 0) {
      if ((fds[n++] = bare_dump_open(argv[i] + 8)) < 0) {
        fprintf(stderr, "bare_dump: %s: %s\n", argv[i] + 8, strerror(errno));
        return 1;
      }
    } else if (strncmp(argv[i], "--repeat=", 9) == 0) {
      repeat = atoi(argv[i] + 9);
    } else if (strcmp(argv[i], "--stdin") == 0) {
      from_stdin = 1;
    } else {
      fprintf(stderr, "usage: bare_dump [--netns=PATH]... [--repeat=N] [--stdin]\n");
      return 2;
    }
  }
  if (n == 0 && (fds[n++] = bare_dump_open(NULL)) < 0) {
    perror("bare_dump: socket");
    return 1;
  }
  uint64_t counts[BARE_DUMP_STATES];
  if (from_stdin) {
    char line[256];
    while (fgets(line, sizeof line, stdin) != NULL) {
      if (pass(fds, n, counts) != 0) return 1;
      printf("sockets=%llu\n", (unsigned long long)total(counts));
      fflush(stdout);
    }
    return 0;
  }
  if (repeat > 0) {
    for (int r = 0; r < repeat; ++r) {
      double cpu = clock_seconds(CLOCK_PROCESS_CPUTIME_ID), wall = clock_seconds(CLOCK_MONOTONIC);
      if (pass(fds, n, counts) != 0) return 1;
      printf("cpu_s=%.6f wall_s=%.6f sockets=%llu\n", clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu,
             clock_seconds(CLOCK_MONOTONIC) - wall, (unsigned long long)total(counts));
    }
    return 0;
  }
  if (pass(fds, n, counts) != 0) return 1;
  for (int s = 1; s < BARE_DUMP_STATES; ++s) {
    if (counts[s] > 0) printf("%-12s %llu\n", kStateNames[s], (unsigned long long)counts[s]);
  }
  if (counts[0] > 0) printf("%-12s %llu\n", kStateNames[0], (unsigned long long)counts[0]);
  printf("%-12s %llu\n", "total", (unsigned long long)total(counts));
  return 0;
}

#endif /* BARE_DUMP_NO_MAIN */
