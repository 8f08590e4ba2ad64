/* The bare legacy inet_diag dump of bench/bare_dump.c, for the C++ bench binaries that
 * interleave it with the collections they measure. */
#ifndef TCPSTATES_BENCH_BARE_DUMP_H_
#define TCPSTATES_BENCH_BARE_DUMP_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Index = the kernel's state number (1..12); 0 counts anything else. */
#define BARE_DUMP_STATES 13

/* A NETLINK_SOCK_DIAG socket created inside the namespace at `netns_path` (NULL or "": the
 * caller's); the caller's namespace is restored. -1 with errno on failure. */
int bare_dump_open(const char* netns_path);

/* One legacy dump of states 1..12 on `fd`, adding each socket to counts[state]. 0, or a
 * negative errno. */
int bare_dump_pass(int fd, uint64_t counts[BARE_DUMP_STATES]);

#ifdef __cplusplus
}
#endif

#endif /* TCPSTATES_BENCH_BARE_DUMP_H_ */
