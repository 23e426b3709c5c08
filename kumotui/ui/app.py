"""The kumotui app and the one factory that builds it.

The CLI, the tests and the screenshot script all call :func:`make_app`, so
what the tests see is what an operator runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import signal
from dataclasses import replace
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.widgets.data_table import RowDoesNotExist

from kumotui.bench.live import BenchSource
from kumotui.hosts import HostFacts
from kumotui.onboarding import guide
from kumotui.paths import default_state_dir
from kumotui.settings import Settings
from kumotui.tuning.privilege import Privilege
from kumotui.ui.modals.hosts import LOCAL, HostsScreen
from kumotui.ui.screens.bench import BenchScreen
from kumotui.ui.screens.guide import GuideScreen
from kumotui.ui.screens.runs import RunsScreen
from kumotui.ui.screens.tuning import TuningScreen
from kumotui.ui.widgets.param_table import ParamTable

WIDE_FOOTER = 100
"""Columns from which the tuning screen's footer has room for the keys to the other screens."""


class TuningHome(TuningScreen):
    """The tuning screen as the app's first screen.

    Its own keys fill an 80-column footer, so below :data:`WIDE_FOOTER`
    columns the keys to the benchmark and runs screens work without being
    shown there (the command palette lists them); from that width on the
    app's own, shown bindings take over.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("b", "quiet_bench", "Bench", show=False),
        Binding("h", "quiet_runs", "Runs", show=False),
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The quiet keys apply only while the footer is narrow."""
        if action in ("quiet_bench", "quiet_runs"):
            return self.app.size.width < WIDE_FOOTER
        return super().check_action(action, parameters)

    def action_quiet_bench(self) -> None:
        """The benchmark screen."""
        self.app.switch_mode("bench")

    def action_quiet_runs(self) -> None:
        """The saved runs."""
        self.app.switch_mode("runs")


class GuideMode(enum.StrEnum):
    """When the app opens the guided setup over the tuning screen."""

    ALWAYS = "always"
    """``kumotui setup``."""
    FIRST_RUN = "first-run"
    """Plain ``kumotui``: only while there is no journal, run or guide progress yet."""
    NEVER = "never"
    """Tests and screenshots that start on the tuning screen."""


