"""A short soak of the real tcpstates-execd, in CI: 2,000 gathers under socket churn, and its
open fds and memory stay flat (the 10,000-gather soak at scale stays in bench/soak).

The execd runs as Telegraf runs it (--signal=stdin, the diagnosis series on by default) plus
--port-pressure (which keeps a per-endpoint table), in a private namespace where churn.py
opens 100 connections a second and ends them every way (reset, TIME_WAIT on either side, and
every 25th left in CLOSE_WAIT by its owner, closed a generation at a time every 2 s) and opens
and closes a listener every 100, so the CLOSE_WAIT owner search (directed by the churn's own
cgroup), new and vanished listeners and port pressure all run, gather after gather. Each next gather is asked for as soon as the previous batch's first line arrived: a
newline sent during a gather is owed one gather after it, so there are exactly as many batches
as newlines. Every 100 gathers, once the execd waits for its next trigger again with its batch
read (ExecdEmulator.at_rest), its open fds and VmRSS are sampled.
"""

import os
import subprocess
import sys
import unittest

import diagnosis_workloads
import harness
from execd_emulator import ExecdEmulator

EXECD = "plugins/telegraf/tcpstates-execd"
CHURN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "churn.py")
GATHERS = 2000
SAMPLE_EVERY = 100
WARM_UP = 500  # gathers before the baseline: allocator pools and tables reach their size
# A gather of a few thousand sockets takes milliseconds (tens under ASan): a batch that has not
# begun after this long is a hang.
BATCH_TIMEOUT = 30
# RSS may move by a few pages (the allocator returns and takes back memory); a leak of even 1
# KiB a gather adds 1.5 MiB over the measured 1,500 gathers.
RSS_SLACK_KIB = 512


def proc_text(pid, name):
    with open(f"/proc/{pid}/{name}") as f:
        return f.read()


def vm_rss_kib(pid):
    for line in proc_text(pid, "status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class SoakTest(unittest.TestCase):
    def setUp(self):
        harness.require_root()
        harness.binary(EXECD)

    def test_gathers_under_churn_keep_fds_and_memory_flat(self):
        workload = self.enterContext(harness.Workload(listen=5, established=5))
        self.assertEqual(workload.settle(), workload.expected)
        cgroup = self.enterContext(diagnosis_workloads.test_cgroup())
        churn = subprocess.Popen(workload.nsenter([sys.executable, CHURN, "--rate=100", "--close-wait-every=25",
                                                   "--close-wait-hold=2", f"--cgroup={cgroup}"]),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(churn.stdout.close)
        self.addCleanup(churn.wait, 10)
        self.addCleanup(churn.stdin.close)
        self.assertEqual(churn.stdout.readline(), "ready\n")
        # Under ASan, freed memory waits in a quarantine (256 MiB) before reuse, which RSS would
        # show as growth: none, so that RSS shows what the program keeps (harmless elsewhere).
        asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0",
                                      "thread_local_quarantine_size_kb=0"]))
        execd = self.enterContext(ExecdEmulator(workload.nsenter(
            [harness.binary(EXECD), "--signal=stdin", "--port-pressure"]), env={"ASAN_OPTIONS": asan}))
        pid = execd.process.pid  # nsenter --net execs the program: no fork
        self.assertTrue(harness.wait_for(
            lambda: any("started: signal=" in line.text for line in execd.stderr), 10, 0.02),
            execd.stderr_text())

        headlines = 0  # first lines of batches seen so far (tcpstates, no family tag)
        scanned = 0

        def batches_begun():
            nonlocal headlines, scanned
            for line in execd.lines[scanned:]:
                point = line.point
                if point and point.measurement == "tcpstates" and "family" not in point.tags:
                    headlines += 1
            scanned = len(execd.lines)
            return headlines

        samples = []  # (gather, fds, RSS KiB), from the first gather on
        for gather in range(1, GATHERS + 1):
            execd.trigger()
            with execd._lock:
                self.assertTrue(execd._lock.wait_for(lambda: batches_begun() >= gather, BATCH_TIMEOUT),
                                f"gather {gather} did not begin:\n{execd.stderr_text()[-2000:]}")
            if gather == 1 or gather % SAMPLE_EVERY == 0:
                self.assertTrue(harness.wait_for(execd.at_rest, 10, 0.002), f"gather {gather} never ended")
                samples.append((gather, len(os.listdir(f"/proc/{pid}/fd")), vm_rss_kib(pid)))
                self.assert_flat(samples)

        churn.stdin.close()
        made = churn.stdout.read()
        self.assertEqual(churn.wait(10), 0)
        stopped = execd.stop()
        self.assertEqual((stopped.returncode, stopped.escalation), (0, None), execd.stderr_text())
        self.assertEqual(execd.parse_errors(), [])
        self.assertEqual(execd.unprefixed_stderr(), [])  # a sanitizer report would be here
        self.assertEqual([line.text for line in execd.stderr if line.level in ("error", "warn")], [])
        self.assertEqual(batches_begun(), GATHERS, "one batch per newline, no more")
        self.assertEqual(len({line.point.timestamp for line in execd.lines}), GATHERS)

        # The churn was seen: CLOSE_WAIT owners (the churn process), listeners coming and
        # going, and port pressure, in many gathers.
        measurements = [line.point.measurement for line in execd.lines]
        made = int(made.split()[1])
        for measurement, at_least in (("tcpstates_close_wait", GATHERS // 4),
                                      ("tcpstates_listen_new", made // 100 // 2),
                                      ("tcpstates_listen_vanished", made // 100 // 2),
                                      ("tcpstates_port_pressure", GATHERS)):
            self.assertGreaterEqual(measurements.count(measurement), at_least, (measurement, made))

        print(f"\n{made} connections churned; {report(samples)}", file=sys.stderr)

    def assert_flat(self, samples):
        # fds: exactly the same at every rest (one more a gather would be 100 more a sample).
        self.assertEqual({f for _, f, _ in samples}, {samples[0][1]}, report(samples))
        # memory: no growth after the warm-up beyond a few pages.
        baseline = [s for s in samples if s[0] >= WARM_UP]
        if baseline:
            self.assertLessEqual(max(r for _, _, r in baseline) - baseline[0][2], RSS_SLACK_KIB,
                                 report(samples))


def report(samples):
    return "\n".join(f"gather {g}: fds={f} rss_kib={r}" for g, f, r in samples)


if __name__ == "__main__":
    unittest.main()
