"""Drives a program exactly as Telegraf's inputs.execd drives its child (Telegraf cannot be
installed here, so tests hold the binary to the contract directly; see
/work/shared/notes/telegraf-execd.md and Telegraf's plugins/inputs/execd):

* spawns argv with stdin, stdout and stderr pipes;
* asks for a gather the way `signal` says: "STDIN" writes exactly one b"\\n" (with a 1 s write
  deadline), "SIGHUP"/"SIGUSR1"/"SIGUSR2" send that signal, "none" does nothing; any other
  spelling ("stdin") is refused, as Telegraf refuses it;
* reads stdout as a stream of line protocol (lines may arrive in any chunks), skipping blank
  and `#` lines, parsing every other line with Telegraf's grammar - a line that does not parse
  is recorded as a parse error, as Telegraf would log and drop it;
* reads stderr line by line and classifies it by Telegraf's level prefixes (`E! `, `W! `,
  `I! `, `D! `, `T! `); any other line is what Telegraf would log as an ERROR;
* stops the child like Telegraf: close stdin, SIGTERM 5 s later, SIGKILL 5 s after that. A
  test fails if escalation was needed (StopResult.escalation).

Python stdlib only.
"""

import fcntl
import os
import re
import select
import signal as signals
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field

LEVEL_PREFIXES = {"E! ": "error", "W! ": "warn", "I! ": "info", "D! ": "debug", "T! ": "trace"}
TRIGGER_SIGNALS = {"SIGHUP": signals.SIGHUP, "SIGUSR1": signals.SIGUSR1, "SIGUSR2": signals.SIGUSR2}
# poll(2) and ppoll(2), where a trigger-driven program waits between batches (/proc/PID/syscall).
POLL_SYSCALLS = {"x86_64": {"7", "271"}, "aarch64": {"73"}}.get(os.uname().machine, set())
# Telegraf's `signal` values, case-sensitive: it refuses "stdin" (invalid signal) at every gather.
TELEGRAF_SIGNALS = ("none", "STDIN") + tuple(TRIGGER_SIGNALS)


class LineProtocolError(ValueError):
    pass


@dataclass
class Point:
    measurement: str
    tags: dict
    fields: dict          # key -> value (int, float, bool or str)
    field_types: dict     # key -> "integer" | "unsigned" | "float" | "string" | "boolean"
    timestamp: int | None
    raw: bytes = b""


# -- Telegraf's line-protocol grammar (plugins/parsers/influx/machine.go.rl) --------------------
_WS = b"\t\x0b\x0c "
_FORBIDDEN = b"\t\n\x0c\r"


def _telegraf_unescape(text, pairs, trigger_bytes):
    # Telegraf unescapes only when the token contains one of trigger_bytes, left to right.
    if not any(b in text for b in trigger_bytes):
        return text
    out, i = bytearray(), 0
    while i < len(text):
        for escaped, plain in pairs:
            if text.startswith(escaped, i):
                out += plain
                i += len(escaped)
                break
        else:
            out.append(text[i])
            i += 1
    return bytes(out)


def _unescape_name(t):
    return _telegraf_unescape(t, [(b"\\,", b","), (b"\\ ", b" ")], [b" ", b","])


def _unescape_key(t):
    return _telegraf_unescape(t, [(b"\\,", b","), (b'\\"', b'"'), (b"\\ ", b" "), (b"\\=", b"=")],
                              [b" ", b",", b"="])


def _scan_name(line, i, stop_bytes, what, tag_style):
    """Scans a measurement, tag key/value or field key starting at i; returns (raw, end)."""
    start = i
    while i < len(line):
        c = line[i]
        if c == 0x5C:  # backslash
            nxt = line[i + 1] if i + 1 < len(line) else None
            if nxt is None or nxt in _FORBIDDEN:
                raise LineProtocolError(f"{what}: backslash before end or a line-breaking byte")
            if tag_style and nxt == 0x5C:
                i += 1  # '\\\\' with fhold: the second backslash starts the next token
            else:
                i += 2
            continue
        if c in _FORBIDDEN:
            raise LineProtocolError(f"{what}: raw TAB/LF/FF/CR")
        if c in stop_bytes:
            break
        i += 1
    if i == start:
        raise LineProtocolError(f"{what}: empty")
    return line[start:i], i


