#include "plugins/cli/render.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/command_line/command_line.h"
#include "common/model/utf8.h"

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

// A JSON string that is valid whatever the bytes and safe on a terminal: quotes and
// backslashes escaped, controls (C0, DEL, C1) as \u00XX, and each byte that is not UTF-8 as
// \u00XX too (so "\u009b" may stand for U+009B or for a lone 0x9b byte).
void AppendJsonString(absl::string_view text, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < text.size();) {
    uint32_t code_point = 0;
    const size_t length = Utf8SequenceLength(text, i, &code_point);
    if (length == 0) {
      absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(text[i]));
      ++i;
      continue;
    }
    if (code_point == '"' || code_point == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(code_point));
    } else if (IsControl(code_point)) {
      absl::StrAppendFormat(out, "\\u%04x", code_point);
    } else {
      out->append(text.data() + i, length);
    }
    i += length;
  }
  out->push_back('"');
}

using command_line::Printable;

// Milliseconds as seconds, exact to the millisecond ("12.345").
std::string Seconds(uint32_t milliseconds) {
  return absl::StrFormat("%d.%03d", milliseconds / 1000, milliseconds % 1000);
}

std::string PortText(const ListenPort& port) {
  return absl::StrCat(FamilyName(port.family), " port ", port.port, " (", port.sockets,
                      port.sockets == 1 ? " socket)" : " sockets)");
}

// "12.3s": how long a socket has not heard from its peer.
std::string IdleText(uint32_t milliseconds) { return absl::StrFormat("%.1fs", milliseconds / 1e3); }

// "LISTEN 1, ESTABLISHED 11": the states that have sockets, in kernel order.
std::string NonZeroStates(const StateCounts& counts) {
  std::string text;
  for (TcpState state : kAllStates) {
    if (counts[state] == 0) continue;
    absl::StrAppend(&text, text.empty() ? "" : ", ", KernelName(state), " ", counts[state]);
  }
  return text.empty() ? "no sockets" : text;
}

void AppendPorts(const Snapshot& s, std::string* out) {
  if (s.ports.empty()) return;
  *out += "\nports:\n";
  for (const PortCounts& port : s.ports) {
    absl::StrAppendFormat(out, "  %-6s %5d %8d  %s\n", PortDirectionName(port.direction), port.port,
                          port.counts.Total(), NonZeroStates(port.counts));
  }
}

void AppendOwners(const CloseWaitAttribution& a, std::string* out) {
  if (a.attributed == 0 && a.unattributed == 0) {
    *out += "  CLOSE_WAIT owners: none (no CLOSE_WAIT sockets)\n";
    return;
  }
  absl::StrAppendFormat(out, "  CLOSE_WAIT owners (top %d):\n", a.owners.size());
  absl::StrAppendFormat(out, "    %8s %9s %8s %9s  %-24s %s\n", "sockets", "processes", "pid",
                        "idle", "unit", "comm");
  for (const CloseWaitOwner& o : a.owners) {
    absl::StrAppendFormat(out, "    %8d %9d %8d %9s  %-24s %s\n", o.sockets, o.processes, o.pid,
                          o.oldest_ms ? IdleText(*o.oldest_ms) : "-",
                          o.unit.empty() ? "-" : Printable(o.unit), Printable(o.comm));
  }
  if (a.ages) {
    absl::StrAppendFormat(out, "    oldest idle %s; %d idle over 60 s, %d over 1 h\n",
                          IdleText(a.ages->oldest_ms), a.ages->older_than_minute,
                          a.ages->older_than_hour);
  }
  if (a.other_sockets > 0) {
    absl::StrAppendFormat(out, "    %8d held by %d more owners\n", a.other_sockets, a.other_owners);
  }
  if (a.unattributed > 0) absl::StrAppendFormat(out, "    %8d unattributed\n", a.unattributed);
  const std::string why = a.Why();
  if (!why.empty()) absl::StrAppend(out, "    why: ", why, "\n");
}

