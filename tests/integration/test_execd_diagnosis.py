"""tcpstates-execd's diagnosis series through the Telegraf execd emulator, exact in namespace
workloads: CLOSE_WAIT owners with hostile names read back from a real InfluxDB, an
unprivileged run, a listener that vanishes between two gathers, ephemeral-port pressure, and
the counter-assisted default counting.

The series names are fixed (the Grafana dashboard and InfluxDB rollups query them):
tcpstates_close_wait, tcpstates_close_wait_summary, tcpstates_listen,
tcpstates_listen_vanished, tcpstates_port_pressure.
"""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

import diagnosis_workloads as dw
import harness
from execd_emulator import parse_line
from execd_emulator import ExecdEmulator
from influxdb import InfluxDB, require_influxd

EXECD = "plugins/telegraf/tcpstates-execd"
ENCODE = "plugins/telegraf/line-protocol-encode"

# Float fields of the diagnosis series; every other field is an i-suffixed integer.
FLOAT_FIELDS = {("tcpstates_port_pressure", "ratio"), ("tcpstates_listen", "fill"),
                ("tcpstates_close_wait", "age_seconds"),
                ("tcpstates_close_wait_summary", "age_seconds")}
STRING_FIELDS = {("tcpstates_close_wait_summary", "owner_search"),
                 ("tcpstates_close_wait_summary", "why")}


def execd(workload, *flags, unprivileged=False):
    argv = [harness.binary(EXECD), *flags]
    if unprivileged:
        # Telegraf runs the program as its own unprivileged user.
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + argv
    return workload.nsenter(argv)


def stored_tag_value(name):
    """The encoder's documented policy for tag values (plugins/telegraf/README.md): trailing
    backslashes dropped, TAB/LF/FF/CR made visible; every other byte unchanged."""
    name = name.rstrip(b"\\")
    for raw, shown in ((b"\t", b"\\t"), (b"\n", b"\\n"), (b"\f", b"\\f"), (b"\r", b"\\r")):
        name = name.replace(raw, shown)
    return name


def gather(emulator, timeout=30.0):
    """One trigger -> that gather's lines: complete once the execd waits for its next trigger
    again with all it wrote read (ExecdEmulator.at_rest), not after a quiet spell. A gather
    that never prints fails here, so batches are never taken for one another."""
    before = len(emulator.lines)
    emulator.trigger()
    batch = emulator.wait_batch(before, timeout)
    if batch is None:
        raise AssertionError(f"no complete batch within {timeout} s:\n{emulator.stderr_text()}")
    return batch


def by_measurement(batch, measurement):
    return [line.point for line in batch if line.point and line.point.measurement == measurement]


def totals(workload):
    return {state: workload.total(state) for state in harness.STATES}


def counts_fields(counts):
    fields = {"tcp_" + state: n for state, n in counts.items()}
    fields["tcp_connections"] = sum(counts.values())
    return fields


class DiagnosisTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_root()
        harness.binary(EXECD)

    def assert_well_behaved(self, emulator):
        """What every run owes Telegraf (as in test_execd.py): stopped by stdin EOF alone,
        exit 0 within 1 s, only valid line protocol, only prefixed stderr, no errors."""
        result = emulator.stop_result or emulator.stop()
        self.assertIsNone(result.escalation, emulator.stderr_text())
        self.assertEqual(result.returncode, 0, emulator.stderr_text())
        self.assertLess(result.seconds, 1.0)
        self.assertEqual(emulator.parse_errors(), [])
        self.assertEqual(emulator.unprefixed_stderr(), [])
        self.assertEqual([l.text for l in emulator.stderr if l.level == "error"], [])
        for point in emulator.points():
            for key, kind in point.field_types.items():
                wanted = ("float" if (point.measurement, key) in FLOAT_FIELDS else
                          "string" if (point.measurement, key) in STRING_FIELDS else "integer")
                self.assertEqual(kind, wanted, (point.measurement, key, point.raw))

    def assert_one_gather(self, batch):
        self.assertTrue(batch, "no lines")
        self.assertEqual(batch[0].point.measurement, "tcpstates", batch[0].raw)
        self.assertEqual(len({line.point.timestamp for line in batch}), 1,
                         "all lines of one gather share its timestamp")

    def counting_lines(self, emulator):
        return [l.text for l in emulator.stderr if l.text.startswith("I! counting: ")]


