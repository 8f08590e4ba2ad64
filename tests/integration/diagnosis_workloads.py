"""Workloads for the diagnosis tests shared by every adapter: CLOSE_WAIT holders with hostile
names in a cgroup of their own, and the helpers to read what each adapter must report."""

import contextlib
import os
import time

import harness

# Attacker-controlled process names (comm: at most 15 bytes, any byte but NUL): every
# character that could split a line protocol line, forge a tag or a CSV/JSON field.
HOSTILE_NAME = b'a b,c=d"e\\f\ng'
SECOND_NAME = "w\u00f6rker \u2603".encode()  # non-ASCII UTF-8
HOSTILE_SOCKETS = 7
SECOND_SOCKETS = 5


def cgroup2_mount():
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            before, _, after = line.partition(" - ")
            if after.split()[:1] == ["cgroup2"]:
                return before.split()[4]
    return None


@contextlib.contextmanager
def test_cgroup():
    """A fresh cgroup v2 directory for the holders; removed once its processes are gone."""
    mount = cgroup2_mount()
    if mount is None:
        raise RuntimeError("no cgroup2 mount: CLOSE_WAIT attribution by cgroup cannot be tested")
    path = os.path.join(mount, f"tcpstates-test-{os.getpid()}-{time.monotonic_ns()}")
    os.mkdir(path)
    try:
        yield path
    finally:
        for _ in range(100):
            try:
                os.rmdir(path)
                break
            except OSError:
                time.sleep(0.05)


@contextlib.contextmanager
def close_wait_holders(**extra):
    """A Workload with two CLOSE_WAIT holders (hostile and non-ASCII names) in a test cgroup.
    Yields (workload, holders) with holders = [(pid, name_bytes, sockets, unit)]."""
    with test_cgroup() as cgroup:
        spec = f"{HOSTILE_NAME.hex()}:{HOSTILE_SOCKETS},{SECOND_NAME.hex()}:{SECOND_SOCKETS}"
        with harness.Workload(families="ipv4", close_wait_holder=spec, holder_cgroup=cgroup,
                              **extra) as workload:
            holders = []
            for pid in workload.holder_pids:
                with open(f"/proc/{pid}/comm", "rb") as comm:
                    name = comm.read()[:-1]
                sockets = HOSTILE_SOCKETS if name == HOSTILE_NAME else SECOND_SOCKETS
                holders.append((pid, name, sockets, os.path.basename(cgroup)))
            assert sorted(h[1] for h in holders) == sorted([HOSTILE_NAME, SECOND_NAME]), holders
            yield workload, holders
