"""tcpstates-execd held to Telegraf's inputs.execd contract (execd_emulator.py), with its
numbers checked against a namespace workload's known population, `ss`, and a real InfluxDB.

Every run must end the way Telegraf ends it - stdin closed, exit 0 within 1 s, no SIGTERM or
SIGKILL needed - and must print only well-formed line protocol on stdout and only
level-prefixed lines on stderr.
"""

import os
import signal
import subprocess
import time
import unittest

import faults
import harness
from execd_emulator import ExecdEmulator
from influxdb import InfluxDB, require_influxd

EXECD = "plugins/telegraf/tcpstates-execd"

# Field order of a default line: headline first, then the other states in kernel order.
FIELD_ORDER = ["tcp_connections", "tcp_established", "tcp_time_wait", "tcp_close_wait",
               "tcp_listen", "tcp_syn_sent", "tcp_syn_recv", "tcp_fin_wait1", "tcp_fin_wait2",
               "tcp_close", "tcp_last_ack", "tcp_closing"]
# Telegraf inputs.netstat's fields that tcpstates can fill (netstat.go), in its order.
NETSTAT_FIELDS = ["tcp_" + state for state in harness.STATES]

# Bound-only sockets must not be counted (no tool shows them); SYN_SENT sockets must.
WORKLOAD = dict(listen=200, established=200, close_wait=200, time_wait=200, syn_recv=200,
                syn_sent=30, bound_only=20)


def execd_argv(workload, *flags):
    """The counts contract: these tests count lines per gather, so the diagnosis series (on by
    default; test_execd_diagnosis.py) are turned off."""
    return workload.nsenter([harness.binary(EXECD), "--noclose-wait-owners", "--nolisten-ports",
                             *flags])


def expected_fields(counts, netstat=False):
    """counts: {state: n} -> the fields a line must carry."""
    fields = {"tcp_" + state: n for state, n in counts.items()}
    if not netstat:
        fields["tcp_connections"] = sum(counts.values())
    return fields


def total_counts(workload):
    return {state: workload.total(state) for state in harness.STATES}


def wait_for_stderr(execd, text, timeout=5.0):
    return harness.wait_for(lambda: any(text in line.text for line in execd.stderr), timeout, 0.02)


class ExecdTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_root()
        harness.binary(EXECD)

    def assert_well_behaved(self, execd, stopped_by_us=True, allow_errors=False):
        """What every run owes Telegraf, whatever the test did to it."""
        if stopped_by_us:
            result = execd.stop_result or execd.stop()
            self.assertIsNone(result.escalation,
                              f"needed {result.escalation} to stop:\n{execd.stderr_text()}")
            self.assertEqual(result.returncode, 0, execd.stderr_text())
            self.assertLess(result.seconds, 1.0, "stdin EOF must stop it within 1 s")
        self.assertEqual(execd.parse_errors(), [], "every stdout line must be valid line protocol")
        self.assertNotIn(b"\r", execd.stdout_bytes, "LF only")
        if execd.stdout_bytes:
            self.assertTrue(execd.stdout_bytes.endswith(b"\n"), "a batch ends with its LF")
        self.assertEqual(execd.unprefixed_stderr(), [], "stderr lines need E!/W!/I! prefixes")
        if not allow_errors:
            self.assertEqual([l.text for l in execd.stderr if l.level == "error"], [])
        self.assertEqual(execd.trigger_errors, [])
        for point in execd.points():
            for key, kind in point.field_types.items():
                self.assertEqual(kind, "integer", f"{key} must be an i-suffixed integer")

    def assert_no_gather_owed(self, execd, count, lines_per_batch=1):
        """`count` lines so far, and no gather still owed for the triggers sent: one more
        trigger is served after whatever the earlier ones still owe (stdin and signals are
        read in order), so its batch must be exactly the next one - an extra gather, however
        late, would come first, and its timestamp would be older than this trigger."""
        sent_ns = time.time_ns()
        execd.trigger()
        lines = execd.wait_for_lines(count + lines_per_batch, timeout=10)
        self.assertEqual(len(lines), count + lines_per_batch, execd.stderr_text())
        for line in lines[count:]:
            self.assertGreaterEqual(line.point.timestamp, sent_ns - 5_000_000,
                                    "a line owed to an earlier trigger came after it")

    def assert_batch(self, batch, workload, by_family=False, measurement="tcpstates",
                     netstat=False):
        families = [None] + (["ipv4", "ipv6"] if by_family else [])
        self.assertEqual(len(batch), len(families), [line.raw for line in batch])
        timestamps = {line.point.timestamp for line in batch}
        self.assertEqual(len(timestamps), 1, "one gather, one timestamp")
        for line, family in zip(batch, families):
            point = line.point
            self.assertEqual(point.measurement, measurement)
            self.assertEqual(point.tags, {"family": family} if family else {})
            counts = workload.expected[family] if family else total_counts(workload)
            self.assertEqual(point.fields, expected_fields(counts, netstat), line.raw)
            self.assertEqual(list(point.fields), NETSTAT_FIELDS if netstat else FIELD_ORDER)


