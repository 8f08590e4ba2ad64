// line-protocol-encode: runs the encoder on points described in hex, so tests (and people
// debugging an odd name) can push arbitrary bytes through exactly the code tcpstates-execd
// uses and hand the result to a real InfluxDB. Not installed.
//
// One point per input line, space-separated items; names and string values are hex so that
// any byte, newline included, can be described:
//   m:<hex>               measurement (required, first)
//   t:<hexkey>:<hexvalue> tag
//   i:<hexkey>:<int64>    f:<hexkey>:<double>    b:<hexkey>:<0|1>    s:<hexkey>:<hexvalue>
//   ts:<unix ns>
// Output: per input line, the encoded line, or "#error <message>" (a comment to every
// line-protocol reader) when the encoder refuses the point. Exit 2 on malformed input.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "plugins/telegraf/line_protocol.h"

namespace {

bool FromHex(absl::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  *out = absl::HexStringToBytes(hex);
  return true;
}

}  // namespace

int main() {
  std::string input;
  int line_number = 0;
  while (std::getline(std::cin, input)) {
    ++line_number;
    auto fail = [&](absl::string_view what) {
      std::fprintf(stderr, "line-protocol-encode: line %d: %s\n", line_number,
                   std::string(what).c_str());
      return 2;
    };
    std::vector<absl::string_view> items = absl::StrSplit(input, ' ', absl::SkipEmpty());
    if (items.empty() || !absl::StartsWith(items[0], "m:")) return fail("must start with m:");
    std::string measurement;
    if (!FromHex(items[0].substr(2), &measurement)) return fail("bad measurement hex");
    tcpstates::line_protocol::LinePoint point(measurement);
    for (size_t i = 1; i < items.size(); ++i) {
      std::vector<absl::string_view> parts = absl::StrSplit(items[i], absl::MaxSplits(':', 2));
      std::string key;
      if (parts[0] == "ts" && parts.size() == 2) {
        int64_t ns;
        if (!absl::SimpleAtoi(parts[1], &ns)) return fail("bad ts");
        point.SetTime(absl::FromUnixNanos(ns));
        continue;
      }
      if (parts.size() != 3 || !FromHex(parts[1], &key)) return fail("bad item");
      if (parts[0] == "t" || parts[0] == "s") {
        std::string value;
        if (!FromHex(parts[2], &value)) return fail("bad value hex");
        if (parts[0] == "t") {
          point.AddTag(key, value);
        } else {
          point.AddString(key, value);
        }
      } else if (parts[0] == "i") {
        int64_t value;
        if (!absl::SimpleAtoi(parts[2], &value)) return fail("bad int");
        point.AddInt(key, value);
      } else if (parts[0] == "f") {
        double value;
        if (!absl::SimpleAtod(parts[2], &value)) return fail("bad float");
        point.AddFloat(key, value);
      } else if (parts[0] == "b") {
        point.AddBool(key, parts[2] == "1");
      } else {
        return fail("unknown item kind");
      }
    }
    absl::StatusOr<std::string> line = point.Encode();
    if (line.ok()) {
      std::fwrite(line->data(), 1, line->size(), stdout);  // NUL bytes included
    } else {
      std::printf("#error %s\n", absl::CEscape(line.status().message()).c_str());
    }
  }
  return 0;
}
