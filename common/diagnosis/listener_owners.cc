#include "common/diagnosis/listener_owners.h"

#include <algorithm>

#include "common/kernel/network_namespace.h"
#include "common/model/hash_tables.h"

namespace tcpstates {

std::vector<ListenerOwner> FindListenerOwners(const ProcRoot& proc, CgroupTree* cgroups,
                                              absl::Span<const SocketRef> sockets,
                                              uint64_t netns_inode, size_t max_fds) {
  HashSet<uint64_t> wanted;
  HashSet<uint64_t> cgroup_ids;
  for (const SocketRef& socket : sockets) {
    if (socket.inode != 0) wanted.insert(socket.inode);
    if (socket.cgroup_id != 0) cgroup_ids.insert(socket.cgroup_id);
  }
  HashSet<int> holders;
  HashSet<int> scanned;
  size_t budget = max_fds;
  auto scan = [&](int pid) {
    if (pid <= 0 || !scanned.insert(pid).second) return;
    ScanSocketFds(proc, pid, 0, &budget, [&](int, uint64_t inode) {
      if (wanted.erase(inode) > 0) holders.insert(pid);
      return !wanted.empty();
    });
  };
  for (uint64_t cgroup_id : cgroup_ids) {
    for (int pid : cgroups->ProcessesOf(cgroup_id)) {
      if (wanted.empty() || budget == 0) break;
      scan(pid);
    }
  }
  for (int pid : VisiblePids(proc)) {
    if (wanted.empty() || budget == 0) break;
    if (netns_inode != 0 &&
        NetworkNamespaceInode(proc.Process(pid, "ns/net")).value_or(0) != netns_inode) {
      continue;
    }
    scan(pid);
  }
  std::vector<ListenerOwner> owners;
  for (int pid : holders) owners.push_back({pid, CommOf(proc, pid), UnitOf(proc, pid)});
  std::sort(owners.begin(), owners.end(),
            [](const ListenerOwner& a, const ListenerOwner& b) { return a.pid < b.pid; });
  return owners;
}

}  // namespace tcpstates
