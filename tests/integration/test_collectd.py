"""The collectd plugin inside a real collectd daemon (Debian's collectd-core).

Each test starts `collectd -f` inside a workload's network namespace with a generated
config (logfile first, Interval 1, csv as the writer we read back), so every value checked
here went through the daemon's whole dispatch path: config, init, read thread, cache,
threshold checks and a write plugin.
"""

import glob
import os
import signal
import subprocess
import unittest

from harness import (STATES, TempDir, Workload, binary, can_refuse_netlink_sockets,
                     refuse_netlink_sockets, require_root, wait_for)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHIPPED_CONF = os.path.join(REPO, "conf", "collectd", "tcpstates.conf")
SHIPPED_THRESHOLDS = os.path.join(REPO, "conf", "collectd", "tcpstates-thresholds.conf")
STOCK_PLUGIN_DIR = "/usr/lib/collectd"
HOSTNAME = "tcpstates-test"
FAMILIES = ("ipv4", "ipv6")
# tcpconns names its type instances after the kernel's states, upper case.
TCPCONNS_NAMES = {state: state.upper() for state in STATES}
TCPCONNS_NAMES["close"] = "CLOSED"
# How long a daemon gets to produce what a test waits for (reads happen every second).
DAEMON_TIMEOUT = 20
# plugins/collectd/README.md: the CLOSE_WAIT alert (Hits 3) fires after 5 consecutive reads
# above 10.
CLOSE_WAIT_READS = 5


def require_collectd():
    if not os.path.exists("/usr/sbin/collectd"):
        raise unittest.SkipTest("needs Debian's collectd-core")


def tcpstates_block(**options):
    lines = [f"  {key} {value}" for key, value in options.items()]
    return "<Plugin tcpstates>\n" + "\n".join(lines) + "\n</Plugin>\n"


class Collectd:
    """`collectd -f` running inside a workload's namespace, read back through csv files.

    `stock` is config for Debian's own plugins (PluginDir is /usr/lib/collectd there);
    `ours` comes after PluginDir points at the build tree and must load tcpstates.
    """

    def __init__(self, workload, directory, ours, stock="", preexec_fn=None, env=None):
        self.workload = workload
        self.preexec_fn = preexec_fn
        self.env = env  # instead of os.environ (faults.env(): the netlink fault library)
        self.directory = directory
        self.config = os.path.join(directory, "collectd.conf")
        self.log_path = os.path.join(directory, "collectd.log")
        self.csv_dir = os.path.join(directory, "csv")
        self.output_path = os.path.join(directory, "collectd.out")
        self.process = None
        with open(self.config, "w") as out:
            out.write(f"""\
Hostname "{HOSTNAME}"
FQDNLookup false
BaseDir "{directory}"
PIDFile "{directory}/collectd.pid"
Interval 1
PluginDir "{STOCK_PLUGIN_DIR}"
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{self.log_path}"
  Timestamp true
  PrintSeverity true
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir "{self.csv_dir}"
</Plugin>
{stock}
PluginDir "{os.path.dirname(binary("plugins/collectd/tcpstates.so"))}"
{ours}
""")

    def __enter__(self):
        env = dict(self.env or os.environ)
        # An ASan-built plugin needs the sanitizer runtimes loaded before anything else.
        preload = os.environ.get("TCPSTATES_SANITIZER_PRELOAD", "")
        if preload:
            env.setdefault("LD_PRELOAD", preload)  # faults.env() preloads them first itself
            # collectd itself leaks at exit; options the caller set are kept.
            env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        self.output = open(self.output_path, "w")
        self.process = subprocess.Popen(
            self.workload.nsenter(["collectd", "-f", "-C", self.config]), env=env,
            stdin=subprocess.DEVNULL, stdout=self.output, stderr=subprocess.STDOUT,
            preexec_fn=self.preexec_fn)
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()
        return False

    def log(self):
        text = ""
        for path in (self.log_path, self.output_path):
            if os.path.exists(path):
                with open(path) as f:
                    text += f.read()
        return text

    def latest(self, type_instance, plugin_instance="all", plugin="tcpstates",
               type_="tcp_connections"):
        """The newest complete value the csv writer stored for one series, or None."""
        # collectd leaves out the dash and the instance when an instance is empty.
        directory = f"{plugin}-{plugin_instance}" if plugin_instance else plugin
        name = f"{type_}-{type_instance}" if type_instance else type_
        pattern = os.path.join(self.csv_dir, HOSTNAME, directory, f"{name}-*")
        files = sorted(glob.glob(pattern))  # one file per day: the newest sorts last
        if not files:
            return None
        with open(files[-1]) as f:
            lines = [line for line in f.read().split("\n")[:-1] if not line.startswith("epoch")]
        return float(lines[-1].split(",")[1]) if lines else None

    def counts(self, plugin_instance):
        """{state: value, "total": value} for one plugin instance; None until all exist."""
        names = STATES + ["total"]
        values = {name: self.latest(name, plugin_instance) for name in names}
        return None if None in values.values() else values

    def wait_for_log(self, text):
        return wait_for(lambda: text in self.log(), DAEMON_TIMEOUT)

    def assert_running(self, test):
        test.assertIsNone(self.process.poll(), f"collectd exited:\n{self.log()}")


