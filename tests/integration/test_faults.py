"""What the programs promise when netlink sock_diag fails, proven by making it fail
(faults.py: an LD_PRELOAD library refusing the socket, the legacy request, or a dump at its
first or a later receive), in a namespace with a known socket population:

- `auto` falls back to /proc with exact counts when netlink is refused, in the CLI and the
  execd (collectd: test_collectd.py), whether the socket or the dump is refused;
- a dump that fails part-way (sockets already delivered) fails that collection - no partial
  counts, no switch to /proc - and the execd's next gather reads netlink again;
- a kernel that refuses the legacy TCPDIAG_GETSOCK request gets the two per-family dumps, and
  is never asked the legacy request again;
- the execd logs a failed gather and skips it, and exits 1 at start-up when --source=netlink
  cannot open its socket;
- collectd: repeated read errors are rate-limited, recovery is logged once.
"""

import errno
import glob
import json
import os
import re
import signal
import unittest

import faults
import harness
import test_collectd
import test_execd as base
from execd_emulator import ExecdEmulator
from harness import STATES, TempDir, wait_for
from test_collectd import DAEMON_TIMEOUT

WORKLOAD = dict(listen=150, established=150, close_wait=150, time_wait=150, syn_recv=150)


def cli(*args):
    return [harness.binary("plugins/cli/tcpstates"), *args]


class FaultsTestCase(base.ExecdTestCase):
    def setUp(self):
        self.directory = self.enterContext(TempDir())
        self.log = os.path.join(self.directory, "faults.log")
        self.workload = self.enterContext(harness.Workload(**WORKLOAD))
        self.assertEqual(self.workload.settle(), self.workload.expected)

    def requests(self):
        return [words[2] for _, words in faults.events(self.log, "request")]

    def assert_exact_snapshot(self, result, source, detail):
        """A run that exited 0 with exact JSON counts read from `source`, its detail saying
        `detail`; returns the snapshot."""
        self.assertEqual(result.returncode, 0, result.stderr)
        snapshot = json.loads(result.stdout)
        self.assertEqual(snapshot["source"], source)
        self.assertIn(detail, snapshot["source_detail"])
        self.assertEqual(snapshot["states"], self.workload.expected)
        self.assertEqual(snapshot["totals"], {s: self.workload.total(s) for s in STATES})
        return snapshot


class CliFaultsTest(FaultsTestCase):
    def run_cli(self, *args, **fault):
        return self.workload.run(cli("--json", *args), env=faults.env(log=self.log, **fault))

    def test_auto_falls_back_to_proc_when_the_socket_is_refused(self):
        snapshot = self.assert_exact_snapshot(self.run_cli("--source=auto", socket=errno.EACCES),
                                              "proc", "(auto: netlink unavailable: ")
        self.assertIn("Permission denied", snapshot["source_detail"])
        # --source=netlink has nothing to fall back to: exit 1, saying why.
        result = self.run_cli("--source=netlink", socket=errno.EACCES)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertIn("Permission denied", result.stderr)

    def test_auto_falls_back_to_proc_when_the_dump_is_refused(self):
        self.assert_exact_snapshot(self.run_cli("--source=auto", dump=f"0:1:{errno.EPERM}"),
                                   "proc", "(auto: netlink dump failed: ")
        # The legacy request refused with nothing delivered is taken for a kernel without it;
        # the per-family dump refused too, the collection switched to /proc.
        self.assertEqual(self.requests(), ["type=legacy", "type=by-family"])
        self.assertEqual(len(faults.events(self.log, "fail")), 2)

    def test_a_dump_failing_part_way_fails_the_collection(self):
        result = self.run_cli("--source=auto", dump=f"1:2:{errno.EIO}")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertEqual(result.stdout, "", "no partial counts")
        self.assertIn("Input/output error", result.stderr)
        # It failed after sockets were delivered (a first receive succeeded), and nothing was
        # tried after it: no second dump, and (exit 1, no output) no /proc.
        log = faults.read_log(self.log)
        self.assertEqual([words[0] for _, words in log], ["request", "recv", "fail"], log)
        self.assertGreater(int(log[1][1][2].split("=")[1]), 0)

    def test_legacy_request_refused_gives_per_family_dumps(self):
        self.assert_exact_snapshot(self.run_cli("--source=netlink", legacy=errno.EINVAL),
                                   "netlink", "legacy TCPDIAG_GETSOCK refused, per-family dumps")
        # Two per-family dumps for the counts, two for the CLOSE_WAIT diagnosis's dump: the
        # legacy request is never tried again.
        self.assertEqual(self.requests(), ["type=legacy"] + ["type=by-family"] * 4)
        self.assertEqual(len(faults.events(self.log, "refuse")), 1)


