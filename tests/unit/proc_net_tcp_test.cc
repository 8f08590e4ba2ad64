#include "common/kernel/proc_net_tcp.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tcpstates {
namespace {

using ::testing::ElementsAre;

std::string ReadTestData(const std::string& name) {
  std::ifstream in(std::string(TCPSTATES_TESTDATA_DIR) + "/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Parses `text` and returns per-state counts indexed by kernel state number.
struct Parsed {
  std::vector<SocketRecord> records;
  WalkStats stats;
};

Parsed Parse(absl::string_view text, Family family) {
  Parsed parsed;
  ParseProcNetTcpText(
      text, family, [&](const SocketRecord& r) { parsed.records.push_back(r); }, &parsed.stats);
  return parsed;
}

std::vector<int> CountByState(const std::vector<SocketRecord>& records) {
  std::vector<int> counts(13, 0);
  for (const SocketRecord& r : records) ++counts[r.state < 13 ? r.state : 12];
  return counts;
}

// Captured from a workload namespace (2 of each: listeners, established pairs, CLOSE_WAIT
// pairs, TIME_WAIT, SYN_RECV behind a TCP_DEFER_ACCEPT listener).
TEST(ProcNetTcp, CapturedIpv4TableHasEveryWorkloadState) {
  Parsed parsed = Parse(ReadTestData("proc_net_tcp.txt"), Family::kIpv4);
  EXPECT_EQ(parsed.stats.malformed, 0u);
  EXPECT_EQ(parsed.stats.sockets, 20u);
  std::vector<int> counts = CountByState(parsed.records);
  EXPECT_EQ(counts[1], 6);   // ESTABLISHED: 2 pairs + 2 deferred clients
  EXPECT_EQ(counts[3], 2);   // SYN_RECV (request sockets)
  EXPECT_EQ(counts[5], 2);   // FIN_WAIT2
  EXPECT_EQ(counts[6], 2);   // TIME_WAIT
  EXPECT_EQ(counts[8], 2);   // CLOSE_WAIT
  EXPECT_EQ(counts[10], 6);  // LISTEN: 2 + 4 helper listeners
}

TEST(ProcNetTcp, DecodesAddressesPortsAndInodes) {
  Parsed parsed = Parse(ReadTestData("proc_net_tcp.txt"), Family::kIpv4);
  ASSERT_GE(parsed.records.size(), 8u);
  const SocketRecord& established = parsed.records[6];  // "6: 0100007F:CB7F 0100007F:B474 01"
  EXPECT_EQ(established.family, Family::kIpv4);
  EXPECT_EQ(established.state, 1);
  EXPECT_EQ(established.local_port, 0xCB7F);
  EXPECT_EQ(established.remote_port, 0xB474);
  EXPECT_THAT(std::vector<uint8_t>(established.remote_address.begin(),
                                   established.remote_address.begin() + 4),
              ElementsAre(127, 0, 0, 1));
  EXPECT_EQ(established.inode, 16847u);
  const SocketRecord& time_wait = parsed.records[10];  // time-wait sockets own no inode
  EXPECT_EQ(time_wait.state, 6);
  EXPECT_EQ(time_wait.inode, 0u);
}

TEST(ProcNetTcp, CapturedIpv6Table) {
  Parsed parsed = Parse(ReadTestData("proc_net_tcp6.txt"), Family::kIpv6);
  EXPECT_EQ(parsed.stats.malformed, 0u);
  EXPECT_EQ(parsed.stats.sockets, 20u);
  std::vector<int> counts = CountByState(parsed.records);
  EXPECT_EQ(counts[1], 6);
  EXPECT_EQ(counts[3], 2);
  EXPECT_EQ(counts[5], 2);
  EXPECT_EQ(counts[6], 2);
  EXPECT_EQ(counts[8], 2);
  EXPECT_EQ(counts[10], 6);
  for (const SocketRecord& r : parsed.records) EXPECT_EQ(r.family, Family::kIpv6);
}

constexpr absl::string_view kIpv6Header =
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

TEST(ProcNetTcp, Ipv4MappedIpv6AddressDecodesToMappedBytes) {
  // ::ffff:127.0.0.1 port 8080 talking to ::ffff:10.1.2.3 port 443.
  const std::string text = absl::StrCat(
      kIpv6Header,
      "   0: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000302010A:01BB 01 "
      "00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 20 4 30 10 "
      "-1\n");
  Parsed parsed = Parse(text, Family::kIpv6);
  ASSERT_EQ(parsed.records.size(), 1u);
  EXPECT_EQ(parsed.stats.malformed, 0u);
  const SocketRecord& r = parsed.records[0];
  EXPECT_EQ(r.local_port, 8080);
  EXPECT_EQ(r.remote_port, 443);
  EXPECT_THAT(r.remote_address, ElementsAre(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3));
  EXPECT_EQ(r.inode, 4242u);
}

std::string Ipv4Line(int slot, int state) {
  return absl::StrFormat(
      "%4d: 0100007F:1F90 0100007F:%04X %02X 00000000:00000000 00:00000000 00000000     0        "
      "0 %d 1 0000000000000000 20 4 30 10 -1\n",
      slot, 40000 + slot, state, 1000 + slot);
}

TEST(ProcNetTcp, EveryKernelStateCodeIsPassedThrough) {
  std::string text =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode\n";
  for (int state = 1; state <= 12; ++state) text += Ipv4Line(state, state);
  Parsed parsed = Parse(text, Family::kIpv4);
  EXPECT_EQ(parsed.stats.malformed, 0u);
  ASSERT_EQ(parsed.records.size(), 12u);
  for (int state = 1; state <= 12; ++state) {
    EXPECT_EQ(parsed.records[state - 1].state, state);
    EXPECT_EQ(parsed.records[state - 1].remote_port, 40000 + state);
  }
}

TEST(ProcNetTcp, MalformedLinesAreCountedAndSkipped) {
  const std::string good = Ipv4Line(0, 1);
  const std::vector<std::string> bad = {
      "garbage\n",
      "   1: 0100007F:1F90\n",                                       // too few fields
      "   2: 0100007G:1F90 0100007F:9C41 01 0:0 0:0 0 0 0 1 1 0\n",  // bad hex
      "   3: 0100007F:1F90 0100007F:9C41 1 0:0 0:0 0 0 0 1 1 0\n",   // 1-digit state
      "   4: 0100007F:1F90 0100007F:9C41 01 0:0 0:0 0 0 0 x 1 0\n",  // inode not a number
      "   5: 0100007F1F90 0100007F:9C41 01 0:0 0:0 0 0 0 1 1 0\n",   // missing ':'
      "   6: 00000000000000000000000001000000:1F90 0100007F:9C41 01 0:0 0:0 0 0 0 1 1 0\n",
      "x: 0100007F:1F90 0100007F:9C41 01 0:0 0:0 0 0 0 1 1 0\n",  // slot not a number
      "\n",                                                       // empty line
  };
  std::string text = good;
  for (const std::string& line : bad) text += line;
  text += good;
  Parsed parsed = Parse(text, Family::kIpv4);
  EXPECT_EQ(parsed.stats.sockets, 2u);
  EXPECT_EQ(parsed.stats.malformed, bad.size());
}

TEST(ProcNetTcp, CompleteLastLineWithoutNewlineIsParsed) {
  std::string line = Ipv4Line(0, 10);
  line.pop_back();
  Parsed parsed = Parse(line, Family::kIpv4);
  EXPECT_EQ(parsed.stats.sockets, 1u);
  EXPECT_EQ(parsed.stats.malformed, 0u);
}

TEST(ProcNetTcp, TruncatedLastLineIsMalformed) {
  std::string text = Ipv4Line(0, 1) + Ipv4Line(1, 1).substr(0, 60);
  Parsed parsed = Parse(text, Family::kIpv4);
  EXPECT_EQ(parsed.stats.sockets, 1u);
  EXPECT_EQ(parsed.stats.malformed, 1u);
}

TEST(ProcNetTcp, EmptyTables) {
  Parsed header_only = Parse(
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
      "timeout inode\n",
      Family::kIpv4);
  EXPECT_EQ(header_only.stats.sockets, 0u);
  EXPECT_EQ(header_only.stats.malformed, 0u);
  Parsed empty = Parse("", Family::kIpv4);
  EXPECT_EQ(empty.stats.sockets, 0u);
  EXPECT_EQ(empty.stats.malformed, 0u);
}

class TempFile {
 public:
  explicit TempFile(absl::string_view contents) {
    char name[] = "/tmp/tcpstates-proc-XXXXXX";
    int fd = mkstemp(name);
    path_ = name;
    EXPECT_EQ(write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
    close(fd);
  }
  ~TempFile() { unlink(path_.c_str()); }
  const char* path() const { return path_.c_str(); }

 private:
  std::string path_;
};

TEST(ProcNetTcp, StreamingThroughASmallBufferEqualsParsingWhole) {
  // Many lines through a 4 KiB buffer: lines straddle every possible buffer boundary.
  const std::string table = ReadTestData("proc_net_tcp6.txt");
  const std::string rows = table.substr(table.find('\n') + 1);  // 20 sockets
  std::string repeated = table;
  for (int i = 1; i < 50; ++i) repeated += rows;
  TempFile file(repeated);
  Parsed whole = Parse(repeated, Family::kIpv6);
  Parsed streamed;
  std::vector<char> buffer(4096);
  ASSERT_TRUE(ReadProcNetTcp(
                  file.path(), Family::kIpv6, absl::MakeSpan(buffer),
                  [&](const SocketRecord& r) { streamed.records.push_back(r); }, &streamed.stats)
                  .ok());
  EXPECT_EQ(streamed.stats.sockets, 1000u);
  EXPECT_EQ(streamed.stats.sockets, whole.stats.sockets);
  EXPECT_EQ(streamed.stats.malformed, 0u);
  EXPECT_EQ(CountByState(streamed.records), CountByState(whole.records));
}

TEST(ProcNetTcp, OverlongLineIsOneMalformedLineAndReadingGoesOn) {
  std::string text = Ipv4Line(0, 1) + std::string(10000, 'x') + "\n" + Ipv4Line(1, 6);
  TempFile file(text);
  WalkStats stats;
  std::vector<int> states;
  std::vector<char> buffer(4096);
  ASSERT_TRUE(ReadProcNetTcp(
                  file.path(), Family::kIpv4, absl::MakeSpan(buffer),
                  [&](const SocketRecord& r) { states.push_back(r.state); }, &stats)
                  .ok());
  EXPECT_THAT(states, ElementsAre(1, 6));
  EXPECT_EQ(stats.malformed, 1u);
}

TEST(ProcNetTcp, MissingFileIsNotFound) {
  WalkStats stats;
  std::vector<char> buffer(4096);
  absl::Status status = ReadProcNetTcp(
      "/nonexistent/tcp6", Family::kIpv6, absl::MakeSpan(buffer), [](const SocketRecord&) {},
      &stats);
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
}

}  // namespace
}  // namespace tcpstates
