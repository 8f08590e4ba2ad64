// The line-protocol encoder (plugins/telegraf/line_protocol.h) and the execd batch built on it
// (plugins/telegraf/execd_batch.h). What InfluxDB makes of these lines is checked against a
// real influxd in tests/integration/test_line_protocol_influxdb.py.
#include "plugins/telegraf/line_protocol.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>

#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugins/telegraf/execd_batch.h"

namespace tcpstates {
namespace {

using line_protocol::EscapeKeyOrTagValue;
using line_protocol::EscapeMeasurement;
using line_protocol::EscapeStringFieldValue;
using line_protocol::LinePoint;
using ::testing::HasSubstr;

std::string EncodeOrDie(const LinePoint& point) {
  absl::StatusOr<std::string> line = point.Encode();
  EXPECT_TRUE(line.ok()) << line.status();
  return line.ok() ? *line : "";
}

absl::StatusCode EncodeError(const LinePoint& point) { return point.Encode().status().code(); }

TEST(LinePointTest, EncodesEveryFieldTypeWithTagsSortedAndFieldsInOrder) {
  LinePoint point("cpu");
  point.AddTag("zone", "b").AddTag("host", "a");
  point.AddInt("count", 42).AddFloat("ratio", 0.5).AddBool("up", true).AddString("note", "hi");
  point.SetTime(absl::FromUnixNanos(1700000000123456789));
  EXPECT_EQ(EncodeOrDie(point),
            "cpu,host=a,zone=b count=42i,ratio=0.5,up=true,note=\"hi\" 1700000000123456789\n");
}

TEST(LinePointTest, WithoutTimestampTheServerStampsThePoint) {
  EXPECT_EQ(EncodeOrDie(LinePoint("m").AddBool("ok", false)), "m ok=false\n");
}

TEST(LinePointTest, IntegersAreSignedWithISuffixAcrossTheWholeRange) {
  LinePoint point("m");
  point.AddInt("min", std::numeric_limits<int64_t>::min());
  point.AddInt("max", std::numeric_limits<int64_t>::max());
  point.AddInt("zero", 0);
  EXPECT_EQ(EncodeOrDie(point), "m min=-9223372036854775808i,max=9223372036854775807i,zero=0i\n");
}

TEST(LinePointTest, FloatsUseTheShortestTextThatReadsBackExactly) {
  for (double value : {0.1, 1.0 / 3.0, 1e300, -2.5e-310, 123456789.125, 1.0, -0.0}) {
    std::string line = EncodeOrDie(LinePoint("m").AddFloat("f", value));
    ASSERT_TRUE(line.starts_with("m f=")) << line;
    std::string text = line.substr(4, line.size() - 5);
    EXPECT_EQ(text.find('i'), std::string::npos) << "a float must not look like an integer";
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), value) << text;
  }
  EXPECT_EQ(EncodeOrDie(LinePoint("m").AddFloat("f", 0.1)), "m f=0.1\n");
}

TEST(LinePointTest, NonFiniteFloatsAreRefused) {
  EXPECT_EQ(EncodeError(LinePoint("m").AddFloat("f", std::nan(""))),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("m").AddFloat("f", std::numeric_limits<double>::infinity())),
            absl::StatusCode::kInvalidArgument);
}

TEST(EscapeTest, MeasurementEscapesCommaAndSpaceOnly) {
  EXPECT_EQ(EscapeMeasurement("a b,c=d\"e"), "a\\ b\\,c=d\"e");
}

TEST(EscapeTest, KeysAndTagValuesEscapeCommaEqualsAndSpace) {
  EXPECT_EQ(EscapeKeyOrTagValue("a b,c=d\"e\\f"), "a\\ b\\,c\\=d\"e\\f");
}

TEST(EscapeTest, StringFieldValuesEscapeQuoteAndBackslashOnly) {
  EXPECT_EQ(EscapeStringFieldValue("a \"b\" \\c, d=e"), "a \\\"b\\\" \\\\c, d=e");
}

