"""Ports and listeners (issue 15), exact in namespace workloads, through every adapter and its
real consumer: per-port state counts (CLI JSON in both countings, the execd through InfluxDB,
collectd next to Debian's own tcpconns with the same LocalPort/RemotePort), accept-queue
length, backlog and fill of a listener that never accepts, listen overflows after more
clients than its queue takes, queued bytes equal to the sums of ss's Recv-Q and Send-Q, a new
listener named with its pid, comm and unit, and CLOSE_WAIT ages within 1 s of the truth.

Expected values come from port_workload.py's construction (and are checked against `ss`
first), never from the code under test.
"""

import json
import os
import subprocess
import sys
import time
import unittest

import diagnosis_workloads as dw
import harness
from execd_emulator import ExecdEmulator
from influxdb import InfluxDB, require_influxd
from test_collectd import (HOSTNAME, TCPCONNS_NAMES, Collectd, Notifications, csv_series,
                           require_collectd, DAEMON_TIMEOUT)
import port_workload as pw

CLI = "plugins/cli/tcpstates"
EXECD = "plugins/telegraf/tcpstates-execd"
WORKLOAD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "port_workload.py")
UNUSED_PORT = 7999  # configured, nothing uses it: every state 0
LOCAL_PORTS = [pw.PORT_ESTABLISHED, pw.PORT_CLOSE_WAIT, pw.PORT_TIME_WAIT, pw.PORT_SYN_RECV,
               pw.PORT_QUEUE, pw.PORT_DATA, UNUSED_PORT]
REMOTE_PORTS = LOCAL_PORTS
PORT_FLAGS = [f"--local-ports={','.join(map(str, LOCAL_PORTS))}",
              f"--remote-ports={','.join(map(str, REMOTE_PORTS))}"]
NEW_LISTENER_PORT = 7100
NEW_LISTENER_NAME = "new-listener"


def full_counts(states):
    """Every state, zeros included, from {state: n}."""
    return {state: states.get(state, 0) for state in harness.STATES}


def expected_ports(expected):
    """{(direction, port): {state: n}} for every configured port."""
    ports = {}
    for direction, configured in (("local", LOCAL_PORTS), ("remote", REMOTE_PORTS)):
        for port in configured:
            ports[(direction, port)] = full_counts(expected[direction].get(str(port), {}))
    return ports


def ss_rows(workload):
    """(state, recv_q, send_q, local_port, remote_port) for every socket `ss -tan` shows."""
    rows = []
    for line in workload.run(["ss", "-tan"]).stdout.splitlines()[1:]:
        state, recv_q, send_q, local, peer = line.split()[:5]
        rows.append((harness.SS_STATE_NAMES[state], int(recv_q), int(send_q),
                     int(local.rsplit(":", 1)[1]), int(peer.rsplit(":", 1)[1]) if peer[-1] != "*" else 0))
    return rows


def ss_ports(workload):
    """What ss shows per configured port, in expected_ports's shape."""
    ports = {}
    rows = ss_rows(workload)
    for direction, configured, column in (("local", LOCAL_PORTS, 3), ("remote", REMOTE_PORTS, 4)):
        for port in configured:
            counts = full_counts({})
            for row in rows:
                if row[column] == port:
                    counts[row[0]] += 1
            ports[(direction, port)] = counts
    return ports


def ss_queued_bytes(workload):
    """(Recv-Q sum, Send-Q sum) over the sockets that are not listening: node_exporter's
    tcpstat rx_queued_bytes / tx_queued_bytes."""
    rows = [row for row in ss_rows(workload) if row[0] != "listen"]
    return sum(row[1] for row in rows), sum(row[2] for row in rows)


def while_queues_hold_still(workload, measure, attempts=20):
    """Runs measure() between two readings of ss's queue sums until both readings agree (a
    stalled sender's queue can still drain a little through window probes); returns
    (measure()'s result, the sums it must equal)."""
    for _ in range(attempts):
        before = ss_queued_bytes(workload)
        result = measure()
        if ss_queued_bytes(workload) == before:
            return result, before
        time.sleep(0.2)
    raise AssertionError("the queues never held still while measured")


def listen_overflows(workload):
    """TcpExt ListenOverflows of the namespace, read by `cat` inside it."""
    lines = workload.run(["cat", "/proc/net/netstat"]).stdout.splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split()))["ListenOverflows"])
    raise AssertionError("no TcpExt in /proc/net/netstat")