class StdinSignalTest(ExecdTestCase):
    def test_each_newline_gathers_once_with_exact_counts_that_influxdb_stores(self):
        require_influxd()
        with harness.Workload(**WORKLOAD) as workload, InfluxDB() as influx:
            self.assertEqual(workload.settle(), workload.expected, "ss must agree first")
            influx.create_database("execd")
            with ExecdEmulator(execd_argv(workload, "--by-family")) as execd:
                sent_at = []
                batches = []
                for _ in range(3):  # Telegraf's ticker, interval = "1s"
                    sent_at.append(time.time_ns())
                    before = len(execd.lines)
                    execd.trigger()
                    batches.append(execd.wait_for_lines(before + 3)[before:])
                    time.sleep(max(0.0, 1.0 - (time.time_ns() - sent_at[-1]) / 1e9))
                self.assertEqual(workload.ss_counts(), workload.expected)
                self.assert_well_behaved(execd)

            self.assertEqual(len(execd.lines), 9, "one batch of 3 lines per newline, no more")
            for i, batch in enumerate(batches):
                self.assert_batch(batch, workload, by_family=True)
                stamp = batch[0].point.timestamp
                # Stamped at the gather: after the newline was sent, before the line arrived.
                self.assertGreaterEqual(stamp, sent_at[i] - 5_000_000)
                self.assertLessEqual(stamp, batch[-1].received_at * 1e9 + 5_000_000)

            # Every line, exactly as printed, goes to a real InfluxDB 1.x.
            for batch in batches:
                status, body = influx.write("execd", b"".join(line.raw + b"\n" for line in batch))
                self.assertEqual(status, 204, body)
            rows = influx.query("execd", 'SELECT * FROM "tcpstates" GROUP BY "family"')
            self.assertEqual(len(rows), 9)
            for row in rows:
                family = row["tags"]["family"] or None
                counts = workload.expected[family] if family else total_counts(workload)
                stored = {key: row[key] for key in FIELD_ORDER}
                self.assertEqual(stored, expected_fields(counts), row)
            stamps = sorted({row["time"] for row in rows})
            self.assertEqual(stamps, [batch[0].point.timestamp for batch in batches])

    def test_a_burst_of_newlines_during_a_gather_is_one_more_gather(self):
        with harness.Workload(listen=20, established=20) as workload:
            with ExecdEmulator(execd_argv(workload)) as execd:
                execd.trigger()
                execd.wait_for_lines(1)
                # One write holding 50 newlines: one gather.
                execd.write_stdin(b"\n" * 50)
                execd.wait_for_lines(2)
                self.assert_no_gather_owed(execd, 2)
                # 100 separate newlines while the process cannot run (as if a gather took
                # that long): they coalesce into one gather, never a backlog.
                os.kill(execd.process.pid, signal.SIGSTOP)
                for _ in range(100):
                    execd.write_stdin(b"\n")
                os.kill(execd.process.pid, signal.SIGCONT)
                execd.wait_for_lines(4)
                self.assert_no_gather_owed(execd, 4)
                for line in execd.lines:
                    self.assert_batch([line], workload)
                self.assert_well_behaved(execd)
                self.assertEqual(len(execd.lines), 5, "no gather came after the last one asked for")

    def test_a_newline_followed_by_eof_still_prints_its_batch(self):
        with harness.Workload(listen=10) as workload:
            with ExecdEmulator(execd_argv(workload)) as execd:
                execd.write_stdin(b"\n")
                self.assert_well_behaved(execd)
                self.assertEqual(len(execd.lines), 1)
                self.assert_batch(execd.lines, workload)


