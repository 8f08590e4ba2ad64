// Listening sockets by (family, port): which ports listen, how full their accept queues are,
// which stopped listening and which started since the previous collection - a drop in LISTEN
// named by port instead of just counted, an unexpected new listener named with its process,
// and a service that is alive but not keeping up seen before its socket disappears.
#ifndef TCPSTATES_COMMON_DIAGNOSIS_LISTEN_INVENTORY_H_
#define TCPSTATES_COMMON_DIAGNOSIS_LISTEN_INVENTORY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/functional/function_ref.h"
#include "common/diagnosis/listener_owners.h"
#include "common/kernel/kernel_counters.h"
#include "common/model/hash_tables.h"
#include "common/model/socket_record.h"

namespace tcpstates {

struct ListenPort {
  Family family = Family::kIpv4;
  uint16_t port = 0;
  uint64_t sockets = 0;  // several with SO_REUSEPORT or several local addresses
  // Accept-queue health, of the port's socket whose queue is fullest: connections waiting
  // for accept() (what ss shows as Recv-Q) and the backlog they wait against (Send-Q; 0
  // where the source cannot say: the /proc tables do not show it, see
  // ListenReport::backlogs_known).
  uint32_t queue = 0;
  uint32_t backlog = 0;
  // queue / (backlog + 1): the kernel queues backlog + 1 connections before it overflows
  // (sk_acceptq_is_full is "more than backlog"), so 1.0 means the next handshake that
  // completes is dropped, and a listen(fd, 0) socket still has a meaningful ratio.
  double fill() const { return static_cast<double>(queue) / (static_cast<double>(backlog) + 1); }
  friend bool operator==(const ListenPort&, const ListenPort&) = default;
};

// A port listening now that did not at the previous collection.
struct NewListener {
  ListenPort port;
  std::vector<ListenerOwner> owners;  // the processes holding its sockets (as found)
  std::vector<SocketRef> sockets;     // a few of its sockets: what the owners were found by
};

struct ListenReport {
  std::vector<ListenPort> listening;  // sorted by family, then port; at most the cap
  // Ports listening at the previous collection and not now (sockets: how many there were).
  std::vector<ListenPort> vanished;
  // Ports listening now and not at the previous collection (none at the first collection,
  // which has nothing to compare with); among the reported ports.
  std::vector<NewListener> appeared;
  uint64_t untracked_sockets = 0;  // LISTEN sockets on ports beyond the cap
  // False when the sockets came from the /proc tables, which show no backlog: then
  // ListenPort::backlog is 0 and fill() means nothing, and adapters leave both out.
  bool backlogs_known = true;
  // The namespace's TcpExt ListenOverflows and ListenDrops since the previous collection
  // (nullopt at the first, or where /proc/net/netstat cannot be read).
  std::optional<uint64_t> overflows;
  std::optional<uint64_t> drops;
};

class ListenInventory {
 public:
  // At most `max_ports` ports are reported per collection (bounded series cardinality).
  // A port reported at the previous collection keeps its place until it vanishes, so a
  // vanished port is never missed because of the cap; new ports fill what is left, lowest
  // first, and the sockets of those that do not fit are counted as untracked. `proc`: where
  // the namespace's /proc/net/netstat is.
  explicit ListenInventory(size_t max_ports = 256, ProcRoot proc = ProcRoot())
      : max_ports_(max_ports), proc_(std::move(proc)) {}

  void Observe(const SocketRecord& record);
  // Reports this collection and makes it the reference for the next one. `name_owners` fills
  // in the owners of the new listeners before that: if it throws, the reference stays.
  ListenReport Finish(absl::FunctionRef<void(NewListener&)> name_owners = [](NewListener&) {});
  // Forgets this collection's observations; the previous complete one stays the reference.
  void Discard();

 private:
  using Key = uint32_t;  // family << 16 | port: orders by family, then port
  static Key KeyOf(Family family, uint16_t port) {
    return (static_cast<uint32_t>(family) << 16) | port;
  }
  // One port's sockets in this collection.
  struct Seen {
    uint64_t sockets = 0;
    uint32_t queue = 0;
    uint32_t backlog = 0;
    std::vector<SocketRef> sockets_seen = {};  // new ports only, a few
    void Add(const SocketRecord& record, bool remember);
  };
  static ListenPort PortOf(Key key, const Seen& seen);

  size_t max_ports_;
  ProcRoot proc_;
  HashMap<Key, uint64_t> previous_;  // reported last time
  HashMap<Key, Seen> followed_;      // of those, listening now
  std::map<Key, Seen> candidates_;   // new ports, the lowest max_ports_
  uint64_t untracked_ = 0;
  bool have_previous_ = false;
  std::optional<ListenCounters> previous_counters_;
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_DIAGNOSIS_LISTEN_INVENTORY_H_
