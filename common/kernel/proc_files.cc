#include "common/kernel/proc_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/kernel/posix_error.h"

namespace tcpstates {

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, absl::StrCat("open ", path));
  std::string text;
  char buffer[4096];
  absl::Status status;
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = PosixError(errno, absl::StrCat("read ", path));
      break;
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > limit) {
      status = absl::OutOfRangeError(absl::StrCat(path, " is larger than ", limit, " bytes"));
      break;
    }
    text.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  if (!status.ok()) return status;
  return text;
}

std::optional<int64_t> ReadNumberFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadSmallFile(path, 4096);
  int64_t value;
  if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &value)) {
    return std::nullopt;
  }
  return value;
}

ProcRoot ProcRoot::WithNetOf(int pid) const {
  ProcRoot root = *this;
  root.net_dir_ = absl::StrCat(dir_, "/", pid, "/net");
  return root;
}

std::string ProcRoot::Net(absl::string_view name) const {
  return absl::StrCat(net_dir_, "/", name);
}

std::string ProcRoot::Ipv4Sysctl(absl::string_view name) const {
  return absl::StrCat(dir_, "/sys/net/ipv4/", name);
}

std::string ProcRoot::Process(int pid, absl::string_view name) const {
  return name.empty() ? absl::StrCat(dir_, "/", pid) : absl::StrCat(dir_, "/", pid, "/", name);
}

std::string ProcRoot::Self(absl::string_view name) const {
  return absl::StrCat(dir_, "/self/", name);
}

}  // namespace tcpstates
