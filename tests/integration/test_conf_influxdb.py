"""conf/influxdb and conf/grafana, proven against a real influxd fed by the real execd binary.

A scenario (two hosts, six hours of 30-second gathers) is collected from tcpstates-execd running
in namespace workloads whose populations change between gathers: a leaky app accumulating
CLOSE_WAIT, a service that stops listening, a TIME_WAIT burst (the binary gathers at each change
and every 5 minutes; a batch stands in for the unchanged gathers between, see _run_schedule).
The batches get the timestamps of a 30 s grid ending now and a host tag (as Telegraf adds);
web-1's are written as Telegraf's stock output writes them (the default retention policy),
web-2's to "tcpstates_raw" (routed there, conf/README.md), so that everything reading raw
points is seen to read both.
Then:
- conf/influxdb/tcpstates.iql applied twice with the documented curl command creates exactly
  the policies and continuous queries; backfill.iql fills "tcpstates_15m" with the values
  conf/README.md documents (rollups.ROLLUPS), computed here from the raw points; the CQs run by
  influxd's CQ service (copies with RESAMPLE EVERY 1s) write the same values;
- every dashboard and alert-rule query, Grafana macros substituted, runs without error and
  returns the expected series and values; the alert rules, evaluated minute by minute with
  their `for` and `noDataState`, go Pending, Alerting, Normal or NoData exactly when the
  documented rules do.

docs/pictures/render reuses collect_scenario() and write_scenario() for the pictures.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

import diagnosis_workloads
import execd_emulator
import harness
import influxdb
import rollups
from rollups import apply_file, statement_errors  # also docs/pictures/render's

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONF = os.path.join(REPO, "conf")
DB = "telegraf"
STEP_NS = 30 * 10**9
BUCKET_NS = rollups.BUCKET_NS
GATHERS = 720  # six hours of 30-second points per host
HOSTS = ("web-1", "web-2")
# Where each host's raw points are written: None is Telegraf's stock output (no rp: the
# database's default policy), "tcpstates_raw" the optional routing of conf/README.md.
RAW_POLICY = {"web-1": None, "web-2": "tcpstates_raw"}
ALERT_FILE = os.path.join(CONF, "grafana", "provisioning", "alerting", "tcpstates-alerts.json")
DASHBOARD_FILE = os.path.join(CONF, "grafana", "tcpstates-dashboard.json")


# -- the scenario ------------------------------------------------------------------------------
class _Execd:
    """tcpstates-execd --signal=stdin in a namespace; gather() returns one batch of lines."""

    def __init__(self, workload, execd, argv):
        # stderr to a file (a pipe nobody reads could fill): finish() checks it.
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(workload.nsenter([execd, "--signal=stdin"] + argv),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr)
        self.pending = None
        self.batches = []

    def gather(self):
        """Asks for a gather; the previous batch is complete once this one's first line (the
        all-families `tcpstates ` line) arrives."""
        self.process.stdin.write(b"\n")
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("tcpstates-execd exited")
            if line.startswith(b"tcpstates "):
                if self.pending is not None:
                    self.batches.append(self.pending)
                self.pending = [line.rstrip(b"\n")]
                return
            self.pending.append(line.rstrip(b"\n"))

    def finish(self):
        self.process.stdin.close()
        rest = self.process.stdout.read().splitlines()
        self.process.wait(timeout=10)
        self.process.stdout.close()
        self.stderr.seek(0)
        stderr = self.stderr.read().decode(errors="replace")
        self.stderr.close()
        # Exit 0 on stdin EOF, and only informational lines on stderr: an E! line, or anything
        # unprefixed (a sanitizer report), fails the scenario.
        if self.process.returncode != 0 or any(not line.startswith(("I! ", "W! "))
                                               for line in stderr.splitlines()):
            raise RuntimeError(f"tcpstates-execd exited {self.process.returncode}:\n{stderr}")
        self.pending.extend(rest)
        self.batches.append(self.pending)
        return self.batches


@contextlib.contextmanager
def _cgroup(name):
    """A cgroup v2 directory whose last component (the `unit` tag) is `name`."""
    mount = diagnosis_workloads.cgroup2_mount()
    if mount is None:
        raise unittest.SkipTest("no cgroup2 mount")
    parent = os.path.join(mount, f"tcpstates-conf-{os.getpid()}-{time.monotonic_ns()}")
    os.mkdir(parent)
    path = os.path.join(parent, name)
    os.mkdir(path)
    try:
        yield path
    finally:
        for directory in (path, parent):
            for _ in range(100):
                try:
                    os.rmdir(directory)
                    break
                except OSError:
                    time.sleep(0.05)


# A server that never closes the connections its clients close: each "grow N" line on stdin
# adds N CLOSE_WAIT sockets behind its one listening port; "close" closes them all (a restart
# that keeps the port). It names itself argv[1] and joins the cgroup argv[2].
LEAKY_APP = r"""
import ctypes, os, socket, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
with open(os.path.join(sys.argv[2], "cgroup.procs"), "w") as procs:
    procs.write(str(os.getpid()))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[3])))
server.listen(128)
held = []
print("ready", flush=True)
for line in sys.stdin:
    words = line.split()
    if words[0] == "grow":
        for _ in range(int(words[1])):
            client = socket.create_connection(server.getsockname())
            accepted, _ = server.accept()
            client.close()
            held.append(accepted)
    elif words[0] == "close":
        for s in held:
            s.close()
        held = []
    print("ok", flush=True)
