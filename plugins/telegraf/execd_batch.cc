#include "plugins/telegraf/execd_batch.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "plugins/telegraf/line_protocol.h"

namespace tcpstates::telegraf {
namespace {

// Field order: the states people watch first (the same headline as the CLI), then the rest
// in kernel order. Line protocol does not care; humans reading the stream do.
constexpr std::array<TcpState, kStateCount> kFieldOrder = {
    TcpState::kEstablished, TcpState::kTimeWait, TcpState::kCloseWait, TcpState::kListen,
    TcpState::kSynSent,     TcpState::kSynRecv,  TcpState::kFinWait1,  TcpState::kFinWait2,
    TcpState::kClose,       TcpState::kLastAck,  TcpState::kClosing,
};

// inputs.netstat's own order (netstat.go), which is also the kernel's.
constexpr const std::array<TcpState, kStateCount>& kNetstatFieldOrder = kAllStates;

// Line protocol integers are signed 64-bit; a count cannot realistically exceed that, but
// if it did the field must not wrap negative.
int64_t AsFieldInteger(uint64_t count) {
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(count > kMax ? kMax : count);
}

// What every line of a batch shares: the gather's timestamp and the batch's own tags (the
// namespace, with --all-namespaces).
struct LineContext {
  absl::Time time;
  const BatchTags& tags;

