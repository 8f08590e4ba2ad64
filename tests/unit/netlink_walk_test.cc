#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <cstring>
#include <limits>
#include <vector>

#include "common/kernel/netlink_socket_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tcpstates {
namespace {

using ::testing::ElementsAre;

// Builds receive buffers the way the kernel lays them out.
class Buffer {
 public:
  void AddSocket(uint32_t seq, uint8_t family, uint8_t state, uint16_t sport, uint16_t dport,
                 uint32_t inode, uint64_t cgroup_id = 0) {
    inet_diag_msg msg{};
    msg.idiag_family = family;
    msg.idiag_state = state;
    msg.id.idiag_sport = htons(sport);
    msg.id.idiag_dport = htons(dport);
    msg.id.idiag_dst[0] = htonl(0x0a000001);  // 10.0.0.1
    msg.idiag_inode = inode;
    std::vector<uint8_t> payload(sizeof msg);
    std::memcpy(payload.data(), &msg, sizeof msg);
    if (cgroup_id != 0) {
      nlattr attr{static_cast<uint16_t>(NLA_HDRLEN + 8), INET_DIAG_CGROUP_ID};
      AppendBytes(&payload, &attr, sizeof attr);
      AppendBytes(&payload, &cgroup_id, 8);
    }
    AddMessage(seq, SOCK_DIAG_BY_FAMILY, payload);
  }
  void AddDone(uint32_t seq) { AddMessage(seq, NLMSG_DONE, std::vector<uint8_t>(4, 0)); }
  void AddError(uint32_t seq, int error) {
    nlmsgerr err{};
    err.error = -error;
    std::vector<uint8_t> payload(sizeof err);
    std::memcpy(payload.data(), &err, sizeof err);
    AddMessage(seq, NLMSG_ERROR, payload);
  }
  void AddMessage(uint32_t seq, uint16_t type, const std::vector<uint8_t>& payload) {
    nlmsghdr header{};
    header.nlmsg_len = NLMSG_LENGTH(payload.size());
    header.nlmsg_type = type;
    header.nlmsg_seq = seq;
    AppendBytes(&bytes_, &header, sizeof header);
    bytes_.insert(bytes_.end(), payload.begin(), payload.end());
    bytes_.resize(NLMSG_ALIGN(bytes_.size()), 0);
  }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  static void AppendBytes(std::vector<uint8_t>* out, const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    out->insert(out->end(), p, p + size);
  }
  std::vector<uint8_t> bytes_;
};

struct Walked {
  absl::StatusOr<DumpProgress> progress;
  std::vector<SocketRecord> records;
  WalkStats stats;
};

Walked Walk(const std::vector<uint8_t>& bytes, uint32_t seq) {
  Walked walked{DumpProgress::kMore, {}, {}};
  walked.progress = WalkDiagMessages(
      absl::MakeConstSpan(bytes), seq, [&](const SocketRecord& r) { walked.records.push_back(r); },
      &walked.stats);
  return walked;
}

TEST(NetlinkWalk, DecodesSocketsOfBothFamilies) {
  Buffer buffer;
  buffer.AddSocket(7, AF_INET, 1, 8080, 40000, 111, /*cgroup_id=*/4242);
  buffer.AddSocket(7, AF_INET6, 8, 443, 50000, 222);
  Walked walked = Walk(buffer.bytes(), 7);
  ASSERT_TRUE(walked.progress.ok());
  EXPECT_EQ(*walked.progress, DumpProgress::kMore);
  ASSERT_EQ(walked.records.size(), 2u);
  EXPECT_EQ(walked.records[0].family, Family::kIpv4);
  EXPECT_EQ(walked.records[0].state, 1);
  EXPECT_EQ(walked.records[0].local_port, 8080);
  EXPECT_EQ(walked.records[0].remote_port, 40000);
  EXPECT_THAT(std::vector<uint8_t>(walked.records[0].remote_address.begin(),
                                   walked.records[0].remote_address.begin() + 4),
              ElementsAre(10, 0, 0, 1));
  EXPECT_EQ(walked.records[0].inode, 111u);
  EXPECT_EQ(walked.records[0].cgroup_id, 4242u);
  EXPECT_EQ(walked.records[1].family, Family::kIpv6);
  EXPECT_EQ(walked.records[1].state, 8);
  EXPECT_EQ(walked.records[1].cgroup_id, 0u);
  EXPECT_EQ(walked.stats.sockets, 2u);
  EXPECT_EQ(walked.stats.malformed, 0u);
}

TEST(NetlinkWalk, DoneEndsTheDump) {
  Buffer buffer;
  buffer.AddSocket(3, AF_INET, 10, 22, 0, 1);
  buffer.AddDone(3);
  buffer.AddSocket(3, AF_INET, 10, 23, 0, 2);  // after DONE: never read
  Walked walked = Walk(buffer.bytes(), 3);
  ASSERT_TRUE(walked.progress.ok());
  EXPECT_EQ(*walked.progress, DumpProgress::kDone);
  EXPECT_EQ(walked.records.size(), 1u);
}

TEST(NetlinkWalk, MessagesOfAnotherDumpAreIgnored) {
  Buffer buffer;
  buffer.AddSocket(2, AF_INET, 1, 1, 2, 3);  // left over from an abandoned dump
  buffer.AddDone(2);
  buffer.AddSocket(3, AF_INET, 6, 1, 2, 0);
  Walked walked = Walk(buffer.bytes(), 3);
  ASSERT_TRUE(walked.progress.ok());
  EXPECT_EQ(*walked.progress, DumpProgress::kMore);
  ASSERT_EQ(walked.records.size(), 1u);
  EXPECT_EQ(walked.records[0].state, 6);
  EXPECT_EQ(walked.stats.malformed, 0u);
}

TEST(NetlinkWalk, ErrorBecomesItsErrnoStatus) {
  Buffer buffer;
  buffer.AddError(5, EPERM);
  Walked walked = Walk(buffer.bytes(), 5);
  EXPECT_TRUE(absl::IsPermissionDenied(walked.progress.status())) << walked.progress.status();
}

TEST(NetlinkWalk, AbsurdErrorCodeIsAProtocolErrorNotUndefinedBehaviour) {
  // Found by the fuzzer: negating INT_MIN. Positive codes are not errnos either.
  for (int code : {std::numeric_limits<int>::min(), 5}) {
    Buffer buffer;
    nlmsgerr err{};
    err.error = code;
    std::vector<uint8_t> payload(sizeof err);
    std::memcpy(payload.data(), &err, sizeof err);
    buffer.AddMessage(9, NLMSG_ERROR, payload);
    Walked walked = Walk(buffer.bytes(), 9);
    EXPECT_FALSE(walked.progress.ok());
    EXPECT_NE(walked.progress.status().message().find("errno 71"), absl::string_view::npos)
        << walked.progress.status();  // EPROTO
  }
}

TEST(NetlinkWalk, ShortAndUnknownMessagesAreMalformed) {
  Buffer buffer;
  buffer.AddMessage(1, SOCK_DIAG_BY_FAMILY, std::vector<uint8_t>(8, 0));  // too short
  buffer.AddSocket(1, AF_UNIX, 1, 1, 1, 1);                               // not an inet family
  buffer.AddSocket(1, AF_INET, 1, 1, 1, 1);
  Walked walked = Walk(buffer.bytes(), 1);
  ASSERT_TRUE(walked.progress.ok());
  EXPECT_EQ(walked.records.size(), 1u);
  EXPECT_EQ(walked.stats.malformed, 2u);
}

TEST(NetlinkWalk, BadFramingStopsWithoutReadingPastTheBuffer) {
  Buffer buffer;
  buffer.AddSocket(1, AF_INET, 1, 1, 1, 1);
  std::vector<uint8_t> bytes = buffer.bytes();
  // A header that claims more bytes than there are.
  nlmsghdr header{};
  header.nlmsg_len = 4096;
  header.nlmsg_seq = 1;
  const auto* p = reinterpret_cast<const uint8_t*>(&header);
  bytes.insert(bytes.end(), p, p + sizeof header);
  Walked walked = Walk(bytes, 1);
  ASSERT_TRUE(walked.progress.ok());
  EXPECT_EQ(walked.records.size(), 1u);
  EXPECT_EQ(walked.stats.malformed, 1u);

  // A trailing fragment shorter than a header.
  std::vector<uint8_t> fragment = buffer.bytes();
  fragment.resize(fragment.size() + 5, 0);
  walked = Walk(fragment, 1);
  EXPECT_EQ(walked.records.size(), 1u);
  EXPECT_EQ(walked.stats.malformed, 1u);
}

TEST(NetlinkWalk, TruncatedAttributesAreIgnored) {
  Buffer buffer;
  inet_diag_msg msg{};
  msg.idiag_family = AF_INET;
  msg.idiag_state = 1;
  std::vector<uint8_t> payload(sizeof msg);
  std::memcpy(payload.data(), &msg, sizeof msg);
  nlattr attr{200, INET_DIAG_CGROUP_ID};  // claims 200 bytes, has 4
  const auto* p = reinterpret_cast<const uint8_t*>(&attr);
  payload.insert(payload.end(), p, p + sizeof attr);
  buffer.AddMessage(1, SOCK_DIAG_BY_FAMILY, payload);
  Walked walked = Walk(buffer.bytes(), 1);
  ASSERT_EQ(walked.records.size(), 1u);
  EXPECT_EQ(walked.records[0].cgroup_id, 0u);
}

// The state mask sent to the kernel: TCP states 1..11 and request sockets (12), whatever a
// caller asks for. Bit 13 (TCP_BOUND_INACTIVE) would add bound-only sockets that neither
// /proc nor `ss -tan` show; later bits are whatever future kernels define.
constexpr uint32_t kWanted = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) |
                             (1u << 7) | (1u << 8) | (1u << 9) | (1u << 10) | (1u << 11) |
                             (1u << 12);

