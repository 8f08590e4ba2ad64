// Reading the kernel's small text files (/proc/net/snmp, sysctls, /proc/PID/comm, cgroup
// files, mountinfo): one reader for all of them, with one behaviour. Everything under
// /proc is reached through a ProcRoot, so tests point the whole core at a fake tree.
#ifndef TCPSTATES_COMMON_KERNEL_PROC_FILES_H_
#define TCPSTATES_COMMON_KERNEL_PROC_FILES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tcpstates {

// Reads the file at `path` whole, up to `limit` bytes (more is OutOfRange: these files are
// small, and a huge one is not what we meant to read). EINTR is retried; any other failure
// is the errno's status (NotFound, PermissionDenied, ...), naming the path.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t limit = 1 << 20);

// A sysctl or similar one-number file; nullopt when unreadable or not a number.
std::optional<int64_t> ReadNumberFile(const std::string& path);

// Where /proc is: "/proc" normally, a fake tree in tests.
class ProcRoot {
 public:
  ProcRoot() : dir_("/proc"), net_dir_("/proc/net") {}
  explicit ProcRoot(std::string dir) : dir_(std::move(dir)), net_dir_(dir_ + "/net") {}
  // The same /proc, with the net/ files of the network namespace process `pid` is in
  // (/proc/PID/net: another namespace's tables and counters, readable without entering it).
  ProcRoot WithNetOf(int pid) const;
  const std::string& dir() const { return dir_; }
  // "<net dir>/<name>": tcp, tcp6, snmp, sockstat, netstat.
  std::string Net(absl::string_view name) const;
  // "<dir>/sys/net/ipv4/<name>".
  std::string Ipv4Sysctl(absl::string_view name) const;
  // "<dir>/<pid>/<name>" (name may be empty for the directory itself).
  std::string Process(int pid, absl::string_view name) const;
  // "<dir>/self/<name>".
  std::string Self(absl::string_view name) const;

 private:
  std::string dir_;
  std::string net_dir_;
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_KERNEL_PROC_FILES_H_