"""


class _LeakyApp:
    def __init__(self, workload, name, cgroup, port):
        self.process = subprocess.Popen(workload.nsenter([sys.executable, "-c", LEAKY_APP, name, cgroup, str(port)]),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline() != "ready\n":
            raise RuntimeError("leaky app did not start")

    def command(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        if self.process.stdout.readline() != "ok\n":
            raise RuntimeError(f"leaky app: {line} failed")

    def stop(self):
        self.process.stdin.close()
        self.process.wait(timeout=10)
        self.process.stdout.close()


def _run_schedule(execd, base_counts, schedule, gathers, app_name, cgroup, every):
    """`gathers` batches from a fresh namespace holding `base_counts` and an app named
    `app_name` (listening on 8080) in `cgroup`. schedule: {gather index: [actions]}, an action
    being ("open", key, Workload kwargs), ("close", key prefix) or ("app", command).
    The binary gathers at every change, the gather after it and every `every`-th one; between
    those (the population unchanged) the last real batch stands in, minus its
    tcpstates_listen_vanished and tcpstates_listen_new lines (a port that vanished or started
    listening is reported once)."""
    real = []
    with harness.Workload(**base_counts) as base:
        app = _LeakyApp(base, app_name, cgroup, 8080)
        collector = _Execd(base, execd, ["--by-family", "--port-pressure"])
        open_workloads = {}
        try:
            for i in range(gathers):
                for action in schedule.get(i, []):
                    if action[0] == "open":
                        workload = harness.Workload(netns=base.netns, **action[2])
                        workload.__enter__()
                        open_workloads[action[1]] = workload
                    elif action[0] == "close":
                        for key in [k for k in open_workloads if k.startswith(action[1])]:
                            open_workloads.pop(key).__exit__(None, None, None)
                    else:
                        app.command(action[1])
                real.append(i in schedule or i - 1 in schedule or i % every == 0 or i == gathers - 1)
                if real[-1]:
                    collector.gather()
        finally:
            for workload in open_workloads.values():
                workload.__exit__(None, None, None)
            gathered = iter(collector.finish())
            app.stop()
    batches = []
    for is_real in real:
        batches.append(next(gathered) if is_real else
                       [line for line in batches[-1]
                        if not line.startswith((b"tcpstates_listen_vanished", b"tcpstates_listen_new"))])
    return batches


def collect_scenario(execd, gathers=GATHERS, every=10):
    """{host: [batch, ...]}, a batch being the byte lines of one gather, as printed; every=1
    runs a real gather for each of them (see _run_schedule)."""
    harness.require_root()
    # web-1: a service (2 listeners) that dies at 4h40; leaky-app gains 2 CLOSE_WAIT sockets
    # every 10 minutes from 0h20 and is restarted at 5h00; traffic grows in steps; a burst of
    # 5400 TIME_WAIT sockets at 5h20.
    def at(i):
        return i * gathers // GATHERS
    web1 = {at(0): [("open", "api", dict(families="ipv4", listen=2, established=10))],
            at(560): [("close", "api")],
            at(600): [("app", "close")],
            at(640): [("open", "burst", dict(families="ipv4,ipv6", time_wait=2700)), ("close", "burst")]}
    for i in range(40, 600, 20):
        web1.setdefault(at(i), []).append(("app", "grow 2"))
    for n, i in enumerate((100, 250, 400)):
        web1.setdefault(at(i), []).append(("open", f"traffic{n}", dict(families="ipv4", established=15)))
    # web-2: quiet; its worker briefly holds 4 CLOSE_WAIT sockets (below the alert threshold).
    web2 = {at(200): [("app", "grow 4")], at(260): [("app", "close")]}
    with _cgroup("leaky-app.service") as cgroup:
        first = _run_schedule(execd, dict(families="ipv4,ipv6", listen=4, established=20), web1, gathers,
                              "leaky-app", cgroup, every)
    with _cgroup("worker.service") as cgroup:
        second = _run_schedule(execd, dict(families="ipv4,ipv6", listen=3, established=8), web2, gathers,
                               "worker", cgroup, every)
    return {HOSTS[0]: first, HOSTS[1]: second}


def grid_end_ns():
    """The last grid timestamp: the latest multiple of 30 s at least 5 s in the past."""
    return (time.time_ns() - 5 * 10**9) // STEP_NS * STEP_NS


def as_telegraf_would(scenario, end_ns):
    """Rewrites each batch onto a 30 s grid ending at end_ns and adds the host tag.
    Returns ({host: line protocol text}, parsed points)."""
    data, points = {}, []
    for host, batches in scenario.items():
        out = []
        start = end_ns - (len(batches) - 1) * STEP_NS
        for i, batch in enumerate(batches):
            for line in batch:
                key_end = re.match(rb"[a-z_]+", line).end()  # our measurement names need no escapes
                body, _, _ = line.rpartition(b" ")
                rewritten = body[:key_end] + b",host=" + host.encode() + body[key_end:] + b" %d" % (start + i * STEP_NS)
                out.append(rewritten)
                points.append(execd_emulator.parse_line(rewritten))
        data[host] = b"\n".join(out) + b"\n"
    return data, points


def write_scenario(influx, data):
    """Each host's points to its RAW_POLICY."""
    for host, text in data.items():
        params = {"db": DB, "precision": "ns"}
        if RAW_POLICY[host]:
            params["rp"] = RAW_POLICY[host]
        status, body = influx._request("POST", "/write", params, text)
        if status != 204:
            raise influxdb.InfluxDBError(f"write {host}: HTTP {status}: {body}")


# The series of issues 14 and 15 that the scenario's execd (run without --all-namespaces,
# --local-ports, --queued-bytes) does not print, written by hand onto the same grid: per-port
# counts, accept queues, overflows, new listeners, CLOSE_WAIT ages and queued bytes, and on
# web-1 one container namespace as --all-namespaces tags it. The values are functions of the
# gather index i, so the tests below work out what each panel and rule shows by hand. Series
# the execd will print itself once it has them (ports, listen summary, ages) are given tags it
# does not use in the scenario (ports 9443/9444, the container namespace), so that its own
# points never share a series and timestamp with these.
POD_NS = {"netns": "3f2a1b0c9d8e", "pod": "7c1d4e2a-9b3f-4c55-8e21-0a6b5d4c3e2f", "container": "3f2a1b0c9d8e"}
POD_CLOSE_WAIT = range(500, 600)    # gathers in which the pod's app holds 15 CLOSE_WAIT sockets
QUEUE_FULL_9443 = range(200, 210)   # web-1 port 9443: queue 13 of backlog 16 (0.8125)
QUEUE_AT_80_9444 = range(300, 304)  # web-1 port 9444: queue 8 of backlog 10 (0.8 exactly)
OVERFLOWS = {210: 5, 211: 2}        # the container namespace's ListenOverflows deltas
NEW_LISTENERS = {"web-1": (540, dict(family="ipv4", port="6667", comm="miner", unit="miner.service"), 1, 4242),
                 "web-2": (520, dict(family="ipv6", port="8081", comm="worker", unit="worker.service"), 2, 777)}


def pod_age(i):
    """The pod's oldest CLOSE_WAIT socket: 40 s old at gather 500, 30 s older each gather."""
    return 40.0 + (i - POD_CLOSE_WAIT.start) * 30


def _field_text(fields):
    return ",".join(f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}i" for k, v in fields.items())