class PortWorkload:
    """port_workload.py in a fresh namespace (an empty tcpstates-workload holds it)."""

    def __init__(self, test):
        self.test = test

    def __enter__(self):
        self.namespace = harness.Workload(families="ipv4").__enter__()
        self.process = subprocess.Popen(self.namespace.nsenter([sys.executable, WORKLOAD_SCRIPT]),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.expected = json.loads(self.process.stdout.readline())["expected"]
        # TIME_WAIT and LAST_ACK transitions finish asynchronously on loopback.
        want = expected_ports(self.expected)
        harness.wait_for(lambda: ss_ports(self) == want, 10)
        self.test.assertEqual(ss_ports(self), want, "ss disagrees with the construction")
        return self

    def __exit__(self, *exc):
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()
        self.namespace.__exit__(*exc)
        return False

    def run(self, argv):
        return self.namespace.run(argv)

    def nsenter(self, argv):
        return self.namespace.nsenter(argv)

    def overflow(self, clients):
        self.process.stdin.write(f"overflow {clients}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "done\n"


class NewListener:
    """A process named NEW_LISTENER_NAME, in a test cgroup, listening on NEW_LISTENER_PORT."""

    def __init__(self, workload, cgroup):
        self.workload, self.cgroup = workload, cgroup

    def __enter__(self):
        procs = os.path.join(self.cgroup, "cgroup.procs")

        def enter_cgroup():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        self.process = subprocess.Popen(
            self.workload.nsenter([sys.executable, WORKLOAD_SCRIPT, f"--listen={NEW_LISTENER_PORT}",
                                   f"--name={NEW_LISTENER_NAME}"]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=enter_cgroup)
        words = self.process.stdout.readline().split()
        assert words[0] == "ready", words
        self.pid = int(words[1])
        self.unit = os.path.basename(self.cgroup)
        return self

    def __exit__(self, *exc):
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()
        return False


def port_rows(json_ports):
    return {(p["direction"], p["port"]): p["states"] for p in json_ports}


def listening(rows, port, family="ipv4"):
    [found] = [r for r in rows if r["port"] == port and r["family"] == family]
    return found


def execd_points(batch, measurement):
    return [line.point for line in batch if line.point and line.point.measurement == measurement]


class PortCountsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_root()
        harness.binary(CLI)

    def test_cli_per_port_counts_queues_and_queued_bytes_both_countings(self):
        with PortWorkload(self) as workload:
            want = expected_ports(workload.expected)
            for counting in ("full", "counters"):
                with self.subTest(counting=counting):
                    result = workload.run([harness.binary(CLI), "--json", f"--counting={counting}",
                                           "--noport-pressure", *PORT_FLAGS])
                    self.assertEqual(result.returncode, 0, result.stderr)
                    document = json.loads(result.stdout)
                    self.assertEqual(port_rows(document["ports"]), want)
                    # Totals per port are the sums of their states.
                    for port in document["ports"]:
                        self.assertEqual(port["total"], sum(port["states"].values()))
                    queue = listening(document["listening"], pw.PORT_QUEUE)
                    self.assertEqual((queue["queue"], queue["backlog"]),
                                     (pw.BACKLOG + 1, pw.BACKLOG))
                    self.assertEqual(queue["fill"], 1.0)  # backlog + 1 queued: full
                    idle = listening(document["listening"], pw.PORT_ESTABLISHED)
                    self.assertEqual((idle["queue"], idle["backlog"], idle["fill"]), (0, 64, 0.0))

            result, before = while_queues_hold_still(workload, lambda: workload.run(
                [harness.binary(CLI), "--json", "--queued-bytes", *PORT_FLAGS]))
            self.assertGreaterEqual(before[0], pw.UNREAD_BYTES)
            self.assertGreater(before[1], 0)
            queued = json.loads(result.stdout)["queued_bytes"]
            self.assertEqual((queued["all"]["rx"], queued["all"]["tx"]), before)
            self.assertEqual(queued["ipv6"], {"rx": 0, "tx": 0})
            self.assertEqual(port_rows(json.loads(result.stdout)["ports"]), want)

    def test_cli_table_names_ports_and_the_full_accept_queue(self):
        with PortWorkload(self) as workload:
            result = workload.run([harness.binary(CLI), *PORT_FLAGS])
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(f"  local  {pw.PORT_CLOSE_WAIT:5d} {1 + pw.CLOSE_WAIT:8d}  "
                          f"CLOSE_WAIT {pw.CLOSE_WAIT}, LISTEN 1\n", result.stdout)
            self.assertIn(f"  remote {pw.PORT_TIME_WAIT:5d} {pw.TIME_WAIT:8d}  "
                          f"TIME_WAIT {pw.TIME_WAIT}\n", result.stdout)
            self.assertIn(f"  local  {UNUSED_PORT:5d} {0:8d}  no sockets\n", result.stdout)
            self.assertIn(f"  accept queue: ipv4 port {pw.PORT_QUEUE} (1 socket) "
                          f"{pw.BACKLOG + 1} waiting, backlog {pw.BACKLOG} (100% full)\n",
                          result.stdout)

    def test_too_many_ports_is_a_usage_error(self):
        ports = ",".join(str(p) for p in range(1, 66))
        for program in (CLI, EXECD):
            result = subprocess.run([harness.binary(program), f"--local-ports={ports}"],
                                    capture_output=True, text=True)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn("at most 64 ports", result.stderr)


class ExecdPortsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_root()
        harness.binary(EXECD)
        require_influxd()
        cls.influx = InfluxDB().start()

    @classmethod
    def tearDownClass(cls):
        cls.influx.stop()

    def write(self, database, raw_lines):
        self.influx.create_database(database)
        status, body = self.influx.write(database, b"".join(line + b"\n" for line in raw_lines))
        self.assertEqual(status, 204, body)

    def gather(self, emulator):
        """One trigger -> its batch (without --port-pressure, every batch ends with
        tcpstates_listen_summary)."""
        before = len(emulator.lines)
        emulator.trigger()
        lines = harness.wait_for(
            lambda: (any(l.point and l.point.measurement == "tcpstates_listen_summary"
                         for l in emulator.lines[before:]) and emulator.lines[before:]), 30)
        self.assertTrue(lines, emulator.stderr_text())
        return lines

    def test_per_port_counts_and_accept_queue_through_influxdb(self):
        with PortWorkload(self) as workload:
            with ExecdEmulator(workload.nsenter([harness.binary(EXECD), "--queued-bytes",
                                                 *PORT_FLAGS])) as emulator:
                batch, before = while_queues_hold_still(workload, lambda: self.gather(emulator))
                result = emulator.stop()
            self.assertEqual(result.returncode, 0, emulator.stderr_text())
            self.assertEqual(emulator.parse_errors(), [])
            self.write("ports", [line.raw for line in batch])

        rows = self.influx.query("ports", "SELECT * FROM tcpstates_port GROUP BY direction, port")
        stored = {(row["tags"]["direction"], int(row["tags"]["port"])):
                  {state: row["tcp_" + state] for state in harness.STATES} for row in rows}
        self.assertEqual(stored, expected_ports(workload.expected))
        for row in rows:
            self.assertEqual(row["tcp_connections"],
                             sum(row["tcp_" + state] for state in harness.STATES))
        [queue] = self.influx.query(
            "ports", f"SELECT queue, backlog, fill, sockets FROM tcpstates_listen "
                     f"WHERE port = '{pw.PORT_QUEUE}' AND family = 'ipv4'")
        self.assertEqual((queue["queue"], queue["backlog"], queue["fill"], queue["sockets"]),
                         (pw.BACKLOG + 1, pw.BACKLOG, 1.0, 1))
        [counts] = self.influx.query("ports", "SELECT rx_queued_bytes, tx_queued_bytes FROM tcpstates")
        self.assertEqual((counts["rx_queued_bytes"], counts["tx_queued_bytes"]), before)

    def test_overflows_and_a_new_listener_named_between_two_gathers(self):
        with PortWorkload(self) as workload, dw.test_cgroup() as cgroup:
            with ExecdEmulator(workload.nsenter([harness.binary(EXECD)])) as emulator:
                first = self.gather(emulator)
                overflows_before = listen_overflows(workload)
                extra = 3
                workload.overflow(extra)
                self.assertTrue(harness.wait_for(
                    lambda: listen_overflows(workload) >= overflows_before + extra, 10))
                with NewListener(workload, cgroup) as listener:
                    second = self.gather(emulator)
                    overflows_after = listen_overflows(workload)
                emulator.stop()
            [summary1] = execd_points(first, "tcpstates_listen_summary")
            self.assertNotIn("overflows", summary1.fields)  # nothing to take a delta from
            self.assertEqual(execd_points(first, "tcpstates_listen_new"), [])
            [summary2] = execd_points(second, "tcpstates_listen_summary")
            # The SYNs the full queue dropped (retransmissions count again: at least `extra`,
            # at most what the namespace counted from before the first gather to after the
            # second).
            self.assertGreaterEqual(summary2.fields["overflows"], extra)
            self.assertLessEqual(summary2.fields["overflows"], overflows_after - overflows_before)
            [new] = execd_points(second, "tcpstates_listen_new")
            self.assertEqual(new.tags, {"family": "ipv4", "port": str(NEW_LISTENER_PORT),
                                        "comm": NEW_LISTENER_NAME, "unit": listener.unit})
            self.assertEqual(new.fields, {"sockets": 1, "pid": listener.pid})
            self.write("new_listener", [line.raw for line in second])
            [row] = self.influx.query("new_listener",
                                      "SELECT pid, sockets FROM tcpstates_listen_new GROUP BY *")
            self.assertEqual((row["pid"], row["sockets"], row["tags"]["comm"], row["tags"]["unit"]),
                             (listener.pid, 1, NEW_LISTENER_NAME, listener.unit))


class CliListenersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_root()
        harness.binary(CLI)

    def test_count_two_names_the_new_listener_and_counts_overflows(self):
        with PortWorkload(self) as workload, dw.test_cgroup() as cgroup:
            cli = subprocess.Popen(workload.nsenter([harness.binary(CLI), "--json", "--count=2",
                                                     "--interval=3s"]),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            first = json.loads(cli.stdout.readline())
            workload.overflow(2)
            with NewListener(workload, cgroup) as listener:
                second = json.loads(cli.stdout.readline())
            cli.wait(timeout=10)
            self.assertEqual(cli.returncode, 0, cli.stderr.read())
            cli.stdout.close()
            cli.stderr.close()
        self.assertEqual((first["new_listeners"], first["listen_overflows"]), ([], None))
        self.assertEqual(second["new_listeners"], [{
            "family": "ipv4", "port": NEW_LISTENER_PORT, "sockets": 1,
            "owners": [{"pid": listener.pid, "comm": NEW_LISTENER_NAME, "unit": listener.unit}]}])
        self.assertGreaterEqual(second["listen_overflows"], 2)


class CloseWaitAgesTest(unittest.TestCase):
    """Two batches of CLOSE_WAIT sockets held by two processes, created SPACING seconds apart:
    each owner's oldest age and the overall oldest within 1 s of the wall-clock truth."""
    SPACING = 3

    @classmethod
    def setUpClass(cls):
        harness.require_root()
        harness.binary(CLI)

    def holders(self, stack, namespace, cgroup):
        """[(pid, name, created_at)], the first SPACING seconds older than the second."""
        held = []
        for name, sockets in ((b"older", 3), (b"younger", 2)):
            if held:
                time.sleep(self.SPACING)
            workload = stack.enter_context(harness.Workload(
                families="ipv4", netns=namespace.netns,
                close_wait_holder=f"{name.hex()}:{sockets}", holder_cgroup=cgroup))
            held.append((workload.holder_pids[0], name.decode(), time.time()))
        return held

    def test_owner_and_overall_ages_within_a_second(self):
        import contextlib
        with contextlib.ExitStack() as stack:
            namespace = stack.enter_context(harness.Workload(families="ipv4"))
            cgroup = stack.enter_context(dw.test_cgroup())
            held = self.holders(stack, namespace, cgroup)
            time.sleep(1)
            started = time.time()
            result = namespace.run([harness.binary(CLI), "--json"])
            finished = time.time()
            self.assertEqual(result.returncode, 0, result.stderr)
            document = json.loads(result.stdout)
            ages = {o["comm"]: o["age_seconds"] for o in document["close_wait_owners"]}
            for pid, name, created in held:
                self.assertGreaterEqual(ages[name], started - created - 1, name)
                self.assertLessEqual(ages[name], finished - created + 1, name)
            self.assertEqual(document["close_wait_age_seconds"], max(ages.values()))
            self.assertGreater(ages["older"] - ages["younger"], self.SPACING - 1)
            self.assertEqual((document["close_wait_older_than_60s"],
                              document["close_wait_older_than_1h"]), (0, 0))

            # The execd: the same ages on the owner lines and the summary.
            with ExecdEmulator(namespace.nsenter([harness.binary(EXECD)])) as emulator:
                emulator.trigger()
                lines = harness.wait_for(lambda: [
                    l for l in emulator.lines
                    if l.point and l.point.measurement == "tcpstates_close_wait_summary"], 30)
                taken = time.time()
                emulator.stop()
            owners = {l.point.tags["comm"]: l.point.fields["age_seconds"]
                      for l in emulator.lines
                      if l.point and l.point.measurement == "tcpstates_close_wait"}
            for pid, name, created in held:
                self.assertLessEqual(abs(owners[name] - (taken - created)), 1.5, name)
            self.assertEqual(lines[0].point.fields["age_seconds"], max(owners.values()))


class CollectdPortsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_root()
        require_collectd()
        harness.binary("plugins/collectd/tcpstates.so")

    def test_per_port_values_equal_the_workload_and_tcpconns(self):
        ports_config = "".join(f"  LocalPort {p}\n" for p in LOCAL_PORTS) + \
            "".join(f'  RemotePort "{p}"\n' for p in REMOTE_PORTS)
        with PortWorkload(self) as workload, harness.TempDir() as directory:
            notifications = Notifications(directory)
            ours = ("LoadPlugin tcpstates\n<Plugin tcpstates>\n" + ports_config +
                    "  QueuedBytes true\n</Plugin>\n")
            stock = ("LoadPlugin tcpconns\n<Plugin tcpconns>\n  ListeningPorts false\n" +
                     ports_config + "</Plugin>\n" + notifications.config())
            with Collectd(workload, directory, ours, stock) as daemon:
                want = expected_ports(workload.expected)

                def ours_and_theirs():
                    values = {}
                    for (direction, port) in want:
                        instance = f"{port}-{direction}"
                        mine = {s: daemon.latest(s, instance) for s in harness.STATES}
                        theirs = {s: daemon.latest(TCPCONNS_NAMES[s], instance, plugin="tcpconns")
                                  for s in harness.STATES}
                        total = daemon.latest("total", instance)
                        if None in mine.values() or None in theirs.values() or total is None:
                            return None
                        values[(direction, port)] = (mine, theirs, total)
                    return values

                values = harness.wait_for(ours_and_theirs, DAEMON_TIMEOUT)
                self.assertIsNotNone(values, daemon.log())
                for key, (mine, theirs, total) in values.items():
                    self.assertEqual(mine, {s: float(n) for s, n in want[key].items()}, key)
                    self.assertEqual(theirs, mine, key)
                    self.assertEqual(total, sum(mine.values()), key)

                queue = f"ipv4-{pw.PORT_QUEUE}"
                self.assertEqual(daemon.latest(f"{queue}-queue", "listen_ports", type_="count"),
                                 pw.BACKLOG + 1)
                self.assertEqual(daemon.latest(f"{queue}-fill", "listen_ports", type_="gauge"), 1.0)
                # A read equal to ss's sums (a stalled sender's queue can still drain a little
                # through window probes, so the daemon is given a few reads to catch up).
                def queued_equal_ss():
                    ours = (daemon.latest("rx_queued", "all", type_="bytes"),
                            daemon.latest("tx_queued", "all", type_="bytes"))
                    return ours == ss_queued_bytes(workload) and ours
                self.assertTrue(harness.wait_for(queued_equal_ss, DAEMON_TIMEOUT),
                                (ss_queued_bytes(workload), daemon.log()))

                # Overflows and a new listener: a notification names its process.
                with dw.test_cgroup() as cgroup:
                    workload.overflow(2)
                    with NewListener(workload, cgroup) as listener:
                        found = harness.wait_for(lambda: [
                            n for n in notifications.received()
                            if n.get("TypeInstance") == f"ipv4-{NEW_LISTENER_PORT}"], DAEMON_TIMEOUT)
                        self.assertTrue(found, daemon.log())
                        self.assertEqual(found[0]["Severity"], "WARNING")
                        self.assertEqual(
                            found[0]["Message"],
                            f"New listener ipv4 port {NEW_LISTENER_PORT} (1 socket), held by pid "
                            f"{listener.pid} {NEW_LISTENER_NAME} ({listener.unit})")
                        overflowed = harness.wait_for(lambda: max(
                            csv_series(daemon, "listen_overflows", "listen_ports", type_="count"),
                            default=0) >= 2, DAEMON_TIMEOUT)
                        self.assertTrue(overflowed, daemon.log())
                daemon.assert_running(self)


if __name__ == "__main__":
    unittest.main()