class ExecdFaultsTest(FaultsTestCase):
    def execd(self, *flags, **fault):
        return self.enterContext(ExecdEmulator(base.execd_argv(self.workload, *flags),
                                               env=faults.env(log=self.log, **fault)))

    def gather(self, execd, lines):
        before = len(execd.lines)
        execd.trigger()
        batch = execd.wait_for_lines(before + lines)[before:]
        self.assertEqual(len(batch), lines, execd.stderr_text())
        return batch

    def stderr_lines(self, execd, text):
        return [line.text for line in execd.stderr if text in line.text]

    def test_auto_falls_back_to_proc_when_netlink_is_refused(self):
        for name, fault in (("socket", dict(socket=errno.EACCES)),
                            ("dump", dict(dump=f"0:1:{errno.EPERM}"))):
            with self.subTest(refused=name):
                execd = self.execd("--source=auto", "--by-family", **fault)
                for _ in range(2):
                    self.assert_batch(self.gather(execd, 3), self.workload, by_family=True)
                self.assert_well_behaved(execd)
                reading = self.stderr_lines(execd, "reading sockets from")
                self.assertEqual(len(reading), 1, execd.stderr_text())  # once, not per gather
                self.assertTrue(reading[0].startswith(
                    "I! reading sockets from proc (/proc/net/tcp{,6} (auto: netlink "), reading)

    def test_a_gather_failing_part_way_is_skipped_and_the_next_reads_netlink(self):
        execd = self.execd("--source=auto", "--counting=full", "--by-family",
                           dump=f"2:2:{errno.EIO}")
        self.assert_batch(self.gather(execd, 3), self.workload, by_family=True)
        execd.trigger()  # the second dump fails after its first receive
        self.assertTrue(base.wait_for_stderr(execd, "E! gather failed: "), execd.stderr_text())
        self.assert_batch(self.gather(execd, 3), self.workload, by_family=True)
        self.assert_well_behaved(execd, allow_errors=True)
        self.assertEqual(len(execd.lines), 6, "the failed gather printed nothing")
        self.assertEqual(len(self.stderr_lines(execd, "E! ")), 1, execd.stderr_text())
        self.assertIn("Input/output error", self.stderr_lines(execd, "E! gather failed")[0])
        self.assertEqual(self.stderr_lines(execd, "/proc"), [], "no switch to /proc")
        self.assertEqual(self.requests(), ["type=legacy"] * 3)
        self.assertEqual([w[0] for _, w in faults.read_log(self.log)].count("fail"), 1)

    def test_legacy_refused_once_then_per_family_dumps_only(self):
        execd = self.execd("--source=netlink", "--counting=full", "--by-family",
                           legacy=errno.EINVAL)
        for _ in range(3):
            self.assert_batch(self.gather(execd, 3), self.workload, by_family=True)
        self.assert_well_behaved(execd)
        self.assertEqual(self.requests(), ["type=legacy"] + ["type=by-family"] * 6)

    def test_every_gather_refused_is_logged_and_skipped(self):
        execd = self.execd("--source=netlink", "--counting=full", dump=f"0:1:{errno.EPERM}")
        for gathers in (1, 2, 3):
            execd.trigger()
            self.assertTrue(wait_for(lambda: len(self.stderr_lines(execd, "E! gather failed: "))
                                     == gathers, 5, 0.02), execd.stderr_text())
        self.assert_well_behaved(execd, allow_errors=True)  # still running; EOF stops it, exit 0
        self.assertEqual(execd.lines, [])
        # The first gather's legacy request refused with nothing delivered, then its IPv4
        # dump (the per-family dumps from then on): one failure more than gathers.
        self.assertEqual(len(faults.events(self.log, "fail")), 4)
        self.assertEqual(self.requests(), ["type=legacy"] + ["type=by-family"] * 3)

    def test_netlink_socket_refused_exits_1_at_start(self):
        execd = self.execd("--source=netlink", socket=errno.EACCES)
        self.assertEqual(execd.wait_exit(5), 1, execd.stderr_text())
        execd.stop()
        self.assertEqual(execd.stdout_bytes, b"")
        errors = self.stderr_lines(execd, "E! ")
        self.assertEqual(len(errors), 1, execd.stderr_text())
        self.assertIn("Permission denied", errors[0])


