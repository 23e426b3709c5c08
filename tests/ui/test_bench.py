"""The benchmark and runs screens driven like an operator would.

The runs here are real: the built-in sink and generator as child processes
on loopback, a few thousand small messages, driven through the screen's
form and keys. Assertions read what the screen shows and check it against
the run record, the jobs' own summaries and, for one run, a small SMTP
server of the test's own that counts what it received. Hints and the runs
screen use the demo's scripted run and fixed records.
"""

from __future__ import annotations

import http.server
import socketserver
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Log, ProgressBar, Static

from kumotui.bench.hints import Hint
from kumotui.bench.live import BenchSource
from kumotui.bench.records import list_runs
from kumotui.errors import KumotuiError
from kumotui.settings import Settings
from kumotui.ui.app import KumotuiApp, make_app
from kumotui.ui.commands import ScreenCommands
from kumotui.ui.modals.confirm import ConfirmScreen
from kumotui.ui.modals.export import ExportScreen
from kumotui.ui.screens.bench import BenchScreen
from kumotui.ui.screens.runs import RunsScreen
from kumotui.ui.screens.tuning import TuningScreen
from kumotui.ui.widgets.bench_panes import GeneratorPane, HintList, Readout
from kumotui.ui.widgets.param_table import ParamTable
from tests.support.demo import DEMO_FACTS, ScriptedBenchmark, demo_runs, demo_source, make_demo_host
from tests.support.pilot import started
from tests.support.processes import alive, free_port, job_pids
from tests.support.relay import Relay
from tests.support.shots import show_readings
from tests.support.waits import settle, wait_for


def demo_app(settings: Settings, source: BenchSource | None = None) -> KumotuiApp:
    """The app as the CLI builds it, with the demo host's fixed facts; real runs unless ``source`` scripts them."""
    return make_app(settings, host_facts=DEMO_FACTS, bench_source=source)


async def open_bench(app: KumotuiApp, pilot: Pilot[Any], **fields: str) -> BenchScreen:
    """Press b, fill the form's text fields."""
    await pilot.press("b")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, BenchScreen)
    for name, value in fields.items():
        screen.query_one(f"#{name}", Input).value = value
    return screen


def text(screen: BenchScreen, selector: str) -> str:
    """What a line of the screen shows now."""
    return str(screen.query_one(selector, Static).render())


async def finish(pilot: Pilot[Any], screen: BenchScreen, timeout: float = 30.0) -> None:
    """Wait for the run to end and its summary to show."""
    await wait_for(pilot, lambda: screen.state in ("done", "failed"), timeout)
    await settle(pilot)
    assert screen.state == "done", screen.error


