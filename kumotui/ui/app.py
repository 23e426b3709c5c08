"""The kumotui app and the one factory that builds it.

The CLI, the tests and the screenshot script all call :func:`make_app`, so
what the tests see is what an operator runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import signal
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import ClassVar

from textual import work
from textual.app import App, SystemCommand, get_system_commands_provider
from textual.binding import Binding, BindingType
from textual.command import CommandPalette, Provider
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, OptionList
from textual.widgets.data_table import RowDoesNotExist
from textual.worker import Worker, WorkerState

from kumotui.bench.live import BenchSource
from kumotui.hosts import Host, HostFacts
from kumotui.hosts.connect import open_host
from kumotui.onboarding import guide
from kumotui.paths import default_state_dir
from kumotui.settings import Settings
from kumotui.tuning.privilege import Privilege
from kumotui.ui.commands import ScreenCommands
from kumotui.ui.help import HelpScreen
from kumotui.ui.modals.confirm import ConfirmScreen
from kumotui.ui.modals.hosts import LOCAL, HostsScreen
from kumotui.ui.notices import notify_error
from kumotui.ui.screens.bench import BenchScreen
from kumotui.ui.screens.guide import GuideScreen
from kumotui.ui.screens.runs import RunsScreen
from kumotui.ui.screens.tuning import TuningScreen
from kumotui.ui.widgets.list_filter import ListFilter
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
        Binding(
            "b", "quiet_bench", "Bench", id="bench-quiet", show=False, tooltip="Start or watch a live SMTP benchmark"
        ),
        Binding(
            "h", "quiet_runs", "Runs", id="runs-quiet", show=False, tooltip="Saved runs: compare two, export a report"
        ),
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
    # Every screen (the guide and the dialogs too) offers its own and the app's keys in the palette.
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {
        get_system_commands_provider,
        ScreenCommands,
    }
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
        Binding("q", "request_quit", "Quit", id="quit", tooltip="Leave kumotui (asks first while a benchmark runs)"),
        Binding(
            "question_mark", "help", "Help", id="help", show=False, tooltip="Keys and columns of this screen, in full"
        ),
        Binding(
            "slash",
            "filter_list",
            "Filter",
            id="filter-list",
            show=False,
            tooltip="Show only the rows containing some text",
        ),
        Binding("y", "copy", "Copy", id="copy", show=False, tooltip="Copy what is under the cursor to the clipboard"),
        # vi keys in every list: the focused list's own cursor actions.
        Binding("j", "cursor('down')", "Down", show=False),
        Binding("k", "cursor('up')", "Up", show=False),
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
        self.switching = ""
        """The host the switcher is connecting to, or empty."""
        self.param_after_switch: str | None = None
        """The key to select once the host being switched to is read (a hint's jump to another host)."""
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

    class HostOpened(Message):
        """The host chosen in the switcher answered: the app moves to it."""

        def __init__(self, choice: str, host: Host) -> None:
            super().__init__()
            self.choice = choice
            self.host = host

    @property
    def acting_screen(self) -> Screen[object]:
        """The screen the operator acts on: the one under the command palette while it is open.

        The palette is itself a (modal) screen; without this, asking "may I
        switch screens?" from inside it would always answer no, and the
        palette would offer no navigation at all.
        """
        below: list[Screen[object]] = [s for s in self.screen_stack if not isinstance(s, CommandPalette)]
        return below[-1] if below else self.screen

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Switching screens is offered from the main screens (and the guide), never from inside a dialog."""
        screen = self.acting_screen
        in_dialog = screen.is_modal
        targets = {"show_bench": "bench", "show_runs": "runs", "show_tuning": "tuning"}
        if action in targets:
            if in_dialog:
                return False
            # From the guide (which sits on the tuning stack) the tuning screen is one key away too.
            return self.current_mode != targets[action] or isinstance(screen, GuideScreen)
        if action == "guide":
            return not in_dialog and not isinstance(screen, GuideScreen)
        if action == "hosts":
            return not in_dialog and not self.switching
        if action == "copy":
            return copy_source(screen) is not None
        if action == "filter_list":
            return isinstance(self.focused, (DataTable, OptionList))
        return True

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's own palette commands, less its Quit: kumotui's own asks first during a run."""
        for command in super().get_system_commands(screen):
            if command.title != "Quit":
                yield command

    # -- quitting ------------------------------------------------------------

    def run_active(self) -> bool:
        """Whether a benchmark is running (or starting, or stopping) on the benchmark screen."""
        try:
            stack = self.get_screen_stack("bench")
        except KeyError:  # never opened: nothing can be running
            return False
        return any(isinstance(screen, BenchScreen) and screen.run_active() for screen in stack)

    def action_request_quit(self) -> None:
        """Quit; while a benchmark runs, ask first (either way the run is stopped cleanly and saved)."""
        if not self.run_active():
            self.exit()
            return
        if isinstance(self.screen, ConfirmScreen):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()  # the benchmark screen's unmount stops the jobs and saves the partial run

        self.push_screen(
            ConfirmScreen(
                "Quit while a benchmark runs?",
                "Quitting stops the generator and the sink (nothing keeps running) and saves the run so far.\n"
                "Enter, y or q quits · Esc or n stays.",
                id="confirm-quit",
            ),
            answered,
        )

    # -- help, copy, lists -------------------------------------------------------

    def action_help(self) -> None:
        """Explain the current screen: its keys, what its columns mean, the words it uses."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.acting_screen))

    def action_copy(self) -> None:
        """Copy what is under the cursor (OSC 52, so it works over SSH) and say what was copied."""
        source = copy_source(self.acting_screen)
        if source is None:
            return
        what, text = source
        self.copy_to_clipboard(text)
        shown = text if len(text) <= 60 and "\n" not in text else f"{len(text.splitlines())} lines"
        self.notify(f"{what}: {shown}", title="Copied", markup=False, timeout=4)

    async def action_filter_list(self) -> None:
        """``/`` in a list without a filter of its own: a filter line under it (Esc puts every row back)."""
        focused = self.focused
        if not isinstance(focused, (DataTable, OptionList)):
            return
        screen = focused.screen
        kept = [line for line in screen.query(ListFilter) if line.target is focused]
        if kept:  # a filter kept with Enter: edit it again
            kept[0].focus()
            return
        line = ListFilter(focused)
        await screen.mount(line)  # mounted before the next key arrives, so that key is typed into it
        line.focus()

    def action_cursor(self, direction: str) -> None:
        """j/k: move the focused list's cursor (tables, option lists), or scroll a text panel."""
        focused = self.focused
        if focused is None:
            return
        for name in (f"action_cursor_{direction}", f"action_scroll_{direction}"):
            action = getattr(focused, name, None)
            if callable(action):
                action()
                return

    # -- screens ---------------------------------------------------------------

    def action_guide(self) -> None:
        """The guided setup, over the tuning screen (it resumes where it stopped).

        When the guide is already open under another mode (``h`` or ``b``
        from it), going back to the tuning stack shows it again: a second
        guide would clash with the first.
        """
        self.switch_mode("tuning")
        if not any(isinstance(screen, GuideScreen) for screen in self.get_screen_stack("tuning")):
            self.push_screen(GuideScreen(self.settings, host_facts=self.host_facts))

    def action_hosts(self) -> None:
        """The host switcher; choosing a host reopens the tuning screen on it once it answers."""
        self.push_screen(HostsScreen(self.settings), callback=self.switch_host)

    def switch_host(self, choice: str | None) -> None:
        """Work on ``choice`` (``local`` for this machine), but only once it answers.

        The connection is opened first, in a worker bounded by the SSH
        deadline; until it answers the app stays on the current host, and if
        it fails the app says why and stays there, with nothing left running.
        """
        current = self.settings.hosts[0] if self.settings.hosts else LOCAL
        if choice is None or choice == current or self.switching:
            return
        self.switching = choice
        self.notify(f"Connecting to {choice}…", title="Switching host", markup=False, timeout=4)
        self.open_chosen_host(choice)

    @work(thread=True, group="switch-host", exclusive=True, exit_on_error=False)
    def open_chosen_host(self, choice: str) -> None:
        """Open ``choice`` off the event loop (SSH: until its agent answers, or the deadline)."""
        host = open_host(None if choice == LOCAL else choice, self.settings)
        self.post_message(self.HostOpened(choice, host))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A host that did not answer: say why, stay where we are."""
        if event.worker.group != "switch-host" or event.state is not WorkerState.ERROR:
            return
        failed, self.switching = self.switching, ""
        self.param_after_switch = None
        current = self.settings.hosts[0] if self.settings.hosts else LOCAL
        notify_error(self.screen, f"{event.worker.error}\nStill on {current}.", f"Cannot switch to {failed}")
        self.refresh_bindings()

    def on_kumotui_app_host_opened(self, message: HostOpened) -> None:
        """The chosen host answered: a fresh tuning screen reads it, with the profile in use kept."""
        self.switching = ""
        tuning = self.tuning_screen()
        profile = tuning.profile_spec if tuning is not None else self.settings.profile
        self.settings = replace(
            self.settings, hosts=() if message.choice == LOCAL else (message.choice,), profile=profile
        )
        self.switch_mode("tuning")
        while not isinstance(self.screen, TuningScreen):  # dialogs and the guide above it
            self.pop_screen()
        select, self.param_after_switch = self.param_after_switch, None
        self.switch_screen(TuningHome(self.settings, privilege=self.privilege, host=message.host, select=select))

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

    def show_param_on(self, host: str | None, key: str) -> None:
        """A hint's jump: ``key`` on the tuning screen of ``host`` (None: the one the app is on).

        Another host than the current one is switched to first, exactly as
        the host switcher does (it is opened in a worker; until it answers the
        app stays where it is), and its tuning screen opens with ``key`` selected.
        """
        current = self.settings.hosts[0] if self.settings.hosts else LOCAL
        if host is None or host == current:
            self.show_param(key)
            return
        if self.switching:
            return
        self.param_after_switch = key
        self.switch_host(host)

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


def copy_source(screen: Screen[object]) -> tuple[str, str] | None:
    """What ``y`` copies on ``screen``: (what it is, the text), or None where nothing applies.

    Screens offer it through a ``copy_text()`` method of their own (the
    highlighted value, the run id, the report path, the routing snippet).
    """
    offer = getattr(screen, "copy_text", None)
    if not callable(offer):
        return None
    found = offer()
    if isinstance(found, tuple) and len(found) == 2 and all(isinstance(part, str) for part in found):
        return found[0], found[1]
    return None


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
