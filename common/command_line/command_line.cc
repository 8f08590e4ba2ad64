#include "common/command_line/command_line.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/version.h"

namespace tcpstates::command_line {
namespace {

constexpr size_t kWidth = 80;
constexpr absl::string_view kHelpIndent = "        ";

std::string Normalize(absl::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c == '_') c = '-';
  }
  return out;
}

std::optional<bool> ParseBool(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "true" || lower == "yes" || lower == "1") return true;
  if (lower == "false" || lower == "no" || lower == "0") return false;
  return std::nullopt;
}

// `text` re-flowed into lines of at most kWidth columns after `indent`.
void AppendWrapped(absl::string_view text, absl::string_view indent, std::string* out) {
  std::string line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > kWidth) {
      absl::StrAppend(out, indent, line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty()) absl::StrAppend(out, indent, line, "\n");
}

// Writes all of `text` to `fd`; false when it could not.
bool WriteAll(int fd, absl::string_view text) {
  while (!text.empty()) {
    ssize_t n = write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

Flags::Flags(Program program) : program_(std::move(program)) {}

Flags& Flags::Add(Definition definition) {
  definitions_.push_back(std::move(definition));
  return *this;
}

const Flags::Definition* Flags::Find(absl::string_view name) const {
  for (const Definition& definition : definitions_) {
    if (definition.name == name) return &definition;
  }
  return nullptr;
}

Flags& Flags::Bool(absl::string_view name, bool* value, absl::string_view help) {
  Definition definition;
  definition.name = Normalize(name);
  definition.is_bool = true;
  definition.default_text = *value ? "true" : "false";
  definition.help = std::string(help);
  definition.bool_value = value;
  definition.parse = [value](absl::string_view text) {
    std::optional<bool> parsed = ParseBool(text);
    if (!parsed) return absl::InvalidArgumentError("expected true or false");
    *value = *parsed;
    return absl::OkStatus();
  };
  return Add(std::move(definition));
}

Flags& Flags::Int(absl::string_view name, int* value, int min, int max, absl::string_view help) {
  return Custom(name, "N", absl::StrCat(*value), help, [value, min, max](absl::string_view text) {
    int64_t parsed;
    if (!absl::SimpleAtoi(text, &parsed) || parsed < min || parsed > max) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected a whole number from ", min, " to ", max));
    }
    *value = static_cast<int>(parsed);
    return absl::OkStatus();
  });
}

Flags& Flags::Duration(absl::string_view name, absl::Duration* value, absl::string_view help) {
  return Custom(name, "DURATION", absl::FormatDuration(*value), help,
                [value](absl::string_view text) {
                  absl::Duration parsed;
                  if (!absl::ParseDuration(text, &parsed) || parsed <= absl::ZeroDuration() ||
                      parsed == absl::InfiniteDuration()) {
                    return absl::InvalidArgumentError(
                        "expected a positive duration such as 30s, 1m30s or 500ms");
                  }
                  *value = parsed;
                  return absl::OkStatus();
                });
}

Flags& Flags::String(absl::string_view name, std::string* value, absl::string_view value_name,
                     absl::string_view help) {
  return Custom(name, value_name, value->empty() ? "" : absl::StrCat("\"", *value, "\""), help,
                [value](absl::string_view text) {
                  *value = std::string(text);
                  return absl::OkStatus();
                });
}

Flags& Flags::Ports(absl::string_view name, std::vector<uint16_t>* value, size_t max_count,
                    absl::string_view help) {
  return Custom(name, "PORT,...", "", help, [value, max_count](absl::string_view text) {
    std::vector<uint16_t> ports;
    for (absl::string_view word : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
      int port;
      if (!absl::SimpleAtoi(word, &port) || port < 1 || port > 65535) {
        return absl::InvalidArgumentError(
            absl::StrCat("\"", Printable(word), "\" is not a port number from 1 to 65535"));
      }
      if (std::find(ports.begin(), ports.end(), port) == ports.end()) {
        ports.push_back(static_cast<uint16_t>(port));
      }
    }
    if (ports.size() > max_count) {
      return absl::InvalidArgumentError(absl::StrCat("at most ", max_count, " ports"));
    }
    *value = std::move(ports);
    return absl::OkStatus();
  });
}

Flags& Flags::Custom(absl::string_view name, absl::string_view value_name,
                     absl::string_view default_text, absl::string_view help,
                     std::function<absl::Status(absl::string_view)> parse) {
  Definition definition;
  definition.name = Normalize(name);
  definition.value_name = std::string(value_name);
  definition.default_text = std::string(default_text);
  definition.help = std::string(help);
  definition.parse = std::move(parse);
  return Add(std::move(definition));
}

absl::StatusOr<Flags::Request> Flags::Parse(absl::Span<const char* const> args) {
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") {
      if (i + 1 < args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected argument \"", Printable(args[i + 1]), "\": flags only"));
      }
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", Printable(arg), "\": flags only"));
    }
    arg.remove_prefix(absl::StartsWith(arg, "--") ? 2 : 1);
    const size_t equals = arg.find('=');
    const bool has_value = equals != absl::string_view::npos;
    const std::string name = Normalize(arg.substr(0, equals));
    const absl::string_view inline_value = has_value ? arg.substr(equals + 1) : "";

    if (name == "help" || name == "version") {
      if (has_value) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      }
      return name == "help" ? Request::kHelp : Request::kVersion;
    }
    const Definition* definition = Find(name);
    if (definition == nullptr) {
      // --nofoo turns a boolean --foo off.
      const Definition* negated = absl::StartsWith(name, "no") ? Find(name.substr(2)) : nullptr;
      if (negated != nullptr && negated->is_bool && !has_value) {
        *negated->bool_value = false;
        continue;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", Printable(name.empty() ? arg : name)));
    }
    std::string value;
    if (has_value) {
      value = std::string(inline_value);
    } else if (definition->is_bool) {
      value = "true";
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    if (absl::Status status = definition->parse(value); !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, "=\"", Printable(value), "\": ", status.message()));
    }
  }
  return Request::kRun;
}

