"""Netlink sock_diag failures on demand, for the programs under test: the environment that
preloads tests/faults/libtcpstates-netlink-faults.so (its comment lists the faults), and its
log of what the program asked netlink and what it got."""

import os

import harness

LIBRARY = "tests/faults/libtcpstates-netlink-faults.so"
THROWING_NEW = "tests/faults/libtcpstates-throwing-new.so"


def env(log=None, **faults):
    """os.environ plus the fault library preloaded (after the sanitizer runtimes in a sanitizer
    build: they must come first) and TCPSTATES_FAULT_<NAME>=value for each fault, e.g.
    env(socket=errno.EACCES), env(legacy=errno.EINVAL), env(dump="2:2:5"),
    env(recv_delay_ms=200), with log= the path of the library's log."""
    preload = [p for p in os.environ.get("TCPSTATES_SANITIZER_PRELOAD", "").split(":") if p]
    result = dict(os.environ, LD_PRELOAD=":".join(preload + [harness.binary(LIBRARY)]))
    for name, value in faults.items():
        result[f"TCPSTATES_FAULT_{name.upper()}"] = str(value)
    if log:
        result["TCPSTATES_FAULT_LOG"] = log
    return result


def throwing_new_env(sweep, log):
    """os.environ with tests/faults/libtcpstates-throwing-new.so preloaded: collectd's reads
    4, 6, ..., 2*sweep+2 each throw std::bad_alloc from one allocation, at positions spread from
    a read's first allocation to its last, the reads between them clean (throwing_new.cc); its
    log goes to `log`. It comes before the sanitizer runtimes, or theirs would be the operator
    new the plugin calls; ASan is told not to insist on coming first."""
    preload = [p for p in os.environ.get("TCPSTATES_SANITIZER_PRELOAD", "").split(":") if p]
    result = dict(os.environ, LD_PRELOAD=":".join([harness.binary(THROWING_NEW)] + preload),
                  TCPSTATES_FAULT_NEW_SWEEP=str(sweep), TCPSTATES_FAULT_NEW_LOG=log)
    if preload:
        result["ASAN_OPTIONS"] = ":".join(
            filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
    return result


def read_log(path):
    """[(CLOCK_MONOTONIC ns, [words])] from the library's log ([] before its first line)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [(int(line.split()[0]), line.split()[1:]) for line in f if line.strip()]


def events(path, kind):
    """The log entries whose first word is kind ("request", "recv", "fail", "refuse")."""
    return [(at, words) for at, words in read_log(path) if words[0] == kind]
