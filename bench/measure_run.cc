// tcpstates-bench-run: runs a command N times and prints, per run, what it cost:
//
//   tcpstates-bench-run [--netns=/proc/PID/ns/net] [--repeat=N] [--stdout=FILE] -- CMD ARGS...
//   -> "wall_s=0.012345 user_s=0.004000 sys_s=0.008000 maxrss_kb=5120 status=0" per run
//
// Why not GNU time or Python's wait4: the kernel folds the pre-exec memory of the child
// (fork of the measuring process, or the parent's whole mm after vfork) into ru_maxrss at
// exec, so a Python launcher reports >= 10 MB for everything. This launcher is small, uses
// plain fork, and touches little memory, so the child's pre-exec RSS stays far below
// anything measured. CPU is user + system of the command and its waited-for children (a
// `sh -c 'a | b'` pipeline counts both); maxrss is the largest single process.
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

double Seconds(const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int Usage() {
  std::fprintf(stderr,
               "usage: tcpstates-bench-run [--netns=PATH] [--repeat=N] [--stdout=FILE] -- CMD "
               "ARGS...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const char* netns = nullptr;
  const char* out = "/dev/null";
  int repeat = 1;
  int i = 1;
  for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
    if (std::strncmp(argv[i], "--netns=", 8) == 0) {
      netns = argv[i] + 8;
    } else if (std::strncmp(argv[i], "--repeat=", 9) == 0) {
      repeat = std::atoi(argv[i] + 9);
    } else if (std::strncmp(argv[i], "--stdout=", 9) == 0) {
      out = argv[i] + 9;
    } else {
      return Usage();
    }
  }
  if (i + 1 >= argc || repeat < 1) return Usage();
  char** command = argv + i + 1;

  if (netns != nullptr) {
    // Enter once here, so the measured command itself pays nothing for it.
    int fd = open(netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      std::perror(netns);
      return 1;
    }
    close(fd);
  }
  for (int run = 0; run < repeat; ++run) {
    const double start = Now();
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      return 1;
    }
    if (pid == 0) {
      int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0) _exit(126);
      execvp(command[0], command);
      _exit(127);
    }
    int status = 0;
    rusage usage{};
    if (wait4(pid, &status, 0, &usage) != pid) {
      std::perror("wait4");
      return 1;
    }
    const double wall = Now() - start;
    std::printf("wall_s=%.6f user_s=%.6f sys_s=%.6f maxrss_kb=%ld status=%d\n", wall,
                Seconds(usage.ru_utime), Seconds(usage.ru_stime), usage.ru_maxrss,
                WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    std::fflush(stdout);
  }
  return 0;
}
