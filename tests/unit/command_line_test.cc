// The command line shared by tcpstates and tcpstates-execd: only defined flags exist, and
// the same spellings, values and errors everywhere.
#include "common/command_line/command_line.h"

#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tcpstates::command_line {
namespace {

using ::testing::HasSubstr;

struct Values {
  bool json = false;
  bool diagnose = true;
  int top = 10;
  absl::Duration interval = absl::Seconds(5);
  std::string name;
  std::vector<uint16_t> ports;
};

Flags Define(Values* v) {
  Flags flags({.name = "prog",
               .summary = "does things.",
               .synopsis = "[FLAG]...",
               .description = "Long text.\nExit status: 0.\n"});
  flags.Bool("json", &v->json, "JSON.")
      .Bool("diagnose", &v->diagnose, "Diagnose.")
      .Int("top", &v->top, 0, 1000, "Top.")
      .Duration("interval", &v->interval, "Interval.")
      .String("name", &v->name, "NAME", "Name.")
      .Ports("ports", &v->ports, 3, "Ports.");
  return flags;
}

absl::StatusOr<Flags::Request> Parse(Values* v, std::vector<const char*> args) {
  return Define(v).Parse(args);
}

TEST(CommandLine, SpellingsOfValuesAndBooleans) {
  Values v;
  ASSERT_TRUE(Parse(&v, {"--json", "-top=3", "--interval", "1m30s", "--name=a b", "--nodiagnose",
                         "--ports=443, 22,443"})
                  .ok());
  EXPECT_TRUE(v.json);
  EXPECT_FALSE(v.diagnose);
  EXPECT_EQ(v.top, 3);
  EXPECT_EQ(v.interval, absl::Seconds(90));
  EXPECT_EQ(v.name, "a b");
  EXPECT_THAT(v.ports, ::testing::ElementsAre(443, 22));
  Values w;
  ASSERT_TRUE(Parse(&w, {"--json=false", "--diagnose=yes", "--top", "0"}).ok());
  EXPECT_FALSE(w.json);
  EXPECT_TRUE(w.diagnose);
  EXPECT_EQ(w.top, 0);
}

TEST(CommandLine, DashAndUnderscoreAreTheSame) {
  Flags flags({.name = "prog"});
  bool by_family = false;
  flags.Bool("by-family", &by_family, "x");
  ASSERT_TRUE(flags.Parse(std::vector<const char*>{"--by_family"}).ok());
  EXPECT_TRUE(by_family);
}

TEST(CommandLine, EverythingElseIsAUsageErrorSaidOnce) {
  for (const std::vector<const char*>& args :
       std::vector<std::vector<const char*>>{{"--bogus"},
                                             {"--flagfile=/etc/shadow"},
                                             {"--fromenv=x"},
                                             {"--undefok=x"},
                                             {"--helpfull"},
                                             {"extra"},
                                             {"--", "extra"},
                                             {"--top=abc"},
                                             {"--top=1001"},
                                             {"--top=99999999999"},
                                             {"--top"},
                                             {"--interval=0s"},
                                             {"--interval=soon"},
                                             {"--json=maybe"},
                                             {"--nojson=true"},
                                             {"--notop"},
                                             {"--ports=0"},
                                             {"--ports=1,2,3,4"},
                                             {"--help=x"}}) {
    Values v;
    absl::StatusOr<Flags::Request> request = Parse(&v, args);
    EXPECT_TRUE(absl::IsInvalidArgument(request.status())) << args[0];
  }
  Values v;
  EXPECT_EQ(Parse(&v, {"--bogus"}).status().message(), "unknown flag --bogus");
  EXPECT_EQ(Parse(&v, {"--top=abc"}).status().message(),
            "--top=\"abc\": expected a whole number from 0 to 1000");
  // Hostile bytes in what is echoed are made visible, never raw.
  EXPECT_EQ(Parse(&v, {"--\x1b[2Jx"}).status().message(), "unknown flag --\\x1b[2Jx");
}

TEST(CommandLine, HelpAndVersionAreRequestsNotErrors) {
  Values v;
  EXPECT_EQ(*Parse(&v, {"--help"}), Flags::Request::kHelp);
  EXPECT_EQ(*Parse(&v, {"-version"}), Flags::Request::kVersion);
  EXPECT_EQ(*Parse(&v, {}), Flags::Request::kRun);
}

TEST(CommandLine, UsageListsEveryFlagWithItsDefault) {
  Values v;
  const std::string usage = Define(&v).Usage();
  EXPECT_TRUE(absl::StartsWith(usage, "prog: does things.\nUsage: prog [FLAG]...\n\nLong text.\n"))
      << usage;
  EXPECT_THAT(usage, HasSubstr("\nFlags:\n  --[no]json\n        JSON. Default: false.\n"));
  EXPECT_THAT(usage, HasSubstr("  --top=N\n        Top. Default: 10.\n"));
  EXPECT_THAT(usage, HasSubstr("  --interval=DURATION\n        Interval. Default: 5s.\n"));
  EXPECT_THAT(usage, HasSubstr("  --help\n"));
  EXPECT_THAT(usage, ::testing::Not(HasSubstr("helpfull")));
}

TEST(Printable, OnlyPrintableAsciiStaysRaw) {
  EXPECT_EQ(Printable(std::string("a\\b\x1b\x7f\xc3\xa9", 7)), "a\\x5cb\\x1b\\x7f\\xc3\\xa9");
}

}  // namespace
}  // namespace tcpstates::command_line
