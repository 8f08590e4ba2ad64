// --help and --version for the project's command-line programs, set up the same way in each:
// --help lists the program's own flags (not abseil's internals) under its usage text, and
// --version prints "<program> <project version>".
#ifndef TCPSTATES_COMMON_PROGRAM_USAGE_H_
#define TCPSTATES_COMMON_PROGRAM_USAGE_H_

#include "absl/strings/string_view.h"

namespace tcpstates {

// Call before absl::ParseCommandLine. `flags_file_fragment` selects the source files whose
// flags --help shows (e.g. "plugins/cli/").
void SetUpProgramUsage(absl::string_view program, absl::string_view usage,
                       absl::string_view flags_file_fragment);

}  // namespace tcpstates

#endif  // TCPSTATES_COMMON_PROGRAM_USAGE_H_
