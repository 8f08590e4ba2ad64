// libFuzzer target for the line-protocol encoder. Property: whatever bytes a process name or
// other value holds, a point encodes to exactly one line, and an independent minimal parser
// (below, written from the spec, sharing no code with the encoder) reads back the input --
// after the encoder's documented policy: TAB/LF/FF/CR become the two characters \t \n \f \r,
// tag values lose trailing backslashes, empty tags are omitted, tags are sorted by key.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "plugins/telegraf/line_protocol.h"

namespace {

std::string ApplyControlPolicy(absl::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// Reads up to an unescaped byte of `stops` (or the end); `specials` are the bytes a
// backslash escapes in this context. Returns the unescaped text and advances *pos.
std::string ReadToken(absl::string_view line, size_t* pos, absl::string_view stops,
                      absl::string_view specials) {
  std::string out;
  while (*pos < line.size() && stops.find(line[*pos]) == absl::string_view::npos) {
    if (line[*pos] == '\\' && *pos + 1 < line.size() &&
        specials.find(line[*pos + 1]) != absl::string_view::npos) {
      out.push_back(line[*pos + 1]);
      *pos += 2;
    } else {
      out.push_back(line[(*pos)++]);
    }
  }
  return out;
}

struct Parsed {
  std::string measurement;
  std::vector<std::pair<std::string, std::string>> tags;
  std::string field_key;
  std::string field_value;
};

bool Parse(absl::string_view line, Parsed* p) {
  if (line.empty() || line.back() != '\n') return false;
  line.remove_suffix(1);
  size_t pos = 0;
  p->measurement = ReadToken(line, &pos, ", ", ", ");
  while (pos < line.size() && line[pos] == ',') {
    ++pos;
    std::string key = ReadToken(line, &pos, "=", ",= ");
    if (pos >= line.size()) return false;
    ++pos;
    p->tags.emplace_back(std::move(key), ReadToken(line, &pos, ", ", ",= "));
  }
  if (pos >= line.size() || line[pos] != ' ') return false;
  ++pos;
  p->field_key = ReadToken(line, &pos, "=", ",= ");
  if (pos + 1 >= line.size() || line[pos + 1] != '"') return false;
  pos += 2;
  while (pos < line.size() && line[pos] != '"') {
    if (line[pos] == '\\' && pos + 1 < line.size() &&
        (line[pos + 1] == '"' || line[pos + 1] == '\\')) {
      p->field_value.push_back(line[pos + 1]);
      pos += 2;
    } else {
      p->field_value.push_back(line[pos++]);
    }
  }
  return pos + 1 == line.size();  // the closing quote ends the line
}

// Splits the input into 5 byte strings at 0xff bytes (missing parts are empty).
std::vector<std::string> Split(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0xff && parts.size() < 5) {
      parts.emplace_back();
    } else {
      parts.back().push_back(static_cast<char>(data[i]));
    }
  }
  parts.resize(5);
  return parts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> in = Split(data, size);
  // measurement, tag key, tag value (a process name), a second tag's value, string field.
  tcpstates::line_protocol::LinePoint point(in[0].empty() ? "m" : in[0]);
  point.AddTag(in[1].empty() ? "k" : in[1], in[2]);
  point.AddTag("comm", in[3]);
  point.AddString("text", in[4]);
  auto line = point.Encode();
  if (!line.ok()) return 0;  // refused names are reported, never written

  if (std::count(line->begin(), line->end(), '\n') != 1) std::abort();
  Parsed parsed;
  if (!Parse(*line, &parsed)) std::abort();

  std::vector<std::pair<std::string, std::string>> tags;
  auto expect_tag = [&](const std::string& key, std::string value) {
    while (!value.empty() && value.back() == '\\') value.pop_back();
    value = ApplyControlPolicy(value);
    if (!value.empty()) tags.emplace_back(ApplyControlPolicy(key), value);
  };
  expect_tag(in[1].empty() ? "k" : in[1], in[2]);
  expect_tag("comm", in[3]);
  std::sort(tags.begin(), tags.end());
  std::sort(parsed.tags.begin(), parsed.tags.end());
  if (parsed.measurement != ApplyControlPolicy(in[0].empty() ? "m" : in[0])) std::abort();
  if (parsed.tags != tags) std::abort();
  if (parsed.field_key != "text") std::abort();
  if (parsed.field_value != ApplyControlPolicy(in[4])) std::abort();
  return 0;
}
