#include "plugins/telegraf/execd_config.h"

#include "absl/strings/str_cat.h"

namespace tcpstates::telegraf {
namespace {

constexpr char kSummary[] =
    "prints this network namespace's TCP socket counts as InfluxDB line protocol, for "
    "Telegraf's [[inputs.execd]] (data_format = \"influx\").";

constexpr char kDescription[] =
    "One batch per gather, flushed at once, every line with the gather's timestamp:\n"
    "  tcpstates tcp_connections=9i,tcp_established=4i,...,tcp_closing=0i <unix ns>\n"
    "(plus one per family with --by-family), tcpstates_port per --local-ports and\n"
    "--remote-ports port, then the diagnosis: tcpstates_close_wait per CLOSE_WAIT owner and\n"
    "tcpstates_close_wait_summary (when there are CLOSE_WAIT sockets), tcpstates_listen per\n"
    "listening port, tcpstates_listen_vanished and tcpstates_listen_new per port gone or new\n"
    "since the last gather, tcpstates_listen_summary, and with --port-pressure\n"
    "tcpstates_port_pressure.\n"
    "Stops on stdin EOF, SIGTERM or SIGINT (at once, even while stdout is blocked: a batch\n"
    "cut short ends at a line boundary), and when stdout's reader goes away. A trigger\n"
    "signal that is not --signal's is ignored with a warning. Diagnostics go to stderr\n"
    "prefixed E!, W!, I! (Telegraf >= 1.32 reads the levels; for older ones use\n"
    "--stderr-level=error).\n"
    "Exit status: 0 when stopped (including a closed stdout), 1 when the socket table\n"
    "cannot be read (at start-up, or for --once) or stdout fails, 2 on bad usage.\n";

// A Custom flag that parses with `parse` into *value.
template <typename T, typename Parse>
std::function<absl::Status(absl::string_view)> Into(T* value, Parse parse) {
  return [value, parse](absl::string_view text) {
    absl::StatusOr<T> parsed = parse(text);
    if (parsed.ok()) *value = *parsed;
    return parsed.status();
  };
}

}  // namespace

CollectionRequest ExecdConfig::Request() const {
  CollectionRequest request{.source = source,
                            .counting = counting,
                            .per_family = batch.by_family,
                            .local_ports = local_ports,
                            .remote_ports = remote_ports,
                            .queued_bytes = queued_bytes};
  request.diagnosis = DiagnosisFor(analyses);
  return request;
}

// The flags of the analyses and the per-port counts.
void AddDiagnosisFlags(ExecdConfig* c, command_line::Flags* flags) {
  (*flags)
      .Bool("close-wait-owners", &c->analyses.close_wait_owners,
            "When there are CLOSE_WAIT sockets, name the processes holding them "
            "(tcpstates_close_wait, tcpstates_close_wait_summary).")
      .Int("top", &c->analyses.top_owners, 0, 1000,
           "How many CLOSE_WAIT owners to name per gather.")
      .Bool("listen-ports", &c->analyses.listen_ports,
            "One tcpstates_listen line per listening port, and tcpstates_listen_vanished for "
            "ports that stopped listening since the previous gather.")
      .Int("max-listen-ports", &c->analyses.max_listen_ports, 1, 65536,
           "At most this many tcpstates_listen lines per gather (bounded series cardinality); "
           "ports already reported keep their place until they vanish.")
      .Bool("port-pressure", &c->analyses.port_pressure,
            "The remote endpoint closest to exhausting the ephemeral port range "
            "(tcpstates_port_pressure). Needs every ESTABLISHED and TIME_WAIT socket: a full "
            "dump every gather.")
      .Ports("local-ports", &c->local_ports, kMaxRequestPorts,
             "Count every state of the sockets with these local ports, as collectd tcpconns' "
             "LocalPort (tcpstates_port,direction=local): e.g. 22,443.")
      .Ports("remote-ports", &c->remote_ports, kMaxRequestPorts,
             "The same for remote ports (tcpstates_port,direction=remote), as RemotePort.")
      .Bool("queued-bytes", &c->queued_bytes,
            "Add rx_queued_bytes and tx_queued_bytes (the sums of every non-listening socket's "
            "Recv-Q and Send-Q) to the counts lines. Needs every socket: full dumps.");
}

command_line::Flags DefineFlags(ExecdConfig* c) {
  command_line::Flags flags({.name = "tcpstates-execd",
                             .summary = kSummary,
                             .synopsis = "[--signal=stdin|sighup|sigusr1|sigusr2|none] [FLAG]...",
                             .description = kDescription});
  flags
      .Custom("signal", "stdin|sighup|sigusr1|sigusr2|none", "stdin",
              "What triggers a gather: stdin (one gather per newline; Telegraf's signal = "
              "\"STDIN\"), sighup, sigusr1, sigusr2 (Telegraf's \"SIGHUP\", ...), or none (gather "
              "every --interval on our own). Case-insensitive here; Telegraf's values are not.",
              Into(&c->mode, ParseTriggerMode))
      .Duration("interval", &c->interval,
                "With --signal=none: gather at every wall-clock multiple of this interval.")
      .Bool("once", &c->once, "Print one batch and exit.")
      .String("measurement", &c->batch.measurement, "NAME",
              "Measurement name (default \"tcpstates\", or \"netstat\" with --netstat-compat).")
      .Bool("by-family", &c->batch.by_family,
            "Also print one line per address family, tagged family=ipv4|ipv6 (needs every "
            "socket: full dumps).")
      .Bool("netstat-compat", &c->batch.netstat_compat,
            "Print Telegraf inputs.netstat's measurement and field names, so netstat "
            "dashboards keep working.")
      .Custom("source", "auto|netlink|proc", "auto",
              "Where to read sockets from: auto (netlink, else /proc), netlink, or proc.",
              Into(&c->source, ParseSourceKind))
      .Custom("counting", "auto|full|counters", "auto",
              "How ESTABLISHED and TIME_WAIT are counted: counters (from kernel counters, "
              "skipping those sockets in the dump: cheap at scale, no per-family split), full "
              "(dump every socket), or auto: counters unless --by-family, --port-pressure or "
              "--queued-bytes "
              "needs every socket. Counters fall back to full dumps by themselves where the "
              "kernel's counters do not prove exact.",
              Into(&c->counting, ParseCountingChoice));
  AddDiagnosisFlags(c, &flags);
  flags
      .Bool("all-namespaces", &c->all_namespaces,
            "Every network namespace of the host (containers, pods, ip netns): every line is "
            "tagged netns (and pod, container). Root, or CAP_SYS_ADMIN and CAP_SYS_PTRACE, reads "
            "them all through netlink; see README.md for less privilege.")
      .Int("max-namespaces", &c->max_namespaces, 1, 65536,
           "With --all-namespaces: at most this many get lines of their own (namespaces already "
           "reported keep their place); the counts of the rest are summed under netns=other.")
      .Custom("stderr-level", "info|warning|error", "info",
              "The least severe diagnostics written to stderr. Telegraf before 1.32 logs every "
              "stderr line as an error: use error there.",
              Into(&c->stderr_level, ParseLogLevel));
  return flags;
}

absl::Status Validate(const ExecdConfig& config) {
  // The measurement is the only thing rendering can reject: try it once, now.
  if (absl::StatusOr<std::string> probe = RenderBatch(Collection{}, config.batch); !probe.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--measurement: ", probe.status().message()));
  }
  return ValidateRequest(config.Request());
}

}  // namespace tcpstates::telegraf
