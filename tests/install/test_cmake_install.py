"""`cmake --install` into a DESTDIR: exactly the packages' layout, nothing else.

Runs against this build (TCPSTATES_BUILD_DIR) with --prefix /usr, as the .debs are made.
"""

import gzip
import os
import re
import stat
import subprocess
import tempfile
import tomllib
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


def see_also(page):
    """[(name, section)] of a gzipped man page's SEE ALSO section."""
    with gzip.open(page, "rt") as f:
        text = f.read()
    section = text.split('.SH "SEE ALSO"', 1)[1].split("\n.SH", 1)[0]
    return [(name.replace("\\-", "-"), number) for name, number in re.findall(r"^\.BR (\S+) \((\w+)\)", section, re.M)]


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
            collectd_plugin_built = os.path.exists(os.path.join(BUILD_DIR, "plugins/collectd/tcpstates.so"))
            if collectd_plugin_built:
                expected |= EXPECTED_COLLECTD
            self.assertEqual(sorted(installed), sorted(expected))

            with open(os.path.join(destdir, "etc/telegraf/telegraf.d/tcpstates.conf")) as f:
                snippet = f.read()
            # Still TOML Telegraf reads, now running the installed program (the snippet's own
            # checks: tests/integration/test_conf_rollups.py).
            execd = tomllib.loads(snippet)["inputs"]["execd"]
            self.assertEqual([e["command"][0] for e in execd], ["/usr/bin/tcpstates-execd"])
            # Every mention names the installed program: the setcap line too.
            self.assertEqual(set(re.findall(r"/[\w/.-]*tcpstates-execd", snippet)), {"/usr/bin/tcpstates-execd"})
            for page in [p for p in installed if p.startswith("usr/share/man/")]:
                with gzip.open(os.path.join(destdir, page), "rt") as f:
                    text = f.read()
                self.assertIn(".SH NAME", text, page)
                self.assertIn(".SH OPTIONS", text, page)
                # SEE ALSO names pages that exist: ours, or those of the packages we depend on
                # and the tests install (collectd-core, iproute2). Telegraf has none.
                for name, section in see_also(os.path.join(destdir, page)):
                    if name == "collectd-tcpstates" and not collectd_plugin_built:
                        continue
                    path = f"usr/share/man/man{section}/{name}.{section}.gz"
                    self.assertTrue(path in installed or os.path.exists("/" + path), f"{page}: SEE ALSO {name}({section})")
            # The documentation names only installed files: share/doc paths in the READMEs and
            # man pages exist under the prefix.
            for doc in ["README.md", "plugins/collectd/README.md", "plugins/telegraf/README.md",
                        "plugins/cli/README.md", "conf/README.md", "docs/man/collectd-tcpstates.5.in"]:
                with open(os.path.join(REPO, doc)) as f:
                    text = f.read().replace("\\-", "-")
                for path in re.findall(r"(?<![\w/])(?:/usr/)?share/doc/[\w.-]+(?:/[\w.-]+)*/?", text):
                    if "tcpstates-collectd" in path and not collectd_plugin_built:
                        continue
                    relative = path.lstrip("/").removeprefix("usr/")
                    self.assertTrue(os.path.exists(os.path.join(destdir, "usr", relative)), f"{doc} names {path}")
            plugin = os.path.join(destdir, "usr/lib/collectd/tcpstates.so")
            if os.path.exists(plugin):
                self.assertEqual(stat.S_IMODE(os.stat(plugin).st_mode), 0o644)


if __name__ == "__main__":
    unittest.main()