def parse_line(line):
    """One line (without its LF) -> Point, with Telegraf's grammar and unescaping."""
    i = 0
    while i < len(line) and line[i] in _WS:
        i += 1
    if i < len(line) and line[i] == ord("#"):
        raise LineProtocolError("measurement starts with '#'")
    raw_name, i = _scan_name(line, i, b" ,", "measurement", tag_style=False)
    tags = {}
    while i < len(line) and line[i] == ord(","):
        key, i = _scan_name(line, i + 1, b" ,=", "tag key", tag_style=True)
        if i >= len(line) or line[i] != ord("="):
            raise LineProtocolError("tag without '='")
        value, i = _scan_name(line, i + 1, b" ,=", "tag value", tag_style=True)
        if i < len(line) and line[i] == ord("="):
            raise LineProtocolError("unescaped '=' in tag value")
        key = _unescape_key(key).decode("utf-8", "surrogateescape")
        if key in tags:
            raise LineProtocolError(f"duplicate tag {key!r}")
        tags[key] = _unescape_key(value).decode("utf-8", "surrogateescape")
    if i >= len(line) or line[i] not in _WS:
        raise LineProtocolError("expected whitespace before fields")
    while i < len(line) and line[i] in _WS:
        i += 1
    fields, types = {}, {}
    while True:
        key, i = _scan_name(line, i, b" ,=", "field key", tag_style=False)
        if i >= len(line) or line[i] != ord("="):
            raise LineProtocolError("field without '='")
        i += 1
        key = _unescape_key(key).decode("utf-8", "surrogateescape")
        if i < len(line) and line[i] == ord('"'):
            j, out = i + 1, bytearray()
            while True:
                if j >= len(line):
                    raise LineProtocolError("unterminated string")
                c = line[j]
                if c == ord('"'):
                    break
                if c == 0x5C:
                    if j + 1 >= len(line) or line[j + 1] not in b'\\"':
                        raise LineProtocolError("backslash in string not before \\ or \"")
                    out.append(line[j + 1])
                    j += 2
                    continue
                if c in b"\x0c\r":
                    raise LineProtocolError("raw FF/CR in string")
                out.append(c)
                j += 1
            fields[key], types[key] = out.decode("utf-8", "surrogateescape"), "string"
            i = j + 1
        else:
            m = re.compile(rb"[^ ,\t\x0b\x0c]*").match(line, i)
            token = m.group(0)
            i = m.end()
            if re.fullmatch(rb"-?(0|[1-9][0-9]*)i", token):
                fields[key], types[key] = int(token[:-1]), "integer"
            elif re.fullmatch(rb"(0|[1-9][0-9]*)u", token):
                fields[key], types[key] = int(token[:-1]), "unsigned"
            elif token in (b"t", b"T", b"true", b"True", b"TRUE", b"f", b"F", b"false", b"False", b"FALSE"):
                fields[key], types[key] = token[:1] in (b"t", b"T"), "boolean"
            elif re.fullmatch(rb"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?", token):
                fields[key], types[key] = float(token), "float"
            else:
                raise LineProtocolError(f"bad field value {token!r}")
        if i < len(line) and line[i] == ord(","):
            i += 1
            continue
        break
    timestamp = None
    j = i
    while j < len(line) and line[j] in _WS:
        j += 1
    if j < len(line):
        if j == i:
            raise LineProtocolError("expected whitespace before timestamp")
        m = re.compile(rb"-?[0-9]{1,19}").match(line, j)
        if not m:
            raise LineProtocolError("bad timestamp")
        timestamp = int(m.group(0))
        j = m.end()
        while j < len(line) and line[j] in _WS:
            j += 1
        if j != len(line):
            raise LineProtocolError("garbage after timestamp")
    return Point(_unescape_name(raw_name).decode("utf-8", "surrogateescape"), tags, fields,
                 types, timestamp, bytes(line))


# -- the emulator ------------------------------------------------------------------------------
@dataclass
class ReceivedLine:
    raw: bytes            # without the LF
    received_at: float    # time.time() when the line was complete
    point: Point | None
    error: str | None


@dataclass
class StopResult:
    returncode: int
    escalation: str | None  # None, "SIGTERM" or "SIGKILL": what the stop needed beyond EOF
    seconds: float          # from the stop request (stdin close) to the child's exit


