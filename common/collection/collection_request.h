// What an adapter asks of every collection, and the one policy that decides how it is
// served. Each adapter turns its own configuration (flags, a <Plugin> block) into a
// CollectionRequest; the Collector validates and plans it here, so the same request gets
// the same answer - and the same error text - in the CLI, the execd and the collectd plugin.
#ifndef TCPSTATES_COMMON_COLLECTION_COLLECTION_REQUEST_H_
#define TCPSTATES_COMMON_COLLECTION_COLLECTION_REQUEST_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/diagnosis/diagnosis.h"
#include "common/kernel/counter_probe.h"
#include "common/kernel/proc_files.h"
#include "common/model/snapshot.h"

namespace tcpstates {

// Counting (model/snapshot.h) in a collection:
//   kFullDump        every socket is dumped: exact per family, every analysis sees every
//                    socket.
//   kKernelCounters  the dump skips ESTABLISHED and TIME_WAIT (the kernel still walks them
//                    but builds no message for them) and their totals are derived from
//                    /proc/net/snmp CurrEstab and /proc/net/sockstat tw, minus what those
//                    include on this kernel (probed: counter_probe.h). Gives up the
//                    per-family split of those two states (Snapshot::unsplit), and analyses
//                    never see those sockets.

// What the request asks for: kAuto is counters unless something needs every socket.
enum class CountingChoice : uint8_t { kAuto, kFull, kCounters };

// "auto" | "full" | "counters" (case-insensitive); InvalidArgument names the accepted values.
absl::StatusOr<CountingChoice> ParseCountingChoice(absl::string_view text);
absl::string_view CountingChoiceName(CountingChoice choice);
absl::string_view CountingName(Counting counting);  // "full" | "counters"

// Parses "auto" | "netlink" | "proc"; InvalidArgument names the accepted values.
absl::StatusOr<SourceKind> ParseSourceKind(absl::string_view text);

// Another network namespace to collect from (the all-namespaces mode); see
// common/namespaces/network_namespaces.h for how they are found.
struct NamespaceTarget {
  std::string ns_path;  // what setns() takes: /run/netns/NAME or /proc/PID/ns/net
  int pid = 0;          // a process in it (its /proc/PID/net files), 0 when none
  uint64_t inode = 0;
};

// At most this many local and this many remote ports per request: each is a series per state
// and a term of the kernel's filter.
inline constexpr size_t kMaxRequestPorts = 64;

struct CollectionRequest {
  SourceKind source = SourceKind::kAuto;
  CountingChoice counting = CountingChoice::kAuto;
  bool per_family = false;                                   // every state split by family
  std::optional<DiagnosisOptions> diagnosis = std::nullopt;  // nullopt: counts only
  ProcRoot proc = ProcRoot();  // tests point the whole core at a fake tree
  // What the kernel counters include; unset: probed when counters are planned.
  std::optional<CounterIdentities> counter_identities = std::nullopt;
  // Unset: the caller's own network namespace.
  std::optional<NamespaceTarget> target = std::nullopt;
  // Per-port counts for these local and remote ports (Snapshot::ports). With counters they
  // cost one more dump, filtered by the kernel (only matching sockets get a message).
  std::vector<uint16_t> local_ports = {};
  std::vector<uint16_t> remote_ports = {};
  // Recv-Q and Send-Q sums (Snapshot::queued): needs every socket.
  bool queued_bytes = false;
};

// The analyses an adapter switches on, in the terms of its options (flags and <Plugin> options
// bind to these fields): the execd and the collectd plugin turn each on and off alone.
struct AnalysisChoices {
  bool close_wait_owners = true;
  int top_owners = 10;
  bool listen_ports = true;
  int max_listen_ports = 256;
  // Off by default: it needs every ESTABLISHED and TIME_WAIT socket, i.e. a full dump every
  // collection, which is what counter-assisted counting saves on busy servers.
  bool port_pressure = false;
};

// What a request carries for `choices`: nullopt when every analysis is off (counts only).
std::optional<DiagnosisOptions> DiagnosisFor(const AnalysisChoices& choices);

// The features of `request` that need every socket in the dump, by name ("the per-family
// split", "port pressure", "queued bytes"); empty when counters can serve it.
std::vector<std::string> NeedsEverySocket(const CollectionRequest& request);

// InvalidArgument when the request asks for something it cannot have: more ports than
// kMaxRequestPorts, counters together with a feature that needs every socket (refused, not silently
// degraded: a user who asked for both should learn that one of them is not served).
absl::Status ValidateRequest(const CollectionRequest& request);

// The counting a valid request gets, and why (for logs and the CLI): kAuto resolves to
// counters unless NeedsEverySocket. The collector may still fall back to full dumps where
// the kernel's counters cannot be trusted; it says so in its source detail.
struct CountingPlan {
  Counting counting = Counting::kFullDump;
  std::string why;
};
CountingPlan PlanCounting(const CollectionRequest& request);

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_COLLECTION_COLLECTION_REQUEST_H_
