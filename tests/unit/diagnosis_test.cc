// The diagnosis analyses on synthetic sockets and a fake /proc tree (the kernel-backed
// behaviour is covered by the namespace workload tests in tests/integration).
#include "common/diagnosis/diagnosis.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/diagnosis/close_wait_owners.h"
#include "common/diagnosis/listen_inventory.h"
#include "common/diagnosis/port_pressure.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tcpstates {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

SocketRecord Listener(Family family, uint16_t port) {
  SocketRecord r;
  r.family = family;
  r.state = static_cast<uint8_t>(TcpState::kListen);
  r.local_port = port;
  return r;
}

TEST(ListenInventory, NamesPortsThatVanishBetweenCollections) {
  ListenInventory inventory;
  inventory.Observe(Listener(Family::kIpv4, 80));
  inventory.Observe(Listener(Family::kIpv4, 80));  // SO_REUSEPORT: two sockets, one port
  inventory.Observe(Listener(Family::kIpv6, 443));
  ListenReport first = inventory.Finish();
  EXPECT_FALSE(first.has_previous);
  EXPECT_THAT(first.listening,
              ElementsAre(ListenPort{Family::kIpv4, 80, 2}, ListenPort{Family::kIpv6, 443, 1}));
  EXPECT_THAT(first.vanished, IsEmpty());

  inventory.Observe(Listener(Family::kIpv4, 80));
  ListenReport second = inventory.Finish();
  EXPECT_TRUE(second.has_previous);
  EXPECT_THAT(second.vanished, ElementsAre(ListenPort{Family::kIpv6, 443, 1}));
}

TEST(ListenInventory, DiscardKeepsTheLastCompleteCollectionAsReference) {
  ListenInventory inventory;
  inventory.Observe(Listener(Family::kIpv4, 80));
  inventory.Observe(Listener(Family::kIpv4, 22));
  inventory.Finish();
  inventory.Observe(Listener(Family::kIpv4, 80));  // a collection that failed part-way
  inventory.Discard();
  inventory.Observe(Listener(Family::kIpv4, 80));
  EXPECT_THAT(inventory.Finish().vanished, ElementsAre(ListenPort{Family::kIpv4, 22, 1}));
}

TEST(ListenInventory, CapNeverHidesAPreviouslySeenPort) {
  ListenInventory inventory(/*max_ports=*/2);
  inventory.Observe(Listener(Family::kIpv4, 1));
  inventory.Observe(Listener(Family::kIpv4, 2));
  inventory.Observe(Listener(Family::kIpv4, 3));
  ListenReport first = inventory.Finish();
  EXPECT_EQ(first.listening.size(), 2u);
  EXPECT_EQ(first.untracked_sockets, 1u);
  // New ports fill the cap first this time; known port 2 is tracked beyond it, so port 1's
  // absence is seen.
  inventory.Observe(Listener(Family::kIpv4, 9));
  inventory.Observe(Listener(Family::kIpv4, 8));
  inventory.Observe(Listener(Family::kIpv4, 2));
  inventory.Observe(Listener(Family::kIpv4, 7));  // new and over the cap: untracked
  ListenReport second = inventory.Finish();
  EXPECT_THAT(second.vanished, ElementsAre(ListenPort{Family::kIpv4, 1, 1}));
  EXPECT_EQ(second.listening.size(), 3u);
  EXPECT_EQ(second.untracked_sockets, 1u);
}

