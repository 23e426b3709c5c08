"""The tuning screen: what is off and why, edit, include/exclude, apply, roll back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Container
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static
from textual.widgets.data_table import RowDoesNotExist
from textual.worker import Worker, WorkerState, get_current_worker

from kumotui.bench.report import reports_dir
from kumotui.errors import KumotuiError
from kumotui.hosts import Host, HostFacts
from kumotui.hosts.connect import open_host
from kumotui.paths import default_state_dir
from kumotui.settings import Settings
from kumotui.tuning import export
from kumotui.tuning.catalog import info, mode_change
from kumotui.tuning.dropin import BootView, boot_view
from kumotui.tuning.export import Format
from kumotui.tuning.findings import Finding, evaluate, summary
from kumotui.tuning.plan import PlanRow, plan_rows
from kumotui.tuning.privilege import Privilege, detect_privilege
from kumotui.tuning.profiles import Profile, load_profile
from kumotui.tuning.rollback import interruption_notices
from kumotui.tuning.target import Target
from kumotui.tuning.values import normalize, takes_away
from kumotui.ui.commands import ScreenCommands
from kumotui.ui.modals.apply import ApplyScreen
from kumotui.ui.modals.edit import EditRequest, EditScreen
from kumotui.ui.modals.export import ExportChoice, ExportScreen
from kumotui.ui.modals.profile_picker import ProfileScreen
from kumotui.ui.modals.rollback import RollbackScreen
from kumotui.ui.notices import notify_error
from kumotui.ui.widgets.host_header import HostHeader
from kumotui.ui.widgets.param_details import Explanation, ParamDetails
from kumotui.ui.widgets.param_table import ParamTable

WORKER_TITLES = {
    "read": "Reading kernel parameters failed",
    "host": "Opening the host failed",
    "journal": "Reading the journal failed",
    "export": "Exporting the plan failed",
}
"""How a failed worker group is named in the error notice."""

WRITABLE = (Privilege.ROOT, Privilege.DIRECT, Privilege.SUDO)
"""Privilege modes in which apply and rollback write."""


class TuningScreen(Screen[None]):
    """A profile's parameters against this host, and the keys to fix them.

    Reads run in thread workers that answer with :class:`FindingsRead` and
    :class:`HostRead`, so the screen never waits on ``/proc/sys``, ``sudo``
    or the journal. Edits and exclusions are the operator's intent and live
    here; the core turns them into a validated plan when apply is pressed.
    """

    # Textual declares this one as an instance variable for mypy, so it cannot be a ClassVar here.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ScreenCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="filter", tooltip="Show only parameters whose name contains some text"),
        Binding(
            "e", "edit", "Edit", id="edit", tooltip="Type your own value for the highlighted parameter (also Enter)"
        ),
        Binding("space", "exclude", "Exclude", id="exclude", tooltip="Leave the highlighted change out of the plan"),
        Binding("space", "include", "Include", id="include", tooltip="Put the highlighted change back into the plan"),
        Binding("a", "apply", "Apply", id="apply", tooltip="Preview the pending changes, then write them"),
        Binding(
            "a",
            "show_commands",
            "Commands",
            id="show-commands",
            tooltip="Read-only: show the commands and file content that apply the plan by hand",
        ),
        Binding("r", "rollback", "Rollback", id="rollback", tooltip="Restore the values from before an earlier apply"),
        Binding("p", "switch_profile", "Profile", id="profile", tooltip="Judge this host by another profile"),
        Binding(
            "x",
            "export",
            "Export",
            id="export",
            show=False,
            tooltip="Write the plan as a sysctl.d drop-in, a TuneD profile or an Ansible playbook",
        ),
        Binding("R", "reread", "Re-read", id="reread", show=False, tooltip="Read every value again from the kernel"),
        Binding(
            "d",
            "toggle_details",
            "Details",
            id="details",
            show=False,
            tooltip="Show or hide the panel explaining the highlighted parameter",
        ),
        Binding(
            "escape", "close_filter", "Clear filter", id="clear-filter", show=False, tooltip="Show every parameter"
        ),
        Binding("escape", "close_details", "Back", id="details-back", tooltip="Back from the details to the table"),
        Binding("q", "app.request_quit", "Quit", id="quit", tooltip="Leave kumotui"),
    ]

    class FindingsRead(Message):
        """A profile was (re)read against the host, with who sets each key at boot."""

        def __init__(self, profile: Profile, findings: list[Finding], boot: BootView) -> None:
            super().__init__()
            self.profile = profile
            self.findings = findings
            self.boot = boot

    class JournalChecked(Message):
        """What the journal says needs attention: interrupted applies or rollbacks, unreadable entries."""

        def __init__(self, notices: list[str]) -> None:
            super().__init__()
            self.notices = notices

    class HostRead(Message):
        """The host's facts and what kumotui may do there are known."""

        def __init__(self, target: Target, facts: HostFacts, privilege: Privilege) -> None:
            super().__init__()
            self.target = target
            self.facts = facts
            self.privilege = privilege

    class PlanExported(Message):
        """The plan was written to a file in a format for other tools."""

        def __init__(self, path: Path, keys: int, fmt: Format) -> None:
            super().__init__()
            self.path = path
            self.keys = keys
            self.fmt = fmt

    busy: reactive[str] = reactive("")
    """What is running now (``reading``), or empty when idle."""
    filter_text: reactive[str] = reactive("")
    """Only keys containing this text are shown."""
    show_details: reactive[bool] = reactive(True)
    """Whether the details panel is shown."""

    def __init__(
        self,
        settings: Settings,
        *,
        host_facts: HostFacts | None = None,
        privilege: Privilege | None = None,
        host: Host | None = None,
        select: str | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create the screen for ``settings``.

        Args:
            settings: paths and the profile to judge by.
            host_facts: fixed facts (tests, screenshots); read from the host when None.
            privilege: a fixed privilege mode (tests, screenshots); detected when None.
            host: a connection already open (the host switcher's); opened here when None.
            select: the key whose row the cursor goes to once the values are read (a hint's jump).
            name: Textual's widget name.
            id: Textual's widget id.
            classes: Textual's CSS classes.
        """
        super().__init__(name=name, id=id, classes=classes)
        self.settings = settings
        self.host: Host | None = host
        """The open connection (local or SSH), closed when the screen goes away."""
        self.select_on_read = select
        """The key to select when the first values arrive, if any."""
        self.target: Target | None = None
        """The host's tree, drop-in and journal; set by the first ``read_host``."""
        self.fixed_facts = host_facts
        self.fixed_privilege = privilege
        self.privilege: Privilege | None = privilege
        self.profile_spec = settings.profile
        self.profile: Profile | None = None
        self.findings: list[Finding] = []
        self.edits: dict[str, str] = {}
        """Values the operator typed, by key (validated by the core on entry)."""
        self.excluded: set[str] = set()
        """Keys the operator took out of the plan."""
        self.boot: BootView | None = None
        """Who sets each key at boot (the files in sysctl.d order), read with the findings."""
        self.notices: list[str] = []
        """Interrupted applies and the like, from the journal (see :class:`JournalChecked`)."""

    def compose(self) -> ComposeResult:
        """Header, summary, filter, table beside (or above) details, footer."""
        yield HostHeader(id="host-header")
        yield Static("Reading kernel parameters…", id="plan-summary")
        yield Input(placeholder="Filter by name · Enter keeps it · Esc clears it", id="filter", compact=True)
        with Container(id="body"):
            yield ParamTable(id="params")
            yield ParamDetails(id="details")
        yield Footer()

    def on_mount(self) -> None:
        """Start reading; the table fills in when the values arrive."""
        header = self.query_one(HostHeader)
        header.profile_name = self.profile_spec
        header.mode = str(self.privilege or "")
        if self.fixed_facts is not None:
            header.facts = self.fixed_facts
        self.read_host()
        self.query_one(ParamTable).focus()

    def on_unmount(self) -> None:
        """Close the SSH connection, if any."""
        if self.host is not None:
            self.host.close()

    # -- workers ---------------------------------------------------------

    @work(thread=True, group="host", exclusive=True, exit_on_error=False)
    def read_host(self) -> None:
        """Open the host (SSH for ``--host``), read its facts, find out how kumotui may write.

        Everything here may block: the SSH handshake, ``sudo -n true``.
        """
        hosts = self.settings.hosts
        if len(hosts) > 1:
            raise KumotuiError(
                f"the app tunes one host at a time, got {len(hosts)} --host options; "
                "use `kumotui check` or `kumotui apply` for several"
            )
        host = self.host or open_host(hosts[0] if hosts else None, self.settings)
        self.host = host
        target = Target.from_settings(self.settings, host)
        facts = self.fixed_facts or target.tree.facts()
        privilege = self.fixed_privilege or detect_privilege(target)
        if not get_current_worker().is_cancelled:
            self.post_message(self.HostRead(target, facts, privilege))

    @work(thread=True, group="journal", exclusive=True, exit_on_error=False)
    def check_journal(self, target: Target) -> None:
        """Look for interrupted applies (a kill, a lost connection) and say how to undo them."""
        try:
            notices = interruption_notices(target)
        except KumotuiError as error:
            notices = [f"cannot read the journal: {error}"]
        if not get_current_worker().is_cancelled:
            self.post_message(self.JournalChecked(notices))

    @work(thread=True, group="read", exclusive=True, exit_on_error=False)
    def read_findings(self, target: Target, spec: str) -> None:
        """Load ``spec`` and judge every parameter against the host."""
        profile = load_profile(spec)
        findings = evaluate(profile, target.tree)
        boot = boot_view(target.host, target.dropin, [f.key for f in findings], target.system_root)
        if not get_current_worker().is_cancelled:
            self.post_message(self.FindingsRead(profile, findings, boot))

    def export_plan(
        self, target: Target, profile: Profile, choice: ExportChoice, sets: dict[str, str], excluded: set[str]
    ) -> None:
        """Decide the export from the host as it is now (the plan apply would carry out) and write it.

        Called in the export dialog's worker thread: a failure stays in the dialog, with the reason.
        """
        fmt = Format(choice.format or Format.SYSCTL_D)
        made = export.for_host(profile, target, sets=sets, excluded=excluded)
        try:
            written = export.save(export.render(made, fmt), fmt, choice.path)
        except OSError as error:
            raise KumotuiError(f"cannot write {choice.path}: {error.strerror}") from None
        self.post_message(self.PlanExported(written, len(made.values), fmt))

    def reread(self, spec: str | None = None) -> None:
        """Judge the host again, by ``spec`` or the current profile."""
        if self.target is not None:
            self.read_findings(self.target, spec or self.profile_spec)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place where every failed read becomes a clear notice."""
        worker = event.worker
        if worker.group == "read":
            self.busy = "reading" if event.state is WorkerState.RUNNING else ""
        if event.state is WorkerState.ERROR:
            title = WORKER_TITLES.get(worker.group, "Something failed")
            notify_error(self, worker.error, title)

    # -- results ---------------------------------------------------------

    def on_tuning_screen_host_read(self, message: HostRead) -> None:
        """Show the host line and offer the keys the privilege mode allows."""
        first = self.target is None
        self.target = message.target
        header = self.query_one(HostHeader)
        header.facts = message.facts
        self.privilege = message.privilege
        header.mode = str(message.privilege)
        if first:
            self.reread()
        self.check_journal(message.target)
        self.update_summary()
        self.refresh_bindings()

    def on_tuning_screen_plan_exported(self, message: PlanExported) -> None:
        """Say where the export went."""
        self.notify(f"Wrote {message.path} ({message.keys} keys, {message.fmt})", title="Plan exported", markup=False)

    def on_tuning_screen_journal_checked(self, message: JournalChecked) -> None:
        """Warn about each new interrupted change; the summary line keeps saying so until it is undone."""
        for notice in message.notices:
            if notice not in self.notices:
                self.notify(notice, title="Interrupted change", severity="warning", timeout=30, markup=False)
        self.notices = message.notices
        self.update_summary()

    def on_tuning_screen_findings_read(self, message: FindingsRead) -> None:
        """Show fresh values; edits and exclusions survive a re-read of the same profile."""
        if self.profile is None or message.profile.name != self.profile.name:
            self.edits.clear()
            self.excluded.clear()
        self.profile = message.profile
        self.profile_spec = message.profile.name
        self.findings = message.findings
        self.boot = message.boot
        self.query_one(HostHeader).profile_name = message.profile.name
        self.refresh_rows()
        select, self.select_on_read = self.select_on_read, None
        if select is not None:
            self.select_key(select)

    def select_key(self, key: str) -> None:
        """Put the cursor on ``key``'s row (a hint's jump from the benchmark screen), if it is shown."""
        table = self.query_one(ParamTable)
        try:
            table.move_cursor(row=table.get_row_index(key))
        except RowDoesNotExist:
            self.notify(f"{key} is not in this profile's table.", title="Not in this profile", markup=False)

    # -- rendering -------------------------------------------------------

    def plan_rows(self) -> list[PlanRow]:
        """Every finding with what the operator's plan would do to it (see :func:`plan_rows`)."""
        return plan_rows(self.findings, self.edits, self.excluded)

    @property
    def pending(self) -> list[PlanRow]:
        """The rows apply would write."""
        return [row for row in self.plan_rows() if row.write is not None and row.included]

    @property
    def writable(self) -> bool:
        """Whether kumotui may write on this host."""
        return self.privilege in WRITABLE

    def refresh_rows(self) -> None:
        """Push the current rows into the table and the summary, honouring the filter."""
        needle = self.filter_text.strip().lower()
        rows = [row for row in self.plan_rows() if needle in row.key.lower()]
        self.query_one(ParamTable).show(rows, {row.key: self.boot_outlook(row)[0] for row in rows})
        self.update_details()
        self.update_summary()
        self.refresh_bindings()

    def update_summary(self) -> None:
        """The line above the table: verdict, plan size, filter, activity."""
        parts: list[str] = []
        if self.notices:
            parts.append("⚠ journal needs attention (r: rollback)")
        if self.findings:
            parts.append(summary(self.findings).rstrip("."))
            count = len(self.pending)
            if not count:
                parts.append("nothing to apply")
            elif self.privilege is Privilege.READ_ONLY:
                parts.append(f"{count} in plan, a shows the commands")
            else:
                parts.append(f"{count} in plan, a applies")
        if self.filter_text:
            shown = self.query_one(ParamTable).row_count
            parts.append(f"filter '{self.filter_text}': {shown} shown")
        if self.busy:
            parts.append(f"{self.busy}…")
        self.query_one("#plan-summary", Static).update(" · ".join(parts) or "Reading kernel parameters…")

    def update_details(self) -> None:
        """Explain the highlighted row in the details panel."""
        row = self.query_one(ParamTable).highlighted
        self.query_one(ParamDetails).explain(self.explanation(row) if row else None)

    def boot_outlook(self, row: PlanRow) -> tuple[str, str]:
        """(mark, words): would this row's value survive a reboot once the plan is applied?"""
        if self.boot is None:
            return "", ""
        write = row.write if row.write is not None and row.included else None
        return self.boot.outlook(row.key, row.finding.current, write)

    def explanation(self, row: PlanRow) -> Explanation:
        """What the details panel says about ``row``: catalog facts, apply's action, warnings."""
        finding = row.finding
        facts = info(row.key)
        warnings: list[str] = []
        if row.write is None:
            if finding.current is None:
                action = "nothing: this kernel has no such value to read or write."
            else:
                action = "nothing: the current value already passes."
        elif not row.included:
            action = "nothing: excluded from the plan (space puts it back)."
        else:
            where = self.target.dropin if self.target else "the drop-in"
            mode = mode_change(row.key, finding.current or "", row.write)
            action = f"write {row.write} now and persist it in {where}" + (f" ({mode})." if mode else ".")
            if mode is None and finding.current is not None and takes_away(finding.rule, finding.current, row.write):
                now = " ".join(finding.current.split())
                warnings.append(f"This goes against the rule {finding.rule} ({now} → {row.write}).")
        return Explanation(
            row=row,
            units=facts.units if facts else None,
            kernel_default=facts.default if facts else None,
            action=action,
            warnings=tuple(warnings),
            boot=" ".join(self.boot_outlook(row)).strip(),
        )

    def watch_busy(self) -> None:
        """Show activity in the summary and grey out what must wait."""
        if self.is_mounted:
            self.update_summary()
            self.refresh_bindings()

    def watch_filter_text(self) -> None:
        """Re-filter the rows as the text changes."""
        if self.is_mounted:
            self.refresh_rows()

    def watch_show_details(self, show: bool) -> None:
        """Hide or show the details panel."""
        self.set_class(not show, "-no-details")

    @on(DataTable.RowHighlighted, "#params")
    def _row_highlighted(self) -> None:
        self.update_details()
        self.refresh_bindings()

    @on(DataTable.RowSelected, "#params")
    async def _row_selected(self) -> None:
        await self.run_action("edit")

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        if not self.filter_text:
            self.remove_class("-filtering")
        self.query_one(ParamTable).focus()

    # -- actions ---------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer only what applies now (the footer and the command palette both ask)."""
        row = self.query_one(ParamTable).highlighted if self.is_mounted else None
        if action == "edit":
            return row is not None and row.finding.current is not None and not self.busy
        if action == "exclude":
            return row is not None and row.write is not None and row.included
        if action == "include":
            return row is not None and row.write is not None and not row.included
        if action == "apply":
            return self.writable and bool(self.pending) and not self.busy
        if action == "show_commands":
            return self.privilege is Privilege.READ_ONLY and bool(self.pending) and not self.busy
        if action == "rollback":
            return self.writable and not self.busy
        if action == "export":
            return self.profile is not None and self.target is not None and not self.busy
        if action in ("reread", "switch_profile"):
            return not self.busy
        if action == "close_filter":
            return (bool(self.filter_text) or self.has_class("-filtering")) and not self.has_class("-details-full")
        if action == "close_details":
            return self.has_class("-details-full")
        return True

    def action_filter(self) -> None:
        """Open the filter line."""
        self.add_class("-filtering")
        self.query_one("#filter", Input).focus()

    def action_close_filter(self) -> None:
        """Clear the filter and return to the table."""
        self.query_one("#filter", Input).value = ""
        self.filter_text = ""
        self.remove_class("-filtering")
        self.query_one(ParamTable).focus()

    def action_edit(self) -> None:
        """Edit the highlighted value in a modal that the core validates."""
        row = self.query_one(ParamTable).highlighted
        if row is None or row.finding.current is None or self.profile is None or self.target is None:
            return
        finding = row.finding
        facts = info(row.key)
        request = EditRequest(
            key=row.key,
            current=finding.current or "",
            recommended=finding.recommended,
            value=row.write or normalize(finding.current or ""),
            param=self.profile.param(row.key),
            units=facts.units if facts else None,
        )

        def edited(value: str | None) -> None:
            if value is None:
                return
            if finding.needs_change and value == finding.proposed:
                self.edits.pop(row.key, None)  # the profile's own proposal: not an edit
            else:
                self.edits[row.key] = value
            self.excluded.discard(row.key)
            self.refresh_rows()

        self.app.push_screen(EditScreen(request, self.target.tree), edited)

    def action_exclude(self) -> None:
        """Leave the highlighted change out of the plan."""
        row = self.query_one(ParamTable).highlighted
        if row is not None:
            self.excluded.add(row.key)
            self.refresh_rows()

    def action_include(self) -> None:
        """Put the highlighted change back into the plan."""
        row = self.query_one(ParamTable).highlighted
        if row is not None:
            self.excluded.discard(row.key)
            self.refresh_rows()

    def plan_sets(self) -> dict[str, str]:
        """The operator's typed values still in the plan (apply's ``--set``)."""
        return {key: value for key, value in self.edits.items() if key not in self.excluded}

    def _apply_screen(self, *, read_only: bool) -> ApplyScreen | None:
        if self.profile is None or self.target is None:
            return None
        return ApplyScreen(
            self.target, self.profile, self.findings, sets=self.plan_sets(), excluded=self.excluded, read_only=read_only
        )

    def action_export(self) -> None:
        """Choose a format and a file, then write the plan apply would carry out (edits and exclusions kept)."""
        profile, target = self.profile, self.target
        if profile is None or target is None:
            return
        names = {str(fmt): fmt.default_name(profile.name) for fmt in Format}
        sets, excluded = self.plan_sets(), set(self.excluded)
        dialog = ExportScreen(
            reports_dir(self.settings.state_dir or default_state_dir()).absolute() / names[Format.SYSCTL_D],
            f"profile {profile.name}",
            lambda choice: self.export_plan(target, profile, choice, sets, excluded),
            title="Export plan",
            formats=names,
            written="it (tuned: a directory)",
        )
        self.app.push_screen(dialog)

    def action_apply(self) -> None:
        """Preview the plan; Enter there writes it; then re-read every value."""
        screen = self._apply_screen(read_only=False)
        if screen is None:
            return

        def done(result: str | None) -> None:
            if result == "applied":
                self.edits.clear()  # now the current values; exclusions stay chosen
            if result is not None:
                self.reread()
                if self.target is not None:
                    self.check_journal(self.target)

        self.app.push_screen(screen, done)

    def action_show_commands(self) -> None:
        """Read-only: show the commands and file content that apply the plan by hand."""
        screen = self._apply_screen(read_only=True)
        if screen is not None:
            self.app.push_screen(screen)

    def action_rollback(self) -> None:
        """Choose a journal entry to undo; re-read afterwards."""

        def done(wrote: bool | None) -> None:
            if wrote:
                self.reread()
                if self.target is not None:
                    self.check_journal(self.target)

        if self.target is not None:
            self.app.push_screen(RollbackScreen(self.target), done)

    def action_switch_profile(self) -> None:
        """Choose another profile and judge the host by it."""

        def chosen(name: str | None) -> None:
            if name and name != self.profile_spec:
                self.reread(name)

        self.app.push_screen(ProfileScreen(self.profile_spec), chosen)

    def action_reread(self) -> None:
        """Read every value again (after changing something outside kumotui)."""
        self.reread()

    def copy_text(self) -> tuple[str, str] | None:
        """What y copies here: the highlighted row's proposed value (or its current one)."""
        row = self.query_one(ParamTable).highlighted if self.is_mounted else None
        if row is None:
            return None
        if row.write is not None and row.included:
            return f"{row.key} (proposed)", row.write
        if row.finding.current is None:
            return None
        return f"{row.key} (current)", normalize(row.finding.current)

    def action_toggle_details(self) -> None:
        """Show or hide the details panel; on a narrow terminal, show it full-width in the table's place.

        At 80x24 a long profile leaves the panel under the table no rows at
        all, so there ``d`` swaps the table for the panel (and back).
        """
        if self.has_class("-narrow"):
            self.set_details_full(not self.has_class("-details-full"))
        else:
            self.show_details = not self.show_details

    def set_details_full(self, full: bool) -> None:
        """Swap the table for the full-width details panel (narrow terminals), or back."""
        self.set_class(full, "-details-full")
        if full:
            self.show_details = True
            self.query_one(ParamDetails).focus()
        else:
            self.query_one(ParamTable).focus()
        self.refresh_bindings()

    def action_close_details(self) -> None:
        """Back from the full-width details to the table."""
        self.set_details_full(False)
