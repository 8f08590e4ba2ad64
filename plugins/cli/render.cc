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

// Length of the valid UTF-8 sequence starting at text[i], 0 if there is none.
size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length;
  uint32_t min;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, min = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, min = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, min = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  uint32_t code = lead & (0x7f >> length);
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3f);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

void AppendJsonString(absl::string_view text, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(out, "\\u%04x", c);
    } else if (c >= 0x80) {
      const size_t length = Utf8SequenceLength(text, i);
      if (length == 0) {
        absl::StrAppendFormat(out, "\\u%04x", c);
      } else {
        out->append(text.data() + i, length);
        i += length;
        continue;
      }
    } else {
      out->push_back(static_cast<char>(c));
    }
    ++i;
  }
  out->push_back('"');
}

// For a terminal: printable ASCII as is, everything else (and backslash) as \xNN.
std::string Printable(absl::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  return out;
}

std::string PortText(const ListenPort& port) {
  return absl::StrCat(FamilyName(port.family), " port ", port.port, " (", port.sockets,
                      port.sockets == 1 ? " socket)" : " sockets)");
}

void AppendWhy(const Diagnosis& d, std::string* out) {
  *out += "\nwhy:\n";
  if (d.close_wait) {
    const CloseWaitAttribution& a = *d.close_wait;
    if (a.owners.empty() && a.unattributed == 0) {
      *out += "  CLOSE_WAIT owners: none (no CLOSE_WAIT sockets)\n";
    } else {
      absl::StrAppendFormat(out, "  CLOSE_WAIT owners (top %d):\n", a.owners.size());
      absl::StrAppendFormat(out, "    %8s %8s  %-24s %s\n", "sockets", "pid", "unit", "comm");
      for (const CloseWaitOwner& o : a.owners) {
        absl::StrAppendFormat(out, "    %8d %8d  %-24s %s\n", o.sockets, o.pid,
                              o.unit.empty() ? "-" : Printable(o.unit), Printable(o.comm));
      }
      if (a.unattributed > 0) {
        absl::StrAppendFormat(out, "    %8d unattributed", a.unattributed);
        if (a.processes_unreadable > 0) {
          absl::StrAppendFormat(out, " (partial: fds of %d processes not readable; run as root)",
                                a.processes_unreadable);
        }
        if (a.budget_exhausted) *out += " (search stopped at its time/fd budget)";
        *out += "\n";
      }
    }
  }
  if (d.listen) {
    const ListenReport& l = *d.listen;
    absl::StrAppendFormat(out, "  listening ports: %d", l.listening.size());
    if (l.untracked_sockets > 0)
      absl::StrAppendFormat(out, " (+%d sockets beyond the cap)", l.untracked_sockets);
    *out += "\n";
    for (const ListenPort& port : l.vanished) {
      absl::StrAppend(out, "  vanished listener: ", PortText(port), "\n");
    }
  }
  if (d.port_pressure) {
    const PortPressureReport& p = *d.port_pressure;
    const PortSettings& s = p.settings;
    if (p.busiest) {
      absl::StrAppendFormat(out, "  ephemeral ports: busiest endpoint %s uses %d of %d (%.2f%%)\n",
                            p.busiest->EndpointText(), p.busiest->ports_in_use, s.range_size(),
                            100 * p.busiest->ratio);
    } else {
      *out += "  ephemeral ports: no connection uses the ephemeral range\n";
    }
    absl::StrAppendFormat(out,
                          "    ip_local_port_range=%d-%d tcp_fin_timeout=%d tcp_tw_reuse=%d "
                          "tcp_max_tw_buckets=%d\n",
                          s.range_low, s.range_high, s.fin_timeout, s.tw_reuse, s.max_tw_buckets);
  }
}

void AppendPortsJson(const std::vector<ListenPort>& ports, std::string* out) {
  *out += "[";
  for (size_t i = 0; i < ports.size(); ++i) {
    absl::StrAppend(out, i ? "," : "", "{\"family\":\"", FamilyName(ports[i].family),
                    "\",\"port\":", ports[i].port, ",\"sockets\":", ports[i].sockets, "}");
  }
  *out += "]";
}

