#include "common/collector.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/kernel_counters.h"
#include "common/proc_net_tcp.h"

namespace tcpstates {

absl::StatusOr<SourceKind> ParseSourceKind(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (SourceKind kind : {SourceKind::kAuto, SourceKind::kNetlink, SourceKind::kProc}) {
    if (lower == SourceKindName(kind)) return kind;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown source \"", text, "\": expected auto, netlink or proc"));
}

Collector::Collector(const CollectorOptions& options)
    : options_(options), source_(options.source), proc_buffer_(new char[kProcBufferSize]) {}

Collector::Collector(Collector&&) noexcept = default;
Collector& Collector::operator=(Collector&&) noexcept = default;
Collector::~Collector() = default;

absl::StatusOr<Collector> Collector::Create(const CollectorOptions& options) {
  Collector collector(options);
  switch (options.source) {
    case SourceKind::kProc:
      collector.source_detail_ = "/proc/net/tcp{,6} text tables (requested)";
      return collector;
    case SourceKind::kNetlink:
    case SourceKind::kAuto: {
      absl::StatusOr<NetlinkSocketTable> table = NetlinkSocketTable::Open();
      if (table.ok()) {
        collector.netlink_ = std::move(*table);
        collector.source_ = SourceKind::kNetlink;
        collector.source_detail_ = options.source == SourceKind::kAuto
                                       ? "netlink sock_diag (auto: available)"
                                       : "netlink sock_diag (requested)";
        if (options.counting == Counting::kKernelCounters) collector.CheckCountersAgree();
        return collector;
      }
      if (options.source == SourceKind::kNetlink) return table.status();
      collector.source_ = SourceKind::kProc;
      collector.source_detail_ = absl::StrCat(
          "/proc/net/tcp{,6} (auto: netlink unavailable: ", table.status().message(), ")");
      return collector;
    }
  }
  return absl::InternalError("unreachable source kind");
}

absl::Status Collector::CollectFromNetlink(Snapshot* snapshot, std::optional<SocketVisitor> also) {
  WalkStats stats;
  absl::Status status = netlink_->Dump(
      kAllStateMask,
      [&](const SocketRecord& record) {
        CountSocket(record, snapshot);
        if (also) (*also)(record);
      },
      &stats);
  snapshot->malformed += stats.malformed;
  if (status.ok() && netlink_->using_per_family_dumps() &&
      source_detail_.find("per-family") == std::string::npos) {
    absl::StrAppend(&source_detail_, "; legacy TCPDIAG_GETSOCK refused, per-family dumps");
  }
  return status;
}

