// Ephemeral-port pressure: per remote endpoint (address, port), how many sockets use a local
// port from the ephemeral range (net.ipv4.ip_local_port_range), in any state, TIME_WAIT
// included. Connections toward one endpoint from one local address can use at most
// range-size local ports; TIME_WAIT churn toward a backend exhausts them first. The report
// names the endpoint closest to exhaustion and the settings that shape the pressure.
#ifndef TCPSTATES_COMMON_DIAGNOSIS_PORT_PRESSURE_H_
#define TCPSTATES_COMMON_DIAGNOSIS_PORT_PRESSURE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <tuple>

#include "common/kernel/proc_files.h"
#include "common/model/hash_tables.h"
#include "common/model/socket_record.h"

namespace tcpstates {

// The namespace's sysctls that decide how fast ports run out. -1 where unreadable.
struct PortSettings {
  int range_low = 32768;  // net.ipv4.ip_local_port_range
  int range_high = 60999;
  int fin_timeout = -1;     // net.ipv4.tcp_fin_timeout (seconds in FIN_WAIT2 when orphaned)
  int tw_reuse = -1;        // net.ipv4.tcp_tw_reuse (0 off, 1 on, 2 loopback only)
  int max_tw_buckets = -1;  // net.ipv4.tcp_max_tw_buckets
  int range_size() const { return range_high - range_low + 1; }
};

// Reads PortSettings from the sysctls under `proc`.
PortSettings ReadPortSettings(const ProcRoot& proc);

struct EndpointUsage {
  Family family = Family::kIpv4;
  std::array<uint8_t, 16> address{};  // network byte order
  uint16_t port = 0;
  uint64_t ports_in_use = 0;
  double ratio = 0;  // ports_in_use / range size
  // "10.0.0.1:443" or "[2001:db8::1]:443".
  std::string EndpointText() const;
};

struct PortPressureReport {
  PortSettings settings;
  std::optional<EndpointUsage> busiest;  // none when no socket uses an ephemeral port
  size_t endpoints = 0;                  // distinct remote endpoints seen
  uint64_t untracked_sockets = 0;        // sockets toward endpoints beyond the cap
};

class PortPressure {
 public:
  // At most `max_endpoints` endpoints are tracked per collection, keeping memory flat;
  // sockets toward endpoints beyond it are reported as untracked. Pressure builds toward a
  // few backends, so 4096 leaves room. An IPv4-mapped IPv6 peer (::ffff:a.b.c.d, a
  // dual-stack client) is the IPv4 endpoint it maps: both draw on the same local ports.
  explicit PortPressure(ProcRoot proc = ProcRoot(), size_t max_endpoints = 4096);
  // Settings read by `read_settings` (another namespace's sysctls are only visible from
  // inside it).
  explicit PortPressure(std::function<PortSettings()> read_settings, size_t max_endpoints = 4096);

  void Observe(const SocketRecord& record);
  // Reports the collection just observed, then re-reads the settings for the next one.
  PortPressureReport Finish();
  // Forgets this collection's observations.
  void Discard() {
    usage_.clear();
    untracked_ = 0;
  }

 private:
  struct Key {
    Family family;
    uint16_t port;
    std::array<uint8_t, 16> address;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.family, k.port, k.address);
    }
    friend bool operator==(const Key&, const Key&) = default;
    friend bool operator<(const Key& a, const Key& b) {
      return std::tie(a.family, a.address, a.port) < std::tie(b.family, b.address, b.port);
    }
  };
  std::function<PortSettings()> read_settings_;
  size_t max_endpoints_;
  PortSettings settings_;
  HashMap<Key, uint64_t> usage_;
  uint64_t untracked_ = 0;
};

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_DIAGNOSIS_PORT_PRESSURE_H_
