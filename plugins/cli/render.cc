#include "plugins/cli/render.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tcpstates::cli {
namespace {

struct Headline {
  absl::string_view name;
  uint64_t value;
  absl::string_view meaning;
};

std::array<Headline, 5> Headlines(const Snapshot& s) {
  return {{
      {"tcp_connections", s.connections(), "sockets in any state"},
      {"tcp_established", s.Count(TcpState::kEstablished), "open connections"},
      {"tcp_time_wait", s.Count(TcpState::kTimeWait), "worry above 5000: ephemeral ports"},
      {"tcp_close_wait", s.Count(TcpState::kCloseWait), "worry above 10 sustained: app leak"},
      {"tcp_listen", s.Count(TcpState::kListen), "worry when it drops: a service died"},
  }};
}

void AppendJsonString(absl::string_view text, std::string* out) {
  out->push_back('"');
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      absl::StrAppendFormat(out, "\\u%04x", c);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

}  // namespace

std::string RenderTable(const Snapshot& s) {
  std::string out;
  for (const Headline& h : Headlines(s)) {
    absl::StrAppendFormat(&out, "%-16s %10d   %s\n", h.name, h.value, h.meaning);
  }
  absl::StrAppendFormat(&out, "\n%-12s %10s %10s %10s\n", "state", "ipv4", "ipv6", "total");
  for (TcpState state : kAllStates) {
    absl::StrAppendFormat(&out, "%-12s %10d %10d %10d\n", KernelName(state), s.ipv4[state],
                          s.ipv6[state], s.Count(state));
  }
  absl::StrAppendFormat(&out, "%-12s %10d %10d %10d\n", "all", s.ipv4.Total(), s.ipv6.Total(),
                        s.connections());
  absl::StrAppendFormat(&out, "\nsource: %s (%s)\ncollected in %.3f ms\n", SourceKindName(s.source),
                        s.source_detail, absl::ToDoubleMilliseconds(s.elapsed));
  if (s.malformed > 0) {
    absl::StrAppendFormat(&out, "warning: %d malformed lines or messages skipped\n", s.malformed);
  }
  if (s.unknown_state > 0) {
    absl::StrAppendFormat(&out, "warning: %d sockets in states this version does not know\n",
                          s.unknown_state);
  }
  return out;
}

std::string RenderJson(const Snapshot& s) {
  std::string out = "{";
  for (const Headline& h : Headlines(s)) absl::StrAppend(&out, "\"", h.name, "\":", h.value, ",");
  out += "\"states\":{";
  for (Family family : kAllFamilies) {
    if (family != Family::kIpv4) out += ",";
    absl::StrAppend(&out, "\"", FamilyName(family), "\":{");
    for (TcpState state : kAllStates) {
      if (state != kAllStates.front()) out += ",";
      absl::StrAppend(&out, "\"", MetricName(state), "\":", s.ForFamily(family)[state]);
    }
    out += "}";
  }
  out += "},\"source\":";
  AppendJsonString(SourceKindName(s.source), &out);
  out += ",\"source_detail\":";
  AppendJsonString(s.source_detail, &out);
  absl::StrAppend(&out, ",\"elapsed_us\":", absl::ToInt64Microseconds(s.elapsed),
                  ",\"taken_at_unix_ns\":", absl::ToUnixNanos(s.taken_at),
                  ",\"malformed\":", s.malformed, ",\"unknown_state\":", s.unknown_state, "}\n");
  return out;
}

}  // namespace tcpstates::cli
