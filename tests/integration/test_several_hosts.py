"""Runs that span several hosts, over real SSH: two generator hosts, host readings, a dropped link.

Two real sshd servers on loopback stand for two machines (``gen-a`` and
``gen-b``, a third name ``mx3`` reaching the first server again over its own
connection). Each generator host runs kumotui's shipped engines over its own
SSH link; the sink runs here and must count exactly what both sent.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kumotui.backends.builtin import BuiltinGenJob
from kumotui.bench.hoststats import HostReaders, sampler_for
from kumotui.bench.options import BenchOptions
from kumotui.bench.placement import PlacedRoles, Roles, host_entries, open_roles
from kumotui.bench.run import Benchmark, BenchPlan, run_and_record
from kumotui.engines.smtp_common import STAMP_SCAN, WORKER_SHIFT, read_stamp
from kumotui.hosts import launch
from kumotui.hosts.local import LocalHost
from kumotui.settings import Settings
from tests.support.cli import Cli
from tests.support.processes import free_port
from tests.support.relay import Relay
from tests.support.sshd import Sshd, alias_config, start_sshd
from tests.support.waits import wait_until


@pytest.fixture(scope="module")
def second_sshd(sshd: Sshd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """Another real sshd: the second machine."""
    server = start_sshd(tmp_path_factory.mktemp("sshd-b"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aliases(sshd: Sshd, second_sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Sshd]:
    """``gen-a`` and ``mx3`` on the first server, ``gen-b`` on the second; engines shipped into this test's dir."""
    servers = {"gen-a": sshd, "gen-b": second_sshd, "mx3": sshd}
    monkeypatch.setenv("KUMOTUI_SSH_CONFIG", str(alias_config(tmp_path / "ssh_config", servers)))
    shipped = tmp_path / "remote-tmp"
    shipped.mkdir()
    monkeypatch.setattr(launch, "REMOTE_TMPDIR", str(shipped))
    return servers


@pytest.fixture
def two_senders(aliases: dict[str, Sshd]) -> Iterator[PlacedRoles]:
    hosts = open_roles(Roles(generators=("gen-a", "gen-b")), Settings())
    try:
        yield hosts
    finally:
        hosts.close()


