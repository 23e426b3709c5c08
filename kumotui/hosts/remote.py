"""A remote host over SSH: plumbum's SshMachine plus kumotui's agent.

The system OpenSSH client does the connecting, so the user's keys, agent,
``~/.ssh/config`` and known_hosts all apply. Once connected, one persistent
channel runs :mod:`kumotui.agent` (``python3 -u -c SOURCE``) and every file
read, write or command is a JSON request on it: about a millisecond each
instead of a new SSH connection (a few hundred ms) per command.

The other end is another machine, so nothing it does may hang or crash
kumotui: connecting has one deadline (:data:`CONNECT_TIMEOUT`, SSH's own
``ConnectTimeout`` included), every reply has one (:data:`REPLY_TIMEOUT`),
a reply is at most :data:`MAX_REPLY_BYTES`, and a reply that is not the JSON
object the request expects is refused. Each of these ends the channel (a
late or extra line would answer the wrong request) with a
:class:`~kumotui.errors.KumotuiError` naming the host. Every ``ssh`` command
line ends its options with ``--`` before the destination.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import ipaddress
import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from plumbum import SshMachine, local
from plumbum.commands.processes import CommandNotFound, ProcessTimedOut

from kumotui.errors import KumotuiError
from kumotui.hosts import Completed, HostFacts, ManagedFile, agent
from kumotui.hosts.address import HostSpec

AGENT_SOURCE = Path(agent.__file__).read_text(encoding="utf-8")

CONNECT_TIMEOUT = 10.0
"""Seconds from starting ssh to the agent's first line (``$KUMOTUI_SSH_TIMEOUT`` overrides)."""
REPLY_TIMEOUT = 30.0
"""Seconds the agent has to answer one request (``$KUMOTUI_AGENT_TIMEOUT`` overrides);
a command run through it gets its own timeout on top."""
RUN_TIMEOUT = 60.0
"""Seconds a command run through the agent may take, unless the caller says otherwise."""
MAX_REPLY_BYTES = 4 * 1024 * 1024
"""The largest reply accepted: far above any file kumotui reads (sysctl values,
drop-ins, limits.conf), far below what could exhaust memory."""
_STDERR_KEPT = 4096
"""Bytes of the remote side's stderr kept for error messages."""

T = TypeVar("T")


def timeout_from_env(name: str, default: float) -> float:
    """A positive number of seconds from the environment, else ``default``."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 86400:
        raise KumotuiError(f"${name} {text!r}: expected a number of seconds, more than 0 and less than a day")
    return value


def ssh_options(connect_timeout: float | None = None) -> list[str]:
    """Options every connection gets: never prompt (a TUI cannot answer), give up connecting in time."""
    seconds = (
        connect_timeout if connect_timeout is not None else timeout_from_env("KUMOTUI_SSH_TIMEOUT", CONNECT_TIMEOUT)
    )
    options = [
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={max(1, round(seconds))}",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
    ]
    config = os.environ.get("KUMOTUI_SSH_CONFIG")
    if config:
        options = ["-F", config, *options]
    return options


def explain_ssh_failure(spec: HostSpec, stderr: str) -> str:
    """Turn OpenSSH's stderr into one clear sentence naming the host."""
    text = stderr.strip()
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        return (
            f"{spec}: host key verification failed: the server's key does not match known_hosts "
            "(or it is unknown). Check the key, then update known_hosts; kumotui never accepts it for you."
        )
    if "Permission denied" in text:
        return f"{spec}: authentication refused (publickey). Check --identity, your ssh-agent or ~/.ssh/config."
    if "Connection refused" in text:
        return f"{spec}: connection refused: no SSH server listening on that port."
    if "timed out" in text or "No route to host" in text or "Network is unreachable" in text:
        return f"{spec}: unreachable ({text.splitlines()[-1]})."
    if "Could not resolve hostname" in text:
        return f"{spec}: unknown host name."
    last = text.splitlines()[-1] if text else "ssh failed"
    return f"{spec}: {last}"


class _Killable(Protocol):
    def kill(self) -> None: ...