std::optional<int> Flags::ParseOrExit(int argc, char** argv) {
  absl::StatusOr<Request> request =
      Parse(absl::MakeConstSpan(argv + (argc > 0 ? 1 : 0), argc > 0 ? argc - 1 : 0));
  if (!request.ok()) return UsageError(request.status().message());
  switch (*request) {
    case Request::kRun:
      return std::nullopt;
    case Request::kHelp:
      return WriteAll(STDOUT_FILENO, Usage()) ? kExitOk : kExitCannotRead;
    case Request::kVersion:
      return WriteAll(STDOUT_FILENO, absl::StrCat(program_.name, " ", TCPSTATES_VERSION, "\n"))
                 ? kExitOk
                 : kExitCannotRead;
  }
  return kExitUsage;
}

int Flags::UsageError(absl::string_view message) const {
  WriteAll(STDERR_FILENO, absl::StrCat("E! ", program_.name, ": ", message, " (see --help)\n"));
  return kExitUsage;
}

std::string Flags::Usage() const {
  std::string out;
  AppendWrapped(absl::StrCat(program_.name, ": ", program_.summary), "", &out);
  absl::StrAppend(&out, "Usage: ", program_.name, " ", program_.synopsis, "\n\n",
                  program_.description);
  if (!program_.description.empty() && program_.description.back() != '\n') out += "\n";
  out += "\nFlags:\n";
  auto add = [&](absl::string_view flag, absl::string_view help, absl::string_view default_text) {
    absl::StrAppend(&out, "  ", flag, "\n");
    AppendWrapped(default_text.empty() ? std::string(help)
                                       : absl::StrCat(help, " Default: ", default_text, "."),
                  kHelpIndent, &out);
  };
  for (const Definition& d : definitions_) {
    add(d.is_bool ? absl::StrCat("--[no]", d.name) : absl::StrCat("--", d.name, "=", d.value_name),
        d.help, d.default_text);
  }
  add("--help", "Print this usage text and exit.", "");
  add("--version", absl::StrCat("Print \"", program_.name, " <version>\" and exit."), "");
  out +=
      "\nFlags take one or two leading dashes, a value after '=' or as the next argument; '-'\n"
      "and '_' are the same in flag names.\n";
  return out;
}

std::string Printable(absl::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  return out;
}

void EnsureStandardFdsOpen() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) != -1) continue;
    // stdin: reads give EOF; stdout: writes fail (EBADF) and are reported; stderr: discards.
    const int flags = fd == STDERR_FILENO ? O_WRONLY : O_RDONLY;
    int opened = open("/dev/null", flags | O_CLOEXEC);
    if (opened >= 0 && opened != fd) {
      dup2(opened, fd);  // dup2 clears O_CLOEXEC on the new fd
      close(opened);
    } else if (opened == fd) {
      fcntl(fd, F_SETFD, 0);  // opened in place: keep it for children too
    }
  }
}

}  // namespace tcpstates::command_line
