#include "plugins/telegraf/execd_gatherer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "plugins/telegraf/execd_log.h"

namespace tcpstates::telegraf {

Gatherer::Gatherer(Collector collector, BatchOptions options)
    : collector_(std::move(collector)), options_(std::move(options)) {
  ReportCounting();
}

Gatherer::Gatherer(NamespacesCollector namespaces, BatchOptions options)
    : namespaces_(std::move(namespaces)), options_(std::move(options)) {}

absl::StatusOr<std::string> Gatherer::Gather() {
  if (namespaces_) return GatherAllNamespaces();
  absl::StatusOr<Collection> collection = collector_->Collect();
  if (!collection.ok()) return collection.status();
  ReportSourceAndProblems(collection->snapshot);
  ReportCounting();
  if (collection->diagnosis) ReportDiagnosisLimits(*collection->diagnosis);
  return RenderBatch(*collection, options_);
}

// Once at start, and again if it changes (a netlink dump refused later switches to /proc,
// which always reads every socket).
void Gatherer::ReportCounting() {
  const Counting counting = collector_->counting();
  if (last_counting_ == counting) return;
  std::string why = collector_->plan().why;
  if (last_counting_) {
    why = "changed with the source";
  } else if (counting == Counting::kKernelCounters) {
    absl::StrAppend(&why,
                    "; ESTABLISHED and TIME_WAIT totals from kernel counters, no per-family "
                    "split of them");
  } else if (collector_->plan().counting == Counting::kKernelCounters) {
    // The probe, the self-check or the source ruled counters out; the source line says why.
    absl::StrAppend(&why, "; kernel counters not usable here: ", collector_->source_detail());
  }
  Log(LogLevel::kInfo, absl::StrCat("counting: ", CountingName(counting), " (", why, ")"));
  last_counting_ = counting;
}

void Gatherer::ReportSourceAndProblems(const Snapshot& snapshot) {
  std::string source =
      absl::StrCat(SourceKindName(snapshot.source), " (", snapshot.source_detail, ")");
  if (source != last_source_) {
    Log(LogLevel::kInfo, absl::StrCat("reading sockets from ", source));
    last_source_ = std::move(source);
  }
  if (snapshot.malformed != last_malformed_ && snapshot.malformed > 0) {
    Log(LogLevel::kWarning, absl::StrCat(snapshot.malformed,
                                         " socket table lines or messages were malformed and "
                                         "skipped"));
  }
  if (snapshot.unknown_state != last_unknown_state_ && snapshot.unknown_state > 0) {
    Log(LogLevel::kWarning,
        absl::StrCat(snapshot.unknown_state,
                     " sockets are in states this version does not know; they are in no field"));
  }
  last_malformed_ = snapshot.malformed;
  last_unknown_state_ = snapshot.unknown_state;
}

// Partial diagnoses are not errors, but an operator should learn why once, not per gather.
void Gatherer::ReportDiagnosisLimits(const Diagnosis& diagnosis) {
  if (diagnosis.close_wait) {
    // Said when it starts, not per gather (the summary's `why` field has it every time).
    const CloseWaitAttribution& owners = *diagnosis.close_wait;
    if (owners.unattributed > 0 && !reported_partial_owners_) {
      Log(LogLevel::kInfo,
          absl::StrCat("CLOSE_WAIT owners are partial: ", owners.unattributed,
                       " sockets unattributed (tcpstates_close_wait_summary): ", owners.Why()));
    }
    reported_partial_owners_ = owners.unattributed > 0;
  }
  const uint64_t untracked = diagnosis.listen ? diagnosis.listen->untracked_sockets : 0;
  if (untracked > 0 && last_untracked_listeners_ == 0) {
    Log(LogLevel::kWarning,
        absl::StrCat(untracked,
                     " listening sockets are on ports beyond --max-listen-ports and have no "
                     "tcpstates_listen line"));
  }
  last_untracked_listeners_ = untracked;
}

absl::StatusOr<std::string> Gatherer::GatherAllNamespaces() {
  absl::StatusOr<NamespacesCollection> all = namespaces_->Collect();
  if (!all.ok()) return all.status();
  ReportNamespaces(*all);
  std::string batch;
  for (NamespaceCollection& ns : all->namespaces) {
    if (!ns.collection.ok()) continue;
    ns.collection->snapshot.taken_at = all->taken_at;  // one timestamp for the whole batch
    const BatchTags tags = {
        {"netns", ns.ns.name.netns}, {"pod", ns.ns.name.pod}, {"container", ns.ns.name.container}};
    absl::StatusOr<std::string> lines = RenderBatch(*ns.collection, options_, tags);
    if (!lines.ok()) return lines.status();
    batch += *lines;
  }
  if (all->other_namespaces > 0) {
    Collection other{all->other, std::nullopt};
    absl::StatusOr<std::string> lines = RenderBatch(other, options_, {{"netns", "other"}});
    if (!lines.ok()) return lines.status();
    batch += *lines;
  }
  return batch;
}

// Namespaces come and go with containers: one line when some did, and a warning once per
// namespace that cannot be read.
void Gatherer::ReportNamespaces(const NamespacesCollection& all) {
  const auto& appeared = namespaces_->appeared();
  const auto& vanished = namespaces_->vanished();
  if (!appeared.empty() || !vanished.empty()) {
    Log(LogLevel::kInfo,
        absl::StrCat("namespaces: ", appeared.size(), " new (", absl::StrJoin(appeared, ", "),
                     "), ", vanished.size(), " gone (", absl::StrJoin(vanished, ", "), ")"));
  }
  for (const NamespaceCollection& ns : all.namespaces) {
    if (!ns.collection.ok() && reported_unreadable_.insert(ns.ns.name.netns).second) {
      Log(LogLevel::kWarning, absl::StrCat("namespace ", ns.ns.name.netns,
                                           " cannot be read: ", ns.collection.status().ToString()));
    }
  }
  if (all.unreadable_namespaces > 0 && !reported_unreadable_other_) {
    Log(LogLevel::kWarning, absl::StrCat(all.unreadable_namespaces,
                                         " namespaces beyond --max-namespaces cannot be read and "
                                         "are not in netns=other"));
    reported_unreadable_other_ = true;
  }
}

}  // namespace tcpstates::telegraf
