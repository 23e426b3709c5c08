"""Benchmarks across hosts over a real SSH connection, and no remote orphans.

The sshd runs on loopback; the "remote" side is this machine reached through
SSH, where kumotui ships its stdlib-only engines and watchdog and runs them.

``SshLauncher`` ships them into a private ``<tempdir>/kumotui-engines-XXXXXXXX`` per
job; each test points that temp dir at its own ``tmp_path``, so the remote engines it looks
for are its own, found by their command line even once orphaned (a process
whose SSH session died is re-parented, so ancestry would not find it), and
tests running side by side cannot see each other's.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kumotui.backends import SinkRequest
from kumotui.bench.options import BenchOptions
from kumotui.bench.run import Benchmark, BenchPlan, run_and_record
from kumotui.hosts import launch
from kumotui.hosts.address import HostSpec
from kumotui.hosts.launch import launcher_for
from kumotui.hosts.local import LocalHost
from kumotui.hosts.remote import RemoteHost
from tests.support.sshd import Sshd
from tests.support.waits import wait_until

RemoteEngines = Callable[[], list[str]]


@pytest.fixture
def remote(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> Iterator[RemoteHost]:
    monkeypatch.setenv("KUMOTUI_SSH_CONFIG", str(sshd.ssh_config))
    host = RemoteHost(HostSpec.parse(sshd.spec))
    try:
        yield host
    finally:
        host.close()


@pytest.fixture
def remote_engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RemoteEngines:
    """This test's engine processes on the 'remote' side: command lines that run its shipped copies."""
    shipped = tmp_path / "remote-tmp"
    shipped.mkdir()
    monkeypatch.setattr(launch, "REMOTE_TMPDIR", str(shipped))
    prefix = f"{shipped}/kumotui-engines-"

    def running() -> list[str]:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:  # not a process, or gone meanwhile
                continue
            line = " ".join(arg.decode(errors="replace") for arg in argv if arg)
            if prefix in line:
                found.append(f"{proc.name} {line}")
        return found

    return running


def options(messages: int) -> BenchOptions:
    return BenchOptions(target=None, local_sink=True, messages=messages, concurrency=10, body_size=1000)


def test_sink_on_remote_host_generator_local(remote: RemoteHost, remote_engines: RemoteEngines, tmp_path: Path) -> None:
    bench = Benchmark(BenchPlan(options(3000)), sink_launcher=launcher_for(remote))
    outcome = run_and_record(bench, LocalHost().facts(), None)
    assert outcome.generator is not None and outcome.generator.ok and outcome.generator.count == 3000
    assert outcome.sink is not None and outcome.sink.count == 3000  # counted remotely, streamed back over SSH
    assert bench.sink is not None and bench.sink.process.argv[0] == "ssh"
    assert "/remote-tmp/kumotui-engines-" in " ".join(bench.sink.process.argv)  # what remote_engines looks for
    assert wait_until(lambda: not remote_engines()), remote_engines()
    assert wait_until(lambda: not any((tmp_path / "remote-tmp").iterdir())), "the job's private directory is removed"


def test_generator_on_remote_host(remote: RemoteHost, remote_engines: RemoteEngines) -> None:
    bench = Benchmark(BenchPlan(options(2000)), generator_launcher=launcher_for(remote))
    outcome = run_and_record(bench, LocalHost().facts(), None)
    assert outcome.generator is not None and outcome.generator.count == 2000
    assert outcome.sink is not None and outcome.sink.count == 2000
    assert bench.generator is not None and "/remote-tmp/kumotui-engines-" in " ".join(bench.generator.process.argv)
    assert wait_until(lambda: not remote_engines()), remote_engines()


def test_killing_the_ssh_connection_mid_run_leaves_nothing_remote(
    remote: RemoteHost, remote_engines: RemoteEngines, tmp_path: Path
) -> None:
    bench = Benchmark(BenchPlan(options(50_000_000)), sink_launcher=launcher_for(remote))
    bench.start()
    try:
        runner = threading.Thread(target=bench.run, daemon=True)
        runner.start()
        assert wait_until(lambda: len(remote_engines()) >= 1), "the remote sink runs"
        # Mid-run: the generator has sent mail through the remote sink.
        assert wait_until(lambda: any(s.role == "generator" and s.count > 0 for s in bench.series)), bench.series[-2:]
        assert bench.sink is not None and bench.sink.pid is not None
        (private,) = (tmp_path / "remote-tmp").iterdir()  # the sink's, made by mkdtemp over there
        assert private.stat().st_mode & 0o777 == 0o700
        os.kill(bench.sink.pid, signal.SIGKILL)  # the local ssh client dies: the connection drops
        assert wait_until(lambda: not remote_engines(), timeout=15), remote_engines()
        assert wait_until(lambda: not private.exists()), "the remote watchdog removes the job's directory"
    finally:
        bench.request_stop()
        bench.stop()


def test_a_remote_sink_answers_from_a_responses_file_copied_beside_it(
    remote: RemoteHost, remote_engines: RemoteEngines, tmp_path: Path
) -> None:
    responses = tmp_path / "here-only.toml"
    responses.write_text('[domain."example.com"]\nbounce = 20\ndefer = 30\n')
    plan = BenchPlan(options(1000), sink=SinkRequest(responses=str(responses), seed=3))
    bench = Benchmark(plan, sink_launcher=launcher_for(remote))
    outcome = run_and_record(bench, LocalHost().facts(), None)
    assert bench.sink is not None
    argv = " ".join(bench.sink.process.argv)
    shipped = re.search(r"--responses (\S+)", argv)
    assert shipped is not None and str(responses) not in argv
    assert re.fullmatch(rf"{tmp_path}/remote-tmp/kumotui-engines-\w+/data-here-only\.toml", shipped[1])
    # The remote sink drew from the copy: this domain's answers, counted over there.
    (row,) = outcome.record.pushback
    assert row.domain == "example.com" and row.attempts == 1000, row
    assert 0 < row.deferred < 1000 and 0 < row.bounced < 1000
    assert outcome.generator is not None and outcome.generator.count == 1000 - row.deferred - row.bounced
    assert wait_until(lambda: not remote_engines()), remote_engines()
    assert wait_until(lambda: not any((tmp_path / "remote-tmp").iterdir())), "the copy goes with the job's directory"