class SignalModesTest(ExecdTestCase):
    def test_sighup_sigusr1_sigusr2_each_trigger_a_gather(self):
        with harness.Workload(listen=30, established=30, time_wait=30) as workload:
            workload.settle()
            for mode in ("SIGHUP", "SIGUSR1", "SIGUSR2"):
                with self.subTest(signal=mode):
                    argv = execd_argv(workload, f"--signal={mode.lower()}", "--by-family")
                    with ExecdEmulator(argv, signal=mode) as execd:
                        # Telegraf signals only after its first interval; the binary has set
                        # up its signalfd once it says it started.
                        self.assertTrue(wait_for_stderr(execd, "started: signal="))
                        execd.write_stdin(b"\n")  # not a trigger in signal modes
                        self.assert_no_gather_owed(execd, 0, lines_per_batch=3)
                        batches = execd.run_intervals(2, 0.3, lines_per_batch=3)
                        for batch in batches:
                            self.assert_batch(batch, workload, by_family=True)
                        # Signals sent while it cannot run coalesce too.
                        os.kill(execd.process.pid, signal.SIGSTOP)
                        for _ in range(5):
                            execd.trigger()
                        os.kill(execd.process.pid, signal.SIGCONT)
                        execd.wait_for_lines(12)
                        self.assert_no_gather_owed(execd, 12, lines_per_batch=3)
                        self.assert_well_behaved(execd)
                        self.assertEqual(len(execd.lines), 15)

    def test_none_gathers_on_its_own_at_interval_boundaries(self):
        with harness.Workload(listen=25, close_wait=25) as workload:
            workload.settle()
            argv = execd_argv(workload, "--signal=none", "--interval=1s")
            # Started half-way through a second: a timer counting from the start would gather
            # near the half seconds, an aligned one just after the whole seconds.
            time.sleep((1.5e9 - time.time_ns() % 1_000_000_000) % 1e9 / 1e9)
            with ExecdEmulator(argv, signal="none") as execd:
                execd.wait_for_lines(3, timeout=10)
                self.assert_well_behaved(execd)
            self.assertGreaterEqual(len(execd.lines), 3)
            stamps = [line.point.timestamp for line in execd.lines]
            for stamp in stamps:
                # Aligned: the gather starts after a whole second, well before the half (a
                # generous bound for a loaded sanitizer build; unaligned would be >= 500 ms).
                self.assertLess(stamp % 1_000_000_000, 400_000_000, stamps)
            seconds = [stamp // 1_000_000_000 for stamp in stamps]
            self.assertEqual(seconds, list(range(seconds[0], seconds[0] + len(seconds))))
            for line in execd.lines:
                self.assert_batch([line], workload)

    def test_once_prints_one_batch_and_exits(self):
        with harness.Workload(**WORKLOAD) as workload:
            workload.settle()
            with ExecdEmulator(execd_argv(workload, "--once", "--netstat-compat",
                                          "--by-family")) as execd:
                self.assertEqual(execd.wait_exit(5), 0)  # stdin still open: it did not wait
                execd.stop()
                self.assert_well_behaved(execd)
            self.assert_batch(execd.lines, workload, by_family=True, measurement="netstat",
                              netstat=True)


class LifecycleTest(ExecdTestCase):
    def test_stdin_closed_at_start_exits_zero_at_once(self):
        with harness.Workload(listen=5) as workload:
            for mode in ("stdin", "sighup", "none"):
                with self.subTest(signal=mode):
                    argv = execd_argv(workload, f"--signal={mode}")
                    with ExecdEmulator(argv, stdin_closed_at_start=True) as execd:
                        started = time.monotonic()
                        self.assertEqual(execd.wait_exit(1.0), 0, execd.stderr_text())
                        self.assertLess(time.monotonic() - started, 1.0)
                        execd.stop()
                        self.assert_well_behaved(execd)
                        self.assertEqual(execd.stdout_bytes, b"")
            # No stdin at all (fd 0 closed): read as EOF, not as some other descriptor.
            result = subprocess.run(execd_argv(workload), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, timeout=5,
                                    preexec_fn=lambda: os.close(0))
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(b"I! stopping: stdin closed", result.stderr)

    def test_sigterm_and_sigint_stop_it_like_eof(self):
        with harness.Workload(listen=5) as workload:
            for stop_signal in (signal.SIGTERM, signal.SIGINT):
                with self.subTest(signal=stop_signal.name):
                    with ExecdEmulator(execd_argv(workload)) as execd:
                        execd.trigger()
                        execd.wait_for_lines(1)
                        started = time.monotonic()
                        execd.process.send_signal(stop_signal)
                        self.assertEqual(execd.wait_exit(1.0), 0)
                        self.assertLess(time.monotonic() - started, 1.0)
                        execd.stop()
                        self.assert_well_behaved(execd)
                        self.assertTrue(wait_for_stderr(execd, f"stopping: {stop_signal.name}"))

    def test_sigterm_during_a_gather_finishes_the_batch_then_exits(self):
        # Every netlink receive made 150 ms slow (faults.py): a gather takes 300 ms or more,
        # and SIGTERM is sent once its dump request has gone out, so it lands mid-gather -
        # which the fault library's log proves, receive by receive.
        with harness.Workload(listen=20, established=20, close_wait=20, time_wait=20) as workload, \
                harness.TempDir() as directory:
            workload.settle()
            log = os.path.join(directory, "faults.log")
            for attempt in range(2):
                with self.subTest(attempt=attempt):
                    env = faults.env(log=log, recv_delay_ms=150)
                    with ExecdEmulator(execd_argv(workload, "--by-family", "--counting=full"),
                                       env=env) as execd:
                        execd.trigger()
                        execd.wait_for_lines(3)
                        requests = len(faults.events(log, "request"))
                        execd.trigger()
                        self.assertTrue(harness.wait_for(
                            lambda: len(faults.events(log, "request")) > requests, 5, 0.002))
                        sent_ns = time.monotonic_ns()
                        execd.process.send_signal(signal.SIGTERM)
                        self.assertEqual(execd.wait_exit(1.0), 0, execd.stderr_text())
                        execd.stop()
                        self.assert_well_behaved(execd)
                        # The asked-for batch was completed, whole, then it stopped.
                        self.assertEqual(len(execd.lines), 6)
                        self.assert_batch(execd.lines[3:], workload, by_family=True)
                        # SIGTERM came after the gather's request and before its last receive.
                        requested = faults.events(log, "request")[-1][0]
                        received = faults.events(log, "recv")[-1][0]
                        self.assertLess(requested, sent_ns)
                        self.assertLess(sent_ns, received)
                    os.unlink(log)

    def test_stdout_closed_by_the_reader_ends_it_cleanly(self):
        with harness.Workload(listen=5) as workload:
            # Idle when the reader goes away: noticed without a write.
            with ExecdEmulator(execd_argv(workload)) as execd:
                execd.trigger()
                execd.wait_for_lines(1)
                execd.close_stdout_reader()
                started = time.monotonic()
                self.assertEqual(execd.wait_exit(1.0), 0, execd.stderr_text())
                self.assertLess(time.monotonic() - started, 1.0)
                execd.stop()
                self.assert_well_behaved(execd)
                self.assertTrue(wait_for_stderr(execd, "stdout closed by the reader"))
            # Reader gone while it runs in a signal mode, then triggered: same clean exit,
            # no spinning on a dead pipe.
            with ExecdEmulator(execd_argv(workload, "--signal=sigusr1"), signal="SIGUSR1") as execd:
                self.assertTrue(wait_for_stderr(execd, "started"))
                os.kill(execd.process.pid, signal.SIGSTOP)
                execd.close_stdout_reader()
                execd.trigger()
                os.kill(execd.process.pid, signal.SIGCONT)
                self.assertEqual(execd.wait_exit(1.0), 0, execd.stderr_text())
                execd.stop()
                self.assert_well_behaved(execd)
            # A write that fails with EPIPE (--once into a pipe nobody reads).
            read_end, write_end = os.pipe()
            os.close(read_end)
            result = subprocess.run(execd_argv(workload, "--once"), stdout=write_end,
                                    stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=5)
            os.close(write_end)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(b"I! stdout closed by the reader; exiting", result.stderr)

    def test_bad_command_lines_exit_2_with_usage(self):
        binary = harness.binary(EXECD)
        for argv in (["--bogus"], ["--by-familly"], ["--signal=sigkill"], ["--interval=soon"],
                     ["--interval=0s"], ["--interval"], ["--once=maybe"], ["--source=ebpf"],
                     ["--measurement=#comment"], ["positional"], ["--", "positional"],
                     ["--counting=sometimes"], ["--top=-1"], ["--top=many"],
                     ["--max-listen-ports=0"], ["--port-pressure=maybe"],
                     # counters cannot give what these need: every socket.
                     ["--counting=counters", "--by-family"],
                     ["--counting=counters", "--port-pressure"]):
            with self.subTest(argv=argv):
                result = subprocess.run([binary, *argv], stdin=subprocess.PIPE,
                                        capture_output=True, timeout=5)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(result.stdout, b"")
                # One line, with Telegraf's error prefix, pointing at --help.
                self.assertRegex(result.stderr, rb"\AE! tcpstates-execd: [^\n]+ \(see --help\)\n\Z")
        result = subprocess.run([binary, "--version"], capture_output=True, timeout=5)
        self.assertEqual(result.returncode, 0)
        self.assertTrue(result.stdout.startswith(b"tcpstates-execd "), result.stdout)


class FlagSpellingTest(ExecdTestCase):
    def test_both_spellings_of_each_flag_do_what_it_says(self):
        """Each documented flag, spelled with - and with _, changes the batch as documented
        (and the default does not already look that way)."""
        def measurements(lines):
            return [line.point.measurement for line in lines]

        cases = {  # spellings -> a check of (batch lines, stderr)
            ("--by-family", "--by_family"): lambda lines, _: sorted(
                str(l.point.tags.get("family")) for l in lines if l.point.measurement == "tcpstates")
            == ["None", "ipv4", "ipv6"],
            ("--netstat-compat", "--netstat_compat"): lambda lines, _:
            "netstat" in measurements(lines) and "tcpstates" not in measurements(lines),
            ("--close-wait-owners=false", "--noclose-wait-owners", "--noclose_wait_owners",
             "--close_wait_owners=false"): lambda lines, _:
            not any(m.startswith("tcpstates_close_wait") for m in measurements(lines)),
            ("--nolisten-ports", "--nolisten_ports", "--listen_ports=false"): lambda lines, _:
            not any(m.startswith("tcpstates_listen") for m in measurements(lines)),
            ("--max-listen-ports=1", "--max_listen_ports=1"): lambda lines, _:
            measurements(lines).count("tcpstates_listen") == 1,
            ("--port-pressure", "--port_pressure"): lambda lines, _:
            "tcpstates_port_pressure" in measurements(lines),
            ("--counting=full",): lambda _, stderr: "I! counting: full" in stderr,
        }
        with harness.Workload(families="ipv4", listen=3, established=2, close_wait=2) as workload:
            workload.settle()

            def once(*flags):
                result = workload.run([harness.binary(EXECD), "--once", *flags])
                self.assertEqual(result.returncode, 0, (flags, result.stderr))
                with ExecdEmulator(["cat"]) as parse:  # the emulator's line-protocol parser
                    parse.write_stdin(result.stdout.encode())
                    parse.stop()
                self.assertEqual(parse.parse_errors(), [])
                return parse.lines, result.stderr
            default = once()
            for spellings, check in cases.items():
                with self.subTest(flag=spellings[0]):
                    self.assertFalse(check(*default), f"the default already passes {spellings[0]}")
                    for flag in spellings:
                        self.assertTrue(check(*once(flag)), flag)


class NetstatCompatTest(ExecdTestCase):
    def test_netstat_measurement_and_fields_reach_influxdb(self):
        require_influxd()
        with harness.Workload(**WORKLOAD) as workload, InfluxDB() as influx:
            workload.settle()
            influx.create_database("netstat")
            with ExecdEmulator(execd_argv(workload, "--netstat-compat")) as execd:
                batches = execd.run_intervals(2, 0.2, lines_per_batch=1)
                self.assert_well_behaved(execd)
            for batch in batches:
                self.assert_batch(batch, workload, measurement="netstat", netstat=True)
                status, body = influx.write("netstat", batch[0].raw + b"\n")
                self.assertEqual(status, 204, body)
            rows = influx.query("netstat", 'SELECT * FROM "netstat"')
            self.assertEqual(len(rows), 2)
            for row in rows:
                stored = {key: value for key, value in row.items()
                          if key.startswith("tcp_")}
                self.assertEqual(stored, expected_fields(total_counts(workload), netstat=True))


if __name__ == "__main__":
    unittest.main()
