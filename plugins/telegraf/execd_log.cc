#include "plugins/telegraf/execd_log.h"

#include <unistd.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace tcpstates::telegraf {
namespace {

LogLevel stderr_level = LogLevel::kInfo;

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown level \"", text, "\": expected info, warning or error"));
}

void SetStderrLevel(LogLevel level) { stderr_level = level; }

void Log(LogLevel level, absl::string_view message) {
  if (level < stderr_level) return;
  const char* prefix = level == LogLevel::kError     ? "E! "
                       : level == LogLevel::kWarning ? "W! "
                                                     : "I! ";
  const std::string line =
      absl::StrCat(prefix, absl::StrReplaceAll(message, {{"\n", " "}, {"\r", " "}}), "\n");
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;  // nowhere left to report a failing stderr
}

}  // namespace tcpstates::telegraf
