"""The core through the tcpstates CLI, in a namespace with a known socket population.

Counts must equal the workload's construction exactly, with the netlink source and with the
/proc source, and equal what `ss -tan` reports in the same namespace.
"""

import json
import subprocess
import unittest

import harness
from harness import STATES


def cli(*args):
    return [harness.binary("plugins/cli/tcpstates"), *args]


class CliWorkloadTest(unittest.TestCase):
    def setUp(self):
        harness.require_root()

    def collect(self, workload, source, *args):
        result = workload.run(cli("--json", f"--source={source}", *args))
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def assert_exact(self, workload):
        seen_by_ss = workload.settle()
        self.assertEqual(seen_by_ss, workload.expected, "ss disagrees with the construction")
        for source in ("netlink", "proc", "auto"):
            with self.subTest(source=source):
                snapshot = self.collect(workload, source)
                self.assertEqual(snapshot["source"], "proc" if source == "proc" else "netlink")
                self.assertEqual(snapshot["states"], workload.expected)
                self.assertEqual(snapshot["totals"], {s: workload.total(s) for s in STATES})
                self.assertEqual(snapshot["tcp_connections"], workload.connections())
                self.assertEqual(snapshot["tcp_established"], workload.total("established"))
                self.assertEqual(snapshot["tcp_time_wait"], workload.total("time_wait"))
                self.assertEqual(snapshot["tcp_close_wait"], workload.total("close_wait"))
                self.assertEqual(snapshot["tcp_listen"], workload.total("listen"))
                self.assertEqual(snapshot["malformed"], 0)
                self.assertEqual(snapshot["unknown_state"], 0)
        # Counter-assisted counting: same totals, ESTABLISHED and TIME_WAIT only as totals.
        snapshot = self.collect(workload, "netlink", "--counting=counters", "--noport-pressure")
        self.assertIn("from kernel counters", snapshot["source_detail"])
        for state in STATES:
            total = sum(snapshot["states"][f][state] for f in ("ipv4", "ipv6"))
            total += snapshot["unsplit"][state]
            self.assertEqual(total, workload.total(state), state)
            if state not in ("established", "time_wait"):
                for family in ("ipv4", "ipv6"):
                    self.assertEqual(snapshot["states"][family][state],
                                     workload.expected[family][state])
        self.assertEqual(snapshot["tcp_connections"], workload.connections())
        self.assertEqual(snapshot["totals"], {s: workload.total(s) for s in STATES})

    def test_every_state_both_families(self):
        with harness.Workload(listen=300, established=300, close_wait=300, time_wait=300,
                              syn_recv=300, orphan_fin_wait2=300, syn_sent=40,
                              bound_only=25) as workload:
            self.assertEqual(workload.total("close_wait"), 1200)
            self.assertEqual(workload.total("syn_recv"), 600)
            self.assertEqual(workload.total("syn_sent"), 80)
            self.assert_exact(workload)

    def test_bound_only_sockets_are_not_counted(self):
        # Bound, never listening or connected: /proc and `ss -tan` show none of them, and a
        # dump that asks for state bit 13 (TCP_BOUND_INACTIVE, Linux 6.8+) would report them
        # as CLOSE. SYN_SENT clients of a full listener sit next to them.
        with harness.Workload(bound_only=5, syn_sent=3) as workload:
            self.assertEqual(workload.total("close"), 0)
            self.assertEqual(workload.connections(), 2 * (3 + 1 + 2))
            self.assert_exact(workload)

    def test_counters_exact_with_close_wait_from_the_start(self):
        # Where CurrEstab does not count CLOSE_WAIT (kernels without the 2024 change), taking
        # CLOSE_WAIT away from it would under-report ESTABLISHED by exactly these 5.
        with harness.Workload(families="ipv4", established=25, close_wait=5) as workload:
            self.assertEqual(workload.total("established"), 50)
            self.assert_exact(workload)

    def test_ipv4_only(self):
        with harness.Workload(families="ipv4", listen=200, established=250, close_wait=150,
                              time_wait=350, syn_recv=100) as workload:
            self.assert_exact(workload)

    def test_ipv6_only(self):
        with harness.Workload(families="ipv6", listen=120, established=310, close_wait=220,
                              time_wait=130, syn_recv=240) as workload:
            self.assert_exact(workload)

    def test_orphaned_fin_wait2_is_not_time_wait(self):
        # Orphaned FIN_WAIT2 sockets are kept in time-wait form and counted in sockstat's tw:
        # counter-assisted counting must subtract them.
        with harness.Workload(established=50, time_wait=120, orphan_fin_wait2=90,
                              close_wait=30) as workload:
            self.assertEqual(workload.total("fin_wait2"), 240)
            self.assert_exact(workload)

    def test_empty_namespace(self):
        with harness.Workload() as workload:
            self.assertEqual(workload.connections(), 0)
            self.assert_exact(workload)

    def test_table_output_leads_with_the_five_metrics(self):
        with harness.Workload(families="ipv4", listen=3, close_wait=12) as workload:
            workload.settle()
            result = workload.run(cli())
            self.assertEqual(result.returncode, 0, result.stderr)
            lines = result.stdout.splitlines()
            first = {line.split()[0]: int(line.split()[1]) for line in lines[:5]}
            self.assertEqual(first, {
                "tcp_connections": workload.connections(),
                "tcp_established": 0,
                "tcp_time_wait": 0,
                "tcp_close_wait": 12,
                "tcp_listen": 4,
            })
            table = lines[lines.index("") + 2:lines.index("") + 2 + len(STATES)]
            rows = {line.split()[0]: line.split()[1:] for line in table}
            self.assertEqual(list(rows), [s.upper() for s in STATES])
            self.assertEqual(rows["CLOSE_WAIT"], ["12", "0", "12"])
            self.assertEqual(rows["FIN_WAIT2"], ["12", "0", "12"])
            self.assertIn("source: netlink", result.stdout)
            self.assertIn("collected in", result.stdout)


class CliUsageTest(unittest.TestCase):
    def test_version(self):
        result = subprocess.run(cli("--version"), capture_output=True, text=True)
        self.assertEqual(result.returncode, 0)
        with open(harness.os.path.join(harness.BUILD_DIR, "generated/common/version.h")) as header:
            version = header.read()
        self.assertIn(f'"{result.stdout.split()[1]}"', version)
        self.assertEqual(result.stdout.split()[0], "tcpstates")

    def test_help_lists_own_flags(self):
        result = subprocess.run(cli("--help"), capture_output=True, text=True)
        self.assertIn("--source", result.stdout + result.stderr)
        self.assertIn("--json", result.stdout + result.stderr)

    def test_bad_source_is_a_usage_error(self):
        result = subprocess.run(cli("--source=ebpf"), capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        self.assertIn("expected auto, netlink or proc", result.stderr)

    def test_unexpected_argument_is_a_usage_error(self):
        result = subprocess.run(cli("extra"), capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)


if __name__ == "__main__":
    unittest.main()
