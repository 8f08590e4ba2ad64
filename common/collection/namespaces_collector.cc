#include "common/collection/namespaces_collector.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"
#include "common/kernel/network_namespace.h"

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
  absl::flat_hash_map<uint64_t, Collector> kept;
  absl::flat_hash_map<uint64_t, std::string> kept_names;
  appeared_.clear();
  vanished_.clear();
  for (size_t i : chosen) {
    const NetworkNamespace& ns = scan.namespaces[i];
    auto known = collectors_.find(ns.inode);
    if (known == collectors_.end()) {
      absl::StatusOr<Collector> created = Collector::Create(RequestFor(ns));
      if (!created.ok()) {
        // Gone since the scan: quietly nothing. Otherwise not readable, and said so.
        if (NetworkNamespaceInode(ns.ns_path).ok())
          out.namespaces.push_back({ns, created.status()});
        continue;
      }
      known = collectors_.emplace(ns.inode, *std::move(created)).first;
      appeared_.push_back(ns.name.netns);
    }
    absl::StatusOr<Collection> collection = known->second.Collect();
    if (!collection.ok() && !NetworkNamespaceInode(ns.ns_path).ok()) continue;  // vanished
    kept.emplace(ns.inode, std::move(known->second));
    kept_names.emplace(ns.inode, ns.name.netns);
    out.namespaces.push_back({ns, std::move(collection)});
  }
  for (const auto& [inode, name] : names_) {
    if (!kept.contains(inode)) vanished_.push_back(name);
  }
  collectors_ = std::move(kept);
  names_ = std::move(kept_names);
  CollectOthers(scan.namespaces, chosen, &out);
  return out;
}

void NamespacesCollector::CollectOthers(const std::vector<NetworkNamespace>& found,
                                        const std::vector<size_t>& chosen,
                                        NamespacesCollection* out) {
  const absl::flat_hash_set<size_t> reported(chosen.begin(), chosen.end());
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
