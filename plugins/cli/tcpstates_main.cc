// tcpstates: prints this network namespace's TCP socket counts for a human (or, with
// --json, for a script). A thin adapter: the core collects, this file only renders.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/collector.h"
#include "common/program_usage.h"
#include "plugins/cli/render.h"

ABSL_FLAG(bool, json, false, "Print one JSON object instead of the table.");
ABSL_FLAG(std::string, source, "auto",
          "Where to read sockets from: auto (netlink, else /proc), netlink, or proc.");

int main(int argc, char** argv) {
  tcpstates::SetUpProgramUsage(
      "tcpstates",
      "prints the TCP socket counts of this machine's network namespace.\n"
      "Usage: tcpstates [--json] [--source=auto|netlink|proc]\n\n"
      "The five headline metrics come first (tcp_connections counts every socket,\n"
      "LISTEN and TIME_WAIT included), then every kernel state by family, the source\n"
      "used and how long the collection took.\n"
      "Exit status: 0 on success, 1 when no socket table could be read, 2 on bad usage.",
      "plugins/cli/");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr, "tcpstates: unexpected argument \"%s\" (see --help)\n", positional[1]);
    return 2;
  }

  absl::StatusOr<tcpstates::SourceKind> source =
      tcpstates::ParseSourceKind(absl::GetFlag(FLAGS_source));
  if (!source.ok()) {
    std::fprintf(stderr, "tcpstates: --source: %s\n",
                 std::string(source.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<tcpstates::Collector> collector =
      tcpstates::Collector::Create({.source = *source});
  if (!collector.ok()) {
    std::fprintf(stderr, "tcpstates: cannot open the socket table: %s\n",
                 collector.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<tcpstates::Snapshot> snapshot = collector->Collect();
  if (!snapshot.ok()) {
    std::fprintf(stderr, "tcpstates: cannot read the socket table: %s\n",
                 snapshot.status().ToString().c_str());
    return 1;
  }
  const std::string text = absl::GetFlag(FLAGS_json) ? tcpstates::cli::RenderJson(*snapshot)
                                                     : tcpstates::cli::RenderTable(*snapshot);
  if (std::fputs(text.c_str(), stdout) < 0 || std::fflush(stdout) != 0) {
    std::perror("tcpstates: stdout");
    return 1;
  }
  return 0;
}
