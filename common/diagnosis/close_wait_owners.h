// Which processes hold CLOSE_WAIT sockets: the question an operator answers today with
// `ss -tap state close-wait`, answered without mapping every socket to a process.
//
// During a collection, Observe() remembers the inode and cgroup id of each CLOSE_WAIT socket
// (nothing else, and nothing at all when there are none). Attribute() then looks only where
// those sockets can be: the processes of each socket's cgroup (cgroup.procs of the cgroup v2
// directory whose inode number is the id the netlink dump carried), scanning their fds for the
// remembered inodes. Sockets still unattributed (the /proc source carries no cgroup id; a
// socket passed to a process in another cgroup) are looked for in a bounded walk of
// /proc/*/fd. Processes whose fds cannot be read (another user's, when unprivileged) leave
// their sockets unattributed, and the result says so; it never fails because of it.
#ifndef TCPSTATES_COMMON_DIAGNOSIS_CLOSE_WAIT_OWNERS_H_
#define TCPSTATES_COMMON_DIAGNOSIS_CLOSE_WAIT_OWNERS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "common/model/socket_record.h"

namespace tcpstates {

struct CloseWaitOwner {
  int pid = 0;
  std::string comm;  // /proc/PID/comm as the kernel has it: any byte but NUL, attacker-chosen
  std::string unit;  // last component of the process's cgroup v2 path, e.g. "nginx.service"
  uint64_t sockets = 0;
};

struct CloseWaitAttribution {
  std::vector<CloseWaitOwner> owners;  // top N, most sockets first (ties: lower pid first)
  uint64_t attributed = 0;             // sockets in `owners` plus those of owners beyond N
  uint64_t unattributed = 0;           // CLOSE_WAIT sockets no readable process was found for
  int processes_unreadable = 0;        // processes whose fd table we were not allowed to read
  bool budget_exhausted = false;       // the search stopped at its fd or time budget
  bool complete() const { return unattributed == 0; }
};

struct CloseWaitOwnersOptions {
  int top = 10;
  std::string proc_dir = "/proc";
  // Where cgroup v2 is mounted; empty: found in /proc/self/mountinfo at first use.
  std::string cgroup2_mount;
  // Sockets remembered per collection; more are counted unattributed. Keeps memory flat
  // (about 100 bytes per socket across the maps below): 8192 names every owner of a real leak
  // and costs well under 1 MiB, where a pathological 100k CLOSE_WAIT population would
  // otherwise grow the process by megabytes.
  size_t max_sockets = 8192;
  // Upper bounds on one attribution: fd entries examined (both passes) and time spent.
  // A process with 20k fds costs ~20k readlink calls; a daemon must stay responsive (Telegraf
  // sends SIGTERM 5 s after closing stdin), so sockets beyond either budget are reported
  // unattributed (budget_exhausted) rather than found late.
  size_t max_fds = 1 << 18;
  absl::Duration max_time = absl::Milliseconds(500);
};

class CloseWaitOwners {
 public:
  explicit CloseWaitOwners(CloseWaitOwnersOptions options = {});

  // Call for every socket of a collection (cheap for everything but CLOSE_WAIT).
  void Observe(const SocketRecord& record);

  // Attributes the sockets observed since the last call, then forgets them.
  CloseWaitAttribution Attribute();

  // Forgets the sockets observed since the last Attribute().
  void Discard();

 private:
  struct Found {
    int pid;
    uint64_t sockets;
  };
  struct ScanOutcome {
    bool readable = true;    // false: not allowed to read the process's fds
    int stopped_at_fd = -1;  // where the fd budget stopped the scan; -1: it did not
  };
  // Scans one process's fds numbered from `from_fd` on for remembered inodes.
  ScanOutcome ScanProcess(int pid, int from_fd, absl::flat_hash_map<int, uint64_t>* per_pid,
                          uint64_t* left, size_t* fd_budget,
                          std::vector<std::pair<uint64_t, int>>* holders);
  // Index of `inode` in pending_ (sorted by then), or -1.
  int PendingIndex(uint64_t inode) const;
  void Forget();
  const std::string& Cgroup2Mount();
  // Path (below the cgroup2 mount) of the cgroup with this id, "" when not found.
  std::string CgroupPath(uint64_t cgroup_id);
  std::string UnitOf(int pid);

  CloseWaitOwnersOptions options_;
  bool mount_looked_up_ = false;
  // The CLOSE_WAIT socket inodes observed (sorted at Attribute()), and whether each has been
  // attributed yet. Sorted vectors rather than hash maps: ~9 bytes a socket instead of ~35,
  // which is most of what diagnosis adds to peak memory at scale.
  std::vector<uint64_t> pending_;
  std::vector<uint8_t> found_;
  absl::flat_hash_map<uint64_t, int> sockets_per_cgroup_;
  uint64_t overflow_ = 0;
  absl::flat_hash_map<uint64_t, std::string> cgroup_paths_;  // id -> path, refreshed on a miss
  // Socket inode -> the pid it was attributed to last time. A leak's sockets stay in
  // CLOSE_WAIT collection after collection, held by the same process: while that process is
  // alive they are attributed without searching again, so the steady-state cost follows the
  // new CLOSE_WAIT sockets, not all of them.
  std::vector<std::pair<uint64_t, int>> last_holders_;  // sorted by inode
  // Where a search cut short by its budget resumes: (pid, fd); (0, 0) is from the start.
  std::pair<int, int> resume_from_{0, 0};
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_DIAGNOSIS_CLOSE_WAIT_OWNERS_H_
