// The execd's diagnostics on stderr, as Telegraf reads them: one line each, prefixed with
// its level (E!, W!, I!), which Telegraf 1.32 and later log at that level. Older Telegraf
// logs every stderr line as an error: --stderr-level=error keeps stderr to real errors.
#ifndef TCPSTATES_PLUGINS_TELEGRAF_EXECD_LOG_H_
#define TCPSTATES_PLUGINS_TELEGRAF_EXECD_LOG_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tcpstates::telegraf {

enum class LogLevel { kInfo, kWarning, kError };

// "info" | "warning" | "error" (case-insensitive); InvalidArgument names the accepted ones.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text);

// Lines below `level` are not written (process-wide; the default is kInfo).
void SetStderrLevel(LogLevel level);

// Writes "<letter>! <message>\n" with a single write(2), so lines from a dying process are
// never interleaved or torn; line breaks inside `message` become spaces.
void Log(LogLevel level, absl::string_view message);

}  // namespace tcpstates::telegraf

#endif  // TCPSTATES_PLUGINS_TELEGRAF_EXECD_LOG_H_
