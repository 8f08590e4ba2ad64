#include "common/kernel/network_namespace.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <system_error>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "common/kernel/posix_error.h"

namespace tcpstates {

absl::Status RunOnOwnThread(absl::FunctionRef<void()> work) {
  std::exception_ptr thrown;
  try {
    std::thread thread([&] {
      try {
        work();
      } catch (...) {
        thrown = std::current_exception();
      }
    });
    thread.join();
  } catch (const std::system_error& e) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot start a thread: ", e.what()));
  }
  if (thrown) std::rethrow_exception(thrown);
  return absl::OkStatus();
}

absl::Status RunInNetworkNamespace(const std::string& ns_path, absl::FunctionRef<void()> work) {
  const int fd = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, absl::StrCat("open ", ns_path));
  absl::Cleanup close_fd = [fd] { close(fd); };  // on an exception from work too
  absl::Status status;
  absl::Status started = RunOnOwnThread([&] {
    if (setns(fd, CLONE_NEWNET) != 0) {
      status = PosixError(errno, absl::StrCat("setns ", ns_path));
      return;
    }
    work();
  });
  return started.ok() ? status : started;
}

absl::StatusOr<uint64_t> NetworkNamespaceInode(const std::string& ns_path) {
  struct stat st;
  if (stat(ns_path.c_str(), &st) != 0) return PosixError(errno, absl::StrCat("stat ", ns_path));
  return static_cast<uint64_t>(st.st_ino);
}

absl::Status BringLoopbackUp() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return PosixError(errno, "socket");
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  absl::Status status;
  if (ioctl(fd, SIOCGIFFLAGS, &request) != 0) {
    status = PosixError(errno, "SIOCGIFFLAGS lo");
  } else {
    request.ifr_flags |= IFF_UP;
    if (ioctl(fd, SIOCSIFFLAGS, &request) != 0) status = PosixError(errno, "SIOCSIFFLAGS lo");
  }
  close(fd);
  return status;
}

}  // namespace tcpstates
