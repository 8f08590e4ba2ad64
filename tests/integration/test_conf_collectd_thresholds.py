"""conf/collectd/tcpstates-thresholds.conf in Debian's collectd daemon, fed by hand.

The values go in through the unixsock plugin (PUTVAL), with the plugin instances and type
instances plugins/collectd/README.md documents for the all-namespaces mode (plugin_instance
"<netns>", "<netns>-close_wait_owners", "<netns>-listen_ports"), the per-port and listen-queue
values and the CLOSE_WAIT age, so the shipped rules are checked without the plugin having to
produce these values: what fires, for which namespace, and at which value, against the rules
written here from plugins/collectd/README.md ("Alerts"), not read from the snippet:

- CLOSE_WAIT above 10 at the fifth consecutive read (Hits 3), per namespace;
- TIME_WAIT above 5000, per namespace; LISTEN dropped (listen_change below -0.5);
- the oldest CLOSE_WAIT socket idle for more than 600 s; listen_overflows above 0 (any
  namespace); an accept queue 80 % full or more (fill >= 0.8; the single-namespace
  listen_ports instance);
- and nothing for ReportByFamily's ipv4/ipv6 series, nor for values within bounds.
"""

import os
import re
import socket
import subprocess
import time
import unittest

from harness import TempDir, wait_for

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHIPPED_THRESHOLDS = os.path.join(REPO, "conf", "collectd", "tcpstates-thresholds.conf")
HOSTNAME = "tcpstates-test"
TIMEOUT = 20
NOTIFICATION = re.compile(r"Notification: severity = (\w+), host = [^,]+, plugin = tcpstates, "
                          r"plugin_instance = ([^,]*), type = ([^,]+), type_instance = ([^,]*), "
                          r"message = .*is currently ([-0-9.]+)\.")


class Daemon:
    """collectd -f with logfile, unixsock and the shipped thresholds, nothing else."""

    def __init__(self, directory):
        self.directory = directory
        self.socket_path = os.path.join(directory, "collectd.sock")
        self.log_path = os.path.join(directory, "collectd.log")
        self.config = os.path.join(directory, "collectd.conf")
        with open(self.config, "w") as f:
            f.write(f"""\
Hostname "{HOSTNAME}"
FQDNLookup false
BaseDir "{directory}"
PIDFile "{directory}/collectd.pid"
Interval 1
# One write thread: values reach threshold in the order they were put, so a notification
# about a later value means every earlier value was checked (run_reads' fence).
WriteThreads 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{self.log_path}"
  PrintSeverity true
</Plugin>
LoadPlugin unixsock
<Plugin unixsock>
  SocketFile "{self.socket_path}"
</Plugin>
Include "{SHIPPED_THRESHOLDS}"
""")
        self.output = open(os.path.join(directory, "collectd.out"), "w")
        self.process = subprocess.Popen(["collectd", "-f", "-C", self.config], stdin=subprocess.DEVNULL,
                                        stdout=self.output, stderr=subprocess.STDOUT)
        if not wait_for(lambda: os.path.exists(self.socket_path), TIMEOUT):
            self.stop()
            raise AssertionError(f"collectd did not start:\n{self.log()}")
        self.time = 0.0

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def put(self, values):
        """One read: {(plugin_instance, type, type_instance): value}, all at the same time
        (now: threshold's missing-value check goes by the values' times)."""
        self.time = max(time.time(), self.time + 0.01)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.socket_path)
            stream = s.makefile("rw")
            for (plugin_instance, type_, type_instance), value in values.items():
                stream.write(f'PUTVAL "{HOSTNAME}/tcpstates-{plugin_instance}/{type_}-{type_instance}" '
                             f"interval=1 {self.time:.3f}:{value}\n")
                stream.flush()
                answer = stream.readline()
                if not answer.startswith("0 "):
                    raise AssertionError(f"PUTVAL: {answer}")

    def warnings(self):
        """[(plugin_instance, type, type_instance, value)] of the WARNINGs sent so far."""
        return [(m.group(2), m.group(3), m.group(4), float(m.group(5)))
                for m in NOTIFICATION.finditer(self.log()) if m.group(1) == "WARNING"]


# plugins/collectd/README.md's alert table, written here: (type, type_instance) -> (bad(value), reads
# in a row before the notification). Plugin instances: any, except the families'.
RULES = {("tcp_connections", "close_wait"): (lambda v: v > 10, 5),
         ("tcp_connections", "time_wait"): (lambda v: v > 5000, 1),
         ("gauge", "listen_change"): (lambda v: v < -0.5, 1),
         ("gauge", "oldest_age_seconds"): (lambda v: v > 600, 1),
         ("count", "listen_overflows"): (lambda v: v > 0, 1)}
SILENT_INSTANCES = {"ipv4", "ipv6"}


