#include "common/namespaces/network_namespaces.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/diagnosis/process_table.h"
#include "common/kernel/network_namespace.h"
#include "common/model/hash_tables.h"

namespace tcpstates {
namespace {

constexpr size_t kContainerIdLength = 64;
constexpr size_t kShortIdLength = 12;

bool IsHexId(absl::string_view text) {
  return text.size() == kContainerIdLength &&
         std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isxdigit(c); });
}

// The container id in one path component, "" when it holds none.
std::string ContainerIdIn(absl::string_view component) {
  for (absl::string_view prefix : {"docker-", "cri-containerd-", "crio-", "libpod-"}) {
    absl::string_view id = component;
    if (absl::ConsumePrefix(&id, prefix) && absl::ConsumeSuffix(&id, ".scope") && IsHexId(id)) {
      return std::string(id.substr(0, kShortIdLength));
    }
  }
  return IsHexId(component) ? std::string(component.substr(0, kShortIdLength)) : "";
}

// The pod UID in one path component under kubepods, "" when it holds none.
std::string PodUidIn(absl::string_view component) {
  absl::string_view uid = component;
  if (absl::ConsumeSuffix(&uid, ".slice")) {  // systemd driver: '-' in the UID became '_'
    const size_t pod = uid.rfind("-pod");
    if (!absl::StartsWith(uid, "kubepods") || pod == absl::string_view::npos) return "";
    return absl::StrReplaceAll(uid.substr(pod + 4), {{"_", "-"}});
  }
  return absl::ConsumePrefix(&uid, "pod") && !uid.empty() ? std::string(uid) : "";
}

// /run/netns: name -> inode.
HashMap<uint64_t, std::string> IpNetnsNames(const std::string& dir) {
  HashMap<uint64_t, std::string> names;
  DIR* netns = opendir(dir.c_str());
  if (netns == nullptr) return names;
  while (dirent* entry = readdir(netns)) {
    if (entry->d_name[0] == '.') continue;
    absl::StatusOr<uint64_t> inode = NetworkNamespaceInode(absl::StrCat(dir, "/", entry->d_name));
    if (inode.ok()) names.emplace(*inode, entry->d_name);
  }
  closedir(netns);
  return names;
}

}  // namespace

NamespaceName NameFromCgroup(absl::string_view cgroup_path, uint64_t inode) {
  NamespaceName name;
  bool under_kubepods = false;
  absl::string_view last;
  for (absl::string_view component : absl::StrSplit(cgroup_path, '/', absl::SkipEmpty())) {
    under_kubepods = under_kubepods || absl::StartsWith(component, "kubepods");
    if (under_kubepods && name.pod.empty()) name.pod = PodUidIn(component);
    if (std::string id = ContainerIdIn(component); !id.empty()) name.container = std::move(id);
    last = component;
  }
  name.netns = !name.container.empty() ? name.container
               : !last.empty()         ? std::string(last)
                                       : absl::StrCat("ino-", inode);
  return name;
}

NamespaceScan FindNetworkNamespaces(const ProcRoot& proc, const std::string& run_netns_dir) {
  NamespaceScan scan;
  absl::StatusOr<uint64_t> host = NetworkNamespaceInode(proc.Process(1, "ns/net"));
  if (!host.ok()) host = NetworkNamespaceInode(proc.Self("ns/net"));
  // Each namespace's lowest pid: a stable representative while that process lives.
  HashMap<uint64_t, int> first_pid;
  for (int pid : VisiblePids(proc)) {
    absl::StatusOr<uint64_t> inode = NetworkNamespaceInode(proc.Process(pid, "ns/net"));
    if (!inode.ok()) {
      if (absl::IsPermissionDenied(inode.status())) ++scan.processes_unidentified;
      continue;  // gone meanwhile, or not ours to identify
    }
    auto [it, inserted] = first_pid.try_emplace(*inode, pid);
    if (!inserted) it->second = std::min(it->second, pid);
  }
  const HashMap<uint64_t, std::string> ip_names = IpNetnsNames(run_netns_dir);
  for (const auto& [inode, name] : ip_names) first_pid.try_emplace(inode, 0);

  for (const auto& [inode, pid] : first_pid) {
    NetworkNamespace ns;
    ns.inode = inode;
    ns.pid = pid;
    ns.host = host.ok() && inode == *host;
    ns.name = NameFromCgroup(pid > 0 ? CgroupPathOf(proc, pid) : "", inode);
    auto ip_name = ip_names.find(inode);
    if (ns.host) {
      ns.name.netns = "host";
    } else if (ip_name != ip_names.end()) {
      ns.name.netns = ip_name->second;
    }
    ns.ns_path = ip_name != ip_names.end() ? absl::StrCat(run_netns_dir, "/", ip_name->second)
                                           : proc.Process(pid, "ns/net");
    scan.namespaces.push_back(std::move(ns));
  }
  std::sort(scan.namespaces.begin(), scan.namespaces.end(),
            [](const NetworkNamespace& a, const NetworkNamespace& b) {
              return a.host != b.host
                         ? a.host
                         : std::tie(a.name.netns, a.inode) < std::tie(b.name.netns, b.inode);
            });
  return scan;
}

}  // namespace tcpstates
