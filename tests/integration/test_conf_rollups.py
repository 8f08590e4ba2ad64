"""The shipped Telegraf snippet and InfluxQL end to end, rolled up by influxd's own continuous
query service running the shipped continuous queries (not copies).

- conf/telegraf/tcpstates.conf is parsed as TOML, as Telegraf reads it: one [[inputs.execd]]
  with only options Telegraf knows, data_format "influx", a `signal` Telegraf accepts (its
  spellings are case-sensitive) that the command's --signal matches. Its command runs exactly
  as written (the program's installed path aside) under the execd emulator, as the `telegraf`
  user would (nobody here), in a namespace with a known socket population. The points, with
  the host tag Telegraf adds, go where Telegraf's stock [[outputs.influxdb]] writes them
  (database "telegraf", no retention policy: the default one); conf/influxdb/tcpstates.iql is
  applied, and the continuous queries' first run writes the 15-minute rows conf/README.md
  documents. Nothing else is configured: that is what an operator who installs the files gets.
- Every documented rollup (rollups.ROLLUPS) from values that tell mean, min, max, last and
  count apart, written to the default policy and to tcpstates_raw; then points that arrive
  after their quarter hour was rolled up, up to 45 minutes late: the next run (influxd
  restarted: the CQ service runs each query at once) rolls them up too (RESAMPLE FOR 1h).

The raw points are stamped in quarter hours that have ended (the execd's own 15 minutes
earlier), so that the continuous queries roll them up without the test waiting for a quarter
hour to end.
"""

import os
import re
import time
import tomllib
import unittest

import execd_emulator
import harness
import influxdb
import rollups
from rollups import BUCKET_NS

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SNIPPET = os.path.join(REPO, "conf", "telegraf", "tcpstates.conf")
DB = "telegraf"  # Telegraf's default database, the one tcpstates.iql sets up
# The options Telegraf's inputs.execd takes (plugins/inputs/execd/sample.conf) and those every
# input takes (docs/CONFIGURATION.md): Telegraf refuses to start on any other.
EXECD_OPTIONS = {"command", "environment", "signal", "restart_delay", "buffer_size", "stop_on_error",
                 "data_format", "interval", "precision", "collection_jitter", "collection_offset",
                 "name_override", "name_prefix", "name_suffix", "tags", "alias", "log_level",
                 "namepass", "namedrop", "fieldpass", "fielddrop", "tagpass", "tagdrop", "taginclude",
                 "tagexclude", "startup_error_behavior"}
GO_DURATION = r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+"
# The socket population the snippet's command gathers from (per family).
WORKLOAD = dict(listen=2, established=3, close_wait=2)


def away_from_a_quarter_hour_end(seconds=60):
    """Waits, if needed, until the next quarter hour is more than `seconds` away: the test then
    knows which quarter hours the continuous queries' next runs look at."""
    left = BUCKET_NS - time.time_ns() % BUCKET_NS
    if left < seconds * 10**9:
        time.sleep(left / 1e9 + 1)
    return time.time_ns() // BUCKET_NS * BUCKET_NS


def field_value(value):
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{value}i" if isinstance(value, int) else repr(value)


def line(measurement, tags, fields, timestamp):
    tag_text = "".join(f",{k}={v}" for k, v in sorted(tags.items()))
    field_text = ",".join(f"{k}={field_value(v)}" for k, v in fields.items())
    return f"{measurement}{tag_text} {field_text} {timestamp}"


def select_lists(path):
    """{measurement written INTO tcpstates_15m: {alias: (function, raw field)}} from an .iql
    file's SELECT lists, and [items that are not `function("field") AS "alias"`]."""
    text = "\n".join(line.split("--")[0] for line in open(path).read().splitlines())
    found, odd = {}, []
    for select, measurement in re.findall(
            r'SELECT\s+(.*?)\s+INTO "telegraf"\."tcpstates_15m"\."(\w+)"', text, re.S):
        if measurement in found:
            odd.append(f"{measurement} written twice")
        aliases = found.setdefault(measurement, {})
        for item in (i.strip() for i in select.split(",")):
            match = re.fullmatch(r'(\w+)\("(\w+)"\) AS "(\w+)"', item)
            if not match:
                odd.append(f"{measurement}: {item}")
                continue
            function, field, alias = match.groups()
            if alias in aliases:
                odd.append(f"{measurement}: {alias} twice")
            aliases[alias] = (function, field)
    return found, odd


