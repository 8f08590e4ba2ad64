"""The two programs attacked as an operator's machine would see them attacked: hostile
arguments against a capability-carrying copy, blocked pipes, odd signals, closed standard
fds, crafted process names meant for a terminal, hidden /proc, a mount namespace without
the cgroup filesystem, and many workers of one service. Each test failed before its fix.
"""

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

import diagnosis_workloads as dw
import harness
from execd_emulator import ExecdEmulator, parse_line

EXECD = "plugins/telegraf/tcpstates-execd"
CLI = "plugins/cli/tcpstates"
F_SETPIPE_SZ = 1031


def as_nobody(argv):
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + list(argv)


def terminal_controls(data):
    """The bytes of `data` a terminal would act on: C0 controls but LF, DEL, and C1 controls
    (UTF-8 c2 80..c2 9f)."""
    return re.findall(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]", data)


@contextlib.contextmanager
def holders(names_and_counts, **workload):
    """A workload whose CLOSE_WAIT holders (comm bytes, sockets) sit in a test cgroup."""
    with dw.test_cgroup() as cgroup:
        spec = ",".join(f"{name.hex()}:{count}" for name, count in names_and_counts)
        with harness.Workload(families="ipv4", close_wait_holder=spec, holder_cgroup=cgroup,
                              **workload) as w:
            w.settle()
            yield w, os.path.basename(cgroup)


def summary_fields(batch_lines):
    """The tcpstates_close_wait_summary fields, as Telegraf's parser reads them."""
    for line in batch_lines:
        if line.startswith(b"tcpstates_close_wait_summary "):
            return parse_line(line).fields
    return None


class CommandLineTest(unittest.TestCase):
    BAD = [["--bogus"], ["--top=abc"], ["--interval=abc"], ["--json=maybe"],
           ["--count=99999999999"], ["extra"], ["--", "extra"], ["--source"],
           ["--flagfile=/etc/passwd"], ["--fromenv=json"], ["--tryfromenv=json"],
           ["--undefok=bogus"], ["--helpfull"], ["--helpshort"], ["--help=x"]]

    def run_program(self, program, argv, **kwargs):
        return subprocess.run([harness.binary(program), *argv], capture_output=True, timeout=10,
                              stdin=subprocess.DEVNULL, **kwargs)

    def test_usage_errors_exit_2_with_one_line_in_both_programs(self):
        for program in (CLI, EXECD):
            for argv in self.BAD:
                if program == EXECD and argv[0] in ("--json=maybe", "--count=99999999999"):
                    argv = ["--once=maybe"] if argv[0] == "--json=maybe" else ["--top=99999999999"]
                with self.subTest(program=program, argv=argv):
                    result = self.run_program(program, argv)
                    self.assertEqual(result.returncode, 2, result.stderr)
                    self.assertEqual(result.stdout, b"")
                    self.assertRegex(result.stderr,
                                     rb"\AE! tcpstates(-execd)?: [^\n]+ \(see --help\)\n\Z")

    def test_help_and_version_are_ours_and_exit_0(self):
        for program, name in ((CLI, b"tcpstates"), (EXECD, b"tcpstates-execd")):
            with self.subTest(program=program):
                result = self.run_program(program, ["--help"])
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertTrue(result.stdout.startswith(name + b": "), result.stdout[:80])
                self.assertIn(b"\nUsage: " + name + b" ", result.stdout)
                self.assertIn(b"\nFlags:\n  --", result.stdout)
                # Nothing of abseil's: no build machine's source path, no --helpfull.
                self.assertNotIn(b"helpfull", result.stdout)
                self.assertNotIn(b".cc", result.stdout)
                version = self.run_program(program, ["--version"])
                self.assertEqual(version.returncode, 0)
                self.assertRegex(version.stdout, rb"\A" + name + rb" \d+\.\d+\.\d+\n\Z")

    def test_a_capability_carrying_copy_reveals_no_file_to_another_user(self):
        # The README's privileged setup, as an attacker finds it: the binary with
        # cap_sys_ptrace and cap_dac_read_search, run by `nobody`, and a root-only secret.
        harness.require_root()
        with harness.TempDir() as directory:
            os.chmod(directory, 0o755)
            secret = os.path.join(directory, "secret")
            marker = f"TOPSECRET-{os.getpid()}-{time.monotonic_ns()}"
            with open(secret, "w") as f:
                f.write(f"{marker}\n--json\n{marker}=1\n")
            os.chmod(secret, 0o600)
            for program in (CLI, EXECD):
                copy = os.path.join(directory, os.path.basename(program))
                shutil.copy(harness.binary(program), copy)
                os.chmod(copy, 0o755)
                subprocess.run(["setcap", "cap_sys_ptrace,cap_dac_read_search+ep", copy],
                               check=True)
                for argv in ([f"--flagfile={secret}"], ["--flagfile", secret],
                             [f"-flagfile={secret}"], [f"--fromenv={secret}"],
                             [f"--tryfromenv={secret}"], [f"--undefok={secret}"],
                             [f"--helpon={secret}"], [f"--helpmatch={secret}"], [secret],
                             [f"@{secret}"], [f"--measurement={secret}", "--bogus"],
                             [f"--source={secret}"], [f"--signal={secret}"]):
                    with self.subTest(program=program, argv=argv):
                        result = subprocess.run(as_nobody([copy, *argv]), capture_output=True,
                                                timeout=10, stdin=subprocess.DEVNULL)
                        self.assertEqual(result.returncode, 2, result.stderr)
                        self.assertNotIn(marker.encode(), result.stdout + result.stderr)


