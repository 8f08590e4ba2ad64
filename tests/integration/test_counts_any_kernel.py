"""Counts that must hold on any kernel: the CLI and `tcpstates-execd --once`, reading netlink
with full dumps and with kernel counters and reading /proc (always whole), each equal to the
workload's construction and to what `ss -tan` reports in the same namespace at the same moment.

No timing, InfluxDB or collectd here, so that the module also runs unchanged in
tests/kernel's emulated guest (15-20x slower), where it checks that what we read from the
kernel - dump states, state masks, /proc text, CurrEstab and tw counters - means the same on
another kernel version. Bound-only sockets are there because kernels differ on them: 6.8 and
later report them as CLOSE to a dump that asks for state bit 13, 6.1 ignores the bit, and
neither /proc nor `ss -tan` shows them.
"""

import json
import unittest

import harness
from execd_emulator import parse_line
from harness import STATES

# Distinct counts per state, and more IPv6 than IPv4 (a second workload adds IPv6 sockets to
# the first one's namespace), so that a state or family mix-up cannot go unnoticed.
BOTH_FAMILIES = dict(listen=7, established=31, close_wait=13, time_wait=23, syn_recv=11,
                     orphan_fin_wait2=17, syn_sent=3, bound_only=5)
IPV6_EXTRA = dict(families="ipv6", listen=3, established=5, close_wait=2, time_wait=9)

# Every (source, counting) the programs accept: counters need the netlink dump's state mask
# (the /proc tables are read whole: asking for counters there is a usage error).
WAYS = (("netlink", "full"), ("netlink", "counters"), ("proc", "full"))


def execd_fields(counts):
    """{state: n} -> the fields of a default tcpstates-execd line."""
    fields = {"tcp_" + state: n for state, n in counts.items()}
    fields["tcp_connections"] = sum(counts.values())
    return fields


class CountsOnAnyKernelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_root()

    def test_every_program_source_and_counting_equals_construction_and_ss(self):
        with harness.Workload(**BOTH_FAMILIES) as base, \
                harness.Workload(netns=base.netns, **IPV6_EXTRA) as extra:
            expected = {family: {state: base.expected[family][state] + extra.expected[family][state]
                                 for state in STATES}
                        for family in ("ipv4", "ipv6")}
            totals = {state: expected["ipv4"][state] + expected["ipv6"][state] for state in STATES}
            # Loopback transitions finish asynchronously: wait until ss sees the construction.
            harness.wait_for(lambda: base.ss_counts() == expected, timeout=10, interval=0.05)
            self.assertEqual(base.ss_counts(), expected, "ss disagrees with the construction")
            for source, counting in WAYS:
                with self.subTest(program="tcpstates", source=source, counting=counting):
                    self.check_cli(base, source, counting, expected, totals)
                with self.subTest(program="tcpstates-execd", source=source, counting=counting):
                    self.check_execd(base, source, counting, expected, totals)

    def assert_ss_still(self, workload, expected):
        """ss, right after a collection: the population did not move under it."""
        self.assertEqual(workload.ss_counts(), expected, "ss, right after the collection")

    def check_cli(self, workload, source, counting, expected, totals):
        by_counters = counting == "counters"
        # Port pressure (on by default) needs every socket, which counters do not dump.
        no_port_pressure = ["--noport-pressure"] if by_counters else []
        result = workload.run([harness.binary("plugins/cli/tcpstates"), "--json",
                               f"--source={source}", f"--counting={counting}",
                               *no_port_pressure])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_ss_still(workload, expected)
        snapshot = json.loads(result.stdout)
        self.assertEqual(snapshot["source"], source)
        self.assertEqual(snapshot["malformed"], 0)
        self.assertEqual(snapshot["unknown_state"], 0)
        self.assertEqual(snapshot["tcp_connections"], sum(totals.values()))
        for metric in ("established", "time_wait", "close_wait", "listen"):
            self.assertEqual(snapshot["tcp_" + metric], totals[metric], metric)
        self.assertEqual(snapshot["totals"], totals)
        # Kernel counters stand in for dumping ESTABLISHED and TIME_WAIT only where the
        # start-up probe proves them exact: on every kernel we test, so a silent fall-back to
        # full dumps would leave the counters path untested.
        self.assertEqual("from kernel counters" in snapshot["source_detail"], by_counters,
                         snapshot["source_detail"])
        unsplit = snapshot.get("unsplit", {state: 0 for state in STATES})
        for state in STATES:
            if by_counters and state in ("established", "time_wait"):
                # Totals only: the dump skipped these sockets.
                per_family = sum(snapshot["states"][f][state] for f in ("ipv4", "ipv6"))
                self.assertEqual(per_family + unsplit[state], totals[state], state)
            else:
                self.assertEqual(unsplit[state], 0, state)
                for family in ("ipv4", "ipv6"):
                    self.assertEqual(snapshot["states"][family][state], expected[family][state],
                                     (family, state))

    def check_execd(self, workload, source, counting, expected, totals):
        # Per-family lines need every socket, which counters do not give (a usage error).
        by_family = ["--by-family"] if counting == "full" else []
        result = workload.run([harness.binary("plugins/telegraf/tcpstates-execd"), "--once",
                               f"--source={source}", f"--counting={counting}",
                               "--noclose-wait-owners", "--nolisten-ports", *by_family])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_ss_still(workload, expected)
        by_counters = counting == "counters"
        self.assertIn(f"I! counting: {'counters' if by_counters else 'full'} ", result.stderr)
        self.assertNotIn("E! ", result.stderr)
        self.assertNotIn("W! ", result.stderr)
        points = [parse_line(line.encode()) for line in result.stdout.splitlines()]
        self.assertEqual([(p.measurement, p.tags) for p in points],
                         [("tcpstates", {})] +
                         [("tcpstates", {"family": f}) for f in ("ipv4", "ipv6") if by_family])
        self.assertEqual(points[0].fields, execd_fields(totals))
        for point in points[1:]:
            self.assertEqual(point.fields, execd_fields(expected[point.tags["family"]]),
                             point.tags)


if __name__ == "__main__":
    unittest.main()
