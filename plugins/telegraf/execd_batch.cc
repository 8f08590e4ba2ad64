#include "plugins/telegraf/execd_batch.h"

#include <array>
#include <cstdint>
#include <limits>

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

absl::Status AppendPoint(absl::string_view measurement, absl::string_view family_tag,
                         const StateCounts& counts, const BatchOptions& options, absl::Time time,
                         std::string* out) {
  line_protocol::LinePoint point(measurement);
  if (!family_tag.empty()) point.AddTag("family", family_tag);
  if (options.netstat_compat) {
    for (TcpState state : kNetstatFieldOrder) {
      point.AddInt(absl::StrCat("tcp_", MetricName(state)), AsFieldInteger(counts[state]));
    }
  } else {
    point.AddInt("tcp_connections", AsFieldInteger(counts.Total()));
    for (TcpState state : kFieldOrder) {
      point.AddInt(absl::StrCat("tcp_", MetricName(state)), AsFieldInteger(counts[state]));
    }
  }
  point.SetTime(time);
  return point.AppendTo(out);
}

}  // namespace

absl::StatusOr<std::string> RenderBatch(const Snapshot& snapshot, const BatchOptions& options) {
  absl::string_view measurement = options.measurement;
  if (measurement.empty()) {
    measurement = options.netstat_compat ? kNetstatMeasurement : kDefaultMeasurement;
  }
  std::string batch;
  if (absl::Status status =
          AppendPoint(measurement, "", snapshot.All(), options, snapshot.taken_at, &batch);
      !status.ok()) {
    return status;
  }
  if (options.by_family) {
    for (Family family : kAllFamilies) {
      if (absl::Status status =
              AppendPoint(measurement, FamilyName(family), snapshot.ForFamily(family), options,
                          snapshot.taken_at, &batch);
          !status.ok()) {
        return status;
      }
    }
  }
  return batch;
}

}  // namespace tcpstates::telegraf
