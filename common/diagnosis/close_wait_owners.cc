#include "common/diagnosis/close_wait_owners.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace tcpstates {
namespace {

// Reads a small file whole (comm, cgroup, cgroup.procs); empty on any error.
std::string ReadSmallFile(const std::string& path, size_t limit = 1 << 20) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (out.size() >= limit) break;
  }
  close(fd);
  return out;
}

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

// Parses "socket:[12345]".
bool SocketInode(absl::string_view link, uint64_t* inode) {
  if (!absl::ConsumePrefix(&link, "socket:[") || !absl::ConsumeSuffix(&link, "]")) return false;
  return absl::SimpleAtoi(link, inode);
}

// Collects directory inode -> path (relative to the walk's root) for one nftw walk; nftw
// offers no user pointer, so the walk state lives here for its duration.
struct CgroupWalk {
  absl::flat_hash_map<uint64_t, std::string>* paths;
  size_t root_length;
};
thread_local CgroupWalk* current_walk = nullptr;
constexpr size_t kMaxCgroups = 100000;

int RememberCgroup(const char* path, const struct stat* st, int type, struct FTW*) {
  if (type != FTW_D) return 0;
  if (current_walk->paths->size() >= kMaxCgroups) return 1;
  const char* relative = path + current_walk->root_length;
  current_walk->paths->emplace(static_cast<uint64_t>(st->st_ino), *relative ? relative : "/");
  return 0;
}

std::string LastPathComponent(absl::string_view path) {
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  return std::string(slash == absl::string_view::npos ? path : path.substr(slash + 1));
}

}  // namespace

CloseWaitOwners::CloseWaitOwners(CloseWaitOwnersOptions options) : options_(std::move(options)) {}

void CloseWaitOwners::Observe(const SocketRecord& record) {
  if (record.state != static_cast<uint8_t>(TcpState::kCloseWait)) return;
  // Not yet accepted (no file, so no inode) or beyond the memory bound: unattributable.
  if (record.inode == 0 || pending_.size() >= options_.max_sockets) {
    ++overflow_;
    return;
  }
  pending_.push_back(record.inode);
  if (record.cgroup_id != 0) ++sockets_per_cgroup_[record.cgroup_id];
}

const std::string& CloseWaitOwners::Cgroup2Mount() {
  if (!mount_looked_up_ && options_.cgroup2_mount.empty()) {
    mount_looked_up_ = true;
    const std::string mountinfo = ReadSmallFile("/proc/self/mountinfo");
    for (absl::string_view line : absl::StrSplit(mountinfo, '\n')) {
      // "... mount_point options [optional...] - fstype source super_options"
      size_t separator = line.find(" - ");
      if (separator == absl::string_view::npos) continue;
      std::vector<absl::string_view> after = absl::StrSplit(line.substr(separator + 3), ' ');
      if (after.empty() || after[0] != "cgroup2") continue;
      std::vector<absl::string_view> before = absl::StrSplit(line.substr(0, separator), ' ');
      if (before.size() < 5) continue;
      options_.cgroup2_mount = UnescapeMountPath(before[4]);
      break;
    }
  }
  return options_.cgroup2_mount;
}

std::string CloseWaitOwners::CgroupPath(uint64_t cgroup_id) {
  auto it = cgroup_paths_.find(cgroup_id);
  if (it != cgroup_paths_.end()) return it->second;
  const std::string& mount = Cgroup2Mount();
  if (mount.empty()) return {};
  // A miss: cgroups come and go, so walk the tree again (it is small: one entry per cgroup).
  cgroup_paths_.clear();
  CgroupWalk walk{&cgroup_paths_, mount.size()};
  current_walk = &walk;
  nftw(mount.c_str(), RememberCgroup, 16, FTW_PHYS | FTW_MOUNT);
  current_walk = nullptr;
  it = cgroup_paths_.find(cgroup_id);
  return it == cgroup_paths_.end() ? std::string() : it->second;
}

