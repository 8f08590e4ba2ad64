"""The .debs as an operator uses them: build (cpack), `apt-get install`, run, purge.

Installs tcpstates and tcpstates-collectd on a machine that gets only what they declare: their
Depends, and the packages they Recommend (collectd, for its stock collectd.conf), read from
the .debs, without those packages' own recommendations. Then:
  - runs lintian on the .debs (when installed): no tag but those the overrides justify;
  - checks versions, dependencies (collectd-core bounded by the headers' version and collectd
    6, Recommends collectd, which apt's default run would install), conffiles, the installed
    paths, and that every man page's SEE ALSO names a page that is installed;
  - checks what collectd.service needs to start (its ConditionPathExists paths exist, its
    ExecStartPre succeeds), then runs Debian's collectd with its stock
    /etc/collectd/collectd.conf, inside a network namespace holding a known socket
    population, and reads the values back from the RRD files the stock rrdtool plugin writes:
    exact counts prove the conf.d snippet loaded the plugin and its values were dispatched;
    the plugin's version line is read from syslog (a socket of ours at /dev/log);
  - runs /usr/bin/tcpstates-execd --once as `nobody` in the same namespace;
  - purges what it installed and checks that nothing of the packages, and nothing new under
    /etc, /usr or /var/lib/collectd, is left.
Packages the machine had before are left alone (collectd-core, say). Cleans up on failure.
Needs root, apt-get with package lists, and the build's tests (the socket workload).
"""

import glob
import grp
import json
import os
import re
import shutil
import stat
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import STATES, Workload, wait_for  # noqa: E402
from test_cmake_install import see_also  # noqa: E402

VERSION = os.environ.get("TCPSTATES_VERSION", "")
CPACK_CONFIG = os.environ.get("TCPSTATES_CPACK_CONFIG", "")
OURS = ["tcpstates", "tcpstates-collectd"]
SNAPSHOT_ROOTS = ["/etc", "/usr", "/var/lib/collectd"]
RRD_ROOT = "/var/lib/collectd/rrd"
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
# What a run is about to install, written before it installs and removed by its purge: a run
# killed in between (a ctest timeout) leaves it, and the next run purges what it names instead
# of taking our packages for an operator's and skipping forever.
STATE_FILE = "/var/lib/tcpstates-install-test.json"
# In the environment of the collectd this test starts: how the next run finds it if it outlived
# a killed run.
COLLECTD_MARKER = "TCPSTATES_INSTALL_TEST_COLLECTD=1"
# Counts per family in the namespace collectd and tcpstates-execd read.
WORKLOAD = dict(listen=3, established=4, close_wait=2)


def run(argv, **kwargs):
    kwargs.setdefault("timeout", 600)
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def installed_packages():
    out = run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\n"]).stdout
    return {line.split("\t")[0] for line in out.splitlines()
            if line.split("\t")[1].startswith("ii")}


def package_states(names):
    out = run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\n"] + names).stdout
    return {line.split("\t")[0]: line.split("\t")[1].strip() for line in out.splitlines()}


