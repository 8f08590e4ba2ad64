"""`cmake --install` into a DESTDIR: exactly the packages' layout, nothing else.

Runs against this build (TCPSTATES_BUILD_DIR) with --prefix /usr, as the .debs are made.
"""

import gzip
import os
import stat
import subprocess
import tempfile
import unittest

BUILD_DIR = os.environ.get("TCPSTATES_BUILD_DIR", "")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

EXPECTED = {
    "etc/telegraf/telegraf.d/tcpstates.conf",
    "usr/bin/tcpstates",
    "usr/bin/tcpstates-execd",
    "usr/share/man/man1/tcpstates.1.gz",
    "usr/share/man/man1/tcpstates-execd.1.gz",
    "usr/share/doc/tcpstates/copyright",
    "usr/share/doc/tcpstates/changelog.gz",
    "usr/share/doc/tcpstates/README.md",
    "usr/share/doc/tcpstates/README.cli.md",
    "usr/share/doc/tcpstates/README.telegraf.md",
    "usr/share/lintian/overrides/tcpstates",
}
EXPECTED_COLLECTD = {
    "etc/collectd/collectd.conf.d/tcpstates.conf",
    "usr/lib/collectd/tcpstates.so",
    "usr/share/man/man5/collectd-tcpstates.5.gz",
    "usr/share/doc/tcpstates-collectd/copyright",
    "usr/share/doc/tcpstates-collectd/changelog.gz",
    "usr/share/doc/tcpstates-collectd/README.md",
    "usr/share/doc/tcpstates-collectd/examples/tcpstates-thresholds.conf",
    "usr/share/lintian/overrides/tcpstates-collectd",
}


def files_under(root):
    found = set()
    for directory, _, files in os.walk(root):
        found.update(os.path.relpath(os.path.join(directory, f), root) for f in files)
    return found


class CmakeInstallTest(unittest.TestCase):
    def test_destdir_layout(self):
        with tempfile.TemporaryDirectory(prefix="tcpstates-destdir-") as destdir:
            result = subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", "/usr"],
                                    env=dict(os.environ, DESTDIR=destdir),
                                    capture_output=True, text=True, timeout=120)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            installed = files_under(destdir)
            expected = set(EXPECTED)
            # Whatever conf/grafana and conf/influxdb hold is shipped in /usr/share/tcpstates.
            for name in ("grafana", "influxdb"):
                expected |= {os.path.join("usr/share/tcpstates", name, f)
                             for f in files_under(os.path.join(REPO, "conf", name))}
            if os.path.exists(os.path.join(BUILD_DIR, "plugins/collectd/tcpstates.so")):
                expected |= EXPECTED_COLLECTD
            self.assertEqual(sorted(installed), sorted(expected))

            with open(os.path.join(destdir, "etc/telegraf/telegraf.d/tcpstates.conf")) as f:
                self.assertIn('command = ["/usr/bin/tcpstates-execd"', f.read())
            for page in [p for p in installed if p.startswith("usr/share/man/")]:
                with gzip.open(os.path.join(destdir, page), "rt") as f:
                    text = f.read()
                self.assertIn(".SH NAME", text, page)
                self.assertIn(".SH OPTIONS", text, page)
            plugin = os.path.join(destdir, "usr/lib/collectd/tcpstates.so")
            if os.path.exists(plugin):
                self.assertEqual(stat.S_IMODE(os.stat(plugin).st_mode), 0o644)


if __name__ == "__main__":
    unittest.main()
