"""Bytes as pipes deliver them: chunking recorded output, and streaming a real command's output.

Parsers of tool output must give the same answer however the bytes arrive;
:func:`chunked` cuts a recording into reads of one size, and
:func:`run_streaming` runs a command and hands its stdout and stderr to
callbacks in whatever chunks the pipes deliver, as the job model does.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tests.support.processes import stop


def chunked(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into reads of ``size`` bytes (the last one shorter)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


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
    """Run to completion, passing each pipe read (and the seconds since start) to a callback.

    The process is stopped by PID if anything goes wrong, and its pipes are closed.
    """
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
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    return Finished(code, time.monotonic() - started, bytes(collected["stdout"]), bytes(collected["stderr"]))