class IqlMatchesTheDocumentedTableTest(unittest.TestCase):
    """Every alias of both shipped .iql files, with its function and raw field, is the one
    conf/README.md documents (rollups.ROLLUPS, written by hand), and every documented alias is
    there: read statically, so also for fields a test scenario never produces."""

    def test_every_alias_both_ways(self):
        for path in (rollups.IQL, rollups.BACKFILL):
            with self.subTest(file=os.path.basename(path)):
                found, odd = select_lists(path)
                self.assertEqual(odd, [])
                self.assertEqual(set(found), set(rollups.ROLLUPS))
                for measurement, documented in rollups.ROLLUPS.items():
                    shipped = found.get(measurement, {})
                    for alias in sorted(set(documented) | set(shipped)):
                        self.assertEqual(shipped.get(alias), documented.get(alias),
                                         f"{measurement}.{alias}: shipped vs documented")

    def test_continuous_queries_are_named_after_their_measurement(self):
        text = open(rollups.IQL).read()
        created = re.findall(r'CREATE CONTINUOUS QUERY "(\w+)" ON "telegraf" RESAMPLE FOR 1h BEGIN\s+'
                             r'SELECT.*?INTO "telegraf"\."tcpstates_15m"\."(\w+)"', text, re.S)
        self.assertEqual(sorted(created), sorted((f"{m}_15m", m) for m in rollups.ROLLUPS))


class RollupsTestCase(unittest.TestCase):
    def setUp(self):
        influxdb.require_influxd()
        self.influx = influxdb.InfluxDB().start()
        self.addCleanup(self.influx.stop)

    def query(self, statement):
        status, body = self.influx._request("POST", "/query", {"q": statement})
        self.assertEqual(status, 200, body)

    def write(self, lines, rp=None):
        """POST /write as Telegraf's influxdb output does: rp only when it is configured."""
        params = {"db": DB, "precision": "ns"}
        if rp:
            params["rp"] = rp
        status, body = self.influx._request("POST", "/write", params, ("\n".join(lines) + "\n").encode())
        self.assertEqual(status, 204, body)

    def apply_iql(self):
        code, answer = rollups.apply_file(self.influx, rollups.IQL)
        self.assertEqual(code, 0, answer)
        self.assertEqual(rollups.statement_errors(answer), [])

    def assert_rolled_up(self, points):
        """Waits for the continuous queries to write exactly the documented rollups of `points`."""
        expected = rollups.expected_rollups(points)
        self.assertTrue(expected)

        def stored():
            rows = rollups.stored_rollups(self.influx, DB, "tcpstates_15m")
            return rows if rows == expected else None
        if harness.wait_for(stored, timeout=20, interval=0.5) is None:
            self.assertEqual(rollups.stored_rollups(self.influx, DB, "tcpstates_15m"), expected,
                             self.influx.log_text()[-2000:])
        return expected