class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/tcpstates-diag-XXXXXX";
    path_ = mkdtemp(name);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& relative, const std::string& text) const {
    const std::string path = path_ + "/" + relative;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
    return path;
  }
  void Link(const std::string& relative, const std::string& target) const {
    const std::string path = path_ + "/" + relative;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::filesystem::create_symlink(target, path);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(PortPressure, BusiestEndpointAndSettings) {
  TempDir sys;
  sys.File("ip_local_port_range", "40000\t40999\n");
  sys.File("tcp_fin_timeout", "30\n");
  sys.File("tcp_tw_reuse", "0\n");
  sys.File("tcp_max_tw_buckets", "5000\n");
  PortPressure pressure(sys.path());
  auto socket = [](uint8_t last_octet, uint16_t remote_port, uint16_t local_port, uint8_t state) {
    SocketRecord r;
    r.state = state;
    r.local_port = local_port;
    r.remote_port = remote_port;
    r.remote_address = {10, 0, 0, last_octet};
    return r;
  };
  for (uint16_t port = 40000; port < 40250; ++port) pressure.Observe(socket(1, 443, port, 6));
  for (uint16_t port = 40000; port < 40100; ++port) pressure.Observe(socket(2, 443, port, 1));
  pressure.Observe(socket(1, 443, 8080, 1));         // local port outside the range: not ephemeral
  pressure.Observe(Listener(Family::kIpv4, 40500));  // no remote: not a connection
  PortPressureReport report = pressure.Finish();
  EXPECT_EQ(report.settings.range_size(), 1000);
  EXPECT_EQ(report.settings.fin_timeout, 30);
  EXPECT_EQ(report.settings.max_tw_buckets, 5000);
  ASSERT_TRUE(report.busiest.has_value());
  EXPECT_EQ(report.busiest->EndpointText(), "10.0.0.1:443");
  EXPECT_EQ(report.busiest->ports_in_use, 250u);
  EXPECT_DOUBLE_EQ(report.busiest->ratio, 0.25);
  EXPECT_EQ(report.endpoints, 2u);
}

SocketRecord CloseWait(uint64_t inode) {
  SocketRecord r;
  r.state = static_cast<uint8_t>(TcpState::kCloseWait);
  r.inode = inode;
  return r;
}

// A fake /proc: pid 100 ("leaky") holds sockets 11 and 12, pid 200 ("other") holds 21.
class CloseWaitOwnersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto [pid, comm, inodes] : {std::tuple{100, "leaky", std::vector<int>{11, 12, 5}},
                                     std::tuple{200, "other", std::vector<int>{21}}}) {
      proc_.File(absl::StrCat(pid, "/comm"), absl::StrCat(comm, "\n"));
      proc_.File(absl::StrCat(pid, "/cgroup"), "0::/system.slice/app.service\n");
      int fd = 3;
      for (int inode : inodes) {
        proc_.Link(absl::StrCat(pid, "/fd/", fd++), absl::StrCat("socket:[", inode, "]"));
      }
      proc_.Link(absl::StrCat(pid, "/fd/", fd), "/dev/null");
    }
  }
  CloseWaitOwnersOptions Options() {
    CloseWaitOwnersOptions options;
    options.proc_dir = proc_.path();
    options.cgroup2_mount = "/nonexistent";  // no cgroup pass: the /proc walk finds them
    return options;
  }
  TempDir proc_;
};

TEST_F(CloseWaitOwnersTest, AttributesEachSocketToItsHolder) {
  CloseWaitOwners owners(Options());
  for (uint64_t inode : {11, 12, 21, 99}) owners.Observe(CloseWait(inode));
  owners.Observe(CloseWait(0));  // not yet accepted: no file, unattributable
  CloseWaitAttribution a = owners.Attribute();
  ASSERT_EQ(a.owners.size(), 2u);
  EXPECT_EQ(a.owners[0].pid, 100);
  EXPECT_EQ(a.owners[0].comm, "leaky");
  EXPECT_EQ(a.owners[0].unit, "app.service");
  EXPECT_EQ(a.owners[0].sockets, 2u);
  EXPECT_EQ(a.owners[1].pid, 200);
  EXPECT_EQ(a.owners[1].sockets, 1u);
  EXPECT_EQ(a.attributed, 3u);
  EXPECT_EQ(a.unattributed, 2u);  // 99 (held by nobody we can see) and the unaccepted one
  EXPECT_FALSE(a.budget_exhausted);
  // Forgotten after attribution: the next collection starts empty.
  EXPECT_THAT(owners.Attribute().owners, IsEmpty());
}

