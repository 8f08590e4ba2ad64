// The diagnosis analyses on synthetic sockets and a fake /proc tree (the kernel-backed
// behaviour is covered by the namespace workload tests in tests/integration).
#include "common/diagnosis/diagnosis.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
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
  EXPECT_THAT(first.listening,
              ElementsAre(ListenPort{Family::kIpv4, 80, 2}, ListenPort{Family::kIpv6, 443, 1}));
  EXPECT_THAT(first.vanished, IsEmpty());

  inventory.Observe(Listener(Family::kIpv4, 80));
  ListenReport second = inventory.Finish();
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
  inventory.Observe(Listener(Family::kIpv4, 3));
  inventory.Observe(Listener(Family::kIpv4, 1));
  inventory.Observe(Listener(Family::kIpv4, 2));
  ListenReport first = inventory.Finish();
  // The lowest ports fill the cap; the rest is counted, not named.
  EXPECT_THAT(first.listening,
              ElementsAre(ListenPort{Family::kIpv4, 1, 1}, ListenPort{Family::kIpv4, 2, 1}));
  EXPECT_EQ(first.untracked_sockets, 1u);
  // Port 2 was reported, so it keeps its place (and port 1's absence is seen); one place is
  // left for the new ports 7, 8 and 9: the lowest, 7, gets it.
  inventory.Observe(Listener(Family::kIpv4, 9));
  inventory.Observe(Listener(Family::kIpv4, 8));
  inventory.Observe(Listener(Family::kIpv4, 2));
  inventory.Observe(Listener(Family::kIpv4, 7));
  ListenReport second = inventory.Finish();
  EXPECT_THAT(second.vanished, ElementsAre(ListenPort{Family::kIpv4, 1, 1}));
  EXPECT_THAT(second.listening,
              ElementsAre(ListenPort{Family::kIpv4, 2, 1}, ListenPort{Family::kIpv4, 7, 1}));
  EXPECT_EQ(second.untracked_sockets, 2u);
}

TEST(ListenInventory, NeverMoreThanTheCapWhileNewPortsKeepComing) {
  // A cap of 10 and 20 new listeners before every collection: the reported ports stay at
  // most 10 each time (it used to creep up: 10, 11, 12, ... as followed ports came on top),
  // and every port once reported stays reported while it listens.
  ListenInventory inventory(/*max_ports=*/10);
  std::vector<uint16_t> listening;
  std::set<uint16_t> reported_before;
  for (int collection = 0; collection < 8; ++collection) {
    for (int i = 0; i < 20; ++i)
      listening.push_back(static_cast<uint16_t>(60000 - 20 * collection - i));
    for (uint16_t port : listening) inventory.Observe(Listener(Family::kIpv4, port));
    ListenReport report = inventory.Finish();
    EXPECT_EQ(report.listening.size(), 10u) << "collection " << collection;
    EXPECT_EQ(report.untracked_sockets, listening.size() - 10);
    std::set<uint16_t> reported;
    for (const ListenPort& port : report.listening) reported.insert(port.port);
    for (uint16_t port : reported_before) EXPECT_TRUE(reported.contains(port)) << port;
    reported_before = reported;
  }
}

SocketRecord QueuedListener(uint16_t port, uint32_t queue, uint32_t backlog, uint64_t inode) {
  SocketRecord r = Listener(Family::kIpv4, port);
  r.receive_queue = queue;
  r.send_queue = backlog;
  r.inode = inode;
  return r;
}

TEST(ListenInventory, AcceptQueueOfTheFullestSocketOfAPort) {
  ListenInventory inventory;
  inventory.Observe(QueuedListener(80, 3, 128, 1));
  inventory.Observe(QueuedListener(80, 9, 16, 2));  // 56 % full: the fuller one
  inventory.Observe(QueuedListener(80, 10, 1024, 3));
  const ListenReport report = inventory.Finish();
  ASSERT_EQ(report.listening.size(), 1u);
  EXPECT_EQ(report.listening[0].sockets, 3u);
  EXPECT_EQ(report.listening[0].queue, 9u);
  EXPECT_EQ(report.listening[0].backlog, 16u);
  EXPECT_DOUBLE_EQ(report.listening[0].fill(), 9.0 / 17);  // backlog + 1 fit
}

