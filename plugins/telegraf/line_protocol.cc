#include "plugins/telegraf/line_protocol.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/model/utf8.h"

namespace tcpstates::line_protocol {
namespace {

constexpr absl::string_view kMeasurementEscapes = ", ";
constexpr absl::string_view kKeyEscapes = ",= ";

// The bytes that may not appear raw anywhere in a line, and the letter of their visible
// replacement ("\t" etc.), as Telegraf's serializer writes them.
char VisibleEscapeLetter(char c) {
  switch (c) {
    case '\t':
      return 't';
    case '\n':
      return 'n';
    case '\f':
      return 'f';
    case '\r':
      return 'r';
    default:
      return 0;
  }
}

// Appends `text` with the bytes in `escaped_bytes` backslash-escaped and everything a
// terminal would act on made visible: TAB, LF, FF, CR as \t \n \f \r (as Telegraf's serializer
// writes them), every other control (C0, DEL, C1) and every byte that is not UTF-8 as \xNN,
// one per byte. `visible_backslash` is how the backslash of those forms is written: "\\" in
// names and tag values, where a backslash before a letter is literal, "\\\\" inside a string
// field, where a backslash may only escape '\\' or '"'.
void AppendEscaped(absl::string_view text, absl::string_view escaped_bytes,
                   absl::string_view visible_backslash, std::string* out) {
  for (size_t i = 0; i < text.size();) {
    uint32_t code_point = 0;
    size_t length = Utf8SequenceLength(text, i, &code_point);
    if (length == 1 && VisibleEscapeLetter(text[i])) {
      absl::StrAppend(out, visible_backslash, std::string(1, VisibleEscapeLetter(text[i])));
    } else if (length == 0 || IsControl(code_point)) {
      length = length == 0 ? 1 : length;
      for (size_t k = 0; k < length; ++k) {
        absl::StrAppend(out, visible_backslash,
                        absl::StrFormat("x%02x", static_cast<unsigned char>(text[i + k])));
      }
    } else if (length == 1 && escaped_bytes.find(text[i]) != absl::string_view::npos) {
      out->push_back('\\');
      out->push_back(text[i]);
    } else {
      out->append(text.data() + i, length);
    }
    i += length;
  }
}

// Names we choose must read back exactly as written, or not be written at all.
absl::Status CheckNameIsRepresentable(absl::string_view what, absl::string_view name,
                                      absl::string_view escaped_bytes,
                                      bool backslash_before_escape_is_ok) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (name.back() == '\\') {
    return absl::InvalidArgumentError(absl::StrCat(what, " \"", absl::CEscape(name),
                                                   "\" ends with a backslash, which would escape "
                                                   "the separator after it"));
  }
  if (!backslash_before_escape_is_ok) {
    for (size_t i = 0; i + 1 < name.size(); ++i) {
      if (name[i] == '\\' && escaped_bytes.find(name[i + 1]) != absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " \"", absl::CEscape(name),
                         "\" has a backslash before a character that needs escaping, which "
                         "InfluxDB 1.x and Telegraf do not read back as written"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckKey(absl::string_view what, absl::string_view key, bool is_field_key) {
  if (absl::Status status =
          CheckNameIsRepresentable(what, key, kKeyEscapes, /*backslash_before_escape_is_ok=*/
                                   !is_field_key);
      !status.ok()) {
    return status;
  }
  // InfluxDB drops any point that uses "time" as a tag or field key.
  if (key == "time") {
    return absl::InvalidArgumentError(absl::StrCat(what, " \"time\" is reserved by InfluxDB"));
  }
  return absl::OkStatus();
}

void AppendFloat(double value, std::string* out) {
  char buffer[64];
  // Shortest text that reads back to the same double; always valid line-protocol syntax
  // ("1", "0.1", "1e+100", "-0").
  std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out->append(buffer, result.ptr);
}

}  // namespace

std::string EscapeMeasurement(absl::string_view name) {
  std::string out;
  AppendEscaped(name, kMeasurementEscapes, "\\", &out);
  return out;
}

std::string EscapeKeyOrTagValue(absl::string_view text) {
  std::string out;
  AppendEscaped(text, kKeyEscapes, "\\", &out);
  return out;
}

std::string EscapeStringFieldValue(absl::string_view text) {
  // Inside quotes only '"' and '\\' are escaped, and the visible forms' backslash is itself
  // escaped: the stored value is `\` + letter, the same text a name gets.
  std::string out;
  AppendEscaped(text, "\"\\", "\\\\", &out);
  return out;
}

LinePoint& LinePoint::AddTag(absl::string_view key, absl::string_view value) {
  tags_.emplace_back(std::string(key), std::string(value));
  return *this;
}

LinePoint& LinePoint::AddInt(absl::string_view key, int64_t value) {
  fields_.emplace_back(std::string(key), value);
  return *this;
}

LinePoint& LinePoint::AddFloat(absl::string_view key, double value) {
  fields_.emplace_back(std::string(key), value);
  return *this;
}

LinePoint& LinePoint::AddBool(absl::string_view key, bool value) {
  fields_.emplace_back(std::string(key), value);
  return *this;
}

LinePoint& LinePoint::AddString(absl::string_view key, absl::string_view value) {
  fields_.emplace_back(std::string(key), std::string(value));
  return *this;
}

LinePoint& LinePoint::SetTime(absl::Time time) {
  time_ns_ = absl::ToUnixNanos(time);
  return *this;
}

absl::Status LinePoint::AppendTags(std::string* line) const {
  // Escaped (key, value) pairs; empty values omitted.
  std::vector<std::pair<std::string, std::string>> tags;
  tags.reserve(tags_.size());
  for (const auto& [key, value] : tags_) {
    if (absl::Status status = CheckKey("tag key", key, /*is_field_key=*/false); !status.ok()) {
      return status;
    }
    // A trailing backslash would escape the separator after the value: drop it, the value
    // is data and must still be written.
    absl::string_view trimmed = value;
    while (!trimmed.empty() && trimmed.back() == '\\') trimmed.remove_suffix(1);
    if (trimmed.empty()) continue;
    tags.emplace_back(EscapeKeyOrTagValue(key), EscapeKeyOrTagValue(trimmed));
  }
  std::sort(tags.begin(), tags.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < tags.size(); ++i) {
    if (tags[i].first == tags[i - 1].first) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate tag key \"", absl::CEscape(tags[i].first), "\""));
    }
  }