TEST_F(CloseWaitOwnersTest, TopNAndDiscard) {
  CloseWaitOwnersOptions options = Options();
  options.top = 1;
  CloseWaitOwners owners(options);
  for (uint64_t inode : {11, 12, 21}) owners.Observe(CloseWait(inode));
  CloseWaitAttribution a = owners.Attribute();
  ASSERT_EQ(a.owners.size(), 1u);
  EXPECT_EQ(a.owners[0].comm, "leaky");
  EXPECT_EQ(a.attributed, 3u);  // the owner beyond N still counts as attributed
  owners.Observe(CloseWait(11));
  owners.Discard();
  EXPECT_EQ(owners.Attribute().attributed, 0u);
}

TEST_F(CloseWaitOwnersTest, StopsAtItsFdBudgetAndSaysSo) {
  CloseWaitOwnersOptions options = Options();
  options.max_fds = 1;
  CloseWaitOwners owners(options);
  for (uint64_t inode : {11, 12, 21}) owners.Observe(CloseWait(inode));
  CloseWaitAttribution a = owners.Attribute();
  EXPECT_TRUE(a.budget_exhausted);
  EXPECT_EQ(a.attributed + a.unattributed, 3u);
  EXPECT_LE(a.attributed, 1u);
}

TEST_F(CloseWaitOwnersTest, KnownHoldersAreNotSearchedAgainWhileAlive) {
  CloseWaitOwners owners(Options());
  owners.Observe(CloseWait(11));
  ASSERT_EQ(owners.Attribute().attributed, 1u);
  // The fd table no longer shows the socket, so only the remembered holder can explain it.
  std::filesystem::remove(proc_.path() + "/100/fd/3");
  owners.Observe(CloseWait(11));
  CloseWaitAttribution again = owners.Attribute();
  ASSERT_EQ(again.owners.size(), 1u);
  EXPECT_EQ(again.owners[0].pid, 100);
  EXPECT_EQ(again.owners[0].sockets, 1u);
  // Once the process is gone, the socket is searched for again (and here not found).
  std::filesystem::remove_all(proc_.path() + "/100");
  owners.Observe(CloseWait(11));
  EXPECT_EQ(owners.Attribute().unattributed, 1u);
}

TEST(CloseWaitOwners, SearchesCutShortResumeWhereTheyStopped) {
  // Three processes holding one socket each, and a budget of one fd entry per collection:
  // each collection resumes after the process the last one stopped at, and remembers what
  // it found, so three collections attribute everything (restarting from the first process
  // every time would never get past it).
  TempDir proc;
  for (int pid : {100, 200, 300}) {
    proc.File(absl::StrCat(pid, "/comm"), "worker\n");
    proc.Link(absl::StrCat(pid, "/fd/3"), absl::StrCat("socket:[", pid + 1, "]"));
  }
  CloseWaitOwnersOptions options;
  options.proc_dir = proc.path();
  options.cgroup2_mount = "/nonexistent";
  options.max_fds = 1;
  CloseWaitOwners owners(options);
  std::vector<uint64_t> attributed;
  for (int collection = 0; collection < 3; ++collection) {
    for (uint64_t inode : {101, 201, 301}) owners.Observe(CloseWait(inode));
    attributed.push_back(owners.Attribute().attributed);
  }
  EXPECT_THAT(attributed, ElementsAre(1, 2, 3));
}

TEST_F(CloseWaitOwnersTest, NothingToDoWithoutCloseWait) {
  CloseWaitOwners owners(Options());
  SocketRecord established = CloseWait(11);
  established.state = static_cast<uint8_t>(TcpState::kEstablished);
  owners.Observe(established);
  CloseWaitAttribution a = owners.Attribute();
  EXPECT_THAT(a.owners, IsEmpty());
  EXPECT_EQ(a.unattributed, 0u);
  EXPECT_TRUE(a.complete());
}

}  // namespace
}  // namespace tcpstates