def csv_series(daemon, type_instance, plugin_instance="all", type_="tcp_connections", times=False):
    """Every value the csv writer stored for one series, oldest first; with times, as
    (time as the csv file prints it, value)."""
    pattern = os.path.join(daemon.csv_dir, HOSTNAME, f"tcpstates-{plugin_instance}", f"{type_}-{type_instance}-*")
    series = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            for line in f.read().split("\n")[:-1]:
                if not line.startswith("epoch"):
                    time, value = line.split(",")
                    series.append((time, float(value)))
    return series if times else [value for _, value in series]


class Notifications:
    """Every notification the daemon sends, as collectd's exec plugin hands it to a program (as
    nobody: exec refuses root): a file each, headers then the message. `Time` is the time of the
    value the notification is about, printed as the csv writer prints it."""

    def __init__(self, directory):
        os.chmod(directory, 0o755)
        self.directory = os.path.join(directory, "notifications")
        os.mkdir(self.directory)
        os.chmod(self.directory, 0o777)
        self.program = os.path.join(directory, "notify")
        with open(self.program, "w") as f:
            f.write(f'#!/bin/sh\nexec cat > "$(mktemp -p {self.directory})"\n')
        os.chmod(self.program, 0o755)

    def config(self):
        return f'LoadPlugin exec\n<Plugin exec>\n  NotificationExec "nobody" "{self.program}"\n</Plugin>\n'

    def received(self):
        notifications = []
        for name in os.listdir(self.directory):
            with open(os.path.join(self.directory, name)) as f:
                headers, _, message = f.read().partition("\n\n")
            if message.endswith("\n"):  # complete
                notification = dict(line.split(": ", 1) for line in headers.splitlines())
                notification["Message"] = message.strip()
                notifications.append(notification)
        return notifications

    def find(self, severity, type_instance):
        """The notification of that severity about tcpstates-all/<type_instance>, if any."""
        found = [n for n in self.received() if n["Severity"] == severity and n.get("Plugin") == "tcpstates"
                 and n.get("PluginInstance") == "all" and n.get("TypeInstance") == type_instance]
        return found[0] if found else None


def expected_counts(workload, family=None):
    """{state: n, "total": n} the workload built, for one family or both."""
    counts = {state: workload.expected[family][state] if family else workload.total(state)
              for state in STATES}
    counts["total"] = sum(counts.values())
    return counts


