#include "common/diagnosis/close_wait_owners.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/kernel/network_namespace.h"
#include "common/model/hash_tables.h"
#include "common/model/tcp_state.h"

namespace tcpstates {

absl::string_view CgroupNarrowingName(CgroupNarrowing narrowing) {
  switch (narrowing) {
    case CgroupNarrowing::kUsed:
      return "cgroup";
    case CgroupNarrowing::kNoCgroupIds:
      return "no_cgroup_ids";
    case CgroupNarrowing::kNoCgroupFs:
      return "no_cgroup_fs";
  }
  return "?";
}

std::string CloseWaitAttribution::Why() const {
  std::vector<std::string> reasons;
  if (not_accepted > 0) {
    reasons.push_back(absl::StrCat(not_accepted, " not accepted by any process yet"));
  }
  if (beyond_cap > 0) {
    reasons.push_back(absl::StrCat(beyond_cap, " beyond the sockets one search remembers"));
  }
  if (processes_hidden > 0) {
    reasons.push_back(absl::StrCat(processes_hidden,
                                   " processes hidden from this /proc (hidepid, or another pid "
                                   "namespace)"));
  } else if (proc_hides_processes && unattributed > 0) {
    reasons.push_back("/proc is mounted hidepid: other users' processes are not listed");
  }
  if (processes_unreadable > 0) {
    reasons.push_back(absl::StrCat("fds of ", processes_unreadable,
                                   " processes not readable by this user (root, or "
                                   "CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, read them all)"));
  }
  if (processes_failed > 0) {
    reasons.push_back(absl::StrCat(processes_failed,
                                   " processes' fd tables could not be opened (e.g. too many "
                                   "open files)"));
  }
  if (budget_exhausted) {
    reasons.push_back("the search stopped at its time/fd budget and resumes at the next one");
  }
  if (narrowing == CgroupNarrowing::kNoCgroupIds) {
    reasons.push_back("no cgroup ids from this source: every process searched");
  } else if (narrowing == CgroupNarrowing::kNoCgroupFs) {
    reasons.push_back("cgroup v2 filesystem not reachable: every process searched");
  }
  return absl::StrJoin(reasons, "; ");
}

// One Attribute(): which remembered sockets were found where, within the budgets.
class CloseWaitOwners::Search {
 public:
  explicit Search(CloseWaitOwners* owners)
      : owners_(*owners),
        proc_(owners->options_.proc),
        fd_budget_(owners->options_.max_fds),
        deadline_(absl::Now() + owners->options_.max_time) {
    std::vector<uint64_t>& pending = owners_.pending_;
    // A kernel reports each socket once; sort for binary search and drop any repeat anyway.
    std::sort(pending.begin(), pending.end());
    pending.erase(std::unique(pending.begin(), pending.end()), pending.end());
    found_.assign(pending.size(), 0);
    left_ = pending.size();
    holders_.reserve(pending.size());
  }

  // Sockets whose holder from last time still has them.
  void ReuseKnownHolders() {
    const std::vector<Holder>& known = owners_.last_holders_;
    for (size_t i = 0; i < owners_.pending_.size(); ++i) {
      const uint64_t inode = owners_.pending_[i];
      auto it = std::lower_bound(known.begin(), known.end(), inode,
                                 [](const Holder& h, uint64_t value) { return h.inode < value; });
      if (it != known.end() && it->inode == inode && StillHolds(proc_, it->pid, it->fd, inode)) {
        Credit(i, it->pid, it->fd);
      }
    }
  }

  // First where the sockets are known to be: their cgroups' processes.
  void SearchCgroups() {
    for (const auto& [cgroup_id, count] : owners_.sockets_per_cgroup_) {
      if (!GoOn()) return;
      for (int pid : InResumeOrder(owners_.cgroups_.ProcessesOf(cgroup_id))) {
        if (!GoOn()) return;
        Scan(pid, /*listed_in_cgroup=*/true);
      }
    }
  }

  // Then, for what is left, every process we can see (in the sockets' namespace).
  void SearchAllProcesses() {
    if (!GoOn()) return;
    for (int pid : InResumeOrder(VisiblePids(proc_))) {
      if (!GoOn()) return;
      Scan(pid, /*listed_in_cgroup=*/false);
    }
  }

  CloseWaitAttribution Finish(int top, bool proc_hides_processes, CgroupNarrowing narrowing) {
    result_.proc_hides_processes = proc_hides_processes;
    result_.narrowing = narrowing;
    result_.not_accepted = owners_.not_accepted_;
    result_.beyond_cap = owners_.beyond_cap_;
    result_.unattributed = left_ + owners_.not_accepted_ + owners_.beyond_cap_;
    result_.ages = owners_.ages_;
    MergeAndCut(top);
    RememberWhereToResume();
    std::sort(holders_.begin(), holders_.end(),
              [](const Holder& a, const Holder& b) { return a.inode < b.inode; });
    owners_.last_holders_ = std::move(holders_);
    return std::move(result_);
  }

