// The counter-identity probe and the counter self-check, in a private network namespace
// with real sockets. Kernels other than this one are modelled: their counters are computed
// from a real dump of the namespace by the rule such a kernel follows, so the probe is
// exercised on both answers whatever kernel runs the test. Needs root (a new namespace).
#include "common/kernel/counter_probe.h"

#include <sched.h>
#include <unistd.h>

#include <cstdlib>

#include "common/collection/collector.h"
#include "common/kernel/netlink_socket_table.h"
#include "gtest/gtest.h"
#include "tests/workload/socket_workload.h"

namespace tcpstates {
namespace {

// What a kernel's CurrEstab and tw include.
struct KernelModel {
  bool curr_estab_counts_close_wait;
  bool tw_counts_orphaned_fin_wait2;
};

// The counters a kernel following `model` would show for the sockets in this namespace.
absl::StatusOr<TcpCounters> ModelledCounters(NetlinkSocketTable* table, const KernelModel& model) {
  TcpCounters counters;
  WalkStats stats;
  absl::Status status = table->Dump(
      kShownStateMask,
      [&](const SocketRecord& r) {
        const auto state = static_cast<TcpState>(r.state);
        if (state == TcpState::kEstablished) ++counters.curr_estab;
        if (state == TcpState::kCloseWait && model.curr_estab_counts_close_wait) {
          ++counters.curr_estab;
        }
        if (state == TcpState::kTimeWait) ++counters.time_wait_buckets;
        if (state == TcpState::kFinWait2 && r.timer == 3 && model.tw_counts_orphaned_fin_wait2) {
          ++counters.time_wait_buckets;
        }
      },
      &stats);
  if (!status.ok()) return status;
  return counters;
}

class CounterProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0 && std::getenv("CI") == nullptr) GTEST_SKIP() << "needs root";
    ASSERT_TRUE(workload::EnterFreshNetworkNamespace().ok());
    absl::StatusOr<NetlinkSocketTable> table = NetlinkSocketTable::Open();
    ASSERT_TRUE(table.ok()) << table.status();
    table_.emplace(*std::move(table));
  }
  void TearDown() override {
    for (int fd : holdings_.fds) close(fd);
  }

  // Builds `spec` and waits until a dump sees exactly what it should (loopback FINs and
  // ACKs are delivered asynchronously: an orphan is FIN_WAIT1 for a moment).
  void BuildSettled(const workload::Spec& spec) {
    ASSERT_TRUE(workload::Build(spec, Family::kIpv4, &holdings_).ok());
    StateCounts seen;
    for (int i = 0; i < 500 && !(seen == holdings_.expected); ++i) {
      if (i > 0) usleep(2000);
      seen = StateCounts();
      WalkStats stats;
      ASSERT_TRUE(table_
                      ->Dump(
                          kShownStateMask,
                          [&](const SocketRecord& r) { ++seen[static_cast<TcpState>(r.state)]; },
                          &stats)
                      .ok());
    }
    ASSERT_EQ(seen, holdings_.expected);
  }

  absl::StatusOr<CounterIdentities> ProbeModel(const KernelModel& model) {
    return ProbeCounterIdentities([&] { return ModelledCounters(&*table_, model); });
  }

  std::optional<NetlinkSocketTable> table_;
  workload::Holdings holdings_;
};

TEST_F(CounterProbeTest, TellsEachKindOfKernelApart) {
  // Sockets already in the states in question must not confuse the probe.
  BuildSettled({.established = 3, .close_wait = 4, .orphan_fin_wait2 = 2});
  for (bool close_wait : {true, false}) {
    for (bool fin_wait2 : {true, false}) {
      SCOPED_TRACE(testing::Message() << "close_wait " << close_wait << " fin_wait2 " << fin_wait2);
      absl::StatusOr<CounterIdentities> identities = ProbeModel({close_wait, fin_wait2});
      ASSERT_TRUE(identities.ok()) << identities.status();
      EXPECT_EQ(identities->curr_estab_includes_close_wait, close_wait);
      EXPECT_EQ(identities->tw_includes_orphaned_fin_wait2, fin_wait2);
    }
  }
}

TEST_F(CounterProbeTest, LeavesNothingBehind) {
  absl::StatusOr<CounterIdentities> identities =
      ProbeCounterIdentities([] { return ReadTcpCounters(ProcRoot()); });
  ASSERT_TRUE(identities.ok()) << identities.status();
  // The time-wait sockets it made are killed by RSTs that arrive asynchronously; they are
  // gone at once, or within the one second of FIN_WAIT2 the probe allows them.
  uint64_t left = 0;
  for (int i = 0; i < 200; ++i) {
    left = 0;
    WalkStats stats;
    ASSERT_TRUE(table_
                    ->Dump(
                        kShownStateMask, [&](const SocketRecord&) { ++left; }, &stats)
                    .ok());
    if (left == 0) break;
    usleep(10000);
  }
  EXPECT_EQ(left, 0u);
}

