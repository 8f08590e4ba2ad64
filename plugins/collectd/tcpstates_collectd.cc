// tcpstates.so: the collectd read plugin. A translation layer only: <Plugin tcpstates> is
// parsed into PluginOptions, init creates the core's Collector (which owns the netlink socket
// and buffers), each read turns one Snapshot into collectd values, shutdown releases it all.
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

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/collector.h"
#include "common/snapshot.h"
#include "common/tcp_state.h"

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

struct PluginOptions {
  SourceKind source = SourceKind::kAuto;
  bool report_by_family = false;
  bool report_listen_change = true;
};

constexpr char kAcceptedOptions[] = "Source, ReportByFamily, ReportListenChange";

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
  // A plugin_instance ("all", "ipv4", "ipv6") and the LISTEN count it had at the previous
  // read, for listen_change.
  struct Series {
    std::string instance;
    std::optional<uint64_t> previous_listen;
  };

  void Dispatch(const Series& series, absl::string_view type, absl::string_view type_instance,
                gauge_t value);
  void DispatchCounts(const StateCounts& counts, Series* series);
  void LogSourceIfChanged(const std::string& detail);

  PluginOptions options_;
  std::optional<Collector> collector_;
  std::string logged_source_detail_;
  Series all_{kAllInstance, std::nullopt};
  std::array<Series, 2> families_{Series{std::string(FamilyName(Family::kIpv4)), std::nullopt},
                                  Series{std::string(FamilyName(Family::kIpv6)), std::nullopt}};
  c_complain_t read_complaint_ = C_COMPLAIN_INIT_STATIC;
  c_complain_t dispatch_complaint_ = C_COMPLAIN_INIT_STATIC;
  c_complain_t malformed_complaint_ = C_COMPLAIN_INIT_STATIC;
  c_complain_t unknown_state_complaint_ = C_COMPLAIN_INIT_STATIC;
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

// The arguments of `Key value ...`, as the config file spells it (for messages).
std::string DescribeValues(const oconfig_item_t& item) {
  std::string text;
  for (int i = 0; i < item.values_num; ++i) {
    const oconfig_value_t& value = item.values[i];
    if (i > 0) text += " ";
    switch (value.type) {
      case OCONFIG_TYPE_STRING:
        absl::StrAppend(&text, "\"", value.value.string, "\"");
        break;
      case OCONFIG_TYPE_NUMBER:
        absl::StrAppend(&text, value.value.number);
        break;
      case OCONFIG_TYPE_BOOLEAN:
        text += value.value.boolean ? "true" : "false";
        break;
    }
  }
  return text.empty() ? "nothing" : text;
}

absl::StatusOr<bool> ParseBoolean(const oconfig_item_t& item) {
  if (item.values_num == 1 && item.children_num == 0) {
    const oconfig_value_t& value = item.values[0];
    if (value.type == OCONFIG_TYPE_BOOLEAN) return value.value.boolean != 0;
    // Quoted "true"/"false" is common in hand-written configs; accept it like collectd does.
    if (value.type == OCONFIG_TYPE_STRING) {
      if (absl::EqualsIgnoreCase(value.value.string, "true")) return true;
      if (absl::EqualsIgnoreCase(value.value.string, "false")) return false;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(item.key, " takes true or false, got ", DescribeValues(item)));
}

absl::StatusOr<SourceKind> ParseSource(const oconfig_item_t& item) {
  if (item.values_num != 1 || item.children_num != 0 ||
      item.values[0].type != OCONFIG_TYPE_STRING) {
    return absl::InvalidArgumentError(
        absl::StrCat(item.key, " takes one of auto, netlink or proc, got ", DescribeValues(item)));
  }
  absl::StatusOr<SourceKind> kind = ParseSourceKind(item.values[0].value.string);
  if (!kind.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(item.key, ": ", kind.status().message()));
  }
  return kind;
}

absl::Status TcpStatesPlugin::Configure(const oconfig_item_t& block) {
  for (int i = 0; i < block.children_num; ++i) {
    const oconfig_item_t& item = block.children[i];
    const absl::string_view key = item.key;
    if (absl::EqualsIgnoreCase(key, "Source")) {
      absl::StatusOr<SourceKind> source = ParseSource(item);
      if (!source.ok()) return source.status();
      options_.source = *source;
    } else if (absl::EqualsIgnoreCase(key, "ReportByFamily")) {
      absl::StatusOr<bool> value = ParseBoolean(item);
      if (!value.ok()) return value.status();
      options_.report_by_family = *value;
    } else if (absl::EqualsIgnoreCase(key, "ReportListenChange")) {
      absl::StatusOr<bool> value = ParseBoolean(item);
      if (!value.ok()) return value.status();
      options_.report_listen_change = *value;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option \"", key, "\"; accepted options: ", kAcceptedOptions));
    }
  }
  return absl::OkStatus();
}

