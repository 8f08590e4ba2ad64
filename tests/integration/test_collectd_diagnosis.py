"""The collectd plugin's diagnosis values inside the real daemon: CLOSE_WAIT owners (hostile
names, an unprivileged daemon), a vanished listener named by port, exact ephemeral-port
pressure. Same set-up as test_collectd.py: `collectd -f`, Interval 1, csv read back."""

import glob
import os
import pwd
import re
import unittest

import diagnosis_workloads as dw
from harness import TempDir, Workload, wait_for
import test_collectd as base
from test_collectd import (DAEMON_TIMEOUT, HOSTNAME, SHIPPED_THRESHOLDS, Collectd,
                           expected_counts, tcpstates_block)

KEPT = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def collectd_name(raw):
    """The README's sanitization: every byte outside [A-Za-z0-9_.-] becomes '_'."""
    return "".join(chr(b) if b in KEPT else "_" for b in raw) or "unknown"


def series(daemon, plugin_instance):
    """{"type-type_instance": latest value} of every series the csv writer has for one
    tcpstates plugin instance."""
    directory = os.path.join(daemon.csv_dir, HOSTNAME, f"tcpstates-{plugin_instance}")
    values = {}
    for path in glob.glob(os.path.join(directory, "*")):
        name = re.sub(r"-\d{4}-\d\d-\d\d$", "", os.path.basename(path))
        type_, _, instance = name.partition("-")
        values[name] = daemon.latest(instance, plugin_instance, type_=type_)
    return values


def alerts(daemon, plugin_instance):
    """Notification lines other than OKAY for one tcpstates plugin instance."""
    return [line for line in daemon.log().splitlines()
            if "Notification: " in line and "severity = OKAY" not in line
            and f"plugin = tcpstates, plugin_instance = {plugin_instance}," in line]


def as_nobody(argv):
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + argv


class _UnprivilegedNamespace:
    """The workload's namespace, entered as root, then collectd as nobody."""

    def __init__(self, workload):
        self.workload = workload

    def nsenter(self, argv):
        return self.workload.nsenter(as_nobody(list(argv)))


