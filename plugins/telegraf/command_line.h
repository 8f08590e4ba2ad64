// Strict command-line checking for tcpstates-execd. absl::ParseCommandLine exits 1 on an
// unknown flag or a bad value; the execd binary promises exit 2 for every usage error, so
// argv is checked against the flag registry first and ParseCommandLine only runs on a
// command line it will accept (it still handles --help, --version and --flagfile).
#ifndef TCPSTATES_PLUGINS_TELEGRAF_COMMAND_LINE_H_
#define TCPSTATES_PLUGINS_TELEGRAF_COMMAND_LINE_H_

#include "absl/status/status.h"

namespace tcpstates::telegraf {

// Rewrites '-' to '_' inside flag names in argv, in place, so the documented spellings
// --by-family and --netstat-compat reach the abseil flags by_family and netstat_compat (either
// spelling works; values are left alone). Then returns InvalidArgument naming the first problem: an
// unknown flag, a flag without its value, a value the flag cannot parse, or a positional argument
// (the program takes none). Accepts what abseil accepts: -flag and --flag, --flag=value and --flag
// value, --noflag for booleans.
absl::Status NormalizeAndCheckCommandLine(int argc, char** argv);

}  // namespace tcpstates::telegraf

#endif  // TCPSTATES_PLUGINS_TELEGRAF_COMMAND_LINE_H_