class BlockedOutputTest(unittest.TestCase):
    """A reader that stops reading must not keep execd from stopping."""

    def setUp(self):
        harness.require_root()

    def start_blocked(self, workload):
        """execd writing into a one-page pipe nobody reads, triggered until it blocks."""
        read_end, write_end = os.pipe()
        fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
        process = subprocess.Popen(workload.nsenter([harness.binary(EXECD)]), stdin=subprocess.PIPE,
                                   stdout=write_end, stderr=subprocess.PIPE)
        os.close(write_end)
        self.addCleanup(os.close, read_end)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        # A batch here is ~15 KiB (250 listening ports): the first already fills the pipe.
        process.stdin.write(b"\n")
        process.stdin.flush()

        def pipe_full():
            size = fcntl.ioctl(read_end, 0x541B, b"\0\0\0\0")  # FIONREAD
            return int.from_bytes(size, "little") >= 2048  # a piece ends at a line: < 4096
        self.assertTrue(harness.wait_for(pipe_full, 10), "the pipe never filled")
        return process, read_end

    def pending_output(self, read_end):
        os.set_blocking(read_end, False)
        data = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(read_end, 65536):
                data += chunk
        return data

    def test_sigterm_and_stdin_eof_stop_it_within_a_second_with_whole_lines(self):
        with harness.Workload(families="ipv4", listen=250) as workload:
            workload.settle()
            for stop in ("SIGTERM", "EOF"):
                with self.subTest(stop=stop):
                    process, read_end = self.start_blocked(workload)
                    time.sleep(0.2)  # it is now waiting for room, with a batch half written
                    self.assertIsNone(process.poll())
                    started = time.monotonic()
                    if stop == "SIGTERM":
                        process.send_signal(signal.SIGTERM)
                    else:
                        process.stdin.close()
                    self.assertEqual(process.wait(timeout=5), 0)
                    self.assertLess(time.monotonic() - started, 1.0)
                    stderr = process.stderr.read().decode()
                    self.assertIn("while stdout was blocked", stderr)
                    self.assertIn("bytes of the batch written, in whole lines", stderr)
                    data = self.pending_output(read_end)
                    self.assertGreater(len(data), 0)
                    self.assertTrue(data.endswith(b"\n"), data[-80:])
                    if stop == "SIGTERM":
                        process.stdin.close()