std::string CloseWaitOwners::UnitOf(int pid) {
  const std::string cgroups = ReadSmallFile(absl::StrCat(options_.proc_dir, "/", pid, "/cgroup"));
  for (absl::string_view line : absl::StrSplit(cgroups, '\n')) {
    if (absl::ConsumePrefix(&line, "0::")) return LastPathComponent(line);
  }
  return {};
}

CloseWaitOwners::ScanOutcome CloseWaitOwners::ScanProcess(
    int pid, int from_fd, absl::flat_hash_map<int, uint64_t>* per_pid, uint64_t* left,
    size_t* fd_budget, std::vector<std::pair<uint64_t, int>>* holders) {
  ScanOutcome outcome;
  const std::string fd_dir = absl::StrCat(options_.proc_dir, "/", pid, "/fd");
  DIR* dir = opendir(fd_dir.c_str());
  if (dir == nullptr) {
    outcome.readable = errno != EACCES && errno != EPERM;  // gone is not unreadable
    return outcome;
  }
  const int dir_fd = dirfd(dir);
  char link[64];
  while (dirent* entry = readdir(dir)) {
    int fd;
    if (!absl::SimpleAtoi(entry->d_name, &fd) || fd < from_fd) continue;
    if (*left == 0) break;
    if (*fd_budget == 0) {
      // The kernel lists fds in ascending order, but take the smallest unexamined one
      // whatever the order, so that resuming from it skips nothing.
      if (outcome.stopped_at_fd < 0 || fd < outcome.stopped_at_fd) outcome.stopped_at_fd = fd;
      continue;
    }
    --*fd_budget;
    ssize_t n = readlinkat(dir_fd, entry->d_name, link, sizeof link - 1);
    uint64_t inode;
    if (n <= 0 || !SocketInode(absl::string_view(link, static_cast<size_t>(n)), &inode)) continue;
    const int index = PendingIndex(inode);
    if (index >= 0 && !found_[index]) {
      found_[index] = 1;  // each socket goes to the first holder found
      ++(*per_pid)[pid];
      --*left;
      holders->emplace_back(inode, pid);
    }
  }
  closedir(dir);
  return outcome;
}

int CloseWaitOwners::PendingIndex(uint64_t inode) const {
  auto it = std::lower_bound(pending_.begin(), pending_.end(), inode);
  return it != pending_.end() && *it == inode ? static_cast<int>(it - pending_.begin()) : -1;
}

