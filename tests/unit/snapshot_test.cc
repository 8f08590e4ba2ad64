#include "common/model/snapshot.h"

#include "common/collection/collector.h"
#include "gtest/gtest.h"

namespace tcpstates {
namespace {

TEST(Snapshot, CountsByFamilyAndDerivesHeadlines) {
  Snapshot s;
  auto add = [&](Family family, int state, int times) {
    for (int i = 0; i < times; ++i) {
      SocketRecord r;
      r.family = family;
      r.state = static_cast<uint8_t>(state);
      CountSocket(r, &s);
    }
  };
  add(Family::kIpv4, 1, 5);
  add(Family::kIpv6, 1, 2);
  add(Family::kIpv4, 6, 3);
  add(Family::kIpv6, 8, 4);
  add(Family::kIpv4, 10, 1);
  add(Family::kIpv6, 12, 9);  // TCP_NEW_SYN_RECV never reaches user space: unknown
  add(Family::kIpv4, 0, 1);
  EXPECT_EQ(s.connections(), 15u);
  EXPECT_EQ(s.Count(TcpState::kEstablished), 7u);
  EXPECT_EQ(s.Count(TcpState::kTimeWait), 3u);
  EXPECT_EQ(s.Count(TcpState::kCloseWait), 4u);
  EXPECT_EQ(s.Count(TcpState::kListen), 1u);
  EXPECT_EQ(s.ipv4.Total(), 9u);
  EXPECT_EQ(s.ipv6.Total(), 6u);
  EXPECT_EQ(s.unknown_state, 10u);
  EXPECT_EQ(s.All()[TcpState::kEstablished], 7u);
}

TEST(TcpState, NamesRoundTrip) {
  for (TcpState state : kAllStates) {
    EXPECT_EQ(ParseState(MetricName(state)), state);
    EXPECT_EQ(ParseState(KernelName(state)), state);
  }
  EXPECT_EQ(ParseState("close-wait"), TcpState::kCloseWait);
  EXPECT_EQ(ParseState("bogus"), std::nullopt);
  EXPECT_EQ(StateFromKernel(0), std::nullopt);
  EXPECT_EQ(StateFromKernel(12), std::nullopt);
  EXPECT_EQ(MetricName(TcpState::kFinWait1), "fin_wait1");
  EXPECT_EQ(KernelName(TcpState::kSynRecv), "SYN_RECV");
}

TEST(SourceKind, ParsesAcceptedNamesAndRejectsOthers) {
  EXPECT_EQ(*ParseSourceKind("auto"), SourceKind::kAuto);
  EXPECT_EQ(*ParseSourceKind("Netlink"), SourceKind::kNetlink);
  EXPECT_EQ(*ParseSourceKind("proc"), SourceKind::kProc);
  absl::StatusOr<SourceKind> bad = ParseSourceKind("ebpf");
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find("auto, netlink or proc"), absl::string_view::npos);
}

}  // namespace
}  // namespace tcpstates
