// The execd's batch: a collection rendered as line protocol, checked line by line.
#include "plugins/telegraf/execd_batch.h"

#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tcpstates {
namespace {

using ::testing::HasSubstr;

telegraf::BatchOptions Options(std::string measurement, bool by_family, bool netstat_compat) {
  telegraf::BatchOptions options;
  options.measurement = std::move(measurement);
  options.by_family = by_family;
  options.netstat_compat = netstat_compat;
  return options;
}

Collection ExampleCollection() {
  Collection collection;
  Snapshot& snapshot = collection.snapshot;
  int n = 1;
  for (TcpState state : kAllStates) {
    snapshot.ipv4[state] = n;
    snapshot.ipv6[state] = 100 * n;
    ++n;
  }
  snapshot.taken_at = absl::FromUnixNanos(1717171717000000042);
  return collection;
}

TEST(ExecdBatchTest, OneLineWithEveryStateHeadlineFirst) {
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(ExampleCollection(), {});
  ASSERT_TRUE(batch.ok()) << batch.status();
  // established=1+100, syn_sent=2+200, ... closing=11+1100; connections = 66 * 101.
  EXPECT_EQ(*batch,
            "tcpstates tcp_connections=6666i,tcp_established=101i,tcp_time_wait=606i,"
            "tcp_close_wait=808i,tcp_listen=1010i,tcp_syn_sent=202i,tcp_syn_recv=303i,"
            "tcp_fin_wait1=404i,tcp_fin_wait2=505i,tcp_close=707i,tcp_last_ack=909i,"
            "tcp_closing=1111i 1717171717000000042\n");
}

TEST(ExecdBatchTest, ByFamilyAddsTaggedLinesWithTheSameTimestamp) {
  absl::StatusOr<std::string> batch =
      telegraf::RenderBatch(ExampleCollection(), Options("tcp", true, false));
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<std::string> lines = absl::StrSplit(*batch, '\n');
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_TRUE(lines[0].starts_with("tcp tcp_connections=6666i,")) << lines[0];
  EXPECT_TRUE(lines[1].starts_with("tcp,family=ipv4 tcp_connections=66i,tcp_established=1i,"))
      << lines[1];
  EXPECT_TRUE(
      lines[2].starts_with("tcp,family=ipv6 tcp_connections=6600i,"
                           "tcp_established=100i,"))
      << lines[2];
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(lines[i].ends_with(" 1717171717000000042"));
  EXPECT_EQ(lines[3], "");
}

TEST(ExecdBatchTest, NetstatCompatUsesNetstatsMeasurementAndFieldsOnly) {
  absl::StatusOr<std::string> batch =
      telegraf::RenderBatch(ExampleCollection(), Options("", false, true));
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(*batch,
            "netstat tcp_established=101i,tcp_syn_sent=202i,tcp_syn_recv=303i,"
            "tcp_fin_wait1=404i,tcp_fin_wait2=505i,tcp_time_wait=606i,tcp_close=707i,"
            "tcp_close_wait=808i,tcp_last_ack=909i,tcp_listen=1010i,tcp_closing=1111i "
            "1717171717000000042\n");
  absl::StatusOr<std::string> renamed =
      telegraf::RenderBatch(ExampleCollection(), Options("net stat", false, true));
  ASSERT_TRUE(renamed.ok());
  EXPECT_THAT(*renamed, HasSubstr("net\\ stat tcp_established=101i,"));
}

TEST(ExecdBatchTest, CountsBeyondInt64SaturateInsteadOfWrapping) {
  Collection collection;
  collection.snapshot.ipv4[TcpState::kListen] = std::numeric_limits<uint64_t>::max() - 1;
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(collection, {});
  ASSERT_TRUE(batch.ok());
  EXPECT_THAT(*batch, HasSubstr("tcp_listen=9223372036854775807i"));
  EXPECT_THAT(*batch, HasSubstr("tcp_connections=9223372036854775807i"));
}

TEST(ExecdBatchTest, AnUnencodableMeasurementIsAnError) {
  EXPECT_FALSE(telegraf::RenderBatch(Collection{}, Options("#comment", false, false)).ok());
  EXPECT_FALSE(telegraf::RenderBatch(Collection{}, Options("ends\\", false, false)).ok());
}

Diagnosis ExampleDiagnosis() {
  Diagnosis diagnosis;
  CloseWaitAttribution& owners = diagnosis.close_wait.emplace();
  // Owners come merged by (comm, unit) and most sockets first; the last two differ only by
  // a trailing backslash, which the encoder drops: they must still be one line.
  owners.owners = {
      {.comm = "a b,c=d\"e\\f\ng\x1b",
       .unit = "x.service",
       .sockets = 7,
       .processes = 1,
       .pid = 30},
      {.comm = "nginx",
       .unit = "nginx.service",
       .sockets = 7,
       .processes = 2,
       .pid = 11,
       .oldest_ms = 61500},
      {.comm = "kworker\\", .unit = "", .sockets = 1, .processes = 1, .pid = 40, .oldest_ms = 20},
      {.comm = "kworker", .unit = "", .sockets = 1, .processes = 3, .pid = 41, .oldest_ms = 1001}};
  owners.attributed = 21;
  owners.other_sockets = 5;
  owners.other_owners = 2;
  owners.unattributed = 3;
  owners.processes_unreadable = 3;
  owners.processes_hidden = 1;
  owners.not_accepted = 1;
  owners.ages = CloseWaitAges{.oldest_ms = 61500, .older_than_minute = 1, .older_than_hour = 0};
  ListenReport& listen = diagnosis.listen.emplace();
  listen.listening = {{Family::kIpv4, 22, 1, 3, 4}, {Family::kIpv6, 8080, 4, 0, 128}};
  listen.vanished = {{Family::kIpv4, 5432, 2}};
  listen.appeared = {{.port = {Family::kIpv6, 8080, 4, 0, 128},
                      .owners = {{.pid = 77, .comm = "srv", .unit = "srv.service"},
                                 {.pid = 78, .comm = "srv", .unit = "srv.service"}},
                      .sockets = {}},
                     {.port = {Family::kIpv4, 22, 1, 3, 4}, .owners = {}, .sockets = {}}};
  listen.overflows = 5;
  listen.drops = 6;
  PortPressureReport& pressure = diagnosis.port_pressure.emplace();
  pressure.settings = {.range_low = 40000,
                       .range_high = 40999,
                       .fin_timeout = 60,
                       .tw_reuse = 2,
                       .max_tw_buckets = 262144};
  EndpointUsage& busiest = pressure.busiest.emplace();
  busiest.family = Family::kIpv4;
  busiest.address = {10, 0, 0, 7};
  busiest.port = 443;
  busiest.ports_in_use = 400;
  busiest.ratio = 0.4;
  return diagnosis;
}

TEST(ExecdBatchTest, DiagnosisSeriesFollowTheCountsWithTheSameTimestamp) {
  Collection collection = ExampleCollection();
  collection.diagnosis = ExampleDiagnosis();
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(collection, {});
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<std::string> lines = absl::StrSplit(*batch, '\n');
  ASSERT_EQ(lines.size(), 14u) << *batch;
  EXPECT_TRUE(lines[0].starts_with("tcpstates tcp_connections=6666i,")) << lines[0];
  const std::string at = " 1717171717000000042";
  EXPECT_EQ(lines[1],
            "tcpstates_close_wait,comm=a\\ b\\,c\\=d\"e\\f\\ng\\x1b,unit=x.service "
            "sockets=7i,pid=30i,processes=1i" +
                at);
  EXPECT_EQ(lines[2],
            "tcpstates_close_wait,comm=nginx,unit=nginx.service "
            "sockets=7i,pid=11i,processes=2i,age_seconds=61.5" +
                at);
  // The same stored comm and unit would be one series at one timestamp: merged, never
  // overwritten (trailing backslash dropped, empty unit omitted, the point still written).
  // Their ages merge too: the oldest of the two.
  EXPECT_EQ(lines[3],
            "tcpstates_close_wait,comm=kworker sockets=2i,pid=40i,processes=4i,"
            "age_seconds=1.001" +
                at);
  EXPECT_EQ(lines[4],
            "tcpstates_close_wait_summary attributed=21i,other=5i,other_owners=2i,"
            "unattributed=3i,not_accepted=1i,processes_unreadable=3i,processes_hidden=1i,"
            "processes_failed=0i,budget_exhausted=0i,owner_search=\"cgroup\",why=\"1 not "
            "accepted by any process yet; 1 processes hidden from this /proc (hidepid, or "
            "another pid namespace); fds of 3 processes not readable by this user (root, or "
            "CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, read them all)\",age_seconds=61.5,"
            "older_than_60s=1i,older_than_1h=0i" +
                at);
  // fill = queue / (backlog + 1): what the kernel queues before it overflows.
  EXPECT_EQ(lines[5],
            "tcpstates_listen,family=ipv4,port=22 sockets=1i,queue=3i,backlog=4i,fill=0.6" + at);
  EXPECT_EQ(lines[6],
            "tcpstates_listen,family=ipv6,port=8080 sockets=4i,queue=0i,backlog=128i,fill=0" + at);
  EXPECT_EQ(lines[7], "tcpstates_listen_vanished,family=ipv4,port=5432 sockets=2i" + at);
  // One line per owner of a new port, and one without owner tags when none was found.
  EXPECT_EQ(lines[8],
            "tcpstates_listen_new,comm=srv,family=ipv6,port=8080,unit=srv.service "
            "sockets=4i,pid=77i" +
                at);
  EXPECT_EQ(lines[9],
            "tcpstates_listen_new,comm=srv,family=ipv6,port=8080,unit=srv.service "
            "sockets=4i,pid=78i" +
                at);
  EXPECT_EQ(lines[10], "tcpstates_listen_new,family=ipv4,port=22 sockets=1i" + at);
  EXPECT_EQ(lines[11],
            "tcpstates_listen_summary ports=2i,untracked_sockets=0i,overflows=5i,drops=6i" + at);
  EXPECT_EQ(lines[12],
            "tcpstates_port_pressure,endpoint=10.0.0.7:443 ports_in_use=400i,"
            "ratio=0.4,range_size=1000i,range_low=40000i,range_high=40999i,"
            "tcp_fin_timeout=60i,tcp_tw_reuse=2i,tcp_max_tw_buckets=262144i" +
                at);
  EXPECT_EQ(lines[13], "");
}

TEST(ExecdBatchTest, PortLinesAndQueuedBytes) {
  Collection collection = ExampleCollection();
  StateCounts https;
  https[TcpState::kListen] = 1;
  https[TcpState::kEstablished] = 9;
  StateCounts postgres;
  postgres[TcpState::kTimeWait] = 4;
  collection.snapshot.ports = {{443, PortDirection::kLocal, https},
                               {5432, PortDirection::kRemote, postgres}};
  collection.snapshot.queued = std::array<QueuedBytes, 2>{QueuedBytes{10, 20}, QueuedBytes{1, 2}};
  telegraf::BatchOptions options;
  options.by_family = true;
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(collection, options);
  ASSERT_TRUE(batch.ok());
  std::vector<std::string> lines = absl::StrSplit(*batch, '\n');
  ASSERT_EQ(lines.size(), 6u) << *batch;
  EXPECT_THAT(lines[0], HasSubstr(",tcp_closing=1111i,rx_queued_bytes=11i,tx_queued_bytes=22i "));
  EXPECT_THAT(lines[1], HasSubstr(",rx_queued_bytes=10i,tx_queued_bytes=20i "));
  EXPECT_THAT(lines[2], HasSubstr(",rx_queued_bytes=1i,tx_queued_bytes=2i "));
  const std::string at = " 1717171717000000042";
  EXPECT_EQ(lines[3],
            "tcpstates_port,direction=local,port=443 tcp_connections=10i,tcp_established=9i,"
            "tcp_time_wait=0i,tcp_close_wait=0i,tcp_listen=1i,tcp_syn_sent=0i,tcp_syn_recv=0i,"
            "tcp_fin_wait1=0i,tcp_fin_wait2=0i,tcp_close=0i,tcp_last_ack=0i,tcp_closing=0i" +
                at);
  EXPECT_EQ(lines[4],
            "tcpstates_port,direction=remote,port=5432 tcp_connections=4i,tcp_established=0i,"
            "tcp_time_wait=4i,tcp_close_wait=0i,tcp_listen=0i,tcp_syn_sent=0i,tcp_syn_recv=0i,"
            "tcp_fin_wait1=0i,tcp_fin_wait2=0i,tcp_close=0i,tcp_last_ack=0i,tcp_closing=0i" +
                at);
}

TEST(ExecdBatchTest, ListenersFromProcHaveNoBacklogOrFill) {
  Collection collection = ExampleCollection();
  ListenReport& listen = collection.diagnosis.emplace().listen.emplace();
  listen.listening = {{Family::kIpv4, 22, 1, 2, 0}};
  listen.backlogs_known = false;
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(collection, {});
  ASSERT_TRUE(batch.ok());
  EXPECT_THAT(*batch, HasSubstr("tcpstates_listen,family=ipv4,port=22 sockets=1i,queue=2i "));
}

TEST(ExecdBatchTest, NoCloseWaitMeansNoOwnerOrSummaryLines) {
  Collection collection = ExampleCollection();
  collection.snapshot.ipv4[TcpState::kCloseWait] = 0;
  collection.snapshot.ipv6[TcpState::kCloseWait] = 0;
  collection.diagnosis = ExampleDiagnosis();
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(collection, {});
  ASSERT_TRUE(batch.ok());
  EXPECT_THAT(*batch, ::testing::Not(HasSubstr("tcpstates_close_wait")));
  EXPECT_THAT(*batch, HasSubstr("tcpstates_listen,"));
}

TEST(ExecdBatchTest, PortPressureWithoutEndpointIsUntaggedZeroWithAFloatRatio) {
  Collection collection = ExampleCollection();
  Diagnosis& diagnosis = collection.diagnosis.emplace();
  diagnosis.port_pressure.emplace().settings = {.range_low = 32768,
                                                .range_high = 60999,
                                                .fin_timeout = -1,
                                                .tw_reuse = 0,
                                                .max_tw_buckets = 4096};
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(collection, {});
  ASSERT_TRUE(batch.ok());
  std::vector<std::string> lines = absl::StrSplit(*batch, '\n');
  ASSERT_EQ(lines.size(), 3u);
  // "ratio=0" without `i` is a float to every parser: the field type never changes.
  EXPECT_EQ(lines[1],
            "tcpstates_port_pressure ports_in_use=0i,ratio=0,range_size=28232i,"
            "range_low=32768i,range_high=60999i,tcp_fin_timeout=-1i,tcp_tw_reuse=0i,"
            "tcp_max_tw_buckets=4096i 1717171717000000042");
}

TEST(ExecdBatchTest, DiagnosisNamesIgnoreTheMeasurementFlag) {
  Collection collection = ExampleCollection();
  collection.diagnosis = ExampleDiagnosis();
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(collection, Options("", true, true));
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->starts_with("netstat ")) << *batch;
  EXPECT_THAT(*batch, HasSubstr("\ntcpstates_listen,family=ipv4,port=22 "));
}

}  // namespace
}  // namespace tcpstates
