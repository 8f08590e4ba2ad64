#include "plugins/telegraf/command_line.h"

#include <algorithm>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace tcpstates::telegraf {
namespace {

// Abseil handles these itself and keeps them out of the flag registry (20220623).
bool IsAbseilUsageFlag(absl::string_view name) {
  for (absl::string_view usage_flag : {"help", "helpfull", "helpshort", "helppackage", "helpon",
                                       "helpmatch", "version", "only_check_args"}) {
    if (name == usage_flag) return true;
  }
  return false;
}

}  // namespace

absl::Status NormalizeAndCheckCommandLine(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      if (i + 1 < argc) {
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected argument \"", argv[i + 1], "\""));
      }
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    const size_t dashes = absl::StartsWith(arg, "--") ? 2 : 1;
    arg.remove_prefix(dashes);
    const size_t name_length = std::min(arg.find('='), arg.size());
    for (size_t k = 0; k < name_length; ++k) {
      if (argv[i][dashes + k] == '-') argv[i][dashes + k] = '_';
    }
    absl::string_view name = arg;
    absl::string_view value;
    const size_t equals = arg.find('=');
    const bool has_value = equals != absl::string_view::npos;
    if (has_value) {
      name = arg.substr(0, equals);
      value = arg.substr(equals + 1);
    }

    if (IsAbseilUsageFlag(name)) continue;  // ParseCommandLine acts on it and exits
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr || flag->IsRetired()) {
      // --nofoo turns a boolean --foo off.
      absl::CommandLineFlag* negated =
          absl::StartsWith(name, "no") ? absl::FindCommandLineFlag(name.substr(2)) : nullptr;
      if (negated != nullptr && !negated->IsRetired() && negated->IsOfType<bool>() && !has_value) {
        continue;
      }
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    std::string text;
    if (has_value) {
      text = std::string(value);
    } else if (flag->IsOfType<bool>()) {
      continue;  // --foo alone means true
    } else if (i + 1 < argc) {
      text = argv[++i];  // --foo value
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
    }
    // This sets the flag; harmless, ParseCommandLine sets the same value again. (A FlagSaver
    // to undo it would log a raw, unprefixed line to stderr.)
    std::string error;
    if (!flag->ParseFrom(text, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid value \"", text, "\" for --", name, ": ", error));
    }
  }
  return absl::OkStatus();
}

}  // namespace tcpstates::telegraf