class CollectdDiagnosisTest(base.CollectdPluginTest):
    def owners_when_complete(self, daemon, expected_names):
        """The close_wait_owners series once every expected one has a value."""
        def complete():
            values = series(daemon, "close_wait_owners")
            return values if expected_names <= values.keys() and None not in values.values() \
                else None
        values = wait_for(complete, DAEMON_TIMEOUT)
        self.assertIsNotNone(values, f"{series(daemon, 'close_wait_owners')}\n{daemon.log()}")
        return values

    def without_ages(self, values):
        """The owner values without the CLOSE_WAIT ages (exact in test_ports.py; here the
        sockets are seconds old)."""
        self.assertLess(values.pop("gauge-oldest_age_seconds"), 60)
        self.assertEqual((values.pop("count-older_than_60s"), values.pop("count-older_than_1h")),
                         (0.0, 0.0))
        return values

    def test_close_wait_owners_hostile_names_exact(self):
        with dw.close_wait_holders() as (workload, holders):
            self.assertEqual(workload.settle(), workload.expected)
            daemons = {top: self.daemon(workload, "LoadPlugin tcpstates\n" + tcpstates_block(
                TopOwners=top)) for top in (10, 1)}
            unit = holders[0][3]
            # The documented mapping, spelled out for the two names of the workload.
            self.assertEqual(collectd_name(dw.HOSTILE_NAME), "a_b_c_d_e_f_g")
            self.assertEqual(collectd_name(dw.SECOND_NAME), "w__rker____")
            hostile = f"tcp_connections-{collectd_name(unit.encode())}-a_b_c_d_e_f_g"
            second = f"tcp_connections-{collectd_name(unit.encode())}-w__rker____"
            fixed = {"tcp_connections-other": 0.0, "tcp_connections-unattributed": 0.0,
                     "count-unreadable_processes": 0.0, "count-hidden_processes": 0.0}
            expected = {hostile: float(dw.HOSTILE_SOCKETS), second: float(dw.SECOND_SOCKETS),
                        **fixed}
            self.assertEqual(self.without_ages(self.owners_when_complete(daemons[10], expected.keys())),
                             expected)
            # TopOwners 1: the bigger holder by name, the other one's sockets in "other".
            expected_top1 = {hostile: float(dw.HOSTILE_SOCKETS), **fixed,
                             "tcp_connections-other": float(dw.SECOND_SOCKETS)}
            self.assertEqual(self.without_ages(self.owners_when_complete(daemons[1],
                                                                         expected_top1.keys())),
                             expected_top1)

            daemon = daemons[10]
            self.assertEqual(daemon.latest("close_wait"),
                             float(dw.HOSTILE_SOCKETS + dw.SECOND_SOCKETS))
            # No name escaped into the file tree: only the plugin's own directories.
            # (Port pressure is off by default: it would force a full dump at every read.)
            self.assertEqual(
                sorted(os.listdir(os.path.join(daemon.csv_dir, HOSTNAME))),
                ["tcpstates-all", "tcpstates-close_wait_owners", "tcpstates-listen_ports"])
            # Pids are logged once, on one line each time the owner set changes.
            by_pid = {pid: (name, sockets) for pid, name, sockets, _ in holders}
            ordered = sorted(by_pid, key=lambda pid: (-by_pid[pid][1], pid))
            who = ", ".join(f"{by_pid[pid][1]} by {collectd_name(by_pid[pid][0])} "
                            f"({collectd_name(unit.encode())}, 1 process, pid {pid})"
                            for pid in ordered)
            line = f"tcpstates plugin: CLOSE_WAIT sockets held by: {who}; unattributed 0"
            self.assertEqual(daemon.log().count(line), 1, daemon.log())
            daemon.assert_running(self)

    def test_no_close_wait_no_owner_series(self):
        workload = self.settled_workload(families="ipv4", established=3)
        daemon = self.daemon(workload, "LoadPlugin tcpstates\n")
        self.assertEqual(self.wait_for_counts(daemon, "all"), expected_counts(workload))
        self.assertTrue(wait_for(lambda: daemon.latest("listen_change", type_="gauge")
                                 is not None, DAEMON_TIMEOUT))
        self.assertFalse(os.path.exists(os.path.join(daemon.csv_dir, HOSTNAME,
                                                     "tcpstates-close_wait_owners")))

    def test_unprivileged_daemon_counts_exactly_and_reports_unattributed(self):
        with dw.close_wait_holders() as (workload, holders):
            self.assertEqual(workload.settle(), workload.expected)
            directory = self.enterContext(TempDir())
            os.chmod(directory, 0o777)  # collectd as nobody writes its log and csv files here
            daemon = self.enterContext(Collectd(_UnprivilegedNamespace(workload), directory,
                                                "LoadPlugin tcpstates\n"))
            self.assertEqual(self.wait_for_counts(daemon, "all"), expected_counts(workload))
            values = wait_for(lambda: (lambda v: v if None not in v.values() and len(v) == 7
                                       else None)(series(daemon, "close_wait_owners")),
                              DAEMON_TIMEOUT)
            self.assertIsNotNone(values, daemon.log())
            # Ages need no process access: the kernel tells them with the sockets.
            values = self.without_ages(values)
            unreadable = values.pop("count-unreadable_processes")
            self.assertGreater(unreadable, 0)
            self.assertEqual(values.pop("count-hidden_processes"), 0.0)
            self.assertEqual(values, {
                "tcp_connections-other": 0.0,
                "tcp_connections-unattributed": float(dw.HOSTILE_SOCKETS + dw.SECOND_SOCKETS)})
            log = daemon.log()
            self.assertIn("tcpstates plugin: CLOSE_WAIT sockets held by: no readable process; "
                          f"unattributed {dw.HOSTILE_SOCKETS + dw.SECOND_SOCKETS}: fds of ", log)
            self.assertNotIn("[error]", log)
            # It really ran as nobody (nsenter and setpriv exec, so the child is collectd).
            with open(f"/proc/{daemon.process.pid}/status") as status:
                uids = [l.split()[1:] for l in status if l.startswith("Uid:")][0]
            nobody = str(pwd.getpwnam("nobody").pw_uid)
            self.assertEqual(uids, [nobody] * 4)
            with open(f"/proc/{daemon.process.pid}/comm") as comm:
                self.assertEqual(comm.read(), "collectd\n")
            daemon.assert_running(self)

    def test_closed_listener_is_named_by_port(self):
        workload = self.settled_workload(families="ipv4", listen=2, established=2)
        extra = self.enterContext(Workload(families="ipv6", netns=workload.netns, listen=1))
        daemon = self.daemon(workload, "LoadPlugin tcpstates\n",
                             stock=f'Include "{SHIPPED_THRESHOLDS}"\n')

        def ports():
            values = series(daemon, "listen_ports")
            ipv6 = [name for name in values if name.startswith("tcp_connections-ipv6-")]
            ipv4 = [name for name in values if name.startswith("tcp_connections-ipv4-")]
            return values if len(ipv6) == 1 and len(ipv4) == workload.total("listen") else None

        values = wait_for(ports, DAEMON_TIMEOUT)
        self.assertIsNotNone(values, f"{series(daemon, 'listen_ports')}\n{daemon.log()}")
        [gone] = [name for name in values if name.startswith("tcp_connections-ipv6-")]
        port = int(gone.rsplit("-", 1)[1])
        self.assertEqual({name: value for name, value in values.items()
                          if name.startswith("tcp_connections-")},
                         {name: 1.0 for name in values if name.startswith("tcp_connections-")})
        self.assertEqual(values["count-untracked_sockets"], 0.0)
        # Several reads with the listener up: nothing is reported missing. (threshold sends an
        # OKAY for each series it first sees: its start-up behaviour, not an alert.)
        self.assertTrue(wait_for(lambda: len(base.csv_series(daemon, "listen_change", type_="gauge")) >= 3,
                                 DAEMON_TIMEOUT))
        self.assertEqual(alerts(daemon, "listen_ports"), [])

        extra.__exit__(None, None, None)  # closes the IPv6 listener
        ours = ("severity = WARNING, host = tcpstates-test, plugin = tcpstates, plugin_instance = "
                f"listen_ports, type = tcp_connections, type_instance = ipv6-{port}, message = "
                f"Listener ipv6 port {port} (1 socket) was listening at the previous read and is "
                "gone now")
        self.assertTrue(daemon.wait_for_log(ours), daemon.log())
        # threshold's missing-value check, from the shipped snippet, names the same series.
        missing = ("severity = FAILURE, host = tcpstates-test, plugin = tcpstates, "
                   f"plugin_instance = listen_ports, type = tcp_connections, "
                   f"type_instance = ipv6-{port}, message = ")
        self.assertTrue(daemon.wait_for_log(missing), daemon.log())
        self.assertIn(f"{HOSTNAME}/tcpstates-listen_ports/tcp_connections-ipv6-{port} has not "
                      "been updated for", daemon.log())
        # The vanished port's series stopped; the IPv4 ports' go on and are not reported.
        path = glob.glob(os.path.join(daemon.csv_dir, HOSTNAME, "tcpstates-listen_ports",
                                      f"{gone}-*"))[0]
        size = os.path.getsize(path)
        before = {name: daemon.latest(name.partition("-")[2], "listen_ports")
                  for name in values if name.startswith("tcp_connections-ipv4-")}
        # Three more reads of an IPv4 port's series while the IPv6 one's file stays as it was.
        ipv4 = next(iter(before)).partition("-")[2]
        rows = len(base.csv_series(daemon, ipv4, "listen_ports"))
        self.assertTrue(wait_for(lambda: len(base.csv_series(daemon, ipv4, "listen_ports")) >= rows + 3
                                 and daemon.latest("listen_change", type_="gauge") == 0.0,
                                 DAEMON_TIMEOUT))
        self.assertEqual(os.path.getsize(path), size)
        self.assertEqual(before, {name: 1.0 for name in before})
        # Exactly the two notifications, both about the closed port.
        self.assertEqual(len(alerts(daemon, "listen_ports")), 2, daemon.log())
        self.assertTrue(all(f"type_instance = ipv6-{port}," in line
                            for line in alerts(daemon, "listen_ports")), daemon.log())
        daemon.assert_running(self)

    def test_time_wait_toward_one_endpoint_gives_an_exact_ratio(self):
        time_wait = 400
        workload = self.enterContext(Workload(families="ipv4", time_wait=time_wait,
                                              port_range="40000 40999"))
        self.assertEqual(workload.settle(), workload.expected)
        sysctl = {name: float(workload.run(["cat", f"/proc/sys/net/ipv4/{name}"]).stdout)
                  for name in ("tcp_fin_timeout", "tcp_tw_reuse", "tcp_max_tw_buckets")}
        daemon = self.daemon(workload, "LoadPlugin tcpstates\n" + tcpstates_block(
            PortPressure="true"))
        values = wait_for(lambda: (lambda v: v if len(v) == 8 and None not in v.values()
                                   else None)(series(daemon, "port_pressure")), DAEMON_TIMEOUT)
        self.assertIsNotNone(values, f"{series(daemon, 'port_pressure')}\n{daemon.log()}")
        [busiest] = [name for name in values if name.startswith("gauge-busiest-")]
        listener_port = int(busiest.rsplit("-", 1)[1])
        self.assertEqual(busiest, f"gauge-busiest-ipv4-127.0.0.1-{listener_port}")
        self.assertEqual(values, {
            "gauge-ephemeral_port_usage": time_wait / 1000,
            "count-ephemeral_ports_in_use": float(time_wait),
            busiest: time_wait / 1000,
            "gauge-ip_local_port_range_low": 40000.0,
            "gauge-ip_local_port_range_high": 40999.0,
            **{f"gauge-{name}": value for name, value in sysctl.items()},
        })
        self.assertEqual(sysctl["tcp_tw_reuse"], 0.0)
        self.assertEqual(daemon.latest(f"ipv4-{listener_port}", "listen_ports"), 1.0)

    def test_diagnosis_options_turn_series_off_and_bad_values_refuse_to_start(self):
        with dw.close_wait_holders() as (workload, holders):
            workload.settle()
            daemon = self.daemon(workload, "LoadPlugin tcpstates\n" + tcpstates_block(
                CloseWaitOwners="false", ListenPorts="false", PortPressure="false"))
            self.assertEqual(self.wait_for_counts(daemon, "all"), expected_counts(workload))
            self.assertTrue(wait_for(lambda: daemon.latest("listen_change", type_="gauge")
                                     is not None, DAEMON_TIMEOUT))
            self.assertEqual(sorted(os.listdir(os.path.join(daemon.csv_dir, HOSTNAME))),
                             ["tcpstates-all"])
        cases = {
            "TopOwners 0": "TopOwners takes a whole number from 1 to 1000, got 0",
            "TopOwners 2.5": "TopOwners takes a whole number from 1 to 1000, got 2.5",
            'MaxListenPorts "many"': 'MaxListenPorts takes a whole number from 1 to 65536, '
                                     'got "many"',
            "MaxListenPorts 65537": "MaxListenPorts takes a whole number from 1 to 65536, "
                                    "got 65537",
            'CloseWaitOwners "maybe"': 'CloseWaitOwners takes true or false, got "maybe"',
            "PortPressure 1": "PortPressure takes true or false, got 1",
            'Counting "fast"': 'Counting: unknown counting "fast": expected auto, full or '
                               'counters',
            "Counting counters\n  PortPressure true":
                'counting "counters" cannot serve this request: port pressure needs every socket',
            "NotifyVanishedListeners true 2": "NotifyVanishedListeners takes true or false, got "
                                              "true 2",
        }
        for line, message in cases.items():
            with self.subTest(line=line):
                self.assert_config_refused(line, [message])


# Only this module's tests: the base class's own tests run in test_collectd.
for _name in [n for n in dir(base.CollectdPluginTest) if n.startswith("test_")]:
    setattr(CollectdDiagnosisTest, _name, None)

if __name__ == "__main__":
    unittest.main()
