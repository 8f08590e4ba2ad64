#include "common/program_usage.h"

#include <string>

#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/version.h"

namespace tcpstates {

void SetUpProgramUsage(absl::string_view program, absl::string_view usage,
                       absl::string_view flags_file_fragment) {
  absl::FlagsUsageConfig config;
  config.version_string = [name = std::string(program)] {
    return absl::StrCat(name, " ", TCPSTATES_VERSION, "\n");
  };
  config.contains_helpshort_flags = [fragment =
                                         std::string(flags_file_fragment)](absl::string_view path) {
    return absl::StrContains(path, fragment);
  };
  config.contains_help_flags = config.contains_helpshort_flags;
  config.normalize_filename = [](absl::string_view path) { return std::string(path); };
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(usage);
}

}  // namespace tcpstates