uint32_t RequestedStates(const std::vector<uint8_t>& request, bool legacy) {
  nlmsghdr header;
  std::memcpy(&header, request.data(), sizeof header);
  EXPECT_EQ(header.nlmsg_len, request.size());
  EXPECT_EQ(header.nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  if (legacy) {
    EXPECT_EQ(header.nlmsg_type, TCPDIAG_GETSOCK);
    inet_diag_req body;
    std::memcpy(&body, request.data() + sizeof header, sizeof body);
    return body.idiag_states;
  }
  EXPECT_EQ(header.nlmsg_type, SOCK_DIAG_BY_FAMILY);
  inet_diag_req_v2 body;
  std::memcpy(&body, request.data() + sizeof header, sizeof body);
  EXPECT_EQ(body.sdiag_protocol, IPPROTO_TCP);
  return body.idiag_states;
}

TEST(DumpRequest, AsksForExactlyTheStatesSsShows) {
  EXPECT_EQ(kShownStateMask, kWanted);
  for (bool legacy : {true, false}) {
    EXPECT_EQ(
        RequestedStates(BuildDumpRequest(legacy, AF_INET6, {.states = 0xffffffffu}, 7), legacy),
        kWanted);
    EXPECT_EQ(
        RequestedStates(BuildDumpRequest(legacy, AF_INET, {.states = kShownStateMask}, 7), legacy),
        kWanted);
    // Every single bit: only wanted ones pass.
    for (int bit = 0; bit < 32; ++bit) {
      const uint32_t asked = 1u << bit;
      EXPECT_EQ(RequestedStates(BuildDumpRequest(legacy, AF_INET, {.states = asked}, 1), legacy),
                asked & kWanted)
          << "bit " << bit;
    }
  }
}

}  // namespace
}  // namespace tcpstates
