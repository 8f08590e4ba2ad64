"""conf/influxdb in tests: the files applied as documented, and the 15-minute rollups as
conf/README.md documents them, computed here without the .iql files.

ROLLUPS is the README's table of "tcpstates_15m" fields, written out by hand: a test compares
what the shipped continuous queries and backfill.iql store with what this table says, so an
alias whose function or source field changes in a .iql file, or that disappears, fails.
"""

import json
import os
import subprocess

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IQL = os.path.join(REPO, "conf", "influxdb", "tcpstates.iql")
BACKFILL = os.path.join(REPO, "conf", "influxdb", "backfill.iql")

BUCKET_NS = 15 * 60 * 10**9
STATE_FIELDS = ["tcp_connections", "tcp_established", "tcp_time_wait", "tcp_close_wait", "tcp_listen",
                "tcp_syn_sent", "tcp_syn_recv", "tcp_fin_wait1", "tcp_fin_wait2", "tcp_close",
                "tcp_last_ack", "tcp_closing"]
PORT_PRESSURE_SETTINGS = ["range_size", "range_low", "range_high", "tcp_fin_timeout", "tcp_tw_reuse",
                          "tcp_max_tw_buckets"]

# {measurement: {alias in tcpstates_15m: (function, raw field)}}; "count" counts the points.
ROLLUPS = {
    # every raw field as its mean under the same name; maxes and a min with a suffix; samples
    "tcpstates": {**{field: ("mean", field) for field in STATE_FIELDS},
                  "tcp_close_wait_max": ("max", "tcp_close_wait"),
                  "tcp_time_wait_max": ("max", "tcp_time_wait"),
                  "tcp_connections_max": ("max", "tcp_connections"),
                  "tcp_listen_min": ("min", "tcp_listen"),
                  "samples": ("count", "tcp_connections"),
                  # with --queued-bytes only
                  **{f"{q}_queued_bytes": ("mean", f"{q}_queued_bytes") for q in ("rx", "tx")},
                  **{f"{q}_queued_bytes_max": ("max", f"{q}_queued_bytes") for q in ("rx", "tx")}},
    # per configured port and direction: the same as the counts, queued bytes aside
    "tcpstates_port": {**{field: ("mean", field) for field in STATE_FIELDS},
                       "tcp_close_wait_max": ("max", "tcp_close_wait"),
                       "tcp_time_wait_max": ("max", "tcp_time_wait"),
                       "tcp_connections_max": ("max", "tcp_connections"),
                       "tcp_listen_min": ("min", "tcp_listen"),
                       "samples": ("count", "tcp_connections")},
    "tcpstates_close_wait": {"sockets": ("mean", "sockets"), "sockets_max": ("max", "sockets"),
                             "processes": ("max", "processes"),
                             "age_seconds": ("mean", "age_seconds"), "age_seconds_max": ("max", "age_seconds")},
    "tcpstates_close_wait_summary": {"attributed": ("mean", "attributed"),
                                     "other": ("mean", "other"),
                                     "unattributed": ("mean", "unattributed"),
                                     "unattributed_max": ("max", "unattributed"),
                                     "not_accepted": ("mean", "not_accepted"),
                                     "processes_unreadable": ("mean", "processes_unreadable"),
                                     "processes_hidden": ("mean", "processes_hidden"),
                                     "processes_failed": ("mean", "processes_failed"),
                                     "other_owners_max": ("max", "other_owners"),
                                     "budget_exhausted_max": ("max", "budget_exhausted"),
                                     "age_seconds": ("mean", "age_seconds"),
                                     "age_seconds_max": ("max", "age_seconds"),
                                     "older_than_60s": ("mean", "older_than_60s"),
                                     "older_than_60s_max": ("max", "older_than_60s"),
                                     "older_than_1h": ("mean", "older_than_1h"),
                                     "older_than_1h_max": ("max", "older_than_1h")},
    "tcpstates_listen": {"sockets": ("mean", "sockets"), "sockets_min": ("min", "sockets"),
                         "queue": ("mean", "queue"), "queue_max": ("max", "queue"),
                         "backlog": ("last", "backlog"),
                         "fill": ("mean", "fill"), "fill_max": ("max", "fill")},
    # deltas per gather: their sum is what the quarter hour overflowed or dropped
    "tcpstates_listen_summary": {"overflows": ("sum", "overflows"), "overflows_max": ("max", "overflows"),
                                 "drops": ("sum", "drops"), "drops_max": ("max", "drops")},
    "tcpstates_listen_vanished": {"events": ("count", "sockets"), "sockets": ("max", "sockets")},
    "tcpstates_listen_new": {"events": ("count", "sockets"), "sockets": ("max", "sockets")},
    "tcpstates_port_pressure": {"ports_in_use": ("mean", "ports_in_use"), "ratio": ("mean", "ratio"),
                                "ports_in_use_max": ("max", "ports_in_use"), "ratio_max": ("max", "ratio"),
                                **{field: ("last", field) for field in PORT_PRESSURE_SETTINGS}},
}
# Raw fields left out on purpose: a pid is no quantity, and text has no mean.
NOT_ROLLED_UP = {"tcpstates_close_wait": {"pid"},
                 "tcpstates_listen_new": {"pid"},
                 # How many listen lines there were, and LISTEN sockets beyond the cap:
                 # what the raw hour is for (the rollups keep the per-port series).
                 "tcpstates_listen_summary": {"ports", "untracked_sockets"},
                 "tcpstates_close_wait_summary": {"owner_search", "why"}}