TEST(ListenInventory, BacklogZeroListenerHoldingOneConnectionIsFull) {
  // listen(fd, 0) still queues one connection (the kernel overflows at "more than backlog").
  ListenInventory inventory;
  inventory.Observe(QueuedListener(80, 1, 0, 1));
  inventory.Observe(QueuedListener(80, 5, 9, 2));  // half full: less than the first
  const ListenReport report = inventory.Finish();
  ASSERT_EQ(report.listening.size(), 1u);
  EXPECT_EQ(report.listening[0].queue, 1u);
  EXPECT_EQ(report.listening[0].backlog, 0u);
  EXPECT_DOUBLE_EQ(report.listening[0].fill(), 1.0);
}

TEST(ListenInventory, NewListenersNamedFromTheSecondCollectionOn) {
  ListenInventory inventory;
  inventory.Observe(QueuedListener(22, 0, 128, 1));
  EXPECT_THAT(inventory.Finish().appeared, IsEmpty());  // nothing to compare with yet
  inventory.Observe(QueuedListener(22, 0, 128, 1));
  inventory.Observe(QueuedListener(4444, 0, 5, 7));
  inventory.Observe(QueuedListener(4444, 0, 5, 8));
  const ListenReport second = inventory.Finish();
  ASSERT_EQ(second.appeared.size(), 1u);
  EXPECT_EQ(second.appeared[0].port.port, 4444);
  EXPECT_EQ(second.appeared[0].port.sockets, 2u);
  ASSERT_EQ(second.appeared[0].sockets.size(), 2u);
  EXPECT_EQ(second.appeared[0].sockets[1].inode, 8u);
  inventory.Observe(QueuedListener(22, 0, 128, 1));
  inventory.Observe(QueuedListener(4444, 0, 5, 7));
  EXPECT_THAT(inventory.Finish().appeared, IsEmpty());  // not new any more
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

// A fake /proc with the port sysctls.
ProcRoot FakeSysctls(const TempDir& proc) {
  proc.File("sys/net/ipv4/ip_local_port_range", "40000\t40999\n");
  proc.File("sys/net/ipv4/tcp_fin_timeout", "30\n");
  proc.File("sys/net/ipv4/tcp_tw_reuse", "0\n");
  proc.File("sys/net/ipv4/tcp_max_tw_buckets", "5000\n");
  return ProcRoot(proc.path());
}

TEST(ListenInventory, OverflowsAndDropsSinceThePreviousCollection) {
  TempDir proc;
  auto netstat = [&](int overflows, int drops) {
    proc.File("net/netstat", absl::StrCat("TcpExt: SyncookiesSent ListenOverflows ListenDrops\n",
                                          "TcpExt: 0 ", overflows, " ", drops, "\n"));
  };
  netstat(5, 7);
  ListenInventory inventory(256, ProcRoot(proc.path()));
  const ListenReport first = inventory.Finish();
  EXPECT_FALSE(first.overflows.has_value());
  netstat(9, 12);
  const ListenReport second = inventory.Finish();
  EXPECT_EQ(second.overflows, 4u);
  EXPECT_EQ(second.drops, 5u);
}

TEST(PortPressure, BusiestEndpointAndSettings) {
  TempDir proc;
  PortPressure pressure(FakeSysctls(proc));
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

TEST(PortPressure, OfEquallyBusyEndpointsTheLowestIsTheBusiest) {
  // Its name is a series name: it must not flip between reads with the table's order.
  TempDir proc;
  PortPressure pressure(FakeSysctls(proc));
  for (int round = 0; round < 3; ++round) {
    for (uint8_t octet : {200, 7, 90, 3, 150}) {
      for (uint16_t port = 40000; port < 40010; ++port) {
        SocketRecord r;
        r.state = static_cast<uint8_t>(TcpState::kEstablished);
        r.local_port = port + octet;
        r.remote_port = 443;
        r.remote_address = {10, 0, 0, octet};
        pressure.Observe(r);
      }
    }
    PortPressureReport report = pressure.Finish();
    ASSERT_TRUE(report.busiest.has_value());
    EXPECT_EQ(report.busiest->EndpointText(), "10.0.0.3:443");
    EXPECT_EQ(report.busiest->ports_in_use, 10u);
  }
}

TEST(PortPressure, Ipv4MappedPeersAreTheIpv4Endpoint) {
  // Dual-stack clients reach 10.0.0.1:443 as ::ffff:10.0.0.1 too; both draw on the same
  // local ports, so they are one endpoint.
  TempDir proc;
  PortPressure pressure(FakeSysctls(proc));
  for (uint16_t port = 40000; port < 40300; ++port) {
    SocketRecord r;
    r.state = static_cast<uint8_t>(TcpState::kEstablished);
    r.local_port = port;
    r.remote_port = 443;
    if (port % 2 == 0) {
      r.remote_address = {10, 0, 0, 1};
    } else {
      r.family = Family::kIpv6;
      r.remote_address = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
    }
    pressure.Observe(r);
  }
  PortPressureReport report = pressure.Finish();
  EXPECT_EQ(report.endpoints, 1u);
  ASSERT_TRUE(report.busiest.has_value());
  EXPECT_EQ(report.busiest->EndpointText(), "10.0.0.1:443");
  EXPECT_EQ(report.busiest->ports_in_use, 300u);
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
    options.proc = ProcRoot(proc_.path());
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
  EXPECT_EQ(a.owners[0].processes, 1);
  EXPECT_EQ(a.owners[0].comm, "leaky");
  EXPECT_EQ(a.owners[0].unit, "app.service");
  EXPECT_EQ(a.owners[0].sockets, 2u);
  EXPECT_EQ(a.owners[1].pid, 200);
  EXPECT_EQ(a.owners[1].sockets, 1u);
  EXPECT_EQ(a.attributed, 3u);
  EXPECT_EQ(a.unattributed, 2u);  // 99 (held by nobody we can see) and the unaccepted one
  EXPECT_EQ(a.not_accepted, 1u);
  EXPECT_FALSE(a.budget_exhausted);
  EXPECT_EQ(a.Why(),
            "1 not accepted by any process yet; no cgroup ids from this source: every process "
            "searched");
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
  EXPECT_EQ(a.other_sockets, 1u);
  EXPECT_EQ(a.other_owners, 1u);
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

TEST_F(CloseWaitOwnersTest, ARememberedHolderCountsOnlyWhileItStillHoldsTheSocket) {
  CloseWaitOwners owners(Options());
  owners.Observe(CloseWait(11));
  CloseWaitAttribution first = owners.Attribute();
  ASSERT_EQ(first.owners.size(), 1u);
  EXPECT_EQ(first.owners[0].pid, 100);
  // Process 100 forked, the child (150) kept the socket, the parent closed its copy and
  // lives on: the child is named, not the parent that held it last time.
  std::filesystem::remove(proc_.path() + "/100/fd/3");
  proc_.File("150/comm", "child\n");
  proc_.Link("150/fd/7", "socket:[11]");
  owners.Observe(CloseWait(11));
  CloseWaitAttribution second = owners.Attribute();
  ASSERT_EQ(second.owners.size(), 1u);
  EXPECT_EQ(second.owners[0].pid, 150);
  EXPECT_EQ(second.owners[0].comm, "child");
  // The child exits and its pid is reused by a process without the socket: not named.
  std::filesystem::remove_all(proc_.path() + "/150");
  proc_.File("150/comm", "reused\n");
  proc_.Link("150/fd/7", "socket:[77]");
  owners.Observe(CloseWait(11));
  CloseWaitAttribution third = owners.Attribute();
  EXPECT_THAT(third.owners, IsEmpty());
  EXPECT_EQ(third.unattributed, 1u);
}

TEST(CloseWaitOwners, OwnersAreMergedBeforeTheTopNIsCut) {
  // 15 php-fpm workers with 2 sockets each and one other process with 3: with the top 1,
  // php-fpm is one owner of 30 sockets (cutting per process first kept 1 of its 15).
  TempDir proc;
  int inode = 1000;
  std::vector<int> inodes;
  for (int pid = 500; pid < 515; ++pid) {
    proc.File(absl::StrCat(pid, "/comm"), "php-fpm\n");
    proc.File(absl::StrCat(pid, "/cgroup"), "0::/system.slice/php-fpm.service\n");
    for (int fd = 3; fd < 5; ++fd, ++inode) {
      proc.Link(absl::StrCat(pid, "/fd/", fd), absl::StrCat("socket:[", inode, "]"));
      inodes.push_back(inode);
    }
  }
  proc.File("600/comm", "cron\n");
  for (int fd = 3; fd < 6; ++fd, ++inode) {
    proc.Link(absl::StrCat("600/fd/", fd), absl::StrCat("socket:[", inode, "]"));
    inodes.push_back(inode);
  }
  CloseWaitOwnersOptions options;
  options.proc = ProcRoot(proc.path());
  options.cgroup2_mount = "/nonexistent";
  options.top = 1;
  CloseWaitOwners owners(options);
  for (int i : inodes) owners.Observe(CloseWait(i));
  CloseWaitAttribution a = owners.Attribute();
  ASSERT_EQ(a.owners.size(), 1u);
  EXPECT_EQ(a.owners[0].comm, "php-fpm");
  EXPECT_EQ(a.owners[0].unit, "php-fpm.service");
  EXPECT_EQ(a.owners[0].sockets, 30u);
  EXPECT_EQ(a.owners[0].processes, 15);
  EXPECT_EQ(a.owners[0].pid, 500);  // all hold 2: the lowest pid
  EXPECT_EQ(a.attributed, 33u);
  EXPECT_EQ(a.other_sockets, 3u);
  EXPECT_EQ(a.other_owners, 1u);
}

// A fake cgroup v2 tree (its directories' inode numbers are the cgroup ids) next to a fake
// /proc, for the cgroup-narrowed search.
class CgroupSearchTest : public ::testing::Test {
 protected:
  uint64_t MakeCgroup(const std::string& relative, const std::string& procs) {
    const std::string path = root_.File(relative + "/cgroup.procs", procs);
    struct stat st;
    stat(std::filesystem::path(path).parent_path().c_str(), &st);
    return st.st_ino;
  }
  void Holder(int pid, int inode) {
    proc_.File(absl::StrCat(pid, "/comm"), "worker\n");
    proc_.Link(absl::StrCat(pid, "/fd/3"), absl::StrCat("socket:[", inode, "]"));
  }
  SocketRecord CloseWaitIn(uint64_t inode, uint64_t cgroup_id) {
    SocketRecord r = CloseWait(inode);
    r.cgroup_id = cgroup_id;
    return r;
  }
  TempDir proc_;
  TempDir root_;
};

TEST_F(CgroupSearchTest, HiddenAndUnopenableProcessesAreSaidSo) {
  // The cgroup lists pid 100 (holds socket 11), pid 0 (a process of another pid namespace),
  // pid 555 (not in our /proc: hidepid) and pid 300, whose fd table cannot be opened.
  const uint64_t app = MakeCgroup("system.slice/app.service", "100\n0\n555\n300\n");
  Holder(100, 11);
  proc_.File("300/comm", "odd\n");
  proc_.File("300/fd", "not a directory\n");
  proc_.File("self/mountinfo",
             absl::StrCat("22 1 0:21 / ", proc_.path(), " rw - proc proc rw,hidepid=2\n"));
  CloseWaitOwnersOptions options;
  options.proc = ProcRoot(proc_.path());
  options.cgroup2_mount = root_.path();
  CloseWaitOwners owners(options);
  for (uint64_t inode : {11, 12}) owners.Observe(CloseWaitIn(inode, app));
  CloseWaitAttribution a = owners.Attribute();
  EXPECT_EQ(a.attributed, 1u);
  EXPECT_EQ(a.unattributed, 1u);
  EXPECT_EQ(a.processes_hidden, 2);  // pid 0, and pid 555 under hidepid
  EXPECT_EQ(a.processes_failed, 1);
  EXPECT_TRUE(a.proc_hides_processes);
  EXPECT_EQ(a.narrowing, CgroupNarrowing::kUsed);
  EXPECT_THAT(a.Why(), ::testing::HasSubstr("2 processes hidden from this /proc"));
  EXPECT_THAT(a.Why(), ::testing::HasSubstr("1 processes' fd tables could not be opened"));
}

TEST_F(CgroupSearchTest, ProcessesOfOtherNetworkNamespacesAreNotRead) {
  // One cgroup, two network namespaces (a pod's containers, or namespaces one service made):
  // a search for namespace B's sockets reads only B's processes, even when a process of A
  // holds one of them (handed over), so that every namespace's search does not read every
  // process of the cgroup.
  const uint64_t shared = MakeCgroup("kubepods.slice/pod.slice", "100\n200\n");
  Holder(100, 11);  // namespace A
  Holder(200, 12);  // namespace B
  proc_.File("100/ns/net", "");
  const std::string b = proc_.File("200/ns/net", "");
  struct stat st;
  ASSERT_EQ(stat(b.c_str(), &st), 0);
  CloseWaitOwnersOptions options;
  options.proc = ProcRoot(proc_.path());
  options.cgroup2_mount = root_.path();
  options.netns_inode = st.st_ino;
  CloseWaitOwners owners(options);
  for (uint64_t inode : {11, 12}) owners.Observe(CloseWaitIn(inode, shared));
  CloseWaitAttribution a = owners.Attribute();
  ASSERT_EQ(a.owners.size(), 1u);
  EXPECT_EQ(a.owners[0].pid, 200);
  EXPECT_EQ(a.owners[0].sockets, 1u);
  EXPECT_EQ(a.attributed, 1u);
  EXPECT_EQ(a.unattributed, 1u);
}

TEST_F(CgroupSearchTest, ReachesTheHierarchyThroughInitsRootWhenThisMountNamespaceHidesIt) {
  // `ip netns exec` mounts a fresh /sys: this mount namespace has no cgroup2 mount, init's
  // has, and /proc/1/root leads there. Here init's root is the real / and its cgroup2 mount
  // the real one, so the tree found must be the real hierarchy, holding this process.
  absl::StatusOr<std::string> real_mountinfo = ReadSmallFile("/proc/self/mountinfo");
  ASSERT_TRUE(real_mountinfo.ok());
  std::optional<std::string> real_mount = FindCgroup2Mount(*real_mountinfo);
  ASSERT_TRUE(real_mount.has_value()) << "no cgroup2 on this machine";
  proc_.File("self/mountinfo", "22 1 0:21 / /sys rw - sysfs sysfs rw\n");
  proc_.File("1/mountinfo",
             absl::StrCat("30 1 0:26 / ", *real_mount, " rw - cgroup2 cgroup2 rw\n"));
  proc_.Link("1/root", "/");
  CgroupTree tree(ProcRoot(proc_.path()));
  EXPECT_EQ(tree.Mount(), proc_.path() + "/1/root" + *real_mount);
  const std::string own = CgroupPathOf(ProcRoot(), getpid());
  struct stat st;
  ASSERT_EQ(stat((*real_mount + own).c_str(), &st), 0) << own;
  EXPECT_THAT(tree.ProcessesOf(st.st_ino), ::testing::Contains(getpid()));
}

TEST_F(CgroupSearchTest, AMountPointThatIsNotCgroup2IsNotTheHierarchy) {
  // mountinfo still lists a cgroup2 mount that a later mount covers: not the hierarchy.
  proc_.File("self/mountinfo",
             absl::StrCat("30 1 0:26 / ", root_.path(), " rw - cgroup2 cgroup2 rw\n"));
  CgroupTree tree(ProcRoot(proc_.path()));
  EXPECT_EQ(tree.Mount(), "");
}

TEST_F(CgroupSearchTest, WithoutAReachableHierarchyEveryProcessIsSearchedAndThatIsSaid) {
  Holder(100, 11);
  CloseWaitOwnersOptions options;
  options.proc = ProcRoot(proc_.path());  // no mountinfo anywhere: no cgroup2 to be found
  CloseWaitOwners owners(options);
  owners.Observe(CloseWaitIn(11, 12345));
  CloseWaitAttribution a = owners.Attribute();
  EXPECT_EQ(a.attributed, 1u);
  EXPECT_EQ(a.narrowing, CgroupNarrowing::kNoCgroupFs);
  EXPECT_EQ(a.Why(), "cgroup v2 filesystem not reachable: every process searched");
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
  options.proc = ProcRoot(proc.path());
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
