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

QueuedBytes Snapshot::AllQueued() const {
  QueuedBytes all;
  if (!queued) return all;
  for (const QueuedBytes& family : *queued) {
    all.receive += family.receive;
    all.send += family.send;
  }
  return all;
}

void AddCounts(const Snapshot& from, Snapshot* into) {
  into->ipv4 += from.ipv4;
  into->ipv6 += from.ipv6;
  into->unsplit += from.unsplit;
  into->malformed += from.malformed;
  into->unknown_state += from.unknown_state;
  if (into->ports.empty())
    into->ports = from.ports;
  else if (into->ports.size() == from.ports.size()) {
    for (size_t i = 0; i < from.ports.size(); ++i) into->ports[i].counts += from.ports[i].counts;
  }
  if (from.queued) {
    std::array<QueuedBytes, 2>& queued = into->queued ? *into->queued : into->queued.emplace();
    for (size_t i = 0; i < queued.size(); ++i) {
      queued[i].receive += (*from.queued)[i].receive;
      queued[i].send += (*from.queued)[i].send;
    }
  }
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
