#include "common/collector.h"

#include <chrono>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
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
    status = CollectFromNetlink(&snapshot, also);
    if (!status.ok() && options_.source == SourceKind::kAuto) {
      // The socket opened but the kernel refused the dump (seen in locked-down containers).
      // /proc gives the same counts: switch for good, and start this snapshot afresh.
      source_ = SourceKind::kProc;
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
