#include "plugins/collectd/plugin_options.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tcpstates {
namespace {

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

absl::StatusOr<int> ParsePositive(const oconfig_item_t& item, int max) {
  if (item.values_num == 1 && item.children_num == 0 &&
      item.values[0].type == OCONFIG_TYPE_NUMBER) {
    const double number = item.values[0].value.number;
    if (number >= 1 && number <= max && number == static_cast<int>(number)) {
      return static_cast<int>(number);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(item.key, " takes a whole number from 1 to ", max,
                                                 ", got ", DescribeValues(item)));
}

// `LocalPort 22`, `LocalPort "443"` (tcpconns takes both), or several on one line. Repeats
// add up; a port given twice counts once.
absl::Status ParsePorts(const oconfig_item_t& item, std::vector<uint16_t>* ports) {
  const auto refuse = [&item] {
    return absl::InvalidArgumentError(
        absl::StrCat(item.key, " takes port numbers from 1 to 65535, got ", DescribeValues(item)));
  };
  if (item.values_num < 1 || item.children_num != 0) return refuse();
  for (int i = 0; i < item.values_num; ++i) {
    const oconfig_value_t& value = item.values[i];
    double number = 0;
    if (value.type == OCONFIG_TYPE_NUMBER) {
      number = value.value.number;
    } else if (value.type != OCONFIG_TYPE_STRING ||
               !absl::SimpleAtod(value.value.string, &number)) {
      return refuse();
    }
    if (!(number >= 1 && number <= 65535) || number != static_cast<int>(number)) return refuse();
    const auto port = static_cast<uint16_t>(number);
    if (std::find(ports->begin(), ports->end(), port) == ports->end()) ports->push_back(port);
  }
  if (ports->size() > kMaxRequestPorts) {
    return absl::InvalidArgumentError(
        absl::StrCat(item.key, ": at most ", kMaxRequestPorts, " ports"));
  }
  return absl::OkStatus();
}

// One word, turned into the core's type by `parse` (whose message names what it accepts).
template <typename Parse>
auto ParseWord(const oconfig_item_t& item, absl::string_view accepted, Parse parse)
    -> decltype(parse(absl::string_view())) {
  if (item.values_num != 1 || item.children_num != 0 ||
      item.values[0].type != OCONFIG_TYPE_STRING) {
    return absl::InvalidArgumentError(
        absl::StrCat(item.key, " takes one of ", accepted, ", got ", DescribeValues(item)));
  }
  auto parsed = parse(item.values[0].value.string);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(item.key, ": ", parsed.status().message()));
  }
  return parsed;
}

// The true/false options, all parsed alike: the plugin's own, and the analyses'.
constexpr std::pair<const char*, bool PluginOptions::*> kBooleanOptions[] = {
    {"ReportByFamily", &PluginOptions::report_by_family},
    {"ReportListenChange", &PluginOptions::report_listen_change},
    {"NotifyVanishedListeners", &PluginOptions::notify_vanished_listeners},
    {"NotifyNewListeners", &PluginOptions::notify_new_listeners},
    {"QueuedBytes", &PluginOptions::queued_bytes},
    {"AllNamespaces", &PluginOptions::all_namespaces},
};
constexpr std::pair<const char*, bool AnalysisChoices::*> kAnalysisOptions[] = {
    {"CloseWaitOwners", &AnalysisChoices::close_wait_owners},
    {"ListenPorts", &AnalysisChoices::listen_ports},
    {"PortPressure", &AnalysisChoices::port_pressure},
};

// The field the true/false option `key` sets; nullptr when `key` is not one.
bool* FindBooleanOption(absl::string_view key, PluginOptions* options) {
  for (const auto& [name, field] : kBooleanOptions) {
    if (absl::EqualsIgnoreCase(key, name)) return &(options->*field);
  }
  for (const auto& [name, field] : kAnalysisOptions) {
    if (absl::EqualsIgnoreCase(key, name)) return &(options->analyses.*field);
  }
  return nullptr;
}

}  // namespace

absl::Status ParsePluginOptions(const oconfig_item_t& block, PluginOptions* options) {
  for (int i = 0; i < block.children_num; ++i) {
    const oconfig_item_t& item = block.children[i];
    const absl::string_view key = item.key;
    if (bool* field = FindBooleanOption(key, options)) {
      absl::StatusOr<bool> value = ParseBoolean(item);
      if (!value.ok()) return value.status();
      *field = *value;
    } else if (absl::EqualsIgnoreCase(key, "Source")) {
      absl::StatusOr<SourceKind> source = ParseWord(item, "auto, netlink or proc", ParseSourceKind);
      if (!source.ok()) return source.status();
      options->source = *source;
    } else if (absl::EqualsIgnoreCase(key, "Counting")) {
      absl::StatusOr<CountingChoice> counting =
          ParseWord(item, "auto, full or counters", ParseCountingChoice);
      if (!counting.ok()) return counting.status();
      options->counting = *counting;
    } else if (absl::EqualsIgnoreCase(key, "TopOwners")) {
      absl::StatusOr<int> value = ParsePositive(item, kMaxTopOwners);
      if (!value.ok()) return value.status();
      options->analyses.top_owners = *value;
    } else if (absl::EqualsIgnoreCase(key, "MaxNamespaces")) {
      absl::StatusOr<int> value = ParsePositive(item, kMaxMaxNamespaces);
      if (!value.ok()) return value.status();
      options->max_namespaces = *value;
    } else if (absl::EqualsIgnoreCase(key, "LocalPort") ||
               absl::EqualsIgnoreCase(key, "RemotePort")) {
      const bool local = absl::EqualsIgnoreCase(key, "LocalPort");
      if (absl::Status status =
              ParsePorts(item, local ? &options->local_ports : &options->remote_ports);
          !status.ok()) {
        return status;
      }
    } else if (absl::EqualsIgnoreCase(key, "MaxListenPorts")) {
      absl::StatusOr<int> value = ParsePositive(item, kMaxMaxListenPorts);
      if (!value.ok()) return value.status();
      options->analyses.max_listen_ports = *value;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option \"", key, "\"; accepted options: ", kAcceptedOptions));
    }
  }
  const CollectionRequest request = options->Request();
  if (absl::Status status = ValidateRequest(request); !status.ok()) {
    // The core names the features; say which options they are.
    const bool about_counting =
        request.counting == CountingChoice::kCounters && !NeedsEverySocket(request).empty();
    return absl::InvalidArgumentError(absl::StrCat(
        status.message(),
        about_counting ? " (ReportByFamily, PortPressure and QueuedBytes need every socket)" : ""));
  }
  return absl::OkStatus();
}

CollectionRequest PluginOptions::Request() const {
  CollectionRequest request{.source = source,
                            .counting = counting,
                            .per_family = report_by_family,
                            .local_ports = local_ports,
                            .remote_ports = remote_ports,
                            .queued_bytes = queued_bytes};
  request.diagnosis = DiagnosisFor(analyses);
  return request;
}

}  // namespace tcpstates
