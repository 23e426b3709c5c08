"""Benchmarks from the app whose roles run on other hosts, over a real OpenSSH server on loopback.

"Hosts" are names in an ssh_config for the test's sshd (``gen-a`` and
``mx3`` reach the same server, each over its own connection and agent), so
a reading that comes from a remote agent is told apart by its reader: a
process below that sshd, not this test's own. The runs are real (kumotui's
engines shipped over SSH and started there under their watchdog), and after
``q`` every process the run had, on either side, is gone by PID.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from kumotui.bench.live import HostView
from kumotui.hosts import launch
from kumotui.hosts.remote import RemoteHost
from kumotui.settings import Settings
from kumotui.ui.app import make_app
from kumotui.ui.modals.confirm import ConfirmScreen
from kumotui.ui.screens.bench import BenchScreen
from kumotui.ui.screens.tuning import TuningScreen
from kumotui.ui.widgets.bench_panes import HintList, HostPane, Readout
from kumotui.ui.widgets.param_table import ParamTable
from tests.support.pilot import started
from tests.support.processes import alive, children
from tests.support.sshd import Sshd, alias_config
from tests.support.waits import settle, wait_for, wait_until

pytestmark = pytest.mark.processes  # real engines, here and over SSH


@pytest.fixture
def hosts_settings(sshd: Sshd, sim_paths: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``gen-a`` and ``mx3`` on the test sshd; engines shipped into this test's dir; a port range of 2 ports
    in the simulated tree, so TIME_WAIT after a run is "near the range" on every host."""
    monkeypatch.setenv("KUMOTUI_SSH_CONFIG", str(alias_config(tmp_path / "ssh_config", {"gen-a": sshd, "mx3": sshd})))
    shipped = tmp_path / "remote-tmp"
    shipped.mkdir()
    monkeypatch.setattr(launch, "REMOTE_TMPDIR", str(shipped))
    (sim_paths["tree"] / "net/ipv4/ip_local_port_range").write_text("60000\t60001\n")
    return Settings(
        sysctl_root=sim_paths["tree"],
        sysctl_d=sim_paths["sysctl_d"],
        state_dir=sim_paths["state"],
        system_root=sim_paths["system"],
    )


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is ``ancestor`` or below it in the process tree."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False