class CountingSmtp(socketserver.ThreadingTCPServer):
    """A minimal SMTP server that counts the messages it accepted: an independent witness.

    It offers no PIPELINING, so every command is answered in turn.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.count = 0
        self.lock = threading.Lock()


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: CountingSmtp

    def handle(self) -> None:
        self.wfile.write(b"220 witness ESMTP\r\n")
        in_data = False
        for raw in self.rfile:
            if in_data:
                if raw == b".\r\n":
                    in_data = False
                    with self.server.lock:
                        self.server.count += 1
                    self.wfile.write(b"250 2.0.0 ok\r\n")
                continue
            verb = raw[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-witness\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                in_data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
@pytest.mark.processes  # the built-in sink and generator, for real
async def test_a_real_run_shows_its_numbers_and_lands_in_the_history(demo_dir: Path, size: tuple[int, int]) -> None:
    settings = make_demo_host(demo_dir)

    app = demo_app(settings)
    async with started(app, size) as pilot:
        screen = await open_bench(app, pilot, messages="3000", body_size="200", concurrency="20")
        await pilot.press("s")
        await finish(pilot, screen)
        outcome = screen.outcome
        assert outcome is not None and outcome.generator is not None and outcome.sink is not None
        gen, sink = outcome.generator, outcome.sink
        assert gen.count == 3000 and gen.failed == 0 and sink.count == 3000
        # What the panes show is what the jobs counted.
        counts = text(screen, "#gen-counts")
        assert "sent 3,000" in counts and "failed 0" in counts
        assert "received 3,000" in text(screen, "#sink-line")
        assert screen.figures is not None and screen.figures.progress == 1.0
        summary = text(screen, "#bench-summary")
        assert f"Run {outcome.record.id}: too short" in summary and "no MTA in the path" in summary
        assert "3,000 sent · 0 failed" in summary and "sink received 3,000" in summary
        assert "Whole run: 3,000 messages in" in summary and "no steady state" in summary
        assert "Not comparable with KumoMTA's published figures" in summary and "%" not in summary
        assert "msgs/s now" in text(screen, "#gen-rates") and "whole run" in text(screen, "#gen-rates")
        assert "refused: at MAIL 0 · rcpts 0 · at data 0 · aborted 0 · timeouts 0" in text(screen, "#sink-refused")
        # The key numbers are on screen without scrolling, with the form shown again.
        pane = screen.query_one(GeneratorPane)
        assert pane.region.y + pane.region.height <= size[1] - 1
        # The record is saved, and the runs screen lists it.
        (saved,) = list_runs(demo_dir / "var/lib/kumotui")
        assert saved.id == outcome.record.id and saved.generator is not None and saved.generator.count == 3000
        assert saved.parameters["net.ipv4.ip_local_port_range"] == "32768 60999"
        await pilot.press("h")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen) and list(app.screen.runs) == [saved.id]
        assert "3,000" in str(app.screen.query_one("#runs-text", Static).render())


@pytest.mark.processes  # the built-in sink and generator, for real
async def test_shown_counts_agree_with_an_independent_smtp_server(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    witness = CountingSmtp()
    threading.Thread(target=witness.serve_forever, daemon=True).start()

    app = demo_app(settings)
    try:
        async with started(app) as pilot:
            screen = await open_bench(app, pilot, messages="2000", body_size="300", concurrency="10")
            screen.query_one("#sink").value = "target"  # type: ignore[attr-defined]
            await pilot.pause()
            screen.query_one("#target", Input).value = f"127.0.0.1:{witness.server_address[1]}"
            await pilot.press("enter")  # Enter in a field starts the run too
            await finish(pilot, screen)
            assert witness.count == 2000
            assert f"sent {witness.count:,}" in text(screen, "#gen-counts")
            assert "counts for itself" in text(screen, "#sink-line")
            assert screen.outcome is not None and screen.outcome.sink is None
    finally:
        witness.shutdown()
        witness.server_close()


async def start_long_run(app: KumotuiApp, pilot: Pilot[Any]) -> tuple[BenchScreen, list[int]]:
    """A steady rate-capped run, running, with both jobs' PIDs."""
    screen = await open_bench(app, pilot, messages="", duration="60", rate="300", concurrency="5")
    await pilot.press("s")
    await wait_for(pilot, lambda: screen.figures is not None and screen.figures.sent > 0, 20)
    assert screen.bench is not None
    pids = job_pids(screen.bench, descendants=True)  # the engines and their workers
    assert len(pids) >= 2 and all(alive(pid) for pid in pids)
    return screen, pids


