#include "common/model/snapshot.h"

namespace tcpstates {

uint64_t StateCounts::Total() const {
  uint64_t total = 0;
  for (uint64_t count : counts_) total += count;
  return total;
}

StateCounts& StateCounts::operator+=(const StateCounts& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  return *this;
}

absl::string_view SourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kAuto:
      return "auto";
    case SourceKind::kNetlink:
      return "netlink";
    case SourceKind::kProc:
      return "proc";
  }
  return "?";
}

absl::string_view PortDirectionName(PortDirection direction) {
  return direction == PortDirection::kLocal ? "local" : "remote";
}

StateCounts Snapshot::All() const {
  StateCounts all = ipv4;
  all += ipv6;
  all += unsplit;
  return all;
}

void CountSocket(const SocketRecord& record, Snapshot* snapshot) {
  std::optional<TcpState> state = StateFromKernel(record.state);
  if (!state) {
    ++snapshot->unknown_state;
    return;
  }
  StateCounts& counts = record.family == Family::kIpv4 ? snapshot->ipv4 : snapshot->ipv6;
  ++counts[*state];
}

}  // namespace tcpstates
