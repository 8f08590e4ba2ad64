"""Shared pieces of the integration tests: binaries, socket workloads, waiting.

Every test that measures sockets runs the measured program inside a fresh network namespace
created by tcpstates-workload (--new_netns), so the host's own sockets and sysctls are never
touched, and the namespace disappears with the workload process even when a test fails.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get("TCPSTATES_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "release"))

STATES = ["established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2", "time_wait",
          "close", "close_wait", "last_ack", "listen", "closing"]

# ss prints states with dashes and some abbreviations.
SS_STATE_NAMES = {"ESTAB": "established", "SYN-SENT": "syn_sent", "SYN-RECV": "syn_recv",
                  "FIN-WAIT-1": "fin_wait1", "FIN-WAIT-2": "fin_wait2", "TIME-WAIT": "time_wait",
                  "UNCONN": "close", "CLOSE": "close", "CLOSE-WAIT": "close_wait",
                  "LAST-ACK": "last_ack", "LISTEN": "listen", "CLOSING": "closing"}


def binary(relative_path):
    """Absolute path of a built program, e.g. binary('plugins/cli/tcpstates')."""
    path = os.path.abspath(os.path.join(BUILD_DIR, relative_path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is not built")
    return path


def require_root():
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root for network namespaces")


class Workload:
    """A tcpstates-workload process holding a known socket population in its own netns.

    Use as a context manager. `expected[family][state]` holds the counts by construction;
    `total(state)` sums families. `run(argv)` runs a program inside the namespace.
    """

    def __init__(self, families="ipv4,ipv6", netns=None, **counts):
        """netns: build the sockets inside this existing namespace (e.g. another Workload's
        .netns) instead of a fresh one, to add sockets to a running test and take them away
        again (leaving the context closes them); `expected` then counts only these sockets."""
        workload = binary("tests/workload/tcpstates-workload")
        options = [f"--families={families}"] + [f"--{name}={value}" for name, value in counts.items()]
        if netns:
            # nsenter execs the workload (no fork for --net), so it stays our child: it still
            # dies with us and stops on stdin EOF.
            argv = ["nsenter", f"--net={netns}", workload] + options
        else:
            argv = [workload, "--new_netns"] + options
        self.argv = argv
        self.expected = {}
        self.holder_pids = []  # CLOSE_WAIT holder processes (--close_wait_holder)
        self.netns = None
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        for line in self.process.stdout:
            words = line.split()
            if words[:1] == ["netns"]:
                self.netns = words[1]
            elif words[:1] == ["holder"]:
                self.holder_pids.append(int(words[1]))
            elif words[:1] == ["expect"]:
                self.expected[words[1]] = {k: int(v) for k, v in (w.split("=") for w in words[2:])}
            elif words == ["ready"]:
                break
        else:
            err = self.process.stderr.read()
            self.process.wait()
            raise RuntimeError(f"workload failed: {err}")
        for family in ("ipv4", "ipv6"):
            self.expected.setdefault(family, {state: 0 for state in STATES})
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()
        return False

    def total(self, state):
        return sum(self.expected[f][state] for f in self.expected)

    def connections(self):
        return sum(self.total(state) for state in STATES)

    def nsenter(self, argv):
        """argv prefixed so that it runs inside the workload's network namespace."""
        return ["nsenter", f"--net={self.netns}"] + list(argv)

    def run(self, argv, **kwargs):
        return subprocess.run(self.nsenter(argv), capture_output=True, text=True, timeout=60, **kwargs)

    def ss_counts(self):
        """{family: {state: count}} as `ss -tan` reports inside the namespace."""
        counts = {f: {s: 0 for s in STATES} for f in ("ipv4", "ipv6")}
        for flag, family in (("-4", "ipv4"), ("-6", "ipv6")):
            out = self.run(["ss", "-tan", flag]).stdout.splitlines()[1:]
            for line in out:
                counts[family][SS_STATE_NAMES[line.split()[0]]] += 1
        return counts

    def settle(self, timeout=10.0):
        """Waits until `ss` sees exactly the expected population (transitions on loopback,
        e.g. LAST_ACK -> CLOSED, finish asynchronously); returns what ss saw last."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.ss_counts()
            if seen == self.expected or time.monotonic() > deadline:
                return seen
            time.sleep(0.05)


def can_refuse_netlink_sockets():
    return os.uname().machine == "x86_64"


def refuse_netlink_sockets():
    """For subprocess's preexec_fn: a seccomp filter that makes socket(AF_NETLINK, ...) fail
    with EACCES in the child and everything it runs, as in a locked-down container, so a
    test can watch a program fall back to /proc. x86_64 only: check
    can_refuse_netlink_sockets() first."""
    import ctypes
    import struct
    audit_arch_x86_64, nr_socket, af_netlink, eacces = 0xC000003E, 41, 16, 13
    ld_abs, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET
    allow, refuse = 0x7FFF0000, 0x00050000 | eacces  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO
    program = [
        (ld_abs, 0, 0, 4), (jeq, 0, 4, audit_arch_x86_64),  # seccomp_data.arch
        (ld_abs, 0, 0, 0), (jeq, 0, 2, nr_socket),          # seccomp_data.nr
        (ld_abs, 0, 0, 16), (jeq, 1, 0, af_netlink),        # low word of args[0]: domain
        (ret, 0, 0, allow), (ret, 0, 0, refuse),
    ]
    filters = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *f) for f in program))
    fprog = struct.pack("HxxxxxxP", len(program), ctypes.addressof(filters))
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0 or \
            libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.c_char_p(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "installing the seccomp filter failed")


def wait_for(predicate, timeout, interval=0.1):
    """Polls predicate() until it returns a truthy value or timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="tcpstates-test-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False
