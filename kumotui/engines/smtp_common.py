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
import contextlib
import json
import os
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

    A key starting with ``max`` takes the largest value instead; anything
    that is not a number, dict or list keeps its first value.
    """
    total: dict[str, Any] = {}
    for state in states:
        for key, value in state.items():
            if isinstance(value, bool) or not isinstance(value, int | float | dict | list):
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