  line_protocol::LinePoint Point(absl::string_view measurement) const {
    line_protocol::LinePoint point(measurement);
    for (const auto& [key, value] : tags) point.AddTag(key, value);
    return point;
  }
  absl::Status Append(line_protocol::LinePoint* point, std::string* out) const {
    point->SetTime(time);
    return point->AppendTo(out);
  }
};

// Seconds with millisecond precision, as a float field (never an integer: a field's type must
// not change from one point to the next).
double Seconds(uint32_t milliseconds) { return milliseconds / 1000.0; }

// The state fields of a counts line: tcp_connections, then tcp_<state> for every state.
void AddStateFields(const StateCounts& counts, line_protocol::LinePoint* point) {
  point->AddInt("tcp_connections", AsFieldInteger(counts.Total()));
  for (TcpState state : kFieldOrder) {
    point->AddInt(absl::StrCat("tcp_", MetricName(state)), AsFieldInteger(counts[state]));
  }
}

absl::Status AppendPoint(absl::string_view measurement, absl::string_view family_tag,
                         const StateCounts& counts, const std::optional<QueuedBytes>& queued,
                         const BatchOptions& options, const LineContext& context,
                         std::string* out) {
  line_protocol::LinePoint point = context.Point(measurement);
  if (!family_tag.empty()) point.AddTag("family", family_tag);
  if (options.netstat_compat) {
    for (TcpState state : kNetstatFieldOrder) {
      point.AddInt(absl::StrCat("tcp_", MetricName(state)), AsFieldInteger(counts[state]));
    }
  } else {
    AddStateFields(counts, &point);
  }
  if (queued) {
    point.AddInt("rx_queued_bytes", AsFieldInteger(queued->receive))
        .AddInt("tx_queued_bytes", AsFieldInteger(queued->send));
  }
  return context.Append(&point, out);
}

// One line per configured port and direction, every gather, zeros included.
absl::Status AppendPorts(const std::vector<PortCounts>& ports, const LineContext& context,
                         std::string* out) {
  for (const PortCounts& port : ports) {
    line_protocol::LinePoint point = context.Point(kPortMeasurement);
    point.AddTag("direction", PortDirectionName(port.direction))
        .AddTag("port", absl::StrCat(port.port));
    AddStateFields(port.counts, &point);
    if (absl::Status status = context.Append(&point, out); !status.ok()) return status;
  }
  return absl::OkStatus();
}

// What a tag value becomes once stored: the encoder drops trailing backslashes and makes
// TAB/LF/FF/CR visible, so two names can end up the same tag value.
std::string StoredTagValue(absl::string_view value) {
  while (!value.empty() && value.back() == '\\') value.remove_suffix(1);
  return line_protocol::EscapeKeyOrTagValue(value);
}

absl::Status AppendCloseWait(const CloseWaitAttribution& attribution, const LineContext& context,
                             std::string* out) {
  // The core merged owners by (comm, unit). pid is a field, so two owners whose names are
  // the same once stored (the encoder drops trailing backslashes) would be one series at
  // one timestamp and InfluxDB would keep only the last: they become one line, summed.
  std::vector<CloseWaitOwner> lines;
  lines.reserve(attribution.owners.size());
  absl::flat_hash_map<std::pair<std::string, std::string>, size_t> line_of;
  for (const CloseWaitOwner& owner : attribution.owners) {
    auto [it, inserted] =
        line_of.try_emplace({StoredTagValue(owner.comm), StoredTagValue(owner.unit)}, lines.size());
    if (inserted) {
      lines.push_back(owner);  // owners come most sockets first: its pid stays the line's
    } else {
      lines[it->second].sockets += owner.sockets;
      lines[it->second].processes += owner.processes;
      if (owner.oldest_ms) {
        lines[it->second].oldest_ms =
            std::max(lines[it->second].oldest_ms.value_or(0), *owner.oldest_ms);
      }
    }
  }
  for (const CloseWaitOwner& line : lines) {
    line_protocol::LinePoint point = context.Point(kCloseWaitMeasurement);
    point.AddTag("comm", line.comm).AddTag("unit", line.unit);
    point.AddInt("sockets", AsFieldInteger(line.sockets))
        .AddInt("pid", line.pid)
        .AddInt("processes", line.processes);
    if (line.oldest_ms) point.AddFloat("age_seconds", Seconds(*line.oldest_ms));
    if (absl::Status status = context.Append(&point, out); !status.ok()) return status;
  }
  // Always with CLOSE_WAIT > 0: an unprivileged run (Telegraf's own user) cannot read other
  // users' fds, and this says how much is unattributed and why instead of failing quietly.
  line_protocol::LinePoint summary = context.Point(kCloseWaitSummaryMeasurement);
  summary.AddInt("attributed", AsFieldInteger(attribution.attributed))
      .AddInt("other", AsFieldInteger(attribution.other_sockets))
      .AddInt("other_owners", AsFieldInteger(attribution.other_owners))
      .AddInt("unattributed", AsFieldInteger(attribution.unattributed))
      .AddInt("not_accepted", AsFieldInteger(attribution.not_accepted))
      .AddInt("processes_unreadable", attribution.processes_unreadable)
      .AddInt("processes_hidden", attribution.processes_hidden)
      .AddInt("processes_failed", attribution.processes_failed)
      .AddInt("budget_exhausted", attribution.budget_exhausted ? 1 : 0)
      .AddString("owner_search", CgroupNarrowingName(attribution.narrowing))
      .AddString("why", attribution.Why());
  if (attribution.ages) {
    summary.AddFloat("age_seconds", Seconds(attribution.ages->oldest_ms))
        .AddInt("older_than_60s", AsFieldInteger(attribution.ages->older_than_minute))
        .AddInt("older_than_1h", AsFieldInteger(attribution.ages->older_than_hour));
  }
  return context.Append(&summary, out);
}

line_protocol::LinePoint ListenPoint(absl::string_view measurement, const ListenPort& port,
                                     const LineContext& context) {
  line_protocol::LinePoint point = context.Point(measurement);
  point.AddTag("family", FamilyName(port.family)).AddTag("port", absl::StrCat(port.port));
  point.AddInt("sockets", AsFieldInteger(port.sockets));
  return point;
}

// The ports listening now, with their accept queues (of the port's fullest socket).
absl::Status AppendListening(const ListenReport& report, const LineContext& context,
                             std::string* out) {
  for (const ListenPort& port : report.listening) {
    line_protocol::LinePoint point = ListenPoint(kListenMeasurement, port, context);
    point.AddInt("queue", port.queue);
    if (report.backlogs_known) point.AddInt("backlog", port.backlog).AddFloat("fill", port.fill());
    if (absl::Status status = context.Append(&point, out); !status.ok()) return status;
  }
  for (const ListenPort& port : report.vanished) {
    line_protocol::LinePoint point = ListenPoint(kListenVanishedMeasurement, port, context);
    if (absl::Status status = context.Append(&point, out); !status.ok()) return status;
  }
  return absl::OkStatus();
}

// A port that started listening: one line per owner found (most often one), or one without
// owner tags when none was found (hidden, unreadable, or already gone).
absl::Status AppendNewListeners(const ListenReport& report, const LineContext& context,
                                std::string* out) {
  for (const NewListener& listener : report.appeared) {
    const ListenerOwner nobody;
    const size_t lines = std::max<size_t>(listener.owners.size(), 1);
    for (size_t i = 0; i < lines; ++i) {
      const ListenerOwner& owner = listener.owners.empty() ? nobody : listener.owners[i];
      line_protocol::LinePoint point = ListenPoint(kListenNewMeasurement, listener.port, context);
      point.AddTag("comm", owner.comm).AddTag("unit", owner.unit);
      if (owner.pid != 0) point.AddInt("pid", owner.pid);
      if (absl::Status status = context.Append(&point, out); !status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

// The namespace's accept-queue overflows and drops since the previous gather (from the
// second gather on), with how many ports and sockets the listen lines stand for.
absl::Status AppendListenSummary(const ListenReport& report, const LineContext& context,
                                 std::string* out) {
  line_protocol::LinePoint point = context.Point(kListenSummaryMeasurement);
  point.AddInt("ports", AsFieldInteger(report.listening.size()))
      .AddInt("untracked_sockets", AsFieldInteger(report.untracked_sockets));
  if (report.overflows) point.AddInt("overflows", AsFieldInteger(*report.overflows));
  if (report.drops) point.AddInt("drops", AsFieldInteger(*report.drops));
  return context.Append(&point, out);
}

absl::Status AppendPortPressure(const PortPressureReport& report, const LineContext& context,
                                std::string* out) {
  const PortSettings& settings = report.settings;
  line_protocol::LinePoint point = context.Point(kPortPressureMeasurement);
  // Without a busiest endpoint the point is still written, untagged and at zero, so the
  // series has no gaps an alert would read as "no data".
  uint64_t ports_in_use = 0;
  double ratio = 0.0;
  if (report.busiest) {
    point.AddTag("endpoint", report.busiest->EndpointText());
    ports_in_use = report.busiest->ports_in_use;
    // A nonsensical range (unreadable or inverted sysctl) must not make the point
    // unencodable; the range fields show what was read.
    if (std::isfinite(report.busiest->ratio)) ratio = report.busiest->ratio;
  }
  // AddFloat even for 0: the field's type must never change from float to integer.
  point.AddInt("ports_in_use", AsFieldInteger(ports_in_use))
      .AddFloat("ratio", ratio)
      .AddInt("range_size", settings.range_size())
      .AddInt("range_low", settings.range_low)
      .AddInt("range_high", settings.range_high)
      .AddInt("tcp_fin_timeout", settings.fin_timeout)
      .AddInt("tcp_tw_reuse", settings.tw_reuse)
      .AddInt("tcp_max_tw_buckets", settings.max_tw_buckets);
  return context.Append(&point, out);
}

absl::Status AppendDiagnosis(const Snapshot& snapshot, const Diagnosis& diagnosis,
                             const LineContext& context, std::string* out) {
  if (diagnosis.close_wait && snapshot.Count(TcpState::kCloseWait) > 0) {
    if (absl::Status status = AppendCloseWait(*diagnosis.close_wait, context, out); !status.ok()) {
      return status;
    }
  }
  if (diagnosis.listen) {
    for (auto append : {AppendListening, AppendNewListeners, AppendListenSummary}) {
      if (absl::Status status = append(*diagnosis.listen, context, out); !status.ok()) {
        return status;
      }
    }
  }
  if (diagnosis.port_pressure) {
    return AppendPortPressure(*diagnosis.port_pressure, context, out);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> RenderBatch(const Collection& collection, const BatchOptions& options,
                                        const BatchTags& tags) {
  const Snapshot& snapshot = collection.snapshot;
  const LineContext context{snapshot.taken_at, tags};
  absl::string_view measurement = options.measurement;
  if (measurement.empty()) {
    measurement = options.netstat_compat ? kNetstatMeasurement : kDefaultMeasurement;
  }
  std::string batch;
  std::optional<QueuedBytes> queued;
  if (snapshot.queued) queued = snapshot.AllQueued();
  if (absl::Status status =
          AppendPoint(measurement, "", snapshot.All(), queued, options, context, &batch);
      !status.ok()) {
    return status;
  }
  if (options.by_family) {
    for (Family family : kAllFamilies) {
      if (snapshot.queued) queued = (*snapshot.queued)[static_cast<size_t>(family)];
      if (absl::Status status =
              AppendPoint(measurement, FamilyName(family), snapshot.ForFamily(family), queued,
                          options, context, &batch);
          !status.ok()) {
        return status;
      }
    }
  }
  if (absl::Status status = AppendPorts(snapshot.ports, context, &batch); !status.ok()) {
    return status;
  }
  if (collection.diagnosis) {
    if (absl::Status status = AppendDiagnosis(snapshot, *collection.diagnosis, context, &batch);
        !status.ok()) {
      return status;
    }
  }
  return batch;
}

}  // namespace tcpstates::telegraf
