#include "common/diagnosis/process_table.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tcpstates {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountPath(absl::string_view path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '\\' && i + 3 < path.size()) {
      int value = 0;
      bool octal = true;
      for (size_t j = 1; j <= 3; ++j) {
        const char c = path[i + j];
        octal = octal && c >= '0' && c <= '7';
        value = value * 8 + (c - '0');
      }
      if (octal) {
        out.push_back(static_cast<char>(value));
        i += 3;
        continue;
      }
    }
    out.push_back(path[i]);
  }
  return out;
}

// One mountinfo line: "id parent dev root mount_point options [optional...] - fstype source
// super_options".
struct MountLine {
  std::string mount_point;
  absl::string_view fstype;
  absl::string_view super_options;
};

std::optional<MountLine> ParseMountLine(absl::string_view line) {
  const size_t separator = line.find(" - ");
  if (separator == absl::string_view::npos) return std::nullopt;
  std::vector<absl::string_view> before = absl::StrSplit(line.substr(0, separator), ' ');
  std::vector<absl::string_view> after = absl::StrSplit(line.substr(separator + 3), ' ');
  if (before.size() < 5 || after.size() < 3) return std::nullopt;
  return MountLine{UnescapeMountPath(before[4]), after[0], after[2]};
}

// Parses "socket:[12345]".
bool SocketInode(absl::string_view link, uint64_t* inode) {
  if (!absl::ConsumePrefix(&link, "socket:[") || !absl::ConsumeSuffix(&link, "]")) return false;
  return absl::SimpleAtoi(link, inode);
}

// A mount point in mountinfo may be covered by a later mount (a fresh sysfs over /sys hides
// /sys/fs/cgroup): only a path that is the cgroup v2 filesystem itself will do.
bool IsCgroup2(const std::string& path) {
  constexpr decltype(statfs::f_type) kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC
  struct statfs fs;
  return statfs(path.c_str(), &fs) == 0 && fs.f_type == kCgroup2Magic;
}

constexpr size_t kMaxCgroups = 100000;

}  // namespace

std::optional<std::string> FindCgroup2Mount(absl::string_view mountinfo) {
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    std::optional<MountLine> mount = ParseMountLine(line);
    if (mount && mount->fstype == "cgroup2") return mount->mount_point;
  }
  return std::nullopt;
}

bool ProcHidesProcesses(absl::string_view mountinfo, absl::string_view proc_dir) {
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
    std::optional<MountLine> mount = ParseMountLine(line);
    if (!mount || mount->fstype != "proc" || mount->mount_point != proc_dir) continue;
    for (absl::string_view option : absl::StrSplit(mount->super_options, ',')) {
      if (absl::ConsumePrefix(&option, "hidepid=") && option != "0" && option != "off") {
        return true;
      }
    }
  }
  return false;
}

CgroupTree::CgroupTree(ProcRoot proc, std::string mount)
    : proc_(std::move(proc)), mount_(std::move(mount)), looked_up_(!mount_.empty()) {}

namespace {

std::optional<int> ParentOf(const ProcRoot& proc, int pid) {
  absl::StatusOr<std::string> stat = ReadSmallFile(proc.Process(pid, "stat"), 4096);
  if (!stat.ok()) return std::nullopt;
  // "pid (comm) state ppid ...": comm may hold anything, so read after its last ')'.
  const size_t close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(close + 1), ' ', absl::SkipEmpty());
  int parent;
  if (fields.size() < 2 || !absl::SimpleAtoi(fields[1], &parent) || parent <= 0) {
    return std::nullopt;
  }
  return parent;
}

}  // namespace

const std::string& CgroupTree::Mount() {
  if (looked_up_) return mount_;
  looked_up_ = true;
  absl::StatusOr<std::string> mine = ReadSmallFile(proc_.Self("mountinfo"));
  if (mine.ok()) {
    std::optional<std::string> mount = FindCgroup2Mount(*mine);
    if (mount && IsCgroup2(*mount)) return mount_ = *mount;
  }
  // Through another process's root: init's, else (where init's root is out of reach) an
  // ancestor's - `ip netns exec` leaves its caller in the original mount namespace.
  std::vector<int> candidates = {1};
  for (std::optional<int> pid = ParentOf(proc_, getpid()); pid && candidates.size() < 16;
       pid = ParentOf(proc_, *pid)) {
    if (*pid != 1) candidates.push_back(*pid);
  }
  for (int pid : candidates) {
    absl::StatusOr<std::string> theirs = ReadSmallFile(proc_.Process(pid, "mountinfo"));
    std::optional<std::string> mount = theirs.ok() ? FindCgroup2Mount(*theirs) : std::nullopt;
    const std::string through_root = mount ? proc_.Process(pid, "root") + *mount : "";
    if (mount && IsCgroup2(through_root)) return mount_ = through_root;
  }
  return mount_;
}

