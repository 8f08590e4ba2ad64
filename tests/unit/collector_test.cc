// The /proc source end to end over captured tables in a temporary directory.
#include "common/collection/collector.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

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
  absl::StatusOr<Collector> collector = Collector::Create(
      {.source = SourceKind::kProc, .counting = CountingChoice::kFull, .proc = ProcRoot(dir.path())});
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

}  // namespace
}  // namespace tcpstates
