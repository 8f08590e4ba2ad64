// The /proc source end to end over captured tables in a temporary directory.
#include "common/collection/collector.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/workload/socket_workload.h"

namespace tcpstates {
namespace {

class ProcDir {
 public:
  // A fake /proc with only net/ in it.
  ProcDir() {
    char name[] = "/tmp/tcpstates-proc-XXXXXX";
    path_ = mkdtemp(name);
    std::filesystem::create_directory(path_ + "/net");
  }
  ~ProcDir() { std::filesystem::remove_all(path_); }
  void CopyTestData(const std::string& from, const std::string& to) {
    std::filesystem::copy_file(std::string(TCPSTATES_TESTDATA_DIR) + "/" + from,
                               path_ + "/net/" + to);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(path_ + "/net/" + name) << text;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

absl::StatusOr<Snapshot> CollectFrom(const ProcDir& dir) {
  absl::StatusOr<Collector> collector = Collector::Create({.source = SourceKind::kProc,
                                                           .counting = CountingChoice::kFull,
                                                           .proc = ProcRoot(dir.path())});
  if (!collector.ok()) return collector.status();
  absl::StatusOr<Collection> collection = collector->Collect();
  if (!collection.ok()) return collection.status();
  return collection->snapshot;
}

TEST(CollectorProc, CountsBothTables) {
  ProcDir dir;
  dir.CopyTestData("proc_net_tcp.txt", "tcp");
  dir.CopyTestData("proc_net_tcp6.txt", "tcp6");
  absl::StatusOr<Snapshot> s = CollectFrom(dir);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->source, SourceKind::kProc);
  EXPECT_EQ(s->connections(), 40u);
  EXPECT_EQ(s->ipv4[TcpState::kEstablished], 6u);
  EXPECT_EQ(s->ipv6[TcpState::kListen], 6u);
  EXPECT_EQ(s->Count(TcpState::kCloseWait), 4u);
  EXPECT_EQ(s->Count(TcpState::kTimeWait), 4u);
  EXPECT_EQ(s->Count(TcpState::kSynRecv), 4u);
  EXPECT_EQ(s->Count(TcpState::kFinWait2), 4u);
  EXPECT_EQ(s->malformed, 0u);
}

TEST(CollectorProc, MissingTcp6IsNotAnError) {
  ProcDir dir;
  dir.CopyTestData("proc_net_tcp.txt", "tcp");
  absl::StatusOr<Snapshot> s = CollectFrom(dir);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->ipv4.Total(), 20u);
  EXPECT_EQ(s->ipv6.Total(), 0u);
}

TEST(CollectorProc, MissingTcpFailsClearly) {
  ProcDir dir;
  absl::StatusOr<Snapshot> s = CollectFrom(dir);
  EXPECT_TRUE(absl::IsNotFound(s.status())) << s.status();
  EXPECT_NE(s.status().message().find("/tcp"), absl::string_view::npos);
}

TEST(CollectorProc, MalformedLinesAreReportedWithTheSnapshot) {
  ProcDir dir;
  dir.CopyTestData("proc_net_tcp.txt", "tcp");
  dir.Write("tcp6", "  sl  local_address\nnot a socket line\nneither is this\n");
  absl::StatusOr<Snapshot> s = CollectFrom(dir);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->connections(), 20u);
  EXPECT_EQ(s->malformed, 2u);
}

// The counters self-check: a real dump of a private namespace holding 6 ESTABLISHED sockets
// (3 loopback pairs and their listener), against counters read from a fake /proc. Counters
// that agree are used from then on; one socket of difference on a quiet system (the fake
// counters never move) keeps full dumps. Needs root.
class CountersSelfCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0 && std::getenv("CI") == nullptr) GTEST_SKIP() << "needs root";
    ASSERT_TRUE(workload::EnterFreshNetworkNamespace().ok());
    ASSERT_TRUE(workload::Build({.established = 3}, Family::kIpv4, &held_).ok());
  }
  void TearDown() override {
    for (int fd : held_.fds) close(fd);
  }
  void WriteCounters(int curr_estab, int time_wait) {
    dir_.Write("snmp",
               "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails "
               "EstabResets CurrEstab InSegs\nTcp: 1 200 120000 -1 3 3 0 0 " +
                   std::to_string(curr_estab) + " 40\n");
    dir_.Write("sockstat", "sockets: used 8\nTCP: inuse 7 orphan 0 tw " +
                               std::to_string(time_wait) + " alloc 7 mem 1\n");
  }
  absl::StatusOr<Collector> Create() {
    return Collector::Create({.source = SourceKind::kNetlink,
                              .counting = CountingChoice::kCounters,
                              .proc = ProcRoot(dir_.path()),
                              .counter_identities = CounterIdentities{false, false}});
  }
  ProcDir dir_;
  workload::Holdings held_;
};

TEST_F(CountersSelfCheck, CountersThatAgreeAreUsed) {
  WriteCounters(6, 0);
  absl::StatusOr<Collector> collector = Create();
  ASSERT_TRUE(collector.ok()) << collector.status();
  EXPECT_EQ(collector->counting(), Counting::kKernelCounters) << collector->source_detail();
  // From now on ESTABLISHED is the counter's: a fake 9 shows.
  WriteCounters(9, 0);
  absl::StatusOr<Collection> collection = collector->Collect();
  ASSERT_TRUE(collection.ok()) << collection.status();
  EXPECT_EQ(collection->snapshot.counting, Counting::kKernelCounters);
  EXPECT_EQ(collection->snapshot.Count(TcpState::kEstablished), 9u);
  EXPECT_EQ(collection->snapshot.Count(TcpState::kListen), 1u);
}

TEST_F(CountersSelfCheck, OneSocketOfDifferenceKeepsFullDumps) {
  for (auto [curr_estab, time_wait, detail] :
       {std::tuple{7, 0, "ESTABLISHED 6 vs 7, TIME_WAIT 0 vs 0"},
        std::tuple{6, 1, "ESTABLISHED 6 vs 6, TIME_WAIT 0 vs 1"}}) {
    SCOPED_TRACE(detail);
    WriteCounters(curr_estab, time_wait);
    absl::StatusOr<Collector> collector = Create();
    ASSERT_TRUE(collector.ok()) << collector.status();
    EXPECT_EQ(collector->counting(), Counting::kFullDump);
    EXPECT_NE(collector->source_detail().find(
                  absl::StrCat("full dumps (kernel counters disagreed with a dump: ", detail, ")")),
              std::string::npos)
        << collector->source_detail();
    absl::StatusOr<Collection> collection = collector->Collect();
    ASSERT_TRUE(collection.ok()) << collection.status();
    EXPECT_EQ(collection->snapshot.counting, Counting::kFullDump);
    EXPECT_EQ(collection->snapshot.Count(TcpState::kEstablished), 6u);  // the dump's
    EXPECT_EQ(collection->snapshot.Count(TcpState::kTimeWait), 0u);
  }
}

}  // namespace
}  // namespace tcpstates