class SignalTest(unittest.TestCase):
    def setUp(self):
        harness.require_root()

    def test_a_signal_that_is_not_the_trigger_is_ignored_with_one_warning(self):
        with harness.Workload(families="ipv4", listen=3) as workload:
            for mode, telegraf_signal, foreign in (
                    ("stdin", "STDIN", [signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2]),
                    ("sighup", "SIGHUP", [signal.SIGUSR2, signal.SIGUSR1])):
                with self.subTest(mode=mode):
                    argv = workload.nsenter([harness.binary(EXECD), f"--signal={mode}"])
                    with ExecdEmulator(argv, signal=telegraf_signal) as execd:
                        self.assertTrue(harness.wait_for(
                            lambda: any("started" in l.text for l in execd.stderr), 5))
                        for sent in foreign + foreign:  # twice each: warned once each
                            execd.process.send_signal(sent)
                        def warned():
                            return [l.text for l in execd.stderr if "not the gather trigger" in l.text]
                        self.assertTrue(harness.wait_for(lambda: len(warned()) == len(foreign), 5),
                                        execd.stderr_text())
                        time.sleep(0.2)
                        self.assertIsNone(execd.process.poll(), "killed by a foreign signal")
                        for name, text in zip(sorted(s.name for s in foreign), sorted(warned())):
                            self.assertTrue(text.startswith(f"W! received {name}, which is not "
                                                            f"the gather trigger here "
                                                            f"(--signal={mode})"), text)
                        execd.trigger()
                        lines = execd.wait_for_lines(1)
                        self.assertTrue(lines and lines[0].raw.startswith(b"tcpstates "), lines)
                        result = execd.stop()
                        self.assertEqual((result.returncode, result.escalation), (0, None))


class ClosedStandardFdsTest(unittest.TestCase):
    def test_closed_stdout_is_reported_not_written_elsewhere(self):
        for program, argv in ((CLI, []), (EXECD, ["--once"])):
            with self.subTest(program=program):
                result = subprocess.run([harness.binary(program), *argv], capture_output=False,
                                        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        preexec_fn=lambda: os.close(1), timeout=10)
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertRegex(result.stderr, rb"E! .*(stdout|Bad file descriptor)")

    def test_closed_stdin_stops_execd_at_once(self):
        result = subprocess.run([harness.binary(EXECD)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, preexec_fn=lambda: os.close(0), timeout=10)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, b"")
        self.assertIn(b"I! stopping: stdin closed", result.stderr)


class TerminalSafetyTest(unittest.TestCase):
    # A process name that would retitle an xterm (OSC 0 ... BEL), clear the screen through
    # C1 CSI (U+009B), and ring the bell.
    NAME = b"\x1b]0;pwn\x07\xc2\x9b2J\x07\x7f"

    def setUp(self):
        harness.require_root()

    def test_no_control_reaches_stdout_from_either_program(self):
        with holders([(self.NAME, 3)]) as (workload, _):
            for argv in ([harness.binary(EXECD), "--once"], [harness.binary(CLI)],
                         [harness.binary(CLI), "--json"]):
                with self.subTest(argv=argv[1:]):
                    result = subprocess.run(workload.nsenter(argv), capture_output=True,
                                            timeout=30)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    self.assertIn(b"pwn", result.stdout, "the owner is named")
                    self.assertEqual(terminal_controls(result.stdout), [])
            # How each writes it (documented in the READMEs).
            lines = subprocess.run(workload.nsenter([harness.binary(EXECD), "--once"]),
                                   capture_output=True, timeout=30).stdout.split(b"\n")
            [owner] = [l for l in lines if l.startswith(b"tcpstates_close_wait,")]
            self.assertIn(b"comm=\\x1b]0;pwn\\x07\\xc2\\x9b2J\\x07\\x7f", owner)
            snapshot = json.loads(subprocess.run(workload.nsenter([harness.binary(CLI), "--json"]),
                                                 capture_output=True, timeout=30).stdout)
            [owner] = snapshot["close_wait_owners"]
            self.assertEqual(owner["comm"], "\x1b]0;pwn\x07\u009b2J\x07\x7f")


