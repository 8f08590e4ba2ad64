#include "common/kernel/kernel_counters.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tcpstates {

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

absl::StatusOr<TcpCounters> ReadTcpCounters(const ProcRoot& proc) {
  absl::StatusOr<std::string> snmp = ReadSmallFile(proc.Net("snmp"));
  if (!snmp.ok()) return snmp.status();
  absl::StatusOr<std::string> sockstat = ReadSmallFile(proc.Net("sockstat"));
  if (!sockstat.ok()) return sockstat.status();
  absl::StatusOr<uint64_t> curr_estab = ParseCurrEstab(*snmp);
  if (!curr_estab.ok()) return curr_estab.status();
  absl::StatusOr<uint64_t> tw = ParseSockstatTimeWait(*sockstat);
  if (!tw.ok()) return tw.status();
  return TcpCounters{*curr_estab, *tw};
}

}  // namespace tcpstates
