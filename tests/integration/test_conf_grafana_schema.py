"""conf/grafana type-checked against Grafana's published schema types.

Grafana cannot be installed here, so the dashboard and the alert-rule file are checked the way
Grafana's own front end checks dashboards: TypeScript types. tests/grafana/check.ts.in types
the dashboard with @grafana/schema (Dashboard, each panel's options and field config from its
plugin's published panelcfg), and the alert rules with Grafana's provisioning format
(transcribed there: @grafana/schema has no alerting types). Each file becomes an object literal
checked by `tsc --strict`, so a field Grafana would ignore (excess property), a missing required
one or a wrong value fails.

Checked against every @grafana/schema version in tests/grafana/package.json (the dashboard's
schemaVersion's, and a current one). npm installs the locked packages into the build
directory at the first run (tests/grafana/package-lock.json; the npm registry must be
reachable then); node and npm come from Debian (scripts/install-dependencies).
"""

import copy
import json
import os
import shutil
import subprocess
import unittest

import harness

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROJECT = os.path.join(REPO, "tests", "grafana")
WORK = os.path.join(os.path.abspath(harness.BUILD_DIR), "grafana-schema-check")
DASHBOARD = os.path.join(REPO, "conf", "grafana", "tcpstates-dashboard.json")
ALERT_RULES = os.path.join(REPO, "conf", "grafana", "provisioning", "alerting", "tcpstates-alerts.json")


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)


def install_packages():
    """npm ci into WORK, again only when the lockfile changed."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            raise AssertionError(f"{tool} is not installed: scripts/install-dependencies installs Debian's nodejs and npm")
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(PROJECT, "package-lock.json")) as f:
        lock = f.read()
    stamp = os.path.join(WORK, "node_modules", ".tcpstates-lock")
    if os.path.exists(stamp) and open(stamp).read() == lock:
        return
    for name in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(PROJECT, name), WORK)
    result = run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--cache", os.path.join(WORK, "npm-cache")],
                 cwd=WORK)
    if result.returncode != 0:
        raise AssertionError(f"npm ci failed (the npm registry must be reachable):\n{result.stdout}{result.stderr}")
    with open(stamp, "w") as f:
        f.write(lock)


def schema_versions():
    """The aliases under which package.json installs @grafana/schema versions."""
    with open(os.path.join(PROJECT, "package.json")) as f:
        return sorted(name for name in json.load(f)["devDependencies"] if name.startswith("grafana-schema-"))


def render(dashboard, alert_rules):
    with open(os.path.join(PROJECT, "check.ts.in")) as f:
        template = f.read()
    return (template.replace("@DASHBOARD@", json.dumps(dashboard, indent=2, ensure_ascii=False))
            .replace("@ALERT_RULES@", json.dumps(alert_rules, indent=2, ensure_ascii=False)))


class GrafanaSchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        install_packages()

    def test_dashboard_and_alert_rules_type_check(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        with open(ALERT_RULES) as f:
            alert_rules = json.load(f)
        # Each mutant breaks one thing Grafana would ignore or reject: the check must see it, or
        # a type gone loose (e.g. an unresolved import typed `any`) would pass anything.
        mutants = {}
        broken = copy.deepcopy(dashboard)
        broken["panels"][1]["fieldConfig"]["defaults"]["custom"]["lineWidht"] = 2
        mutants["unknown_field"] = (broken, alert_rules)
        broken = copy.deepcopy(dashboard)
        next(v for v in broken["templating"]["list"] if v["name"] == "host")["current"] = {}
        mutants["current_without_text_value"] = (broken, alert_rules)
        broken = copy.deepcopy(alert_rules)
        broken["groups"][0]["rules"][0]["noDataState"] = "Ok"
        mutants["no_data_state_misspelt"] = (dashboard, broken)

        files = {"check.ts": render(dashboard, alert_rules)}
        files.update({f"mutant_{name}.ts": render(*pair) for name, pair in mutants.items()})
        for name, text in files.items():
            with open(os.path.join(WORK, name), "w") as f:
                f.write(text)
        for version in schema_versions():
            with self.subTest(schema=version):
                config = os.path.join(WORK, f"tsconfig-{version}.json")
                with open(config, "w") as f:
                    json.dump({"compilerOptions": {
                        "strict": True, "noEmit": True, "target": "es2022", "module": "esnext",
                        "moduleResolution": "bundler", "types": [], "skipLibCheck": False,
                        # The panelcfg types import '@grafana/schema' by name: this version.
                        "baseUrl": ".", "paths": {"@grafana/schema": [f"node_modules/{version}"],
                                                  "@grafana/schema/*": [f"node_modules/{version}/*"]}},
                        "files": sorted(files)}, f)
                result = run(["node", os.path.join(WORK, "node_modules", "typescript", "bin", "tsc"),
                              "-p", config, "--pretty", "false"], cwd=WORK)
                errors = {}
                for line in result.stdout.splitlines():
                    if "): error TS" in line:
                        errors.setdefault(line.split("(")[0], []).append(line)
                self.assertEqual(errors.get("check.ts", []), [], "\n".join(errors.get("check.ts", [])))
                self.assertEqual(sorted(errors), sorted(n for n in files if n != "check.ts"), result.stdout)


if __name__ == "__main__":
    unittest.main()
