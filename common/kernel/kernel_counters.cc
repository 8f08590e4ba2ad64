#include "common/kernel/kernel_counters.h"

#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tcpstates {

namespace {

// /proc/net/snmp and /proc/net/netstat hold pairs of lines "<Prefix>: names..." then
// "<Prefix>: values...": the value under `name`, nullopt when absent.
std::optional<uint64_t> FieldOf(absl::string_view text, absl::string_view prefix,
                                absl::string_view name) {
  std::vector<absl::string_view> names;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, prefix)) continue;
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (names.empty()) {
      names = std::move(words);
      continue;
    }
    for (size_t i = 0; i < names.size() && i < words.size(); ++i) {
      uint64_t value;
      if (names[i] == name && absl::SimpleAtoi(words[i], &value)) return value;
    }
    break;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<uint64_t> ParseCurrEstab(absl::string_view snmp) {
  std::optional<uint64_t> value = FieldOf(snmp, "Tcp:", "CurrEstab");
  if (!value) return absl::InvalidArgumentError("no Tcp: CurrEstab in /proc/net/snmp");
  return *value;
}

absl::StatusOr<ListenCounters> ParseListenCounters(absl::string_view netstat) {
  std::optional<uint64_t> overflows = FieldOf(netstat, "TcpExt:", "ListenOverflows");
  std::optional<uint64_t> drops = FieldOf(netstat, "TcpExt:", "ListenDrops");
  if (!overflows || !drops) {
    return absl::InvalidArgumentError(
        "no TcpExt: ListenOverflows/ListenDrops in /proc/net/netstat");
  }
  return ListenCounters{*overflows, *drops};
}

absl::StatusOr<ListenCounters> ReadListenCounters(const ProcRoot& proc) {
  absl::StatusOr<std::string> netstat = ReadSmallFile(proc.Net("netstat"));
  if (!netstat.ok()) return netstat.status();
  return ParseListenCounters(*netstat);
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
