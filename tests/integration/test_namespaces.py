"""Every network namespace from one agent on the host: five namespaces with known socket
populations, their processes in cgroups named the way Docker, containerd (Kubernetes, both
cgroup drivers), Podman and ip netns name them; counted exactly per namespace by the CLI,
by tcpstates-execd through a real InfluxDB, and by the real collectd daemon. Namespaces
that come and go between and during gathers, an unprivileged run, and CLOSE_WAIT owners
named inside the right namespace.
"""

import contextlib
import json
import os
import subprocess
import time
import unittest
import uuid

import diagnosis_workloads as dw
import harness
from execd_emulator import ExecdEmulator, parse_line
from harness import STATES
from influxdb import InfluxDB, require_influxd
from test_collectd import Collectd, require_collectd, tcpstates_block

CLI = "plugins/cli/tcpstates"
EXECD = "plugins/telegraf/tcpstates-execd"


def hex_id():
    return uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex digits, like a container id


class HostSide:
    """Runs a program in the host's namespace (what the Collectd helper calls nsenter)."""

    def nsenter(self, argv):
        return list(argv)


@contextlib.contextmanager
def container_namespaces():
    """Five namespaces, each a Workload whose processes sit in a cgroup named as a container
    runtime names it. Yields [(workload, expected name, pod, container)]."""
    mount = dw.cgroup2_mount()
    root = os.path.join(mount, f"tcpstates-test-ns-{os.getpid()}-{time.monotonic_ns()}")
    docker, containerd, cgroupfs, podman = hex_id(), hex_id(), hex_id(), hex_id()
    pod_a, pod_b = str(uuid.uuid4()), str(uuid.uuid4())
    ip_name = f"tcpstates-test-{os.getpid()}"
    layouts = [
        # (cgroup below root, workload counts, expected netns, pod, container)
        (f"system.slice/docker-{docker}.scope", dict(listen=3, established=5),
         docker[:12], "", docker[:12]),
        (f"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
         f"{pod_a.replace('-', '_')}.slice/cri-containerd-{containerd}.scope",
         dict(listen=2, close_wait_holder=f"{b'leaky-pod'.hex()}:4"),
         containerd[:12], pod_a, containerd[:12]),
        (f"kubepods/besteffort/pod{pod_b}/{cgroupfs}", dict(time_wait=7, listen=1),
         cgroupfs[:12], pod_b, cgroupfs[:12]),
        (f"machine.slice/libpod-{podman}.scope", dict(established=2, syn_recv=3),
         podman[:12], "", podman[:12]),
        ("system.slice/tcpstates-test-netns.service", dict(listen=4, close_wait=2),
         ip_name, "", ""),
    ]
    workloads = []
    with contextlib.ExitStack() as stack:
        stack.callback(remove_cgroup_tree, root)  # last: once every workload has exited
        for relative, counts, name, pod, container in layouts:
            cgroup = os.path.join(root, relative)
            os.makedirs(cgroup)
            # Holders move into the cgroup themselves; the workload process (the namespace's
            # first) is moved here before it builds anything.
            extra = {"holder_cgroup": cgroup} if "close_wait_holder" in counts else {}
            workload = stack.enter_context(harness.Workload(families="ipv4", **counts, **extra))
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
                procs.write(str(workload.process.pid))
            workload.settle()
            workloads.append((workload, name, pod, container))
        subprocess.run(["ip", "netns", "attach", ip_name, str(workloads[-1][0].process.pid)],
                       check=True)
        stack.callback(subprocess.run, ["ip", "netns", "delete", ip_name])
        yield workloads


def remove_cgroup_tree(root):
    for directory, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):
        for _ in range(100):
            try:
                os.rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


def namespace_inode(workload):
    return os.stat(f"/proc/{workload.process.pid}/ns/net").st_ino


