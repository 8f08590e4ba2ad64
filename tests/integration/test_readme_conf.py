"""Each adapter's README shows its shipped configuration files verbatim.

A README names the file after `@` in a fenced block's info string (scripts/update-readme-conf
rewrites the blocks); this fails while a block differs from its file, so a README can never
document a snippet that is not the one shipped.
"""

import importlib.machinery
import importlib.util
import os
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(REPO, "scripts", "update-readme-conf")
# What each README must show, from the files each adapter ships.
SHOWN = {
    "plugins/telegraf/README.md": ["conf/telegraf/tcpstates.conf"],
    "plugins/collectd/README.md": ["conf/collectd/tcpstates.conf", "conf/collectd/tcpstates-thresholds.conf"],
}


def load_script():
    loader = importlib.machinery.SourceFileLoader("update_readme_conf", SCRIPT)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class ReadmeConfTest(unittest.TestCase):
    def test_readmes_show_the_shipped_files_verbatim(self):
        script = load_script()
        self.assertEqual(sorted(script.READMES), sorted(SHOWN))
        for readme, files in SHOWN.items():
            blocks = script.included(os.path.join(REPO, readme))
            self.assertEqual([os.path.relpath(path, REPO) for _, path, _ in blocks], files, readme)
            for named, path, body in blocks:
                with open(path) as f:
                    self.assertEqual(body, f.read(), f"{readme}: the block of {named} differs from the file; "
                                                     "run scripts/update-readme-conf")


if __name__ == "__main__":
    unittest.main()