void AppendWhyJson(const Diagnosis& d, std::string* out) {
  if (d.close_wait) {
    *out += "\"close_wait_owners\":[";
    for (size_t i = 0; i < d.close_wait->owners.size(); ++i) {
      const CloseWaitOwner& o = d.close_wait->owners[i];
      absl::StrAppend(out, i ? "," : "", "{\"pid\":", o.pid, ",\"comm\":");
      AppendJsonString(o.comm, out);
      *out += ",\"unit\":";
      AppendJsonString(o.unit, out);
      absl::StrAppend(out, ",\"sockets\":", o.sockets, "}");
    }
    absl::StrAppend(out, "],\"close_wait_unattributed\":", d.close_wait->unattributed,
                    ",\"processes_unreadable\":", d.close_wait->processes_unreadable,
                    ",\"attribution_budget_exhausted\":",
                    d.close_wait->budget_exhausted ? "true" : "false", ",");
  }
  if (d.listen) {
    *out += "\"listening\":";
    AppendPortsJson(d.listen->listening, out);
    *out += ",\"vanished_listeners\":";
    AppendPortsJson(d.listen->vanished, out);
    absl::StrAppend(out, ",\"listen_untracked\":", d.listen->untracked_sockets, ",");
  }
  if (d.port_pressure) {
    const PortPressureReport& p = *d.port_pressure;
    const PortSettings& s = p.settings;
    absl::StrAppend(out, "\"port_pressure\":{\"range_low\":", s.range_low,
                    ",\"range_high\":", s.range_high, ",\"tcp_fin_timeout\":", s.fin_timeout,
                    ",\"tcp_tw_reuse\":", s.tw_reuse, ",\"tcp_max_tw_buckets\":", s.max_tw_buckets,
                    ",\"endpoints\":", p.endpoints, ",\"untracked\":", p.untracked_sockets);
    if (p.busiest) {
      *out += ",\"busiest\":{\"endpoint\":";
      AppendJsonString(p.busiest->EndpointText(), out);
      absl::StrAppend(out, ",\"ports_in_use\":", p.busiest->ports_in_use,
                      ",\"ratio\":", absl::StrFormat("%.6f", p.busiest->ratio), "}");
    }
    *out += "},";
  }
}

}  // namespace

std::string RenderTable(const Snapshot& s, const Diagnosis* diagnosis) {
  std::string out;
  for (const Headline& h : Headlines(s)) {
    absl::StrAppendFormat(&out, "%-16s %10d   %s\n", h.name, h.value, h.meaning);
  }
  absl::StrAppendFormat(&out, "\n%-12s %10s %10s %10s\n", "state", "ipv4", "ipv6", "total");
  // Counts known only as a total (counter-assisted collections) show "-" per family.
  const auto per_family = [](uint64_t count, bool known) {
    return known ? absl::StrCat(count) : std::string("-");
  };
  for (TcpState state : kAllStates) {
    const bool known = s.unsplit[state] == 0;
    absl::StrAppendFormat(&out, "%-12s %10s %10s %10d\n", KernelName(state),
                          per_family(s.ipv4[state], known), per_family(s.ipv6[state], known),
                          s.Count(state));
  }
  absl::StrAppendFormat(&out, "%-12s %10s %10s %10d\n", "all",
                        per_family(s.ipv4.Total(), s.families_complete),
                        per_family(s.ipv6.Total(), s.families_complete), s.connections());
  if (diagnosis != nullptr) AppendWhy(*diagnosis, &out);
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

std::string RenderJson(const Snapshot& s, const Diagnosis* diagnosis) {
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
  out += "},";
  // Every state over both families (what the table's total column shows), counter-derived
  // totals included, so a script needs no arithmetic.
  out += "\"totals\":{";
  for (TcpState state : kAllStates) {
    if (state != kAllStates.front()) out += ",";
    absl::StrAppend(&out, "\"", MetricName(state), "\":", s.Count(state));
  }
  out += "},";
  if (!s.families_complete) {
    // Totals the per-family objects above do not include.
    out += "\"unsplit\":{";
    for (TcpState state : kAllStates) {
      if (state != kAllStates.front()) out += ",";
      absl::StrAppend(&out, "\"", MetricName(state), "\":", s.unsplit[state]);
    }
    out += "},";
  }
  if (diagnosis != nullptr) AppendWhyJson(*diagnosis, &out);
  out += "\"source\":";
  AppendJsonString(SourceKindName(s.source), &out);
  out += ",\"source_detail\":";
  AppendJsonString(s.source_detail, &out);
  absl::StrAppend(&out, ",\"elapsed_us\":", absl::ToInt64Microseconds(s.elapsed),
                  ",\"taken_at_unix_ns\":", absl::ToUnixNanos(s.taken_at),
                  ",\"malformed\":", s.malformed, ",\"unknown_state\":", s.unknown_state, "}\n");
  return out;
}

}  // namespace tcpstates::cli