class NamespacesTest(unittest.TestCase):
    def setUp(self):
        harness.require_root()

    def test_every_namespace_exactly_through_the_cli(self):
        with container_namespaces() as workloads:
            result = subprocess.run([harness.binary(CLI), "--all-namespaces", "--json"],
                                    capture_output=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
            by_inode = {ns["inode"]: ns for ns in json.loads(result.stdout)["namespaces"]}
            for workload, name, pod, container in workloads:
                with self.subTest(netns=name):
                    ns = by_inode[namespace_inode(workload)]
                    self.assertEqual((ns["netns"], ns["pod"], ns["container"]),
                                     (name, pod, container))
                    self.assertEqual(ns["states"], workload.expected)
                    self.assertEqual(ns["tcp_connections"], workload.connections())
            # The CLOSE_WAIT owner is named in its own namespace, and in no other.
            owners = {ns["netns"]: [o["comm"] for o in ns.get("close_wait_owners", [])]
                      for ns in by_inode.values()}
            self.assertEqual(owners[workloads[1][1]], ["leaky-pod"])
            self.assertEqual([n for n, comms in owners.items() if "leaky-pod" in comms],
                             [workloads[1][1]])
            # The table: one row per namespace, most CLOSE_WAIT first among ours.
            table = subprocess.run([harness.binary(CLI), "--all-namespaces"],
                                   capture_output=True, timeout=60, text=True).stdout
            rows = [line.split()[0] for line in table.splitlines()[1:] if line.strip()]
            ours = [r for r in rows if r in {w[1] for w in workloads}]
            self.assertEqual(ours[:2], [workloads[1][1], workloads[4][1]])  # 4, then 2 CLOSE_WAIT

    def test_every_namespace_exactly_through_influxdb(self):
        require_influxd()
        with container_namespaces() as workloads, InfluxDB() as influx:
            result = subprocess.run([harness.binary(EXECD), "--once", "--all-namespaces"],
                                    capture_output=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
            lines = result.stdout.rstrip(b"\n").split(b"\n")
            for line in lines:
                parse_line(line)  # Telegraf's grammar
            influx.create_database("ns")
            status, body = influx.write("ns", b"\n".join(lines) + b"\n")
            self.assertEqual(status, 204, body)
            rows = influx.query("ns", "SELECT * FROM tcpstates GROUP BY netns, pod, container")
            by_name = {row["tags"]["netns"]: row for row in rows}
            for workload, name, pod, container in workloads:
                with self.subTest(netns=name):
                    row = by_name[name]
                    self.assertEqual((row["tags"]["pod"], row["tags"]["container"]), (pod, container))
                    for state in STATES:
                        self.assertEqual(row[f"tcp_{state}"], workload.total(state), state)
            owners = influx.query("ns", "SELECT sockets FROM tcpstates_close_wait GROUP BY netns, comm")
            self.assertIn((workloads[1][1], "leaky-pod", 4),
                          [(r["tags"]["netns"], r["tags"]["comm"], r["sockets"]) for r in owners])

    def test_every_namespace_exactly_through_collectd(self):
        require_collectd()
        with container_namespaces() as workloads, harness.TempDir() as directory:
            with Collectd(HostSide(), directory,
                          "LoadPlugin tcpstates\n" + tcpstates_block(AllNamespaces="true")) as daemon:
                for workload, name, _, _ in workloads:
                    with self.subTest(netns=name):
                        values = harness.wait_for(lambda: daemon.counts(name), 20)
                        self.assertIsNotNone(values, daemon.log())
                        expected = {s: float(workload.total(s)) for s in STATES}
                        expected["total"] = float(workload.connections())
                        self.assertEqual(values, expected)
                daemon.assert_running(self)

    def test_namespaces_come_and_go_between_and_during_gathers(self):
        with container_namespaces() as workloads:
            argv = [harness.binary(EXECD), "--all-namespaces", "--noclose-wait-owners",
                    "--nolisten-ports"]
            with ExecdEmulator(argv) as execd:
                def gather():
                    before = len(execd.lines)
                    execd.trigger()
                    self.assertTrue(harness.wait_for(
                        lambda: any(l.point and l.point.tags.get("netns") == "host"
                                    for l in execd.lines[before:]), 20), execd.stderr_text())
                    time.sleep(0.3)  # the rest of this batch (one write)
                    return {l.point.tags["netns"]: l.point.fields for l in execd.lines[before:]}

                first = gather()
                self.assertTrue({w[1] for w in workloads} <= first.keys(), first.keys())
                # One created, one destroyed between two gathers.
                gone = workloads[0]
                gone[0].__exit__(None, None, None)
                with harness.Workload(families="ipv4", listen=6) as new:
                    new.settle()
                    second = gather()
                    self.assertNotIn(gone[1], second)
                    new_name = f"ino-{namespace_inode(new)}"
                    self.assertEqual(second[new_name]["tcp_listen"], 6)
                    # Said once, in the line that lists what went (other tests' namespaces may
                    # come and go too).
                    self.assertTrue(harness.wait_for(
                        lambda: any(gone[1] in l.text.partition(" gone (")[2]
                                    for l in execd.stderr), 5), execd.stderr_text())
                # Destroyed during a gather: triggered and torn down at once, several times.
                for _ in range(5):
                    with harness.Workload(families="ipv4", listen=2) as brief:
                        execd.trigger()
                    time.sleep(0.3)
                result = execd.stop()
            self.assertEqual((result.returncode, result.escalation), (0, None))
            self.assertEqual(execd.parse_errors(), [])
            self.assertEqual([l.text for l in execd.stderr if l.level in ("error", "warn")], [])

    def test_unprivileged_counts_exactly_or_not_at_all(self):
        # As nobody, a namespace can be identified only through a process of nobody's: one
        # is put in the first namespace. It is read from /proc/PID/net (no setns), exactly;
        # the others are not identifiable and are counted as such, never wrongly.
        with container_namespaces() as workloads:
            workload = workloads[0][0]
            sleeper = subprocess.Popen(workload.nsenter(
                ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "sleep", "60"]))
            self.addCleanup(sleeper.wait)
            self.addCleanup(sleeper.kill)
            harness.wait_for(lambda: os.path.exists(f"/proc/{sleeper.pid}/ns/net") and
                             os.stat(f"/proc/{sleeper.pid}/ns/net").st_ino == namespace_inode(workload), 5)
            result = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                     harness.binary(CLI), "--all-namespaces", "--json"],
                                    capture_output=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
            report = json.loads(result.stdout)
            by_inode = {ns["inode"]: ns for ns in report["namespaces"]}
            ns = by_inode[namespace_inode(workload)]
            self.assertEqual(ns["states"], workload.expected)
            self.assertIn("/net/tcp{,6}", ns["source_detail"])
            # The others: absent (their processes cannot be identified), or - the ip netns one,
            # whose /run/netns file anyone may stat - listed as unreadable, with no counts.
            for other, *_ in workloads[1:]:
                listed = by_inode.get(namespace_inode(other))
                if listed is not None:
                    self.assertIn("setns", listed["error"])
                    self.assertNotIn("states", listed)
            self.assertGreater(report["processes_unidentified"], 0)


if __name__ == "__main__":
    unittest.main()
