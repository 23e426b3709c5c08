"""SMTP for the sink/generator tests: the engines as real child processes through
the job model (:mod:`kumotui.backends.builtin`), a raw SMTP client on real
loopback sockets, and Postfix's tools when present."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kumotui.backends.builtin import BuiltinGenJob, BuiltinSinkJob, EngineJob
from kumotui.backends.process import Launcher

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def sink(*args: str) -> Iterator[tuple[BuiltinSinkJob, int]]:
    """A built-in sink on a free loopback port, run as the CLI and the app run it; stopped afterwards."""
    job = BuiltinSinkJob(Launcher(), ["--listen", "127.0.0.1:0", *args]).start()
    try:
        job.wait_ready()
        yield job, job.port
    finally:
        job.stop()


def finish(job: EngineJob) -> dict[str, Any] | None:
    """Stop an engine job (stdin closed, then SIGTERM) and return the summary line it printed."""
    job.stop()
    return job.final


def run_gen(port: int, *args: str, timeout: float = 60) -> dict[str, Any]:
    """Run the generator to its end against ``port``; return its summary."""
    job = BuiltinGenJob(Launcher(), ["--target", f"127.0.0.1:{port}", *args]).start()
    try:
        job.wait_finished(timeout)
    finally:
        job.stop()
    assert job.final is not None, job.tail()
    return job.final


def engine(name: str) -> list[str]:
    """The argument list that runs one of kumotui's engines (``smtp_sink``, ``smtp_gen``) as a module."""
    return [sys.executable, "-m", f"kumotui.engines.{name}"]


def copy_engines(tmp: Path) -> Path:
    """The engine files alone in a directory, as a remote host would get them
    (``SshLauncher`` ships every ``smtp_*.py``: the engines and their common module)."""
    for path in (REPO / "kumotui" / "engines").glob("smtp_*.py"):
        shutil.copy(path, tmp / path.name)
    return tmp


class Client:
    """A raw SMTP client: exact bytes out, parsed replies in."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        """Send bytes exactly as given."""
        self.sock.sendall(data)

    def reply(self) -> tuple[int, list[bytes]]:
        """One (possibly multi-line) reply: code and text lines."""
        lines: list[bytes] = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed after {lines!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line[4:])
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def raw_reply(self) -> bytes:
        """One (possibly multi-line) reply exactly as it came, CRLFs included."""
        raw = b""
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed after {raw!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            raw += line + b"\r\n"
            if line[3:4] != b"-":
                return raw

    def code(self) -> int:
        """Just the code of the next reply."""
        return self.reply()[0]

    def cmd(self, line: str) -> int:
        """Send one command line, return its reply code."""
        self.send(line.encode() + b"\r\n")
        return self.code()

    def greet(self) -> None:
        """Banner and EHLO."""
        assert self.code() == 220
        assert self.cmd("EHLO client.test") == 250

    def closed(self, timeout: float = 5.0) -> bool:
        """Whether the server closed the connection (EOF) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True

    def close(self) -> None:
        """Close our side."""
        self.sock.close()


def postfix_tools() -> Path:
    """Where Postfix's smtp-sink and smtp-source were extracted (tests use the ``postfix_root`` fixture).

    ``.ci/setup --test`` puts them in ``.ci/cache/postfix``;
    ``KUMOTUI_POSTFIX_DIR`` overrides. Missing tools skip the test locally
    but fail it in CI, so interoperability is never silently untested there.
    """
    root = Path(os.environ.get("KUMOTUI_POSTFIX_DIR", REPO / ".ci" / "cache" / "postfix"))
    if not (root / "usr/sbin/smtp-sink").exists():
        message = f"Postfix's smtp-sink/smtp-source not found under {root} (bash .ci/setup --test)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return root


def postfix_cmd(root: Path, tool: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """Argument list and environment to run one of Postfix's tools from its extracted tree."""
    argv = [str(root / "usr/sbin" / tool)]
    if tool == "smtp-sink" and os.geteuid() == 0:
        argv += ["-u", "nobody"]
    env = dict(os.environ, LD_LIBRARY_PATH=str(root / "usr/lib/postfix"))
    return argv + list(args), env
