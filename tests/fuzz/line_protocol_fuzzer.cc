// libFuzzer target for the line-protocol encoder. Property: whatever bytes a process name or
// other value holds, a point encodes to exactly one line, and an independent minimal parser
// (below, written from the spec, sharing no code with the encoder) reads back the input --
// after the encoder's documented policy: TAB/LF/FF/CR become the two characters \t \n \f \r,
// every other control (C0, DEL, C1) and every byte outside well-formed UTF-8 becomes \xNN,
// tag values lose trailing backslashes, empty tags are omitted, tags are sorted by key. And
// no control byte ever appears in the output.
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

// Length of the well-formed UTF-8 sequence at text[i], 0 if none: the byte ranges of the
// Unicode Standard's table of well-formed sequences (Table 3-7), spelled out.
size_t WellFormedLength(absl::string_view text, size_t i) {
  struct Row {
    unsigned char lead_low, lead_high, second_low, second_high;
    size_t length;
  };
  static constexpr Row kRows[] = {
      {0x00, 0x7f, 0, 0, 1},       {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
      {0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
      {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
  };
  const auto at = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  for (const Row& row : kRows) {
    if (at(i) < row.lead_low || at(i) > row.lead_high) continue;
    if (row.length == 1) return 1;
    if (i + row.length > text.size()) return 0;
    if (at(i + 1) < row.second_low || at(i + 1) > row.second_high) return 0;
    for (size_t k = 2; k < row.length; ++k) {
      if (at(i + k) < 0x80 || at(i + k) > 0xbf) return 0;
    }
    return row.length;
  }
  return 0;
}

std::string ApplyControlPolicy(absl::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const size_t length = WellFormedLength(text, i);
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const bool c1 = length == 2 && c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0;
    const bool control = length == 1 && (c < 0x20 || c == 0x7f);
    if (control && (c == '\t' || c == '\n' || c == '\f' || c == '\r')) {
      out += c == '\t' ? "\\t" : c == '\n' ? "\\n" : c == '\f' ? "\\f" : "\\r";
      i += 1;
    } else if (length == 0 || control || c1) {
      for (size_t k = 0; k < (length == 0 ? 1 : length); ++k) {
        const unsigned char byte = static_cast<unsigned char>(text[i + k]);
        out += "\\x";
        out.push_back(kHex[byte >> 4]);
        out.push_back(kHex[byte & 15]);
      }
      i += length == 0 ? 1 : length;
    } else {
      out.append(text.data() + i, length);
      i += length;
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
  // Nothing a terminal acts on: no C0 control or DEL but the final newline, no C1 control.
  for (size_t k = 0; k + 1 < line->size(); ++k) {
    const unsigned char byte = static_cast<unsigned char>((*line)[k]);
    const unsigned char next = static_cast<unsigned char>((*line)[k + 1]);
    if (byte < 0x20 || byte == 0x7f || (byte == 0xc2 && next >= 0x80 && next < 0xa0)) std::abort();
  }
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