class ShippedSnippetTest(RollupsTestCase):
    def test_snippet_points_are_rolled_up_with_nothing_else_configured(self):
        harness.require_root()
        with open(SNIPPET, "rb") as f:
            config = tomllib.load(f)
        self.assertEqual(list(config), ["inputs"])
        self.assertEqual(list(config["inputs"]), ["execd"])
        self.assertEqual(len(config["inputs"]["execd"]), 1)
        execd = config["inputs"]["execd"][0]
        self.assertLessEqual(set(execd), EXECD_OPTIONS)
        self.assertEqual(execd["data_format"], "influx")
        self.assertIn(execd["signal"], execd_emulator.TELEGRAF_SIGNALS)
        for option in ("interval", "restart_delay"):
            self.assertRegex(execd[option], f"^{GO_DURATION}$")
        command = execd["command"]
        self.assertEqual(command[0], "/usr/local/bin/tcpstates-execd")  # the install rewrites it
        signals = [arg.split("=", 1)[1] for arg in command if arg.startswith("--signal=")]
        self.assertEqual([s.upper() if s != "none" else s for s in signals], [execd["signal"]])
        tags = execd.get("tags", {})

        program = harness.binary("plugins/telegraf/tcpstates-execd")
        away_from_a_quarter_hour_end()
        with harness.Workload(**WORKLOAD) as workload:
            self.assertEqual(workload.settle(), workload.expected)
            argv = workload.nsenter(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                     program] + command[1:])
            with execd_emulator.ExecdEmulator(argv, signal=execd["signal"]) as emulator:
                for gathers in range(1, 4):
                    emulator.trigger()
                    self.assertTrue(harness.wait_for(
                        lambda: len({l.point.timestamp for l in emulator.lines if l.point}) == gathers, 5))
                stopped = emulator.stop()
            self.assertEqual((stopped.returncode, stopped.escalation), (0, None))
            self.assertEqual(emulator.parse_errors(), [])
            self.assertEqual(emulator.unprefixed_stderr(), [])
            counts = {state: workload.total(state) for state in harness.STATES}

        # What Telegraf's stock output writes: the host tag, the snippet's tags, every point.
        received = [l.point for l in emulator.lines]
        self.assertEqual({p.measurement for p in received},
                         {"tcpstates", "tcpstates_close_wait_summary", "tcpstates_listen",
                          "tcpstates_listen_summary"})
        first = next(p for p in received if p.measurement == "tcpstates")
        self.assertEqual({k: v for k, v in first.fields.items() if k != "tcp_connections"},
                         {f"tcp_{state}": n for state, n in counts.items()})
        lines, points = [], []
        for p in received:
            # As if gathered 15 minutes earlier: in a quarter hour that has ended.
            text = line(p.measurement, {**p.tags, **tags, "host": "web-1"}, p.fields, p.timestamp - BUCKET_NS)
            lines.append(text)
            points.append(execd_emulator.parse_line(text.encode()))
        self.query(f'CREATE DATABASE "{DB}"')  # Telegraf's output does, at start
        self.write(lines)
        self.apply_iql()
        expected = self.assert_rolled_up(points)
        # tcpstates_listen_summary's overflows and drops exist from the second gather on.
        self.assertEqual({k[0] for k in expected}, {"tcpstates", "tcpstates_close_wait_summary",
                                                    "tcpstates_listen", "tcpstates_listen_summary"})
        samples = [row["samples"] for key, row in expected.items() if key[0] == "tcpstates"]
        self.assertEqual(sum(samples), 3)


