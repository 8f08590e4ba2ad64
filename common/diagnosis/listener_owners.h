// Which processes hold a handful of listening sockets: how a new listener is named with its
// process ("what started listening?"). Listeners are few, so each is looked for directly:
// in its own cgroup first (the id the dump carried), then among every process of the
// namespace, within an fd budget.
#ifndef TCPSTATES_COMMON_DIAGNOSIS_LISTENER_OWNERS_H_
#define TCPSTATES_COMMON_DIAGNOSIS_LISTENER_OWNERS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "common/diagnosis/process_table.h"
#include "common/kernel/proc_files.h"

namespace tcpstates {

struct SocketRef {
  uint64_t inode = 0;
  uint64_t cgroup_id = 0;  // 0: unknown
};

struct ListenerOwner {
  int pid = 0;
  std::string comm;  // attacker-chosen bytes, as CloseWaitOwner::comm
  std::string unit;
  friend bool operator==(const ListenerOwner&, const ListenerOwner&) = default;
};

// The processes holding any of `sockets`, by pid. `netns_inode` (0: any) limits the walk of
// every process to one namespace's; at most `max_fds` fd entries are examined.
std::vector<ListenerOwner> FindListenerOwners(const ProcRoot& proc, CgroupTree* cgroups,
                                              absl::Span<const SocketRef> sockets,
                                              uint64_t netns_inode, size_t max_fds);

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_DIAGNOSIS_LISTENER_OWNERS_H_
