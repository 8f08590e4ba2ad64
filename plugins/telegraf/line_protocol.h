// InfluxDB line protocol, the format Telegraf's `data_format = "influx"` parses: one point per
// line, `measurement[,tag=value...] field=value[,field=value...] [timestamp]\n`.
//
// Everything we print for Telegraf goes through LinePoint, so the rules below hold for every
// line, whatever a tag value contains (tag values may be hostile data such as process names):
//
//  * One point is exactly one line, and safe on a terminal (`--once` is read by people too).
//    TAB, LF, FF and CR can appear neither raw in a name nor (as Telegraf's parser reads
//    them) in a string value, so wherever they occur they are replaced by the two visible
//    characters `\t`, `\n`, `\f`, `\r` - as Telegraf's own serializer does. Every other
//    control (C0, DEL, and the C1 controls U+0080..U+009F, which terminals act on: CSI is
//    U+009B) and every byte that is not part of valid UTF-8 becomes the visible `\xNN`, one
//    per byte. A reader sees e.g. `a\nb` (backslash, n) for "a<LF>b" and `\x1b` for ESC.
//  * Every other byte - printable ASCII, valid UTF-8 from U+00A0 on - is written unchanged
//    and reaches InfluxDB byte for byte.
//  * Escaping follows the spec: measurement: comma, space; tag keys, tag values, field keys:
//    comma, equals sign, space; string field values (double-quoted): `"` and `\`.
//  * A backslash at the end of a name would escape the separator after it; no parser can read
//    it. Tag values (data) lose their trailing backslashes; names we choose (measurement, tag
//    and field keys) are refused instead, and so are measurements and field keys with a
//    backslash right before a comma, equals sign or space, which InfluxDB 1.x and Telegraf do
//    not read back as written (tag keys and values do).
//  * Tags are written sorted by their escaped key (byte order, what InfluxDB stores); a tag
//    whose value is empty is omitted; a duplicate tag or field key is refused.
//  * Integers are signed with the `i` suffix (InfluxDB 1.x rejects `u`); floats are written
//    in the shortest form that reads back to the same double; NaN and infinities, which line
//    protocol cannot carry, are refused.
#ifndef TCPSTATES_PLUGINS_TELEGRAF_LINE_PROTOCOL_H_
#define TCPSTATES_PLUGINS_TELEGRAF_LINE_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tcpstates::line_protocol {

// One point. Build it with the Add* calls (fields keep the order they were added in, so the
// important ones can come first), then Encode or AppendTo. All validation happens there.
class LinePoint {
 public:
  explicit LinePoint(absl::string_view measurement) : measurement_(measurement) {}

  // An empty value (after trailing backslashes are dropped) omits the tag.
  LinePoint& AddTag(absl::string_view key, absl::string_view value);

  LinePoint& AddInt(absl::string_view key, int64_t value);
  LinePoint& AddFloat(absl::string_view key, double value);
  LinePoint& AddBool(absl::string_view key, bool value);
  LinePoint& AddString(absl::string_view key, absl::string_view value);

  // Unix nanoseconds. Without a timestamp the server stamps the point when it arrives.
  LinePoint& SetTime(absl::Time time);

  // Appends the point and its terminating '\n' to *out, or appends nothing and returns
  // InvalidArgument saying what cannot be encoded.
  absl::Status AppendTo(std::string* out) const;

  // The line, '\n' included.
  absl::StatusOr<std::string> Encode() const;

 private:
  using FieldValue = std::variant<int64_t, double, bool, std::string>;
  // ",key=value..." sorted by key (empty values left out), and " key=value,...", appended to
  // *line; InvalidArgument for a key that cannot be written or is given twice.
  absl::Status AppendTags(std::string* line) const;
  absl::Status AppendFields(std::string* line) const;

  std::string measurement_;
  std::vector<std::pair<std::string, std::string>> tags_;
  std::vector<std::pair<std::string, FieldValue>> fields_;
  std::optional<int64_t> time_ns_;
};

// The escaping steps, exposed for tests and for code that writes names without a LinePoint.
// They apply the replacements and escapes above but do not validate.
std::string EscapeMeasurement(absl::string_view name);
// Tag keys, tag values and field keys.
std::string EscapeKeyOrTagValue(absl::string_view text);
// The inside of a double-quoted string field value.
std::string EscapeStringFieldValue(absl::string_view text);

}  // namespace tcpstates::line_protocol

#endif  // TCPSTATES_PLUGINS_TELEGRAF_LINE_PROTOCOL_H_
