// Which processes hold CLOSE_WAIT sockets: the question an operator answers today with
// `ss -tap state close-wait`, answered without mapping every socket to a process.
//
// During a collection, Observe() remembers the inode and cgroup id of each CLOSE_WAIT socket
// (nothing else, and nothing at all when there are none). Attribute() then looks only where
// those sockets can be: the processes of each socket's cgroup (cgroup.procs of the cgroup v2
// directory whose inode number is the id the netlink dump carried), scanning their fds for
// the remembered inodes. Sockets still unattributed (the /proc source carries no cgroup id; a
// socket passed to a process in another cgroup) are looked for in a bounded walk of
// /proc/*/fd. Whatever stays unattributed is explained (CloseWaitAttribution's reasons); the
// search never fails because of it.
#ifndef TCPSTATES_COMMON_DIAGNOSIS_CLOSE_WAIT_OWNERS_H_
#define TCPSTATES_COMMON_DIAGNOSIS_CLOSE_WAIT_OWNERS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/diagnosis/process_table.h"
#include "common/kernel/proc_files.h"
#include "common/model/hash_tables.h"
#include "common/model/socket_record.h"

namespace tcpstates {

// The processes with one name in one unit (a pre-forked server's workers are one owner).
struct CloseWaitOwner {
  std::string comm;  // /proc/PID/comm as the kernel has it: any byte but NUL, attacker-chosen
  std::string unit;  // last component of the processes' cgroup v2 path, e.g. "nginx.service"
  uint64_t sockets = 0;
  int processes = 0;
  int pid = 0;  // the one holding the most of them (the lowest pid on a tie)
  // How long its longest-idle CLOSE_WAIT socket has not heard from the peer, when the
  // collection asked the kernel (netlink; see CloseWaitOwners::ObserveAge).
  std::optional<uint32_t> oldest_ms = std::nullopt;
};

// How long the CLOSE_WAIT sockets have been idle: a socket that has not heard from its peer
// for an hour is a leak; fifty for a second are a burst.
struct CloseWaitAges {
  uint32_t oldest_ms = 0;
  uint64_t older_than_minute = 0;
  uint64_t older_than_hour = 0;
};

// How the search could narrow itself to the sockets' own cgroups.
enum class CgroupNarrowing {
  kUsed,         // it did (or nothing needed searching)
  kNoCgroupIds,  // the source reports no cgroup ids (/proc): every process searched
  kNoCgroupFs,   // the cgroup v2 filesystem is not reachable: every process searched
};
// "cgroup" | "no_cgroup_ids" | "no_cgroup_fs": how every adapter names it (owner_search).
absl::string_view CgroupNarrowingName(CgroupNarrowing narrowing);

struct CloseWaitAttribution {
  // Owners merged by (comm, unit) first, then the top N of them, most sockets first (ties:
  // by comm, then unit).
  std::vector<CloseWaitOwner> owners;
  uint64_t attributed = 0;            // every socket a holder was found for
  uint64_t other_sockets = 0;         // of those, held by owners beyond the top N
  uint64_t other_owners = 0;          // how many owners that is
  uint64_t unattributed = 0;          // CLOSE_WAIT sockets whose holder was not found
  std::optional<CloseWaitAges> ages;  // every CLOSE_WAIT socket's, when known

  // Why `unattributed` is not zero; several can hold at once.
  uint64_t not_accepted = 0;          // still in a listener's accept queue: nobody holds them yet
  uint64_t beyond_cap = 0;            // more CLOSE_WAIT sockets than the search remembers
  int processes_unreadable = 0;       // fd tables this user may not read
  int processes_hidden = 0;           // in a socket's cgroup but not visible in our /proc
  int processes_failed = 0;           // fd tables that could not be opened otherwise (EMFILE...)
  bool proc_hides_processes = false;  // /proc is mounted hidepid: others' processes are unlisted
  bool budget_exhausted = false;      // the search stopped at its fd or time budget
  CgroupNarrowing narrowing = CgroupNarrowing::kUsed;

  bool complete() const { return unattributed == 0; }
  // The reasons above as one line for people and logs ("" when there is nothing to say).
  std::string Why() const;
};

struct CloseWaitOwnersOptions {
  int top = 10;
  ProcRoot proc;
  // Where cgroup v2 is mounted; empty: looked up (see CgroupTree).
  std::string cgroup2_mount;
  // Sockets remembered per collection (8 bytes each, plus one per cgroup); more are
  // counted unattributed (beyond_cap). Names every owner of a real leak while keeping
  // memory flat when a pathological population runs into the hundreds of thousands.
  size_t max_sockets = 8192;
  // Upper bounds on one attribution: fd entries examined and time spent. A daemon must stay
  // responsive (Telegraf sends SIGTERM 5 s after closing stdin): sockets beyond either are
  // unattributed this time (budget_exhausted), and the next search resumes where this one
  // stopped.
  size_t max_fds = 1 << 18;
  absl::Duration max_time = absl::Milliseconds(500);
  // With a namespace's inode: the walk of every process is limited to that namespace's
  // processes (the sockets are of that namespace; 0: no limit).
  uint64_t netns_inode = 0;
};

class CloseWaitOwners {
 public:
  explicit CloseWaitOwners(CloseWaitOwnersOptions options = {});

  // Call for every socket of a collection (cheap for everything but CLOSE_WAIT).
  void Observe(const SocketRecord& record);

  // A CLOSE_WAIT socket's age (its last_received_ms), from a dump that asked for tcp_info.
  void ObserveAge(const SocketRecord& record);

  // Attributes the sockets observed since the last call, then forgets them.
  CloseWaitAttribution Attribute();

  // Forgets the sockets observed since the last Attribute().
  void Discard();

 private:
  class Search;  // the work of one Attribute() call

  // A socket found last time: while `pid` still has it as `fd`, it is credited without
  // searching again (a leak's sockets stay in CLOSE_WAIT collection after collection).
  struct Holder {
    uint64_t inode;
    int pid;
    int fd;
  };

  CloseWaitOwnersOptions options_;
  CgroupTree cgroups_;
  std::optional<bool> proc_hides_processes_;  // read from mountinfo once
  // This collection's CLOSE_WAIT socket inodes (sorted by the search) and cgroups.
  std::vector<uint64_t> pending_;
  HashMap<uint64_t, int> sockets_per_cgroup_;
  uint64_t not_accepted_ = 0;
  uint64_t beyond_cap_ = 0;
  std::optional<CloseWaitAges> ages_;
  std::vector<std::pair<uint64_t, uint32_t>> age_of_;  // (inode, ms), sorted by the search
  std::vector<Holder> last_holders_;                   // sorted by inode
  // Where a search cut short by its budget resumes: (pid, fd); (0, 0) is from the start.
  std::pair<int, int> resume_from_{0, 0};
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_DIAGNOSIS_CLOSE_WAIT_OWNERS_H_
