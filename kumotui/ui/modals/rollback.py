"""Choose a journal entry and restore the values from before it."""

from __future__ import annotations

import enum
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from kumotui.tuning.apply import ApplyFailed, Outcome, rollback
from kumotui.tuning.journal import Entry
from kumotui.tuning.target import Target
from kumotui.ui.notices import describe_error
from kumotui.ui.render import can_roll_back, entry_label, render_entry, render_outcome


class RollbackStage(enum.StrEnum):
    """Where the rollback dialog stands."""

    LOADING = "loading"
    CHOOSE = "choose"
    ROLLING = "rolling"
    DONE = "done"


class RollbackScreen(ModalScreen[bool]):
    """The journal, newest first; Enter rolls back the highlighted apply.

    The details under the list show exactly which values the rollback would
    restore; the core journals the rollback itself and verifies each value
    like an apply. Dismisses with True when something may have been written.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "confirm",
            "Roll back",
            id="rollback-confirm",
            priority=True,
            tooltip="Restore the values from before the highlighted apply",
        ),
        Binding("enter", "finish", "Close", id="rollback-close", priority=True, tooltip="Back to the table"),
        Binding("escape", "close", "Close", id="rollback-cancel", tooltip="Back to the table"),
    ]

    stage: reactive[RollbackStage] = reactive(RollbackStage.LOADING)

    class JournalRead(Message):
        """The journal's entries, oldest first."""

        def __init__(self, entries: list[Entry]) -> None:
            super().__init__()
            self.entries = entries

    class RolledBack(Message):
        """A rollback finished and every value was verified."""

        def __init__(self, outcome: Outcome) -> None:
            super().__init__()
            self.outcome = outcome

    def __init__(self, target: Target) -> None:
        """Create the modal for ``target``'s journal."""
        super().__init__()
        self.target = target
        self.entries: dict[str, Entry] = {}
        self.wrote = False

    def compose(self) -> ComposeResult:
        """Title, the journal list, what the highlighted entry would restore, keys."""
        with Vertical(id="rollback-dialog"):
            yield Static(Content.from_markup("[b]Rollback[/b] · choose a journal entry"), id="rollback-title")
            yield OptionList(id="rollback-list")
            with VerticalScroll(id="rollback-body"):
                yield Static(Content.from_markup("[$text-muted]Reading the journal…[/]"), id="rollback-text")
            yield Footer()

    def on_mount(self) -> None:
        """Read the journal."""
        self.read_journal()

    @work(thread=True, group="journal", exclusive=True, exit_on_error=False)
    def read_journal(self) -> None:
        """List the journal's entries."""
        self.post_message(self.JournalRead(self.target.journal.entries()))

    @work(thread=True, group="rollback", exit_on_error=False)
    def restore(self, entry_id: str) -> None:
        """Roll back one entry (journaled and verified by the core)."""
        self.post_message(self.RolledBack(rollback(self.target, entry_id)))

    def on_rollback_screen_journal_read(self, message: JournalRead) -> None:
        """Fill the list, newest first, with the first entry that can be undone highlighted."""
        newest = list(reversed(message.entries))
        self.entries = {entry.id: entry for entry in newest}
        options = self.query_one(OptionList)
        options.clear_options()
        if self.stage == RollbackStage.DONE:  # re-read after a rollback: refresh the list, keep the result
            options.add_options([Option(entry_label(e), id=e.id, disabled=True) for e in newest])
            return
        if not newest:
            self._show(Content.from_markup("[$text-muted]The journal is empty: nothing has been applied here yet.[/]"))
            self.stage = RollbackStage.DONE
            return
        options.add_options([Option(entry_label(e), id=e.id, disabled=not can_roll_back(e)) for e in newest])
        first = next((i for i, e in enumerate(newest) if can_roll_back(e)), None)
        if first is None:
            self._show(Content.from_markup("[$text-muted]Every apply in the journal has already been rolled back.[/]"))
        else:
            options.highlighted = first
        options.focus()
        self.stage = RollbackStage.CHOOSE

    @on(OptionList.OptionHighlighted, "#rollback-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        entry = self.entries.get(event.option.id or "")
        if entry is not None and self.stage == RollbackStage.CHOOSE:
            self._show(render_entry(entry))
        self.refresh_bindings()

    def on_rollback_screen_rolled_back(self, message: RolledBack) -> None:
        """Show each restored key's verified value, and the journal as it is now."""
        self._show(render_outcome(message.outcome))
        self.stage = RollbackStage.DONE
        self.read_journal()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed read or rollback is shown in the modal, in words."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, ApplyFailed):
            self._show(render_outcome(error.outcome, str(error)))
        else:
            what = "Reading the journal failed" if event.worker.group == "journal" else "Rollback failed"
            self._show(Content.from_markup(f"[$text-error b]✖ {what}:[/] $e", e=describe_error(error)))
        self.stage = RollbackStage.DONE

    def watch_stage(self) -> None:
        """Offer only the keys that apply in this stage."""
        self.refresh_bindings()

    def _selected(self) -> Entry | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        option = options.get_option_at_index(options.highlighted)
        return self.entries.get(option.id or "")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Enter rolls back only a highlighted entry that can be; nothing closes mid-write."""
        if action == "confirm":
            entry = self._selected() if self.stage == RollbackStage.CHOOSE else None
            return entry is not None and can_roll_back(entry)
        if action == "finish":
            return self.stage == RollbackStage.DONE
        if action == "close":
            return self.stage != RollbackStage.ROLLING
        return True

    def action_confirm(self) -> None:
        """Roll back the highlighted entry."""
        entry = self._selected()
        if entry is None or not can_roll_back(entry):
            return
        self.stage = RollbackStage.ROLLING
        self.wrote = True
        self.query_one(OptionList).disabled = True
        self._show(Content.from_markup("[$text-muted]Rolling back $id: journal, write, read back…[/]", id=entry.id))
        self.restore(entry.id)

    def action_close(self) -> None:
        """Back to the table; say whether anything may have been written."""
        self.dismiss(self.wrote)

    def action_finish(self) -> None:
        """Enter after the result: back to the table."""
        self.action_close()

    def _show(self, content: Content) -> None:
        self.query_one("#rollback-text", Static).update(content)
        self.query_one("#rollback-body", VerticalScroll).scroll_home(animate=False)
