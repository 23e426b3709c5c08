"""Hosts: switch the app to another machine, remember hosts, compare them.

The list is this machine plus the hosts remembered in the config file
(:mod:`kumotui.config`). ``n`` adds one (checked as ``[user@]host[:port]``),
``x`` forgets the highlighted one, Enter switches the app to it, and ``c``
checks every host against the profile and shows one column of statuses
per host. Connections run in thread workers; an unreachable host shows its
reason in its column instead of stopping the others.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Static
from textual.worker import Worker, WorkerState

from kumotui.errors import KumotuiError
from kumotui.hosts.connect import open_host
from kumotui.hosts.remembered import forget_host, load_config, remember_host
from kumotui.settings import Settings
from kumotui.text.escape import printable
from kumotui.tuning.findings import Finding, evaluate
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.sysctl import SysctlTree
from kumotui.tuning.values import STATUS_ICON
from kumotui.ui.keys import LIST_KEYS
from kumotui.ui.notices import notify_error
from kumotui.ui.widgets.param_table import ellipsize

COMPARE_VALUE_WIDTH = 14
"""Cells of a value in the comparison are cut to this, with an ellipsis that says so."""

LOCAL = "local"
"""The row for this machine (no ``--host``)."""


class HostsScreen(ModalScreen[str | None]):
    """Pick, add, forget and compare hosts; dismisses with the chosen host (``local`` for this machine)."""

    DEFAULT_CSS = """
    HostsScreen {
        align: center middle;
    }
    HostsScreen > Vertical {
        width: 90%;
        height: 90%;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    HostsScreen #hosts-title { height: 1; text-style: bold; }
    HostsScreen #hosts-help { height: auto; color: $text-muted; }
    HostsScreen #hosts-add { display: none; }
    HostsScreen.-adding #hosts-add { display: block; }
    HostsScreen #hosts-list { height: auto; max-height: 8; }
    HostsScreen #hosts-compare { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Switch", id="hosts-switch", tooltip="Work on the highlighted host"),
        Binding("n", "add", "Add", id="hosts-add", tooltip="Remember another host: [user@]host[:port]"),
        Binding("x", "forget", "Forget", id="hosts-forget", tooltip="Remove the highlighted host from the list"),
        Binding("c", "compare", "Compare", id="hosts-compare", tooltip="Check every host: one column per host"),
        Binding("escape", "close", "Close", id="hosts-close", tooltip="Back without switching"),
        *LIST_KEYS,
    ]

    class Compared(Message):
        """Every host was checked against the profile (or failed with a reason)."""

        def __init__(self, results: dict[str, list[Finding] | str]) -> None:
            super().__init__()
            self.results = results

    def __init__(self, settings: Settings) -> None:
        """Create the switcher for ``settings`` (its profile and sysctl root are used to compare)."""
        super().__init__(id="hosts")
        self.settings = settings
        self.hosts: list[str] = []

    def compose(self) -> ComposeResult:
        """Title, help, the host list, an add field, the comparison table."""
        with Vertical():
            yield Static("Hosts", id="hosts-title")
            yield Static(
                "Enter switches to the highlighted host · n adds · x forgets · c compares all. "
                "SSH uses your keys, agent and ~/.ssh/config; hosts are remembered in the config file.",
                id="hosts-help",
            )
            yield Input(placeholder="[user@]host[:port], Enter to add, Esc to cancel", id="hosts-add")
            yield DataTable(id="hosts-list", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="hosts-compare", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        """Fill the list from the config file."""
        self.query_one("#hosts-list", DataTable).add_columns("Host", "Where")
        self.reload()
        self.query_one("#hosts-list", DataTable).focus()

    def reload(self) -> None:
        """Rebuild the list (local first, then remembered hosts)."""
        try:
            remembered = list(load_config().hosts)
        except KumotuiError as error:
            notify_error(self, str(error), "Config file")
            remembered = []
        current = self.settings.hosts[0] if self.settings.hosts else LOCAL
        self.hosts = [LOCAL, *remembered]
        table = self.query_one("#hosts-list", DataTable)
        table.clear()
        for host in self.hosts:
            where = "this machine" if host == LOCAL else "over SSH"
            table.add_row(host + ("  (current)" if host == current else ""), where, key=host)

    @property
    def highlighted(self) -> str | None:
        """The host under the cursor."""
        table = self.query_one("#hosts-list", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value  # rows may be filtered (/)
        return str(key) if key in self.hosts else None

    # -- actions ---------------------------------------------------------

    def action_choose(self) -> None:
        """Switch the app to the highlighted host."""
        if self.has_class("-adding"):
            return
        self.dismiss(self.highlighted)

    def action_close(self) -> None:
        """Cancel adding, or leave without switching."""
        if self.has_class("-adding"):
            self.set_class(False, "-adding")
            self.query_one("#hosts-list", DataTable).focus()
            return
        self.dismiss(None)

    def action_add(self) -> None:
        """Show the field for a new host."""
        self.set_class(True, "-adding")
        field = self.query_one("#hosts-add", Input)
        field.value = ""
        field.focus()

    @on(DataTable.RowSelected, "#hosts-list")
    def row_chosen(self, event: DataTable.RowSelected) -> None:
        """Enter (or a click) on a host switches to it."""
        event.stop()
        self.action_choose()

    @on(Input.Submitted, "#hosts-add")
    def add_host(self, event: Input.Submitted) -> None:
        """Remember the typed host (validated by the core)."""
        try:
            remember_host(event.value)
        except KumotuiError as error:
            notify_error(self, str(error), "Not added")
            return
        self.set_class(False, "-adding")
        self.reload()
        self.query_one("#hosts-list", DataTable).focus()

    def action_forget(self) -> None:
        """Forget the highlighted remembered host."""
        host = self.highlighted
        if host is None or host == LOCAL:
            self.notify("This machine is always listed.", severity="warning")
            return
        forget_host(host)
        self.reload()

    def action_compare(self) -> None:
        """Check every host against the profile, in a worker."""
        table = self.query_one("#hosts-compare", DataTable)
        table.clear(columns=True)
        table.add_column("Checking every host…")
        self.compare(list(self.hosts))

    # -- comparing ---------------------------------------------------------

    @work(thread=True, group="hosts-compare", exclusive=True, exit_on_error=False)
    def compare(self, hosts: list[str]) -> None:
        """One connection per host in turn; a failure is that host's result, not the end."""
        profile = load_profile(self.settings.profile)
        results: dict[str, list[Finding] | str] = {}
        for name in hosts:
            try:
                host = open_host(None if name == LOCAL else name, replace(self.settings, hosts=()))
            except KumotuiError as error:
                results[name] = str(error)
                continue
            try:
                results[name] = evaluate(profile, SysctlTree(self.settings.sysctl_root, host))
            except KumotuiError as error:
                results[name] = str(error)
            finally:
                host.close()
        self.post_message(self.Compared(results))

    def on_hosts_screen_compared(self, message: Compared) -> None:
        """Rows are parameters, columns are hosts: icon, status and the current value."""
        table = self.query_one("#hosts-compare", DataTable)
        table.clear(columns=True)
        names = list(message.results)
        table.add_columns("Parameter", *names)
        keys: list[str] = []
        for result in message.results.values():
            if not isinstance(result, str):
                keys.extend(f.key for f in result if f.key not in keys)
        for key in keys:
            cells = []
            for name in names:
                result = message.results[name]
                if isinstance(result, str):
                    cells.append("unreachable")
                    continue
                finding = next((f for f in result if f.key == key), None)
                if finding is None:
                    cells.append("–")
                else:
                    current = ellipsize(
                        printable(" ".join((finding.current or "").split()), keep=""), COMPARE_VALUE_WIDTH
                    )
                    cells.append(f"{STATUS_ICON[finding.status]} {finding.status} {current}".rstrip())
            table.add_row(key, *cells, key=key)
        for name, result in message.results.items():
            if isinstance(result, str):
                notify_error(self, result, f"{name}: not checked", timeout=10)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed comparison (a bad profile) becomes a notice."""
        if event.state is WorkerState.ERROR:
            notify_error(self, event.worker.error, "Compare failed")