class CloseWaitOwnersTest(DiagnosisTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require_influxd()
        cls.influx = InfluxDB().start()

    @classmethod
    def tearDownClass(cls):
        cls.influx.stop()

    def write(self, database, lines):
        self.influx.create_database(database)
        status, body = self.influx.write(database, b"".join(line + b"\n" for line in lines))
        self.assertEqual(status, 204, body)

    def test_hostile_named_owners_reach_influxdb_byte_for_byte(self):
        with dw.close_wait_holders() as (workload, holders):
            self.assertEqual(workload.settle(), workload.expected)
            with ExecdEmulator(execd(workload)) as emulator:
                batch = gather(emulator)
                self.assert_well_behaved(emulator)
            self.assert_one_gather(batch)
            self.assertEqual(batch[0].point.fields, counts_fields(totals(workload)))
            owners = by_measurement(batch, "tcpstates_close_wait")
            self.assertEqual(len(owners), 2, [line.raw for line in batch])
            # Most sockets first; what Telegraf's parser makes of each line.
            expected = sorted(holders, key=lambda h: -h[2])
            for point, (pid, name, sockets, unit) in zip(owners, expected):
                self.assertEqual(point.tags["comm"].encode("utf-8", "surrogateescape"),
                                 stored_tag_value(name), point.raw)
                self.assertEqual(point.tags["unit"], unit)
                # Ages are exact in test_ports.py; here the sockets are seconds old.
                self.assertLess(point.fields.pop("age_seconds"), 60)
                self.assertEqual(point.fields, {"sockets": sockets, "pid": pid, "processes": 1})
            [summary] = by_measurement(batch, "tcpstates_close_wait_summary")
            self.assertLess(summary.fields.pop("age_seconds"), 60)
            self.assertEqual((summary.fields.pop("older_than_60s"),
                              summary.fields.pop("older_than_1h")), (0, 0))
            self.assertEqual(summary.fields, {
                "attributed": dw.HOSTILE_SOCKETS + dw.SECOND_SOCKETS, "other": 0, "other_owners": 0,
                "unattributed": 0, "not_accepted": 0, "processes_unreadable": 0,
                "processes_hidden": 0, "processes_failed": 0, "budget_exhausted": 0,
                "owner_search": "cgroup", "why": ""})

            # The batch exactly as printed, into a real InfluxDB, and back.
            self.write("owners", [line.raw for line in batch])
            rows = self.influx.query(
                "owners", 'SELECT sockets, pid FROM tcpstates_close_wait GROUP BY comm, unit')
            stored = sorted((row["pid"], row["tags"]["comm"].encode(), row["sockets"],
                             row["tags"]["unit"]) for row in rows)
            self.assertEqual(stored, sorted((pid, stored_tag_value(name), sockets, unit)
                                            for pid, name, sockets, unit in holders))
            # The hostile name, spelled out: LF made visible, nothing split or forged.
            self.assertIn(b'a b,c=d"e\\f\\ng', [row[1] for row in stored])
            [row] = self.influx.query("owners", "SELECT * FROM tcpstates_close_wait_summary")
            self.assertEqual((row["attributed"], row["unattributed"]), (12, 0))

    def test_backslash_quote_in_a_name_is_where_telegraf_and_influxdb_differ(self):
        # Telegraf's parser reads \" in a tag value as " when the value also holds a space,
        # comma or equals sign; InfluxDB keeps both bytes. Documented in the README; the
        # names tcpstates emits are encoded alike either way.
        names = [b'q\\"x y', b'q\\"x']
        specs = "".join(f"m:{b'tcpstates_close_wait'.hex()} t:{b'comm'.hex()}:{n.hex()} "
                        f"i:{b'sockets'.hex()}:1 ts:{1000 + i}\n" for i, n in enumerate(names))
        result = subprocess.run([harness.binary(ENCODE)], input=specs.encode(),
                                capture_output=True, timeout=10)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.rstrip(b"\n").split(b"\n")
        self.assertEqual(lines, [b'tcpstates_close_wait,comm=q\\"x\\ y sockets=1i 1000',
                                 b'tcpstates_close_wait,comm=q\\"x sockets=1i 1001'])
        self.assertEqual([parse_line(line).tags["comm"] for line in lines], ['q"x y', 'q\\"x'])
        self.write("quirk", lines)
        rows = self.influx.query("quirk", "SELECT sockets FROM tcpstates_close_wait GROUP BY comm")
        self.assertEqual(sorted(row["tags"]["comm"].encode() for row in rows), sorted(names))

    def test_unprivileged_run_counts_exactly_and_says_attribution_is_partial(self):
        with dw.close_wait_holders() as (workload, holders):
            self.assertEqual(workload.settle(), workload.expected)
            with ExecdEmulator(execd(workload, unprivileged=True)) as emulator:
                batches = [gather(emulator), gather(emulator)]
                self.assert_well_behaved(emulator)
            for batch in batches:
                self.assert_one_gather(batch)
                self.assertEqual(batch[0].point.fields, counts_fields(totals(workload)))
                self.assertEqual(by_measurement(batch, "tcpstates_close_wait"), [])
                [summary] = by_measurement(batch, "tcpstates_close_wait_summary")
                self.assertEqual(summary.fields["attributed"], 0)
                self.assertEqual(summary.fields["unattributed"],
                                 dw.HOSTILE_SOCKETS + dw.SECOND_SOCKETS)
                self.assertGreater(summary.fields["processes_unreadable"], 0)
                self.assertEqual(summary.fields["why"],
                                 f"fds of {summary.fields['processes_unreadable']} processes not "
                                 "readable by this user (root, or CAP_SYS_PTRACE and "
                                 "CAP_DAC_READ_SEARCH, read them all)")
            partial = [l.text for l in emulator.stderr if "CLOSE_WAIT owners are partial" in l.text]
            self.assertEqual(len(partial), 1, "said once, at info level, not per gather")
            self.assertTrue(partial[0].startswith("I! "), partial)

    def test_file_capabilities_let_an_unprivileged_run_attribute_every_owner(self):
        # What the README advises for Telegraf's own user, instead of running it as root.
        setcap = shutil.which("setcap")
        if setcap is None:
            raise unittest.SkipTest("setcap is not installed (apt-get install libcap2-bin)")
        directory = tempfile.mkdtemp(prefix="tcpstates-caps-")
        try:
            os.chmod(directory, 0o755)
            binary = os.path.join(directory, "tcpstates-execd")
            shutil.copy(harness.binary(EXECD), binary)
            subprocess.run([setcap, "cap_sys_ptrace,cap_dac_read_search+ep", binary], check=True)
            with dw.close_wait_holders() as (workload, holders):
                self.assertEqual(workload.settle(), workload.expected)
                argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", binary]
                with ExecdEmulator(workload.nsenter(argv)) as emulator:
                    batch = gather(emulator)
                    self.assert_well_behaved(emulator)
            owners = by_measurement(batch, "tcpstates_close_wait")
            self.assertEqual(sorted((p.fields["pid"], p.fields["sockets"]) for p in owners),
                             sorted((h[0], h[2]) for h in holders))
            [summary] = by_measurement(batch, "tcpstates_close_wait_summary")
            self.assertEqual((summary.fields["attributed"], summary.fields["unattributed"]),
                             (dw.HOSTILE_SOCKETS + dw.SECOND_SOCKETS, 0))
        finally:
            shutil.rmtree(directory, ignore_errors=True)


class ListenInventoryTest(DiagnosisTestCase):
    def test_a_closed_listener_is_reported_vanished_once_and_its_series_stops(self):
        with harness.Workload(listen=5, established=20) as base:
            base.settle()
            extra = harness.Workload(netns=base.netns, families="ipv6", listen=1)
            extra.__enter__()
            try:
                with ExecdEmulator(execd(base)) as emulator:
                    first = gather(emulator)
                    extra.__exit__(None, None, None)
                    extra = None
                    second = gather(emulator)
                    third = gather(emulator)
                    self.assert_well_behaved(emulator)
            finally:
                if extra:
                    extra.__exit__(None, None, None)
            for batch in (first, second, third):
                self.assert_one_gather(batch)
            ports = [{(p.tags["family"], int(p.tags["port"])): p.fields["sockets"]
                      for p in by_measurement(batch, "tcpstates_listen")}
                     for batch in (first, second, third)]
            self.assertEqual(sum(ports[0].values()), base.total("listen") + 1)
            self.assertEqual(sum(ports[1].values()), base.total("listen"))
            gone = set(ports[0]) - set(ports[1])
            self.assertEqual(len(gone), 1, ports)
            family, port = gone.pop()
            self.assertEqual(family, "ipv6")
            self.assertEqual(ports[2], ports[1], "the vanished port's series stays stopped")
            self.assertEqual(by_measurement(first, "tcpstates_listen_vanished"), [])
            [vanished] = by_measurement(second, "tcpstates_listen_vanished")
            self.assertEqual((vanished.tags, vanished.fields),
                             ({"family": "ipv6", "port": str(port)}, {"sockets": 1}))
            self.assertEqual(by_measurement(third, "tcpstates_listen_vanished"), [],
                             "reported at the gather where it vanished, not after")

            # The cap bounds the series; the rest is said once, as a warning.
            with ExecdEmulator(execd(base, "--max-listen-ports=2")) as emulator:
                capped = [gather(emulator), gather(emulator)]
                self.assert_well_behaved(emulator)
            for batch in capped:
                self.assertEqual(len(by_measurement(batch, "tcpstates_listen")), 2)
                self.assertEqual(batch[0].point.fields["tcp_listen"], base.total("listen"))
            warnings = [l.text for l in emulator.stderr if l.level == "warn"]
            self.assertEqual(warnings, [f"W! {base.total('listen') - 2} listening sockets are on "
                                        "ports beyond --max-listen-ports and have no "
                                        "tcpstates_listen line"])


class PortPressureTest(DiagnosisTestCase):
    def test_time_wait_toward_one_endpoint_gives_the_exact_ratio(self):
        time_wait = 400
        with harness.Workload(families="ipv4", time_wait=time_wait,
                              port_range="40000 40999") as workload:
            self.assertEqual(workload.settle(), workload.expected)
            max_tw = int(workload.run(["cat", "/proc/sys/net/ipv4/tcp_max_tw_buckets"]).stdout)
            fin_timeout = int(workload.run(["cat", "/proc/sys/net/ipv4/tcp_fin_timeout"]).stdout)
            with ExecdEmulator(execd(workload, "--port-pressure")) as emulator:
                batch = gather(emulator)
                self.assert_well_behaved(emulator)
            self.assert_one_gather(batch)
            self.assertEqual(batch[0].point.fields, counts_fields(totals(workload)))
            [line] = [line for line in batch if line.point.measurement == "tcpstates_port_pressure"]
            point = line.point
            self.assertTrue(point.tags["endpoint"].startswith("127.0.0.1:"), point.tags)
            listener = int(point.tags["endpoint"].rsplit(":", 1)[1])
            self.assertIn(("ipv4", str(listener)),
                          [(p.tags["family"], p.tags["port"])
                           for p in by_measurement(batch, "tcpstates_listen")])
            # The ratio as written parses to exactly N / range size.
            self.assertIn(b",ratio=0.4,", line.raw)
            self.assertEqual(point.fields, {
                "ports_in_use": time_wait, "ratio": time_wait / 1000, "range_size": 1000,
                "range_low": 40000, "range_high": 40999, "tcp_fin_timeout": fin_timeout,
                "tcp_tw_reuse": 0, "tcp_max_tw_buckets": max_tw})
            self.assertEqual(self.counting_lines(emulator),
                             ["I! counting: full (counting auto: port pressure needs every "
                              "socket)"])

    def test_without_ephemeral_ports_in_use_the_series_continues_at_zero(self):
        with harness.Workload(families="ipv4", listen=2) as workload:
            with ExecdEmulator(execd(workload, "--port-pressure")) as emulator:
                batch = gather(emulator)
                self.assert_well_behaved(emulator)
            [point] = by_measurement(batch, "tcpstates_port_pressure")
            self.assertEqual(point.tags, {})
            self.assertEqual((point.fields["ports_in_use"], point.fields["ratio"]), (0, 0.0))
            self.assertEqual(point.field_types["ratio"], "float")
            # Off by default: it costs a full dump every gather.
            with ExecdEmulator(execd(workload)) as emulator:
                batch = gather(emulator)
                self.assert_well_behaved(emulator)
            self.assertEqual(by_measurement(batch, "tcpstates_port_pressure"), [])


class CountingTest(DiagnosisTestCase):
    EVERY_SHAPE = dict(listen=40, established=60, close_wait=30, time_wait=70, syn_recv=20,
                       orphan_fin_wait2=25, syn_sent=15, bound_only=10)

    def test_counter_assisted_default_is_exact_and_by_family_dumps_in_full(self):
        with harness.Workload(**self.EVERY_SHAPE) as workload:
            self.assertEqual(workload.settle(), workload.expected)
            self.assertGreater(workload.total("time_wait"), 0)
            self.assertGreater(workload.total("fin_wait2"), 0)
            # Default flags but the owners: the workload's own CLOSE_WAIT sockets sit in the
            # cgroup of whatever runs the tests (the root cgroup in CI), and naming them scans
            # every fd there - seconds when a benchmark shares the machine - which says nothing
            # about counting. Owners are tested above, in a cgroup of their own.
            with ExecdEmulator(execd(workload, "--noclose-wait-owners")) as emulator:
                batches = [gather(emulator), gather(emulator)]
                self.assert_well_behaved(emulator)
            self.assertEqual(self.counting_lines(emulator),
                             ["I! counting: counters (counting auto; ESTABLISHED and TIME_WAIT "
                              "totals from kernel counters, no per-family split of them)"])
            for batch in batches:
                self.assert_one_gather(batch)
                self.assertEqual(batch[0].point.fields, counts_fields(totals(workload)))
                self.assertEqual(by_measurement(batch, "tcpstates"), [batch[0].point],
                                 "no per-family lines by default")

            with ExecdEmulator(execd(workload, "--by-family", "--noclose-wait-owners")) as emulator:
                batch = gather(emulator)
                self.assert_well_behaved(emulator)
            self.assertEqual(self.counting_lines(emulator),
                             ["I! counting: full (counting auto: the per-family split needs every "
                              "socket)"])
            lines = by_measurement(batch, "tcpstates")
            self.assertEqual([p.tags for p in lines], [{}, {"family": "ipv4"}, {"family": "ipv6"}])
            self.assertEqual(lines[0].fields, counts_fields(totals(workload)))
            for point in lines[1:]:
                self.assertEqual(point.fields, counts_fields(workload.expected[point.tags["family"]]))
            self.assertEqual(workload.ss_counts(), workload.expected, "still the same population")


if __name__ == "__main__":
    unittest.main()