std::string CgroupTree::PathOf(uint64_t cgroup_id) {
  if (auto it = paths_.find(cgroup_id); it != paths_.end()) return it->second;
  const std::string& root = Mount();
  if (root.empty()) return {};
  paths_.clear();
  struct stat st;
  if (stat(root.c_str(), &st) == 0) paths_.emplace(static_cast<uint64_t>(st.st_ino), "");
  // Depth first over directories only. On the cgroup filesystem a directory entry's d_ino is
  // the child cgroup's id, so no stat per cgroup is needed.
  std::vector<std::string> pending = {""};
  while (!pending.empty() && paths_.size() < kMaxCgroups) {
    const std::string relative = std::move(pending.back());
    pending.pop_back();
    DIR* dir = opendir((root + relative).c_str());
    if (dir == nullptr) continue;
    while (dirent* entry = readdir(dir)) {
      if (entry->d_type != DT_DIR || entry->d_name[0] == '.') continue;
      std::string child = absl::StrCat(relative, "/", entry->d_name);
      paths_.emplace(static_cast<uint64_t>(entry->d_ino), child);
      pending.push_back(std::move(child));
    }
    closedir(dir);
  }
  auto it = paths_.find(cgroup_id);
  return it == paths_.end() ? std::string() : it->second;
}

std::vector<int> CgroupTree::ProcessesOf(uint64_t cgroup_id) {
  std::vector<int> pids;
  const std::string path = PathOf(cgroup_id);
  if (path.empty() && !paths_.contains(cgroup_id)) return pids;
  absl::StatusOr<std::string> procs = ReadSmallFile(absl::StrCat(Mount(), path, "/cgroup.procs"));
  if (!procs.ok()) return pids;
  for (absl::string_view line : absl::StrSplit(*procs, '\n', absl::SkipEmpty())) {
    int pid;
    if (absl::SimpleAtoi(line, &pid) && pid >= 0) pids.push_back(pid);
  }
  return pids;
}

std::string CgroupPathOf(const ProcRoot& proc, int pid) {
  absl::StatusOr<std::string> cgroups = ReadSmallFile(proc.Process(pid, "cgroup"), 64 * 1024);
  if (!cgroups.ok()) return {};
  for (absl::string_view line : absl::StrSplit(*cgroups, '\n')) {
    if (absl::ConsumePrefix(&line, "0::")) return std::string(line);
  }
  return {};
}

std::string UnitOf(const ProcRoot& proc, int pid) {
  const std::string cgroup_path = CgroupPathOf(proc, pid);
  absl::string_view path = cgroup_path;
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

std::string CommOf(const ProcRoot& proc, int pid) {
  absl::StatusOr<std::string> comm = ReadSmallFile(proc.Process(pid, "comm"), 256);
  if (!comm.ok()) return {};
  if (!comm->empty() && comm->back() == '\n') comm->pop_back();  // the kernel's, not the name's
  return *std::move(comm);
}

std::vector<int> VisiblePids(const ProcRoot& proc) {
  std::vector<int> pids;
  if (DIR* dir = opendir(proc.dir().c_str())) {
    while (dirent* entry = readdir(dir)) {
      int pid;
      if (absl::SimpleAtoi(entry->d_name, &pid) && pid > 0) pids.push_back(pid);
    }
    closedir(dir);
  }
  return pids;
}

FdScan ScanSocketFds(const ProcRoot& proc, int pid, int from_fd, size_t* fd_budget,
                     absl::FunctionRef<bool(int fd, uint64_t inode)> on_socket) {
  FdScan scan;
  DIR* dir = opendir(proc.Process(pid, "fd").c_str());
  if (dir == nullptr) {
    scan.error = errno;
    switch (errno) {
      case ENOENT:
      case ESRCH:
        scan.outcome = FdScan::Outcome::kGone;
        break;
      case EACCES:
      case EPERM:
        scan.outcome = FdScan::Outcome::kUnreadable;
        break;
      default:
        scan.outcome = FdScan::Outcome::kFailed;
    }
    return scan;
  }
  const int dir_fd = dirfd(dir);
  char link[64];
  while (dirent* entry = readdir(dir)) {
    int fd;
    if (!absl::SimpleAtoi(entry->d_name, &fd) || fd < from_fd) continue;
    if (*fd_budget == 0) {
      // The kernel lists fds in ascending order, but take the smallest unexamined one
      // whatever the order, so that resuming from it skips nothing.
      scan.outcome = FdScan::Outcome::kStopped;
      if (scan.stopped_at_fd < 0 || fd < scan.stopped_at_fd) scan.stopped_at_fd = fd;
      continue;
    }
    --*fd_budget;
    ssize_t n = readlinkat(dir_fd, entry->d_name, link, sizeof link - 1);
    uint64_t inode;
    if (n <= 0 || !SocketInode(absl::string_view(link, static_cast<size_t>(n)), &inode)) continue;
    if (!on_socket(fd, inode)) break;
  }
  closedir(dir);
  return scan;
}

bool StillHolds(const ProcRoot& proc, int pid, int fd, uint64_t inode) {
  char link[64];
  const std::string path = absl::StrCat(proc.Process(pid, "fd"), "/", fd);
  ssize_t n = readlink(path.c_str(), link, sizeof link - 1);
  uint64_t held;
  return n > 0 && SocketInode(absl::string_view(link, static_cast<size_t>(n)), &held) &&
         held == inode;
}

}  // namespace tcpstates