class KumotuiApp(App[None]):
    """Tune a KumoMTA host's kernel, prove it with a live benchmark, compare the runs.

    The three screens are modes, each with its own stack: switching away
    from a running benchmark leaves it running (and its panes current), and
    a hint's jump to the tuning screen keeps the benchmark's state for the
    way back.
    """

    CSS_PATH = "kumotui.tcss"
    TITLE = "kumotui"
    DEFAULT_MODE: ClassVar[str] = "tuning"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        # Replaces Textual's own palette binding only to say "More" in the
        # footer: the palette lists every command, the footer only some.
        Binding(
            "ctrl+p",
            "command_palette",
            "More",
            id="command-palette",
            show=False,
            priority=True,
            tooltip="Search every command, including those not shown here",
        ),
        Binding("b", "show_bench", "Bench", id="bench", tooltip="Start or watch a live SMTP benchmark"),
        Binding("h", "show_runs", "Runs", id="runs", tooltip="Saved runs: compare two, export a report"),
        Binding("t", "show_tuning", "Tuning", id="tuning", tooltip="The kernel parameters and their fixes"),
        Binding(
            "g",
            "guide",
            "Setup",
            id="guide",
            show=False,
            tooltip="Guided setup: detect, tune, start a sink, first benchmark, summary",
        ),
        Binding("H", "hosts", "Hosts", id="hosts", show=False, tooltip="Switch host, remember hosts, compare hosts"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        host_facts: HostFacts | None = None,
        privilege: Privilege | None = None,
        bench_source: BenchSource | None = None,
        guided: GuideMode = GuideMode.NEVER,
    ) -> None:
        """Create the app; see :func:`make_app` for the arguments."""
        super().__init__()
        self.settings = settings
        self.guided = guided
        self.host_facts = host_facts
        self.privilege = privilege
        self.bench_source = bench_source
        # The tuning stack starts like Textual's default one (a blank screen, then
        # the tuning screen pushed on mount), but as a mode it can be returned to.
        self.add_mode("tuning", self.get_default_screen)
        self.add_mode("bench", lambda: BenchScreen(settings, host_facts=host_facts, source=bench_source))
        self.add_mode("runs", lambda: RunsScreen(settings))

    def on_mount(self) -> None:
        """Open the tuning screen; a hang-up or SIGTERM quits like q, stopping any run first."""
        self.push_screen(TuningHome(self.settings, host_facts=self.host_facts, privilege=self.privilege))
        state_dir = (self.settings.state_dir or default_state_dir()).absolute()
        if self.guided is GuideMode.ALWAYS or (self.guided is GuideMode.FIRST_RUN and guide.is_first_run(state_dir)):
            self.push_screen(GuideScreen(self.settings, host_facts=self.host_facts))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            # Only the main thread may install handlers; tests running elsewhere go without.
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.add_signal_handler(signum, self.exit)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Switching screens is offered from the main screens, never from inside a dialog."""
        targets = {"show_bench": "bench", "show_runs": "runs", "show_tuning": "tuning"}
        if action in targets:
            return not self.screen.is_modal and self.current_mode != targets[action]
        if action in ("guide", "hosts"):
            return not self.screen.is_modal and not isinstance(self.screen, GuideScreen)
        return True

    def action_guide(self) -> None:
        """The guided setup, over the tuning screen (it resumes where it stopped)."""
        self.switch_mode("tuning")
        self.push_screen(GuideScreen(self.settings, host_facts=self.host_facts))

    def action_hosts(self) -> None:
        """The host switcher; choosing a host reopens the tuning screen on it."""
        self.push_screen(HostsScreen(self.settings), callback=self.switch_host)

    def switch_host(self, choice: str | None) -> None:
        """Work on ``choice`` (``local`` for this machine): a fresh tuning screen reads it."""
        current = self.settings.hosts[0] if self.settings.hosts else LOCAL
        if choice is None or choice == current:
            return
        self.settings = replace(self.settings, hosts=() if choice == LOCAL else (choice,))
        self.switch_mode("tuning")
        while not isinstance(self.screen, TuningScreen):  # dialogs and the guide above it
            self.pop_screen()
        self.switch_screen(TuningHome(self.settings, privilege=self.privilege))

    def action_show_bench(self) -> None:
        """The benchmark screen (a run keeps going while other screens are shown)."""
        self.switch_mode("bench")

    def action_show_runs(self) -> None:
        """The saved runs."""
        self.switch_mode("runs")

    def action_show_tuning(self) -> None:
        """The tuning screen."""
        self.switch_mode("tuning")

    def tuning_screen(self) -> TuningScreen | None:
        """The tuning screen, wherever its stack is."""
        stack = self.get_screen_stack("tuning")
        return next((screen for screen in stack if isinstance(screen, TuningScreen)), None)

    def show_param(self, key: str) -> bool:
        """Switch to the tuning screen with ``key``'s row selected (a hint's jump).

        A filter that hides the row is cleared first. False, with a notice,
        when the profile in use has no such parameter.
        """
        screen = self.tuning_screen()
        if screen is None:
            return False
        self.switch_mode("tuning")
        table = screen.query_one(ParamTable)
        if key not in {row.key for row in table.rows_shown} and screen.filter_text:
            screen.action_close_filter()
        try:
            index = table.get_row_index(key)
        except RowDoesNotExist:
            self.notify(
                f"{key} is not in profile {screen.profile_spec}; it is still worth checking by hand.",
                title="Not in this profile",
                markup=False,
            )
            return False
        table.move_cursor(row=index)
        table.focus()
        return True


def make_app(
    settings: Settings,
    *,
    host_facts: HostFacts | None = None,
    privilege: Privilege | None = None,
    bench_source: BenchSource | None = None,
    guided: GuideMode = GuideMode.NEVER,
) -> KumotuiApp:
    """Build the app for the CLI, the tests and the screenshot script.

    Args:
        settings: paths and the profile, as the CLI parsed them.
        host_facts: fixed facts for a deterministic header; read from the host when None.
        privilege: show this privilege mode instead of detecting it (a
            deterministic header for screenshots). Writes still go through
            the core, which checks for itself; use ``Settings.read_only``
            to test the read-only flow for real.
        bench_source: where benchmark runs and host readings come from; the
            real core when None (screenshots pass a scripted one).
        guided: when to open the guided setup over the tuning screen.
    """
    return KumotuiApp(settings, host_facts=host_facts, privilege=privilege, bench_source=bench_source, guided=guided)