def shipped_processes(directory: Path) -> set[int]:
    """Processes started from the engines shipped into ``directory`` (the remote side of a run)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(directory) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.add(int(proc.name))
            except OSError:
                continue
    return found


def pane_text(pane: HostPane) -> str:
    """Everything a host pane shows now."""
    return "\n".join(str(readout.render()) for readout in pane.query(Readout) if readout.display)


def views(screen: BenchScreen) -> dict[str, HostView]:
    """The latest reading of each host, by name."""
    return {view.name: view for view in screen.figures.hosts} if screen.figures is not None else {}


def check_readers(screen: BenchScreen, sshd: Sshd) -> None:
    """Each remote host's reading was made by its own agent under the test sshd; this machine's, in-process;
    and each pane says who read it."""
    seen = views(screen)
    agents = set()
    for name, view in seen.items():
        reading = view.reading
        assert reading.stats is not None and reading.reader_pid is not None, (name, reading.error)
        if name == "local":
            assert reading.reader_pid == os.getpid() and reading.bytes == 0
        else:
            assert reading.reader_pid != os.getpid() and descends_from(reading.reader_pid, sshd.process.pid)
            assert 0 < reading.bytes < 4096  # one request and its reply over the agent channel
            agents.add(reading.reader_pid)
    assert len(agents) == len(seen) - ("local" in seen), "one agent per remote host"
    for pane in screen.query(HostPane):
        if pane.display:
            assert f"read by pid {seen[pane.host].reading.reader_pid}" in pane_text(pane)


async def fill_and_start(pilot: Pilot[Any], **fields: str) -> BenchScreen:
    """Open the benchmark screen, fill the form, start."""
    await pilot.press("b")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, BenchScreen)
    for name, value in fields.items():
        screen.query_one(f"#{name}", Input).value = value
    await pilot.press("s")
    return screen


def run_pids(screen: BenchScreen, shipped: Path) -> set[int]:
    """Every process of the run now: its jobs here (ssh clients, watchdogs, engines), what runs over there,
    and the remote agents that read the hosts."""
    bench = screen.bench
    assert bench is not None
    jobs = [job for job in (bench.sink, *bench.generators) if job is not None and job.pid is not None]
    pids = {pid for job in jobs for pid in (job.pid, *children(job.pid or 0))}
    pids |= shipped_processes(shipped)
    pids |= {v.reading.reader_pid for v in views(screen).values() if v.name != "local" and v.reading.reader_pid}
    return pids


async def test_two_generators_and_a_remote_sink_from_the_app(
    hosts_settings: Settings, sshd: Sshd, tmp_path: Path
) -> None:
    """Generators here and on gen-a, the sink on mx3: a pane per host, read by each host's own agent; the
    sink counts exactly what both sent; Enter on mx3's hint opens tuning on mx3; q leaves nothing running."""
    app = make_app(hosts_settings)
    ticks: list[tuple[float, int]] = []
    async with started(app, (120, 36)) as pilot:
        screen = await fill_and_start(
            pilot, generator_hosts="local, gen-a", sink_host="mx3", messages="4001", concurrency="20", rate="800"
        )
        await wait_for(
            pilot, lambda: len(views(screen)) == 3 and all(v.reading.stats for v in views(screen).values()), 30
        )
        await wait_for(pilot, lambda: all((v.rate or 0) > 0 for v in views(screen).values() if v.sent is not None), 30)
        assert [p.host for p in screen.query(HostPane)] == ["local", "gen-a", "mx3"]
        assert all(pane.display for pane in screen.query(HostPane)), "120x36: every host's pane at once"
        check_readers(screen, sshd)
        assert "per host: local" in str(screen.query_one("#gen-hosts", Readout).render())
        pids = run_pids(screen, tmp_path / "remote-tmp")
        assert shipped_processes(tmp_path / "remote-tmp"), "the sink and gen-a's generator run over there"
        while screen.state == "running":
            seen = views(screen).values()
            ticks.append((max(v.reading.seconds for v in seen), sum(v.reading.bytes for v in seen)))
            await pilot.pause(0.5)
        await wait_for(pilot, lambda: screen.state in ("done", "failed"), 60)
        await settle(pilot)
        assert screen.state == "done", screen.error
        outcome = screen.outcome
        assert outcome is not None and outcome.sink is not None
        sent = [g.summary.count for g in outcome.record.generators if g.summary]
        assert [g.host for g in outcome.record.generators] == ["local", "gen-a"] and sent == [2001, 2000]
        assert outcome.sink.count == sum(sent) == 4001
        assert [h.name for h in outcome.record.hosts] == ["local", "gen-a", "mx3"]
        # TIME_WAIT after the run is past 80% of the simulated 2-port range on every host: mx3's hint names it.
        hints = screen.query_one(HintList)
        await wait_for(pilot, lambda: "time-wait@mx3" in hints.hints, 10)
        title = hints.hints["time-wait@mx3"].title
        assert title.startswith("sink host mx3:") and title.endswith("→ net.ipv4.ip_local_port_range on mx3")
        hints.focus()
        hints.highlighted = list(hints.hints).index("time-wait@mx3")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TuningScreen) and app.screen.findings, 20)
        tuning = app.screen
        assert isinstance(tuning, TuningScreen) and isinstance(tuning.host, RemoteHost)
        assert app.settings.hosts == ("mx3",) and tuning.host.name == "mx3"
        table = tuning.query_one(ParamTable)
        await wait_for(pilot, lambda: table.cursor_row == table.get_row_index("net.ipv4.ip_local_port_range"))
        await pilot.press("q")
    assert wait_until(lambda: not any(alive(pid) for pid in pids), timeout=15), [p for p in pids if alive(p)]
    assert not shipped_processes(tmp_path / "remote-tmp")
    ms = statistics.median(t for t, _ in ticks) * 1000
    print(f"\napp, three hosts: median {ms:.1f} ms per tick (slowest host), {ticks[-1][1]} bytes per tick")


async def test_a_remote_generator_at_80x24_one_host_at_a_time_and_quitting_mid_run(
    hosts_settings: Settings, sshd: Sshd, tmp_path: Path
) -> None:
    """The generator on gen-a, the sink here: at 80x24 one host's pane shows, n shows the other; q in the
    middle of the run (confirmed) stops everything on both sides."""
    app = make_app(hosts_settings)
    async with started(app, (80, 24)) as pilot:
        screen = await fill_and_start(pilot, generator_hosts="gen-a", messages="1000000", rate="200")
        await wait_for(
            pilot, lambda: len(views(screen)) == 2 and all(v.reading.stats for v in views(screen).values()), 30
        )
        await wait_for(pilot, lambda: (views(screen)["gen-a"].sent or 0) > 0, 30)
        check_readers(screen, sshd)
        assert "generator on gen-a · sink on local" in str(screen.query_one("#bench-status", Readout).render())
        panes = list(screen.query(HostPane))
        assert [p.host for p in panes] == ["gen-a", "local"]
        shown = [p.host for p in panes if p.display]
        assert shown == ["gen-a"], shown
        assert "(1/2, n: next)" in pane_text(panes[0])
        assert screen.active_bindings["n"].binding.description == "Next host" and screen.active_bindings["n"].enabled
        await pilot.press("n")
        await wait_for(pilot, lambda: [p.host for p in panes if p.display] == ["local"])
        await wait_for(pilot, lambda: "(2/2, n: next)" in pane_text(panes[1]))
        assert pane_text(panes[1]).startswith("local (2/2, n: next) sink")
        check_readers(screen, sshd)
        await pilot.press("n")
        await wait_for(pilot, lambda: [p.host for p in panes if p.display] == ["gen-a"])
        pids = run_pids(screen, tmp_path / "remote-tmp")
        assert shipped_processes(tmp_path / "remote-tmp"), "gen-a's generator runs over there"
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
    assert wait_until(lambda: not any(alive(pid) for pid in pids), timeout=15), [p for p in pids if alive(p)]
    assert not shipped_processes(tmp_path / "remote-tmp")
