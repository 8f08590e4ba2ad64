#include "common/diagnosis/port_pressure.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tcpstates {
namespace {

std::string ReadSysctl(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buffer[128];
  ssize_t n = read(fd, buffer, sizeof buffer - 1);
  close(fd);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

int ReadIntSysctl(const std::string& path) {
  int value;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadSysctl(path)), &value) ? value : -1;
}

}  // namespace

PortSettings ReadPortSettings(const std::string& dir) {
  PortSettings settings;
  std::vector<absl::string_view> range =
      absl::StrSplit(absl::StripAsciiWhitespace(ReadSysctl(dir + "/ip_local_port_range")),
                     absl::ByAnyChar(" \t"), absl::SkipEmpty());
  int low, high;
  if (range.size() == 2 && absl::SimpleAtoi(range[0], &low) && absl::SimpleAtoi(range[1], &high) &&
      low <= high) {
    settings.range_low = low;
    settings.range_high = high;
  }
  settings.fin_timeout = ReadIntSysctl(dir + "/tcp_fin_timeout");
  settings.tw_reuse = ReadIntSysctl(dir + "/tcp_tw_reuse");
  settings.max_tw_buckets = ReadIntSysctl(dir + "/tcp_max_tw_buckets");
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

PortPressure::PortPressure(std::string sys_net_ipv4, size_t max_endpoints)
    : sys_net_ipv4_(std::move(sys_net_ipv4)),
      max_endpoints_(max_endpoints),
      settings_(ReadPortSettings(sys_net_ipv4_)) {}

void PortPressure::Observe(const SocketRecord& record) {
  if (record.remote_port == 0 || record.local_port < settings_.range_low ||
      record.local_port > settings_.range_high) {
    return;  // listeners, and sockets whose local port the range did not hand out
  }
  Key key{record.family, record.remote_port, {}};
  const size_t address_size = record.family == Family::kIpv4 ? 4 : 16;
  std::copy_n(record.remote_address.begin(), address_size, key.address.begin());
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
  const Key* busiest = nullptr;
  uint64_t most = 0;
  for (const auto& [key, count] : usage_) {
    if (count > most) {
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
  settings_ = ReadPortSettings(sys_net_ipv4_);
  return report;
}

}  // namespace tcpstates