void AppendWhy(const Diagnosis& d, std::string* out) {
  *out += "\nwhy:\n";
  if (d.close_wait) AppendOwners(*d.close_wait, out);
  if (d.listen) {
    const ListenReport& l = *d.listen;
    absl::StrAppendFormat(out, "  listening ports: %d", l.listening.size());
    if (l.untracked_sockets > 0)
      absl::StrAppendFormat(out, " (+%d sockets beyond the cap)", l.untracked_sockets);
    *out += "\n";
    for (const ListenPort& port : l.listening) {
      if (port.queue == 0) continue;
      absl::StrAppendFormat(out, "  accept queue: %s %d waiting", PortText(port), port.queue);
      if (l.backlogs_known) {
        absl::StrAppendFormat(out, ", backlog %d (%.0f%% full)", port.backlog, 100 * port.fill());
      }
      *out += "\n";
    }
    if (l.overflows || l.drops) {
      absl::StrAppendFormat(out, "  since the previous collection: %d listen overflows, %d drops\n",
                            l.overflows.value_or(0), l.drops.value_or(0));
    }
    for (const ListenPort& port : l.vanished) {
      absl::StrAppend(out, "  vanished listener: ", PortText(port), "\n");
    }
    for (const NewListener& listener : l.appeared) {
      absl::StrAppend(out, "  new listener: ", PortText(listener.port), "\n");
      for (const ListenerOwner& o : listener.owners) {
        absl::StrAppendFormat(out, "    held by pid %d %s (%s)\n", o.pid, Printable(o.comm),
                              o.unit.empty() ? "-" : Printable(o.unit));
      }
      if (listener.owners.empty()) *out += "    held by: no visible process found\n";
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

// {"family":"ipv4","port":N,"sockets":N[,"queue":N,"backlog":N,"fill":R] (no closing brace)
// With the queue: "queue":N,"backlog":N,"fill":R, backlog and fill null where the source
// does not know the backlog.
enum class QueueFields { kNone, kWithBacklog, kQueueOnly };

void AppendListenPortJson(const ListenPort& port, QueueFields queue, std::string* out) {
  absl::StrAppend(out, "{\"family\":\"", FamilyName(port.family), "\",\"port\":", port.port,
                  ",\"sockets\":", port.sockets);
  if (queue == QueueFields::kNone) return;
  absl::StrAppend(out, ",\"queue\":", port.queue);
  if (queue == QueueFields::kWithBacklog) {
    absl::StrAppend(out, ",\"backlog\":", port.backlog,
                    ",\"fill\":", absl::StrFormat("%.6f", port.fill()));
  } else {
    *out += ",\"backlog\":null,\"fill\":null";
  }
}

void AppendListenPortsJson(const std::vector<ListenPort>& ports, QueueFields queue,
                           std::string* out) {
  *out += "[";
  for (size_t i = 0; i < ports.size(); ++i) {
    if (i) *out += ",";
    AppendListenPortJson(ports[i], queue, out);
    *out += "}";
  }
  *out += "]";
}

void AppendNewListenersJson(const std::vector<NewListener>& listeners, std::string* out) {
  *out += "[";
  for (size_t i = 0; i < listeners.size(); ++i) {
    if (i) *out += ",";
    AppendListenPortJson(listeners[i].port, QueueFields::kNone, out);
    *out += ",\"owners\":[";
    for (size_t j = 0; j < listeners[i].owners.size(); ++j) {
      const ListenerOwner& o = listeners[i].owners[j];
      absl::StrAppend(out, j ? "," : "", "{\"pid\":", o.pid, ",\"comm\":");
      AppendJsonString(o.comm, out);
      *out += ",\"unit\":";
      AppendJsonString(o.unit, out);
      *out += "}";
    }
    *out += "]}";
  }
  *out += "]";
}

void AppendListenJson(const ListenReport& l, std::string* out) {
  *out += "\"listening\":";
  AppendListenPortsJson(
      l.listening, l.backlogs_known ? QueueFields::kWithBacklog : QueueFields::kQueueOnly, out);
  *out += ",\"vanished_listeners\":";
  AppendListenPortsJson(l.vanished, QueueFields::kNone, out);
  *out += ",\"new_listeners\":";
  AppendNewListenersJson(l.appeared, out);
  absl::StrAppend(out, ",\"listen_untracked\":", l.untracked_sockets, ",");
  // null at the first collection: there is nothing to take a difference from.
  const auto delta = [](const std::optional<uint64_t>& v) {
    return v ? absl::StrCat(*v) : std::string("null");
  };
  absl::StrAppend(out, "\"listen_overflows\":", delta(l.overflows),
                  ",\"listen_drops\":", delta(l.drops), ",");
}

// "ports":[{"port":N,"direction":"local","total":N,"states":{...}}],
// "queued_bytes":{"ipv4":{"rx":N,"tx":N},"ipv6":{...},"all":{...}}, when asked for.
void AppendStatesJson(const StateCounts& counts, std::string* out) {
  *out += "{";
  for (TcpState state : kAllStates) {
    absl::StrAppend(out, state != kAllStates.front() ? "," : "", "\"", MetricName(state),
                    "\":", counts[state]);
  }
  *out += "}";
}

void AppendPortCountsJson(const Snapshot& s, std::string* out) {
  if (!s.ports.empty()) {
    *out += "\"ports\":[";
    for (size_t i = 0; i < s.ports.size(); ++i) {
      const PortCounts& port = s.ports[i];
      absl::StrAppend(out, i ? "," : "", "{\"port\":", port.port, ",\"direction\":\"",
                      PortDirectionName(port.direction), "\",\"total\":", port.counts.Total(),
                      ",\"states\":");
      AppendStatesJson(port.counts, out);
      *out += "}";
    }
    *out += "],";
  }
  if (s.queued) {
    const auto bytes = [](const QueuedBytes& q) {
      return absl::StrCat("{\"rx\":", q.receive, ",\"tx\":", q.send, "}");
    };
    absl::StrAppend(out, "\"queued_bytes\":{\"ipv4\":", bytes((*s.queued)[0]),
                    ",\"ipv6\":", bytes((*s.queued)[1]), ",\"all\":", bytes(s.AllQueued()), "},");
  }
}

void AppendWhyJson(const Diagnosis& d, std::string* out) {
  if (d.close_wait) {
    const CloseWaitAttribution& a = *d.close_wait;
    *out += "\"close_wait_owners\":[";
    for (size_t i = 0; i < a.owners.size(); ++i) {
      const CloseWaitOwner& o = a.owners[i];
      absl::StrAppend(out, i ? "," : "", "{\"comm\":");
      AppendJsonString(o.comm, out);
      *out += ",\"unit\":";
      AppendJsonString(o.unit, out);
      absl::StrAppend(out, ",\"sockets\":", o.sockets, ",\"processes\":", o.processes,
                      ",\"pid\":", o.pid);
      if (o.oldest_ms) absl::StrAppend(out, ",\"age_seconds\":", Seconds(*o.oldest_ms));
      *out += "}";
    }
    absl::StrAppend(
        out, "],\"close_wait_attributed\":", a.attributed,
        ",\"close_wait_other\":", a.other_sockets, ",\"close_wait_other_owners\":", a.other_owners,
        ",\"close_wait_unattributed\":", a.unattributed,
        ",\"processes_unreadable\":", a.processes_unreadable,
        ",\"processes_hidden\":", a.processes_hidden,
        ",\"attribution_budget_exhausted\":", a.budget_exhausted ? "true" : "false",
        ",\"owner_search\":\"", CgroupNarrowingName(a.narrowing), "\",\"close_wait_why\":");
    AppendJsonString(a.Why(), out);
    *out += ",";
    if (a.ages) {
      absl::StrAppend(out, "\"close_wait_age_seconds\":", Seconds(a.ages->oldest_ms),
                      ",\"close_wait_older_than_60s\":", a.ages->older_than_minute,
                      ",\"close_wait_older_than_1h\":", a.ages->older_than_hour, ",");
    }
  }
  if (d.listen) AppendListenJson(*d.listen, out);
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

std::string RenderTable(const Collection& collection) {
  const Snapshot& s = collection.snapshot;
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
    const bool known = s.counting == Counting::kFullDump ||
                       (state != TcpState::kEstablished && state != TcpState::kTimeWait);
    absl::StrAppendFormat(&out, "%-12s %10s %10s %10d\n", KernelName(state),
                          per_family(s.ipv4[state], known), per_family(s.ipv6[state], known),
                          s.Count(state));
  }
  const bool split = s.counting == Counting::kFullDump;
  absl::StrAppendFormat(&out, "%-12s %10s %10s %10d\n", "all", per_family(s.ipv4.Total(), split),
                        per_family(s.ipv6.Total(), split), s.connections());
  if (s.queued) {
    const QueuedBytes all = s.AllQueued();
    absl::StrAppendFormat(&out, "%-12s %10d %10d %10d\n%-12s %10d %10d %10d\n", "recv-q bytes",
                          (*s.queued)[0].receive, (*s.queued)[1].receive, all.receive,
                          "send-q bytes", (*s.queued)[0].send, (*s.queued)[1].send, all.send);
  }
  AppendPorts(s, &out);
  if (collection.diagnosis) AppendWhy(*collection.diagnosis, &out);
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

std::string RenderJson(const Collection& collection) {
  const Snapshot& s = collection.snapshot;
  std::string out = "{";
  for (const Headline& h : Headlines(s)) absl::StrAppend(&out, "\"", h.name, "\":", h.value, ",");
  out += "\"states\":{";
  for (Family family : kAllFamilies) {
    absl::StrAppend(&out, family != Family::kIpv4 ? "," : "", "\"", FamilyName(family), "\":");
    AppendStatesJson(s.ForFamily(family), &out);
  }
  out += "},";
  // Every state over both families (what the table's total column shows), counter-derived
  // totals included, so a script needs no arithmetic.
  out += "\"totals\":";
  AppendStatesJson(s.All(), &out);
  out += ",";
  if (s.counting == Counting::kKernelCounters) {
    // Totals the per-family objects above do not include.
    out += "\"unsplit\":";
    AppendStatesJson(s.unsplit, &out);
    out += ",";
  }
  AppendPortCountsJson(s, &out);
  if (collection.diagnosis) AppendWhyJson(*collection.diagnosis, &out);
  out += "\"source\":";
  AppendJsonString(SourceKindName(s.source), &out);
  out += ",\"source_detail\":";
  AppendJsonString(s.source_detail, &out);
  absl::StrAppend(&out, ",\"elapsed_us\":", absl::ToInt64Microseconds(s.elapsed),
                  ",\"taken_at_unix_ns\":", absl::ToUnixNanos(s.taken_at),
                  ",\"malformed\":", s.malformed, ",\"unknown_state\":", s.unknown_state, "}\n");
  return out;
}

namespace {

// Readable namespaces, most CLOSE_WAIT first, then most sockets, then by name.
std::vector<const NamespaceCollection*> ByCloseWait(const NamespacesCollection& all) {
  std::vector<const NamespaceCollection*> rows;
  for (const NamespaceCollection& ns : all.namespaces) {
    if (ns.collection.ok()) rows.push_back(&ns);
  }
  std::sort(rows.begin(), rows.end(),
            [](const NamespaceCollection* a, const NamespaceCollection* b) {
              const Snapshot& x = a->collection->snapshot;
              const Snapshot& y = b->collection->snapshot;
              const uint64_t xw = x.Count(TcpState::kCloseWait), yw = y.Count(TcpState::kCloseWait);
              if (xw != yw) return xw > yw;
              if (x.connections() != y.connections()) return x.connections() > y.connections();
              return a->ns.name.netns < b->ns.name.netns;
            });
  return rows;
}

void AppendNamespaceRow(absl::string_view netns, absl::string_view pod, absl::string_view container,
                        const Snapshot& s, std::string* out) {
  absl::StrAppendFormat(out, "%-24s %10d %10d %10d %10d %10d  %-12s %s\n", Printable(netns),
                        s.connections(), s.Count(TcpState::kEstablished),
                        s.Count(TcpState::kTimeWait), s.Count(TcpState::kCloseWait),
                        s.Count(TcpState::kListen), container.empty() ? "-" : Printable(container),
                        pod.empty() ? "-" : Printable(pod));
}

}  // namespace

std::string RenderNamespacesTable(const NamespacesCollection& all) {
  std::string out;
  absl::StrAppendFormat(&out, "%-24s %10s %10s %10s %10s %10s  %-12s %s\n", "netns", "total",
                        "estab", "time_wait", "close_wait", "listen", "container", "pod");
  const std::vector<const NamespaceCollection*> rows = ByCloseWait(all);
  for (const NamespaceCollection* ns : rows) {
    AppendNamespaceRow(ns->ns.name.netns, ns->ns.name.pod, ns->ns.name.container,
                       ns->collection->snapshot, &out);
  }
  if (all.other_namespaces > 0) {
    AppendNamespaceRow(absl::StrCat("other (", all.other_namespaces, ")"), "", "", all.other, &out);
  }
  for (const NamespaceCollection& ns : all.namespaces) {
    if (!ns.collection.ok()) {
      absl::StrAppend(&out, "unreadable: ", Printable(ns.ns.name.netns), ": ",
                      Printable(ns.collection.status().message()), "\n");
    }
  }
  for (const NamespaceCollection* ns : rows) {
    const std::optional<Diagnosis>& d = ns->collection->diagnosis;
    if (!d || !d->close_wait ||
        (d->close_wait->attributed == 0 && d->close_wait->unattributed == 0)) {
      continue;
    }
    absl::StrAppend(&out, "\nin ", Printable(ns->ns.name.netns), ":\n");
    AppendOwners(*d->close_wait, &out);
  }
  if (all.processes_unidentified > 0) {
    absl::StrAppendFormat(&out,
                          "\nwarning: the namespace of %d processes could not be identified (other "
                          "users' processes: CAP_SYS_PTRACE or root identifies them)\n",
                          all.processes_unidentified);
  }
  return out;
}

std::string RenderNamespacesJson(const NamespacesCollection& all) {
  std::string out = "{\"namespaces\":[";
  bool first = true;
  for (const NamespaceCollection& ns : all.namespaces) {
    absl::StrAppend(&out, first ? "" : ",", "{\"netns\":");
    first = false;
    AppendJsonString(ns.ns.name.netns, &out);
    out += ",\"pod\":";
    AppendJsonString(ns.ns.name.pod, &out);
    out += ",\"container\":";
    AppendJsonString(ns.ns.name.container, &out);
    absl::StrAppend(&out, ",\"inode\":", ns.ns.inode, ",\"host\":", ns.ns.host ? "true" : "false");
    if (!ns.collection.ok()) {
      out += ",\"error\":";
      AppendJsonString(ns.collection.status().ToString(), &out);
      out += "}";
      continue;
    }
    std::string one = RenderJson(*ns.collection);  // "{...}\n": its fields join ours
    absl::StrAppend(&out, ",", absl::string_view(one).substr(1, one.size() - 2));
  }
  out += "],\"other\":{";
  for (TcpState state : kAllStates) {
    if (state != kAllStates.front()) out += ",";
    absl::StrAppend(&out, "\"", MetricName(state), "\":", all.other.Count(state));
  }
  absl::StrAppend(&out, "},\"other_namespaces\":", all.other_namespaces,
                  ",\"unreadable_other_namespaces\":", all.unreadable_namespaces,
                  ",\"processes_unidentified\":", all.processes_unidentified,
                  ",\"taken_at_unix_ns\":", absl::ToUnixNanos(all.taken_at), "}\n");
  return out;
}

}  // namespace tcpstates::cli
