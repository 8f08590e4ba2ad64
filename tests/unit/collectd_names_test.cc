// The collectd plugin's name sanitizer: hostile process names, lengths, and the shapes of
// the instance names the README documents.
#include "plugins/collectd/collectd_names.h"

#include <arpa/inet.h>

#include <string>

#include "gtest/gtest.h"

namespace tcpstates::collectd_names {
namespace {

TEST(CollectdSanitizeNameTest, KeepsTheSafeSetAndReplacesEveryOtherByte) {
  EXPECT_EQ(SanitizeName("nginx.service"), "nginx.service");
  EXPECT_EQ(SanitizeName("kworker-1_A.z"), "kworker-1_A.z");
  // The hostile name of the integration tests: space, comma, '=', quote, backslash, newline.
  EXPECT_EQ(SanitizeName("a b,c=d\"e\\f\ng"), "a_b_c_d_e_f_g");
  // One '_' per byte: o-umlaut is two bytes, the snowman three.
  EXPECT_EQ(SanitizeName("w\xc3\xb6rker \xe2\x98\x83"), "w__rker____");
  EXPECT_EQ(SanitizeName("../../etc/passwd"), ".._.._etc_passwd");
  EXPECT_EQ(SanitizeName(std::string("a\0b", 3)), "a_b");
  EXPECT_EQ(SanitizeName(""), "unknown");
}

TEST(CollectdSanitizeNameTest, NoByteOutsideTheSafeSetSurvives) {
  std::string every_byte;
  for (int c = 0; c < 256; ++c) every_byte.push_back(static_cast<char>(c));
  const std::string out = SanitizeName(every_byte, 1000);
  ASSERT_EQ(out.size(), 256u);
  for (char c : out) EXPECT_TRUE(IsKept(static_cast<unsigned char>(c))) << int{c};
  EXPECT_EQ(out.find('/'), std::string::npos);
}

TEST(CollectdSanitizeNameTest, CutsToTheLimit) {
  EXPECT_EQ(SanitizeName(std::string(500, 'x')).size(), kMaxNameLength);
  EXPECT_EQ(SanitizeName("abcdef", 3), "abc");
}

TEST(CollectdOwnerInstanceTest, UnitDashComm) {
  EXPECT_EQ(OwnerInstance("nginx.service", "nginx"), "nginx.service-nginx");
  EXPECT_EQ(OwnerInstance("", "a/b"), "unknown-a_b");
  EXPECT_EQ(OwnerInstance("docker-1a2b.scope", ""), "docker-1a2b.scope-unknown");
}

TEST(CollectdOwnerInstanceTest, LongUnitIsCutSoTheWholeNameFits) {
  const std::string instance = OwnerInstance(std::string(300, 'u'), "worker");
  EXPECT_EQ(instance.size(), kMaxNameLength);
  EXPECT_EQ(instance, std::string(kMaxNameLength - 7, 'u') + "-worker");
  // A comm longer than the kernel allows today is cut too, leaving the unit its share.
  const std::string long_comm = OwnerInstance("u.service", std::string(200, 'c'));
  EXPECT_EQ(long_comm, "u.service-" + std::string(kMaxCommLength, 'c'));
}

TEST(CollectdListenInstanceTest, FamilyDashPort) {
  EXPECT_EQ(ListenInstance(Family::kIpv4, 8080), "ipv4-8080");
  EXPECT_EQ(ListenInstance(Family::kIpv6, 443), "ipv6-443");
}

TEST(CollectdBusiestInstanceTest, AddressWithoutColons) {
  EndpointUsage v4;
  v4.family = Family::kIpv4;
  ASSERT_EQ(inet_pton(AF_INET, "10.0.0.1", v4.address.data()), 1);
  v4.port = 443;
  EXPECT_EQ(BusiestInstance(v4), "busiest-ipv4-10.0.0.1-443");
  EndpointUsage v6;
  v6.family = Family::kIpv6;
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::1", v6.address.data()), 1);
  v6.port = 8443;
  EXPECT_EQ(BusiestInstance(v6), "busiest-ipv6-2001_db8__1-8443");
}

}  // namespace
}  // namespace tcpstates::collectd_names
