// The network namespaces of this host, and what to call them in metrics: on a Docker or
// Kubernetes host most sockets live in the containers' namespaces, which an agent in the
// host namespace otherwise never counts.
//
// Found from the processes (/proc/*/ns/net, deduplicated by the namespace's inode) and from
// `ip netns` (/run/netns/*, which may hold namespaces no process is in). Named, in order of
// preference, by the `ip netns` name, the container the namespace's first process runs in
// (from its cgroup: Docker, containerd, CRI-O and Podman name them alike), the systemd unit,
// else `ino-<inode>`. The names come from whoever starts the containers: they are hostile
// input, escaped or sanitized by every adapter like process names.
#ifndef TCPSTATES_COMMON_NAMESPACES_NETWORK_NAMESPACES_H_
#define TCPSTATES_COMMON_NAMESPACES_NETWORK_NAMESPACES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/kernel/proc_files.h"

namespace tcpstates {

struct NamespaceName {
  std::string netns;      // "host", an ip netns name, a container id, a unit, or "ino-<inode>"
  std::string pod;        // the pod UID when the cgroup is under kubepods, else ""
  std::string container;  // the short (12 hex digits) container id, else ""
  friend bool operator==(const NamespaceName&, const NamespaceName&) = default;
};

// The name a namespace gets from the cgroup v2 path of a process in it (`ip netns` names and
// the host's aside): container id, else the unit (the path's last component), else
// ino-<inode>. Pure, for tests:
//   /system.slice/docker-<64 hex>.scope                         -> netns=container=<12 hex>
//   /kubepods.slice/kubepods-burstable.slice/
//     kubepods-burstable-pod<uid, '_' for '-'>.slice/cri-containerd-<64 hex>.scope
//                                                    -> netns=container=<12 hex>, pod=<uid>
//   /kubepods/besteffort/pod<uid>/<64 hex>            (cgroupfs driver) -> the same
//   /system.slice/nginx.service                                     -> netns=nginx.service
NamespaceName NameFromCgroup(absl::string_view cgroup_path, uint64_t inode);

struct NetworkNamespace {
  uint64_t inode = 0;  // identifies the namespace (net:[INODE])
  NamespaceName name;
  bool host = false;  // init's namespace (ours, when init's cannot be read)
  // How to reach it: the lowest pid in it (0 when only /run/netns knows it), and a file that
  // setns() takes (/run/netns/NAME where there is one, else /proc/PID/ns/net).
  int pid = 0;
  std::string ns_path;
};

struct NamespaceScan {
  std::vector<NetworkNamespace> namespaces;  // the host's first, then by name
  // Processes whose namespace could not be identified (another user's process, without
  // CAP_SYS_PTRACE): their namespaces may be missing here, never counted twice.
  int processes_unidentified = 0;
};

NamespaceScan FindNetworkNamespaces(const ProcRoot& proc,
                                    const std::string& run_netns_dir = "/run/netns");

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_NAMESPACES_NETWORK_NAMESPACES_H_