class DocumentedRollupsTest(RollupsTestCase):
    # Values whose mean (4.6), min, max, first, last, median and count all differ.
    VALUES = [8, 1, 9, 3, 2]
    SERIES = {"tcpstates": {},
              "tcpstates_port": {"direction": "local", "port": "443"},
              "tcpstates_close_wait": {"comm": "leaky", "unit": "leaky.service"},
              "tcpstates_close_wait_summary": {},
              "tcpstates_listen": {"family": "ipv4", "port": "8080"},
              "tcpstates_listen_summary": {},
              "tcpstates_listen_vanished": {"family": "ipv6", "port": "9090"},
              "tcpstates_listen_new": {"family": "ipv4", "port": "6667", "comm": "miner", "unit": "miner.service"},
              "tcpstates_port_pressure": {"endpoint": "10.0.0.1:443"}}
    # The execd's float fields (the others are integers): written as value / 10.
    FLOATS = {"ratio", "fill", "age_seconds"}
    # plugins/telegraf/README.md's all-namespaces tags: the host's own namespace, and a
    # Kubernetes container's (netns and container: its short id; pod: the pod UID).
    NAMESPACES = {"host": {"netns": "host"},
                  "pod": {"netns": "3f2a1b0c9d8e", "pod": "7c1d4e2a-9b3f-4c55-8e21-0a6b5d4c3e2f",
                          "container": "3f2a1b0c9d8e"}}

    def points(self, quarter, values, host, offset_s=0, namespace=None):
        """Lines of every measurement's series in the quarter hour starting at `quarter`, a
        point a minute from 1 minute in, every raw field taking `values` in turn; with
        `namespace` (a NAMESPACES key), tagged as --all-namespaces tags them."""
        lines = []
        for measurement, tags in self.SERIES.items():
            fields = {source for _, source in rollups.ROLLUPS[measurement].values()}
            fields |= rollups.NOT_ROLLED_UP.get(measurement, set())
            for i, value in enumerate(values):
                lines.append(line(measurement, {**tags, **self.NAMESPACES.get(namespace, {}), "host": host},
                                  {f: value / 10 if f in self.FLOATS else value for f in sorted(fields)},
                                  quarter + (60 * (i + 1) + offset_s) * 10**9))
        return lines

    def test_namespaces_are_rolled_up_apart(self):
        """One host in all-namespaces mode: the same series in two namespaces, written in the
        same quarter hour with different values, stay two rows with their own values (GROUP BY
        * keeps netns, pod and container)."""
        now = away_from_a_quarter_hour_end()
        self.apply_iql()
        quarter = now - BUCKET_NS
        written = self.points(quarter, self.VALUES, "a", namespace="host") + \
            self.points(quarter, [100, 0, 50, 10, 40], "a", namespace="pod")
        self.write(written)
        self.influx.restart()
        expected = self.assert_rolled_up([execd_emulator.parse_line(l.encode()) for l in written])
        host_ns = (("host", "a"), ("netns", "host"))
        pod_ns = tuple(sorted({"host": "a", **self.NAMESPACES["pod"]}.items()))
        # Every measurement, once per namespace.
        self.assertEqual(sorted((k[0], k[2]) for k in expected),
                         sorted((m, tuple(sorted({**tags, **dict(ns)}.items())))
                                for m, tags in self.SERIES.items() for ns in (host_ns, pod_ns)))
        # Worked out by hand: 8 1 9 3 2 (mean 4.6) and 100 0 50 10 40 (mean 40, sum 200).
        for ns, (mean, low, high, total) in ((host_ns, (4.6, 1, 9, 23)), (pod_ns, (40.0, 0, 100, 200))):
            row = expected[("tcpstates", quarter, ns)]
            self.assertEqual((row["tcp_close_wait"], row["tcp_close_wait_max"], row["tcp_listen_min"], row["samples"]),
                             (mean, high, low, 5))
            row = expected[("tcpstates_listen_summary", quarter, ns)]
            self.assertEqual((row["overflows"], row["overflows_max"]), (total, high))
            row = expected[("tcpstates_close_wait_summary", quarter, ns)]
            self.assertEqual(row["age_seconds_max"], high / 10)
            row = expected[("tcpstates_port", quarter, tuple(sorted(ns + (("direction", "local"), ("port", "443")))))]
            self.assertEqual((row["tcp_established"], row["tcp_connections_max"]), (mean, high))

    def test_every_documented_rollup_and_points_up_to_45_minutes_late(self):
        now = away_from_a_quarter_hour_end()
        self.apply_iql()  # creates the database and policies; the first runs find nothing
        quarters = [now - n * BUCKET_NS for n in (1, 2, 3)]  # the last three that ended
        # On time: before a run rolls their quarter hour up. host "a" writes as Telegraf's stock
        # output does (the default policy), host "b" is routed to tcpstates_raw.
        on_time = {"a": self.points(quarters[0], self.VALUES, "a"), "b": self.points(quarters[0], self.VALUES, "b")}
        self.write(on_time["a"])
        self.write(on_time["b"], rp="tcpstates_raw")
        self.influx.restart()
        written = on_time["a"] + on_time["b"]
        expected = self.assert_rolled_up([execd_emulator.parse_line(l.encode()) for l in written])
        row = expected[("tcpstates", quarters[0], (("host", "a"),))]
        self.assertEqual((row["tcp_listen"], row["tcp_listen_min"], row["tcp_time_wait_max"], row["samples"]),
                         (4.6, 1, 9, 5))
        types = rollups.stored_types(self.influx, DB, "tcpstates_15m")
        self.assertEqual(types, rollups.expected_types([execd_emulator.parse_line(l.encode()) for l in written]))

        # Late: after the run that rolled their quarter hour up, into each of the last three.
        late = (self.points(quarters[0], [20], "a", offset_s=30) + self.points(quarters[1], self.VALUES, "a")
                + self.points(quarters[2], self.VALUES, "b"))
        self.write([l for l in late if ",host=a" in l])
        self.write([l for l in late if ",host=b" in l], rp="tcpstates_raw")
        self.influx.restart()
        expected = self.assert_rolled_up([execd_emulator.parse_line(l.encode()) for l in written + late])
        row = expected[("tcpstates", quarters[0], (("host", "a"),))]
        self.assertEqual((row["tcp_time_wait_max"], row["samples"]), (20, 6))
        self.assertEqual({(k[1], dict(k[2])["host"]) for k in expected},
                         {(quarters[0], "a"), (quarters[0], "b"), (quarters[1], "a"), (quarters[2], "b")})


if __name__ == "__main__":
    unittest.main()
