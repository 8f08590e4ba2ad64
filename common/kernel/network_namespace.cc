#include "common/kernel/network_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/kernel/posix_error.h"

namespace tcpstates {

absl::Status RunInNetworkNamespace(const std::string& ns_path, absl::FunctionRef<void()> work) {
  int fd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, absl::StrCat("open ", ns_path));
  absl::Status status;
  std::thread thread([&] {
    if (setns(fd, CLONE_NEWNET) != 0) {
      status = PosixError(errno, absl::StrCat("setns ", ns_path));
      return;
    }
    work();
  });
  thread.join();
  close(fd);
  return status;
}

absl::StatusOr<uint64_t> NetworkNamespaceInode(const std::string& ns_path) {
  struct stat st;
  if (stat(ns_path.c_str(), &st) != 0) return PosixError(errno, absl::StrCat("stat ", ns_path));
  return static_cast<uint64_t>(st.st_ino);
}

}  // namespace tcpstates
