#include "common/diagnosis/port_pressure.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tcpstates {
namespace {

int ReadIntSysctl(const std::string& path) {
  std::optional<int64_t> value = ReadNumberFile(path);
  return value && *value >= 0 && *value <= INT32_MAX ? static_cast<int>(*value) : -1;
}

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

PortSettings ReadPortSettings(const ProcRoot& proc) {
  PortSettings settings;
  absl::StatusOr<std::string> text = ReadSmallFile(proc.Ipv4Sysctl("ip_local_port_range"), 4096);
  std::vector<absl::string_view> range;
  if (text.ok()) {
    range = absl::StrSplit(absl::StripAsciiWhitespace(*text), absl::ByAnyChar(" \t"),
                           absl::SkipEmpty());
  }
  int low, high;
  if (range.size() == 2 && absl::SimpleAtoi(range[0], &low) && absl::SimpleAtoi(range[1], &high) &&
      low <= high) {
    settings.range_low = low;
    settings.range_high = high;
  }
  settings.fin_timeout = ReadIntSysctl(proc.Ipv4Sysctl("tcp_fin_timeout"));
  settings.tw_reuse = ReadIntSysctl(proc.Ipv4Sysctl("tcp_tw_reuse"));
  settings.max_tw_buckets = ReadIntSysctl(proc.Ipv4Sysctl("tcp_max_tw_buckets"));
  return settings;
}

std::string EndpointUsage::EndpointText() const {
  char text[INET6_ADDRSTRLEN] = "?";
  if (family == Family::kIpv4) {
    inet_ntop(AF_INET, address.data(), text, sizeof text);
    return absl::StrCat(text, ":", port);
  }
  inet_ntop(AF_INET6, address.data(), text, sizeof text);
  return absl::StrCat("[", text, "]:", port);
}

PortPressure::PortPressure(ProcRoot proc, size_t max_endpoints)
    : PortPressure([proc = std::move(proc)] { return ReadPortSettings(proc); }, max_endpoints) {}

PortPressure::PortPressure(std::function<PortSettings()> read_settings, size_t max_endpoints)
    : read_settings_(std::move(read_settings)),
      max_endpoints_(max_endpoints),
      settings_(read_settings_()) {}

void PortPressure::Observe(const SocketRecord& record) {
  if (record.remote_port == 0 || record.local_port < settings_.range_low ||
      record.local_port > settings_.range_high) {
    return;  // listeners, and sockets whose local port the range did not hand out
  }
  Key key{record.family, record.remote_port, {}};
  const uint8_t* address = record.remote_address.data();
  if (record.family == Family::kIpv6 &&
      std::equal(std::begin(kV4MappedPrefix), std::end(kV4MappedPrefix), address)) {
    key.family = Family::kIpv4;
    address += sizeof kV4MappedPrefix;
  }
  std::copy_n(address, key.family == Family::kIpv4 ? 4 : 16, key.address.begin());
  auto it = usage_.find(key);
  if (it != usage_.end()) {
    ++it->second;
  } else if (usage_.size() < max_endpoints_) {
    usage_.emplace(key, 1);
  } else {
    ++untracked_;
  }
}

PortPressureReport PortPressure::Finish() {
  PortPressureReport report;
  report.settings = settings_;
  report.endpoints = usage_.size();
  report.untracked_sockets = untracked_;
  // Of endpoints equally busy, the lowest (family, address, port): the same one at every
  // collection, whatever order the table holds them in, so its series name does not flip.
  const Key* busiest = nullptr;
  uint64_t most = 0;
  for (const auto& [key, count] : usage_) {
    if (count > most || (count == most && busiest != nullptr && key < *busiest)) {
      most = count;
      busiest = &key;
    }
  }
  if (busiest != nullptr) {
    EndpointUsage usage;
    usage.family = busiest->family;
    usage.address = busiest->address;
    usage.port = busiest->port;
    usage.ports_in_use = most;
    usage.ratio = static_cast<double>(most) / settings_.range_size();
    report.busiest = usage;
  }
  usage_.clear();
  untracked_ = 0;
  settings_ = read_settings_();
  return report;
}

}  // namespace tcpstates
