#include "plugins/telegraf/execd_gatherer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "plugins/telegraf/execd_log.h"

namespace tcpstates::telegraf {

Gatherer::Gatherer(Collector collector, BatchOptions options)
    : collector_(std::move(collector)), options_(std::move(options)) {
  ReportCounting();
}

absl::StatusOr<std::string> Gatherer::Gather() {
  absl::StatusOr<Collection> collection = collector_.Collect();
  if (!collection.ok()) return collection.status();
  ReportSourceAndProblems(collection->snapshot);
  ReportCounting();
  if (collection->diagnosis) ReportDiagnosisLimits(*collection->diagnosis);
  return RenderBatch(*collection, options_);
}

// Once at start, and again if it changes (a netlink dump refused later switches to /proc,
// which always reads every socket).
void Gatherer::ReportCounting() {
  const Counting counting = collector_.counting();
  if (last_counting_ == counting) return;
  std::string why = collector_.plan().why;
  if (last_counting_) {
    why = "changed with the source";
  } else if (counting == Counting::kKernelCounters) {
    absl::StrAppend(&why,
                    "; ESTABLISHED and TIME_WAIT totals from kernel counters, no per-family "
                    "split of them");
  } else if (collector_.plan().counting == Counting::kKernelCounters) {
    // The probe, the self-check or the source ruled counters out; the source line says why.
    absl::StrAppend(&why, "; kernel counters not usable here: ", collector_.source_detail());
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

}  // namespace tcpstates::telegraf
