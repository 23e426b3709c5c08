"""Benchmarks across hosts over a real SSH connection, and no remote orphans.

The sshd runs on loopback; the "remote" side is this machine reached through
SSH, where kumotui ships its stdlib-only engines and watchdog and runs them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from kumotui.bench.options import BenchOptions
from kumotui.bench.run import Benchmark, BenchPlan, run_and_record
from kumotui.hosts.address import HostSpec
from kumotui.hosts.launch import launcher_for
from kumotui.hosts.local import LocalHost
from kumotui.hosts.remote import RemoteHost
from tests.sshd import Sshd


@pytest.fixture
def remote(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> Iterator[RemoteHost]:
    monkeypatch.setenv("KUMOTUI_SSH_CONFIG", str(sshd.ssh_config))
    host = RemoteHost(HostSpec.parse(sshd.spec))
    try:
        yield host
    finally:
        host.close()


def remote_engines() -> list[str]:
    """Engine processes started from kumotui's shipped copies (the 'remote' side)."""
    found = subprocess.run(["pgrep", "-af", "kumotui-engines-"], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


def wait_until(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def options(messages: int) -> BenchOptions:
    return BenchOptions(target=None, local_sink=True, messages=messages, concurrency=10, body_size=1000)


def test_sink_on_remote_host_generator_local(remote: RemoteHost) -> None:
    bench = Benchmark(BenchPlan(options(3000)), sink_launcher=launcher_for(remote))
    outcome = run_and_record(bench, LocalHost().facts(), None)
    assert outcome.generator is not None and outcome.generator.ok and outcome.generator.count == 3000
    assert outcome.sink is not None and outcome.sink.count == 3000  # counted remotely, streamed back over SSH
    assert bench.sink is not None and bench.sink.process.argv[0] == "ssh"
    assert wait_until(lambda: not remote_engines()), remote_engines()


def test_generator_on_remote_host(remote: RemoteHost) -> None:
    bench = Benchmark(BenchPlan(options(2000)), generator_launcher=launcher_for(remote))
    outcome = run_and_record(bench, LocalHost().facts(), None)
    assert outcome.generator is not None and outcome.generator.count == 2000
    assert outcome.sink is not None and outcome.sink.count == 2000
    assert wait_until(lambda: not remote_engines()), remote_engines()


def test_killing_the_ssh_connection_mid_run_leaves_nothing_remote(remote: RemoteHost) -> None:
    bench = Benchmark(BenchPlan(options(50_000_000)), sink_launcher=launcher_for(remote))
    bench.start()
    try:
        runner = threading.Thread(target=bench.run, daemon=True)
        runner.start()
        assert wait_until(lambda: len(remote_engines()) >= 1), "the remote sink runs"
        time.sleep(1.0)
        assert bench.sink is not None and bench.sink.pid is not None
        os.kill(bench.sink.pid, signal.SIGKILL)  # the local ssh client dies: the connection drops
        assert wait_until(lambda: not remote_engines(), timeout=15), remote_engines()
    finally:
        bench.request_stop()
        bench.stop()