CloseWaitAttribution CloseWaitOwners::Attribute() {
  CloseWaitAttribution result;
  // A kernel reports each socket once; sort for binary search and drop any repeat anyway.
  std::sort(pending_.begin(), pending_.end());
  pending_.erase(std::unique(pending_.begin(), pending_.end()), pending_.end());
  found_.assign(pending_.size(), 0);
  uint64_t left = pending_.size();
  absl::flat_hash_map<int, uint64_t> per_pid;
  absl::flat_hash_set<int> scanned;
  size_t fd_budget = options_.max_fds;
  const absl::Time deadline = absl::Now() + options_.max_time;
  // False once the search must stop: everything found, or a budget spent.
  auto go_on = [&] {
    if (left == 0) return false;
    if (fd_budget == 0 || absl::Now() > deadline) {
      result.budget_exhausted = true;
      return false;
    }
    return true;
  };
  std::vector<std::pair<uint64_t, int>> holders;
  holders.reserve(pending_.size());
  int last_scanned = 0;
  std::optional<std::pair<int, int>> stopped_in;  // (pid, fd) where the fd budget ran out
  auto scan = [&](int pid) {
    if (!scanned.insert(pid).second) return;
    last_scanned = pid;
    const int from_fd = pid == resume_from_.first ? resume_from_.second : 0;
    const ScanOutcome outcome = ScanProcess(pid, from_fd, &per_pid, &left, &fd_budget, &holders);
    if (!outcome.readable) ++result.processes_unreadable;
    if (outcome.stopped_at_fd >= 0) stopped_in = std::pair(pid, outcome.stopped_at_fd);
  };
  // Searches cut short by the budget resume where the last one stopped, so that over a few
  // collections every process gets searched (and its sockets remembered) instead of the same
  // first processes every time.
  auto in_resume_order = [&](std::vector<int> pids) {
    std::sort(pids.begin(), pids.end());
    auto first = std::lower_bound(pids.begin(), pids.end(), resume_from_.first);
    std::rotate(pids.begin(), first, pids.end());
    return pids;
  };

  // Sockets already attributed last time, to a process that is still there.
  absl::flat_hash_map<int, bool> alive;
  for (size_t i = 0; i < pending_.size(); ++i) {
    const uint64_t inode = pending_[i];
    auto known = std::lower_bound(last_holders_.begin(), last_holders_.end(),
                                  std::pair<uint64_t, int>(inode, 0),
                                  [](const auto& a, const auto& b) { return a.first < b.first; });
    if (known == last_holders_.end() || known->first != inode) continue;
    const int pid = known->second;
    auto [entry, inserted] = alive.emplace(pid, false);
    if (inserted) {
      entry->second = access(absl::StrCat(options_.proc_dir, "/", pid, "/fd").c_str(), F_OK) == 0;
    }
    if (!entry->second) continue;
    found_[i] = 1;
    ++per_pid[pid];
    --left;
    holders.emplace_back(inode, pid);
  }

  // First where the sockets are known to be: their cgroups' processes.
  for (const auto& [cgroup_id, count] : sockets_per_cgroup_) {
    if (!go_on()) break;
    const std::string path = CgroupPath(cgroup_id);
    if (path.empty()) continue;
    const std::string procs = ReadSmallFile(absl::StrCat(Cgroup2Mount(), path, "/cgroup.procs"));
    std::vector<int> pids;
    for (absl::string_view line : absl::StrSplit(procs, '\n', absl::SkipEmpty())) {
      int pid;
      if (absl::SimpleAtoi(line, &pid)) pids.push_back(pid);
    }
    for (int pid : in_resume_order(std::move(pids))) {
      if (!go_on()) break;
      scan(pid);
    }
  }

  // Then, for what is left, every process.
  if (go_on()) {
    std::vector<int> pids;
    if (DIR* proc = opendir(options_.proc_dir.c_str())) {
      while (dirent* entry = readdir(proc)) {
        int pid;
        if (absl::SimpleAtoi(entry->d_name, &pid)) pids.push_back(pid);
      }
      closedir(proc);
    }
    for (int pid : in_resume_order(std::move(pids))) {
      if (!go_on()) break;
      scan(pid);
    }
  }
  if (!result.budget_exhausted) {
    resume_from_ = {0, 0};
  } else if (stopped_in) {
    resume_from_ = *stopped_in;  // mid-process: that process, from that fd on
  } else {
    resume_from_ = {last_scanned + 1, 0};  // between processes: the next one
  }

  for (const auto& [pid, count] : per_pid) {
    result.attributed += count;
    CloseWaitOwner owner;
    owner.pid = pid;
    owner.sockets = count;
    result.owners.push_back(std::move(owner));
  }
  std::sort(result.owners.begin(), result.owners.end(),
            [](const CloseWaitOwner& a, const CloseWaitOwner& b) {
              return a.sockets != b.sockets ? a.sockets > b.sockets : a.pid < b.pid;
            });
  if (result.owners.size() > static_cast<size_t>(options_.top)) {
    result.owners.resize(static_cast<size_t>(options_.top));
  }
  for (CloseWaitOwner& owner : result.owners) {
    std::string comm = ReadSmallFile(absl::StrCat(options_.proc_dir, "/", owner.pid, "/comm"), 64);
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();  // the kernel's, not the name's
    owner.comm = std::move(comm);
    owner.unit = UnitOf(owner.pid);
  }
  result.unattributed = left + overflow_;
  std::sort(holders.begin(), holders.end());
  last_holders_ = std::move(holders);
  Forget();
  return result;
}

void CloseWaitOwners::Discard() { Forget(); }

void CloseWaitOwners::Forget() {
  pending_.clear();
  found_.clear();
  sockets_per_cgroup_.clear();
  overflow_ = 0;
}

}  // namespace tcpstates
