// tcpstates.so: the collectd read plugin. A translation layer only: <Plugin tcpstates> is
// parsed into PluginOptions (a CollectionRequest), init creates the core's Collector (which
// owns the netlink socket, the buffers and the analyses), each read turns one Collection into
// collectd values (names made safe by collectd_names.h), shutdown releases it all.
//
// collectd is C: its headers have no extern "C", it calls us through plain function
// pointers, and an exception unwinding through its frames would kill the daemon. So every
// entry point below is a noexcept function that catches everything (GuardCallback).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/collection/collector.h"
#include "common/collection/namespaces_collector.h"
#include "common/model/hash_tables.h"
#include "common/model/snapshot.h"
#include "common/model/tcp_state.h"
#include "common/version.h"
#include "plugins/collectd/collectd_names.h"
#include "plugins/collectd/plugin_options.h"

extern "C" {
#include "collectd/core/daemon/collectd.h"
#include "collectd/core/daemon/plugin.h"
#include "collectd/core/daemon/utils_complain.h"
}

namespace tcpstates {
namespace {

constexpr char kPluginName[] = "tcpstates";
// The stock type tcpconns uses too, so dashboards and thresholds written for it apply.
constexpr char kCountType[] = "tcp_connections";
// LISTEN now minus LISTEN at the previous read. Negative values are the point (a listener
// went away), so it needs a type without a lower bound: the stock `gauge` is GAUGE:U:U.
constexpr char kListenChangeType[] = "gauge";
constexpr char kListenChangeInstance[] = "listen_change";
constexpr char kAllInstance[] = "all";
// Diagnosis values (README.md, "Diagnosis"): one plugin_instance per analysis.
constexpr char kOwnersInstance[] = "close_wait_owners";
constexpr char kListenPortsInstance[] = "listen_ports";
constexpr char kPressureInstance[] = "port_pressure";
// Stock types: `count` is GAUGE:0:U, `gauge` GAUGE:U:U.
constexpr char kPlainCountType[] = "count";
constexpr char kGaugeType[] = "gauge";
// Stock type for byte counts (GAUGE:0:U): the queued bytes.
constexpr char kBytesType[] = "bytes";
// Everything the callbacks share. collectd never runs one read callback concurrently with
// itself, and config/init/shutdown run on the main thread with no read in flight, so no lock.
class TcpStatesPlugin {
 public:
  absl::Status Configure(const oconfig_item_t& block);
  absl::Status Init();
  // Fails only when no socket table could be read.
  absl::Status Read();
  void Shutdown();

 private:
  absl::Status ReadAllNamespaces();
  // Everything of one collection, under the plugin instances of `netns` ("": the plugin's
  // own namespace, instances as without AllNamespaces).
  void DispatchCollection(const Collection& collection, absl::string_view netns);
  // The plugin_instance for `base` in the namespace being dispatched: "all" becomes the
  // namespace's sanitized name, anything else "<netns>-<base>".
  std::string Instance(absl::string_view base) const;
  void Dispatch(absl::string_view plugin_instance, absl::string_view type,
                absl::string_view type_instance, gauge_t value);
  // The counts under plugin_instance `instance`, and listen_change against its previous read.
  void DispatchCounts(const StateCounts& counts, const std::string& instance);
  void DispatchStates(const StateCounts& counts, const std::string& instance);
  void DispatchQueued(const QueuedBytes& queued, const std::string& instance);
  void DispatchOwners(const CloseWaitAttribution& attribution);
  // Logs who holds the CLOSE_WAIT sockets (`who`: the owners with their pids) when it changed.
  void LogOwners(const CloseWaitAttribution& attribution, const std::string& owners_instance,
                 std::string who);
  void DispatchListenPorts(const ListenReport& report);
  void NotifyListener(const ListenPort& port, absl::string_view message);
  void DispatchPortPressure(const PortPressureReport& report);
  void LogSourceIfChanged(const std::string& detail);

