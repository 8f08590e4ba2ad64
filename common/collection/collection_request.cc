#include "common/collection/collection_request.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tcpstates {

absl::StatusOr<CountingChoice> ParseCountingChoice(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (CountingChoice choice :
       {CountingChoice::kAuto, CountingChoice::kFull, CountingChoice::kCounters}) {
    if (lower == CountingChoiceName(choice)) return choice;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown counting \"", text, "\": expected auto, full or counters"));
}

absl::string_view CountingChoiceName(CountingChoice choice) {
  switch (choice) {
    case CountingChoice::kAuto:
      return "auto";
    case CountingChoice::kFull:
      return "full";
    case CountingChoice::kCounters:
      return "counters";
  }
  return "?";
}

absl::string_view CountingName(Counting counting) {
  return counting == Counting::kKernelCounters ? "counters" : "full";
}

absl::StatusOr<SourceKind> ParseSourceKind(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (SourceKind kind : {SourceKind::kAuto, SourceKind::kNetlink, SourceKind::kProc}) {
    if (lower == SourceKindName(kind)) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown source \"", text, "\": expected auto, netlink or proc"));
}

namespace {

// "port pressure needs every socket", "the per-family split and port pressure need ...".
std::string NeedEverySocket(const std::vector<std::string>& needs) {
  return absl::StrCat(absl::StrJoin(needs, " and "), needs.size() == 1 ? " needs" : " need",
                      " every socket");
}

}  // namespace

std::optional<DiagnosisOptions> DiagnosisFor(const AnalysisChoices& choices) {
  if (!choices.close_wait_owners && !choices.listen_ports && !choices.port_pressure) {
    return std::nullopt;
  }
  DiagnosisOptions diagnosis;
  diagnosis.close_wait_owners = choices.close_wait_owners;
  diagnosis.owners.top = choices.top_owners;
  diagnosis.listen_inventory = choices.listen_ports;
  diagnosis.max_listen_ports = static_cast<size_t>(choices.max_listen_ports);
  diagnosis.port_pressure = choices.port_pressure;
  return diagnosis;
}

std::vector<std::string> NeedsEverySocket(const CollectionRequest& request) {
  std::vector<std::string> needs;
  if (request.per_family) needs.push_back("the per-family split");
  if (request.diagnosis && request.diagnosis->port_pressure) needs.push_back("port pressure");
  if (request.queued_bytes) needs.push_back("queued bytes");
  return needs;
}

absl::Status ValidateRequest(const CollectionRequest& request) {
  for (const auto& [ports, direction] :
       {std::pair(&request.local_ports, "local"), std::pair(&request.remote_ports, "remote")}) {
    if (ports->size() > kMaxRequestPorts) {
      return absl::InvalidArgumentError(absl::StrCat("more than ", kMaxRequestPorts, " ", direction,
                                                     " ports (", ports->size(), ")"));
    }
  }
  const std::vector<std::string> needs = NeedsEverySocket(request);
  if (request.counting == CountingChoice::kCounters && !needs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("counting \"counters\" cannot serve this request: ", NeedEverySocket(needs),
                     " in the dump; ask for counting \"auto\" (counters wherever nothing needs "
                     "every socket) or \"full\""));
  }
  if (request.counting == CountingChoice::kCounters && request.source == SourceKind::kProc) {
    return absl::InvalidArgumentError(
        "counting \"counters\" needs the netlink source (the /proc tables are read whole "
        "whatever is counted); ask for source \"auto\" or \"netlink\"");
  }
  return absl::OkStatus();
}

CountingPlan PlanCounting(const CollectionRequest& request) {
  const std::vector<std::string> needs = NeedsEverySocket(request);
  switch (request.counting) {
    case CountingChoice::kFull:
      return {Counting::kFullDump, "counting full"};
    case CountingChoice::kCounters:
      return {Counting::kKernelCounters, "counting counters"};
    case CountingChoice::kAuto:
      break;
  }
  if (!needs.empty()) {
    return {Counting::kFullDump, absl::StrCat("counting auto: ", NeedEverySocket(needs))};
  }
  if (request.source == SourceKind::kProc) {
    return {Counting::kFullDump, "counting auto: the /proc source reads every socket anyway"};
  }
  return {Counting::kKernelCounters, "counting auto"};
}

}  // namespace tcpstates
