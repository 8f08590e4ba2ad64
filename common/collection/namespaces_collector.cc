#include "common/collection/namespaces_collector.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "common/kernel/network_namespace.h"
#include "common/model/hash_tables.h"

namespace tcpstates {

absl::StatusOr<NamespacesCollector> NamespacesCollector::Create(const CollectionRequest& request,
                                                                size_t max_namespaces,
                                                                std::string run_netns_dir) {
  if (absl::Status status = ValidateRequest(request); !status.ok()) return status;
  if (max_namespaces < 1) return absl::InvalidArgumentError("at least one namespace");
  NamespacesCollector collector(request, max_namespaces, std::move(run_netns_dir));
  collector.own_inode_ = NetworkNamespaceInode(request.proc.Self("ns/net")).value_or(0);
  return collector;
}

CollectionRequest NamespacesCollector::RequestFor(const NetworkNamespace& ns) const {
  CollectionRequest request = request_;
  if (ns.inode != own_inode_) request.target = NamespaceTarget{ns.ns_path, ns.pid, ns.inode};
  return request;
}

std::vector<size_t> NamespacesCollector::Chosen(const std::vector<NetworkNamespace>& found) const {
  std::vector<size_t> chosen;
  // Those reported before keep their place; new ones fill the rest in `found`'s order.
  for (size_t i = 0; i < found.size() && chosen.size() < max_namespaces_; ++i) {
    if (collectors_.contains(found[i].inode)) chosen.push_back(i);
  }
  for (size_t i = 0; i < found.size() && chosen.size() < max_namespaces_; ++i) {
    if (!collectors_.contains(found[i].inode)) chosen.push_back(i);
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

absl::StatusOr<NamespacesCollection> NamespacesCollector::Collect() {
  NamespacesCollection out;
  out.taken_at = absl::Now();
  const NamespaceScan scan = FindNetworkNamespaces(request_.proc, run_netns_dir_);
  out.processes_unidentified = scan.processes_unidentified;
  const std::vector<size_t> chosen = Chosen(scan.namespaces);
  // Everything this collection changes is built aside and committed at the end without
  // allocating, so that an exception on the way (std::bad_alloc inside collectd) leaves the
  // collectors, names and appeared/vanished lists as the last complete collection left them:
  // no collector is moved out of collectors_ before the commit.
  HashMap<uint64_t, Collector> created;
  HashMap<uint64_t, std::string> names;
  std::vector<std::string> appeared;
  std::vector<std::string> vanished;
  for (size_t i : chosen) {
    const NetworkNamespace& ns = scan.namespaces[i];
    auto known = collectors_.find(ns.inode);
    if (known == collectors_.end()) {
      absl::StatusOr<Collector> collector = Collector::Create(RequestFor(ns));
      if (!collector.ok()) {
        // Gone since the scan: quietly nothing. Otherwise not readable, and said so.
        if (NetworkNamespaceInode(ns.ns_path).ok())
          out.namespaces.push_back({ns, collector.status()});
        continue;
      }
      known = created.emplace(ns.inode, *std::move(collector)).first;
      appeared.push_back(ns.name.netns);
    }
    absl::StatusOr<Collection> collection = known->second.Collect();
    if (!collection.ok() && !NetworkNamespaceInode(ns.ns_path).ok()) continue;  // vanished
    names.emplace(ns.inode, ns.name.netns);
    out.namespaces.push_back({ns, std::move(collection)});
  }
  for (const auto& [inode, name] : names_) {
    if (!names.contains(inode)) vanished.push_back(name);
  }
  CollectOthers(scan.namespaces, chosen, &out);
  collectors_.reserve(collectors_.size() + created.size());  // the merge below cannot rehash
  // The commit: erasing, merging nodes into reserved buckets and swapping do not allocate.
  for (auto it = collectors_.begin(); it != collectors_.end();) {
    it = names.contains(it->first) ? std::next(it) : collectors_.erase(it);
  }
  for (auto it = created.begin(); it != created.end();) {
    auto next = std::next(it);
    if (names.contains(it->first)) collectors_.insert(created.extract(it));
    it = next;
  }
  names_.swap(names);
  appeared_.swap(appeared);
  vanished_.swap(vanished);
  return out;
}

void NamespacesCollector::CollectOthers(const std::vector<NetworkNamespace>& found,
                                        const std::vector<size_t>& chosen,
                                        NamespacesCollection* out) {
  const HashSet<size_t> reported(chosen.begin(), chosen.end());
  for (size_t i = 0; i < found.size(); ++i) {
    if (reported.contains(i)) continue;
    ++out->other_namespaces;
    // Counts only, and full dumps: a Collector for one collection would pay the counters'
    // self-check every time.
    CollectionRequest request = RequestFor(found[i]);
    request.diagnosis.reset();
    request.counting = CountingChoice::kFull;
    absl::StatusOr<Collector> collector = Collector::Create(request);
    absl::StatusOr<Collection> collection =
        collector.ok() ? collector->Collect() : absl::StatusOr<Collection>(collector.status());
    if (!collection.ok()) {
      ++out->unreadable_namespaces;
      continue;
    }
    AddCounts(collection->snapshot, &out->other);
  }
  out->other.taken_at = out->taken_at;
}

}  // namespace tcpstates