class _Deadline:
    """Kills the processes it watches when time runs out, so whatever waits on them wakes up."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = threading.Event()
        self._lock = threading.Lock()
        self._processes: list[_Killable] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, process: _Killable) -> None:
        """Kill ``process`` too when the deadline passes (at once if it already has)."""
        with self._lock:
            self._processes.append(process)
            late = self.expired.is_set()
        if late:
            _kill(process)

    def cancel(self) -> None:
        """The work finished in time: stop the timer and forget the processes."""
        self._timer.cancel()
        with self._lock:
            self._processes.clear()

    def _expire(self) -> None:
        with self._lock:
            self.expired.set()
            processes = list(self._processes)
        for process in processes:
            _kill(process)


def _kill(process: _Killable) -> None:
    with contextlib.suppress(OSError):
        process.kill()


class _SshMachine(SshMachine):
    """plumbum's SshMachine, with ``--`` before the destination in every ssh it starts.

    plumbum puts the destination after the options it is given, so a host
    beginning with ``-`` would be read by ssh as an option (``-F``, ``-E``,
    ``-oProxyCommand=``). :class:`HostSpec` refuses such names; this is the
    second lock. Every process it starts is watched by a deadline while
    connecting.
    """

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        self.deadline = deadline
        super().__init__(*args, **kwargs)

    def popen(self, args: Any, ssh_opts: Sequence[str] = (), *rest: Any, **kwargs: Any) -> Any:
        """plumbum's popen, with ``--`` as the last option before the destination."""
        process = super().popen(args, [*ssh_opts, "--"], *rest, **kwargs)
        self.deadline.watch(process)
        return process


class _Lines:
    """A child's stdout as complete lines, read by a thread, each awaited with a deadline.

    A line longer than ``limit`` is never kept: the reader stops there and
    reports it. The queue is short, so a side that floods lines nobody asked
    for is held back by the pipe instead of filling memory.
    """

    TOO_LONG = object()
    END = object()

    def __init__(self, stream: IO[Any], limit: int) -> None:
        self._fd = stream.fileno()
        self._limit = limit
        self.queue: queue.Queue[bytes | object] = queue.Queue(maxsize=4)
        threading.Thread(target=self._read, daemon=True, name="kumotui-agent-reader").start()

    def _read(self) -> None:
        pending = bytearray()
        while True:
            try:
                data = os.read(self._fd, 65536)
            except OSError:
                data = b""
            if not data:
                self.queue.put(self.END)
                return
            pending += data
            while (end := pending.find(b"\n")) >= 0:
                if end > self._limit:
                    break
                self.queue.put(bytes(pending[:end]))
                del pending[: end + 1]
            if len(pending) > self._limit:
                self.queue.put(self.TOO_LONG)
                return

    def get(self, timeout: float) -> bytes | object:
        """The next line, :attr:`END`, :attr:`TOO_LONG`, or raise ``queue.Empty`` after ``timeout``."""
        return self.queue.get(timeout=max(timeout, 0.0))


class _Tail:
    """The last bytes of a child's stderr, drained by a thread so the child never blocks on it."""

    def __init__(self, stream: IO[Any], keep: int = _STDERR_KEPT) -> None:
        self._fd = stream.fileno()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._keep = keep
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True, name="kumotui-agent-stderr").start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._chunks.append(data[-self._keep :])
                self._size += len(self._chunks[-1])
                while self._size > self._keep and len(self._chunks) > 1:
                    self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        """What was kept, decoded, its last line first in importance."""
        with self._lock:
            data = b"".join(self._chunks)[-self._keep :]
        return data.decode("utf-8", errors="replace").strip()


