"""Process plumbing shared by the SMTP sink and the SMTP generator.

Why it exists: both engines run the same way, as one process or as forked
workers whose counters a parent merges, and both speak the same output
contract (JSON lines: ``ready``, ``progress``, ``summary`` or ``error``) and
stop on the same requests (SIGTERM, SIGINT, stdin EOF). That machinery lives
here once; what is SMTP lives in ``smtp_sink.py`` and ``smtp_gen.py``.

Standard library only, and no kumotui imports, for the same reason as the
engines: ``kumotui.hosts.launch.SshLauncher`` copies every ``smtp_*.py`` of this
directory to a remote host that has nothing but Python 3, where the engines
run as plain scripts and import this file as the top-level ``smtp_common``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import os
import re
import selectors
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

Reporter = Callable[[str, dict[str, Any]], None]
"""``report(kind, payload)``: how a worker hands over ``ready``, ``state`` and ``final``.

A single-process engine prints what it is given; a forked worker sends it up
a pipe to its ``WorkerPool`` (see ``WorkerPool.spawn``).
"""


class StartError(Exception):
    """A reason an engine cannot start: bad input, a port in use, an unusable target.

    One class for both engines and the worker pool, so an engine's ``main``
    catches what ``WorkerPool.wait_ready`` raises. The message names the flag
    or the address at fault.
    """


def split_host_port(text: str, default_port: int | None = None, *, allow_zero: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` into a host and a port: kumotui's one address parser.

    A bare ``HOST``, ``[V6]`` or ``V6`` is accepted when ``default_port`` is
    given. An IPv6 address with a port needs brackets (``::1:25`` is
    ambiguous). Port 0 ("any free port") only with ``allow_zero``. The rest
    of kumotui parses addresses through :mod:`kumotui.hosts.address`, which
    calls this, so the engines (shipped alone) and the app agree.

    Raises:
        ValueError: what is wrong, in words (no port, a port out of range...).
    """
    text = str(text).strip()
    port_text: str | None
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError("unbalanced brackets around an IPv6 address")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1 and default_port is None:
        raise ValueError("an IPv6 address with a port needs brackets, e.g. [::1]:2026")
    else:
        host, port_text = text, None
    if not host:
        raise ValueError("no host")
    if port_text is None:
        if default_port is None:
            raise ValueError("no port")
        return host, default_port
    lowest = 0 if allow_zero else 1
    if not port_text.isdigit() or len(port_text) > 5 or not lowest <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number from {lowest} to 65535")
    return host, int(port_text)


def require(checks: list[tuple[bool, str]]) -> None:
    """Raise :class:`StartError` with the message of the first check that is False
    (the engines' flag checks read as a table of condition and what would be valid)."""
    for ok, message in checks:
        if not ok:
            raise StartError(message)


def emit(obj: dict[str, Any], stream: Any = None) -> None:
    """Write one JSON line and flush, so a reader sees it at once.

    Args:
        obj: The line's content.
        stream: Where to write; stdout when None.
    """
    out = stream if stream is not None else sys.stdout
    out.write(json.dumps(obj, separators=(",", ":")) + "\n")
    out.flush()


def new_loop(use_uvloop: bool) -> tuple[asyncio.AbstractEventLoop, str]:
    """A fresh event loop, uvloop's when asked for and installed.

    Returns:
        The loop and its name (``uvloop`` or ``asyncio``), which the engines
        report in their ``ready`` line so a silent fallback is visible.
    """
    if use_uvloop:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop, "uvloop"
        except ImportError:
            pass
    return asyncio.new_event_loop(), "asyncio"


def raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard one, as kumod does.

    Thousands of connections need thousands of descriptors; the usual soft
    limit of 1024 would fail a run long before the machine is busy.

    Returns:
        The soft limit now in force, or -1 where there are no rlimits.
    """
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            target = hard if hard != resource.RLIM_INFINITY else max(soft, 1048576)
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except ImportError:  # pragma: no cover - not POSIX
        return -1


def add_stop_handlers(loop: asyncio.AbstractEventLoop, stop: Callable[[], None], stdin_eof: bool) -> None:
    """Call ``stop`` on SIGTERM or SIGINT and, with ``stdin_eof``, when stdin closes.

    A remote job asks for ``stdin_eof``: a dropped SSH channel shows up only
    as EOF on stdin, and the engine should then end with its summary rather
    than run on unwatched.
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    if not stdin_eof:
        return

    def readable() -> None:
        try:
            chunk = os.read(0, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            loop.remove_reader(0)
            stop()

    with contextlib.suppress(OSError, ValueError, NotImplementedError):
        loop.add_reader(0, readable)


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that drive this module's plumbing, the same in both engines.

    ``kumotui.jobs`` passes them to either engine alike, so they are spelled
    and documented once.
    """
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between progress lines")
    parser.add_argument("--no-uvloop", action="store_true", help="plain asyncio even if uvloop exists")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop (with a summary) when stdin closes, e.g. a dropped SSH channel",
    )


class WorkerPool:
    """Forked children that report JSON lines on pipes, and their latest state.

    The parent of a multi-process engine: it forks the workers, reads what
    each reports (``{"kind": ..., ...}`` lines, written by the ``Reporter``
    each child is given), keeps the latest counters of each, and sums them
    on demand, so the engine prints one stream whatever the worker count.
    """

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.pipes: dict[int, bytes] = {}
        self.latest: dict[int, dict[str, Any]] = {}
        self.final: set[int] = set()
        self.lost = 0
        self.sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self.stopping = False

    def spawn(self, child: Callable[[Reporter], int]) -> None:
        """Fork a child running ``child(report)``; it exits with its result.

        The child dies with this parent (no orphan keeps a port or sends on),
        gets the default SIGTERM and SIGINT back, and reports through a pipe.
        """
        rfd, wfd = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                os.close(rfd)
                os.close(self._wake_r)
                os.close(self._wake_w)
                for fd in list(self.pipes):
                    os.close(fd)
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                _die_with_parent()
                code = child(_pipe_reporter(wfd))
            except BaseException as error:
                with contextlib.suppress(Exception):
                    sys.stderr.write(f"worker failed: {error!r}\n")
            finally:
                os._exit(code)
        os.close(wfd)
        os.set_blocking(rfd, False)
        self.pids.append(pid)
        self.pipes[rfd] = b""
        self.sel.register(rfd, selectors.EVENT_READ)

    def _read(self, fd: int) -> list[dict[str, Any]]:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            chunk = b""
        if not chunk:
            self.sel.unregister(fd)
            os.close(fd)
            del self.pipes[fd]
            if fd not in self.final:
                self.lost += 1
            return []
        data = self.pipes[fd] + chunk
        *lines, rest = data.split(b"\n")
        self.pipes[fd] = rest
        out = []
        for raw in lines:
            with contextlib.suppress(ValueError):
                msg = json.loads(raw)
                msg["_fd"] = fd
                out.append(msg)
        return out

    def _handle(self, msg: dict[str, Any]) -> None:
        fd = msg.pop("_fd")
        kind = msg.pop("kind", None)
        if kind in ("state", "final"):
            self.latest[fd] = msg
            if kind == "final":
                self.final.add(fd)

    def poll(self, timeout: float) -> list[dict[str, Any]]:
        """Wait up to ``timeout`` for child lines; return the non-state ones."""
        other = []
        for key, _ in self.sel.select(timeout):
            fd = int(key.fd)
            if fd == self._wake_r:
                with contextlib.suppress(OSError):
                    os.read(fd, 4096)
                continue
            if fd == 0:
                try:
                    chunk = os.read(0, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    self.sel.unregister(0)
                    self.stopping = True
                continue
            for msg in self._read(fd):
                if msg.get("kind") in ("state", "final"):
                    self._handle(msg)
                else:
                    other.append(msg)
        return other

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Block until every child said ready; return the loop name they report.

        Raises:
            StartError: A child reported an error (the message is its own),
                exited, or was not ready in time. The children are stopped
                first, so a failed start leaves none behind.
        """
        try:
            return self._wait_ready(timeout)
        except StartError:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> str:
        ready: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        while len(ready) < len(self.pids):
            if time.monotonic() > deadline:
                raise StartError("workers did not start in time")
            if not self.pipes:
                raise StartError("workers exited during start")
            for msg in self.poll(0.2):
                if msg.get("kind") == "error":
                    raise StartError(str(msg.get("error")))
                if msg.get("kind") == "ready":
                    ready[msg["_fd"]] = str(msg.get("loop", ""))
            if self.lost:
                raise StartError("a worker exited during start")
        return next(iter(ready.values()), "")

    def install_signals(self) -> None:
        """SIGTERM and SIGINT set ``stopping`` and wake ``poll``; call before forking."""

        def on_signal(_signum: int, _frame: object) -> None:
            self.stopping = True

        signal.set_wakeup_fd(self._wake_w)
        self.sel.register(self._wake_r, selectors.EVENT_READ)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def serve(
        self,
        interval: float,
        stdin_eof: bool,
        tick: Callable[[], None],
    ) -> None:
        """Call ``tick`` every ``interval`` until a signal, stdin EOF, a lost
        worker, or every child having finished."""
        if stdin_eof:
            with contextlib.suppress(ValueError, OSError):
                self.sel.register(0, selectors.EVENT_READ)
        next_tick = time.monotonic() + interval
        while not self.stopping and self.pipes and not self.lost:
            self.poll(max(0.0, next_tick - time.monotonic()))
            now = time.monotonic()
            if now >= next_tick and not self.stopping:
                tick()
                next_tick += interval
                if next_tick < now:
                    next_tick = now + interval

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM every child by PID, collect final lines, SIGKILL stragglers."""
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.pipes and time.monotonic() < deadline:
            self.poll(0.1)
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                if os.waitpid(pid, os.WNOHANG) == (0, 0):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
        self.pids = []

    def totals(self) -> dict[str, Any]:
        """Sum of the latest counters of every child (numbers and dicts add)."""
        return merge_states(list(self.latest.values()))


def merge_states(states: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up counters: numbers sum, dicts merge by key, lists add element-wise.

    A key starting with ``max`` takes the largest value instead; one starting
    with ``ranges`` is a list of id ranges, merged as a union
    (:class:`IdRanges`); anything that is not a number, dict or list keeps
    its first value.
    """
    total: dict[str, Any] = {}
    for state in states:
        for key, value in state.items():
            if key.startswith("ranges"):
                total[key] = IdRanges.union([total.get(key) or [], value or []])
            elif isinstance(value, bool) or not isinstance(value, int | float | dict | list):
                total.setdefault(key, value)
            elif isinstance(value, dict):
                total[key] = merge_states([total.get(key, {}), value])
            elif isinstance(value, list):
                old = total.get(key) or [0] * len(value)
                total[key] = [a + b for a, b in zip(old, value, strict=False)]
            elif key.startswith("max"):
                total[key] = max(total.get(key, value), value)
            else:
                total[key] = total.get(key, 0) + value
    return total


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (no orphans)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _pipe_reporter(wfd: int) -> Reporter:
    """A forked worker's ``report``: ``{"kind": kind, **payload}`` lines up the pipe."""
    stream = os.fdopen(wfd, "w")

    def report(kind: str, payload: dict[str, Any]) -> None:
        emit({"kind": kind, **payload}, stream)

    return report


# -- per-message stamps: which message arrived, and how long it took ------------------------

STAMP_HEADER = b"X-Kumotui-Stamp: "
"""The header the generator puts first in each message (``--stamp``) and the sink reads back."""
STAMP_LENGTH = len(STAMP_HEADER) + 8 + 1 + 16 + 1 + 19 + 2
"""Bytes of one stamp line (fixed, so ``--body-size`` stays exact): tag, id in hex, send time in ns."""
STAMP_SCAN = 8192
"""Bytes at the head of a message the sink searches for a stamp (an MTA adds its own headers above it)."""
_STAMP = re.compile(rb"(?:^|\n)X-Kumotui-Stamp: ([a-z0-9]{8}) ([0-9a-f]{16}) ([0-9]{19})\r?\n", re.IGNORECASE)
_TAG = re.compile(r"[a-z0-9]{8}")
WORKER_SHIFT = 40
"""A stamp's id is ``worker << WORKER_SHIFT | sequence``: unique across the generator's workers."""
PROBE_WORKER = 0xFFFF
"""The worker number in the ids of routing probes (sent by kumotui before a run through an MTA):
the sink records their ids as delivered, but does not count them as the run's messages."""


def check_stamp_tag(tag: str) -> str:
    """A run's stamp tag: 8 characters of ``a-z0-9`` (fixed, so every stamp has one length)."""
    if not _TAG.fullmatch(tag):
        raise StartError(f"--stamp {tag!r}: expected 8 characters of a-z and 0-9")
    return tag


def stamp_line(tag: str, ident: int, send_ns: int) -> bytes:
    """``X-Kumotui-Stamp: TAG ID SEND_NS`` with its CRLF, exactly :data:`STAMP_LENGTH` bytes."""
    return b"%s%s %016x %019d\r\n" % (STAMP_HEADER, tag.encode("ascii"), ident, send_ns)


def read_stamp(head: bytes) -> tuple[str, int, int] | None:
    """The first stamp in a message's head: (tag, id, send time in ns), or None."""
    found = _STAMP.search(head)
    if found is None:
        return None
    return found.group(1).decode("ascii").lower(), int(found.group(2), 16), int(found.group(3))


class IdRanges:
    """A set of integer ids kept as sorted, disjoint ``[start, end)`` ranges.

    Messages are numbered in order and arrive nearly in order, so a run of a
    million messages is a handful of ranges: small enough to report in a JSON
    line and to subtract (accepted − delivered = lost) in the core.
    """

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, ident: int) -> bool:
        """Add one id; False when it was already there (a duplicate)."""
        starts, ends = self.starts, self.ends
        i = bisect.bisect_right(starts, ident) - 1
        if i >= 0 and ident < ends[i]:
            return False
        joins_left = i >= 0 and ends[i] == ident
        joins_right = i + 1 < len(starts) and starts[i + 1] == ident + 1
        if joins_left and joins_right:
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1]
        elif joins_left:
            ends[i] = ident + 1
        elif joins_right:
            starts[i + 1] = ident
        else:
            starts.insert(i + 1, ident)
            ends.insert(i + 1, ident + 1)
        return True

    def as_list(self) -> list[list[int]]:
        """``[[start, end], ...]`` for a JSON line."""
        return [[a, b] for a, b in zip(self.starts, self.ends, strict=True)]

    @staticmethod
    def union(lists: list[list[list[int]]]) -> list[list[int]]:
        """The union of several :meth:`as_list` outputs, as one sorted list of disjoint ranges."""
        merged: list[list[int]] = []
        for start, end in sorted((int(a), int(b)) for ranges in lists for a, b in ranges):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return merged


