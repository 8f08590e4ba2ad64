// The command line of the project's programs (tcpstates, tcpstates-execd), written once.
//
// Operators give these programs capabilities, so every argument is attacker-controlled
// input: only the flags a program defines here exist. There is no built-in flag that reads
// a file or the environment (abseil's --flagfile and --fromenv would echo a root-only file
// back to whoever runs a privileged copy), no --helpfull, nothing registered behind the
// program's back.
//
// The same rules and exit codes everywhere:
//   --name=value, --name value, -name=value; '-' and '_' alike in names;
//   booleans: --name, --noname, --name=true|false|yes|no|1|0;
//   --help prints the program's own usage to stdout, exit 0; --version likewise;
//   a usage error is one "E! <program>: <what>" line on stderr, exit 2;
//   no positional arguments.
#ifndef TCPSTATES_COMMON_COMMAND_LINE_COMMAND_LINE_H_
#define TCPSTATES_COMMON_COMMAND_LINE_COMMAND_LINE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace tcpstates::command_line {

// Exit codes of both programs.
inline constexpr int kExitOk = 0;
inline constexpr int kExitCannotRead = 1;  // no socket table could be read, or stdout failed
inline constexpr int kExitUsage = 2;

struct Program {
  std::string name = "";         // "tcpstates"
  std::string summary = "";      // one line, after "<name>: " in --help
  std::string synopsis = "";     // after "Usage: <name> "
  std::string description = "";  // paragraphs after the synopsis; may end with "Exit status: ..."
};

// A program's flags: each definition points at the variable that holds its default and
// receives its value.
class Flags {
 public:
  explicit Flags(Program program);

  Flags& Bool(absl::string_view name, bool* value, absl::string_view help);
  // A whole number in [min, max].
  Flags& Int(absl::string_view name, int* value, int min, int max, absl::string_view help);
  // A positive duration ("30s", "1m30s", "500ms").
  Flags& Duration(absl::string_view name, absl::Duration* value, absl::string_view help);
  // Any text; `value_name` shows in --help ("--measurement=NAME").
  Flags& String(absl::string_view name, std::string* value, absl::string_view value_name,
                absl::string_view help);
  // Comma-separated port numbers 1..65535, at most `max_count`, duplicates dropped.
  Flags& Ports(absl::string_view name, std::vector<uint16_t>* value, size_t max_count,
               absl::string_view help);
  // Anything else: `parse` turns the text into the program's own type or says why not
  // (e.g. ParseSourceKind); `value_name` and `default_text` show in --help.
  Flags& Custom(absl::string_view name, absl::string_view value_name,
                absl::string_view default_text, absl::string_view help,
                std::function<absl::Status(absl::string_view)> parse);

  enum class Request { kRun, kHelp, kVersion };
  // Parses arguments (argv without argv[0]). InvalidArgument names the problem: an unknown
  // flag, a missing or bad value, a positional argument.
  absl::StatusOr<Request> Parse(absl::Span<const char* const> args);

  // Parses argv and handles everything that ends the program before it runs: --help and
  // --version (printed to stdout, kExitOk), usage errors (one "E! " line on stderr,
  // kExitUsage). nullopt: go on and run.
  std::optional<int> ParseOrExit(int argc, char** argv);

  // What --help prints.
  std::string Usage() const;

  // One "E! <program>: <message> (see --help)" line on stderr; returns kExitUsage. For
  // checks that involve several flags, done by the program after Parse.
  int UsageError(absl::string_view message) const;

 private:
  struct Definition {
    std::string name;  // with '-'
    bool is_bool = false;
    std::string value_name;
    std::string default_text;
    std::string help;
    std::function<absl::Status(absl::string_view)> parse;
    bool* bool_value = nullptr;
  };
  Flags& Add(Definition definition);
  const Definition* Find(absl::string_view name) const;

  Program program_;
  std::vector<Definition> definitions_;
};

// Text from outside (an argument, a process name) made safe to show on a terminal: printable
// ASCII as is, every other byte (and the backslash) as \xNN.
std::string Printable(absl::string_view text);

// Makes fds 0, 1 and 2 safe before anything else opens a file: a closed one would be handed
// to the next open() (a netlink socket could become "stdout"). A closed stdin reads as EOF;
// a closed stdout is /dev/null opened read-only, so every write to it fails and is reported
// instead of vanishing; a closed stderr discards.
void EnsureStandardFdsOpen();

}  // namespace tcpstates::command_line

#endif  // TCPSTATES_COMMON_COMMAND_LINE_COMMAND_LINE_H_
