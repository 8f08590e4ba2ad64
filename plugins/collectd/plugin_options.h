// <Plugin tcpstates> ... </Plugin>: the plugin's options and their parser. Kept apart from
// the daemon glue (it needs only collectd's config tree type, no daemon symbols) so that the
// parser can be unit-tested and fuzzed on its own.
#ifndef TCPSTATES_PLUGINS_COLLECTD_PLUGIN_OPTIONS_H_
#define TCPSTATES_PLUGINS_COLLECTD_PLUGIN_OPTIONS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "common/collection/collection_request.h"

extern "C" {
#include "collectd/liboconfig/oconfig.h"
}

namespace tcpstates {

// Bounds for the numeric options: both size series cardinality, so nonsense is refused.
inline constexpr int kMaxTopOwners = 1000;
inline constexpr int kMaxMaxListenPorts = 65536;
inline constexpr int kMaxMaxNamespaces = 65536;

struct PluginOptions {
  SourceKind source = SourceKind::kAuto;
  CountingChoice counting = CountingChoice::kAuto;
  bool report_by_family = false;
  bool report_listen_change = true;
  AnalysisChoices
      analyses;  // CloseWaitOwners, TopOwners, ListenPorts, MaxListenPorts, PortPressure
  bool notify_vanished_listeners = true;
  // A WARNING notification naming each port that started listening, with its processes.
  bool notify_new_listeners = true;
  // tcpconns' LocalPort / RemotePort: every state of the sockets with these ports, under
  // plugin instances "<port>-local" / "<port>-remote".
  std::vector<uint16_t> local_ports;
  std::vector<uint16_t> remote_ports;
  // Recv-Q and Send-Q sums (needs every socket: full dumps).
  bool queued_bytes = false;
  // Every network namespace of the host, each under plugin instances of its own.
  bool all_namespaces = false;
  int max_namespaces = 256;
  // What every read collects.
  CollectionRequest Request() const;
};

inline constexpr char kAcceptedOptions[] =
    "Source, Counting, ReportByFamily, ReportListenChange, CloseWaitOwners, TopOwners, "
    "ListenPorts, MaxListenPorts, NotifyVanishedListeners, NotifyNewListeners, LocalPort, "
    "RemotePort, QueuedBytes, PortPressure, AllNamespaces, MaxNamespaces";

// Applies the options in `block` (the <Plugin tcpstates> block) over *options. An unknown key,
// a bad value, or a combination the core cannot serve (ValidateRequest) is InvalidArgument
// with a message naming the key and what it accepts; the daemon logs it and refuses to start.
absl::Status ParsePluginOptions(const oconfig_item_t& block, PluginOptions* options);

}  // namespace tcpstates

#endif  // TCPSTATES_PLUGINS_COLLECTD_PLUGIN_OPTIONS_H_