TEST_F(CounterProbeTest, CounterNoiseIsNotAnAnswer) {
  int reads = 0;
  absl::StatusOr<CounterIdentities> identities = ProbeCounterIdentities([&] {
    // Churn far larger than the probe's own moves of 32.
    TcpCounters counters{1000, 1000};
    counters.curr_estab += (++reads % 2) * 100;
    counters.time_wait_buckets += (reads % 3) * 100;
    return absl::StatusOr<TcpCounters>(counters);
  });
  EXPECT_TRUE(absl::IsAborted(identities.status())) << identities.status();
}

TEST(CounterProbeLoopbackDown, DeclinesCleanly) {
  if (geteuid() != 0 && std::getenv("CI") == nullptr) GTEST_SKIP() << "needs root";
  ASSERT_EQ(unshare(CLONE_NEWNET), 0);  // lo stays down
  absl::StatusOr<CounterIdentities> identities =
      ProbeCounterIdentities([] { return ReadTcpCounters(ProcRoot()); });
  EXPECT_TRUE(absl::IsUnavailable(identities.status())) << identities.status();
  EXPECT_NE(identities.status().message().find("loopback"), absl::string_view::npos)
      << identities.status();
  // Where allowed, the kernel is probed in a private namespace of its own instead: the
  // namespace being watched may have no loopback at all.
  absl::StatusOr<ProbedIdentities> probed = KernelCounterIdentities(ProcRoot());
  ASSERT_TRUE(probed.ok()) << probed.status();
  EXPECT_TRUE(probed->in_private_namespace);
}

// The self-check after the probe: on a quiet system a formula off by a single socket must
// send the collector back to full dumps.
class CounterSelfCheckTest : public CounterProbeTest {
 protected:
  absl::StatusOr<Collector> CollectorWith(const CounterIdentities& identities) {
    return Collector::Create({.source = SourceKind::kNetlink,
                              .counting = CountingChoice::kCounters,
                              .counter_identities = identities});
  }
  CounterIdentities Probed() {
    absl::StatusOr<CounterIdentities> identities =
        ProbeCounterIdentities([] { return ReadTcpCounters(ProcRoot()); });
    EXPECT_TRUE(identities.ok()) << identities.status();
    return identities.value_or(CounterIdentities{});
  }
};

TEST_F(CounterSelfCheckTest, RightIdentitiesCountExactly) {
  const CounterIdentities identities = Probed();
  BuildSettled({.established = 5, .close_wait = 1, .orphan_fin_wait2 = 1});
  absl::StatusOr<Collector> collector = CollectorWith(identities);
  ASSERT_TRUE(collector.ok()) << collector.status();
  ASSERT_EQ(collector->counting(), Counting::kKernelCounters) << collector->source_detail();
  absl::StatusOr<Collection> collection = collector->Collect();
  ASSERT_TRUE(collection.ok()) << collection.status();
  EXPECT_EQ(collection->snapshot.All(), holdings_.expected);
}

TEST_F(CounterSelfCheckTest, OneCloseWaitSocketOffIsCaught) {
  CounterIdentities wrong = Probed();
  wrong.curr_estab_includes_close_wait = !wrong.curr_estab_includes_close_wait;
  BuildSettled({.established = 5, .close_wait = 1});
  absl::StatusOr<Collector> collector = CollectorWith(wrong);
  ASSERT_TRUE(collector.ok()) << collector.status();
  EXPECT_EQ(collector->counting(), Counting::kFullDump);
  EXPECT_NE(collector->source_detail().find("disagreed"), std::string::npos)
      << collector->source_detail();
}

TEST_F(CounterSelfCheckTest, OneOrphanedFinWait2SocketOffIsCaught) {
  CounterIdentities wrong = Probed();
  wrong.tw_includes_orphaned_fin_wait2 = !wrong.tw_includes_orphaned_fin_wait2;
  BuildSettled({.established = 5, .orphan_fin_wait2 = 1});
  absl::StatusOr<Collector> collector = CollectorWith(wrong);
  ASSERT_TRUE(collector.ok()) << collector.status();
  EXPECT_EQ(collector->counting(), Counting::kFullDump);
  EXPECT_NE(collector->source_detail().find("TIME_WAIT"), std::string::npos)
      << collector->source_detail();
}

}  // namespace
}  // namespace tcpstates