class CollectdPluginTest(unittest.TestCase):
    def setUp(self):
        require_root()
        require_collectd()
        binary("plugins/collectd/tcpstates.so")

    def settled_workload(self, **counts):
        workload = self.enterContext(Workload(**counts))
        # The population must be complete before the daemon's first read: every value the
        # daemon dispatches is then compared with the known counts, no retrying.
        self.assertEqual(workload.settle(), workload.expected)
        return workload

    def daemon(self, workload, ours, stock="", preexec_fn=None, env=None):
        directory = self.enterContext(TempDir())
        return self.enterContext(Collectd(workload, directory, ours, stock, preexec_fn, env))

    def wait_for_counts(self, daemon, plugin_instance):
        values = wait_for(lambda: daemon.counts(plugin_instance), DAEMON_TIMEOUT)
        self.assertIsNotNone(values, f"no {plugin_instance} values from collectd:\n{daemon.log()}")
        return values

    def test_values_equal_workload_per_family_and_tcpconns(self):
        workload = self.settled_workload(listen=200, established=200, close_wait=200,
                                         time_wait=200, syn_recv=200, syn_sent=30, bound_only=20)
        daemon = self.daemon(
            workload,
            "LoadPlugin tcpstates\n" + tcpstates_block(Source="netlink", ReportByFamily="true"),
            stock="LoadPlugin tcpconns\n<Plugin tcpconns>\n  ListeningPorts false\n"
                  "  AllPortsSummary true\n</Plugin>\n")

        self.assertEqual(self.wait_for_counts(daemon, "all"), expected_counts(workload))
        for family in FAMILIES:
            self.assertEqual(self.wait_for_counts(daemon, family),
                             expected_counts(workload, family), family)

        # collectd's own tcpconns plugin, same daemon, same namespace, same states.
        def tcpconns_counts():
            values = {state: daemon.latest(name, "all", plugin="tcpconns")
                      for state, name in TCPCONNS_NAMES.items()}
            return None if None in values.values() else values

        tcpconns = wait_for(tcpconns_counts, DAEMON_TIMEOUT)
        ours = daemon.counts("all")
        del ours["total"]
        self.assertEqual(tcpconns, ours)

        # From the second read on, listen_change says "no listener came or went".
        for instance in ("all",) + FAMILIES:
            self.assertTrue(wait_for(
                lambda: daemon.latest("listen_change", instance, type_="gauge") is not None,
                DAEMON_TIMEOUT), daemon.log())
            self.assertEqual(daemon.latest("listen_change", instance, type_="gauge"), 0.0, instance)
        self.assertIn("tcpstates plugin: reading sockets from netlink sock_diag (requested)",
                      daemon.log())
        daemon.assert_running(self)

    def test_source_proc_equals_source_netlink(self):
        workload = self.settled_workload(listen=200, established=200, close_wait=200,
                                         time_wait=200, syn_recv=200)
        # Two daemons side by side on the same sockets, one per source.
        daemons = {source: self.daemon(workload, "LoadPlugin tcpstates\n" + tcpstates_block(
            Source=source, ReportByFamily="true")) for source in ("netlink", "proc")}
        for instance in ("all",) + FAMILIES:
            netlink = self.wait_for_counts(daemons["netlink"], instance)
            proc = self.wait_for_counts(daemons["proc"], instance)
            self.assertEqual(proc, netlink, instance)
            self.assertEqual(proc, expected_counts(workload, instance if instance != "all" else None))
        self.assertIn("reading sockets from /proc/net/tcp{,6} text tables (requested)",
                      daemons["proc"].log())

    def test_auto_falls_back_to_proc_when_netlink_is_refused(self):
        if not can_refuse_netlink_sockets():
            self.skipTest("netlink refusal is implemented for x86_64 only")
        workload = self.settled_workload(listen=50, established=50, close_wait=50, time_wait=50,
                                         syn_recv=50)
        daemon = self.daemon(workload, "LoadPlugin tcpstates\n" + tcpstates_block(
            Source="auto", ReportByFamily="true"), preexec_fn=refuse_netlink_sockets)
        for instance in ("all",) + FAMILIES:
            self.assertEqual(self.wait_for_counts(daemon, instance),
                             expected_counts(workload, instance if instance != "all" else None))
        # Several reads later the switch has still been logged exactly once, and no error.
        self.assertTrue(wait_for(lambda: daemon.latest("listen_change", type_="gauge") is not None,
                                 DAEMON_TIMEOUT))
        log = daemon.log()
        self.assertEqual(log.count("tcpstates plugin: reading sockets from /proc/net/tcp{,6} "
                                   "(auto: netlink unavailable: "), 1, log)
        self.assertNotIn("[error]", log)
        daemon.assert_running(self)

    def test_source_netlink_refused_unloads_only_the_plugin(self):
        if not can_refuse_netlink_sockets():
            self.skipTest("netlink refusal is implemented for x86_64 only")
        workload = self.settled_workload(listen=5)
        daemon = self.daemon(workload, "LoadPlugin tcpstates\n" + tcpstates_block(
            Source="netlink"), stock="LoadPlugin uptime\n", preexec_fn=refuse_netlink_sockets)
        self.assertTrue(daemon.wait_for_log("Initialization complete"), daemon.log())
        self.assertIn("tcpstates plugin: init: cannot open the socket table (Source netlink): ",
                      daemon.log())
        # The daemon goes on with its other plugins; tcpstates dispatches nothing.
        self.assertTrue(wait_for(lambda: daemon.latest("", "", plugin="uptime", type_="uptime")
                                 is not None, DAEMON_TIMEOUT), daemon.log())
        self.assertIsNone(daemon.latest("total"))
        daemon.assert_running(self)

    def test_shipped_snippet_loads_and_reports(self):
        workload = self.settled_workload(listen=20, established=20, close_wait=20, time_wait=20,
                                         syn_recv=20, orphan_fin_wait2=20, syn_sent=10,
                                         bound_only=10)
        daemon = self.daemon(workload, f'Include "{SHIPPED_CONF}"\n')
        # Interval 30 in the snippet: the first read happens at start-up, the next 30 s later.
        self.assertEqual(self.wait_for_counts(daemon, "all"), expected_counts(workload))
        # The default is counter-assisted counting (nothing shipped needs every socket), and
        # its totals are exact: orphaned FIN_WAIT2 are not mistaken for TIME_WAIT.
        self.assertIn("reading sockets from netlink sock_diag (auto: available); ESTABLISHED "
                      "and TIME_WAIT from kernel counters", daemon.log())
        # ReportByFamily false: no per-family series.
        self.assertIsNone(daemon.latest("total", "ipv4"))

    def test_bad_config_refuses_to_start(self):
        cases = {
            "Bogus 1": ['unknown option "Bogus"', "Source, Counting, ReportByFamily, ReportListenChange"],
            'Source "nonsense"': ["Source", "expected auto, netlink or proc"],
            "Source 1": ["Source takes one of auto, netlink or proc, got 1"],
            'ReportByFamily "maybe"': ['ReportByFamily takes true or false, got "maybe"'],
            "ReportListenChange true false": ["ReportListenChange takes true or false, got true false"],
            "LocalPort 0": ["LocalPort takes port numbers from 1 to 65535, got 0"],
            'RemotePort "https"': ['RemotePort takes port numbers from 1 to 65535, got "https"'],
            "LocalPort 22.5": ["LocalPort takes port numbers from 1 to 65535, got 22.5"],
            "LocalPort " + " ".join(str(p) for p in range(1, 66)): ["LocalPort: at most 64 ports"],
            "QueuedBytes true\n  Counting counters": [
                'counting "counters" cannot serve this request: queued bytes needs every socket',
                "(ReportByFamily, PortPressure and QueuedBytes need every socket)"],
        }
        for line, messages in cases.items():
            with self.subTest(line=line):
                self.assert_config_refused(line, messages)

    def assert_config_refused(self, line, messages):
        """collectd, given `line` in <Plugin tcpstates>, exits non-zero having logged exactly
        one config error, which holds every one of `messages`."""
        with TempDir() as directory:
            daemon = Collectd(_NoNamespace(), directory,
                              "LoadPlugin tcpstates\n<Plugin tcpstates>\n  " + line +
                              "\n</Plugin>\n")
            with daemon:
                try:
                    code = daemon.process.wait(timeout=DAEMON_TIMEOUT)
                except subprocess.TimeoutExpired:
                    code = None
            log = daemon.log()
            self.assertIsNotNone(code, f"collectd kept running:\n{log}")
            self.assertNotEqual(code, 0, log)
            errors = [l for l in log.splitlines() if "tcpstates plugin: config: " in l]
            self.assertEqual(len(errors), 1, log)
            for message in messages:
                self.assertIn(message, errors[0])

    def test_shipped_close_wait_threshold_fires_at_the_fifth_read_above_10(self):
        workload = self.settled_workload(families="ipv4", listen=1)
        notifications = Notifications(self.enterContext(TempDir()))
        daemon = self.daemon(workload, "LoadPlugin tcpstates\n",
                             stock=f'Include "{SHIPPED_THRESHOLDS}"\n' + notifications.config())
        # Reads with no CLOSE_WAIT first, then 12 sockets (and their 12 FIN_WAIT2 peers).
        self.assertTrue(wait_for(lambda: len(csv_series(daemon, "close_wait")) >= 3, DAEMON_TIMEOUT), daemon.log())
        self.enterContext(Workload(families="ipv4", netns=workload.netns, close_wait=12))
        warning = wait_for(lambda: notifications.find("WARNING", "close_wait"), DAEMON_TIMEOUT)
        self.assertIsNotNone(warning, daemon.log())
        values = self.values_up_to(daemon, "close_wait", warning)
        self.assertEqual(values[-1], 12.0)
        streak = 0
        for value in values:
            streak = streak + 1 if value > 10 else 0
        self.assertEqual(streak, CLOSE_WAIT_READS, values)
        # One threshold warning (the workload's pairs listener is also named as a new listener).
        self.assertEqual(len([n for n in notifications.received() if n["Severity"] == "WARNING"
                              and n.get("TypeInstance") == "close_wait"]), 1)
        self.assertIn('"value" is currently 12.000000. That is above the warning threshold of '
                      "10.000000", warning["Message"])

    def test_shipped_time_wait_threshold_fires_above_5000(self):
        # TIME_WAIT sockets last 60 s: all of this happens well within that.
        workload = self.settled_workload(families="ipv4", time_wait=5000)
        notifications = Notifications(self.enterContext(TempDir()))
        daemon = self.daemon(workload, "LoadPlugin tcpstates\n",
                             stock=f'Include "{SHIPPED_THRESHOLDS}"\n' + notifications.config())
        # 5000 is not above 5000: several reads and no alert.
        self.assertTrue(wait_for(lambda: csv_series(daemon, "time_wait")[-3:] == [5000.0] * 3, DAEMON_TIMEOUT),
                        daemon.log())
        self.assertIsNone(notifications.find("WARNING", "time_wait"))
        self.enterContext(Workload(families="ipv4", netns=workload.netns, time_wait=2))
        warning = wait_for(lambda: notifications.find("WARNING", "time_wait"), DAEMON_TIMEOUT)
        self.assertIsNotNone(warning, daemon.log())
        values = self.values_up_to(daemon, "time_wait", warning)
        self.assertEqual(values[-2:], [5000.0, 5002.0])  # at the first read above 5000
        self.assertEqual(set(values[:-1]), {5000.0})
        self.assertIn('"value" is currently 5002.000000. That is above the warning threshold of '
                      "5000.000000", warning["Message"])

    def test_shipped_listen_change_threshold_fires_when_a_listener_closes(self):
        workload = self.settled_workload(families="ipv4", listen=1)
        listener = self.enterContext(Workload(families="ipv4", netns=workload.netns, listen=1))
        stock = f'Include "{SHIPPED_THRESHOLDS}"\n'
        daemon = self.daemon(workload, "LoadPlugin tcpstates\n", stock=stock)
        listen_drop = ("severity = WARNING, host = tcpstates-test, plugin = tcpstates, "
                       "plugin_instance = all, type = gauge, type_instance = listen_change")
        # Several reads with the listener up: no drop alert yet.
        self.assertTrue(wait_for(lambda: len(csv_series(daemon, "listen_change", type_="gauge")) >= 3,
                                 DAEMON_TIMEOUT))
        self.assertNotIn(listen_drop, daemon.log())
        listener.__exit__(None, None, None)  # closes the listening socket
        self.assertTrue(daemon.wait_for_log(listen_drop), daemon.log())
        self.assertIn('"value" is currently -1.000000. That is below the warning threshold of '
                      "-0.500000", daemon.log())
        daemon.assert_running(self)

    def values_up_to(self, daemon, type_instance, notification):
        """The series' values up to the one the notification is about (same time, to the ms)."""
        self.assertTrue(wait_for(lambda: notification["Time"] in dict(csv_series(daemon, type_instance, times=True)),
                                 DAEMON_TIMEOUT))
        series = csv_series(daemon, type_instance, times=True)
        at = [time for time, _ in series].index(notification["Time"])
        return [value for _, value in series[:at + 1]]


class _NoNamespace:
    """Stands in for a workload when the daemon never gets as far as reading sockets."""

    def nsenter(self, argv):
        return list(argv)


if __name__ == "__main__":
    unittest.main()