@pytest.mark.processes  # the built-in sink and generator, for real
async def test_quitting_mid_run_stops_every_job_and_keeps_the_partial_run(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    spawned: list[int] = []

    app = demo_app(settings)
    async with started(app) as pilot:
        screen, pids = await start_long_run(app, pilot)
        spawned.extend(pids)
        assert screen.check_action("start", ()) is False and screen.check_action("stop", ()) is True
        await pilot.press("q")  # asks first: the run goes on while the question is open
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert all(alive(pid) for pid in pids) and app.is_running
        await pilot.press("escape")  # no: still running
        await wait_for(pilot, lambda: app.screen is screen)
        assert all(alive(pid) for pid in pids) and screen.run_active()
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
    assert spawned and not [pid for pid in spawned if alive(pid)]
    (saved,) = list_runs(demo_dir / "var/lib/kumotui")
    assert saved.generator is not None and 0 < saved.generator.count < 18000


@pytest.mark.processes  # the built-in sink and generator, for real
async def test_a_crash_mid_run_stops_every_job(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_demo_host(demo_dir)
    spawned: list[int] = []
    crashed: list[BenchScreen.BenchSampled] = []

    def broken(self: BenchScreen, message: BenchScreen.BenchSampled) -> None:
        crashed.append(message)
        raise RuntimeError("a bug in a handler")

    app = demo_app(settings)
    with pytest.raises(RuntimeError, match="a bug in a handler"):
        async with started(app) as pilot:
            _screen, pids = await start_long_run(app, pilot)
            spawned.extend(pids)
            monkeypatch.setattr(BenchScreen, "on_bench_screen_bench_sampled", broken)
            await wait_for(pilot, lambda: crashed)  # the next reading reaches the broken handler
    assert crashed and spawned and not [pid for pid in spawned if alive(pid)]


@pytest.mark.processes  # the built-in sink and generator, for real
async def test_s_stops_a_run_early_and_ctrl_c_does_too(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)

    app = demo_app(settings)
    async with started(app) as pilot:
        for key in ("s", "ctrl+c"):
            screen, pids = await start_long_run(app, pilot)
            await pilot.press(key)
            await finish(pilot, screen)
            assert screen.outcome is not None and screen.outcome.interrupted
            assert "stopped early" in text(screen, "#bench-summary")
            assert not [pid for pid in pids if alive(pid)]
            await pilot.press("t")
            await settle(pilot)
        assert len(list_runs(demo_dir / "var/lib/kumotui")) == 2


async def test_the_form_is_checked_by_the_core_before_anything_starts(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)

    app = demo_app(settings)
    async with started(app) as pilot:
        screen = await open_bench(app, pilot, messages="lots")
        await pilot.press("s")
        await pilot.pause()
        assert screen.state == "idle" and screen.bench is None
        assert "Messages 'lots': expected a whole number" in text(screen, "#form-message")
        assert screen.focused is screen.query_one("#messages")
        screen.query_one("#messages", Input).value = "100"
        screen.query_one("#body_size", Input).value = "12XB"
        await pilot.press("enter")
        await pilot.pause()
        assert "Body size" in text(screen, "#form-message") and screen.focused is screen.query_one("#body_size")
        screen.query_one("#body_size", Input).value = "1KB"
        screen.query_one("#concurrency", Input).value = "0"
        await pilot.press("enter")
        await pilot.pause()
        assert "Concurrency must be within 1-100000" in text(screen, "#form-message")
        assert screen.state == "idle"


async def test_hints_jump_to_the_parameter_on_the_tuning_screen(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)

    app = demo_app(settings, source=demo_source(paced=True))
    async with started(app) as pilot:
        screen = await open_bench(app, pilot, messages="60000")
        await pilot.press("s")
        hints = screen.query_one(HintList)
        # Reading by reading, as a real run shows them: the CPU note comes first, TIME_WAIT later.
        await show_readings(pilot, screen, until=lambda: "time-wait" in hints.hints)
        assert hints.has_focus and list(hints.hints) == ["time-wait", "generator-pinned"]  # warnings first
        assert hints.current is not None and hints.current.id == "generator-pinned"  # the highlight stayed put
        await pilot.press("up")
        assert hints.current is not None and hints.current.id == "time-wait"
        assert next(b.binding.description for b in screen.active_bindings.values() if b.binding.show) == "Tune"
        await pilot.press("enter")  # the run waits for the next reading, so no waiting for workers here
        await pilot.pause()
        tuning = app.screen
        assert isinstance(tuning, TuningScreen)
        row = tuning.query_one(ParamTable).highlighted
        assert row is not None and row.key == "net.ipv4.ip_local_port_range"
        # The run is still going; b goes back to it.
        await pilot.press("b")
        await pilot.pause()
        assert app.screen is screen and screen.state == "running"
        # A hint about the run's own flags points into the form once the run is over.
        await pilot.press("s")
        await finish(pilot, screen)
        hints.highlighted = list(hints.hints).index("generator-pinned")
        await pilot.press("enter")
        await pilot.pause()
        assert screen.focused is screen.query_one("#workers")


async def test_the_log_and_the_palette(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)

    app = demo_app(settings, source=demo_source())
    async with started(app) as pilot:
        screen = await open_bench(app, pilot, messages="60000")
        titles = [title for title, _, _ in ScreenCommands(screen)._commands()]
        assert titles[:3] == ["Start", "Edit", "Log"] and "Stop" not in titles
        assert {"Runs", "Tuning"} <= set(titles) and "Bench" not in titles
        await pilot.press("escape", "s")
        await finish(pilot, screen)
        log = screen.query_one(Log)
        assert not log.display
        await pilot.press("l")
        await pilot.pause()
        assert (
            log.display
            and log.line_count > 0
            and " sink progress received " in log.lines[-1]
            and "{" not in log.lines[-1]
        )


async def test_runs_screen_compares_two_and_exports_the_report(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    assert settings.state_dir is not None
    before, after = demo_runs(demo_dir / settings.state_dir)

    app = demo_app(settings)
    async with started(app) as pilot:
        await pilot.press("h")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        assert list(screen.runs) == [after.id, before.id]  # newest first
        assert screen.check_action("clear_picks", ()) is False
        await pilot.press("space", "down", "space")
        await settle(pilot)
        assert screen.compared == (before, after)
        shown = str(screen.query_one("#runs-text", Static).render())
        assert "Window rate (msgs/s)" in shown and "+9.0% (better)" in shown
        assert "Setup that differed" in shown and "none: like for like" in shown
        assert "net.ipv4.ip_local_port_range  32768 60999 → 5000 63001" in shown
        assert str(screen.query_one("#runs-table").get_cell(before.id, "started")).startswith("A ")  # type: ignore[attr-defined]
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ExportScreen)
        app.screen.query_one(Input).value = str(demo_dir / "report.md")
        app.screen.query_one(Input).focus()  # past the format list (Markdown first)
        await pilot.press("enter")
        await settle(pilot)
        report = (demo_dir / "report.md").read_text()
        assert report.startswith(f"# kumotui benchmark comparison: {before.id} (before tuning)")
        assert any(n.title == "Report exported" for n in app._notifications)
        await pilot.press("x")
        await pilot.pause()
        detail = str(screen.query_one("#runs-text", Static).render())
        assert not screen.picks and "Not comparable with KumoMTA's published figures: no MTA in the path" in detail


async def test_the_status_line_names_the_run(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)

    app = demo_app(settings, source=demo_source())
    async with started(app) as pilot:
        screen = await open_bench(app, pilot, messages="60000")
        assert "ready" in screen.query_one("#bench-status", Readout).shown
        await pilot.press("s")
        await finish(pilot, screen)
        status = str(screen.query_one("#bench-status", Readout).render())
        assert (
            status.startswith("✔ finished · on mta-01 (this machine) · 0:1")
            and "builtin → 127.0.0.1:2026 · 60,000 msgs · 1 KB · 50 conns" in status
        )


class FailingBenchmark(ScriptedBenchmark):
    """A run whose sink cannot start (its port is taken, say)."""

    def start(self) -> None:
        raise KumotuiError("the sink could not listen on 127.0.0.1:2026: address already in use")


async def test_a_failed_start_clears_the_last_runs_numbers(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)

    app = demo_app(settings, source=demo_source())
    async with started(app) as pilot:
        screen = await open_bench(app, pilot, messages="60000", label="first")
        await pilot.press("s")
        await finish(pilot, screen)
        assert "sent 60,000" in text(screen, "#gen-counts") and screen.outcome is not None
        assert screen.outcome.record.label == "first"
        screen.source = replace(screen.source, benchmark=lambda plan, placed: FailingBenchmark(plan))
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.state == "failed")
        await settle(pilot)
        assert "address already in use" in text(screen, "#form-message")
        assert text(screen, "#gen-counts") == "not started" and text(screen, "#gen-eta") == ""
        assert text(screen, "#gen-rates") == "" and text(screen, "#sink-line") == "not started"
        assert text(screen, "#bench-summary") == ""
        assert screen.query_one("#gen-progress", ProgressBar).progress == 0


async def test_a_stopped_run_shows_no_eta_and_the_sink_hint_opens_its_field(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)

    app = demo_app(settings, source=demo_source(hold_at=6))
    async with started(app) as pilot:
        screen = await open_bench(app, pilot, messages="60000")
        await pilot.press("s")
        await wait_for(pilot, lambda: "ETA" in text(screen, "#gen-eta"))
        await pilot.press("s")
        await finish(pilot, screen)
        assert "ETA" not in text(screen, "#gen-eta")
        assert "stopped early, partial counts" in text(screen, "#bench-summary")
        screen.jump_to(Hint("sink-slow", "The sink is slower than the generator", "", "--sink-workers", "info"))
        await pilot.pause()
        assert screen.focused is screen.query_one("#sink_workers")


async def test_form_label_and_sink_workers_are_checked(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)

    app = demo_app(settings, source=demo_source())
    async with started(app) as pilot:
        screen = await open_bench(app, pilot, label="bad\x1b[2J")
        await pilot.press("s")
        await pilot.pause()
        assert screen.state == "idle" and "Label" in text(screen, "#form-message")
        assert screen.focused is screen.query_one("#label")
        screen.query_one("#label", Input).value = "ok"
        screen.query_one("#sink_workers", Input).value = "0"
        await pilot.press("enter")  # the cursor is in a text field, where s types
        await pilot.pause()
        assert "Sink workers" in text(screen, "#form-message") and screen.focused is screen.query_one("#sink_workers")


@pytest.mark.processes  # kumotui's sink and generator for real, a stand-in MTA between them
async def test_a_run_through_an_mta_shows_the_path_and_accounts_for_every_message(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    port = free_port()

    app = demo_app(settings)
    with Relay(("127.0.0.1", port)) as relay:
        async with started(app, (120, 36)) as pilot:
            screen = await open_bench(
                app, pilot, messages="2000", through=relay.address, sink_listen=f"127.0.0.1:{port}", concurrency="10"
            )
            await pilot.press("escape", "s")
            await finish(pilot, screen)
            assert "injected 2,000 → in the MTA 0 → delivered 2,000" in text(screen, "#sink-path")
            assert "end to end p50" in text(screen, "#sink-path")
            summary = text(screen, "#bench-summary")
            assert f"MTA under test {relay.address}" in summary
            assert "Delivery: injected 2,000 · delivered 2,000 · lost 0 · duplicated 0" in summary
            assert "Probe: 3 of 3 routing probes reached the sink" in summary
            assert relay.accepted == 2003


async def test_a_misrouted_mta_stops_the_app_run_before_any_load(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    port = free_port()

    app = demo_app(settings)
    with Relay(None) as relay:  # accepts, delivers nowhere
        async with started(app) as pilot:
            screen = await open_bench(app, pilot, through=relay.address, sink_listen=f"127.0.0.1:{port}")
            screen.query_one("#messages", Input).value = "100"
            await pilot.press("escape", "s")
            await wait_for(pilot, lambda: screen.state == "failed", timeout=60)
            assert "0 reached the sink" in screen.error and "relayhost" in screen.error
            assert relay.accepted == 3 and "not started" in text(screen, "#gen-counts")


class _Metrics(http.server.BaseHTTPRequestHandler):
    """A relaying kumod's /metrics, as KumoMTA documents the series (queue figures that move)."""

    calls = 0

    def do_GET(self) -> None:
        type(self).calls += 1
        body = (
            'connection_count{service="esmtp_listener"} 10\n'
            'connection_count{service="smtp_client:sink"} 2\n'
            f'scheduled_count{{queue="sink"}} {type(self).calls}\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.mark.processes
async def test_the_mta_pane_reads_the_mtas_own_metrics(demo_dir: Path) -> None:
    settings = make_demo_host(demo_dir)
    port = free_port()
    metrics = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    threading.Thread(target=metrics.serve_forever, daemon=True).start()
    app = demo_app(settings)
    try:
        with Relay(("127.0.0.1", port)) as relay:
            async with started(app, (120, 36)) as pilot:
                screen = await open_bench(
                    app,
                    pilot,
                    messages="500",
                    through=relay.address,
                    sink_listen=f"127.0.0.1:{port}",
                    mta_metrics=f"127.0.0.1:{metrics.server_address[1]}",
                )
                await pilot.press("escape", "s")
                await finish(pilot, screen)
                line = text(screen, "#mta-line")
                assert line.startswith("kumomta: conns in 10 · out 2 · queued ") and "(scheduled " in line
    finally:
        metrics.shutdown()
        metrics.server_close()


@pytest.mark.processes  # the built-in sink answering from a responses file, for real
async def test_the_sink_pane_shows_the_pushback_per_domain_and_the_form_checks_the_file(
    demo_dir: Path, tmp_path: Path
) -> None:
    settings = make_demo_host(demo_dir)
    responses = tmp_path / "r.toml"
    responses.write_text('[domain."example.com"]\ndefer = 30\nbounce = 20\n')

    app = demo_app(settings)
    async with started(app) as pilot:
        screen = await open_bench(app, pilot, messages="2000", responses=str(tmp_path / "missing.toml"))
        await pilot.press("escape", "s")
        await pilot.pause()
        assert screen.state == "idle" and "Responses" in text(screen, "#form-message")
        assert screen.focused is screen.query_one("#responses")
        screen.query_one("#responses", Input).value = str(responses)
        await pilot.press("escape", "s")
        await finish(pilot, screen)
        (run,) = list_runs(settings.state_dir)
        (row,) = run.pushback
        assert row.domain == "example.com" and row.deferred > 0 and row.bounced > 0
        line = text(screen, "#sink-pushback")
        assert line == f"deferred/bounced: example.com {row.deferred:,}/{row.bounced:,}", line