TEST(EscapeTest, LineBreakingControlBytesBecomeVisibleEscapes) {
  EXPECT_EQ(EscapeKeyOrTagValue("a\tb\nc\fd\re"), "a\\tb\\nc\\fd\\re");
  EXPECT_EQ(EscapeMeasurement("a\nb"), "a\\nb");
  // In a string the visible escape's backslash is itself escaped, so the stored value is
  // the same two characters a name gets.
  EXPECT_EQ(EscapeStringFieldValue("a\nb\tc"), "a\\\\nb\\\\tc");
}

TEST(EscapeTest, OtherControlBytesAndNonAsciiPassUnchanged) {
  const std::string text("\x01\x1b\x7f\xc3\xa9\xe2\x98\x83\x00z", 10);
  EXPECT_EQ(EscapeKeyOrTagValue(text), text);
  EXPECT_EQ(EscapeMeasurement(text), text);
  EXPECT_EQ(EscapeStringFieldValue(text), text);
}

TEST(LinePointTest, EmptyTagValuesAreOmitted) {
  EXPECT_EQ(EncodeOrDie(LinePoint("m").AddTag("a", "").AddTag("b", "x").AddInt("f", 1)),
            "m,b=x f=1i\n");
}

TEST(LinePointTest, TrailingBackslashesOfTagValuesAreDropped) {
  EXPECT_EQ(EncodeOrDie(LinePoint("m").AddTag("t", "evil\\\\").AddInt("f", 1)), "m,t=evil f=1i\n");
  EXPECT_EQ(EncodeOrDie(LinePoint("m").AddTag("t", "\\").AddInt("f", 1)), "m f=1i\n");
  // Backslashes elsewhere stay, also right before an escaped character (InfluxDB and Telegraf
  // read `a\\,b` in a tag value back as `a\,b`).
  EXPECT_EQ(EncodeOrDie(LinePoint("m").AddTag("t", "a\\,b\\c").AddInt("f", 1)),
            "m,t=a\\\\,b\\c f=1i\n");
}

TEST(LinePointTest, TagsAreSortedByEscapedKeyBytes) {
  LinePoint point("m");
  point.AddTag("b", "1").AddTag("a b", "2").AddTag("B", "3").AddTag("\xc3\xa9", "4");
  point.AddInt("f", 1);
  // '\\' (0x5c) sorts after 'B' (0x42) and before 'b' (0x62); 0xc3 sorts last.
  EXPECT_EQ(EncodeOrDie(point), "m,B=3,a\\ b=2,b=1,\xc3\xa9=4 f=1i\n");
}