  for (const auto& [key, value] : tags) absl::StrAppend(line, ",", key, "=", value);
  return absl::OkStatus();
}

absl::Status LinePoint::AppendFields(std::string* line) const {
  absl::flat_hash_set<std::string> field_keys;
  char separator = ' ';
  for (const auto& [key, value] : fields_) {
    if (absl::Status status = CheckKey("field key", key, /*is_field_key=*/true); !status.ok()) {
      return status;
    }
    std::string escaped_key = EscapeKeyOrTagValue(key);
    if (!field_keys.insert(escaped_key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate field key \"", absl::CEscape(key), "\""));
    }
    line->push_back(separator);
    separator = ',';
    absl::StrAppend(line, escaped_key, "=");
    if (const int64_t* integer = std::get_if<int64_t>(&value)) {
      absl::StrAppend(line, *integer, "i");
    } else if (const double* real = std::get_if<double>(&value)) {
      if (!std::isfinite(*real)) {
        return absl::InvalidArgumentError(
            absl::StrCat("field \"", absl::CEscape(key), "\" is not finite"));
      }
      AppendFloat(*real, line);
    } else if (const bool* boolean = std::get_if<bool>(&value)) {
      *line += *boolean ? "true" : "false";
    } else {
      absl::StrAppend(line, "\"", EscapeStringFieldValue(std::get<std::string>(value)), "\"");
    }
  }
  return absl::OkStatus();
}

absl::Status LinePoint::AppendTo(std::string* out) const {
  if (absl::Status status =
          CheckNameIsRepresentable("measurement", measurement_, kMeasurementEscapes,
                                   /*backslash_before_escape_is_ok=*/false);
      !status.ok()) {
    return status;
  }
  // A line starting with '#' is a comment to every parser; leading control bytes are
  // skipped as whitespace by some.
  if (measurement_.front() == '#' || absl::ascii_iscntrl(measurement_.front())) {
    return absl::InvalidArgumentError(absl::StrCat("measurement \"", absl::CEscape(measurement_),
                                                   "\" starts with '#' or a control byte"));
  }
  if (fields_.empty()) return absl::InvalidArgumentError("a point needs at least one field");

  std::string line = EscapeMeasurement(measurement_);
  if (absl::Status status = AppendTags(&line); !status.ok()) return status;
  if (absl::Status status = AppendFields(&line); !status.ok()) return status;
  if (time_ns_) absl::StrAppend(&line, " ", *time_ns_);
  line.push_back('\n');
  out->append(line);
  return absl::OkStatus();
}

absl::StatusOr<std::string> LinePoint::Encode() const {
  std::string line;
  if (absl::Status status = AppendTo(&line); !status.ok()) return status;
  return line;
}

}  // namespace tcpstates::line_protocol