def running(text: str) -> list[str]:
    """Processes whose command line contains ``text`` (a job's private directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = " ".join(arg.decode(errors="replace") for arg in argv if arg)
        if text in line and proc.name != str(os.getpid()):
            found.append(f"{proc.name} {line}")
    return found


def private_dir(job: object) -> str:
    """The remote private directory a job's engine runs from (in its ssh command line)."""
    assert isinstance(job, BuiltinGenJob)
    line = " ".join(job.process.argv)
    start = line.index("/kumotui-engines-")
    return line[start : line.index("/", start + 1)]


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is ``ancestor`` or below it in the process tree."""
    while pid > 1:
        if pid == ancestor:
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


def stamp_id(message: bytes) -> int | None:
    found = read_stamp(message[:STAMP_SCAN])
    return found[1] if found else None


def options(messages: int, **more: object) -> BenchOptions:
    return BenchOptions(target=None, local_sink=True, messages=messages, concurrency=10, body_size=1000, **more)  # type: ignore[arg-type]


def test_two_generator_hosts_sink_counts_exactly_their_sum(two_senders: PlacedRoles, tmp_path: Path) -> None:
    bench = Benchmark(BenchPlan(options(4001)), generator_launchers=two_senders.generator_launchers())
    outcome = run_and_record(bench, LocalHost().facts(), tmp_path / "state")
    parts = outcome.record.generators
    assert [p.host for p in parts] == ["gen-a", "gen-b"]
    assert [p.summary.count if p.summary else None for p in parts] == [2001, 2000]  # the total, split exactly
    assert all(p.ok and p.unsent == 0 for p in parts)
    assert outcome.generator is not None and outcome.generator.count == 4001
    assert outcome.sink is not None and outcome.sink.count == 4001 == sum(p.summary.count for p in parts if p.summary)
    assert outcome.record.status in ("ok", "too short") and not outcome.record.failure
    # The sink here listened beyond loopback, and each remote generator was sent to where its host sees us.
    assert bench.sink is not None and isinstance(bench.sink, BuiltinGenJob) is False
    assert bench.sink.ready_info.get("listen", "").startswith("0.0.0.0")
    for job in bench.generators:
        assert "--target" in " ".join(job.process.argv) and f"127.0.0.1:{bench.sink.port}" in job.process.argv[-1]
    # Merged latency is the histograms' merge, not an average of percentiles.
    assert outcome.generator.latency_p99_ms is not None
    for job in bench.generators:
        assert wait_until(lambda job=job: not running(private_dir(job))), running(private_dir(job))


def test_killing_one_link_fails_the_run_and_keeps_the_other_hosts_numbers(
    two_senders: PlacedRoles, tmp_path: Path
) -> None:
    bench = Benchmark(
        BenchPlan(options(50_000_000, rate=4000.0)), generator_launchers=two_senders.generator_launchers()
    )
    bench.start()
    ran: list[object] = []
    try:
        runner = threading.Thread(target=lambda: ran.append(bench.run()), daemon=True)
        runner.start()
        assert wait_until(lambda: all(s is not None and s.count > 0 for s in bench.sender_samples)), (
            bench.sender_samples
        )
        a, b = bench.generators
        b_dir = private_dir(b)
        assert running(b_dir), "gen-b's engine runs over there"
        assert b.pid is not None
        killed = time.monotonic()
        os.kill(b.pid, signal.SIGKILL)  # gen-b's ssh client dies: its link drops
        assert wait_until(lambda: not running(b_dir), timeout=10), running(b_dir)
        stopped_in = time.monotonic() - killed
        runner.join(15)
        assert not runner.is_alive() and ran, "the run ends by itself"
        record = bench.finish(LocalHost().facts()).record
    finally:
        bench.request_stop()
        bench.stop()
    assert stopped_in < 10
    assert record.status == "failed" and "gen-b" in record.failure
    part_a, part_b = record.generators
    assert part_b.summary is None and part_b.error
    assert part_a.summary is not None and part_a.unsent is not None and part_a.summary.count > 0
    # gen-a's own identity holds: every message of its share is sent, failed or unsent.
    assert part_a.summary.count + part_a.summary.failed + part_a.unsent == 25_000_000
    assert record.sink is not None and record.sink.count >= part_a.summary.count
    assert wait_until(lambda: not running(private_dir(a))), running(private_dir(a))


def test_readings_come_from_each_hosts_own_agent(aliases: dict[str, Sshd], tmp_path: Path) -> None:
    """Three hosts read per tick over their agent channels: each reading is made by the agent under that
    host's own sshd (its pid is a descendant of that server), and the cost of a tick is measured."""
    hosts = open_roles(Roles(generators=("gen-a", "gen-b", "mx3"), starts_sink=False), Settings())
    readers = HostReaders([sampler_for(name, hosts.hosts[name], route_to="127.0.0.1") for name in hosts.hosts])
    try:
        readers.read()  # the baseline for rates
        ticks = []
        for _ in range(20):
            started = time.monotonic()
            readings = readers.read()
            ticks.append((time.monotonic() - started, sum(r.bytes for r in readings)))
        for reading in readings:
            server = aliases[reading.host]
            assert reading.stats is not None, reading.error
            assert reading.reader_pid is not None and reading.reader_pid != os.getpid()
            assert descends_from(reading.reader_pid, server.process.pid), (reading.host, reading.reader_pid)
            assert len(reading.stats.cpu_per_core) == os.cpu_count()
            assert reading.stats.interface == "lo" and reading.stats.rx_bytes_per_s is not None
            assert reading.stats.open_files_max > 0 and reading.nofile_hard and reading.processes
            assert 0 < reading.bytes < 4096
        pids = {r.reader_pid for r in readings}
        assert len(pids) == 3, "three agents, one per connection"
        ms = sorted(t for t, _ in ticks)[len(ticks) // 2] * 1000
        moved = ticks[-1][1]
        print(f"\nper tick, three hosts: median {ms:.1f} ms, {moved} bytes over the channels")
        assert ms < 500
    finally:
        readers.close()
        hosts.close()


def test_host_entries_keep_each_hosts_roles_and_values(aliases: dict[str, Sshd], modern_tree: Path) -> None:
    settings = Settings(sysctl_root=modern_tree)
    hosts = open_roles(Roles(generators=("gen-a", "gen-b"), sink=None), settings)
    try:
        entries = host_entries(settings, hosts)
    finally:
        hosts.close()
    assert [(e.name, e.roles) for e in entries] == [
        ("gen-a", ("generator",)),
        ("gen-b", ("generator",)),
        ("local", ("sink",)),
    ]
    assert all(e.parameters["net.core.somaxconn"] == entries[0].parameters["net.core.somaxconn"] for e in entries)


def test_bench_cli_two_hosts_and_report_names_the_hosts_that_differed(
    aliases: dict[str, Sshd], cli: Cli, tmp_path: Path, modern_tree: Path
) -> None:
    """The issue's acceptance command, then a second run after a value changed: the report says where."""
    flags = ["--sysctl-root", modern_tree, "--state-dir", tmp_path / "st"]
    done = cli("bench", "--host", "gen-a", "--host", "gen-b", "--local-sink", "--messages", "20000", "--json", *flags)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    sent = [g["sent"] for g in result["generators"]]
    assert [g["host"] for g in result["generators"]] == ["gen-a", "gen-b"] and sent == [10000, 10000]
    assert sum(sent) == result["sent"] == result["sink"]["received"] == 20000
    assert result["unsent"] == 0 and all(g["msgs_per_s"] > 0 and "p99" in g["latency_ms"] for g in result["generators"])
    (modern_tree / "net/core/somaxconn").write_text("8192\n")
    again = cli("bench", "--host", "gen-a", "--host", "gen-b", "--local-sink", "--messages", "200", *flags)
    assert again.returncode == 0, again.stderr
    assert "per host    gen-a: 100 sent" in again.stdout
    runs = json.loads(cli("runs", "--json", *flags).stdout)
    report = cli("report", runs[0]["id"], runs[1]["id"], *flags).stdout
    assert "Hosts whose parameters differed: gen-a, gen-b, local." in report
    assert "| gen-b | net.core.somaxconn |" in report
    # Refusals: the same host twice; a sink told to listen on loopback for remote generators.
    twice = cli("bench", "--host", "gen-a", "--host", "gen-a", "--local-sink", "--messages", "10", *flags)
    assert twice.returncode == 2 and "--host gen-a: named twice" in twice.stderr
    loop = cli("bench", "--host", "gen-a", "--local-sink", "--listen", "127.0.0.1:0", "--messages", "10", *flags)
    assert loop.returncode == 2 and "cannot reach a sink on loopback" in loop.stderr


def test_through_an_mta_two_hosts_stamp_distinct_ids_and_are_accounted_together(
    aliases: dict[str, Sshd], cli: Cli, tmp_path: Path
) -> None:
    """gen-b's ids start at worker 1 (--worker-base): a message it sent and the MTA lost is named as its own."""
    port = free_port()
    lost = 1 << WORKER_SHIFT | 5  # gen-b's fifth message
    with Relay(("127.0.0.1", port), drop=lambda message: stamp_id(message) == lost) as relay:
        done = cli(
            "bench", "--host", "gen-a", "--host", "gen-b", "--through", relay.address, "--local-sink",
            "--listen", f"127.0.0.1:{port}", "--messages", "1000", "--concurrency", "10", "--probe-timeout", "5",
            "--drain-timeout", "10", "--state-dir", tmp_path, "--json",
        )  # fmt: skip
    result = json.loads(done.stdout.splitlines()[-1])
    assert done.returncode == 1, done.stderr
    delivery = result["delivery"]
    assert (delivery["injected"], delivery["delivered"], delivery["lost"], delivery["duplicated"]) == (1000, 999, 1, 0)
    assert delivery["lost_ids"] == ["1:5"] and delivery["unexpected"] == 0
    assert [g["sent"] for g in result["generators"]] == [500, 500]
    # Two generator hosts share one histogram at the sink: their clocks are measured and said, not taken out.
    assert "measured over the agent channel; not taken out" in delivery["clock"], delivery["clock"]
    assert delivery["clock_offset_ms"] is None


def test_through_an_mta_from_one_remote_host_takes_the_measured_clock_offset_out(
    aliases: dict[str, Sshd], cli: Cli, tmp_path: Path
) -> None:
    """The generator on gen-a (over SSH), the sink here: the offset between their clocks is measured on the
    agent channel, said, and taken out of the latency. Both "hosts" are this machine, so it is ~0."""
    port = free_port()
    with Relay(("127.0.0.1", port)) as relay:
        done = cli(
            "bench", "--host", "gen-a", "--through", relay.address, "--local-sink", "--listen", f"127.0.0.1:{port}",
            "--messages", "300", "--concurrency", "5", "--probe-timeout", "5", "--drain-timeout", "10",
            "--state-dir", tmp_path, "--json",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    delivery = json.loads(done.stdout.splitlines()[-1])["delivery"]
    assert delivery["delivered"] == 300
    assert "the sink's clock (local) is" in delivery["clock"] and "(gen-a)" in delivery["clock"]
    assert "taken out of the latency" in delivery["clock"]
    offset, uncertainty = delivery["clock_offset_ms"], delivery["clock_uncertainty_ms"]
    assert 0 < uncertainty < 1000 and abs(offset) <= uncertainty + 1.0  # one clock, seen through ssh


def test_the_mta_under_test_on_its_own_host_is_placed_and_read_there(
    aliases: dict[str, Sshd], cli: Cli, tmp_path: Path
) -> None:
    """``--mta-host mx3``: the MTA's host is reached first, its kernel values kept in the record beside the others'."""
    port = free_port()
    with Relay(("127.0.0.1", port)) as relay:
        done = cli(
            "bench", "--through", relay.address, "--local-sink", "--listen", f"127.0.0.1:{port}", "--mta-host", "mx3",
            "--messages", "200", "--concurrency", "5", "--probe-timeout", "5", "--state-dir", tmp_path, "--json",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads(cli("runs", "--json", "--state-dir", tmp_path).stdout)[0]
    assert [(h["name"], h["roles"]) for h in record["hosts"]] == [("local", ["generator", "sink"]), ("mx3", ["mta"])]
    assert record["hosts"][1]["parameters"]["net.core.somaxconn"]
    refused = cli(
        "bench", "--through", relay.address, "--local-sink", "--mta-host", "mx3", "--redirect-port25",
        "--messages", "10", "--state-dir", tmp_path,
    )  # fmt: skip
    assert refused.returncode == 2 and "--redirect-port25 with --mta-host mx3" in refused.stderr