def _states(**counts):
    fields = {f"tcp_{state}": counts.get(state, 0) for state in harness.STATES}
    return {"tcp_connections": sum(fields.values()), **fields}


def handwritten(end_ns):
    """({host: line protocol text}, parsed points) of the hand-written series."""
    data, points = {}, []
    start = end_ns - (GATHERS - 1) * STEP_NS
    for host in HOSTS:
        web1 = host == "web-1"
        out = []

        def add(measurement, tags, fields, at):
            tag_text = "".join(f",{k}={v}" for k, v in sorted({**tags, "host": host}.items()))
            out.append(f"{measurement}{tag_text} {_field_text(fields)} {at}".encode())
        for i in range(GATHERS):
            at = start + i * STEP_NS
            add("tcpstates_port", {"direction": "local", "port": "443"},
                _states(listen=1, established=20 + i % 7, time_wait=i % 5,
                        close_wait=3 if web1 and i in POD_CLOSE_WAIT else 0), at)
            add("tcpstates_port", {"direction": "remote", "port": "5432"}, _states(established=4, time_wait=i % 3), at)
            queue = 13 if web1 and i in QUEUE_FULL_9443 else i % 3
            add("tcpstates_listen", {"family": "ipv4", "port": "9443"},
                dict(sockets=1, queue=queue, backlog=16, fill=queue / 16), at)
            if web1:
                queue = 8 if i in QUEUE_AT_80_9444 else 1
                add("tcpstates_listen", {"family": "ipv4", "port": "9444"},
                    dict(sockets=1, queue=queue, backlog=10, fill=queue / 10), at)
            if web1 and i >= 1:  # deltas: from the second gather on
                overflows = OVERFLOWS.get(i, 0)
                add("tcpstates_listen_summary", POD_NS, dict(overflows=overflows, drops=overflows + (i == 500)), at)
            new_at, tags, sockets, pid = NEW_LISTENERS[host]
            if i == new_at:
                add("tcpstates_listen_new", tags, dict(sockets=sockets, pid=pid), at)
            if web1:
                close_wait = 15 if i in POD_CLOSE_WAIT else 0
                add("tcpstates", POD_NS, {**_states(established=5, listen=2, close_wait=close_wait, fin_wait2=0),
                                          "rx_queued_bytes": 1000 + i, "tx_queued_bytes": 2 * i}, at)
                if close_wait:
                    age = pod_age(i)
                    add("tcpstates_close_wait", {**POD_NS, "comm": "stuck-worker", "unit": "stuck-worker.service"},
                        dict(sockets=15, pid=5151, processes=1, age_seconds=age), at)
                    add("tcpstates_close_wait_summary", POD_NS,
                        dict(attributed=15, unattributed=0, processes_unreadable=0, age_seconds=age,
                             older_than_60s=15 if age > 60 else 0, older_than_1h=15 if age > 3600 else 0), at)
        points += [execd_emulator.parse_line(line) for line in out]
        data[host] = b"\n".join(out) + b"\n"
    return data, points


def time_filter(start_ns, end_ns):
    """$timeFilter as Grafana's InfluxQL backend renders an absolute range."""
    return f"time >= {start_ns // 10**6}ms and time <= {end_ns // 10**6}ms"


def substitute(query, timefilter, interval, host_regex, netns_regex=".*", pod_regex=".*"):
    """Grafana's macros and the variables (All of netns and pod is their allValue, .*)."""
    return (query.replace("$timeFilter", timefilter).replace("$__interval", interval).replace("$host", host_regex)
            .replace("$netns", netns_regex).replace("$pod", pod_regex))


def selected_fields(query):
    """The fields a query reads: the quoted names between SELECT and FROM, aliases aside."""
    select = re.search(r"^SELECT (.*?) FROM ", query).group(1)
    return set(re.findall(r'(?<!AS )"(\w+)"', select))


# -- Grafana's alert states ----------------------------------------------------------------------
# conf/README.md's alert table, written here from the documentation (not read from the rules):
# the measurement and field, the reduction over the window, the threshold (`above` is >,
# `at_least` >=), `for` and what no data means; one instance per host, namespace (netns, pod:
# empty without --all-namespaces) and the `per` tags.
DOCUMENTED_ALERTS = {
    "tcpstates-close-wait": dict(field="tcp_close_wait", reduce=min, window_s=600, above=10, for_s=300,
                                 no_data="OK"),
    "tcpstates-time-wait": dict(field="tcp_time_wait", reduce=max, window_s=300, above=5000, for_s=0,
                                no_data="OK"),
    "tcpstates-listen-drop": dict(field="tcp_listen", reduce=lambda values: max(values) - values[-1],
                                  window_s=900, above=0, for_s=60, no_data="NoData"),
    "tcpstates-close-wait-age": dict(measurement="tcpstates_close_wait_summary", field="age_seconds",
                                     reduce=lambda values: values[-1], window_s=120, above=600, for_s=0,
                                     no_data="OK"),
    "tcpstates-accept-queue": dict(measurement="tcpstates_listen", per=("family", "port"), field="fill", reduce=max,
                                   window_s=300, at_least=0.8, for_s=0, no_data="OK"),
    "tcpstates-listen-overflows": dict(measurement="tcpstates_listen_summary", field="overflows", reduce=sum,
                                       window_s=300, above=0, for_s=0, no_data="OK"),
}


def instance(host, per=(), **tags):
    """An alert instance's labels, as the rules' GROUP BY returns them (missing tags empty)."""
    return tuple(sorted({"host": host, **{k: tags.get(k, "") for k in ("netns", "pod") + tuple(per)}}.items()))
NO_DATA = "(no data)"  # the instance Grafana creates when a query returns nothing at all


def parse_duration(text):
    """Prometheus' model.ParseDuration, as Grafana reads `for`: "0s", "5m", "1h30m"."""
    units = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
             "w": 7 * 86400 * 10**9, "y": 365 * 86400 * 10**9}
    if not re.fullmatch(r"(\d+(ms|[smhdwy]))+", text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(n) * units[unit] for n, unit in re.findall(r"(\d+)(ms|[smhdwy])", text))