 private:
  // False once the search must stop: everything found, or a budget spent.
  bool GoOn() {
    if (left_ == 0) return false;
    if (fd_budget_ == 0 || absl::Now() > deadline_) {
      result_.budget_exhausted = true;
      return false;
    }
    return true;
  }

  // Whether `pid` lives in the network namespace of the sockets searched for (always true
  // when the search is not for another namespace's sockets).
  bool InSocketsNamespace(int pid) const {
    const uint64_t netns = owners_.options_.netns_inode;
    return netns == 0 || NetworkNamespaceInode(proc_.Process(pid, "ns/net")).value_or(0) == netns;
  }

  void Credit(size_t index, int pid, int fd) {
    found_[index] = 1;  // each socket goes to the first holder found
    ++sockets_per_pid_[pid];
    --left_;
    holders_.push_back({owners_.pending_[index], pid, fd});
  }

  void Scan(int pid, bool listed_in_cgroup) {
    if (!scanned_.insert(pid).second) return;
    if (pid == 0) {  // a process cgroup.procs cannot name in our pid namespace
      ++result_.processes_hidden;
      return;
    }
    // Containers of one pod, or namespaces made by one service, share a cgroup: without this,
    // every namespace's search would read every process's fds (quadratic in namespaces).
    if (!InSocketsNamespace(pid)) return;
    last_scanned_ = pid;
    const int from_fd = pid == owners_.resume_from_.first ? owners_.resume_from_.second : 0;
    const FdScan scan =
        ScanSocketFds(proc_, pid, from_fd, &fd_budget_, [&](int fd, uint64_t inode) {
          const std::vector<uint64_t>& pending = owners_.pending_;
          auto it = std::lower_bound(pending.begin(), pending.end(), inode);
          if (it != pending.end() && *it == inode && !found_[it - pending.begin()]) {
            Credit(static_cast<size_t>(it - pending.begin()), pid, fd);
          }
          return left_ > 0;
        });
    switch (scan.outcome) {
      case FdScan::Outcome::kStopped:
        stopped_in_ = std::pair(pid, scan.stopped_at_fd);
        break;
      case FdScan::Outcome::kUnreadable:
        ++result_.processes_unreadable;
        break;
      case FdScan::Outcome::kFailed:
        ++result_.processes_failed;
        break;
      case FdScan::Outcome::kGone:
        // A cgroup member our /proc does not show: hidden, unless it just exited.
        if (listed_in_cgroup && owners_.proc_hides_processes_.value_or(false)) {
          ++result_.processes_hidden;
        }
        break;
      case FdScan::Outcome::kComplete:
        break;
    }
  }

  // Searches cut short by the budget resume where the last one stopped, so that over a few
  // collections every process gets searched (and its sockets remembered) instead of the same
  // first processes every time.
  std::vector<int> InResumeOrder(std::vector<int> pids) const {
    std::sort(pids.begin(), pids.end());
    auto first = std::lower_bound(pids.begin(), pids.end(), owners_.resume_from_.first);
    std::rotate(pids.begin(), first, pids.end());
    return pids;
  }

  void RememberWhereToResume() {
    if (!result_.budget_exhausted) {
      owners_.resume_from_ = {0, 0};
    } else if (stopped_in_) {
      owners_.resume_from_ = *stopped_in_;  // mid-process: that process, from that fd on
    } else {
      owners_.resume_from_ = {last_scanned_ + 1, 0};  // between processes: the next one
    }
  }

  // The oldest age among each process's sockets, where ages are known.
  HashMap<int, uint32_t> OldestPerPid() {
    HashMap<int, uint32_t> oldest;
    std::vector<std::pair<uint64_t, uint32_t>>& ages = owners_.age_of_;
    if (ages.empty()) return oldest;
    std::sort(ages.begin(), ages.end());
    for (const Holder& holder : holders_) {
      auto it = std::lower_bound(ages.begin(), ages.end(),
                                 std::pair<uint64_t, uint32_t>(holder.inode, 0));
      if (it == ages.end() || it->first != holder.inode) continue;
      uint32_t& age = oldest[holder.pid];
      age = std::max(age, it->second);
    }
    return oldest;
  }

