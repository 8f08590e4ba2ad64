// Listening sockets by (family, port), and the ports that stopped listening since the
// previous collection: a drop in LISTEN named by port instead of just counted.
#ifndef TCPSTATES_COMMON_DIAGNOSIS_LISTEN_INVENTORY_H_
#define TCPSTATES_COMMON_DIAGNOSIS_LISTEN_INVENTORY_H_

#include <cstdint>
#include <map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/model/socket_record.h"

namespace tcpstates {

struct ListenPort {
  Family family = Family::kIpv4;
  uint16_t port = 0;
  uint64_t sockets = 0;  // several with SO_REUSEPORT or several local addresses
  friend bool operator==(const ListenPort&, const ListenPort&) = default;
};

struct ListenReport {
  std::vector<ListenPort> listening;  // sorted by family, then port; at most the cap
  // Ports listening at the previous collection and not now (sockets: how many there were).
  std::vector<ListenPort> vanished;
  uint64_t untracked_sockets = 0;  // LISTEN sockets on ports beyond the cap
};

class ListenInventory {
 public:
  // At most `max_ports` ports are reported per collection (bounded series cardinality).
  // A port reported at the previous collection keeps its place until it vanishes, so a
  // vanished port is never missed because of the cap; new ports fill what is left, lowest
  // first, and the sockets of those that do not fit are counted as untracked.
  explicit ListenInventory(size_t max_ports = 256) : max_ports_(max_ports) {}

  void Observe(const SocketRecord& record);
  ListenReport Finish();
  // Forgets this collection's observations; the previous complete one stays the reference.
  void Discard();

 private:
  using Key = uint32_t;  // family << 16 | port: orders by family, then port
  static Key KeyOf(Family family, uint16_t port) {
    return (static_cast<uint32_t>(family) << 16) | port;
  }
  size_t max_ports_;
  absl::flat_hash_map<Key, uint64_t> previous_;  // reported last time
  absl::flat_hash_map<Key, uint64_t> followed_;  // of those, listening now
  std::map<Key, uint64_t> candidates_;           // new ports, the lowest max_ports_
  uint64_t untracked_ = 0;
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_DIAGNOSIS_LISTEN_INVENTORY_H_
