// What a collection counts per socket besides the states: the configured ports (every state
// of the sockets with that local or remote port) and the queued bytes. Bounded by the ports
// configured; nothing per socket is kept.
#ifndef TCPSTATES_COMMON_COLLECTION_SOCKET_TALLY_H_
#define TCPSTATES_COMMON_COLLECTION_SOCKET_TALLY_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "common/model/snapshot.h"

namespace tcpstates {

class SocketTally {
 public:
  SocketTally(absl::Span<const uint16_t> local_ports, absl::Span<const uint16_t> remote_ports,
              bool queued_bytes);

  bool counts_ports() const { return !ports_.empty(); }

  // One socket: its ports (when `ports` is true) and its queues.
  void Observe(const SocketRecord& record, bool ports);

  // Moves what was counted into the snapshot and starts over.
  void Finish(Snapshot* snapshot);
  void Reset();

 private:
  std::vector<PortCounts> ports_;
  bool queued_bytes_;
  std::array<QueuedBytes, 2> queued_{};
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_COLLECTION_SOCKET_TALLY_H_