  PluginOptions options_;
  std::optional<Collector> collector_;
  std::optional<NamespacesCollector> namespaces_;  // with AllNamespaces
  std::string netns_;  // sanitized name of the namespace being dispatched; "" without
  // Owners last logged per owners instance (pid and name of each), to log "who holds
  // CLOSE_WAIT" only when it changes; absent while there is no CLOSE_WAIT socket.
  HashMap<std::string, std::string> logged_owners_;
  std::string logged_source_detail_;
  // LISTEN at the previous read, per counts instance, for listen_change.
  HashMap<std::string, uint64_t> previous_listen_;
  HashSet<std::string> reported_unreadable_namespaces_;
  c_complain_t read_complaint_ = C_COMPLAIN_INIT_STATIC;
  c_complain_t dispatch_complaint_ = C_COMPLAIN_INIT_STATIC;
  c_complain_t malformed_complaint_ = C_COMPLAIN_INIT_STATIC;
  c_complain_t unknown_state_complaint_ = C_COMPLAIN_INIT_STATIC;
  c_complain_t pressure_complaint_ = C_COMPLAIN_INIT_STATIC;
};

TcpStatesPlugin& ThePlugin() {
  static TcpStatesPlugin* const plugin = new TcpStatesPlugin;
  return *plugin;
}

// Copies a name into one of value_list_t's fixed-size fields (truncating like sstrncpy; all
// our names are far shorter than DATA_MAX_NAME_LEN).
template <size_t kSize>
void CopyName(absl::string_view name, char (&field)[kSize]) {
  const size_t length = std::min(name.size(), kSize - 1);
  std::memcpy(field, name.data(), length);
  field[length] = '\0';
}

absl::Status TcpStatesPlugin::Configure(const oconfig_item_t& block) {
  return ParsePluginOptions(block, &options_);
}

absl::Status TcpStatesPlugin::Init() {
  INFO("%s plugin %s: initialising", kPluginName, TCPSTATES_VERSION);
  if (options_.all_namespaces) {
    absl::StatusOr<NamespacesCollector> namespaces = NamespacesCollector::Create(
        options_.Request(), static_cast<size_t>(options_.max_namespaces));
    if (!namespaces.ok()) return namespaces.status();
    namespaces_ = std::move(*namespaces);
    INFO("%s plugin: every network namespace, at most %d with values of their own", kPluginName,
         options_.max_namespaces);
    return absl::OkStatus();
  }
  absl::StatusOr<Collector> collector = Collector::Create(options_.Request());
  if (!collector.ok()) {
    return absl::Status(
        collector.status().code(),
        absl::StrCat("cannot open the socket table (Source ", SourceKindName(options_.source),
                     "): ", collector.status().message(), "; \"Source auto\" falls back to /proc"));
  }
  collector_ = std::move(*collector);
  INFO("%s plugin: counting %s (%s)", kPluginName,
       std::string(CountingName(collector_->counting())).c_str(), collector_->plan().why.c_str());
  LogSourceIfChanged(collector_->source_detail());
  return absl::OkStatus();
}

void TcpStatesPlugin::Shutdown() {
  collector_.reset();  // closes the netlink sockets, frees the buffers and the analyses
  namespaces_.reset();
  logged_owners_.clear();
  logged_source_detail_.clear();
  previous_listen_.clear();
  reported_unreadable_namespaces_.clear();
}

void TcpStatesPlugin::LogSourceIfChanged(const std::string& detail) {
  if (detail == logged_source_detail_) return;
  if (logged_source_detail_.empty()) {
    INFO("%s plugin: reading sockets from %s", kPluginName, detail.c_str());
  } else {
    // A fallback (netlink refused mid-run): still working, but worth a look once.
    WARNING("%s plugin: now reading sockets from %s", kPluginName, detail.c_str());
  }
  logged_source_detail_ = detail;
}

void TcpStatesPlugin::Dispatch(absl::string_view plugin_instance, absl::string_view type,
                               absl::string_view type_instance, gauge_t value) {
  value_t values[1];
  values[0].gauge = value;
  value_list_t list = VALUE_LIST_INIT;
  list.values = values;
  list.values_len = 1;
  // host, time and interval left zero: the daemon fills them in (interval from <LoadPlugin>).
  CopyName(kPluginName, list.plugin);
  CopyName(plugin_instance, list.plugin_instance);
  CopyName(type, list.type);
  CopyName(type_instance, list.type_instance);
  if (plugin_dispatch_values(&list) != 0) {
    c_complain(LOG_WARNING, &dispatch_complaint_,
               "%s plugin: plugin_dispatch_values failed for %s/%s-%s", kPluginName,
               list.plugin_instance, list.type, list.type_instance);
  } else {
    c_release(LOG_INFO, &dispatch_complaint_, "%s plugin: dispatching values again", kPluginName);
  }
}

std::string TcpStatesPlugin::Instance(absl::string_view base) const {
  if (netns_.empty()) return std::string(base);
  return base == kAllInstance ? netns_ : absl::StrCat(netns_, "-", base);
}

void TcpStatesPlugin::DispatchStates(const StateCounts& counts, const std::string& instance) {
  // Zeros are dispatched too: a series that exists only while non-zero cannot be graphed
  // or thresholded, and "no value" would read as "plugin broken".
  Dispatch(instance, kCountType, "total", static_cast<gauge_t>(counts.Total()));
  for (TcpState state : kAllStates) {
    Dispatch(instance, kCountType, MetricName(state), static_cast<gauge_t>(counts[state]));
  }
}

void TcpStatesPlugin::DispatchQueued(const QueuedBytes& queued, const std::string& instance) {
  Dispatch(instance, kBytesType, "rx_queued", static_cast<gauge_t>(queued.receive));
  Dispatch(instance, kBytesType, "tx_queued", static_cast<gauge_t>(queued.send));
}

void TcpStatesPlugin::DispatchCounts(const StateCounts& counts, const std::string& instance) {
  DispatchStates(counts, instance);
  if (!options_.report_listen_change) return;
  const uint64_t listen = counts[TcpState::kListen];
  // The first read has nothing to compare with; dispatching 0 there would claim "no change".
  auto [previous, first] = previous_listen_.try_emplace(instance, listen);
  if (!first) {
    Dispatch(instance, kListenChangeType, kListenChangeInstance,
             static_cast<gauge_t>(listen) - static_cast<gauge_t>(previous->second));
    previous->second = listen;
  }
}

void TcpStatesPlugin::DispatchOwners(const CloseWaitAttribution& attribution) {
  const std::string owners_instance = Instance(kOwnersInstance);
  // No CLOSE_WAIT socket, nothing extra: the healthy case adds no series.
  if (attribution.attributed == 0 && attribution.unattributed == 0) {
    logged_owners_.erase(owners_instance);
    return;
  }
  // Owners whose sanitized unit and name coincide (names differing only in replaced bytes)
  // share one series, summed: collectd keeps one value per identifier and read, and would
  // reject the second as "too old".
  std::vector<std::pair<std::string, uint64_t>> series;
  std::string who;
  for (const CloseWaitOwner& owner : attribution.owners) {
    std::string instance = collectd_names::OwnerInstance(owner.unit, owner.comm);
    auto it = std::find_if(series.begin(), series.end(),
                           [&](const auto& entry) { return entry.first == instance; });
    if (it != series.end()) {
      it->second += owner.sockets;
    } else {
      series.emplace_back(std::move(instance), owner.sockets);
    }
    absl::StrAppend(&who, who.empty() ? "" : ", ", owner.sockets, " by ",
                    collectd_names::SanitizeName(owner.comm), " (",
                    collectd_names::SanitizeName(owner.unit), ", ", owner.processes,
                    owner.processes == 1 ? " process, pid " : " processes, most in pid ", owner.pid,
                    ")");
    // (The age is not in this line: it grows at every read, and the line is logged only
    // when it changes.)
  }
  for (const auto& [instance, sockets] : series) {
    Dispatch(owners_instance, kCountType, instance, static_cast<gauge_t>(sockets));
  }
  // Held by owners beyond TopOwners, so that the values add up to close_wait.
  Dispatch(owners_instance, kCountType, "other", static_cast<gauge_t>(attribution.other_sockets));
  Dispatch(owners_instance, kCountType, "unattributed",
           static_cast<gauge_t>(attribution.unattributed));
  Dispatch(owners_instance, kPlainCountType, "unreadable_processes",
           static_cast<gauge_t>(attribution.processes_unreadable));
  Dispatch(owners_instance, kPlainCountType, "hidden_processes",
           static_cast<gauge_t>(attribution.processes_hidden));
  // Age is the sharper signal than the count: one socket idle for an hour is a leak.
  if (attribution.ages) {
    const CloseWaitAges& ages = *attribution.ages;
    Dispatch(owners_instance, kGaugeType, "oldest_age_seconds", ages.oldest_ms / 1000.0);
    Dispatch(owners_instance, kPlainCountType, "older_than_60s",
             static_cast<gauge_t>(ages.older_than_minute));
    Dispatch(owners_instance, kPlainCountType, "older_than_1h",
             static_cast<gauge_t>(ages.older_than_hour));
  }
  LogOwners(attribution, owners_instance, std::move(who));
}

void TcpStatesPlugin::LogOwners(const CloseWaitAttribution& attribution,
                                const std::string& owners_instance, std::string who) {
  // Pids are not in the series names (a restart would start new series); they are logged
  // whenever the owners or the unattributed count change, with names sanitized as in the
  // values (no line breaks from a hostile comm), together with why any socket is
  // unattributed.
  if (who.empty()) who = "no readable process";
  if (attribution.other_sockets > 0) {
    absl::StrAppend(&who, ", ", attribution.other_sockets, " by ", attribution.other_owners,
                    " more owners");
  }
  absl::StrAppend(&who, "; unattributed ", attribution.unattributed);
  std::string& logged = logged_owners_[owners_instance];
  if (who != logged) {
    const std::string why = attribution.unattributed > 0 ? attribution.Why() : "";
    INFO("%s plugin: CLOSE_WAIT sockets held by%s%s: %s%s%s", kPluginName,
         netns_.empty() ? "" : " in ", netns_.c_str(), who.c_str(), why.empty() ? "" : ": ",
         why.c_str());
    logged = std::move(who);
  }
}

void TcpStatesPlugin::DispatchListenPorts(const ListenReport& report) {
  const std::string instance = Instance(kListenPortsInstance);
  for (const ListenPort& port : report.listening) {
    const std::string name = collectd_names::ListenInstance(port.family, port.port);
    Dispatch(instance, kCountType, name, static_cast<gauge_t>(port.sockets));
    // The accept queue of the port's fullest socket, and how full it is (0 ... 1; 1: the
    // next completed handshake is dropped). No fill where the source shows no backlog.
    Dispatch(instance, kPlainCountType, absl::StrCat(name, "-queue"),
             static_cast<gauge_t>(port.queue));
    if (report.backlogs_known)
      Dispatch(instance, kGaugeType, absl::StrCat(name, "-fill"), port.fill());
  }
  // LISTEN sockets on ports beyond MaxListenPorts: counted, not named.
  Dispatch(instance, kPlainCountType, "untracked_sockets",
           static_cast<gauge_t>(report.untracked_sockets));
  // Connections the namespace's listeners dropped since the previous read.
  if (report.overflows) {
    Dispatch(instance, kPlainCountType, "listen_overflows",
             static_cast<gauge_t>(*report.overflows));
  }
  if (report.drops) {
    Dispatch(instance, kPlainCountType, "listen_drops", static_cast<gauge_t>(*report.drops));
  }
  if (options_.notify_vanished_listeners) {
    // The series of a vanished port simply stops (threshold's missing-value check notices
    // after Timeout intervals, if configured); this names it at once, with no configuration.
    for (const ListenPort& port : report.vanished) {
      NotifyListener(port,
                     absl::StrCat("Listener ", FamilyName(port.family), " port ", port.port, " (",
                                  port.sockets, port.sockets == 1 ? " socket" : " sockets",
                                  ") was listening at the previous read and is gone now"));
    }
  }
  if (options_.notify_new_listeners) {
    for (const NewListener& listener : report.appeared) {
      std::string owners;
      for (const ListenerOwner& owner : listener.owners) {
        absl::StrAppend(&owners, owners.empty() ? "" : ", ", "pid ", owner.pid, " ",
                        collectd_names::SanitizeName(owner.comm), " (",
                        collectd_names::SanitizeName(owner.unit), ")");
      }
      const ListenPort& port = listener.port;
      NotifyListener(
          port, absl::StrCat("New listener ", FamilyName(port.family), " port ", port.port, " (",
                             port.sockets, port.sockets == 1 ? " socket" : " sockets",
                             "), held by ", owners.empty() ? "no visible process" : owners));
    }
  }
}

void TcpStatesPlugin::NotifyListener(const ListenPort& port, absl::string_view message) {
  notification_t notification = {};
  notification.severity = NOTIF_WARNING;
  notification.time = cdtime();
  CopyName(hostname_g != nullptr ? hostname_g : "", notification.host);
  CopyName(kPluginName, notification.plugin);
  CopyName(Instance(kListenPortsInstance), notification.plugin_instance);
  CopyName(kCountType, notification.type);
  CopyName(collectd_names::ListenInstance(port.family, port.port), notification.type_instance);
  CopyName(message, notification.message);
  plugin_dispatch_notification(&notification);
}

void TcpStatesPlugin::DispatchPortPressure(const PortPressureReport& report) {
  const std::optional<EndpointUsage>& busiest = report.busiest;
  // Fixed names for thresholds and graphs; 0 when no connection uses an ephemeral port.
  const std::string pressure_instance = Instance(kPressureInstance);
  Dispatch(pressure_instance, kGaugeType, "ephemeral_port_usage", busiest ? busiest->ratio : 0);
  Dispatch(pressure_instance, kPlainCountType, "ephemeral_ports_in_use",
           busiest ? static_cast<gauge_t>(busiest->ports_in_use) : 0);
  // The same ratio under a name that says which endpoint it is (a value cannot carry text).
  if (busiest) {
    Dispatch(pressure_instance, kGaugeType, collectd_names::BusiestInstance(*busiest),
             busiest->ratio);
  }
  const PortSettings& settings = report.settings;
  const std::pair<const char*, int> sysctls[] = {
      {"ip_local_port_range_low", settings.range_low},
      {"ip_local_port_range_high", settings.range_high},
      {"tcp_fin_timeout", settings.fin_timeout},
      {"tcp_tw_reuse", settings.tw_reuse},
      {"tcp_max_tw_buckets", settings.max_tw_buckets},
  };
  for (const auto& [name, value] : sysctls) {
    if (value >= 0) Dispatch(pressure_instance, kGaugeType, name, static_cast<gauge_t>(value));
  }
  if (report.untracked_sockets > 0) {
    c_complain(LOG_WARNING, &pressure_complaint_,
               "%s plugin: %llu sockets toward endpoints beyond the tracking cap are not in "
               "ephemeral_port_usage",
               kPluginName, static_cast<unsigned long long>(report.untracked_sockets));
  }
}

absl::Status TcpStatesPlugin::Read() {
  if (namespaces_.has_value()) return ReadAllNamespaces();
  if (!collector_.has_value())
    return absl::FailedPreconditionError("read callback ran before init");
  absl::StatusOr<Collection> collection = collector_->Collect();
  if (!collection.ok()) {
    c_complain(LOG_ERR, &read_complaint_, "%s plugin: no socket table could be read: %s",
               kPluginName, collection.status().ToString().c_str());
    return collection.status();
  }
  c_release(LOG_INFO, &read_complaint_, "%s plugin: socket table readable again", kPluginName);
  LogSourceIfChanged(collection->snapshot.source_detail);
  DispatchCollection(*collection, "");
  return absl::OkStatus();
}

absl::Status TcpStatesPlugin::ReadAllNamespaces() {
  absl::StatusOr<NamespacesCollection> all = namespaces_->Collect();
  if (!all.ok()) return all.status();
  if (!namespaces_->appeared().empty() || !namespaces_->vanished().empty()) {
    INFO("%s plugin: namespaces: %zu new (%s), %zu gone (%s)", kPluginName,
         namespaces_->appeared().size(),
         collectd_names::SanitizeName(absl::StrJoin(namespaces_->appeared(), " ")).c_str(),
         namespaces_->vanished().size(),
         collectd_names::SanitizeName(absl::StrJoin(namespaces_->vanished(), " ")).c_str());
  }
  for (const NamespaceCollection& ns : all->namespaces) {
    if (ns.collection.ok()) {
      DispatchCollection(*ns.collection, ns.ns.name.netns);
    } else if (reported_unreadable_namespaces_.insert(ns.ns.name.netns).second) {
      WARNING("%s plugin: namespace %s cannot be read: %s", kPluginName,
              collectd_names::SanitizeName(ns.ns.name.netns).c_str(),
              std::string(ns.collection.status().message()).c_str());
    }
  }
  if (all->other_namespaces > 0) {
    DispatchCollection(Collection{all->other, std::nullopt}, "other");
  }
  netns_.clear();
  return absl::OkStatus();
}

void TcpStatesPlugin::DispatchCollection(const Collection& collection, absl::string_view netns) {
  netns_ = netns.empty() ? "" : collectd_names::SanitizeName(netns);
  const Snapshot& snapshot = collection.snapshot;
  if (snapshot.malformed > 0) {
    c_complain(LOG_WARNING, &malformed_complaint_,
               "%s plugin: %llu socket records could not be decoded (%s)", kPluginName,
               static_cast<unsigned long long>(snapshot.malformed), snapshot.source_detail.c_str());
  }
  if (snapshot.unknown_state > 0) {
    c_complain(LOG_WARNING, &unknown_state_complaint_,
               "%s plugin: %llu sockets are in a state this build does not know (newer kernel?);"
               " they are in no count",
               kPluginName, static_cast<unsigned long long>(snapshot.unknown_state));
  }
  DispatchCounts(snapshot.All(), Instance(kAllInstance));
  if (snapshot.queued) DispatchQueued(snapshot.AllQueued(), Instance(kAllInstance));
  if (options_.report_by_family) {
    for (Family family : kAllFamilies) {
      DispatchCounts(snapshot.ForFamily(family), Instance(FamilyName(family)));
      if (snapshot.queued) {
        DispatchQueued((*snapshot.queued)[static_cast<size_t>(family)],
                       Instance(FamilyName(family)));
      }
    }
  }
  // tcpconns' per-port instances: "<port>-local", "<port>-remote".
  for (const PortCounts& port : snapshot.ports) {
    DispatchStates(port.counts,
                   Instance(absl::StrCat(port.port, "-", PortDirectionName(port.direction))));
  }
  if (collection.diagnosis) {
    const Diagnosis& diagnosis = *collection.diagnosis;
    if (diagnosis.close_wait) DispatchOwners(*diagnosis.close_wait);
    if (diagnosis.listen) DispatchListenPorts(*diagnosis.listen);
    if (diagnosis.port_pressure) DispatchPortPressure(*diagnosis.port_pressure);
  }
}

// Runs one callback body; turns a failed Status or any exception into collectd's -1.
template <typename Body>
int GuardCallback(const char* callback, Body body) noexcept {
  try {
    absl::Status status = body();
    if (status.ok()) return 0;
    // Read failures are already logged, rate-limited, by Read().
    if (absl::string_view(callback) != "read") {
      ERROR("%s plugin: %s: %s", kPluginName, callback, std::string(status.message()).c_str());
    }
  } catch (const std::exception& e) {
    ERROR("%s plugin: %s: unexpected exception: %s", kPluginName, callback, e.what());
  } catch (...) {
    ERROR("%s plugin: %s: unexpected non-standard exception", kPluginName, callback);
  }
  return -1;
}

int ConfigCallback(oconfig_item_t* block) noexcept {
  return GuardCallback("config", [block] { return ThePlugin().Configure(*block); });
}

int InitCallback() noexcept {
  return GuardCallback("init", [] { return ThePlugin().Init(); });
}

int ReadCallback() noexcept {
  return GuardCallback("read", [] { return ThePlugin().Read(); });
}

int ShutdownCallback() noexcept {
  return GuardCallback("shutdown", [] {
    ThePlugin().Shutdown();
    return absl::OkStatus();
  });
}

}  // namespace
}  // namespace tcpstates

extern "C" __attribute__((visibility("default"))) void module_register(void) {
  plugin_register_complex_config(tcpstates::kPluginName, tcpstates::ConfigCallback);
  plugin_register_init(tcpstates::kPluginName, tcpstates::InitCallback);
  plugin_register_read(tcpstates::kPluginName, tcpstates::ReadCallback);
  plugin_register_shutdown(tcpstates::kPluginName, tcpstates::ShutdownCallback);
}
