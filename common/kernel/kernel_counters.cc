#include "common/kernel/kernel_counters.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/kernel/posix_error.h"

namespace tcpstates {
namespace {

absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, absl::StrCat("open ", path));
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status status = PosixError(errno, absl::StrCat("read ", path));
      close(fd);
      return status;
    }
    if (n == 0 || text.size() > (1 << 20)) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

}  // namespace

absl::StatusOr<uint64_t> ParseCurrEstab(absl::string_view snmp) {
  // Two "Tcp:" lines: the field names, then their values.
  std::vector<absl::string_view> names;
  for (absl::string_view line : absl::StrSplit(snmp, '\n')) {
    if (!absl::ConsumePrefix(&line, "Tcp:")) continue;
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (names.empty()) {
      names = std::move(words);
      continue;
    }
    for (size_t i = 0; i < names.size() && i < words.size(); ++i) {
      uint64_t value;
      if (names[i] == "CurrEstab" && absl::SimpleAtoi(words[i], &value)) return value;
    }
    break;
  }
  return absl::InvalidArgumentError("no Tcp: CurrEstab in /proc/net/snmp");
}

absl::StatusOr<uint64_t> ParseSockstatTimeWait(absl::string_view sockstat) {
  for (absl::string_view line : absl::StrSplit(sockstat, '\n')) {
    if (!absl::ConsumePrefix(&line, "TCP:")) continue;
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    for (size_t i = 0; i + 1 < words.size(); i += 2) {
      uint64_t value;
      if (words[i] == "tw" && absl::SimpleAtoi(words[i + 1], &value)) return value;
    }
  }
  return absl::InvalidArgumentError("no TCP: tw in /proc/net/sockstat");
}

absl::StatusOr<TcpCounters> ReadTcpCounters(const std::string& proc_net_dir) {
  absl::StatusOr<std::string> snmp = ReadWhole(proc_net_dir + "/snmp");
  if (!snmp.ok()) return snmp.status();
  absl::StatusOr<std::string> sockstat = ReadWhole(proc_net_dir + "/sockstat");
  if (!sockstat.ok()) return sockstat.status();
  absl::StatusOr<uint64_t> curr_estab = ParseCurrEstab(*snmp);
  if (!curr_estab.ok()) return curr_estab.status();
  absl::StatusOr<uint64_t> tw = ParseSockstatTimeWait(*sockstat);
  if (!tw.ok()) return tw.status();
  return TcpCounters{*curr_estab, *tw};
}

}  // namespace tcpstates