def reduce(function, values):
    """values: [(timestamp, value)] in time order."""
    numbers = [v for _, v in values]
    if function == "mean":
        return sum(numbers) / len(numbers)
    if function == "max":
        return max(numbers)
    if function == "min":
        return min(numbers)
    if function == "sum":
        return sum(numbers)
    if function == "count":
        return len(numbers)
    if function == "last":
        return values[-1][1]
    raise ValueError(function)


def stored_type(function, raw_type):
    """InfluxDB's type for a rollup: a mean is a float, a count an integer, the others keep the
    raw field's type."""
    return {"mean": "float", "count": "integer"}.get(function, raw_type)


def expected_rollups(points, buckets=None):
    """{(measurement, bucket start, sorted tag items): {alias: value}} over execd_emulator
    Points; a row has every documented alias whose raw field is in one of its points (an
    optional field, like rx_queued_bytes without --queued-bytes, leaves its aliases out, as
    InfluxDB leaves out a null; a row with none is not written)."""
    groups = {}
    for p in points:
        if p.measurement not in ROLLUPS:
            continue
        bucket = p.timestamp // BUCKET_NS * BUCKET_NS
        if buckets is not None and bucket not in buckets:
            continue
        group = groups.setdefault((p.measurement, bucket, tuple(sorted(p.tags.items()))), {})
        for name, value in p.fields.items():
            group.setdefault(name, []).append((p.timestamp, value))
    rows = {key: {alias: reduce(function, sorted(fields[source]))
                  for alias, (function, source) in ROLLUPS[key[0]].items() if source in fields}
            for key, fields in groups.items()}
    # A quarter hour whose points hold no rolled-up field (tcpstates_listen_summary of a first
    # gather: only ports and untracked_sockets) writes no row at all.
    return {key: row for key, row in rows.items() if row}


def stored_rollups(influx, database, rp, measurements=ROLLUPS):
    """What a policy holds, keyed like expected_rollups()."""
    stored = {}
    for measurement in measurements:
        document = influx.query_raw(database, f'SELECT * FROM "{rp}"."{measurement}" GROUP BY *')
        for series in document["results"][0].get("series", []):
            tags = tuple(sorted((k, v) for k, v in series.get("tags", {}).items() if v != ""))
            for values in series["values"]:
                row = dict(zip(series["columns"], values))
                bucket = row.pop("time")
                stored[(measurement, bucket, tags)] = {k: v for k, v in row.items() if v is not None}
    return stored


def stored_types(influx, database, rp):
    """{(measurement, field): InfluxDB's type} of a policy."""
    document = influx.query_raw(database, f'SHOW FIELD KEYS FROM "{rp}"./.*/')
    return {(series["name"], key): kind for series in document["results"][0].get("series", [])
            for key, kind in series["values"]}


def expected_types(points):
    """{(measurement, alias): type} from the documented functions and the raw fields' types."""
    raw = {(p.measurement, name): kind for p in points for name, kind in p.field_types.items()}
    return {(measurement, alias): stored_type(function, raw[(measurement, source)])
            for measurement, aliases in ROLLUPS.items() for alias, (function, source) in aliases.items()
            if (measurement, source) in raw}


def apply_file(influx, path):
    """The documented command: curl -sS -XPOST http://HOST:8086/query --data-urlencode q@FILE.
    Returns (curl's exit code, the decoded answer)."""
    run = subprocess.run(["curl", "-sS", "-XPOST", influx.url + "/query", "--data-urlencode", "q@" + path],
                         capture_output=True, text=True, timeout=60)
    return run.returncode, json.loads(run.stdout) if run.returncode == 0 else run.stderr


def statement_errors(answer):
    return [r.get("error") for r in answer["results"] if "error" in r]