absl::Status TcpStatesPlugin::Init() {
  absl::StatusOr<Collector> collector = Collector::Create({.source = options_.source});
  if (!collector.ok()) {
    return absl::Status(
        collector.status().code(),
        absl::StrCat("cannot open the socket table (Source ", SourceKindName(options_.source),
                     "): ", collector.status().message(), "; \"Source auto\" falls back to /proc"));
  }
  collector_ = std::move(*collector);
  LogSourceIfChanged(collector_->source_detail());
  return absl::OkStatus();
}

void TcpStatesPlugin::Shutdown() {
  collector_.reset();  // closes the netlink socket and frees the read buffers
  logged_source_detail_.clear();
  all_.previous_listen.reset();
  for (Series& series : families_) series.previous_listen.reset();
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

void TcpStatesPlugin::Dispatch(const Series& series, absl::string_view type,
                               absl::string_view type_instance, gauge_t value) {
  value_t values[1];
  values[0].gauge = value;
  value_list_t list = VALUE_LIST_INIT;
  list.values = values;
  list.values_len = 1;
  // host, time and interval left zero: the daemon fills them in (interval from <LoadPlugin>).
  CopyName(kPluginName, list.plugin);
  CopyName(series.instance, list.plugin_instance);
  CopyName(type, list.type);
  CopyName(type_instance, list.type_instance);
  if (plugin_dispatch_values(&list) != 0) {
    c_complain(LOG_WARNING, &dispatch_complaint_,
               "%s plugin: plugin_dispatch_values failed for %s/%s-%s", kPluginName,
               series.instance.c_str(), list.type, list.type_instance);
  } else {
    c_release(LOG_INFO, &dispatch_complaint_, "%s plugin: dispatching values again", kPluginName);
  }
}

void TcpStatesPlugin::DispatchCounts(const StateCounts& counts, Series* series) {
  // Zeros are dispatched too: a series that exists only while non-zero cannot be graphed
  // or thresholded, and "no value" would read as "plugin broken".
  Dispatch(*series, kCountType, "total", static_cast<gauge_t>(counts.Total()));
  for (TcpState state : kAllStates) {
    Dispatch(*series, kCountType, MetricName(state), static_cast<gauge_t>(counts[state]));
  }
  if (!options_.report_listen_change) return;
  const uint64_t listen = counts[TcpState::kListen];
  // The first read has nothing to compare with; dispatching 0 there would claim "no change".
  if (series->previous_listen.has_value()) {
    Dispatch(*series, kListenChangeType, kListenChangeInstance,
             static_cast<gauge_t>(listen) - static_cast<gauge_t>(*series->previous_listen));
  }
  series->previous_listen = listen;
}

absl::Status TcpStatesPlugin::Read() {
  absl::StatusOr<Snapshot> snapshot =
      collector_.has_value() ? collector_->Collect()
                             : absl::FailedPreconditionError("read callback ran before init");
  if (!snapshot.ok()) {
    c_complain(LOG_ERR, &read_complaint_, "%s plugin: no socket table could be read: %s",
               kPluginName, snapshot.status().ToString().c_str());
    return snapshot.status();
  }
  c_release(LOG_INFO, &read_complaint_, "%s plugin: socket table readable again", kPluginName);
  LogSourceIfChanged(snapshot->source_detail);
  if (snapshot->malformed > 0) {
    c_complain(LOG_WARNING, &malformed_complaint_,
               "%s plugin: %llu socket records could not be decoded (%s)", kPluginName,
               static_cast<unsigned long long>(snapshot->malformed),
               snapshot->source_detail.c_str());
  }
  if (snapshot->unknown_state > 0) {
    c_complain(LOG_WARNING, &unknown_state_complaint_,
               "%s plugin: %llu sockets are in a state this build does not know (newer kernel?);"
               " they are in no count",
               kPluginName, static_cast<unsigned long long>(snapshot->unknown_state));
  }

  DispatchCounts(snapshot->All(), &all_);
  if (options_.report_by_family) {
    for (Family family : kAllFamilies) {
      DispatchCounts(snapshot->ForFamily(family), &families_[static_cast<size_t>(family)]);
    }
  }
  return absl::OkStatus();
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