namespace {

// Everything but ESTABLISHED and TIME_WAIT.
constexpr uint32_t kCounterAssistedMask = kAllStateMask &
                                          ~(1u << static_cast<int>(TcpState::kEstablished)) &
                                          ~(1u << static_cast<int>(TcpState::kTimeWait));

// The kernel's timer code for time-wait sockets (inet_twsk_diag_fill, get_timewait4_sock).
constexpr uint8_t kTimeWaitTimer = 3;

uint64_t SaturatingSubtract(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

}  // namespace

absl::Status Collector::CollectWithCounters(Snapshot* snapshot, std::optional<SocketVisitor> also) {
  WalkStats stats;
  // Orphaned FIN_WAIT2 sockets live in time-wait form: the dump shows them (as FIN_WAIT2) and
  // sockstat's tw counts them, so they are subtracted from tw.
  uint64_t fin_wait2_time_wait = 0;
  absl::Status status = netlink_->Dump(
      kCounterAssistedMask,
      [&](const SocketRecord& record) {
        CountSocket(record, snapshot);
        if (record.state == static_cast<uint8_t>(TcpState::kFinWait2) &&
            record.timer == kTimeWaitTimer) {
          ++fin_wait2_time_wait;
        }
        if (also) (*also)(record);
      },
      &stats);
  snapshot->malformed += stats.malformed;
  if (!status.ok()) return status;
  absl::StatusOr<TcpCounters> counters = ReadTcpCounters(options_.proc_net_dir);
  if (!counters.ok()) return counters.status();
  // The dump and the counters are read moments apart; under churn they can disagree by a
  // few sockets, never below zero.
  snapshot->unsplit[TcpState::kEstablished] =
      SaturatingSubtract(counters->curr_estab, snapshot->Count(TcpState::kCloseWait));
  snapshot->unsplit[TcpState::kTimeWait] =
      SaturatingSubtract(counters->time_wait_buckets, fin_wait2_time_wait);
  snapshot->families_complete = false;
  return absl::OkStatus();
}

void Collector::CheckCountersAgree() {
  // Sockets change state between two collections on a live machine, so the two ways rarely
  // agree to the socket on a busy host (500 connections/s is enough). A kernel whose counters
  // meant something else would be off by whole populations (all CLOSE_WAIT, all orphaned
  // FIN_WAIT2), not by a handful: agreement within churn's reach (8 sockets plus 0.5 %) is
  // accepted, and the largest difference seen is reported.
  std::string disagreement;
  uint64_t largest_difference = 0;
  bool within_tolerance = true;
  for (int attempt = 0; attempt < 3; ++attempt) {
    Snapshot full;
    Snapshot assisted;
    absl::Status status = CollectFromNetlink(&full, std::nullopt);
    if (status.ok()) status = CollectWithCounters(&assisted, std::nullopt);
    if (!status.ok()) {
      disagreement = std::string(status.message());
      within_tolerance = false;
      break;
    }
    if (full.All() == assisted.All()) {
      largest_difference = 0;
      within_tolerance = true;
      break;
    }
    const uint64_t tolerance = 8 + full.connections() / 200;
    bool this_one_within = true;
    for (TcpState state : {TcpState::kEstablished, TcpState::kTimeWait}) {
      const uint64_t a = full.Count(state);
      const uint64_t b = assisted.Count(state);
      const uint64_t difference = a > b ? a - b : b - a;
      largest_difference = std::max(largest_difference, difference);
      this_one_within = this_one_within && difference <= tolerance;
    }
    within_tolerance = within_tolerance && this_one_within;
    disagreement =
        absl::StrCat("ESTABLISHED ", full.Count(TcpState::kEstablished), " vs ",
                     assisted.Count(TcpState::kEstablished), ", TIME_WAIT ",
                     full.Count(TcpState::kTimeWait), " vs ", assisted.Count(TcpState::kTimeWait));
  }
  if (within_tolerance) {
    counting_ = Counting::kKernelCounters;
    absl::StrAppend(&source_detail_, "; ESTABLISHED and TIME_WAIT from kernel counters");
    if (largest_difference > 0) {
      absl::StrAppend(&source_detail_, " (self-check agreed within ", largest_difference,
                      " sockets of churn)");
    }
    return;
  }
  counting_ = Counting::kFullDump;
  absl::StrAppend(&source_detail_,
                  "; full dumps (kernel counters disagreed with a dump: ", disagreement, ")");
}

absl::Status Collector::CollectFromProc(Snapshot* snapshot, std::optional<SocketVisitor> also) {
  WalkStats stats;
  auto visitor = [&](const SocketRecord& record) {
    CountSocket(record, snapshot);
    if (also) (*also)(record);
  };
  const absl::Span<char> buffer(proc_buffer_.get(), kProcBufferSize);
  const std::string tcp = absl::StrCat(options_.proc_net_dir, "/tcp");
  absl::Status status = ReadProcNetTcp(tcp.c_str(), Family::kIpv4, buffer, visitor, &stats);
  if (status.ok()) {
    const std::string tcp6 = absl::StrCat(options_.proc_net_dir, "/tcp6");
    status = ReadProcNetTcp(tcp6.c_str(), Family::kIpv6, buffer, visitor, &stats);
    if (absl::IsNotFound(status)) status = absl::OkStatus();  // IPv6 disabled: no v6 sockets
  }
  snapshot->malformed += stats.malformed;
  return status;
}

absl::StatusOr<Snapshot> Collector::Collect(std::optional<SocketVisitor> also) {
  const auto start = std::chrono::steady_clock::now();
  Snapshot snapshot;
  snapshot.taken_at = absl::Now();

  absl::Status status;
  if (source_ == SourceKind::kNetlink) {
    status = counting_ == Counting::kKernelCounters ? CollectWithCounters(&snapshot, also)
                                                    : CollectFromNetlink(&snapshot, also);
    // Switch only when the kernel refused the dump outright: after sockets were delivered,
    // `also` has seen part of this collection, and a restart would show it sockets twice.
    // Such a failure fails this collection; the next one tries netlink again.
    const bool nothing_delivered = snapshot.connections() == 0 && snapshot.unknown_state == 0;
    if (!status.ok() && options_.source == SourceKind::kAuto && nothing_delivered) {
      // The socket opened but the kernel refused the dump (seen in locked-down containers).
      // /proc gives the same counts: switch for good, and start this snapshot afresh.
      source_ = SourceKind::kProc;
      counting_ = Counting::kFullDump;
      source_detail_ =
          absl::StrCat("/proc/net/tcp{,6} (auto: netlink dump failed: ", status.message(), ")");
      netlink_.reset();
      snapshot = Snapshot();
      snapshot.taken_at = absl::Now();
    }
  }
  if (source_ == SourceKind::kProc) status = CollectFromProc(&snapshot, also);
  if (!status.ok()) return status;

  snapshot.source = source_;
  snapshot.source_detail = source_detail_;
  snapshot.elapsed = absl::FromChrono(std::chrono::steady_clock::now() - start);
  return snapshot;
}

}  // namespace tcpstates
