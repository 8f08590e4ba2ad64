// What the kernel does with our dump requests, in a private network namespace with real
// sockets: the port filter's bytecode passes its audit and selects exactly the sockets it
// names, and tcp_info carries how long ago each peer was last heard from. Needs root.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "common/kernel/netlink_socket_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/workload/socket_workload.h"

namespace tcpstates {
namespace {

class NetlinkDumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0 && std::getenv("CI") == nullptr) GTEST_SKIP() << "needs root";
    ASSERT_TRUE(workload::EnterFreshNetworkNamespace().ok());
    absl::StatusOr<NetlinkSocketTable> table = NetlinkSocketTable::Open();
    ASSERT_TRUE(table.ok()) << table.status();
    table_.emplace(*std::move(table));
  }
  void TearDown() override {
    for (int fd : held_.fds) close(fd);
  }
  std::vector<SocketRecord> Dump(const DumpRequest& request) {
    std::vector<SocketRecord> records;
    WalkStats stats;
    absl::Status status = table_->Dump(
        request, [&](const SocketRecord& r) { records.push_back(r); }, &stats);
    EXPECT_TRUE(status.ok()) << status;
    return records;
  }
  std::optional<NetlinkSocketTable> table_;
  workload::Holdings held_;
};

TEST_F(NetlinkDumpTest, PortFilterSelectsExactlyThoseSockets) {
  ASSERT_TRUE(workload::Build({.listen = 4, .established = 3}, Family::kIpv4, &held_).ok());
  std::vector<SocketRecord> all = Dump({});
  ASSERT_EQ(all.size(), 4u + 1 + 6);
  // Pick one listener's port (local) and the pairs' listener port (remote of 3 clients).
  std::map<uint16_t, int> local_count, remote_count;
  for (const SocketRecord& r : all) {
    ++local_count[r.local_port];
    ++remote_count[r.remote_port];
  }
  uint16_t lone_listener = 0, pair_listener = 0;
  for (const SocketRecord& r : all) {
    if (r.state != static_cast<uint8_t>(TcpState::kListen)) continue;
    (local_count[r.local_port] > 1 ? pair_listener : lone_listener) = r.local_port;
  }
  ASSERT_NE(lone_listener, 0);
  ASSERT_NE(pair_listener, 0);
  // local lone_listener: 1 socket; remote pair_listener: the 3 clients; both: 4.
  EXPECT_EQ(Dump({.filter = PortFilter({lone_listener}, {})}).size(), 1u);
  EXPECT_EQ(Dump({.filter = PortFilter({}, {pair_listener})}).size(), 3u);
  EXPECT_EQ(Dump({.filter = PortFilter({lone_listener}, {pair_listener})}).size(), 4u);
  // local pair_listener: the listener and the 3 accepted servers.
  EXPECT_EQ(Dump({.filter = PortFilter({pair_listener, 1}, {2})}).size(), 4u);
  EXPECT_EQ(Dump({.filter = PortFilter({9}, {9})}).size(), 0u);
  // Filter and state mask together.
  EXPECT_EQ(Dump({.states = 1u << static_cast<int>(TcpState::kListen),
                  .filter = PortFilter({pair_listener}, {})})
                .size(),
            1u);
}

TEST_F(NetlinkDumpTest, TcpInfoSaysHowLongAgoThePeerWasHeardFrom) {
  ASSERT_TRUE(workload::Build({.close_wait = 2}, Family::kIpv4, &held_).ok());
  usleep(1200 * 1000);
  const DumpRequest close_wait{.states = 1u << static_cast<int>(TcpState::kCloseWait),
                               .tcp_info = true};
  std::vector<SocketRecord> records = Dump(close_wait);
  ASSERT_EQ(records.size(), 2u);
  for (const SocketRecord& r : records) {
    EXPECT_GE(r.last_received_ms, 1200u);
    EXPECT_LT(r.last_received_ms, 10000u);
  }
  // Without tcp_info, unknown.
  for (const SocketRecord& r : Dump({.states = close_wait.states})) {
    EXPECT_EQ(r.last_received_ms, SocketRecord::kUnknownAge);
  }
}

TEST_F(NetlinkDumpTest, QueuesAreWhatSsShows) {
  ASSERT_TRUE(workload::Build({.listen = 1}, Family::kIpv4, &held_).ok());
  // A listener of backlog 16 (the workload's) with nothing queued.
  std::vector<SocketRecord> records = Dump({});
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].receive_queue, 0u);
  EXPECT_EQ(records[0].send_queue, 16u);
}

}  // namespace
}  // namespace tcpstates
