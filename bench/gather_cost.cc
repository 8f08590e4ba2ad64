// tcpstates-gather-cost: the CPU cost of the core's collections against the bare legacy dump
// (bench/bare_dump.c), interleaved in one process so that a busy machine slows both alike.
//
//   tcpstates-gather-cost --suite=scale|ports|breakdown|namespaces [--netns=PATH] [--rounds=9]
//       [--warmup=3] [--netns-list=FILE] [--run-netns-dir=DIR]
//
// Every round runs each variant once - the bare dump and the collectors of the suite, in an
// order rotated from round to round - and records each one's CPU time (user + system of this
// process: the kernel's dump work runs in our recvmsg, so it is included). Per variant it
// prints the median CPU and wall per collection and the median over rounds of its CPU divided
// by the bare dump's CPU in the same round (contention, which changes slowly, cancels out):
//
//   variant=NAME cpu_s=... wall_s=... ratio=... sockets=... detail="..."
//
// Suites (the collectors are made once; --warmup rounds are not counted: buffers grow, the
// CLOSE_WAIT attribution converges over its first budget-limited gathers):
//   scale       in --netns: the execd's default request (diagnosis on, counting auto) in
//               full and in counters mode, and both without diagnosis.
//   ports       in --netns: the execd's default request, alone and with 2 and 20 ports
//               (half local, half remote; served by a second, kernel-filtered dump when
//               counting by counters), and the same without diagnosis.
//   breakdown   in --netns: the execd's default request with one analysis at a time.
//   namespaces  every namespace NamespacesCollector finds (the caller's included) with the
//               execd's default request, and counts only; the bare dump runs once in each
//               namespace of --netns-list plus the caller's, through a socket per namespace
//               created inside it, as ours are.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bare_dump.h"
#include "bench/bench_util.h"
#include "common/collection/collector.h"
#include "common/collection/namespaces_collector.h"
#include "common/command_line/command_line.h"
#include "plugins/telegraf/execd_config.h"

namespace {

using tcpstates::CollectionRequest;
using tcpstates::CountingChoice;

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

struct Variant {
  std::string name;
  // One collection; returns the sockets it counted (-1: failed).
  std::function<long long()> run = nullptr;
  std::string detail = "";
  std::vector<double> cpu = {};
  std::vector<double> wall = {};
  long long sockets = 0;
};

CollectionRequest ExecdDefault() { return tcpstates::telegraf::ExecdConfig{}.Request(); }

CollectionRequest WithoutDiagnosis(CollectionRequest request) {
  request.diagnosis.reset();
  return request;
}

CollectionRequest WithCounting(CollectionRequest request, CountingChoice counting) {
  request.counting = counting;
  return request;
}

// Port pressure needs every ESTABLISHED and TIME_WAIT socket: a full dump, and a hash-table
// lookup per socket (the endpoint it connects to).
CollectionRequest WithPortPressure(CollectionRequest request) {
  request.counting = CountingChoice::kFull;
  request.diagnosis->port_pressure = true;
  return request;
}

// `n` ports, half local and half remote, from the workload's port range (10000..59999: every
// port there carries a few sockets at 100k and more).
CollectionRequest WithPorts(CollectionRequest request, int n) {
  for (int i = 0; i < n; ++i) {
    const auto port = static_cast<uint16_t>(10000 + 2477 * i);
    (i % 2 == 0 ? request.local_ports : request.remote_ports).push_back(port);
  }
  return request;
}

bool AddCollector(std::vector<Variant>* variants, std::string name,
                  const CollectionRequest& request) {
  absl::StatusOr<tcpstates::Collector> created = tcpstates::Collector::Create(request);
  if (!created.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), created.status().ToString().c_str());
    return false;
  }
  auto collector = std::make_shared<tcpstates::Collector>(*std::move(created));
  Variant v{.name = std::move(name),
            .run =
                [collector] {
                  absl::StatusOr<tcpstates::Collection> c = collector->Collect();
                  return c.ok() ? static_cast<long long>(c->snapshot.connections()) : -1LL;
                },
            .detail = collector->source_detail()};
  variants->push_back(std::move(v));
  return true;
}

