#include "common/collection/socket_tally.h"

namespace tcpstates {

SocketTally::SocketTally(absl::Span<const uint16_t> local_ports,
                         absl::Span<const uint16_t> remote_ports, bool queued_bytes)
    : queued_bytes_(queued_bytes) {
  for (uint16_t port : local_ports) ports_.push_back({port, PortDirection::kLocal, {}});
  for (uint16_t port : remote_ports) ports_.push_back({port, PortDirection::kRemote, {}});
}

void SocketTally::Observe(const SocketRecord& record, bool ports) {
  std::optional<TcpState> state = StateFromKernel(record.state);
  if (!state) return;  // counted as unknown_state elsewhere
  if (ports) {
    // A handful of ports: a linear scan beats any index.
    for (PortCounts& port : ports_) {
      const uint16_t its =
          port.direction == PortDirection::kLocal ? record.local_port : record.remote_port;
      if (its == port.port) ++port.counts[*state];
    }
  }
  if (queued_bytes_ && *state != TcpState::kListen) {
    QueuedBytes& queued = queued_[static_cast<size_t>(record.family)];
    queued.receive += record.receive_queue;
    queued.send += record.send_queue;
  }
}

void SocketTally::Finish(Snapshot* snapshot) {
  snapshot->ports = ports_;
  if (queued_bytes_) snapshot->queued = queued_;
  Reset();
}

void SocketTally::Reset() {
  for (PortCounts& port : ports_) port.counts = StateCounts();
  queued_ = {};
}

}  // namespace tcpstates
