"""No orphans: a SIGKILLed ``kumotui bench`` leaves no job and no temporary directory behind.

kumotui's own engines stop when their stdin closes; kumod, traffic-gen and
Postfix's smtp-sink/smtp-source do not (the KumoMTA stand-ins behave like the
real tools here). SIGKILL gives kumotui no chance to stop anything, so before
every job ran under the watchdog, kumod and its generator kept running (and
serving a port) after kumotui was gone, and kumod's policy directory stayed
in the temp dir. Now each job's watchdog sees kumotui's end as its stdin
closing, stops the job's process group and removes the job's directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import kumotui_process
from tests.support.processes import alive, children, free_port, stop
from tests.support.waits import wait_until

GONE_WITHIN = 12.0
"""Seconds for every job to be gone: the watchdog's 5 s grace between SIGTERM and SIGKILL, and margin."""


@pytest.fixture
def temp_dir() -> Iterator[Path]:
    """The kumotui process's TMPDIR: traversable (not listable) by ``nobody``, whom kumod drops to as root."""
    path = Path(tempfile.mkdtemp(prefix="kumotui-test-orphans-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize(
    ("backend", "tools"),
    [("kumomta", ("sbin/kumod", "sbin/traffic-gen")), ("postfix", ("smtp-sink", "smtp-source"))],
)
def test_sigkilled_bench_leaves_no_job_and_no_temp_dir(
    backend: str, tools: tuple[str, str], temp_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = {**os.environ, "TMPDIR": str(temp_dir)}
    if backend == "kumomta":
        request.getfixturevalue("kumo_prefix")  # the stand-ins, through KUMOMTA_PREFIX
        env["KUMOMTA_PREFIX"] = os.environ["KUMOMTA_PREFIX"]
        extra = ["--http-port", str(free_port()), "--kumod-user", "nobody"]
    else:
        env["KUMOTUI_POSTFIX_DIR"] = str(request.getfixturevalue("postfix_root"))
        extra = ["--messages", "100000000"]  # smtp-source sends a fixed count
    args = ["bench", "--backend", backend, "--local-sink", "--listen", f"127.0.0.1:{free_port()}", *extra]
    args += ["--duration", "120", "--concurrency", "2", "--state-dir", str(tmp_path / "state")]
    proc = kumotui_process(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    family: list[int] = []
    try:

        def both_running() -> bool:
            family[:] = children(proc.pid)
            lines = [command_line(pid) for pid in family if "watchdog.py" not in command_line(pid)]
            return all(any(tool in line for line in lines) for tool in tools)  # the tools themselves run

        assert wait_until(both_running, timeout=30), [command_line(pid) for pid in family]
        if backend == "kumomta":
            assert list(temp_dir.glob("kumotui-sink-*")), "kumod's policy directory"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        assert wait_until(lambda: not any(alive(pid) for pid in family), timeout=GONE_WITHIN), [
            command_line(pid) for pid in family if alive(pid)
        ]
        assert wait_until(lambda: not any(temp_dir.iterdir()), timeout=GONE_WITHIN), list(temp_dir.iterdir())
    finally:
        stop(proc)
        for pid in family:  # whatever outlived the test (it failed): ours, stopped by PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
