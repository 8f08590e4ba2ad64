// What the owner searches need to know about processes and cgroups, read from procfs and
// the cgroup v2 filesystem: which processes a cgroup holds, which socket each fd of a
// process is, a process's name and unit. Everything here is attacker-influenced data (any
// user names their processes; container runtimes name cgroups) and is read bounded.
#ifndef TCPSTATES_COMMON_DIAGNOSIS_PROCESS_TABLE_H_
#define TCPSTATES_COMMON_DIAGNOSIS_PROCESS_TABLE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "common/kernel/proc_files.h"
#include "common/model/hash_tables.h"

namespace tcpstates {

// The mount point of the first cgroup2 filesystem in mountinfo text (octal escapes undone),
// nullopt when there is none.
std::optional<std::string> FindCgroup2Mount(absl::string_view mountinfo);

// True when mountinfo's proc mount at `proc_dir` hides other users' processes (hidepid=1, 2,
// noaccess, invisible).
bool ProcHidesProcesses(absl::string_view mountinfo, absl::string_view proc_dir);

// The cgroup v2 hierarchy, reached from this mount namespace or, where it hides the host's
// mounts (`ip netns exec` mounts a fresh /sys; some containers), through another process's
// root: /proc/PID/root + the mount point in /proc/PID/mountinfo, for init and then for our
// ancestors (a locked-down init's root can be out of reach even for root).
class CgroupTree {
 public:
  // `mount`: use this directory instead of looking the mount up.
  explicit CgroupTree(ProcRoot proc, std::string mount = "");

  // Where the hierarchy is reachable; empty when it is not.
  const std::string& Mount();

  // The processes in the cgroup whose directory inode is `cgroup_id` (the id sock_diag
  // reports). Empty when there is no such cgroup (any more). A pid of 0 stands for a process
  // the kernel does not name in our pid namespace.
  std::vector<int> ProcessesOf(uint64_t cgroup_id);

 private:
  // Path below Mount() of the cgroup with this id, "" when not found; re-walks the tree on
  // a miss (cgroups come and go), at most 100,000 directories.
  std::string PathOf(uint64_t cgroup_id);

  ProcRoot proc_;
  std::string mount_;
  bool looked_up_ = false;
  HashMap<uint64_t, std::string> paths_;
};

// The cgroup v2 path of a process ("/system.slice/nginx.service"), "" when unknown.
std::string CgroupPathOf(const ProcRoot& proc, int pid);

// The last component of that path ("nginx.service"), "" when unknown.
std::string UnitOf(const ProcRoot& proc, int pid);

// /proc/PID/comm without the kernel's newline: any byte but NUL, chosen by the process.
std::string CommOf(const ProcRoot& proc, int pid);

// Every numeric entry of /proc: the pids visible to us.
std::vector<int> VisiblePids(const ProcRoot& proc);

// How a scan of one process's fd table ended.
struct FdScan {
  enum class Outcome {
    kComplete,    // every fd from `from_fd` on was examined, or the caller stopped it
    kStopped,     // the fd budget ran out at `stopped_at_fd`
    kGone,        // no such process (exited, or hidden from this /proc)
    kUnreadable,  // not allowed (another user's process, unprivileged)
    kFailed,      // any other error opening the fd table (EMFILE, ...): `error`
  };
  Outcome outcome = Outcome::kComplete;
  int stopped_at_fd = -1;
  int error = 0;
};

// Calls `on_socket(fd, inode)` for each socket among the fds of `pid` numbered `from_fd` or
// more, examining at most *fd_budget entries (decremented). `on_socket` returns false to end
// the scan early (nothing left to look for).
FdScan ScanSocketFds(const ProcRoot& proc, int pid, int from_fd, size_t* fd_budget,
                     absl::FunctionRef<bool(int fd, uint64_t inode)> on_socket);

// True while fd `fd` of `pid` is still the socket `inode`: a holder remembered from an
// earlier search is trusted only then (it may have closed it, handed it over, or exited
// and had its pid reused).
bool StillHolds(const ProcRoot& proc, int pid, int fd, uint64_t inode);

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_DIAGNOSIS_PROCESS_TABLE_H_