TEST(LinePointTest, RefusesWhatNoParserWouldReadBack) {
  EXPECT_EQ(EncodeError(LinePoint("m")), absl::StatusCode::kInvalidArgument);  // no field
  EXPECT_EQ(EncodeError(LinePoint("").AddInt("f", 1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("#m").AddInt("f", 1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("\x01m").AddInt("f", 1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("m\\").AddInt("f", 1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("a\\,b").AddInt("f", 1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("m").AddInt("", 1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("m").AddInt("time", 1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("m").AddInt("k\\", 1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("m").AddInt("k\\=x", 1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("m").AddTag("", "v").AddInt("f", 1)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("m").AddTag("time", "v").AddInt("f", 1)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("m").AddTag("k\\", "v").AddInt("f", 1)),
            absl::StatusCode::kInvalidArgument);
}

TEST(LinePointTest, DuplicateKeysAreRefusedAlsoWhenTheyOnlyCollideOnceEscaped) {
  EXPECT_EQ(EncodeError(LinePoint("m").AddTag("a", "1").AddTag("a", "2").AddInt("f", 1)),
            absl::StatusCode::kInvalidArgument);
  // A TAB and a literal backslash-t are the same key on the wire.
  EXPECT_EQ(EncodeError(LinePoint("m").AddTag("a\t", "1").AddTag("a\\t", "2").AddInt("f", 1)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeError(LinePoint("m").AddInt("f", 1).AddFloat("f", 2)),
            absl::StatusCode::kInvalidArgument);
  // A duplicate key whose value is empty is omitted, not a duplicate.
  EXPECT_EQ(EncodeOrDie(LinePoint("m").AddTag("a", "1").AddTag("a", "").AddInt("f", 1)),
            "m,a=1 f=1i\n");
}

TEST(LinePointTest, AppendToAppendsNothingOnError) {
  std::string out = "kept\n";
  EXPECT_FALSE(LinePoint("m").AddInt("time", 1).AppendTo(&out).ok());
  EXPECT_EQ(out, "kept\n");
  ASSERT_TRUE(LinePoint("m").AddInt("f", 1).AppendTo(&out).ok());
  EXPECT_EQ(out, "kept\nm f=1i\n");
}

// The invariant hostile input must never break: one point is one line, whatever bytes the
// tag values and string fields hold.
TEST(LinePointTest, AnyBytesInValuesStillGiveExactlyOneLine) {
  std::mt19937 random(20240605);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 24);
  for (int round = 0; round < 20000; ++round) {
    std::string tag_value, string_value;
    for (int i = length(random); i > 0; --i) tag_value.push_back(static_cast<char>(byte(random)));
    for (int i = length(random); i > 0; --i) {
      string_value.push_back(static_cast<char>(byte(random)));
    }
    LinePoint point("m");
    point.AddTag("comm", tag_value).AddString("s", string_value).AddInt("f", 1);
    std::string line = EncodeOrDie(point);
    ASSERT_EQ(line.find_first_of("\n\r\f"), line.size() - 1) << line;
    ASSERT_EQ(line.find('\t'), std::string::npos) << line;
    // The tag value cannot end in a backslash, which would escape the separating space.
    const size_t fields_start = line.find(" s=\"");
    ASSERT_NE(fields_start, std::string::npos) << line;
    ASSERT_NE(line[fields_start - 1], '\\') << line;
  }
}

// --- the execd batch -------------------------------------------------------------------

telegraf::BatchOptions Options(std::string measurement, bool by_family, bool netstat_compat) {
  telegraf::BatchOptions options;
  options.measurement = std::move(measurement);
  options.by_family = by_family;
  options.netstat_compat = netstat_compat;
  return options;
}

Snapshot ExampleSnapshot() {
  Snapshot snapshot;
  int n = 1;
  for (TcpState state : kAllStates) {
    snapshot.ipv4[state] = n;
    snapshot.ipv6[state] = 100 * n;
    ++n;
  }
  snapshot.taken_at = absl::FromUnixNanos(1717171717000000042);
  return snapshot;
}

TEST(ExecdBatchTest, OneLineWithEveryStateHeadlineFirst) {
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(ExampleSnapshot(), {});
  ASSERT_TRUE(batch.ok()) << batch.status();
  // established=1+100, syn_sent=2+200, ... closing=11+1100; connections = 66 * 101.
  EXPECT_EQ(*batch,
            "tcpstates tcp_connections=6666i,tcp_established=101i,tcp_time_wait=606i,"
            "tcp_close_wait=808i,tcp_listen=1010i,tcp_syn_sent=202i,tcp_syn_recv=303i,"
            "tcp_fin_wait1=404i,tcp_fin_wait2=505i,tcp_close=707i,tcp_last_ack=909i,"
            "tcp_closing=1111i 1717171717000000042\n");
}

TEST(ExecdBatchTest, ByFamilyAddsTaggedLinesWithTheSameTimestamp) {
  absl::StatusOr<std::string> batch =
      telegraf::RenderBatch(ExampleSnapshot(), Options("tcp", true, false));
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<std::string> lines = absl::StrSplit(*batch, '\n');
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_TRUE(lines[0].starts_with("tcp tcp_connections=6666i,")) << lines[0];
  EXPECT_TRUE(lines[1].starts_with("tcp,family=ipv4 tcp_connections=66i,tcp_established=1i,"))
      << lines[1];
  EXPECT_TRUE(
      lines[2].starts_with("tcp,family=ipv6 tcp_connections=6600i,"
                           "tcp_established=100i,"))
      << lines[2];
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(lines[i].ends_with(" 1717171717000000042"));
  EXPECT_EQ(lines[3], "");
}

TEST(ExecdBatchTest, NetstatCompatUsesNetstatsMeasurementAndFieldsOnly) {
  absl::StatusOr<std::string> batch =
      telegraf::RenderBatch(ExampleSnapshot(), Options("", false, true));
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_EQ(*batch,
            "netstat tcp_established=101i,tcp_syn_sent=202i,tcp_syn_recv=303i,"
            "tcp_fin_wait1=404i,tcp_fin_wait2=505i,tcp_time_wait=606i,tcp_close=707i,"
            "tcp_close_wait=808i,tcp_last_ack=909i,tcp_listen=1010i,tcp_closing=1111i "
            "1717171717000000042\n");
  absl::StatusOr<std::string> renamed =
      telegraf::RenderBatch(ExampleSnapshot(), Options("net stat", false, true));
  ASSERT_TRUE(renamed.ok());
  EXPECT_THAT(*renamed, HasSubstr("net\\ stat tcp_established=101i,"));
}

TEST(ExecdBatchTest, CountsBeyondInt64SaturateInsteadOfWrapping) {
  Snapshot snapshot;
  snapshot.ipv4[TcpState::kListen] = std::numeric_limits<uint64_t>::max() - 1;
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(snapshot, {});
  ASSERT_TRUE(batch.ok());
  EXPECT_THAT(*batch, HasSubstr("tcp_listen=9223372036854775807i"));
  EXPECT_THAT(*batch, HasSubstr("tcp_connections=9223372036854775807i"));
}

TEST(ExecdBatchTest, AnUnencodableMeasurementIsAnError) {
  EXPECT_FALSE(telegraf::RenderBatch(Snapshot{}, Options("#comment", false, false)).ok());
  EXPECT_FALSE(telegraf::RenderBatch(Snapshot{}, Options("ends\\", false, false)).ok());
}

Diagnosis ExampleDiagnosis() {
  Diagnosis diagnosis;
  CloseWaitAttribution& owners = diagnosis.close_wait.emplace();
  // Owners come most sockets first. Two workers of one server share comm and unit.
  owners.owners = {{.pid = 30, .comm = "a b,c=d\"e\\f\ng", .unit = "x.service", .sockets = 7},
                   {.pid = 11, .comm = "nginx", .unit = "nginx.service", .sockets = 4},
                   {.pid = 12, .comm = "nginx", .unit = "nginx.service", .sockets = 3},
                   {.pid = 40, .comm = "kworker\\", .unit = "", .sockets = 1}};
  owners.attributed = 16;
  owners.unattributed = 2;
  owners.processes_unreadable = 3;
  ListenReport& listen = diagnosis.listen.emplace();
  listen.listening = {{Family::kIpv4, 22, 1}, {Family::kIpv6, 8080, 4}};
  listen.vanished = {{Family::kIpv4, 5432, 2}};
  listen.has_previous = true;
  PortPressureReport& pressure = diagnosis.port_pressure.emplace();
  pressure.settings = {.range_low = 40000,
                       .range_high = 40999,
                       .fin_timeout = 60,
                       .tw_reuse = 2,
                       .max_tw_buckets = 262144};
  EndpointUsage& busiest = pressure.busiest.emplace();
  busiest.family = Family::kIpv4;
  busiest.address = {10, 0, 0, 7};
  busiest.port = 443;
  busiest.ports_in_use = 400;
  busiest.ratio = 0.4;
  return diagnosis;
}

TEST(ExecdBatchTest, DiagnosisSeriesFollowTheCountsWithTheSameTimestamp) {
  Snapshot snapshot = ExampleSnapshot();
  Diagnosis diagnosis = ExampleDiagnosis();
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(snapshot, {}, &diagnosis);
  ASSERT_TRUE(batch.ok()) << batch.status();
  std::vector<std::string> lines = absl::StrSplit(*batch, '\n');
  ASSERT_EQ(lines.size(), 10u) << *batch;
  EXPECT_TRUE(lines[0].starts_with("tcpstates tcp_connections=6666i,")) << lines[0];
  const std::string at = " 1717171717000000042";
  EXPECT_EQ(lines[1],
            "tcpstates_close_wait,comm=a\\ b\\,c\\=d\"e\\f\\ng,unit=x.service "
            "sockets=7i,pid=30i,processes=1i" +
                at);
  // Same comm and unit would be one series at one timestamp: merged, never overwritten.
  EXPECT_EQ(lines[2],
            "tcpstates_close_wait,comm=nginx,unit=nginx.service "
            "sockets=7i,pid=11i,processes=2i" +
                at);
  // Trailing backslash dropped, empty unit omitted: the point is still written.
  EXPECT_EQ(lines[3], "tcpstates_close_wait,comm=kworker sockets=1i,pid=40i,processes=1i" + at);
  EXPECT_EQ(lines[4],
            "tcpstates_close_wait_summary attributed=16i,unattributed=2i,"
            "processes_unreadable=3i" +
                at);
  EXPECT_EQ(lines[5], "tcpstates_listen,family=ipv4,port=22 sockets=1i" + at);
  EXPECT_EQ(lines[6], "tcpstates_listen,family=ipv6,port=8080 sockets=4i" + at);
  EXPECT_EQ(lines[7], "tcpstates_listen_vanished,family=ipv4,port=5432 sockets=2i" + at);
  EXPECT_EQ(lines[8],
            "tcpstates_port_pressure,endpoint=10.0.0.7:443 ports_in_use=400i,"
            "ratio=0.4,range_size=1000i,range_low=40000i,range_high=40999i,"
            "tcp_fin_timeout=60i,tcp_tw_reuse=2i,tcp_max_tw_buckets=262144i" +
                at);
  EXPECT_EQ(lines[9], "");
}

TEST(ExecdBatchTest, NoCloseWaitMeansNoOwnerOrSummaryLines) {
  Snapshot snapshot = ExampleSnapshot();
  snapshot.ipv4[TcpState::kCloseWait] = 0;
  snapshot.ipv6[TcpState::kCloseWait] = 0;
  Diagnosis diagnosis = ExampleDiagnosis();
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(snapshot, {}, &diagnosis);
  ASSERT_TRUE(batch.ok());
  EXPECT_THAT(*batch, ::testing::Not(HasSubstr("tcpstates_close_wait")));
  EXPECT_THAT(*batch, HasSubstr("tcpstates_listen,"));
}

TEST(ExecdBatchTest, PortPressureWithoutEndpointIsUntaggedZeroWithAFloatRatio) {
  Snapshot snapshot = ExampleSnapshot();
  Diagnosis diagnosis;
  diagnosis.port_pressure.emplace().settings = {.range_low = 32768,
                                                .range_high = 60999,
                                                .fin_timeout = -1,
                                                .tw_reuse = 0,
                                                .max_tw_buckets = 4096};
  absl::StatusOr<std::string> batch = telegraf::RenderBatch(snapshot, {}, &diagnosis);
  ASSERT_TRUE(batch.ok());
  std::vector<std::string> lines = absl::StrSplit(*batch, '\n');
  ASSERT_EQ(lines.size(), 3u);
  // "ratio=0" without `i` is a float to every parser: the field type never changes.
  EXPECT_EQ(lines[1],
            "tcpstates_port_pressure ports_in_use=0i,ratio=0,range_size=28232i,"
            "range_low=32768i,range_high=60999i,tcp_fin_timeout=-1i,tcp_tw_reuse=0i,"
            "tcp_max_tw_buckets=4096i 1717171717000000042");
}

TEST(ExecdBatchTest, DiagnosisNamesIgnoreTheMeasurementFlag) {
  Snapshot snapshot = ExampleSnapshot();
  Diagnosis diagnosis = ExampleDiagnosis();
  absl::StatusOr<std::string> batch =
      telegraf::RenderBatch(snapshot, Options("", true, true), &diagnosis);
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->starts_with("netstat ")) << *batch;
  EXPECT_THAT(*batch, HasSubstr("\ntcpstates_listen,family=ipv4,port=22 "));
}

}  // namespace
}  // namespace tcpstates
