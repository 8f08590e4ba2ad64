#include "common/kernel/proc_net_tcp.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/kernel/posix_error.h"

namespace tcpstates {
namespace {

// Splits off the next space-separated token; empty when none is left.
absl::string_view NextToken(absl::string_view* rest) {
  size_t begin = 0;
  while (begin < rest->size() && ((*rest)[begin] == ' ' || (*rest)[begin] == '\t')) ++begin;
  size_t end = begin;
  while (end < rest->size() && (*rest)[end] != ' ' && (*rest)[end] != '\t') ++end;
  absl::string_view token = rest->substr(begin, end - begin);
  rest->remove_prefix(end);
  return token;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Parses exactly `text.size()` hex digits (at most 16).
bool ParseHex(absl::string_view text, uint64_t* value) {
  if (text.empty() || text.size() > 16) return false;
  uint64_t v = 0;
  for (char c : text) {
    int d = HexDigit(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *value = v;
  return true;
}

bool ParseDecimal(absl::string_view text, uint64_t* value) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return false;  // overflow
    v = next;
  }
  *value = v;
  return true;
}

// "0100007F:0CEA" (IPv4) or 32 hex digits ':' port (IPv6). The kernel prints each 32-bit
// word of the address as a host-order integer, so the word's in-memory bytes are the
// address's network-order bytes.
bool ParseEndpoint(absl::string_view text, Family family, std::array<uint8_t, 16>* address,
                   uint16_t* port) {
  const size_t address_digits = family == Family::kIpv4 ? 8 : 32;
  if (text.size() != address_digits + 1 + 4 || text[address_digits] != ':') return false;
  for (size_t word = 0; word < address_digits / 8; ++word) {
    uint64_t value;
    if (!ParseHex(text.substr(word * 8, 8), &value)) return false;
    const uint32_t word32 = static_cast<uint32_t>(value);
    std::memcpy(address->data() + word * 4, &word32, 4);
  }
  uint64_t port_value;
  if (!ParseHex(text.substr(address_digits + 1, 4), &port_value)) return false;
  *port = static_cast<uint16_t>(port_value);
  return true;
}

// Tokens a socket line carries at least: sl local rem st tx:rx tr:when retrnsmt uid timeout
// inode refcnt pointer (time-wait and request sockets stop there; full sockets add five).
constexpr int kMinTokens = 12;

}  // namespace

bool IsProcNetTcpHeader(absl::string_view line) {
  absl::string_view rest = line;
  return NextToken(&rest) == "sl";
}

bool ParseProcNetTcpLine(absl::string_view line, Family family, SocketRecord* record) {
  absl::string_view rest = line;
  absl::string_view slot = NextToken(&rest);
  if (slot.size() < 2 || slot.back() != ':') return false;
  uint64_t ignored;
  if (!ParseDecimal(slot.substr(0, slot.size() - 1), &ignored)) return false;

  std::array<uint8_t, 16> local_address{};
  if (!ParseEndpoint(NextToken(&rest), family, &local_address, &record->local_port)) {
    return false;
  }
  record->remote_address = {};
  if (!ParseEndpoint(NextToken(&rest), family, &record->remote_address, &record->remote_port)) {
    return false;
  }
  absl::string_view state = NextToken(&rest);
  uint64_t state_value;
  if (state.size() != 2 || !ParseHex(state, &state_value)) return false;

  absl::string_view queues = NextToken(&rest);  // tx_queue:rx_queue
  uint64_t send_queue, receive_queue;
  if (queues.size() < 3 || queues.find(':') == absl::string_view::npos ||
      !ParseHex(queues.substr(0, queues.find(':')), &send_queue) ||
      !ParseHex(queues.substr(queues.find(':') + 1), &receive_queue)) {
    return false;
  }
  absl::string_view timer = NextToken(&rest);  // tr:tm->when
  uint64_t timer_value;
  if (timer.size() < 3 || timer[2] != ':' || !ParseHex(timer.substr(0, 2), &timer_value)) {
    return false;
  }
  // retrnsmt, uid, timeout: present and non-empty, not otherwise needed.
  for (int i = 0; i < 3; ++i) {
    if (NextToken(&rest).empty()) return false;
  }
  uint64_t inode;
  if (!ParseDecimal(NextToken(&rest), &inode)) return false;
  int tokens = 10;  // the rest of a line is not needed: only check it is long enough
  while (tokens < kMinTokens && !NextToken(&rest).empty()) ++tokens;
  if (tokens < kMinTokens) return false;

  record->family = family;
  record->state = static_cast<uint8_t>(state_value);
  record->timer = static_cast<uint8_t>(timer_value);
  record->inode = inode;
  record->cgroup_id = 0;
  record->receive_queue = static_cast<uint32_t>(receive_queue);
  record->send_queue = static_cast<uint32_t>(send_queue);
  record->last_received_ms = SocketRecord::kUnknownAge;
  return true;
}

namespace {

void ParseOneLine(absl::string_view line, Family family, SocketVisitor visitor, WalkStats* stats) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  SocketRecord record;
  if (ParseProcNetTcpLine(line, family, &record)) {
    ++stats->sockets;
    visitor(record);
  } else if (!IsProcNetTcpHeader(line)) {
    ++stats->malformed;
  }
}

}  // namespace

void ParseProcNetTcpText(absl::string_view text, Family family, SocketVisitor visitor,
                         WalkStats* stats) {
  while (!text.empty()) {
    size_t newline = text.find('\n');
    absl::string_view line = text.substr(0, newline);
    ParseOneLine(line, family, visitor, stats);
    if (newline == absl::string_view::npos) break;
    text.remove_prefix(newline + 1);
  }
}

absl::Status ReadProcNetTcp(const char* path, Family family, absl::Span<char> buffer,
                            SocketVisitor visitor, WalkStats* stats) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, absl::StrCat("open ", path));

  size_t filled = 0;           // bytes of an unfinished line at the front of buffer
  bool skipping_long = false;  // inside a line that did not fit the buffer
  absl::Status status;
  for (;;) {
    ssize_t n = read(fd, buffer.data() + filled, buffer.size() - filled);
    if (n < 0) {
      if (errno == EINTR) continue;
      status = PosixError(errno, absl::StrCat("read ", path));
      break;
    }
    if (n == 0) {
      if (filled > 0 && !skipping_long) {
        ParseOneLine(absl::string_view(buffer.data(), filled), family, visitor, stats);
      }
      break;
    }
    absl::string_view data(buffer.data(), filled + static_cast<size_t>(n));
    for (;;) {
      size_t newline = data.find('\n');
      if (newline == absl::string_view::npos) break;
      if (skipping_long) {
        skipping_long = false;  // the tail of an over-long line, already counted
      } else {
        ParseOneLine(data.substr(0, newline), family, visitor, stats);
      }
      data.remove_prefix(newline + 1);
    }
    if (data.size() == buffer.size()) {
      // A whole buffer without a newline: no real line is this long.
      if (!skipping_long) ++stats->malformed;
      skipping_long = true;
      filled = 0;
    } else {
      std::memmove(buffer.data(), data.data(), data.size());
      filled = data.size();
    }
  }
  close(fd);
  return status;
}

}  // namespace tcpstates
