#include "common/kernel/kernel_counters.h"

#include "gtest/gtest.h"

namespace tcpstates {
namespace {

// Captured from a workload namespace on Linux 6.18.
constexpr absl::string_view kSnmp =
    "Ip: Forwarding DefaultTTL InReceives\n"
    "Ip: 2 64 5901\n"
    "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets "
    "CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
    "Tcp: 1 200 120000 -1 1400 1300 0 0 1700 5901 5901 0 0 0 0\n"
    "Udp: InDatagrams NoPorts\n"
    "Udp: 0 0\n";
constexpr absl::string_view kSockstat =
    "sockets: used 2114\n"
    "TCP: inuse 1057 orphan 0 tw 300 alloc 2115 mem 138\n"
    "UDP: inuse 0 mem 0\n";

TEST(KernelCounters, ParsesCurrEstabByName) {
  absl::StatusOr<uint64_t> value = ParseCurrEstab(kSnmp);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, 1700u);
}

TEST(KernelCounters, ParsesSockstatTimeWait) {
  absl::StatusOr<uint64_t> value = ParseSockstatTimeWait(kSockstat);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, 300u);
}

TEST(KernelCounters, MissingFieldsAreErrorsNotZeros) {
  EXPECT_FALSE(ParseCurrEstab("Tcp: RtoAlgorithm\nTcp: 1\n").ok());
  EXPECT_FALSE(ParseCurrEstab("").ok());
  EXPECT_FALSE(ParseSockstatTimeWait("TCP: inuse 3 orphan 0\n").ok());
  EXPECT_FALSE(ParseSockstatTimeWait("TCP: inuse 3 tw x\n").ok());
}

}  // namespace
}  // namespace tcpstates