class RemoteHost:
    """Files and commands on a remote machine, through one agent channel."""

    def __init__(
        self, spec: HostSpec, connect_timeout: float | None = None, reply_timeout: float | None = None
    ) -> None:
        """Connect to ``spec`` and start the agent there, or raise KumotuiError in time.

        Args:
            spec: where to connect (already validated by :meth:`HostSpec.parse`).
            connect_timeout: seconds for all of it, from starting ssh to the
                agent's first line (default :data:`CONNECT_TIMEOUT`).
            reply_timeout: seconds for each later reply (default :data:`REPLY_TIMEOUT`).
        """
        self.spec = spec
        self.name = str(spec)
        self.connect_timeout = connect_timeout or timeout_from_env("KUMOTUI_SSH_TIMEOUT", CONNECT_TIMEOUT)
        self.reply_timeout = reply_timeout or timeout_from_env("KUMOTUI_AGENT_TIMEOUT", REPLY_TIMEOUT)
        self._lock = threading.Lock()
        self._broken: str | None = None
        self._facts: dict[str, Any] | None = None
        self._address: str | None = None
        self._on_close: list[Callable[[], None]] = []
        self.bytes_sent = 0
        """Bytes of requests written to the agent channel so far (for the cost of live readings)."""
        self.bytes_received = 0
        """Bytes of replies read from the agent channel so far."""
        options = ssh_options(self.connect_timeout)
        if spec.identity:
            options += ["-o", "IdentitiesOnly=yes"]
        interpreter = os.environ.get("KUMOTUI_REMOTE_PYTHON", "python3")
        deadline = _Deadline(self.connect_timeout)
        started = time.monotonic()
        try:
            try:
                self.machine = _SshMachine(
                    spec.host,
                    user=spec.user,
                    port=spec.port,
                    keyfile=str(spec.identity) if spec.identity else None,
                    ssh_opts=options,
                    connect_timeout=None,  # the deadline covers it (plumbum's own timer logs to stderr)
                    deadline=deadline,
                )
            except Exception:
                if deadline.expired.is_set():
                    raise self._connect_timed_out("connecting") from None
                # plumbum keeps only the first line of ssh's stderr; ask ssh again for the whole story.
                diagnosis = _diagnose(spec, options, self.connect_timeout)
                raise KumotuiError(explain_ssh_failure(spec, diagnosis)) from None
            try:
                self.python = self.machine[interpreter]
            except CommandNotFound:
                self.machine.close()
                raise KumotuiError(
                    f"{spec}: the remote host has no {interpreter} on its PATH; kumotui needs Python 3 there "
                    "(Debian: apt-get install python3-minimal; or set KUMOTUI_REMOTE_PYTHON to its path)"
                ) from None
            except Exception:
                self.machine.close()
                if deadline.expired.is_set():
                    raise self._connect_timed_out("looking for Python") from None
                raise
            self._start_agent(deadline, started)
        finally:
            deadline.cancel()

    def _connect_timed_out(self, step: str) -> KumotuiError:
        return KumotuiError(
            f"{self.spec}: no answer within {self.connect_timeout:g} s while {step} "
            "(the SSH server or the network is not responding; $KUMOTUI_SSH_TIMEOUT sets the limit)"
        )

    def _start_agent(self, deadline: _Deadline, started: float) -> None:
        """Start the agent and wait for its first line, within what is left of the connect deadline."""
        self._agent: Any = self.python["-u", "-c", AGENT_SOURCE].popen()  # plumbum's Popen
        assert self._agent.stdin is not None and self._agent.stdout is not None and self._agent.stderr is not None
        self._lines = _Lines(self._agent.stdout, MAX_REPLY_BYTES)
        self._stderr = _Tail(self._agent.stderr)
        try:
            hello = self._lines.get(deadline.seconds - (time.monotonic() - started))
        except queue.Empty:
            hello = None
        if hello is None or (hello is _Lines.END and deadline.expired.is_set()):
            self.close()
            raise self._connect_timed_out("starting the agent")
        if not isinstance(hello, bytes) or not _is_hello(hello):
            shown = hello if isinstance(hello, bytes) else b""
            said = _snippet(shown) or self._stderr_line() or "no output"
            self.close()
            raise KumotuiError(f"{self.spec}: the remote agent did not start ({said})")

    def _stderr_line(self) -> str:
        time.sleep(0.05)  # let the last of stderr arrive
        lines = self._stderr.text().splitlines()
        return lines[-1][:200] if lines else ""

    @property
    def address(self) -> str:
        """The address ssh really connects to (``HostName`` from ssh_config
        resolved by ``ssh -G``), for traffic aimed at this host."""
        if self._address is None:
            self._address = self.spec.host
            try:
                _code, out, _err = local["ssh"][(*ssh_options(self.connect_timeout), "-G", "--", self.spec.host)].run(
                    retcode=None, timeout=self.connect_timeout
                )
            except (ProcessTimedOut, CommandNotFound, OSError):  # fall back to the name as given
                out = ""
            for line in str(out).splitlines():
                if line.startswith("hostname "):
                    self._address = line.split(None, 1)[1].strip()
        return self._address

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (while the channel is still open) when the host is closed."""
        self._on_close.append(callback)

    def close(self) -> None:
        """Close the agent channel and the SSH master session."""
        while self._on_close:
            callback = self._on_close.pop()
            with contextlib.suppress(KumotuiError, OSError):
                callback()
        agent_process = getattr(self, "_agent", None)
        if agent_process is not None and agent_process.poll() is None:
            with contextlib.suppress(OSError):
                agent_process.stdin.close()
            try:
                agent_process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                agent_process.kill()
                agent_process.wait()
        machine = getattr(self, "machine", None)
        if machine is not None:
            machine.close()

    # -- the channel -------------------------------------------------------

    def request(self, op: str, *, reply_within: float | None = None, **fields: Any) -> dict[str, Any]:
        """One request on the agent channel; raises OSError like a local call.

        Args:
            op: the agent operation.
            reply_within: seconds to wait for the reply (default: :attr:`reply_timeout`).
            fields: the request's arguments.

        Raises:
            KumotuiError: naming the host, when the channel is gone, the reply
                is late, too big or malformed (the channel is then closed).
            OSError: the remote call's own error, with its errno.
        """
        data = (json.dumps({"op": op, **fields}) + "\n").encode()
        seconds = reply_within if reply_within is not None else self.reply_timeout
        with self._lock:
            if self._broken is not None:
                raise KumotuiError(self._broken)
            if self._agent.poll() is not None:
                raise KumotuiError(f"{self.spec}: the SSH connection was lost")
            if not self._lines.queue.empty():
                raise self._break(f"{self.spec}: the remote agent sent output nobody asked for; connection closed")
            deadline = _Deadline(seconds)
            deadline.watch(self._agent)  # a write into a channel nobody reads must not block forever either
            try:
                _write_all(self._agent.stdin, data)
                line = self._lines.get(seconds)
            except (BrokenPipeError, ValueError, OSError):
                line = _Lines.END
            except queue.Empty:
                line = None
            finally:
                deadline.cancel()
            if line is None or deadline.expired.is_set():
                raise self._break(
                    f"{self.spec}: the remote agent did not answer {op!r} within {seconds:g} s; connection closed "
                    "($KUMOTUI_AGENT_TIMEOUT sets the limit)"
                )
            if line is _Lines.END:
                raise self._break(f"{self.spec}: the SSH connection was lost")
            if line is _Lines.TOO_LONG:
                raise self._break(
                    f"{self.spec}: the remote agent's reply to {op!r} is larger than "
                    f"{MAX_REPLY_BYTES // (1024 * 1024)} MiB; refused, connection closed"
                )
            assert isinstance(line, bytes)
            self.bytes_sent += len(data)
            self.bytes_received += len(line) + 1
            reply = self._parse(op, line)
        if reply["ok"] is not True:
            code = reply.get("errno")
            message = reply.get("error")
            if not isinstance(message, str):
                message = None
            if code is None:
                raise KumotuiError(f"{self.spec}: agent error: {message or 'no reason given'}")
            if not _is_errno(code):
                raise self._malformed(op, "the errno is not a small whole number")
            raise OSError(code, message or os.strerror(code))
        return reply

    def _parse(self, op: str, line: bytes) -> dict[str, Any]:
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError):
            raise self._malformed(op, f"not JSON: {_snippet(line)}") from None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise self._malformed(op, f"not a reply object: {_snippet(line)}")
        return reply

    def _malformed(self, op: str, why: str) -> KumotuiError:
        return self._break(f"{self.spec}: the remote agent's reply to {op!r} is malformed ({why}); connection closed")

    def _break(self, message: str) -> KumotuiError:
        """Close the channel for good (a late or extra line would answer the wrong request)."""
        self._broken = message
        _kill(self._agent)
        return KumotuiError(message)

    def _field(self, op: str, reply: dict[str, Any], name: str, kind: type[T]) -> T:
        value = reply.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self._malformed(op, f"{name!r} is not a {kind.__name__}")
        return value

    def _results(self, op: str, reply: dict[str, Any], count: int) -> list[dict[str, Any]]:
        results = self._field(op, reply, "results", list)
        if len(results) != count or not all(isinstance(r, dict) for r in results):
            raise self._malformed(op, f"expected {count} result(s)")
        for result in results:
            if not isinstance(result.get("text"), str) and not (
                _is_errno(result.get("errno")) and isinstance(result.get("error"), str)
            ):
                raise self._malformed(op, "a result has neither text nor an errno")
        return results

    # -- the Host protocol --------------------------------------------------

    def read_text(self, path: Path) -> str:
        """A remote file's text; raises FileNotFoundError etc. like open()."""
        (result,) = self._results("read", self.request("read", paths=[str(path)]), 1)
        if isinstance(result.get("text"), str):
            return str(result["text"])
        raise _oserror(result["errno"], result["error"], path)

    def read_many(self, paths: Sequence[Path]) -> list[str | OSError]:
        """Several files in one round trip."""
        results = self._results("read", self.request("read", paths=[str(p) for p in paths]), len(paths))
        return [
            str(r["text"]) if isinstance(r.get("text"), str) else _oserror(r["errno"], r["error"], path)
            for path, r in zip(paths, results, strict=True)
        ]

    def read_value(self, root: Path, relative: str) -> str:
        """A kernel parameter read beneath ``root`` by the agent (no link followed, never outside)."""
        (result,) = self.request("read_beneath", root=str(root), relatives=[relative])["results"]
        if "text" in result:
            return str(result["text"])
        raise _oserror(result["errno"], result["error"], root / relative)

    def write_value(self, root: Path, relative: str, text: str) -> None:
        """A single write(2) beneath ``root`` on the remote host; the kernel's errno comes back."""
        self.request("write_beneath", root=str(root), relative=relative, text=text)

    def read_managed(self, path: Path) -> ManagedFile | None:
        """A remote drop-in's text and mode (None when absent); the agent refuses a link."""
        reply = self.request("read_managed", path=str(path))
        return None if reply.get("absent") else ManagedFile(str(reply["text"]), int(reply["mode"]))

    def replace_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        """Atomic replace on the remote host (``O_EXCL`` temp file; links and shared dirs refused)."""
        self.request("replace_file", path=str(path), text=text, mode=mode)

    def check_private_dir(self, path: Path) -> None:
        """The agent refuses a remote state dir that someone else could change."""
        self.request("private_dir", path=str(path))

    def remove_file(self, path: Path) -> None:
        """Remove a remote file if present."""
        self.request("remove", path=str(path))

    def list_dir(self, path: Path) -> list[str]:
        """Names in a remote directory."""
        names = self._field("list_dir", self.request("list_dir", path=str(path)), "names", list)
        if not all(isinstance(name, str) for name in names):
            raise self._malformed("list_dir", "a name is not a string")
        return list(names)

    def writable(self, path: Path) -> bool:
        """Whether the remote user may write ``path`` (or create it)."""
        return self._field("writable", self.request("writable", path=str(path)), "writable", bool)

    def run(self, args: Sequence[str], stdin: str | None = None, timeout: float = RUN_TIMEOUT) -> Completed:
        """Run an argument list on the remote host (no shell), killed there after ``timeout`` seconds."""
        reply = self.request(
            "run", reply_within=timeout + self.reply_timeout, args=list(args), stdin=stdin, timeout=timeout
        )
        return Completed(
            self._field("run", reply, "code", int),
            self._field("run", reply, "stdout", str),
            self._field("run", reply, "stderr", str),
        )

    def host_counters(self, interface: str | None = None, route_to: str | None = None) -> dict[str, Any]:
        """One batched reading of the host's counters for the live panes (see :func:`agent.host_counters`),
        one request on the existing channel."""
        return self.request("host_counters", interface=interface, route_to=route_to)

    def clock_exchanges(self, count: int = 5) -> list[tuple[int, int, int]]:
        """``count`` exchanges of (our time sent, the host's time, our time received), in ns, on the
        agent channel: the raw material of :meth:`ClockOffset.estimate`.

        Raises:
            KumotuiError: the channel is gone or a reply is malformed.
        """
        exchanges = []
        for _ in range(count):
            sent = time.time_ns()
            remote = self._field("clock", self.request("clock", reply_within=5.0), "ns", int)
            exchanges.append((sent, remote, time.time_ns()))
        return exchanges

    def info(self) -> dict[str, Any]:
        """Facts plus the remote euid and state home (cached)."""
        if self._facts is None:
            reply = self.request("facts")
            for name, kind in (
                ("hostname", str),
                ("kernel", str),
                ("cpus", int),
                ("memory_bytes", int),
                ("euid", int),
                ("state_home", str),
            ):
                self._field("facts", reply, name, kind)
            if not Path(reply["state_home"]).is_absolute():
                raise self._malformed("facts", "the state home is not an absolute path")
            self._facts = reply
        return self._facts

    @property
    def home_address(self) -> str:
        """The address the remote host sees this machine at (the client end of ``SSH_CONNECTION``).

        Raises:
            KumotuiError: the remote sshd did not say (no ``SSH_CONNECTION``), naming the host.
        """
        seen = self.info().get("ssh_client")
        if not isinstance(seen, str) or not seen:
            raise KumotuiError(
                f"{self.spec}: cannot tell which address of this machine the host reaches "
                "(no SSH_CONNECTION there); give the sink's address with --target instead of --local-sink"
            )
        try:
            return str(ipaddress.ip_address(seen.split("%")[0]))
        except ValueError:
            raise self._malformed("facts", "ssh_client is not an IP address") from None

    def is_root(self) -> bool:
        """Whether the remote user is root."""
        return int(self.info()["euid"]) == 0

    def default_state_dir(self) -> Path:
        """The journal's home on the remote host, by the same rule as locally."""
        if self.is_root():
            return Path("/var/lib/kumotui")
        return Path(self.info()["state_home"]) / "kumotui"

    def facts(self) -> HostFacts:
        """Hostname, kernel release, CPU count and memory of the remote host."""
        info = self.info()
        return HostFacts(str(info["hostname"]), str(info["kernel"]), int(info["cpus"]), int(info["memory_bytes"]))