# -- latency histograms (fixed log buckets, so merging workers is addition) ---------------

BUCKETS_PER_OCTAVE = 8
"""Latency histogram resolution: each bucket is 2^(1/8) wide, about 9%."""
BUCKETS = BUCKETS_PER_OCTAVE * 28
"""1 us to 2^28 us (about 268 s); fixed so merging workers is plain addition."""


def bucket_of(us: int) -> int:
    """The histogram bucket of a latency in microseconds."""
    index = int(math.log2(us) * BUCKETS_PER_OCTAVE) if us > 1 else 0
    return index if index < BUCKETS else BUCKETS - 1


def histogram_summary(hist: list[int], max_us: float, sum_us: float) -> dict[str, float]:
    """p50/p90/p95/p99/max/avg in milliseconds from a (merged) histogram.

    A percentile is its bucket's geometric middle, clamped to the maximum
    seen, so it is within about 4.5% of the true value.
    """
    total = sum(hist)
    out: dict[str, float] = {}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        value = 0.0
        if total:
            rank = q * total
            cum = 0
            for index, count in enumerate(hist):
                cum += count
                if count and cum >= rank:
                    value = min(2 ** ((index + 0.5) / BUCKETS_PER_OCTAVE), max_us)
                    break
        out[name] = round(value / 1000, 3)
    out["max"] = round(max_us / 1000, 3)
    out["avg"] = round(sum_us / total / 1000, 3) if total else 0.0
    return out
