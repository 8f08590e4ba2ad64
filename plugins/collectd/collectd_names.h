// Instance names for the collectd plugin's diagnosis values, built from text we do not
// control: process names (/proc/PID/comm: any byte but NUL, chosen by whoever started the
// process) and cgroup names. collectd puts instance names into identifiers
// ("host/plugin-instance/type-instance", split on '/' by unixsock and the network plugin),
// file names (csv, rrdtool), log lines and notification text, so a name must never carry a
// '/', a control character, a quote or a separator of any of those formats.
//
// Kept free of collectd headers so that it can be unit-tested on its own.
#ifndef TCPSTATES_PLUGINS_COLLECTD_COLLECTD_NAMES_H_
#define TCPSTATES_PLUGINS_COLLECTD_COLLECTD_NAMES_H_

#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/diagnosis/port_pressure.h"
#include "common/model/socket_record.h"
#include "common/model/tcp_state.h"

namespace tcpstates::collectd_names {

// value_list_t's name fields are char[DATA_MAX_NAME_LEN] (128 in collectd 5): 127 bytes and
// the NUL. Names are cut here rather than silently by the daemon's copy.
inline constexpr size_t kMaxNameLength = 127;
// /proc/PID/comm is at most 15 bytes today (TASK_COMM_LEN 16); the cap only protects the
// unit's share of the name if that ever changes.
inline constexpr size_t kMaxCommLength = 63;
// Stands in for an empty unit (no cgroup v2 path) or an empty process name.
inline constexpr char kUnknown[] = "unknown";

inline bool IsKept(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

// Every byte outside [A-Za-z0-9_.-] becomes '_' (one '_' per byte, so a multi-byte UTF-8
// character becomes several), then the result is cut to `max_length` bytes. Deliberately
// lossy and simple: what is left is safe in every collectd writer, and an operator can
// predict the name from `ps -o comm`. Empty text becomes "unknown".
inline std::string SanitizeName(absl::string_view text, size_t max_length = kMaxNameLength) {
  if (text.empty()) text = kUnknown;
  std::string out;
  out.reserve(std::min(text.size(), max_length));
  for (unsigned char c : text) {
    if (out.size() == max_length) break;
    out.push_back(IsKept(c) ? static_cast<char>(c) : '_');
  }
  return out;
}

// type_instance of a CLOSE_WAIT owner: "<unit>-<comm>", e.g. "nginx.service-nginx". Always
// contains a '-', so it can never equal the fixed instances next to it ("unattributed",
// "other"). The comm keeps its full (sanitized) length; the unit is cut to what remains.
inline std::string OwnerInstance(absl::string_view unit, absl::string_view comm) {
  const std::string sanitized_comm = SanitizeName(comm, kMaxCommLength);
  return absl::StrCat(SanitizeName(unit, kMaxNameLength - 1 - sanitized_comm.size()), "-",
                      sanitized_comm);
}

// type_instance of a listening port: "ipv4-8080", "ipv6-443".
inline std::string ListenInstance(Family family, uint16_t port) {
  return absl::StrCat(FamilyName(family), "-", port);
}

// type_instance naming the busiest endpoint: "busiest-ipv4-10.0.0.1-443",
// "busiest-ipv6-2001_db8__1-443" (':' is special to rrdtool and graph definitions, so it
// becomes '_' like every other byte outside the kept set).
inline std::string BusiestInstance(const EndpointUsage& usage) {
  char text[INET6_ADDRSTRLEN] = "";
  if (inet_ntop(usage.family == Family::kIpv4 ? AF_INET : AF_INET6, usage.address.data(), text,
                sizeof text) == nullptr) {
    text[0] = '\0';
  }
  return absl::StrCat("busiest-", FamilyName(usage.family), "-", SanitizeName(text), "-",
                      usage.port);
}

}  // namespace tcpstates::collectd_names

#endif  // TCPSTATES_PLUGINS_COLLECTD_COLLECTD_NAMES_H_