@dataclass
class StderrLine:
    level: str   # "error", "warn", "info", "debug", "trace", or "unprefixed" (Telegraf: ERROR)
    text: str


class ExecdEmulator:
    """with ExecdEmulator(argv, signal="STDIN") as execd: execd.trigger(); execd.wait_for_lines(1)"""

    def __init__(self, argv, signal="STDIN", env=None, stop_grace=5.0, kill_grace=5.0,
                 stdin_closed_at_start=False):
        if signal not in TELEGRAF_SIGNALS:
            raise ValueError(f"Telegraf refuses signal = {signal!r}: one of {', '.join(TELEGRAF_SIGNALS)}")
        self.argv = list(argv)
        self.signal = signal
        self.env = env
        self.stop_grace = stop_grace
        self.kill_grace = kill_grace
        self.stdin_closed_at_start = stdin_closed_at_start
        self.process = None
        self.lines = []           # ReceivedLine, in order
        self.stderr = []          # StderrLine
        self.stdout_bytes = b""   # everything read from stdout
        self.trigger_errors = []  # e.g. a "\n" write that missed Telegraf's 1 s deadline
        self.stop_result = None
        self._lock = threading.Condition()
        self._threads = []
        self._stdout_closed_by_us = False
        self._reading = False  # the stdout reader holds bytes it has not parsed yet
        self._rest_at = None     # where (/proc/PID/syscall) it waited before its first batch

    # lifecycle
    def start(self):
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self._wake_read, self._wake_write = os.pipe()
        self.process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env, bufsize=0)
        if self.stdin_closed_at_start:
            self.process.stdin.close()
        for target, stream in ((self._read_stdout, self.process.stdout),
                               (self._read_stderr, self.process.stderr)):
            thread = threading.Thread(target=target, args=(stream,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._threads and self._threads[0].is_alive():
            os.write(self._wake_write, b"x")
        for thread in self._threads:
            thread.join(timeout=5)
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass  # stdin: the child is gone and a flush hit EPIPE
        return False

    # gather triggers, as Telegraf sends them
    def trigger(self):
        if self.signal == "STDIN" and self._rest_at is None and not self.stdout_bytes:
            # Before the first batch: learn where the child waits for a trigger (at_rest). A
            # newline waits in the pipe meanwhile, so this changes nothing for the child.
            deadline = time.monotonic() + 5
            while self._blocked_in() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            self._rest_at = self._blocked_in()
        if self.signal == "STDIN":
            self.write_stdin(b"\n")
        elif self.signal in TRIGGER_SIGNALS:
            self.process.send_signal(TRIGGER_SIGNALS[self.signal])
        # "none": the child keeps its own schedule

    def write_stdin(self, data):
        """Writes like Telegraf: one write with a 1 s deadline; a miss is a trigger error."""
        done = threading.Event()

        def write():
            try:
                self.process.stdin.write(data)
                self.process.stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as error:
                self.trigger_errors.append(f"write to stdin failed: {error}")
            done.set()

        threading.Thread(target=write, daemon=True).start()
        if not done.wait(1.0):
            self.trigger_errors.append("writing to stdin took longer than 1 s")

    def run_intervals(self, count, interval, lines_per_batch=None, timeout=5.0):
        """Triggers `count` times, `interval` apart (Telegraf's ticker); with lines_per_batch,
        waits after each trigger until that batch arrived. Returns the batches."""
        batches = []
        for _ in range(count):
            started = time.monotonic()
            before = len(self.lines)
            self.trigger()
            if lines_per_batch:
                batches.append(self.wait_for_lines(before + lines_per_batch, timeout)[before:])
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
        return batches

    def stop(self):
        """Closes stdin; SIGTERM after stop_grace; SIGKILL after kill_grace more."""
        started = time.monotonic()
        escalation = None
        try:
            if not self.process.stdin.closed:
                self.process.stdin.close()
        except BrokenPipeError:
            pass
        try:
            self.process.wait(timeout=self.stop_grace)
        except subprocess.TimeoutExpired:
            escalation = "SIGTERM"
            self.process.terminate()
            try:
                self.process.wait(timeout=self.kill_grace)
            except subprocess.TimeoutExpired:
                escalation = "SIGKILL"
                self.process.kill()
                self.process.wait()
        seconds = time.monotonic() - started
        for thread in self._threads:
            thread.join(timeout=5)
        self.stop_result = StopResult(self.process.returncode, escalation, seconds)
        return self.stop_result

    def close_stdout_reader(self, timeout=5.0):
        """The reader goes away (as when Telegraf dies): our end of the stdout pipe is closed.
        (The reader thread closes it: closing an fd another thread is blocked reading would
        keep the pipe's read side alive until that read returned.)"""
        self._stdout_closed_by_us = True
        os.write(self._wake_write, b"x")
        self._threads[0].join(timeout)

    def wait_exit(self, timeout):
        """The child's exit code, or None if it is still running after timeout."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    # what the child produced
    def wait_for_lines(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.lines) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            return list(self.lines)

    def _blocked_in(self):
        """The poll(2) the child is blocked in: (call, pollfd array, count, timeout), from
        /proc/PID/syscall; None when it is not blocked in poll."""
        try:
            with open(f"/proc/{self.process.pid}/syscall") as f:
                fields = f.read().split()
        except (FileNotFoundError, ProcessLookupError):
            return None
        return tuple(fields[:4]) if fields[0] in POLL_SYSCALLS else None

    def at_rest(self):
        """Whether the child is blocked in the poll(2) where it waited for its first trigger
        (the execd also polls between the 4 KiB pieces of a batch, from another stack frame)
        and everything it wrote to stdout has been read and parsed: after a batch began to
        arrive, that batch is complete. Needs the child to be the program itself (nsenter and
        setpriv exec it), on a machine listed in POLL_SYSCALLS, and signal="STDIN"."""
        if not POLL_SYSCALLS:
            raise RuntimeError(f"at_rest: poll's syscall numbers on {os.uname().machine} are unknown")
        if self._rest_at is None:
            raise RuntimeError("at_rest: the wait before the first batch was not seen (signal=STDIN only)")
        if self._blocked_in() != self._rest_at:
            return False
        with self._lock:
            unread = struct.unpack("i", fcntl.ioctl(self.process.stdout.fileno(), termios.FIONREAD,
                                                    b"\0\0\0\0"))[0]
            return not self._reading and unread == 0

    def wait_batch(self, before, timeout=30.0):
        """The lines of the batch that began after line `before`, once it is complete (at_rest);
        None if none began within timeout."""
        deadline = time.monotonic() + timeout
        if len(self.wait_for_lines(before + 1, timeout)) <= before:
            return None
        while not self.at_rest():
            if time.monotonic() > deadline:
                return None
            time.sleep(0.002)
        with self._lock:
            return self.lines[before:]

    def points(self):
        return [line.point for line in self.lines if line.point]

    def parse_errors(self):
        return [(line.raw, line.error) for line in self.lines if line.error]

    def unprefixed_stderr(self):
        return [line.text for line in self.stderr if line.level == "unprefixed"]

    def stderr_text(self):
        return "\n".join(f"[{line.level}] {line.text}" for line in self.stderr)

    # readers
    def _read_stdout(self, stream):
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        pending = b""
        while True:
            ready = dict(poller.poll())
            if self._wake_read in ready:
                stream.close()  # close_stdout_reader: the pipe's read side is gone now
                break
            with self._lock:
                self._reading = True
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                with self._lock:
                    self._reading = False
                break
            now = time.time()
            with self._lock:
                self._reading = False
                self.stdout_bytes += chunk
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    if not raw.strip(_WS) or raw.lstrip(_WS).startswith(b"#"):
                        continue  # Telegraf skips blank and comment lines
                    try:
                        point, error = parse_line(raw), None
                    except LineProtocolError as e:
                        point, error = None, str(e)
                    self.lines.append(ReceivedLine(raw, now, point, error))
                self._lock.notify_all()
        if pending:
            with self._lock:
                self.lines.append(ReceivedLine(pending, time.time(), None,
                                               "incomplete last line (no LF)"))
                self._lock.notify_all()

    def _read_stderr(self, stream):
        for raw in iter(stream.readline, b""):
            text = raw.rstrip(b"\n").decode("utf-8", "replace")
            level = next((lvl for prefix, lvl in LEVEL_PREFIXES.items() if text.startswith(prefix)),
                         "unprefixed")
            with self._lock:
                self.stderr.append(StderrLine(level, text))
