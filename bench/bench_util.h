// Small helpers shared by the benchmark programs: entering a network namespace and reading
// this process's own resource use from /proc.
#ifndef TCPSTATES_BENCH_BENCH_UTIL_H_
#define TCPSTATES_BENCH_BENCH_UTIL_H_

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace tcpstates::bench {

// Moves the calling thread (the only one) into the namespace at `path`; empty: stays.
inline bool EnterNetns(const std::string& path) {
  if (path.empty()) return true;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = setns(fd, CLONE_NEWNET) == 0;
  close(fd);
  return ok;
}

inline double MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// User + system time of this process.
inline double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Open file descriptors, not counting the one used to list them.
inline int OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;
}

// A "VmRSS"/"VmHWM"-style field of /proc/self/status, in KiB.
inline int64_t StatusKib(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "re");
  if (f == nullptr) return -1;
  char line[256];
  int64_t value = -1;
  const size_t length = std::strlen(field);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, field, length) == 0 && line[length] == ':') {
      value = std::strtoll(line + length + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return value;
}

}  // namespace tcpstates::bench

#endif  // TCPSTATES_BENCH_BENCH_UTIL_H_
