#include "common/collection/collector.h"

#include <algorithm>
#include <chrono>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/kernel/counter_probe.h"
#include "common/kernel/kernel_counters.h"
#include "common/kernel/network_namespace.h"
#include "common/kernel/proc_net_tcp.h"

namespace tcpstates {

namespace {

// Where the net/ files are: ours, or those of a process in the target namespace.
CollectionRequest Resolved(CollectionRequest request) {
  if (request.target && request.target->pid > 0) {
    request.proc = request.proc.WithNetOf(request.target->pid);
  }
  if (request.target && request.diagnosis) {
    request.diagnosis->owners.netns_inode = request.target->inode;
  }
  return request;
}

// Another namespace's port sysctls, read from inside it.
std::function<PortSettings()> PortSettingsOf(const std::optional<NamespaceTarget>& target) {
  if (!target) return nullptr;
  return [ns_path = target->ns_path] {
    PortSettings settings;
    RunInNetworkNamespace(ns_path, [&] { settings = ReadPortSettings(ProcRoot()); }).IgnoreError();
    return settings;
  };
}

// A netlink socket in the request's namespace: ours, or created inside the target one (it
// stays there for its whole life).
absl::StatusOr<NetlinkSocketTable> OpenNetlink(const CollectionRequest& request) {
  if (!request.target) return NetlinkSocketTable::Open();
  absl::StatusOr<NetlinkSocketTable> table = absl::UnknownError("not opened");
  absl::Status entered =
      RunInNetworkNamespace(request.target->ns_path, [&] { table = NetlinkSocketTable::Open(); });
  if (!entered.ok()) return entered;
  return table;
}

}  // namespace

Collector::Collector(const CollectionRequest& request)
    : request_(Resolved(request)),
      plan_(PlanCounting(request)),
      source_(request.source),
      tally_(request.local_ports, request.remote_ports, request.queued_bytes),
      proc_buffer_(new char[kProcBufferSize]) {
  if (request.diagnosis) {
    diagnoser_.emplace(*request_.diagnosis, request_.proc, PortSettingsOf(request.target));
  }
}

Collector::Collector(Collector&&) noexcept = default;
Collector& Collector::operator=(Collector&&) noexcept = default;
Collector::~Collector() = default;

absl::StatusOr<Collector> Collector::Create(const CollectionRequest& request) {
  if (absl::Status status = ValidateRequest(request); !status.ok()) return status;
  Collector collector(request);
  const std::string tables = request.target
                                 ? absl::StrCat("/proc/", request.target->pid, "/net/tcp{,6}")
                                 : "/proc/net/tcp{,6}";
  // The /proc tables of another namespace need a process in it.
  const bool tables_readable = !request.target || request.target->pid > 0;
  if (request.source == SourceKind::kProc) {
    if (!tables_readable) return absl::UnavailableError("no process in the namespace");
    collector.source_detail_ = absl::StrCat(tables, " text tables (requested)");
    return collector;
  }
  absl::StatusOr<NetlinkSocketTable> table = OpenNetlink(request);
  if (table.ok()) {
    collector.netlink_ = std::move(*table);
    collector.source_ = SourceKind::kNetlink;
    collector.source_detail_ =
        absl::StrCat("netlink sock_diag (",
                     request.source == SourceKind::kAuto ? "auto: available" : "requested",
                     request.target ? ", inside the namespace)" : ")");
    if (collector.plan_.counting == Counting::kKernelCounters) {
      if (tables_readable) {
        collector.CheckCountersAgree();
      } else {
        absl::StrAppend(&collector.source_detail_,
                        "; full dumps (no process in the namespace to read its counters from)");
      }
    }
    return collector;
  }
  if (request.source == SourceKind::kNetlink || !tables_readable) return table.status();
  collector.source_ = SourceKind::kProc;
  collector.source_detail_ =
      absl::StrCat(tables, " (auto: netlink unavailable: ", table.status().message(), ")");
  return collector;
}

namespace {

// Everything `ss -tan` shows but ESTABLISHED and TIME_WAIT.
constexpr uint32_t kCounterAssistedMask = kShownStateMask &
                                          ~(1u << static_cast<int>(TcpState::kEstablished)) &
                                          ~(1u << static_cast<int>(TcpState::kTimeWait));

// The kernel's timer code for time-wait sockets (inet_twsk_diag_fill, get_timewait4_sock).
constexpr uint8_t kTimeWaitTimer = 3;

uint64_t SaturatingSubtract(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

uint64_t Distance(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

// ESTABLISHED and TIME_WAIT as the counters give them, once what they also include on this
// kernel (the dump saw those sockets) is taken out.
struct DerivedCounts {
  uint64_t established = 0;
  uint64_t time_wait = 0;
};

DerivedCounts Derive(const TcpCounters& counters, const CounterIdentities& identities,
                     uint64_t close_wait, uint64_t orphaned_fin_wait2) {
  // The dump and the counters are read moments apart; under churn they can disagree by a
  // few sockets, never below zero.
  return {SaturatingSubtract(counters.curr_estab,
                             identities.curr_estab_includes_close_wait ? close_wait : 0),
          SaturatingSubtract(counters.time_wait_buckets,
                             identities.tw_includes_orphaned_fin_wait2 ? orphaned_fin_wait2 : 0)};
}

}  // namespace

absl::Status Collector::DumpNetlink(uint32_t state_mask, Snapshot* snapshot,
                                    std::optional<SocketVisitor> also,
                                    uint64_t* orphaned_fin_wait2) {
  WalkStats stats;
  absl::Status status = netlink_->Dump(
      state_mask,
      [&](const SocketRecord& record) {
        CountSocket(record, snapshot);
        // Orphaned FIN_WAIT2 sockets live in time-wait form: sockstat's tw may count them.
        if (record.state == static_cast<uint8_t>(TcpState::kFinWait2) &&
            record.timer == kTimeWaitTimer) {
          ++*orphaned_fin_wait2;
        }
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

absl::Status Collector::CollectWithCounters(Snapshot* snapshot, std::optional<SocketVisitor> also) {
  uint64_t orphaned_fin_wait2 = 0;
  absl::Status status = DumpNetlink(kCounterAssistedMask, snapshot, also, &orphaned_fin_wait2);
  if (!status.ok()) return status;
  absl::StatusOr<TcpCounters> counters = ReadTcpCounters(request_.proc);
  if (!counters.ok()) return counters.status();
  const DerivedCounts derived =
      Derive(*counters, identities_, snapshot->Count(TcpState::kCloseWait), orphaned_fin_wait2);
  snapshot->unsplit[TcpState::kEstablished] = derived.established;
  snapshot->unsplit[TcpState::kTimeWait] = derived.time_wait;
  snapshot->counting = Counting::kKernelCounters;
  return absl::OkStatus();
}

void Collector::CheckCountersAgree() {
  // First what the counters include on this kernel, found by watching them move.
  if (request_.counter_identities) {
    identities_ = *request_.counter_identities;
  } else {
    absl::StatusOr<ProbedIdentities> probed = KernelCounterIdentities(request_.proc);
    if (!probed.ok()) {
      absl::StrAppend(&source_detail_,
                      "; full dumps (kernel counters not used: ", probed.status().message(), ")");
      return;
    }
    identities_ = probed->identities;
    probed_where_ =
        probed->in_private_namespace ? "probed in a private namespace" : "probed in this namespace";
  }
  // Then the formulas against a full dump. The counters are read before and after it: where
  // neither moved (a quiet system), the two ways must agree exactly, so a kernel whose
  // counters mean something else is caught by a single socket. Where they moved, churn
  // explains a difference up to the move; a few tries usually find a quiet moment.
  CounterCheck check;
  for (int attempt = 0; attempt < 4; ++attempt) {
    check = CompareCountersWithDump();
    // Agreed; or failed; or quiet and still different: the formulas do not hold here.
    if (check.agreed || !check.status.ok() || check.quiet) break;
  }
  const bool agreed = check.agreed;
  const uint64_t churn_difference = check.churn_difference;
  const std::string disagreement =
      check.status.ok() ? check.disagreement : std::string(check.status.message());
  if (!agreed) {
    absl::StrAppend(&source_detail_,
                    "; full dumps (kernel counters disagreed with a dump: ", disagreement, ")");
    return;
  }
  counting_ = Counting::kKernelCounters;
  absl::StrAppend(
      &source_detail_, "; ESTABLISHED and TIME_WAIT from kernel counters (CurrEstab ",
      identities_.curr_estab_includes_close_wait ? "counts" : "does not count", " CLOSE_WAIT, tw ",
      identities_.tw_includes_orphaned_fin_wait2 ? "counts" : "does not count",
      " orphaned FIN_WAIT2 on this kernel", probed_where_.empty() ? "" : ", ", probed_where_, ")");
  if (churn_difference > 0) {
    absl::StrAppend(&source_detail_, " (self-check agreed within ", churn_difference,
                    " sockets of churn)");
  }
}

Collector::CounterCheck Collector::CompareCountersWithDump() {
  CounterCheck check;
  Snapshot full;
  uint64_t orphaned_fin_wait2 = 0;
  absl::StatusOr<TcpCounters> before = ReadTcpCounters(request_.proc);
  check.status = before.status();
  if (check.status.ok()) {
    check.status = DumpNetlink(kShownStateMask, &full, std::nullopt, &orphaned_fin_wait2);
  }
  absl::StatusOr<TcpCounters> after = ReadTcpCounters(request_.proc);
  if (check.status.ok()) check.status = after.status();
  if (!check.status.ok()) return check;
  const uint64_t full_established = full.Count(TcpState::kEstablished);
  const uint64_t full_time_wait = full.Count(TcpState::kTimeWait);
  const DerivedCounts derived =
      Derive(*after, identities_, full.Count(TcpState::kCloseWait), orphaned_fin_wait2);
  const uint64_t established_difference = Distance(derived.established, full_established);
  const uint64_t time_wait_difference = Distance(derived.time_wait, full_time_wait);
  const uint64_t established_move = Distance(before->curr_estab, after->curr_estab);
  const uint64_t time_wait_move = Distance(before->time_wait_buckets, after->time_wait_buckets);
  check.disagreement = absl::StrCat("ESTABLISHED ", full_established, " vs ", derived.established,
                                    ", TIME_WAIT ", full_time_wait, " vs ", derived.time_wait);
  check.quiet = established_move == 0 && time_wait_move == 0;
  if (check.quiet) {
    check.agreed = established_difference == 0 && time_wait_difference == 0;
  } else {
    check.agreed =
        established_difference <= established_move && time_wait_difference <= time_wait_move;
    check.churn_difference = std::max(established_difference, time_wait_difference);
  }
  return check;
}

absl::Status Collector::CollectFromProc(Snapshot* snapshot, std::optional<SocketVisitor> also) {
  WalkStats stats;
  auto visitor = [&](const SocketRecord& record) {
    CountSocket(record, snapshot);
    if (also) (*also)(record);
  };
  const absl::Span<char> buffer(proc_buffer_.get(), kProcBufferSize);
  const std::string tcp = request_.proc.Net("tcp");
  absl::Status status = ReadProcNetTcp(tcp.c_str(), Family::kIpv4, buffer, visitor, &stats);
  if (status.ok()) {
    const std::string tcp6 = request_.proc.Net("tcp6");
    status = ReadProcNetTcp(tcp6.c_str(), Family::kIpv6, buffer, visitor, &stats);
    if (absl::IsNotFound(status)) status = absl::OkStatus();  // IPv6 disabled: no v6 sockets
  }
  snapshot->malformed += stats.malformed;
  return status;
}

absl::StatusOr<Collection> Collector::Collect() {
  tally_.Reset();
  // However this collection ends - an error, an exception (std::bad_alloc inside collectd),
  // or done - the analyses forget what they observed of it: a collection that failed
  // half-way must not leave its sockets to be counted again in the next one. (After
  // Finish() this forgets nothing: Finish starts over.)
  absl::Cleanup forget = [this] {
    if (diagnoser_) diagnoser_->Discard();
  };
  // Ports come from the main dump whenever it has every socket.
  auto observe = [this](const SocketRecord& r) {
    if (diagnoser_) diagnoser_->Observe(r);
    tally_.Observe(r, counting_ == Counting::kFullDump || source_ == SourceKind::kProc);
  };
  const bool observed = diagnoser_ || tally_.counts_ports() || request_.queued_bytes;
  absl::StatusOr<Snapshot> snapshot =
      observed ? CollectSnapshot(observe) : CollectSnapshot(std::nullopt);
  if (snapshot.ok() && tally_.counts_ports() && snapshot->counting == Counting::kKernelCounters) {
    if (absl::Status status = CountPortsFiltered(&*snapshot); !status.ok()) snapshot = status;
  }
  if (snapshot.ok() && diagnoser_ && source_ == SourceKind::kNetlink &&
      snapshot->Count(TcpState::kCloseWait) > 0) {
    if (absl::Status status = ObserveCloseWaitAges(); !status.ok()) snapshot = status;
  }
  // On failure the sockets seen before it are forgotten (above). Finishing them instead would
  // make a partial listener set the reference, and the next collection would report
  // listeners as vanished that never went away.
  if (!snapshot.ok()) return snapshot.status();
  tally_.Finish(&*snapshot);
  Collection collection{*std::move(snapshot), std::nullopt};
  if (diagnoser_) {
    collection.diagnosis = diagnoser_->Finish();
    if (collection.diagnosis->listen && source_ == SourceKind::kProc) {
      collection.diagnosis->listen->backlogs_known = false;
    }
  }
  return collection;
}

absl::Status Collector::CountPortsFiltered(Snapshot* snapshot) {
  WalkStats stats;
  const DumpRequest filtered{.filter = PortFilter(request_.local_ports, request_.remote_ports)};
  absl::Status status = netlink_->Dump(
      filtered, [this](const SocketRecord& r) { tally_.Observe(r, /*ports=*/true); }, &stats);
  snapshot->malformed += stats.malformed;
  return status;
}

absl::Status Collector::ObserveCloseWaitAges() {
  WalkStats stats;
  const DumpRequest close_wait{.states = 1u << static_cast<int>(TcpState::kCloseWait),
                               .tcp_info = true};
  return netlink_->Dump(
      close_wait, [this](const SocketRecord& r) { diagnoser_->ObserveAge(r); }, &stats);
}

absl::StatusOr<Snapshot> Collector::CollectSnapshot(std::optional<SocketVisitor> also) {
  const auto start = std::chrono::steady_clock::now();
  Snapshot snapshot;
  snapshot.taken_at = absl::Now();

  absl::Status status;
  if (source_ == SourceKind::kNetlink) {
    uint64_t orphaned_fin_wait2 = 0;
    status = counting_ == Counting::kKernelCounters
                 ? CollectWithCounters(&snapshot, also)
                 : DumpNetlink(kShownStateMask, &snapshot, also, &orphaned_fin_wait2);
    // Switch only when the kernel refused the dump outright: after sockets were delivered,
    // `also` has seen part of this collection, and a restart would show it sockets twice.
    // Such a failure fails this collection; the next one tries netlink again.
    const bool nothing_delivered = snapshot.connections() == 0 && snapshot.unknown_state == 0;
    if (!status.ok() && request_.source == SourceKind::kAuto && nothing_delivered) {
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