def alert_timeline(evaluations, for_ns, no_data_state):
    """Grafana's state of each alert instance after each evaluation.

    evaluations: [(time, {host: (value, condition)})], {} when the query returned no series.
    An instance whose condition holds goes Pending, and Alerting once it has held for `for`
    (at once when `for` is 0); one whose condition fails is Normal. When nothing comes back,
    one instance takes noDataState's state (OK: Normal; NoData; Alerting: like a condition that
    holds) and the hosts' instances resolve. Returns [(time, {instance: (value, state)})]."""
    # A condition, or the state no data sets directly.
    no_data = {"OK": "Normal", "NoData": "NoData", "Alerting": True}[no_data_state]
    state = {}  # instance -> (state, Pending since)
    timeline = []
    for at, results in evaluations:
        results = results or {NO_DATA: (None, no_data)}
        new = {}
        for instance, (_, condition) in results.items():
            previous, since = state.get(instance, ("Normal", None))
            if isinstance(condition, str):
                new[instance] = (condition, None)
            elif not condition:
                new[instance] = ("Normal", None)
            elif previous == "Alerting":
                new[instance] = ("Alerting", None)
            elif previous == "Pending":
                new[instance] = ("Alerting", None) if at - since >= for_ns else ("Pending", since)
            else:
                new[instance] = ("Pending", at) if for_ns > 0 else ("Alerting", None)
        state = new
        timeline.append((at, {instance: (results[instance][0], new[instance][0]) for instance in new}))
    return timeline


