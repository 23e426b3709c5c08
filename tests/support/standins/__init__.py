"""Stand-in KumoMTA executables and helpers for driving real processes in tests.

``kumod`` and ``traffic-gen`` here reproduce KumoMTA's documented command
lines and output bytes (see each script's docstring); :func:`install_kumomta`
lays them out as ``<prefix>/sbin/{kumod,traffic-gen}`` for
``KUMOMTA_PREFIX``. :func:`run_streaming` runs a command and hands its
stdout and stderr to callbacks in whatever chunks the pipes deliver, as
the job model will; every process started here is stopped by PID.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STANDINS = Path(__file__).resolve().parent
KUMOMTA_TOOLS = ("kumod", "traffic-gen")


def install_kumomta(prefix: Path) -> Path:
    """Symlink the stand-ins into ``prefix/sbin``; returns the sbin directory."""
    sbin = prefix / "sbin"
    sbin.mkdir(parents=True, exist_ok=True)
    for name in KUMOMTA_TOOLS:
        (sbin / name).symlink_to(STANDINS / name)
    return sbin


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM by PID, then SIGKILL if it does not exit in time; never leaves an orphan."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@dataclass
class Finished:
    """A streamed command's exit."""

    code: int
    elapsed: float
    stdout: bytes
    stderr: bytes


def run_streaming(
    command: Sequence[str],
    on_stdout: Callable[[bytes, float], None],
    on_stderr: Callable[[bytes, float], None],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
) -> Finished:
    """Run to completion, passing each pipe read (and the seconds since start) to a callback."""
    started = time.monotonic()
    process = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env) if env is not None else None
    )
    collected = {"stdout": bytearray(), "stderr": bytearray()}
    try:
        with selectors.DefaultSelector() as selector:
            assert process.stdout is not None and process.stderr is not None
            selector.register(process.stdout, selectors.EVENT_READ, ("stdout", on_stdout))
            selector.register(process.stderr, selectors.EVENT_READ, ("stderr", on_stderr))
            while selector.get_map():
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"{command[0]} ran longer than {timeout} s")
                for key, _ in selector.select(timeout=0.2):
                    name, callback = key.data
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    collected[name] += chunk
                    callback(chunk, time.monotonic() - started)
        code = process.wait(timeout=timeout)
    finally:
        stop(process)
    return Finished(code, time.monotonic() - started, bytes(collected["stdout"]), bytes(collected["stderr"]))
