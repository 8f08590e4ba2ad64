"""The line-protocol encoder round-tripped through a real InfluxDB 1.x (Debian's influxd).

Names and values with spaces, commas, equals signs, quotes, backslashes, non-ASCII and control
bytes are encoded by the same code tcpstates-execd uses (via line-protocol-encode), POSTed to
/write (every line must get 204) and read back through /query byte for byte - except what the
encoder's documented policy changes: TAB/LF/FF/CR become the visible two characters \\t \\n \\f
\\r, every other control character (C0, DEL, C1) the visible \\xNN per UTF-8 byte, and
trailing backslashes of tag values are dropped. Every line is also parsed with
Telegraf's own grammar (execd_emulator.parse_line) and must decode to the same values.
"""

import subprocess
import unittest

import harness
from execd_emulator import parse_line
from influxdb import InfluxDB, require_influxd

ENCODE = "plugins/telegraf/line-protocol-encode"

VISIBLE = {"\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}

# Hostile text every kind of name must survive.
COMMON = [
    "plain",
    "with space",
    "two  spaces ",
    "a,comma",
    "an=equals",
    'a "quoted" word',
    "back\\slash",
    "\\leading backslash",
    "double \\\\backslash",
    "caf\u00e9 \u2603 \u6771\u4eac",
    "ctrl\x01\x1b[31mred\x7f",
    "c1 \u009b2J csi \u0085nel",
    "nul\x00byte",
    "vt\x0bhere",
    "tab\there",
    "new\nline",
    "crlf\r\n",
    "form\ffeed",
    " ,=\"\\x mixed \u00e9\x02",
]
# Backslash right before an escaped character: fine in tags (InfluxDB and Telegraf read it
# back), refused in measurements and field keys.
TAG_ONLY = ["a\\,b", "c\\=d", "e\\ f", "double \\\\ space", "ends with backslash\\",
            "ends\\\\"]


def visible(text):
    """What the encoder's policy makes of `text`, written independently of it: nothing a
    terminal acts on stays raw."""
    out = []
    for ch in text:
        if ch in VISIBLE:
            out.append(VISIBLE[ch])
        elif ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f:
            out.append("".join(f"\\x{b:02x}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def expected_tag_value(text):
    return visible(text.rstrip("\\"))


def hexed(text):
    return text.encode("utf-8").hex()


class LineProtocolInfluxDBTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_influxd()
        cls.encoder = harness.binary(ENCODE)
        cls.influx = InfluxDB().start()

    @classmethod
    def tearDownClass(cls):
        cls.influx.stop()

    def encode(self, specs):
        """specs: one item string per point -> the encoder's output lines (bytes)."""
        result = subprocess.run([self.encoder], input="\n".join(specs).encode() + b"\n",
                                capture_output=True, timeout=10)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.split(b"\n")
        self.assertEqual(lines[-1], b"")
        lines = lines[:-1]
        self.assertEqual(len(lines), len(specs), "one point, one line")
        return lines

    def write(self, database, lines):
        self.influx.create_database(database)
        for line in lines:
            self.assertFalse(line.startswith(b"#error"), line)
        status, body = self.influx.write(database, b"\n".join(lines) + b"\n")
        self.assertEqual(status, 204, body)

    def test_measurement_names(self):
        names = COMMON
        lines = self.encode([f"m:{hexed(n)} i:{hexed('case')}:{i}" for i, n in enumerate(names)])
        self.write("measurements", lines)
        for line, name in zip(lines, names):
            self.assertEqual(parse_line(line).measurement, visible(name), line)
        stored = [row["name"] for row in self.influx.query("measurements", "SHOW MEASUREMENTS")]
        self.assertEqual(sorted(stored), sorted(visible(n) for n in names))

    def test_tag_keys_and_values(self):
        values = COMMON + TAG_ONLY
        keys = [k for k in COMMON if k != "plain"]
        specs = []
        for i, value in enumerate(values):
            key = keys[i % len(keys)]
            specs.append(f"m:{hexed('tags')} t:{hexed('case')}:{hexed(str(i))} "
                         f"t:{hexed(key)}:{hexed(value)} i:{hexed('n')}:{i}")
        lines = self.encode(specs)
        self.write("tags", lines)
        rows = self.influx.query("tags", 'SELECT * FROM "tags" GROUP BY *')
        self.assertEqual(len(rows), len(values))
        by_case = {int(row["tags"]["case"]): row["tags"] for row in rows}
        for i, value in enumerate(values):
            key = visible(keys[i % len(keys)])
            self.assertEqual(by_case[i][key], expected_tag_value(value), (i, key, value))
            self.assertEqual(parse_line(lines[i]).tags[key], expected_tag_value(value), lines[i])

    def test_field_keys_and_string_values(self):
        keys = COMMON
        values = COMMON + TAG_ONLY
        specs = [f"m:{hexed('fields')} i:{hexed('case')}:{i} "
                 f"s:{hexed(keys[i % len(keys)])}:{hexed(value)} ts:{1000 + i}"
                 for i, value in enumerate(values)]
        lines = self.encode(specs)
        self.write("fields", lines)
        rows = self.influx.query("fields", 'SELECT * FROM "fields"')
        # Points of one series at one timestamp would merge: each gets its own time.
        self.assertEqual(len(rows), len(values))
        by_case = {row["case"]: row for row in rows}
        for i, value in enumerate(values):
            key = visible(keys[i % len(keys)])
            self.assertEqual(by_case[i][key], visible(value), (i, key))
            point = parse_line(lines[i])
            self.assertEqual(point.fields[key], visible(value), lines[i])
        field_keys = {row["fieldKey"]: row["fieldType"]
                      for row in self.influx.query("fields", 'SHOW FIELD KEYS FROM "fields"')}
        self.assertEqual(field_keys, {"case": "integer",
                                      **{visible(k): "string" for k in keys}})

    def test_numbers_and_timestamps(self):
        floats = ["0.1", "0.3333333333333333", "1e+300", "5e-324", "-2.5", "123456789.125"]
        specs = [f"m:{hexed('numbers')} i:{hexed('min')}:-9223372036854775808 "
                 f"i:{hexed('max')}:9223372036854775807 b:{hexed('yes')}:1 b:{hexed('no')}:0 "
                 + " ".join(f"f:{hexed(f'f{j}')}:{value}" for j, value in enumerate(floats))
                 + " ts:1717171717123456789"]
        lines = self.encode(specs)
        self.write("numbers", lines)
        row = self.influx.query("numbers", 'SELECT * FROM "numbers"')[0]
        self.assertEqual(row["time"], 1717171717123456789)
        self.assertEqual((row["min"], row["max"]), (-9223372036854775808, 9223372036854775807))
        self.assertEqual((row["yes"], row["no"]), (True, False))
        for j, value in enumerate(floats):
            self.assertEqual(row[f"f{j}"], float(value))

    def test_names_no_parser_reads_back_are_refused_not_written(self):
        refused = [
            f"m:{hexed('#comment')} i:{hexed('f')}:1",
            f"m:{hexed(chr(1) + 'm')} i:{hexed('f')}:1",
            f"m:{hexed('ends' + chr(92))} i:{hexed('f')}:1",
            f"m:{hexed('a' + chr(92) + ',b')} i:{hexed('f')}:1",
            f"m:{hexed('m')} i:{hexed('k' + chr(92) + '=x')}:1",
            f"m:{hexed('m')} i:{hexed('time')}:1",
            f"m:{hexed('m')} t:{hexed('time')}:{hexed('v')} i:{hexed('f')}:1",
            f"m:{hexed('m')} t:{hexed('k' + chr(92))}:{hexed('v')} i:{hexed('f')}:1",
            f"m:{hexed('m')} t:{hexed('a')}:{hexed('1')} t:{hexed('a')}:{hexed('2')} i:{hexed('f')}:1",
            f"m:{hexed('m')} f:{hexed('f')}:nan",
            f"m:{hexed('m')}",
        ]
        for line in self.encode(refused):
            self.assertTrue(line.startswith(b"#error "), line)

    def test_execd_measurement_flag_round_trips(self):
        harness.require_root()
        name = 'tcp states, "quoted" caf\u00e9 \x01'
        # Only the counts lines: --measurement does not rename the diagnosis series.
        result = subprocess.run([harness.binary("plugins/telegraf/tcpstates-execd"), "--once",
                                 "--by-family", "--noclose-wait-owners", "--nolisten-ports",
                                 f"--measurement={name}"],
                                capture_output=True, timeout=10)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.write("execd_measurement", result.stdout.rstrip(b"\n").split(b"\n"))
        stored = [row["name"] for row in self.influx.query("execd_measurement", "SHOW MEASUREMENTS")]
        self.assertEqual(stored, [visible(name)])


if __name__ == "__main__":
    unittest.main()