def collectds_started_here():
    """pids of the collectd processes a run of this test started (COLLECTD_MARKER)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() != "collectd":
                    continue
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if COLLECTD_MARKER.encode() in environ.read().split(b"\0"):
                    pids.append(int(entry))
        except (OSError, ValueError):
            continue
    return pids


def recover_from_killed_run():
    """Undo what a killed earlier run left: its collectd, and the packages it installed."""
    for pid in collectds_started_here():
        print(f"recovering: killing collectd {pid}, left by an earlier run", file=sys.stderr)
        os.kill(pid, signal.SIGKILL)
    if not wait_for(lambda: not collectds_started_here(), timeout=10):
        raise RuntimeError(f"leftover collectd {collectds_started_here()} does not die")
    if os.path.exists(STATE_FILE):
        with open(STATE_FILE) as f:
            state = json.load(f)
        before = set(state["installed_before"])
        if state["created_policy_rc_d"] and os.path.exists("/usr/sbin/policy-rc.d"):
            os.unlink("/usr/sbin/policy-rc.d")
        leftover = sorted((installed_packages() - before) | {
            p for p, state in package_states(OURS).items() if state.startswith(("ii", "rc"))})
        print(f"recovering: purging {leftover}, left by an earlier run", file=sys.stderr)
        if leftover:
            result = run(["apt-get", "purge", "-y", "-q"] + leftover, env=APT_ENV)
            if result.returncode != 0:
                raise RuntimeError(f"purging {leftover} failed: {result.stdout}{result.stderr}")
        os.unlink(STATE_FILE)


def rrd_last_value(path):
    """The last value fed to a one-source RRD file (what `rrdtool lastupdate` prints), None
    before the first update. rrd_format.h's layout on LP64 (x86_64, arm64): stat_head_t 128
    bytes (ds_cnt, rra_cnt at 24 and 32), ds_def_t and rra_def_t 120 each, live_head_t 16
    (format 0003 and later), then pdp_prep_t whose first 30 bytes hold the last value as text."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RRD\0" or struct.unpack_from("<d", data, 16)[0] != 8.642135e130:
        raise ValueError(f"{path}: not an RRD file of this machine's layout")
    ds_count, rra_count = struct.unpack_from("<QQ", data, 24)
    live_head = 128 + 120 * (ds_count + rra_count)
    last = data[live_head + 16:live_head + 16 + 30].split(b"\0")[0]
    return None if last in (b"", b"U") else float(last)


def deb_field(deb, field):
    return run(["dpkg-deb", "-f", deb, field]).stdout.strip()


def upstream_version(package):
    """"5.12" from the installed package's "5.12.0-14"."""
    version = run(["dpkg-query", "-W", "-f", "${Version}", package]).stdout
    return ".".join(re.match(r"(?:\d+:)?(\d+)\.(\d+)", version).groups())


def snapshot():
    paths = set()
    for root in SNAPSHOT_ROOTS:
        if os.path.lexists(root):
            paths.add(root)
        for directory, dirs, files in os.walk(root):
            paths.update(os.path.join(directory, name) for name in dirs + files)
    return paths


class SyslogCapture:
    """collectd's stock config logs to syslog: a datagram socket of ours takes its place.

    Where /dev/log does not exist (containers) ours is created there; otherwise collectd runs
    in a private mount namespace with ours bind-mounted over /dev/log, so the host's syslog is
    never touched."""

    def __init__(self, directory):
        self.messages = []
        self.created_dev_log = not os.path.lexists("/dev/log")
        self.path = "/dev/log" if self.created_dev_log else os.path.join(directory, "log")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        # Read all the time: a syslog sender blocks once a few datagrams are queued
        # (net.unix.max_dgram_qlen), and would stop collectd.
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            self.messages.append(data.decode(errors="replace"))

    def wrap(self, argv):
        if self.created_dev_log:
            return argv
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /dev/log && exec "$@"', self.path] + argv

    def text(self):
        return "\n".join(self.messages)

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.reader.join(timeout=5)
        if self.created_dev_log and os.path.exists("/dev/log"):
            os.unlink("/dev/log")


class InstallPackagesTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("installs packages: needs root")
        if not shutil.which("apt-get") or not CPACK_CONFIG:
            self.skipTest("needs apt-get and TCPSTATES_CPACK_CONFIG (run through ctest)")
        recover_from_killed_run()
        already = [p for p in OURS if package_states([p]).get(p, "").startswith(("ii", "rc"))]
        if already:
            self.skipTest(f"{already} installed, not by this test: not touching an operator's packages")
        if run(["pgrep", "-x", "collectd"]).returncode == 0:
            self.skipTest("a collectd this test did not start is running here; the test starts Debian's own")
        self.before = installed_packages()
        self.tree_before = snapshot()
        self.tmp = tempfile.mkdtemp(prefix="tcpstates-install-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.purged = False
        self.addCleanup(self.purge_quietly)

    # ---- helpers ----------------------------------------------------------------------------

    def new_packages(self):
        return sorted(installed_packages() - self.before)

    def purge(self):
        new = self.new_packages()
        if new:
            result = run(["apt-get", "purge", "-y", "-q"] + new, env=APT_ENV)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        if os.path.exists(STATE_FILE):
            os.unlink(STATE_FILE)
        for directory in self.rrd_dirs_created():
            shutil.rmtree(directory)
        for directory in (RRD_ROOT, os.path.dirname(RRD_ROOT)):
            if directory not in self.tree_before and os.path.isdir(directory) \
                    and not os.listdir(directory):
                os.rmdir(directory)
        self.purged = True

    def purge_quietly(self):
        if not self.purged:
            try:
                self.purge()
            except Exception as error:  # the test already failed; report, keep cleaning
                print(f"cleanup: {error}", file=sys.stderr)

    def rrd_dirs_created(self):
        return [d for d in glob.glob(os.path.join(RRD_ROOT, "*")) if d not in self.tree_before]

    def build_packages(self):
        out = os.path.join(self.tmp, "packages")
        result = run(["cpack", "--config", CPACK_CONFIG, "-B", out])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        debs = {p: glob.glob(os.path.join(out, f"{p}_{VERSION}_*.deb")) for p in OURS}
        for package, found in debs.items():
            self.assertEqual(len(found), 1, f"{package}: {os.listdir(out)}")
        return [found[0] for found in debs.values()]

    def install(self, debs):
        """apt-get install of the .debs and what they recommend (apt's default pulls those in),
        but not what the recommended packages recommend in turn (collectd's sixty libraries)."""
        policy = "/usr/sbin/policy-rc.d"
        created_policy = not os.path.exists(policy)
        if created_policy:  # collectd's postinst would start the service
            with open(policy, "w") as out:
                out.write("#!/bin/sh\nexit 101\n")
            os.chmod(policy, 0o755)
            self.addCleanup(os.unlink, policy)
        with open(STATE_FILE, "w") as state:
            json.dump({"installed_before": sorted(self.before), "created_policy_rc_d": created_policy}, state)
        recommended = [name.split()[0] for deb in debs for name in deb_field(deb, "Recommends").split(",") if name]
        self.assertEqual(recommended, ["collectd"])
        # What apt's default (recommends on) would do here: install collectd with the plugin.
        plan = run(["apt-get", "install", "-s", "-q"] + debs, env=APT_ENV).stdout
        if "collectd" not in self.before:
            self.assertRegex(plan, r"(?m)^Inst collectd ")
        result = run(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + debs + recommended,
                     env=APT_ENV)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    # ---- the test ---------------------------------------------------------------------------

    def test_install_run_purge(self):
        started = time.monotonic()
        debs = self.build_packages()
        if shutil.which("lintian"):
            # Clean but for the tags packaging/lintian-overrides/* justify.
            result = run(["lintian", "--fail-on", "error,warning,info", "-I", "--pedantic"] + debs)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.install(debs)

        # What dpkg knows: versions, dependencies, conffiles, files.
        fields = "${Version}\t${Depends}\t${Conffiles}\n"
        info = {p: run(["dpkg-query", "-W", "-f", fields, p]).stdout.split("\t") for p in OURS}
        for package in OURS:
            self.assertEqual(info[package][0], VERSION)
            self.assertIn("libc6", info[package][1])
        # Depends follows what each package really loads: the programs link abseil
        # statically by default (TCPSTATES_STATIC_ABSEIL), the collectd plugin never does.
        programs_load_abseil = "libabsl_" in run(["ldd", "/usr/bin/tcpstates"]).stdout
        self.assertEqual("libabsl20220623" in info["tcpstates"][1], programs_load_abseil,
                         info["tcpstates"][1])
        self.assertIn("libabsl20220623", info["tcpstates-collectd"][1])
        # The collectd ABI the plugin was built against: the headers' (collectd-dev's) version up
        # to collectd 6, which replaces the plugin API.
        headers = upstream_version("collectd-dev")
        self.assertIn(f"collectd-core (>= {headers}), collectd-core (<< {int(headers.split('.')[0]) + 1}~)",
                      info["tcpstates-collectd"][1])
        self.assertIn("/etc/telegraf/telegraf.d/tcpstates.conf", info["tcpstates"][2])
        self.assertIn("/etc/collectd/collectd.conf.d/tcpstates.conf", info["tcpstates-collectd"][2])
        listed = {p: set(run(["dpkg", "-L", p]).stdout.split()) for p in OURS}
        for path in ["/usr/bin/tcpstates", "/usr/bin/tcpstates-execd",
                     "/etc/telegraf/telegraf.d/tcpstates.conf",
                     "/usr/share/tcpstates/influxdb/tcpstates.iql",
                     "/usr/share/tcpstates/grafana/tcpstates-dashboard.json",
                     "/usr/share/man/man1/tcpstates.1.gz", "/usr/share/man/man1/tcpstates-execd.1.gz",
                     "/usr/share/doc/tcpstates/copyright", "/usr/share/doc/tcpstates/changelog.gz"]:
            self.assertIn(path, listed["tcpstates"])
            self.assertTrue(os.path.exists(path), path)
        for path in ["/usr/lib/collectd/tcpstates.so", "/etc/collectd/collectd.conf.d/tcpstates.conf",
                     "/usr/share/man/man5/collectd-tcpstates.5.gz",
                     "/usr/share/doc/tcpstates-collectd/copyright",
                     "/usr/share/doc/tcpstates-collectd/changelog.gz"]:
            self.assertIn(path, listed["tcpstates-collectd"])
            self.assertTrue(os.path.exists(path), path)
        with open("/etc/telegraf/telegraf.d/tcpstates.conf") as snippet:
            text = snippet.read()
        self.assertIn('command = ["/usr/bin/tcpstates-execd"', text)
        self.assertNotIn("/usr/local/", text)  # the setcap and commented command lines too
        # Every page named in SEE ALSO is installed (ours, collectd's, iproute2's).
        pages = [p for p in set().union(*listed.values()) if p.startswith("/usr/share/man/") and p.endswith(".gz")]
        self.assertEqual(len(pages), 3)
        for page in pages:
            for name, section in see_also(page):
                self.assertTrue(os.path.exists(f"/usr/share/man/man{section}/{name}.{section}.gz"),
                                f"{page}: SEE ALSO {name}({section}) is not installed")
        for program in ["tcpstates", "tcpstates-execd"]:
            self.assertEqual(run([f"/usr/bin/{program}", "--version"]).stdout, f"{program} {VERSION}\n")

        # What collectd.service needs to start: the files its conditions name (collectd.conf,
        # which collectd-core does not ship), and its ExecStartPre passing.
        with open("/lib/systemd/system/collectd.service") as unit:
            service = dict(re.findall(r"(?m)^(\w+)=(.*)$", unit.read()))
        self.assertEqual(service["ConditionPathExists"], "/etc/collectd/collectd.conf")
        self.assertTrue(os.path.exists(service["ConditionPathExists"]))
        with open("/etc/collectd/collectd.conf") as conf:
            self.assertRegex(conf.read(), r'(?m)^<Include "/etc/collectd/collectd.conf.d">$')
        syslog = SyslogCapture(self.tmp)
        self.addCleanup(syslog.close)
        check = run(syslog.wrap(service["ExecStartPre"].split()))
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

        with Workload(**WORKLOAD) as workload:
            self.assertEqual(workload.settle(), workload.expected)
            expected = {state: workload.total(state) for state in STATES}
            expected["total"] = workload.connections()

            # Debian's collectd, its stock collectd.conf, in the workload's namespace.
            collectd = subprocess.Popen(
                syslog.wrap(workload.nsenter(["/usr/sbin/collectd", "-f", "-C",
                                              "/etc/collectd/collectd.conf"])),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env=dict(os.environ, **dict([COLLECTD_MARKER.split("=")])))

            def stop_collectd():
                if collectd.poll() is None:
                    collectd.send_signal(signal.SIGTERM)
                    try:
                        collectd.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        collectd.kill()
                        collectd.wait()
                return collectd.stdout.read()
            self.addCleanup(collectd.stdout.close)
            self.addCleanup(stop_collectd)

            def read_back():
                dirs = glob.glob(os.path.join(RRD_ROOT, "*", "tcpstates-all"))
                if len(dirs) != 1:
                    return None
                files = {s: os.path.join(dirs[0], f"tcp_connections-{s}.rrd") for s in expected}
                if not all(os.path.exists(f) for f in files.values()):
                    return None
                values = {s: rrd_last_value(f) for s, f in files.items()}
                return values if None not in values.values() else None
            values = wait_for(read_back, timeout=60, interval=0.5)
            log = syslog.text()
            self.assertIsNotNone(values, f"no tcpstates RRD files; collectd: {stop_collectd()}\n"
                                         f"syslog:\n{log}")
            self.assertEqual(values, {s: float(v) for s, v in expected.items()})
            self.assertIn(f"tcpstates plugin {VERSION}: initialising", log)
            self.assertIn("tcpstates plugin: reading sockets from netlink", log)
            stop_collectd()

            # The Telegraf program, unprivileged, as Telegraf would run it.
            result = workload.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                   "/usr/bin/tcpstates-execd", "--once"])
            self.assertEqual(result.returncode, 0, result.stderr)
            first = result.stdout.splitlines()[0].split()
            self.assertEqual(first[0], "tcpstates")
            got = dict(f.split("=") for f in first[1].split(","))
            want = {f"tcp_{s}": f"{v}i" for s, v in expected.items() if s != "total"}
            want["tcp_connections"] = f"{expected['total']}i"
            self.assertEqual(got, want)

        self.check_capabilities_survive_an_upgrade(debs)

        # Purge: nothing of the packages is left, nor anything new under the roots watched.
        owned = set().union(*listed.values())
        self.purge()
        states = package_states(OURS)
        for package in OURS:
            self.assertNotIn(states.get(package, "un")[:2], ("ii", "rc"), package)
        left = sorted(p for p in owned if p not in self.tree_before and os.path.lexists(p))
        self.assertEqual(left, [])
        self.assertEqual(sorted(snapshot() - self.tree_before), [])
        self.assertEqual(self.new_packages(), [])
        print(f"install, run, purge: {time.monotonic() - started:.1f} s", file=sys.stderr)


    def check_capabilities_survive_an_upgrade(self, debs):
        """The README's privileged setup: only Telegraf's group may run the binary (a
        statoverride, which dpkg keeps), and the capabilities come back after an upgrade because
        postinst re-applies them when the marker file asks - never on a binary anyone may run."""
        binary, marker = "/usr/bin/tcpstates-execd", "/etc/tcpstates/execd-capabilities"
        group = f"tcpstates-test-{os.getpid()}"  # the README uses telegraf's own group
        [tcpstates_deb] = [d for d in debs if os.path.basename(d).startswith("tcpstates_")]
        self.assertEqual(run(["groupadd", "--system", group]).returncode, 0)
        self.addCleanup(run, ["groupdel", group])
        os.makedirs(os.path.dirname(marker))
        self.addCleanup(shutil.rmtree, os.path.dirname(marker), ignore_errors=True)
        open(marker, "w").close()

        def reinstall():  # what an upgrade does to the file: replaced, postinst run
            result = run(["dpkg", "-i", tcpstates_deb], env=APT_ENV)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            return result.stderr

        # Still world-executable: refused, and said why.
        self.assertIn("other users may run it, so none are set", reinstall())
        self.assertEqual(run(["getcap", binary]).stdout.strip(), "")
        # Restricted the documented way: capabilities set, and set again after an upgrade.
        override = ["dpkg-statoverride", "--update", "--add", "root", group, "0750", binary]
        self.assertEqual(run(override).returncode, 0)
        self.addCleanup(run, ["dpkg-statoverride", "--remove", binary])
        for _ in range(2):
            reinstall()
            self.assertRegex(run(["getcap", binary]).stdout,
                             r"cap_dac_read_search,cap_sys_ptrace[+=]ep")
            info = os.stat(binary)
            self.assertEqual((stat.S_IMODE(info.st_mode), info.st_uid, grp.getgrgid(info.st_gid).gr_name),
                             (0o750, 0, group))
        # Other users may not run it at all: the kernel's permission check says so (asked
        # with access(2): some sandboxed kernels do not enforce it at execve).
        denied = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                      "/usr/bin/test", "-x", binary])
        self.assertEqual(denied.returncode, 1, denied.stderr)
        # Undone now, before the purge checks that nothing is left (the cleanups only repeat
        # this when the test failed on the way).
        run(["dpkg-statoverride", "--remove", binary])
        os.chmod(binary, 0o755)
        shutil.rmtree(os.path.dirname(marker))
        run(["groupdel", group])


if __name__ == "__main__":
    unittest.main()
