// libFuzzer target: arbitrary bytes as /proc/net/tcp{,6} text. Properties: no crash, no
// out-of-bounds read (ASan), and every line is exactly one of a socket, the header or a
// counted malformed line -- never lost, never counted twice.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "common/kernel/proc_net_tcp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  size_t lines = 0;
  for (size_t i = 0; i < size; ++i) lines += data[i] == '\n';
  if (size > 0 && data[size - 1] != '\n') ++lines;  // a last line without newline
  for (tcpstates::Family family : tcpstates::kAllFamilies) {
    tcpstates::WalkStats stats;
    size_t headers = 0;
    tcpstates::ParseProcNetTcpText(
        text, family,
        [&](const tcpstates::SocketRecord& record) {
          if (record.family != family) std::abort();
        },
        &stats);
    absl::string_view rest = text;
    while (!rest.empty()) {
      size_t newline = rest.find('\n');
      absl::string_view line = rest.substr(0, newline);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // as the parser does
      headers += tcpstates::IsProcNetTcpHeader(line);
      if (newline == absl::string_view::npos) break;
      rest.remove_prefix(newline + 1);
    }
    // Every line is exactly one of: a socket, the header, a counted malformed line.
    if (stats.sockets + stats.malformed + headers != lines) std::abort();
  }
  return 0;
}
