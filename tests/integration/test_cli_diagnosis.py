"""From counts to culprits through the CLI: CLOSE_WAIT owners (hostile names, unprivileged
runs), vanished listeners, ephemeral-port pressure; exact, in namespace workloads."""

import json
import subprocess
import unittest

import diagnosis_workloads as dw
import harness


def cli(*args):
    return [harness.binary("plugins/cli/tcpstates"), *args]


def as_nobody(argv):
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + argv


def decode_comm(text):
    """The CLI's JSON carries valid UTF-8 as is and other bytes as \\u00XX."""
    return text.encode("utf-8", "surrogateescape")


class CloseWaitOwnersTest(unittest.TestCase):
    def setUp(self):
        harness.require_root()

    def test_hostile_names_are_reported_exactly(self):
        with dw.close_wait_holders() as (workload, holders):
            self.assertEqual(workload.settle(), workload.expected)
            result = workload.run(cli("--json"))
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout.count("\n"), 1, "one JSON line whatever the names")
            snapshot = json.loads(result.stdout)
            self.assertEqual(snapshot["states"], workload.expected)
            owners = [(o["pid"], decode_comm(o["comm"]), o["sockets"], o["unit"])
                      for o in snapshot["close_wait_owners"]]
            expected = sorted(holders, key=lambda h: (-h[2], h[0]))
            self.assertEqual(owners, expected)
            self.assertEqual(snapshot["close_wait_unattributed"], 0)

    def test_table_escapes_hostile_names(self):
        with dw.close_wait_holders() as (workload, holders):
            workload.settle()
            result = workload.run(cli())
            self.assertEqual(result.returncode, 0, result.stderr)
            owner_lines = [line for line in result.stdout.splitlines()
                           if line.strip().startswith(f"{dw.HOSTILE_SOCKETS} ")]
            self.assertEqual(len(owner_lines), 1, result.stdout)
            self.assertTrue(owner_lines[0].endswith('a b,c=d"e\\x5cf\\x0ag'), owner_lines[0])

    def test_unprivileged_run_counts_exactly_and_labels_partial_attribution(self):
        with dw.close_wait_holders() as (workload, holders):
            workload.settle()
            result = workload.run(as_nobody(cli("--json")))
            self.assertEqual(result.returncode, 0, result.stderr)
            snapshot = json.loads(result.stdout)
            self.assertEqual(snapshot["states"], workload.expected)
            self.assertEqual(snapshot["close_wait_owners"], [])
            self.assertEqual(snapshot["close_wait_unattributed"],
                             dw.HOSTILE_SOCKETS + dw.SECOND_SOCKETS)
            self.assertGreater(snapshot["processes_unreadable"], 0)
            self.assertRegex(snapshot["close_wait_why"],
                             r"^fds of \d+ processes not readable by this user \(root, or "
                             r"CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, read them all\)$")
            table = workload.run(as_nobody(cli())).stdout
            self.assertIn(f"{dw.HOSTILE_SOCKETS + dw.SECOND_SOCKETS} unattributed\n", table)
            self.assertIn("    why: fds of ", table)


class VanishedListenerTest(unittest.TestCase):
    def setUp(self):
        harness.require_root()

    def test_closed_listener_is_named_by_port(self):
        with harness.Workload(listen=5, established=20) as base:
            base.settle()
            extra = harness.Workload(netns=base.netns, families="ipv6", listen=1)
            extra.__enter__()
            try:
                watcher = subprocess.Popen(base.nsenter(cli("--json", "--count=2",
                                                            "--interval=1s")),
                                           stdout=subprocess.PIPE, text=True)
                first = json.loads(watcher.stdout.readline())
            finally:
                extra.__exit__(None, None, None)
            second = json.loads(watcher.stdout.readline())
            watcher.wait(timeout=10)
            self.assertEqual(first["tcp_listen"], base.total("listen") + 1)
            self.assertEqual(second["tcp_listen"], base.total("listen"))
            self.assertEqual(first["vanished_listeners"], [])
            before = {(p["family"], p["port"]) for p in first["listening"]}
            after = {(p["family"], p["port"]) for p in second["listening"]}
            gone = before - after
            self.assertEqual(len(gone), 1)
            family, port = gone.pop()
            self.assertEqual(second["vanished_listeners"],
                             [{"family": "ipv6", "port": port, "sockets": 1}])


class PortPressureTest(unittest.TestCase):
    def setUp(self):
        harness.require_root()

    def test_time_wait_toward_one_endpoint_gives_an_exact_ratio(self):
        time_wait = 400
        with harness.Workload(families="ipv4", time_wait=time_wait,
                              port_range="40000 40999") as workload:
            self.assertEqual(workload.settle(), workload.expected)
            snapshot = json.loads(workload.run(cli("--json")).stdout)
            pressure = snapshot["port_pressure"]
            self.assertEqual((pressure["range_low"], pressure["range_high"]), (40000, 40999))
            self.assertEqual(pressure["tcp_tw_reuse"], 0)
            self.assertEqual(pressure["busiest"]["ports_in_use"], time_wait)
            self.assertEqual(pressure["busiest"]["ratio"], time_wait / 1000)
            self.assertTrue(pressure["busiest"]["endpoint"].startswith("127.0.0.1:"))
            listener_port = int(pressure["busiest"]["endpoint"].split(":")[1])
            # The workload's pairs listener: backlog count + 16, everything accepted.
            self.assertIn({"family": "ipv4", "port": listener_port, "sockets": 1, "queue": 0,
                           "backlog": time_wait + 16, "fill": 0.0}, snapshot["listening"])


if __name__ == "__main__":
    unittest.main()
