"""A throwaway InfluxDB 1.x server for tests: Debian's `influxd`, on loopback, in a temp dir.

    with InfluxDB() as influx:
        influx.create_database("t")
        status, body = influx.write("t", "m f=1i 1\\n")     # (204, "") when every line is stored
        rows = influx.query("t", 'SELECT * FROM "m"')      # [{"time": ..., "f": 1}, ...]

Every port is chosen free on 127.0.0.1 and every file lives in a temp dir removed on exit, so
tests can run in parallel and never touch a system InfluxDB. Python stdlib only.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"


def free_loopback_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_influxd():
    if not os.path.exists(INFLUXD):
        raise unittest.SkipTest("influxd is not installed (apt-get install influxdb)")


class InfluxDBError(RuntimeError):
    pass


class InfluxDB:
    """influxd run -config <temp config>; stop() (or leaving the with-block) kills it and
    removes its files. `extra_config` is appended to the generated config (TOML)."""

    def __init__(self, extra_config="", start_timeout=30.0):
        self.extra_config = extra_config
        self.start_timeout = start_timeout
        self.dir = None
        self.process = None
        self.url = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self):
        require_influxd()
        self.dir = tempfile.mkdtemp(prefix="tcpstates-influxd-")
        return self._launch()

    def restart(self):
        """Stops influxd and starts it again on the same data (as a service restart does: the
        continuous-query service forgets when each query last ran). The ports may change."""
        self._kill()
        return self._launch()

    def _launch(self):
        last_error = None
        # A free port can be taken between our probe and influxd's bind: retry a few times.
        for _ in range(3):
            rpc_port, http_port = free_loopback_port(), free_loopback_port()
            config_path = self._write_config(rpc_port, http_port)
            self.url = f"http://127.0.0.1:{http_port}"
            self._log = open(os.path.join(self.dir, "influxd.log"), "ab")
            self.process = subprocess.Popen([INFLUXD, "run", "-config", config_path],
                                            stdin=subprocess.DEVNULL, stdout=self._log,
                                            stderr=subprocess.STDOUT)
            try:
                self._wait_for_ping()
                return self
            except InfluxDBError as error:
                last_error = error
                self._kill()
        self.stop()
        raise last_error

    def stop(self):
        self._kill()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def log_text(self):
        """What influxd logged so far (for failure messages)."""
        try:
            with open(os.path.join(self.dir, "influxd.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    # -- HTTP API ----------------------------------------------------------------------------
    def ping(self):
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=2) as response:
                return response.status == 204
        except (urllib.error.URLError, OSError):
            return False

    def create_database(self, name):
        status, body = self._request("POST", "/query", {"q": f'CREATE DATABASE "{name}"'})
        if status != 200:
            raise InfluxDBError(f"CREATE DATABASE {name}: HTTP {status}: {body}")

    def write(self, database, data, precision="ns"):
        """POSTs line protocol (str or bytes) to /write; returns (HTTP status, body text).
        204 means every line was stored."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        return self._request("POST", "/write", {"db": database, "precision": precision}, data)

    def query_raw(self, database, q):
        """GET /query; returns the decoded JSON document (raises on HTTP errors)."""
        status, body = self._request("GET", "/query", {"db": database, "q": q, "epoch": "ns"})
        if status != 200:
            raise InfluxDBError(f"query {q!r}: HTTP {status}: {body}")
        return json.loads(body)

    def query(self, database, q):
        """Rows of the first statement's series as dicts (column -> value), tags included for
        GROUP BY queries under the key "tags"; [] when nothing matched."""
        document = self.query_raw(database, q)
        result = document["results"][0]
        if "error" in result:
            raise InfluxDBError(f"query {q!r}: {result['error']}")
        rows = []
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values))
                row["__measurement"] = series.get("name")
                if "tags" in series:
                    row["tags"] = series["tags"]
                rows.append(row)
        return rows

    # -- internals ---------------------------------------------------------------------------
    def _write_config(self, rpc_port, http_port):
        d = self.dir
        config = f"""
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{d}/meta"
  logging-enabled = false

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  log-enabled = false
  run-interval = "1s"
{self.extra_config}
"""
        path = os.path.join(d, "influxd.conf")
        with open(path, "w") as f:
            f.write(config)
        return path

    def _wait_for_ping(self):
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise InfluxDBError(f"influxd exited with {self.process.returncode}:\n{self.log_text()}")
            if self.ping():
                return
            time.sleep(0.1)
        raise InfluxDBError(f"influxd did not answer /ping within {self.start_timeout}s:\n{self.log_text()}")

    def _kill(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def _request(self, method, path, params, body=None):
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")