def documented(plugin_instance, type_, type_instance, history):
    """Whether the documented rules warn at the last value of `history`."""
    if plugin_instance in SILENT_INSTANCES:
        return False
    if type_ == "gauge" and type_instance.endswith("-fill"):
        # single-namespace listen_ports only; >= 0.8
        return plugin_instance == "listen_ports" and history[-1] >= 0.8 and (len(history) < 2 or history[-2] < 0.8)
    rule = RULES.get((type_, type_instance))
    if rule is None:
        return False
    bad, reads = rule
    streak = 0
    for value in history:
        streak = streak + 1 if bad(value) else 0
    return streak == reads


class ShippedThresholdsTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists("/usr/sbin/collectd"):
            raise unittest.SkipTest("needs Debian's collectd-core")
        self.daemon = Daemon(self.enterContext(TempDir()))
        self.addCleanup(self.daemon.stop)

    def run_reads(self, reads):
        """Puts each read, then waits until the daemon sent exactly the WARNINGs the documented
        rules send up to it (a read's values reach threshold through collectd's write queue)."""
        history = {}
        expected = []
        for values in reads:
            self.daemon.put(values)
            for key, value in values.items():
                history.setdefault(key, []).append(value)
                if documented(*key, history[key]):
                    expected.append((*key, value))
            # Quickly on: a series not updated for 2 intervals (Timeout) is "missing" to threshold.
            if not wait_for(lambda: sorted(self.daemon.warnings()) == sorted(expected), 1.5):
                self.assertEqual(sorted(self.daemon.warnings()), sorted(expected), self.daemon.log()[-3000:])
        # A fence: a value that warns at once, put after the last read. Once its WARNING is
        # logged every earlier value has been checked, so no other WARNING can still come.
        sentinel = ("fence", "tcp_connections", "time_wait", 6000.0)
        self.daemon.put({sentinel[:3]: sentinel[3]})
        if not wait_for(lambda: sentinel in self.daemon.warnings(), TIMEOUT):
            self.fail(f"the fence's WARNING never came:\n{self.daemon.log()[-3000:]}")
        self.assertEqual(sorted(self.daemon.warnings()), sorted(expected + [sentinel]))
        return expected

    def test_count_rules_fire_per_namespace(self):
        # "all": one namespace; "host" and "3f2a1b0c9d8e": two namespaces of AllNamespaces true;
        # ipv4: ReportByFamily's, silent; 443-local: a configured port.
        reads = []
        for i in range(7):
            reads.append({("all", "tcp_connections", "close_wait"): 12,
                          ("3f2a1b0c9d8e", "tcp_connections", "close_wait"): 11 if i >= 3 else 9,
                          ("host", "tcp_connections", "close_wait"): 10,
                          ("ipv4", "tcp_connections", "close_wait"): 12,
                          ("host", "tcp_connections", "time_wait"): 5000 + i // 5,
                          ("3f2a1b0c9d8e", "tcp_connections", "time_wait"): 5000,
                          ("ipv6", "tcp_connections", "time_wait"): 6000,
                          ("3f2a1b0c9d8e", "gauge", "listen_change"): -1 if i == 3 else 0,
                          ("host", "gauge", "listen_change"): 0,
                          ("ipv4", "gauge", "listen_change"): -1 if i == 3 else 0})
        expected = self.run_reads(reads)
        self.assertEqual(sorted(expected), [("3f2a1b0c9d8e", "gauge", "listen_change", -1),
                                            ("all", "tcp_connections", "close_wait", 12),
                                            ("host", "tcp_connections", "time_wait", 5001)])
        # 3f2a1b0c9d8e's CLOSE_WAIT went above 10 at the fourth read: five in a row only at the
        # eighth, after the last read here.
        self.assertNotIn("3f2a1b0c9d8e", [w[0] for w in expected if w[2] == "close_wait"])

    def test_listen_queue_and_close_wait_age_rules(self):
        reads = []
        for i, (age, overflows, fill) in enumerate([(30.5, 0, 0.5), (600, 0, 0.75), (600.5, 0, 0.79),
                                                    (1200, 3, 0.8), (1200, 0, 1.1)]):
            reads.append({("close_wait_owners", "gauge", "oldest_age_seconds"): age,
                          ("3f2a1b0c9d8e-close_wait_owners", "gauge", "oldest_age_seconds"): age - 30,
                          ("listen_ports", "count", "listen_overflows"): overflows,
                          ("host-listen_ports", "count", "listen_overflows"): 1 if i == 1 else 0,
                          ("listen_ports", "gauge", "ipv4-8080-fill"): fill,
                          ("listen_ports", "gauge", "ipv6-8080-fill"): 0.5,
                          ("listen_ports", "count", "ipv4-8080-queue"): round(fill * 10)})
        expected = self.run_reads(reads)
        self.assertEqual(sorted(expected), [("3f2a1b0c9d8e-close_wait_owners", "gauge", "oldest_age_seconds", 1170),
                                            ("close_wait_owners", "gauge", "oldest_age_seconds", 600.5),
                                            ("host-listen_ports", "count", "listen_overflows", 1),
                                            ("listen_ports", "count", "listen_overflows", 3),
                                            ("listen_ports", "gauge", "ipv4-8080-fill", 0.8)])


if __name__ == "__main__":
    unittest.main()
