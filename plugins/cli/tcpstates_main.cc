// tcpstates: prints this network namespace's TCP socket counts for a human (or, with
// --json, for a script), with the diagnosis that turns counts into answers. A thin adapter:
// the core collects and diagnoses, this file only schedules and renders.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/collection/collector.h"
#include "common/command_line/command_line.h"
#include "plugins/cli/render.h"

namespace tcpstates::cli {
namespace {

struct Options {
  bool json = false;
  SourceKind source = SourceKind::kAuto;
  CountingChoice counting = CountingChoice::kFull;
  bool diagnose = true;
  bool port_pressure = true;
  int top = 10;
  int count = 1;
  absl::Duration interval = absl::Seconds(5);
  std::vector<uint16_t> local_ports;
  std::vector<uint16_t> remote_ports;
  bool queued_bytes = false;
  bool all_namespaces = false;
  int max_namespaces = 256;
};

command_line::Flags DefineFlags(Options* o) {
  command_line::Flags flags(
      {.name = "tcpstates",
       .summary = "prints the TCP socket counts of this machine's network namespace.",
       .synopsis = "[--json] [--source=auto|netlink|proc] [--count=N --interval=5s] [FLAG]...",
       .description =
           "The five headline metrics come first (tcp_connections counts every socket,\n"
           "LISTEN and TIME_WAIT included), then every kernel state by family, then why:\n"
           "which processes hold CLOSE_WAIT sockets (and how long they have been idle),\n"
           "listening ports with a waiting accept queue, listeners that vanished or started,\n"
           "and the\n"
           "remote endpoint closest to exhausting the ephemeral port range; last the\n"
           "source used and how long the collection took.\n"
           "Exit status: 0 on success, 1 when no socket table could be read or stdout\n"
           "cannot be written, 2 on bad usage.\n"});
  flags.Bool("json", &o->json, "Print one JSON object (per collection) instead of the table.")
      .Custom("source", "auto|netlink|proc", "auto",
              "Where to read sockets from: auto (netlink, else /proc), netlink, or proc.",
              [o](absl::string_view text) {
                absl::StatusOr<SourceKind> source = ParseSourceKind(text);
                if (source.ok()) o->source = *source;
                return source.status();
              })
      .Custom("counting", "full|counters|auto", "full",
              "full: dump every socket (exact per family). counters: derive the ESTABLISHED and "
              "TIME_WAIT totals from kernel counters, where they prove exact (cheaper at scale, "
              "no per-family split of those two states; needs --noport-pressure). auto: "
              "counters unless something needs every socket.",
              [o](absl::string_view text) {
                absl::StatusOr<CountingChoice> counting = ParseCountingChoice(text);
                if (counting.ok()) o->counting = *counting;
                return counting.status();
              })
      .Bool("diagnose", &o->diagnose,
            "Name CLOSE_WAIT owners, listening ports and ephemeral-port pressure "
            "(--nodiagnose: counts only).")
      .Bool("port-pressure", &o->port_pressure,
            "With --diagnose: the remote endpoint closest to exhausting the ephemeral port "
            "range (needs every socket: full dumps).")
      .Int("top", &o->top, 0, 1000, "How many CLOSE_WAIT owners to name.")
      .Int("count", &o->count, 0, 1000000,
           "Collections to print; with more than one, listeners that vanished or started "
           "between two collections are named (new ones with their processes), and listen "
           "overflows counted. 0: until interrupted.")
      .Duration("interval", &o->interval, "Time between collections.")
      .Ports("local-ports", &o->local_ports, kMaxRequestPorts,
             "Count every state of the sockets with these local ports (e.g. 22,443), as "
             "collectd tcpconns' LocalPort.")
      .Ports("remote-ports", &o->remote_ports, kMaxRequestPorts,
             "The same for remote ports, as RemotePort.")
      .Bool("queued-bytes", &o->queued_bytes,
            "The sums of every non-listening socket's Recv-Q and Send-Q (what ss -tan shows), "
            "per family.")
      .Bool("all-namespaces", &o->all_namespaces,
            "Every network namespace of the host (containers, pods, ip netns), one row each, "
            "most CLOSE_WAIT first. Root (CAP_SYS_ADMIN and CAP_SYS_PTRACE) reads them all "
            "through netlink; less privilege reads what /proc shows.")
      .Int("max-namespaces", &o->max_namespaces, 1, 65536,
           "With --all-namespaces: at most this many get rows of their own; the counts of the "
           "rest are summed as \"other\".");
  return flags;
}

CollectionRequest RequestFrom(const Options& o) {
  CollectionRequest request{.source = o.source,
                            .counting = o.counting,
                            .local_ports = o.local_ports,
                            .remote_ports = o.remote_ports,
                            .queued_bytes = o.queued_bytes};
  if (o.diagnose) {
    DiagnosisOptions diagnosis;
    diagnosis.owners.top = o.top;
    diagnosis.port_pressure = o.port_pressure;
    request.diagnosis = diagnosis;
  }
  return request;
}

// Writes `text` to stdout; false (reported) when it cannot.
bool Print(const std::string& text) {
  if (std::fputs(text.c_str(), stdout) < 0 || std::fflush(stdout) != 0) {
    std::perror("E! tcpstates: writing stdout");
    return false;
  }
  return true;
}

// --all-namespaces: the same loop over a NamespacesCollector.
int RunAllNamespaces(const Options& options, const CollectionRequest& request) {
  absl::StatusOr<NamespacesCollector> collector =
      NamespacesCollector::Create(request, static_cast<size_t>(options.max_namespaces));
  if (!collector.ok()) {
    std::fprintf(stderr, "E! tcpstates: %s\n", collector.status().ToString().c_str());
    return command_line::kExitCannotRead;
  }
  for (int i = 0; options.count == 0 || i < options.count; ++i) {
    if (i > 0) absl::SleepFor(options.interval);
    absl::StatusOr<NamespacesCollection> all = collector->Collect();
    if (!all.ok()) {
      std::fprintf(stderr, "E! tcpstates: %s\n", all.status().ToString().c_str());
      return command_line::kExitCannotRead;
    }
    std::string text = options.json ? RenderNamespacesJson(*all) : RenderNamespacesTable(*all);
    if (i > 0 && !options.json) text.insert(0, "\n");
    if (!Print(text)) return command_line::kExitCannotRead;
  }
  return command_line::kExitOk;
}

int Run(int argc, char** argv) {
  command_line::EnsureStandardFdsOpen();
  Options options;
  command_line::Flags flags = DefineFlags(&options);
  if (std::optional<int> exit_code = flags.ParseOrExit(argc, argv)) return *exit_code;

  const CollectionRequest request = RequestFrom(options);
  if (absl::Status status = ValidateRequest(request); !status.ok()) {
    return flags.UsageError(
        absl::StrCat(status.message(), " (--noport-pressure turns port pressure off)"));
  }
  if (options.all_namespaces) return RunAllNamespaces(options, request);
  absl::StatusOr<Collector> collector = Collector::Create(request);
  if (!collector.ok()) {
    std::fprintf(stderr, "E! tcpstates: cannot open the socket table: %s\n",
                 collector.status().ToString().c_str());
    return command_line::kExitCannotRead;
  }
  for (int i = 0; options.count == 0 || i < options.count; ++i) {
    if (i > 0) absl::SleepFor(options.interval);
    absl::StatusOr<Collection> collection = collector->Collect();
    if (!collection.ok()) {
      std::fprintf(stderr, "E! tcpstates: cannot read the socket table: %s\n",
                   collection.status().ToString().c_str());
      return command_line::kExitCannotRead;
    }
    std::string text = options.json ? RenderJson(*collection) : RenderTable(*collection);
    if (i > 0 && !options.json) text.insert(0, "\n");
    if (!Print(text)) return command_line::kExitCannotRead;
  }
  return command_line::kExitOk;
}

}  // namespace
}  // namespace tcpstates::cli

int main(int argc, char** argv) { return tcpstates::cli::Run(argc, argv); }