class CollectdFaultsTest(unittest.TestCase):
    # CollectdPluginTest's helpers, not its tests.
    setUp = test_collectd.CollectdPluginTest.setUp
    settled_workload = test_collectd.CollectdPluginTest.settled_workload
    daemon = test_collectd.CollectdPluginTest.daemon
    wait_for_counts = test_collectd.CollectdPluginTest.wait_for_counts

    def test_read_errors_are_rate_limited_and_recovery_logged_once(self):
        workload = self.settled_workload(listen=20, established=20)
        directory = self.enterContext(TempDir())
        log, switch = os.path.join(directory, "faults.log"), os.path.join(directory, "failing")
        open(switch, "w").close()
        # Every dump refused while `switch` exists; reads stay 1 s apart (no back-off).
        daemon = self.daemon(
            workload, "LoadPlugin tcpstates\n" + test_collectd.tcpstates_block(Source="netlink", Counting="full"),
            stock="MaxReadInterval 1\n",
            env=faults.env(log=log, dump=f"0:1:{errno.EPERM}", **{"while": switch}))
        complaint = "tcpstates plugin: no socket table could be read: "
        self.assertTrue(wait_for(lambda: len(faults.events(log, "fail")) >= 12, 30), daemon.log())
        os.unlink(switch)
        self.assertEqual(self.wait_for_counts(daemon, "all"), test_collectd.expected_counts(workload))
        failed = len(faults.events(log, "fail"))
        complaints = daemon.log().count(complaint)
        # c_complain: the first failure, then at doubling intervals (1, 2, 4, 8 s...): five
        # complaints cover 16 s of failing reads, each read a second apart.
        self.assertGreaterEqual(complaints, 1, daemon.log())
        self.assertLessEqual(complaints, 1 + (failed + 1).bit_length(), daemon.log())
        self.assertLess(complaints, failed // 2, daemon.log())
        self.assertTrue(daemon.wait_for_log("tcpstates plugin: socket table readable again"))
        self.assertEqual(daemon.log().count("socket table readable again"), 1, daemon.log())
        self.assertIsNone(re.search(r"tcpstates plugin: reading sockets from /proc", daemon.log()))
        daemon.assert_running(self)

    # -- An exception inside a read ----------------------------------------------------------
    # throwing_new.cc makes one allocation of a read throw std::bad_alloc, the one thing the
    # core throws (allocation failure: vm.overcommit_memory=2, RLIMIT_AS). Reads 1-3 are clean
    # and give a read's length A; then every other read throws, at positions spread from a
    # read's first allocation to its last (every position when the sweep is at least A), and
    # the reads between are clean. The workload does not change: every value any read
    # dispatches - a clean one, or one that threw after dispatching some - must be the same.

    BAD_ALLOC_ERROR = "tcpstates plugin: read: unexpected exception: std::bad_alloc"
    # Series that change while nothing else does.
    CLOCK_SERIES = ("gauge-oldest_age_seconds",)
    SWEEP_WORKLOAD = dict(listen=5, established=10, close_wait=12, time_wait=5)
    # Every position of a read in the release build; in the sanitizer build, which looks for
    # memory errors on the same paths at several times the cost, 40 spread over the read.
    EVERY_POSITION = 40 if os.environ.get("TCPSTATES_SANITIZER_PRELOAD") else 1000
    NO_SOCKETS = {state: 0 for state in STATES + ["total"]}  # LocalPort 1

    def sweep_bad_alloc(self, options, sweep, **more_sockets):
        """Runs collectd with `options` for tcpstates on SWEEP_WORKLOAD (plus `more_sockets`)
        through a sweep of at most `sweep` throws; returns the workload, the daemon (stopped),
        the csv series by plugin instance directory and name, and the number of throws."""
        workload = self.settled_workload(**dict(self.SWEEP_WORKLOAD, **more_sockets))
        directory = self.enterContext(TempDir())
        log = os.path.join(directory, "throwing_new.log")
        # Reads every 0.05 s (one takes a few ms, under ASan too); a failed read does not delay
        # the next (MaxReadInterval).
        daemon = self.daemon(workload, "<LoadPlugin tcpstates>\n  Interval 0.05\n</LoadPlugin>\n"
                             + test_collectd.tcpstates_block(**options),
                             stock="MaxReadInterval 0.05\n", env=faults.throwing_new_env(sweep, log))

        def log_lines():
            if not os.path.exists(log):
                return []
            with open(log) as f:
                return [line.split() for line in f if line.endswith("\n")]

        def allocations(read):
            found = [int(w[3]) for w in log_lines() if w[:2] == ["read", str(read)]]
            return found[0] if found else None

        def wait_for_read(read, timeout):
            wait_for(lambda: allocations(read) is not None or daemon.process.poll() is not None, timeout)
            daemon.assert_running(self)
            self.assertIsNotNone(allocations(read), f"{daemon.log()}\nthrowing_new.cc: {log_lines()[-4:]}")
            return allocations(read)

        length = wait_for_read(3, DAEMON_TIMEOUT)
        throws = min(sweep, length)
        wait_for_read(2 * throws + 3, 180)  # the clean read after the last throw
        self.sweep_log = log_lines()
        daemon.process.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.process.wait(timeout=DAEMON_TIMEOUT), 0, daemon.log())

        # The throws happened where the sweep puts them: read 4 + 2k at allocation
        # 1 + k (A - 1) / (throws - 1), and nowhere else.
        expected = [(4 + 2 * k, 1 + k * (length - 1) // (throws - 1) if throws > 1 else 1)
                    for k in range(throws)]
        thrown = [(int(w[1]), int(w[2])) for w in log_lines() if w[0] == "throw"]
        self.assertEqual(thrown, expected)
        self.assertEqual([w for w in log_lines() if w[0] == "miss"], [])
        # Each one reached the plugin's guard and nothing else did: one ERROR per throw, no
        # other error, no notification (nothing came or went), the daemon stopped cleanly.
        text = daemon.log()
        self.assertEqual(text.count(self.BAD_ALLOC_ERROR), throws, text)
        errors = [line for line in text.splitlines()
                  if "[error]" in line and self.BAD_ALLOC_ERROR not in line]
        self.assertEqual(errors, [])
        self.assertNotIn("Notification:", text)
        self.assertNotIn("Sanitizer", text)
        series = {}
        for path in glob.glob(os.path.join(daemon.csv_dir, test_collectd.HOSTNAME, "*", "*")):
            name = os.path.basename(path).rsplit("-", 3)[0]  # without the date
            instance = os.path.basename(os.path.dirname(path))
            with open(path) as f:
                values = [float(line.split(",")[1]) for line in f.read().splitlines()[1:]]
            series.setdefault(instance, {})[name] = series.get(instance, {}).get(name, []) + values
        return workload, daemon, series, throws

    def assert_values_unchanged(self, series, counts, clean_reads):
        """Every series holds one value throughout and at least one per clean read; those of
        `counts` ({instance: {state: n, "total": n}}) hold exactly that."""
        for instance, names in series.items():
            for name, values in names.items():
                if name in self.CLOCK_SERIES:
                    continue
                with self.subTest(instance=instance, series=name):
                    self.assertEqual(set(values), {values[-1]})
                    # listen_change and the accept-queue deltas begin at the second read.
                    self.assertGreaterEqual(len(values), clean_reads - 1)
        for instance, expected in counts.items():
            for state, value in expected.items():
                with self.subTest(instance=instance, state=state):
                    self.assertEqual(set(series[f"tcpstates-{instance}"][f"tcp_connections-{state}"]),
                                     {float(value)})

    def test_bad_alloc_anywhere_in_a_full_read_with_every_analysis(self):
        # Every position (EVERY_POSITION) of a read that dumps every socket and runs every
        # analysis: counts per family and port, queued bytes, CLOSE_WAIT owners and ages,
        # listening ports and their queues, new and vanished listeners, port pressure.
        workload, daemon, series, throws = self.sweep_bad_alloc(
            dict(Source="netlink", Counting="full", ReportByFamily="true", PortPressure="true",
                 QueuedBytes="true", LocalPort="1"), sweep=self.EVERY_POSITION)
        self.assertEqual(set(series["tcpstates-all"]["gauge-listen_change"]), {0.0})
        self.assertEqual(set(series["tcpstates-close_wait_owners"]["tcp_connections-unattributed"]), {0.0})
        self.assert_values_unchanged(series, {
            "all": test_collectd.expected_counts(workload),
            **{family: test_collectd.expected_counts(workload, family) for family in test_collectd.FAMILIES},
            "1-local": self.NO_SOCKETS}, clean_reads=3 + throws)

    def test_bad_alloc_anywhere_in_a_counters_read(self):
        # Every position (EVERY_POSITION) of the default read (counters, the dump without
        # ESTABLISHED and TIME_WAIT, CLOSE_WAIT ages) plus a port counted by a second,
        # kernel-filtered dump. 300 SYN_RECV per family make the main dump several parts long
        # (no analysis allocates for them, the read stays short): a throw while the first part
        # (the listeners) is walked leaves parts unread, which the next dump must not trip on.
        workload, daemon, series, throws = self.sweep_bad_alloc(
            dict(Source="netlink", Counting="counters", LocalPort="1"), sweep=self.EVERY_POSITION,
            syn_recv=300)
        self.assertIn("tcpstates plugin: counting counters (", daemon.log())
        self.assert_values_unchanged(series, {
            "all": test_collectd.expected_counts(workload),
            "1-local": self.NO_SOCKETS}, clean_reads=3 + throws)

    def test_bad_alloc_in_reads_of_every_namespace(self):
        # Reads of every namespace of the host are long (a /proc scan, one collection per
        # namespace, each on a thread of its own when it is created): 40 positions of them.
        workload, daemon, series, throws = self.sweep_bad_alloc(
            dict(Source="netlink", AllNamespaces="true"), sweep=40)
        self.assertEqual(throws, 40)
        # The workload's namespace is the daemon's own ("host"): collectd runs inside it.
        self.assert_values_unchanged(
            {instance: names for instance, names in series.items() if instance.startswith("tcpstates-host")},
            {"host": test_collectd.expected_counts(workload)}, clean_reads=3 + throws)