  // Owners by (comm, unit), then the top N; the rest is summed as "other".
  void MergeAndCut(int top) {
    const HashMap<int, uint32_t> oldest = OldestPerPid();
    HashMap<std::pair<std::string, std::string>, size_t> index;
    std::vector<CloseWaitOwner>& owners = result_.owners;
    for (const auto& [pid, sockets] : sockets_per_pid_) {
      result_.attributed += sockets;
      auto [it, inserted] = index.try_emplace({CommOf(proc_, pid), UnitOf(proc_, pid)}, 0);
      if (inserted) {
        it->second = owners.size();
        owners.push_back({it->first.first, it->first.second, 0, 0, pid});
      }
      CloseWaitOwner& owner = owners[it->second];
      const uint64_t held_by_leader = sockets_per_pid_[owner.pid];
      if (owner.processes > 0 &&
          (sockets > held_by_leader || (sockets == held_by_leader && pid < owner.pid))) {
        owner.pid = pid;
      }
      owner.sockets += sockets;
      ++owner.processes;
      if (auto age = oldest.find(pid); age != oldest.end()) {
        owner.oldest_ms = std::max(owner.oldest_ms.value_or(0), age->second);
      }
    }
    std::sort(owners.begin(), owners.end(), [](const CloseWaitOwner& a, const CloseWaitOwner& b) {
      return std::tie(b.sockets, a.comm, a.unit) < std::tie(a.sockets, b.comm, b.unit);
    });
    for (size_t i = static_cast<size_t>(std::max(top, 0)); i < owners.size(); ++i) {
      result_.other_sockets += owners[i].sockets;
      ++result_.other_owners;
    }
    if (owners.size() > static_cast<size_t>(std::max(top, 0))) {
      owners.resize(static_cast<size_t>(std::max(top, 0)));
    }
  }

  CloseWaitOwners& owners_;
  const ProcRoot& proc_;
  size_t fd_budget_;
  absl::Time deadline_;
  std::vector<uint8_t> found_;  // per pending socket: attributed yet
  uint64_t left_ = 0;
  std::vector<Holder> holders_;
  HashMap<int, uint64_t> sockets_per_pid_;
  HashSet<int> scanned_;
  int last_scanned_ = 0;
  std::optional<std::pair<int, int>> stopped_in_;  // (pid, fd) where the fd budget ran out
  CloseWaitAttribution result_;
};

CloseWaitOwners::CloseWaitOwners(CloseWaitOwnersOptions options)
    : options_(std::move(options)), cgroups_(options_.proc, options_.cgroup2_mount) {}

void CloseWaitOwners::Observe(const SocketRecord& record) {
  if (record.state != static_cast<uint8_t>(TcpState::kCloseWait)) return;
  if (record.inode == 0) {
    ++not_accepted_;  // no file yet, so nothing holds it
  } else if (pending_.size() >= options_.max_sockets) {
    ++beyond_cap_;
  } else {
    pending_.push_back(record.inode);
    if (record.cgroup_id != 0) ++sockets_per_cgroup_[record.cgroup_id];
  }
}

CloseWaitAttribution CloseWaitOwners::Attribute() {
  CgroupNarrowing narrowing = CgroupNarrowing::kUsed;
  if (!pending_.empty() && !proc_hides_processes_) {
    absl::StatusOr<std::string> mountinfo = ReadSmallFile(options_.proc.Self("mountinfo"));
    proc_hides_processes_ = mountinfo.ok() && ProcHidesProcesses(*mountinfo, options_.proc.dir());
  }
  Search search(this);
  search.ReuseKnownHolders();
  if (!pending_.empty()) {
    if (sockets_per_cgroup_.empty()) {
      narrowing = CgroupNarrowing::kNoCgroupIds;
    } else if (cgroups_.Mount().empty()) {
      narrowing = CgroupNarrowing::kNoCgroupFs;
    }
  }
  search.SearchCgroups();
  search.SearchAllProcesses();
  CloseWaitAttribution result =
      search.Finish(options_.top, proc_hides_processes_.value_or(false), narrowing);
  Discard();
  return result;
}

void CloseWaitOwners::ObserveAge(const SocketRecord& record) {
  if (record.state != static_cast<uint8_t>(TcpState::kCloseWait) ||
      record.last_received_ms == SocketRecord::kUnknownAge) {
    return;
  }
  CloseWaitAges& ages = ages_ ? *ages_ : ages_.emplace();
  ages.oldest_ms = std::max(ages.oldest_ms, record.last_received_ms);
  ages.older_than_minute += record.last_received_ms > 60'000;
  ages.older_than_hour += record.last_received_ms > 3'600'000;
  if (record.inode != 0 && age_of_.size() < options_.max_sockets) {
    age_of_.emplace_back(record.inode, record.last_received_ms);
  }
}

void CloseWaitOwners::Discard() {
  ages_.reset();
  age_of_.clear();
  pending_.clear();
  sockets_per_cgroup_.clear();
  not_accepted_ = 0;
  beyond_cap_ = 0;
}

}  // namespace tcpstates