class OwnersTest(unittest.TestCase):
    def setUp(self):
        harness.require_root()

    def test_workers_of_one_service_are_one_owner_before_the_top_n(self):
        # 15 php-fpm workers with 2 CLOSE_WAIT sockets each, and one cron with 3.
        names = [(b"php-fpm", 2)] * 15 + [(b"cron", 3)]
        with holders(names) as (workload, unit):
            result = subprocess.run(workload.nsenter([harness.binary(EXECD), "--once", "--top=1"]),
                                    capture_output=True, timeout=30)
            self.assertEqual(result.returncode, 0, result.stderr)
            lines = result.stdout.split(b"\n")
            owners = [l for l in lines if l.startswith(b"tcpstates_close_wait,")]
            self.assertEqual(len(owners), 1, owners)
            self.assertRegex(owners[0], rb"^tcpstates_close_wait,comm=php-fpm,unit=" +
                             re.escape(unit.encode()) + rb" sockets=30i,pid=\d+i,processes=15i,age_seconds=[0-9.]+ ")
            summary = summary_fields(lines)
            self.assertEqual((summary["attributed"], summary["other"], summary["other_owners"],
                              summary["unattributed"]), (33, 3, 1, 0))
            cli = json.loads(subprocess.run(workload.nsenter([harness.binary(CLI), "--json",
                                                              "--top=1"]),
                                            capture_output=True, timeout=30).stdout)
            self.assertEqual([(o["comm"], o["sockets"], o["processes"])
                              for o in cli["close_wait_owners"]], [("php-fpm", 30, 15)])
            self.assertEqual((cli["close_wait_other"], cli["close_wait_other_owners"]), (3, 1))

    def test_hidden_processes_are_said_so(self):
        # /proc mounted hidepid=2 in a mount namespace of its own, the program as nobody: the
        # holders are in the sockets' cgroup but invisible.
        with holders([(b"hidden", 4)]) as (workload, _):
            script = ("mount -t proc -o hidepid=2 proc /proc && exec " +
                      " ".join(as_nobody([harness.binary(EXECD), "--once"])))
            result = subprocess.run(workload.nsenter(["unshare", "--mount", "--propagation",
                                                      "private", "sh", "-c", script]),
                                    capture_output=True, timeout=30)
            self.assertEqual(result.returncode, 0, result.stderr)
            summary = summary_fields(result.stdout.split(b"\n"))
            self.assertEqual(summary["unattributed"], 4)
            self.assertEqual(summary["processes_hidden"], 1)
            self.assertIn("1 processes hidden from this /proc (hidepid", summary["why"])

    def test_owner_search_is_narrowed_under_ip_netns_exec(self):
        # `ip netns exec` mounts a fresh /sys, hiding the cgroup filesystem from this mount
        # namespace: the hierarchy is reached through /proc/1/root instead.
        with holders([(b"leaky", 6)]) as (workload, unit):
            name = f"tcpstates-test-{os.getpid()}"
            subprocess.run(["ip", "netns", "attach", name, str(workload.process.pid)], check=True)
            self.addCleanup(subprocess.run, ["ip", "netns", "delete", name])
            result = subprocess.run(["ip", "netns", "exec", name, harness.binary(EXECD), "--once"],
                                    capture_output=True, timeout=30)
            self.assertEqual(result.returncode, 0, result.stderr)
            lines = result.stdout.split(b"\n")
            summary = summary_fields(lines)
            self.assertEqual(summary["owner_search"], "cgroup")
            self.assertEqual(summary["attributed"], 6)
            self.assertTrue(any(l.startswith(b"tcpstates_close_wait,comm=leaky,unit=" + unit.encode())
                                for l in lines))


if __name__ == "__main__":
    unittest.main()