bool AddNamespacesCollector(std::vector<Variant>* variants, std::string name,
                            const CollectionRequest& request, const std::string& run_netns_dir) {
  absl::StatusOr<tcpstates::NamespacesCollector> created =
      tcpstates::NamespacesCollector::Create(request, 256, run_netns_dir);
  if (!created.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), created.status().ToString().c_str());
    return false;
  }
  auto collector = std::make_shared<tcpstates::NamespacesCollector>(*std::move(created));
  const size_t slot = variants->size();
  variants->push_back({.name = std::move(name)});
  // The detail is only known after a collection.
  variants->back().run = [collector, variants, slot] {
    absl::StatusOr<tcpstates::NamespacesCollection> c = collector->Collect();
    if (!c.ok()) return -1LL;
    long long sockets = 0;
    size_t unreadable = 0, counters = 0;
    for (const tcpstates::NamespaceCollection& ns : c->namespaces) {
      if (!ns.collection.ok()) {
        ++unreadable;
        continue;
      }
      sockets += static_cast<long long>(ns.collection->snapshot.connections());
      counters += ns.collection->snapshot.counting == tcpstates::Counting::kKernelCounters;
    }
    sockets += static_cast<long long>(c->other.connections());
    (*variants)[slot].detail = absl::StrCat(c->namespaces.size(), " namespaces, ", counters,
                                            " counting by counters, ", unreadable, " unreadable");
    return sockets;
  };
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string suite = "scale", netns, netns_list, run_netns_dir = "/run/netns";
  int rounds = 9, warmup = 3;
  tcpstates::command_line::Flags flags(
      {.name = "tcpstates-gather-cost",
       .summary = "times the core's collections against the bare legacy dump, interleaved",
       .synopsis =
           "--suite=scale|ports|breakdown|namespaces [--netns=PATH] [--rounds=N] [--warmup=N] "
           "[--netns-list=FILE] [--run-netns-dir=DIR]"});
  flags.String("suite", &suite, "NAME", "scale, ports, breakdown or namespaces.")
      .String("netns", &netns, "PATH", "Network namespace to measure (a /proc/PID/ns/net path).")
      .String("netns-list", &netns_list, "FILE",
              "namespaces suite: the namespaces the bare dump visits, one path a line.")
      .String("run-netns-dir", &run_netns_dir, "DIR",
              "namespaces suite: where NamespacesCollector looks for `ip netns` names.")
      .Int("rounds", &rounds, 1, 100000, "Measured rounds.")
      .Int("warmup", &warmup, 0, 100000, "Rounds run first and not counted.");
  if (std::optional<int> exit_code = flags.ParseOrExit(argc, argv)) return *exit_code;
  if (!tcpstates::bench::EnterNetns(netns)) {
    std::perror("setns");
    return 1;
  }

  // The bare dump: one socket per namespace, each created inside its namespace.
  std::vector<int> bare_fds;
  if (suite == "namespaces") {
    bare_fds.push_back(bare_dump_open(nullptr));
    std::ifstream list(netns_list);
    for (std::string path; std::getline(list, path);) {
      if (!path.empty()) bare_fds.push_back(bare_dump_open(path.c_str()));
    }
  } else {
    bare_fds.push_back(bare_dump_open(nullptr));
  }
  for (int fd : bare_fds) {
    if (fd < 0) {
      std::perror("bare_dump_open");
      return 1;
    }
  }
  std::vector<Variant> storage;
  std::vector<Variant>* variants = &storage;
  variants->push_back(
      {.name = "bare",
       .run =
           [bare_fds] {
             uint64_t counts[BARE_DUMP_STATES] = {};
             for (int fd : bare_fds) {
               if (bare_dump_pass(fd, counts) != 0) return -1LL;
             }
             long long total = 0;
             for (uint64_t c : counts) total += static_cast<long long>(c);
             return total;
           },
       .detail = absl::StrCat("legacy dump of states 1-12 in ", bare_fds.size(), " namespace(s)")});

  const CollectionRequest defaults = ExecdDefault();
  bool ok = true;
  if (suite == "scale") {
    ok = AddCollector(variants, "full, diagnosis (execd --counting=full)",
                      WithCounting(defaults, CountingChoice::kFull)) &&
         AddCollector(variants, "counters, diagnosis (execd default)", defaults) &&
         AddCollector(variants, "full, no diagnosis",
                      WithoutDiagnosis(WithCounting(defaults, CountingChoice::kFull))) &&
         AddCollector(variants, "counters, no diagnosis", WithoutDiagnosis(defaults));
  } else if (suite == "ports") {
    ok = AddCollector(variants, "default (diagnosis, counters)", defaults) &&
         AddCollector(variants, "default + 2 ports", WithPorts(defaults, 2)) &&
         AddCollector(variants, "default + 20 ports", WithPorts(defaults, 20)) &&
         AddCollector(variants, "counters, no diagnosis", WithoutDiagnosis(defaults)) &&
         AddCollector(variants, "counters, no diagnosis + 2 ports",
                      WithPorts(WithoutDiagnosis(defaults), 2)) &&
         AddCollector(variants, "counters, no diagnosis + 20 ports",
                      WithPorts(WithoutDiagnosis(defaults), 20)) &&
         AddCollector(
             variants, "full, no diagnosis + 20 ports",
             WithPorts(WithoutDiagnosis(WithCounting(defaults, CountingChoice::kFull)), 20));
  } else if (suite == "breakdown") {
    // Where the default's cost above "counters, no diagnosis" goes, one analysis at a time.
    // Any diagnosis at all brings the CLOSE_WAIT ages dump (tcp_info of CLOSE_WAIT sockets,
    // a second walk of the table) when there is CLOSE_WAIT.
    auto only = [&](bool owners, bool listen) {
      CollectionRequest r = defaults;
      r.diagnosis->close_wait_owners = owners;
      r.diagnosis->listen_inventory = listen;
      r.diagnosis->new_listener_owners = listen;
      return r;
    };
    ok = AddCollector(variants, "counters, no diagnosis", WithoutDiagnosis(defaults)) &&
         AddCollector(variants, "counters + CLOSE_WAIT ages dump only", only(false, false)) &&
         AddCollector(variants, "counters + ages + listening ports", only(false, true)) &&
         AddCollector(variants, "counters + ages + CLOSE_WAIT owners", only(true, false)) &&
         AddCollector(variants, "counters, diagnosis (execd default)", defaults) &&
         AddCollector(variants, "full + ages dump only",
                      WithCounting(only(false, false), CountingChoice::kFull)) &&
         AddCollector(variants, "full, diagnosis (execd --counting=full)",
                      WithCounting(defaults, CountingChoice::kFull)) &&
         AddCollector(variants, "full, diagnosis + port pressure", WithPortPressure(defaults));
  } else if (suite == "namespaces") {
    ok = AddNamespacesCollector(variants, "all namespaces, execd default (diagnosis)", defaults,
                                run_netns_dir) &&
         AddNamespacesCollector(variants, "all namespaces, counts only (counters)",
                                WithoutDiagnosis(defaults), run_netns_dir) &&
         AddNamespacesCollector(variants, "all namespaces, counts only (full)",
                                WithoutDiagnosis(WithCounting(defaults, CountingChoice::kFull)),
                                run_netns_dir);
  } else {
    std::fprintf(stderr, "unknown suite %s\n", suite.c_str());
    return 2;
  }
  if (!ok) return 1;

  std::vector<std::vector<double>> ratios(variants->size());
  const size_t n = variants->size();
  for (int round = 0; round < warmup + rounds; ++round) {
    std::vector<double> cpu(n);
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (k + round) % n;  // rotate who goes first
      Variant& v = (*variants)[i];
      const double w = tcpstates::bench::MonotonicSeconds();
      const double c = tcpstates::bench::CpuSeconds();
      const long long sockets = v.run();
      cpu[i] = tcpstates::bench::CpuSeconds() - c;
      const double wall = tcpstates::bench::MonotonicSeconds() - w;
      if (sockets < 0) {
        std::fprintf(stderr, "%s: collection failed\n", v.name.c_str());
        return 1;
      }
      v.sockets = sockets;
      if (round >= warmup) {
        v.cpu.push_back(cpu[i]);
        v.wall.push_back(wall);
      }
    }
    if (round >= warmup) {
      for (size_t i = 0; i < n; ++i) ratios[i].push_back(cpu[i] / cpu[0]);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const Variant& v = (*variants)[i];
    std::printf(
        "variant=\"%s\" cpu_s=%.6f wall_s=%.6f ratio=%.4f ratio_min=%.4f ratio_max=%.4f "
        "sockets=%lld detail=\"%s\"\n",
        v.name.c_str(), Median(v.cpu), Median(v.wall), Median(ratios[i]),
        *std::min_element(ratios[i].begin(), ratios[i].end()),
        *std::max_element(ratios[i].begin(), ratios[i].end()), v.sockets, v.detail.c_str());
  }
  return 0;
}