def _write_all(stream: IO[Any] | None, data: bytes) -> None:
    """Write all of ``data`` to a pipe, below any text wrapper plumbum put on it."""
    if stream is None:
        raise BrokenPipeError
    fd = stream.fileno()
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _is_hello(line: bytes) -> bool:
    try:
        hello = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(hello, dict) and hello.get("ready") is True


def _is_errno(code: object) -> bool:
    return isinstance(code, int) and not isinstance(code, bool) and 0 < code < 4096


def _snippet(data: bytes, limit: int = 80) -> str:
    """The start of what the other side sent, quoted (control characters escaped by repr)."""
    text = data[:limit].decode("utf-8", errors="replace")
    return repr(text) + ("…" if len(data) > limit else "") if data else ""


def _oserror(code: int, message: str, path: Path) -> OSError:
    if code == errno.ENOENT:
        return FileNotFoundError(code, message, str(path))
    if code in (errno.EACCES, errno.EPERM):
        return PermissionError(code, message, str(path))
    if code == errno.EISDIR:
        return IsADirectoryError(code, message, str(path))
    return OSError(code, message, str(path))


def _diagnose(spec: HostSpec, options: list[str], timeout: float) -> str:
    """Run ``ssh HOST true`` once more (argument list, bounded in time) and return its stderr."""
    args = list(options)
    if spec.port:
        args += ["-p", str(spec.port)]
    if spec.user:
        args += ["-l", spec.user]
    if spec.identity:
        args += ["-i", str(spec.identity)]
    try:
        _code, _out, err = local["ssh"][(*args, "--", spec.host, "true")].run(retcode=None, timeout=timeout)
    except (ProcessTimedOut, CommandNotFound, OSError) as error:  # ssh missing, or it hung past the timeout
        return str(error)
    return str(err)
