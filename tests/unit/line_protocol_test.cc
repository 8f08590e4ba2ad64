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

// Nothing a terminal acts on reaches stdout raw: `--once` output is read by people, and a
// crafted process name must not retitle their terminal or move its cursor.
TEST(EscapeTest, OtherControlsAndInvalidUtf8BecomeVisibleHex) {
  // C0 (ESC, BEL, NUL), DEL, C1 CSI (U+009B, UTF-8 c2 9b), a lone 0x9b byte, a truncated
  // sequence: each byte as \xNN.
  const std::string controls("\x1b]0;x\x07\x00\x7f\xc2\x9b\x9b\xe2\x98", 13);
  const std::string visible = "\\x1b]0;x\\x07\\x00\\x7f\\xc2\\x9b\\x9b\\xe2\\x98";
  EXPECT_EQ(EscapeKeyOrTagValue(controls), visible);
  EXPECT_EQ(EscapeMeasurement(controls), visible);
  // Inside a string field the backslash of the visible form is itself escaped.
  EXPECT_EQ(EscapeStringFieldValue("a\x1b"), "a\\\\x1b");
}

TEST(EscapeTest, PrintableUtf8PassesUnchanged) {
  const std::string text = "w\xc3\xb6rker \xe2\x98\x83 \xf0\x9f\x90\xa7 \xc2\xa0nbsp";
  EXPECT_EQ(EscapeKeyOrTagValue("w\xc3\xb6rker"), "w\xc3\xb6rker");
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
    for (unsigned char c : line.substr(0, line.size() - 1)) {
      ASSERT_TRUE(c >= 0x20 && c != 0x7f) << "control byte in " << line;
    }
    // The tag value cannot end in a backslash, which would escape the separating space.
    const size_t fields_start = line.find(" s=\"");
    ASSERT_NE(fields_start, std::string::npos) << line;
    ASSERT_NE(line[fields_start - 1], '\\') << line;
  }
}

}  // namespace
}  // namespace tcpstates