# -- the tests ---------------------------------------------------------------------------------
class ConfInfluxDBTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_root()
        influxdb.require_influxd()
        execd = harness.binary("plugins/telegraf/tcpstates-execd")
        cls.scenario = collect_scenario(execd)
        cls.influx = influxdb.InfluxDB().start()
        try:
            cls.applied = [apply_file(cls.influx, rollups.IQL) for _ in range(2)]
            cls.end_ns = grid_end_ns()
            data, cls.points = as_telegraf_would(cls.scenario, cls.end_ns)
            write_scenario(cls.influx, data)
            data, points = handwritten(cls.end_ns)
            write_scenario(cls.influx, data)
            cls.points += points
            cls.backfill = apply_file(cls.influx, rollups.BACKFILL)
        except BaseException:
            cls.influx.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.influx.stop()

    def q(self, query):
        document = self.influx.query_raw(DB, query)
        result = document["results"][0]
        self.assertNotIn("error", result, query)
        return result.get("series", [])

    def grid(self, gather):
        return self.end_ns - (GATHERS - 1 - gather) * STEP_NS

    def raw(self, measurement, host, start_ns, end_ns, **tags):
        return [p for p in self.points if p.measurement == measurement and p.tags.get("host") == host
                and start_ns <= p.timestamp <= end_ns and all(p.tags.get(k) == v for k, v in tags.items())]

    # -- the scenario itself ---------------------------------------------------------------------
    def test_scenario_is_the_story_the_pictures_tell(self):
        def totals(host):
            return [p for p in self.points if p.measurement == "tcpstates" and p.tags == {"host": host}]
        web1 = totals("web-1")
        self.assertEqual(len(web1), GATHERS)
        close_wait = [p.fields["tcp_close_wait"] for p in web1]
        self.assertEqual(close_wait[39], 0)
        self.assertEqual(close_wait[599], 56)  # 28 leaky holders of 2 sockets
        self.assertEqual(close_wait[600], 0)   # restarted
        self.assertEqual(web1[559].fields["tcp_listen"] - web1[560].fields["tcp_listen"], 3)  # 2 + 1 behind the pairs
        self.assertGreater(web1[640].fields["tcp_time_wait"], 5000)
        owners = {(p.tags["comm"], p.tags.get("unit")) for p in self.points if p.measurement == "tcpstates_close_wait"
                  and "netns" not in p.tags}  # the hand-written namespace aside
        self.assertEqual(owners, {("leaky-app", "leaky-app.service"), ("worker", "worker.service")})
        vanished = [p for p in self.points if p.measurement == "tcpstates_listen_vanished"]
        self.assertEqual(len(vanished), 3)
        self.assertEqual({p.timestamp for p in vanished}, {self.grid(560)})

    # -- conf/influxdb -------------------------------------------------------------------------
    def test_script_applies_twice_and_creates_exactly_the_policies_and_queries(self):
        for code, answer in self.applied:
            self.assertEqual(code, 0, answer)
            self.assertEqual(statement_errors(answer), [])
            self.assertEqual(len(answer["results"]), 21)  # database, 2 policies, 9 x (drop, create)
        policies = {r["name"]: r for r in self.influx.query(DB, f'SHOW RETENTION POLICIES ON "{DB}"')}
        self.assertEqual(policies["tcpstates_raw"]["duration"], "48h0m0s")
        self.assertEqual(policies["tcpstates_raw"]["shardGroupDuration"], "1h0m0s")
        self.assertEqual(policies["tcpstates_15m"]["duration"], "720h0m0s")
        self.assertEqual(policies["tcpstates_15m"]["shardGroupDuration"], "24h0m0s")
        self.assertTrue(policies["autogen"]["default"])  # other data keeps its policy
        queries = {r["name"]: r["query"] for r in self.influx.query(DB, "SHOW CONTINUOUS QUERIES")
                   if r["__measurement"] == DB and not r["name"].endswith("_check")}
        self.assertEqual(set(queries), {f"{m}_15m" for m in rollups.ROLLUPS})
        for measurement in rollups.ROLLUPS:
            # Raw points from the default policy (autogen here) and tcpstates_raw; the last four
            # quarter hours at every run (influxd shows the query as it stored it).
            query = queries[f"{measurement}_15m"]
            self.assertIn(" RESAMPLE FOR 1h BEGIN ", query)
            self.assertIn(f" FROM {DB}.autogen.{measurement}, {DB}.tcpstates_raw.{measurement} ", query)
        # Every raw field is rolled up.
        for measurement, aliases in rollups.ROLLUPS.items():
            raw_fields = {f for p in self.points if p.measurement == measurement for f in p.fields}
            rolled = {source for _, source in aliases.values()}
            self.assertEqual(raw_fields - rolled, rollups.NOT_ROLLED_UP.get(measurement, set()), measurement)

    def test_backfill_equals_the_documented_rollups_of_the_raw_points(self):
        code, answer = self.backfill
        self.assertEqual(code, 0, answer)
        self.assertEqual(statement_errors(answer), [])
        written = sum(r["series"][0]["values"][0][1] for r in answer["results"])
        expected = rollups.expected_rollups(self.points)
        stored = rollups.stored_rollups(self.influx, DB, "tcpstates_15m")
        self.assertEqual(set(stored), set(expected))
        self.assertEqual(written, len(expected))
        for key in sorted(expected):
            self.assertEqual(stored[key], expected[key], key)
        # Both hosts, whichever policy their raw points are in.
        self.assertEqual({dict(k[2])["host"] for k in stored}, set(HOSTS))
        # Six hours of points: 24 or 25 quarter hours per series of the main measurement.
        buckets = {k[1] for k in expected if k[0] == "tcpstates"}
        self.assertIn(len(buckets), (24, 25))
        self.assertTrue(any(v.get("tcp_close_wait_max") == 56 for k, v in stored.items() if k[0] == "tcpstates"))

    def test_continuous_queries_write_the_same_rollups(self):
        """The shipped CQs, as influxd's CQ service runs them: copies that resample every second
        (not every 15 minutes) and write to a policy of their own."""
        self.q(f'CREATE RETENTION POLICY "cq_check" ON "{DB}" DURATION 1h REPLICATION 1')
        shipped = [(r["name"], r["query"]) for r in self.influx.query(DB, "SHOW CONTINUOUS QUERIES")
                   if r["__measurement"] == DB and not r["name"].endswith("_check")]
        self.assertEqual(len(shipped), 9)
        self.addCleanup(lambda: [self.q(f'DROP CONTINUOUS QUERY "{name}_check" ON "{DB}"') for name, _ in shipped])
        for name, query in shipped:
            copy, replaced = re.subn(rf"^CREATE CONTINUOUS QUERY {name} ON {DB} RESAMPLE FOR (\w+) BEGIN ",
                                     rf"CREATE CONTINUOUS QUERY {name}_check ON {DB} RESAMPLE EVERY 1s FOR \1 BEGIN ",
                                     query)
            copy, into = re.subn(rf" INTO {DB}\.tcpstates_15m\.", f" INTO {DB}.cq_check.", copy)
            self.assertEqual((replaced, into), (1, 1), query)
            self.q(copy)

        def written():
            # A run covers the last hour: five quarter hours, of which the oldest (partly before
            # now - 1h) falls outside cq_check's 1h retention and the newest holds data only if
            # no quarter hour began since set-up. So three full quarter hours at least.
            rows = rollups.stored_rollups(self.influx, DB, "cq_check")
            return rows if {k[0] for k in rows} >= {"tcpstates", "tcpstates_listen", "tcpstates_port_pressure"} and \
                len({k[1] for k in rows}) >= 3 else None
        self.assertTrue(harness.wait_for(written, timeout=20, interval=0.5), "the continuous queries wrote nothing")

        def complete():
            """(stored, expected) once every measurement's CQ has written its rows."""
            stored = written()
            if stored is None:
                return None
            expected = rollups.expected_rollups(self.points, buckets={k[1] for k in stored})
            return (stored, expected) if stored == expected else None
        # Each CQ runs every second, each on its own schedule: wait for all of them, generously.
        found = harness.wait_for(complete, timeout=60, interval=0.5)
        if found is None:  # the assertions below say what differs
            stored = written()
            found = stored, rollups.expected_rollups(self.points, buckets={k[1] for k in stored})
        stored, expected = found
        self.assertEqual(set(stored), set(expected))
        for key in sorted(expected):
            self.assertEqual(stored[key], expected[key], key)

    # -- conf/grafana: the dashboard ---------------------------------------------------------------
    def test_dashboard_is_importable(self):
        with open(DASHBOARD_FILE) as f:
            dashboard = json.load(f)
        for key in ("title", "uid", "panels", "templating", "schemaVersion", "time"):
            self.assertIn(key, dashboard)
        self.assertNotIn("id", dashboard)
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        self.assertEqual((variables["datasource"]["type"], variables["datasource"]["query"]), ("datasource", "influxdb"))
        self.assertEqual(variables["host"]["type"], "query")
        self.assertEqual(variables["host"]["datasource"], {"type": "influxdb", "uid": "${datasource}"})
        # Namespace and pod (--all-namespaces): All is .*, which also matches points without
        # the tag (one namespace per host), so the dashboard works in both modes.
        for name in ("netns", "pod"):
            self.assertEqual((variables[name]["type"], variables[name]["includeAll"], variables[name]["allValue"]),
                             ("query", True, ".*"))
        ids = [p["id"] for p in dashboard["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        text = json.dumps(dashboard)
        for host in HOSTS:
            self.assertNotIn(host, text)
        for panel in dashboard["panels"]:
            self.assertIn("type", panel)
            self.assertIn("gridPos", panel)
            if panel["type"] == "row":
                continue
            self.assertEqual(panel["datasource"], {"type": "influxdb", "uid": "${datasource}"}, panel["title"])
            for target in panel["targets"]:
                self.assertEqual(target["datasource"], panel["datasource"])
                self.assertTrue(target["rawQuery"])
                self.assertIn("$timeFilter", target["query"])
                self.assertIn('"host" =~ /^$host$/ AND "netns" =~ /^$netns$/ AND "pod" =~ /^$pod$/', target["query"])
                self.assertIn('GROUP BY time($__interval), "host", "netns"' if "time(" in target["query"]
                              else 'GROUP BY "host", "netns"', target["query"].replace("time(15m)", "time($__interval)"))
                # Raw points are read from both places they can be in (conf/README.md).
                source = re.search(r'FROM ("\w+"(?:\."\w+")?(?:, "\w+"\."\w+")?) WHERE', target["query"]).group(1)
                if not source.startswith('"tcpstates_15m".'):
                    measurement = source.split(",")[0]
                    self.assertEqual(source, f'{measurement}, "tcpstates_raw".{measurement}', panel["title"])
        titles = " ".join(p["title"] for p in dashboard["panels"])
        for needed in ("CLOSE_WAIT", "TIME_WAIT", "LISTEN", "Connections", "ESTABLISHED", "Every state",
                       "CLOSE_WAIT owners", "Vanished listeners", "Top namespaces by CLOSE_WAIT", "per port and state",
                       "Accept queue fill per port", "overflows", "New listeners", "CLOSE_WAIT oldest age"):
            self.assertIn(needed, titles)
        thresholds = {p["title"]: [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]
                      for p in dashboard["panels"] if p["type"] == "timeseries"
                      and p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"}
        self.assertEqual(sorted(thresholds.values()), [[None, 0.8], [None, 0.8], [None, 10], [None, 10], [None, 600],
                                                       [None, 600], [None, 5000], [None, 5000]])

    def dashboard_queries(self):
        with open(DASHBOARD_FILE) as f:
            dashboard = json.load(f)
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                yield panel, target["query"]

    def test_host_variable_lists_the_hosts(self):
        with open(DASHBOARD_FILE) as f:
            host = {v["name"]: v for v in json.load(f)["templating"]["list"]}["host"]
        series = self.q(host["query"])
        self.assertEqual(sorted(v[1] for s in series for v in s["values"]), sorted(HOSTS))

    def test_every_dashboard_query_runs_and_returns_its_series(self):
        """Raw panels over the hour up to the leaky app's restart (when every series has points:
        the service died in it), 7-day panels up to now."""
        for host_regex, hosts in (("web\\-1", {"web-1"}), ("(web\\-1|web\\-2)", set(HOSTS)), ("web\\-2", {"web-2"})):
            for panel, query in self.dashboard_queries():
                rollup = panel.get("timeFrom") == "7d"
                end = self.end_ns if rollup else self.grid(600)
                start = end - (7 * 86400 if rollup else 3600) * 10**9
                interval = "15m" if rollup else "30s"
                with self.subTest(panel=panel["title"], hosts=host_regex):
                    series = self.q(substitute(query, time_filter(start, end), interval, host_regex))
                    measurement = re.search(r'FROM (?:"\w+"\.)?"(\w+)"', query).group(1)
                    fields = selected_fields(query)
                    if rollup:  # a rollup alias stands for its raw field
                        fields = {rollups.ROLLUPS[measurement][f][1] for f in fields}
                    expected = {(p.tags["host"], p.tags.get("netns", "")) for p in self.points
                                if p.measurement == measurement and p.tags["host"] in hosts
                                and start <= p.timestamp <= end and fields & set(p.fields)}
                    if hosts != {"web-2"}:
                        self.assertTrue(series, "no series")
                    self.assertEqual({(s["tags"]["host"], s["tags"]["netns"]) for s in series}, expected)

    def test_dashboard_values_are_the_raw_points_and_the_rollups(self):
        queries = {panel["title"]: query for panel, query in self.dashboard_queries()}
        # The raw CLOSE_WAIT panel with its 30 s minimum interval shows each 30-second point.
        start, end = self.grid(400), self.grid(519)
        series = self.q(substitute(queries["CLOSE_WAIT"], time_filter(start, end), "30s", "web\\-1"))
        [series] = [s for s in series if s["tags"]["netns"] == ""]  # the host's own, not the container's
        self.assertEqual([v[1] for v in series["values"]],
                         [p.fields["tcp_close_wait"] for p in self.raw("tcpstates", "web-1", start, end)
                          if "family" not in p.tags and "netns" not in p.tags])
        # The 7-day TIME_WAIT panel: 15-minute means and maxes of the raw points.
        series = self.q(substitute(queries["TIME_WAIT (15-min mean, max)"],
                                   time_filter(self.end_ns - 7 * 86400 * 10**9, self.end_ns), "15m", "web\\-1"))
        [series] = [s for s in series if s["tags"]["netns"] == ""]
        self.assertEqual(series["columns"], ["time", "mean", "max"])
        for bucket, mean, maximum in series["values"]:
            if mean is None:
                continue
            raw = [p.fields["tcp_time_wait"] for p in self.raw("tcpstates", "web-1", bucket, bucket + BUCKET_NS - 1)
                   if "family" not in p.tags and "netns" not in p.tags]
            self.assertEqual((mean, maximum), (sum(raw) / len(raw), max(raw)))
        # The vanished-listeners table names the two ports of the service that died.
        series = self.q(substitute(queries["Vanished listeners"], time_filter(self.grid(500), self.grid(600)), "30s", ".*"))
        ports = {(s["tags"]["family"], s["tags"]["port"]) for s in series}
        listening_before = {(p.tags["family"], p.tags["port"]) for p in self.raw("tcpstates_listen", "web-1", self.grid(559), self.grid(559))}
        listening_after = {(p.tags["family"], p.tags["port"]) for p in self.raw("tcpstates_listen", "web-1", self.grid(560), self.grid(560))}
        self.assertEqual(ports, listening_before - listening_after)
        self.assertEqual(len(ports), 3)

    def test_namespace_variables_and_the_new_panels(self):
        """The namespace and pod variables, and the panels of the hand-written series, with the
        values worked out from handwritten()'s definitions."""
        with open(DASHBOARD_FILE) as f:
            variables = {v["name"]: v for v in json.load(f)["templating"]["list"]}
        queries = {panel["title"]: query for panel, query in self.dashboard_queries()}

        def tag_values(name, host_regex, netns_regex=".*"):
            series = self.q(substitute(variables[name]["query"], "", "", host_regex, netns_regex))
            return sorted(v[1] for s in series for v in s["values"])
        self.assertEqual(tag_values("netns", "web\\-1"), [POD_NS["netns"]])
        self.assertEqual(tag_values("netns", "web\\-2"), [])  # one namespace: All (.*) is what remains
        self.assertEqual(tag_values("pod", "(web\\-1|web\\-2)"), [POD_NS["pod"]])
        self.assertEqual(tag_values("pod", "web\\-1", "3f2a1b0c9d8e"), [POD_NS["pod"]])

        def run(title, first, last, host_regex=".*", netns_regex=".*", interval="30s"):
            return self.q(substitute(queries[title], time_filter(self.grid(first), self.grid(last)), interval,
                                     host_regex, netns_regex))
        # One namespace selected: only its CLOSE_WAIT series, 15 in gathers 500-599.
        series = run("CLOSE_WAIT", 480, 599, "web\\-1", "3f2a1b0c9d8e")
        self.assertEqual([s["tags"] for s in series], [{"host": "web-1", "netns": "3f2a1b0c9d8e"}])
        self.assertEqual([v[1] for v in series[0]["values"]], [0] * 20 + [15] * 100)
        # Top namespaces: each namespace's last counts in the range, pod and container named.
        series = run("Top namespaces by CLOSE_WAIT", 480, 550)
        rows = {(s["tags"]["host"], s["tags"]["netns"], s["tags"]["pod"], s["tags"]["container"]):
                dict(zip(s["columns"], s["values"][-1]))["close_wait"] for s in series}
        last = {}
        for p in self.points:
            if p.measurement == "tcpstates" and "family" not in p.tags and self.grid(480) <= p.timestamp <= self.grid(550):
                last[(p.tags["host"], p.tags.get("netns", ""), p.tags.get("pod", ""), p.tags.get("container", ""))] = \
                    p.fields["tcp_close_wait"]
        self.assertEqual(rows, last)
        self.assertEqual(rows[("web-1", POD_NS["netns"], POD_NS["pod"], POD_NS["container"])], 15)
        # Accept queue fill: the fullest 30 s of each port around the full queues.
        series = run("Accept queue fill per port", 190, 310, "web\\-1")
        fullest = {s["tags"]["port"]: max(v[1] for v in s["values"]) for s in series if s["tags"]["port"] in ("9443", "9444")}
        self.assertEqual(fullest, {"9443": 13 / 16, "9444": 0.8})
        # Overflows and drops: the container namespace's 5 + 2 (ListenDrops counts overflows too).
        series = run("Listen queue overflows and drops", 200, 220, "web\\-1", "3f2a1b0c9d8e")
        self.assertEqual([(sum(v[1] for v in s["values"] if v[1] is not None),
                           sum(v[2] for v in s["values"] if v[2] is not None)) for s in series], [(7, 7)])
        # New listeners: each host's one, named with its process.
        series = run("New listeners", 480, 599)
        listeners = {(s["tags"]["host"], s["tags"]["family"], s["tags"]["port"], s["tags"]["comm"], s["tags"]["unit"]):
                     [tuple(v[1:]) for v in s["values"]] for s in series if s["tags"]["port"] in ("6667", "8081")}
        self.assertEqual(listeners, {(host, tags["family"], tags["port"], tags["comm"], tags["unit"]): [(sockets, pid)]
                                     for host, (_, tags, sockets, pid) in NEW_LISTENERS.items()})
        # CLOSE_WAIT oldest age: up to the last gather with the sockets.
        series = run("CLOSE_WAIT oldest age", 480, 610, "web\\-1", "3f2a1b0c9d8e")
        self.assertEqual([(s["tags"]["netns"], max(v[1] for v in s["values"])) for s in series],
                         [(POD_NS["netns"], pod_age(599))])
        # Queued bytes: each gather's own (one point per 30 s).
        series = run("Queued bytes", 480, 499, "web\\-1")
        self.assertEqual([(s["tags"]["netns"], [v[1:] for v in s["values"]]) for s in series],
                         [(POD_NS["netns"], [[1000 + i, 2 * i] for i in range(480, 500)])])
        # Per port: the established counts of local port 443 on web-2, gather by gather.
        series = run("Connections per port and state", 480, 499, "web\\-2")
        by_port = {(s["tags"]["port"], s["tags"]["direction"]): [dict(zip(s["columns"], v))["established"]
                                                                  for v in s["values"]] for s in series}
        self.assertEqual(by_port, {("443", "local"): [20 + i % 7 for i in range(480, 500)],
                                   ("5432", "remote"): [4] * 20})
        # The 7-day accept-queue panel: the 15-minute maxima keep both full queues.
        series = self.q(substitute(queries["Accept queue fill (15-min max)"],
                                   time_filter(self.end_ns - 7 * 86400 * 10**9, self.end_ns), "15m", "web\\-1"))
        self.assertEqual({s["tags"]["port"]: max(v[1] for v in s["values"] if v[1] is not None) for s in series
                          if s["tags"]["port"] in ("9443", "9444")}, {"9443": 13 / 16, "9444": 0.8})

    # -- conf/grafana: the alert rules ---------------------------------------------------------
    def evaluate(self, rule, at_ns):
        """The rule as Grafana evaluates it at `at_ns`: query A over its relative range, then the
        reduce and threshold (or math) expressions. Returns {instance: (value, firing)}, {} for
        no data; an instance is the series' tags (see instance())."""
        steps = {d["refId"]: d for d in rule["data"]}
        query = steps["A"]
        window = query["relativeTimeRange"]
        start, end = at_ns - window["from"] * 10**9, at_ns - window["to"] * 10**9
        series = self.q(substitute(query["model"]["query"], time_filter(start, end), "1s", ".*"))
        results = {}
        for s in series:
            values = [v[1] for v in s["values"] if v[1] is not None]
            if not values:
                continue
            reducer = steps["B"]["model"]["reducer"]
            value = {"last": values[-1], "min": min(values), "max": max(values)}[reducer]
            condition = steps["C"]["model"]
            if condition["type"] == "math":  # "$B <op> number", non-zero when it holds
                op, limit = re.fullmatch(r"\$B (>=|>|<=|<) ([0-9.]+)", condition["expression"]).groups()
                firing = {">=": value >= float(limit), ">": value > float(limit),
                          "<=": value <= float(limit), "<": value < float(limit)}[op]
            else:
                evaluator = condition["conditions"][0]["evaluator"]
                limit = evaluator["params"][0]
                firing = value > limit if evaluator["type"] == "gt" else value < limit
            results[tuple(sorted(s["tags"].items()))] = (value, firing)
        return results

    def documented_evaluation(self, documented, at_ns):
        """The same from the raw points and conf/README.md's table."""
        measurement = documented.get("measurement", "tcpstates")
        per = documented.get("per", ())
        groups = {}
        for host in HOSTS:
            for p in self.raw(measurement, host, at_ns - documented["window_s"] * 10**9, at_ns):
                if documented["field"] in p.fields and (measurement != "tcpstates" or "family" not in p.tags):
                    groups.setdefault(instance(host, per, **{k: v for k, v in p.tags.items() if k != "host"}), []).append((p.timestamp, p.fields[documented["field"]]))
        results = {}
        for key, raw in groups.items():
            value = documented["reduce"]([v for _, v in sorted(raw, key=lambda tv: tv[0])])
            results[key] = (value, value >= documented["at_least"] if "at_least" in documented else value > documented["above"])
        return results

    def test_alert_rules_are_provisionable(self):
        with open(ALERT_FILE) as f:
            document = json.load(f)
        self.assertEqual(document["apiVersion"], 1)
        rules = [r for g in document["groups"] for r in g["rules"]]
        for group in document["groups"]:
            self.assertTrue(group["name"] and group["folder"] and group["interval"])
        self.assertEqual(len({r["uid"] for r in rules}), len(DOCUMENTED_ALERTS))
        for rule in rules:
            for key in ("uid", "title", "condition", "data", "for", "labels", "annotations", "noDataState", "execErrState"):
                self.assertIn(key, rule)
            refs = [d["refId"] for d in rule["data"]]
            self.assertIn(rule["condition"], refs)
            for step in rule["data"]:
                self.assertEqual(step["model"]["refId"], step["refId"])
                if step["datasourceUid"] != "__expr__":
                    self.assertEqual(step["datasourceUid"], "tcpstates-influxdb")
                    self.assertTrue(step["model"]["rawQuery"])
            self.assertNotIn("${", json.dumps(rule["annotations"]))  # provisioning would expand it
        with open(os.path.join(CONF, "grafana", "provisioning", "datasources", "tcpstates-influxdb.yaml")) as f:
            self.assertIn("uid: tcpstates-influxdb", f.read())

    def rules(self):
        with open(ALERT_FILE) as f:
            return {r["uid"]: r for g in json.load(f)["groups"] for r in g["rules"]}

    def test_alert_rules_minute_by_minute(self):
        """Every rule evaluated each minute from the scenario's start to 20 minutes after its
        end, values and states (Grafana's `for` and `noDataState`) equal to the documented
        rule's; and the story at its edges, spelled out."""
        rules = self.rules()
        self.assertEqual(set(rules), set(DOCUMENTED_ALERTS))
        with open(ALERT_FILE) as f:
            self.assertEqual([g["interval"] for g in json.load(f)["groups"]], ["1m"])
        ticks = [self.grid(0) + 10**9 + minute * 60 * 10**9 for minute in range(GATHERS // 2 + 20)]
        timelines = {}
        for uid, documented in DOCUMENTED_ALERTS.items():
            rule = rules[uid]
            got = alert_timeline([(at, self.evaluate(rule, at)) for at in ticks],
                                 parse_duration(rule["for"]), rule["noDataState"])
            want = alert_timeline([(at, self.documented_evaluation(documented, at)) for at in ticks],
                                  documented["for_s"] * 10**9, documented["no_data"])
            for minute, (at, states) in enumerate(got):
                self.assertEqual(states, want[minute][1], f"{uid} at minute {minute} of the scenario")
            timelines[uid] = [{host: state for host, (_, state) in states.items()} for _, states in want]

        def minutes(uid, state, host="web-1", **tags):
            key = instance(host, DOCUMENTED_ALERTS[uid].get("per", ()), **tags)
            return [m for m, states in enumerate(timelines[uid]) if states.get(key) == state]
        # CLOSE_WAIT: the lowest value of 10 minutes above 10 from a first minute on: 5 minutes
        # Pending, then Alerting until the restart at 5:00 (gather 600, minute 300).
        pending, alerting = minutes("tcpstates-close-wait", "Pending"), minutes("tcpstates-close-wait", "Alerting")
        self.assertEqual(pending, list(range(pending[0], pending[0] + 5)))
        self.assertEqual(alerting, list(range(pending[0] + 5, 300)))
        # TIME_WAIT: Alerting at the first minute after the burst (5:20, minute 320), no Pending.
        self.assertEqual(minutes("tcpstates-time-wait", "Pending"), [])
        self.assertEqual(minutes("tcpstates-time-wait", "Alerting")[0], 320)
        # LISTEN: the drop at 4:40 (minute 280): 1 minute Pending, Alerting until the lower count
        # has held for 15 minutes.
        self.assertEqual(minutes("tcpstates-listen-drop", "Pending"), [280])
        self.assertEqual(minutes("tcpstates-listen-drop", "Alerting"), list(range(281, 295)))
        for uid in DOCUMENTED_ALERTS:
            self.assertEqual(minutes(uid, "Pending", "web-2") + minutes(uid, "Alerting", "web-2"), [], uid)
        # Per namespace: web-1's container namespace holds 15 CLOSE_WAIT sockets in gathers
        # 500-599 (minutes 250-299.5); the window of minute m holds gathers 2m-19 .. 2m, all of
        # them in 500-599 from minute 260 to 299: Pending 260-264, Alerting 265-299. The host's
        # own series (no netns) alerts as above, on its own.
        self.assertEqual(minutes("tcpstates-close-wait", "Pending", **POD_NS), list(range(260, 265)))
        self.assertEqual(minutes("tcpstates-close-wait", "Alerting", **POD_NS), list(range(265, 300)))
        # CLOSE_WAIT age: the last age of the 2-minute window (gathers 2m-3 .. 2m) is above 600
        # from gather 519 (610 s) on: minute 260 (gather 520, 640 s) to 301 (gather 599 is the
        # last in the window); nothing for the host's own series (it has no ages).
        self.assertEqual(minutes("tcpstates-close-wait-age", "Alerting", **POD_NS), list(range(260, 302)))
        self.assertEqual({k for states in timelines["tcpstates-close-wait-age"] for k, state in states.items()
                          if state != "Normal"}, {instance("web-1", **POD_NS)})
        # Accept queue: port 9443 at 13/16 in gathers 200-209, port 9444 at exactly 8/10 (>= 0.8)
        # in gathers 300-303; the 5-minute window of minute m holds gathers 2m-9 .. 2m.
        self.assertEqual(minutes("tcpstates-accept-queue", "Alerting", family="ipv4", port="9443"),
                         list(range(100, 110)))
        self.assertEqual(minutes("tcpstates-accept-queue", "Alerting", family="ipv4", port="9444"),
                         list(range(150, 157)))
        self.assertEqual(minutes("tcpstates-accept-queue", "Pending", family="ipv4", port="9444"), [])
        # Overflows in gathers 210 and 211 (the container namespace): minutes 105 to 110.
        self.assertEqual(minutes("tcpstates-listen-overflows", "Alerting", **POD_NS), list(range(105, 111)))
        # No data: from the first minute whose window holds none of the points (the last is at
        # minute 359.5), CLOSE_WAIT and TIME_WAIT are Normal (noDataState OK), LISTEN is NoData.
        for uid, window_minutes, state in (("tcpstates-close-wait", 10, "Normal"), ("tcpstates-time-wait", 5, "Normal"),
                                           ("tcpstates-listen-drop", 15, "NoData")):
            first = GATHERS // 2 + window_minutes
            self.assertEqual(set(timelines[uid][first - 1]),
                             {instance(host) for host in HOSTS} | {instance("web-1", **POD_NS)}, uid)
            self.assertEqual(timelines[uid][first], {NO_DATA: state}, uid)


if __name__ == "__main__":
    unittest.main()
