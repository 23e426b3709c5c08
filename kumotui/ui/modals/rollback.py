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

from kumotui.tuning.apply import ApplyFailed, Outcome
from kumotui.tuning.lock import holder_now
from kumotui.tuning.rollback import (
    Changed,
    EntryView,
    Order,
    RollbackPlan,
    journal_view,
    plan_rollback,
    rollback_all,
)
from kumotui.tuning.target import Target
from kumotui.ui.keys import LIST_KEYS
from kumotui.ui.notices import describe_error
from kumotui.ui.render import entry_label, render_entry, render_outcome, render_rollback_plan

APP_COMMAND = "kumotui (app: rollback)"
"""How the app describes itself in the lock file while it rolls back."""


class RollbackStage(enum.StrEnum):
    """Where the rollback dialog stands."""

    LOADING = "loading"
    CHOOSE = "choose"
    CHECKING = "checking"
    """The core checks the entry and reads what is there now."""
    CONFIRM = "confirm"
    """Values changed since the apply, or newer applies in the way: a second confirmation."""
    ROLLING = "rolling"
    DONE = "done"


class RollbackScreen(ModalScreen[bool]):
    """The journal, newest first; Enter rolls back the highlighted apply.

    The details under the list show exactly which values the rollback would
    restore. Enter has the core check the entry and read the live values;
    when a key changed since the apply (by a later apply or by hand), or a
    newer apply of the same keys is still in place, the dialog shows live
    against journaled values and asks again: Enter restores anyway, ``k``
    keeps the changed keys, ``n`` rolls back newest first. The core journals
    the rollback itself and verifies each value like an apply. Dismisses
    with True when something may have been written.
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
        Binding(
            "enter",
            "restore_anyway",
            "Roll back anyway",
            id="rollback-anyway",
            priority=True,
            tooltip="Restore every value shown, including those changed since the apply",
        ),
        Binding(
            "k",
            "keep_changed",
            "Keep changed",
            id="rollback-keep",
            tooltip="Keep the values changed since the apply (runtime and drop-in); restore the rest",
        ),
        Binding(
            "n",
            "newest_first",
            "Newest first",
            id="rollback-newest-first",
            tooltip="Roll back the newer applies of these keys first, newest first",
        ),
        Binding("enter", "finish", "Close", id="rollback-close", priority=True, tooltip="Back to the table"),
        Binding("escape", "back", "Back", id="rollback-back", tooltip="Back to the journal, nothing written"),
        Binding("escape", "close", "Close", id="rollback-cancel", tooltip="Back to the table"),
        *LIST_KEYS,
    ]

    stage: reactive[RollbackStage] = reactive(RollbackStage.LOADING)

    class JournalRead(Message):
        """The journal's entries with their state, oldest first."""

        def __init__(self, views: list[EntryView]) -> None:
            super().__init__()
            self.views = views

    class RollbackPlanned(Message):
        """The core checked the entry and read the live values: what rolling it back would do."""

        def __init__(self, plans: list[RollbackPlan], order: Order) -> None:
            super().__init__()
            self.plans = plans
            self.order = order

    class RolledBack(Message):
        """A rollback (or a chain, newest first) finished and every value was verified."""

        def __init__(self, outcomes: list[Outcome]) -> None:
            super().__init__()
            self.outcomes = outcomes

    def __init__(self, target: Target) -> None:
        """Create the modal for ``target``'s journal."""
        super().__init__()
        self.target = target
        self.views: dict[str, EntryView] = {}
        self.plans: list[RollbackPlan] = []
        self.order = Order.REFUSE
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
        """List the journal's entries (a ``pending`` one counts as interrupted when nobody holds the lock)."""
        entries = self.target.journal.entries()
        running = holder_now(self.target.host, self.target.journal.state_dir) is not None
        self.post_message(self.JournalRead(journal_view(entries, running=running)))

    @work(thread=True, group="check", exclusive=True, exit_on_error=False)
    def check(self, entry_id: str, order: Order) -> None:
        """Check the entry as data and read the live values (nothing is written)."""
        self.post_message(self.RollbackPlanned(plan_rollback(self.target, entry_id, order=order), order))

    @work(thread=True, group="rollback", exit_on_error=False)
    def restore(self, entry_id: str, changed: Changed, order: Order, expected: list[RollbackPlan]) -> None:
        """Roll back (journaled and verified by the core, under the host's lock)."""
        outcomes = rollback_all(
            self.target, entry_id, changed=changed, order=order, expected=expected, command=APP_COMMAND
        )
        self.post_message(self.RolledBack(outcomes))

    def on_rollback_screen_journal_read(self, message: JournalRead) -> None:
        """Fill the list, newest first, with the first entry that can be undone highlighted."""
        newest = list(reversed(message.views))
        self.views = {view.entry.id: view for view in newest}
        options = self.query_one(OptionList)
        options.clear_options()
        if self.stage == RollbackStage.DONE:  # re-read after a rollback: refresh the list, keep the result
            options.add_options([Option(entry_label(v), id=v.entry.id, disabled=True) for v in newest])
            return
        if not newest:
            self._show(Content.from_markup("[$text-muted]The journal is empty: nothing has been applied here yet.[/]"))
            self.stage = RollbackStage.DONE
            return
        options.add_options([Option(entry_label(v), id=v.entry.id, disabled=not v.can_roll_back) for v in newest])
        first = next((i for i, v in enumerate(newest) if v.can_roll_back), None)
        if first is None:
            self._show(Content.from_markup("[$text-muted]Every apply in the journal has already been rolled back.[/]"))
        else:
            options.highlighted = first
        options.focus()
        self.stage = RollbackStage.CHOOSE

    @on(OptionList.OptionHighlighted, "#rollback-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        view = self.views.get(event.option.id or "")
        if view is not None and self.stage == RollbackStage.CHOOSE:
            self._show(render_entry(view))
        self.refresh_bindings()

    def on_rollback_screen_rollback_planned(self, message: RollbackPlanned) -> None:
        """Roll back at once when nothing moved; otherwise show live against journaled values and ask again."""
        self.plans = message.plans
        self.order = message.order
        first = message.plans[0]
        needs = any(p.changed or p.dropin_changed for p in message.plans) or (
            bool(first.newer) and message.order is Order.REFUSE
        )
        if not needs:
            self._start(Changed.RESTORE)
            return
        self._show(render_rollback_plan(message.plans, newest_first=message.order is Order.NEWEST_FIRST))
        self.stage = RollbackStage.CONFIRM

    def on_rollback_screen_rolled_back(self, message: RolledBack) -> None:
        """Show each restored key's verified value, and the journal as it is now."""
        self._show(Content("\n\n").join(render_outcome(outcome) for outcome in message.outcomes))
        self.stage = RollbackStage.DONE
        self.read_journal()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed read, check or rollback is shown in the modal, in words."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, ApplyFailed):
            self._show(render_outcome(error.outcome, str(error)))
        else:
            what = {
                "journal": "Reading the journal failed",
                "check": "This entry cannot be rolled back",
            }.get(event.worker.group, "Rollback failed")
            self._show(Content.from_markup(f"[$text-error b]✖ {what}:[/] $e", e=describe_error(error)))
        self.stage = RollbackStage.DONE

    def watch_stage(self) -> None:
        """Offer only the keys that apply in this stage."""
        self.refresh_bindings()

    def _selected(self) -> EntryView | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        option = options.get_option_at_index(options.highlighted)
        return self.views.get(option.id or "")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Each stage offers its own keys; nothing closes mid-write."""
        stage = self.stage
        if action == "confirm":
            view = self._selected() if stage == RollbackStage.CHOOSE else None
            return view is not None and view.can_roll_back
        if action == "restore_anyway":
            return stage == RollbackStage.CONFIRM
        if action == "keep_changed":
            return stage == RollbackStage.CONFIRM and any(p.changed or p.dropin_changed for p in self.plans)
        if action == "newest_first":
            return stage == RollbackStage.CONFIRM and bool(self.plans[0].newer) and self.order is Order.REFUSE
        if action == "finish":
            return stage == RollbackStage.DONE
        if action == "back":
            return stage == RollbackStage.CONFIRM
        if action == "close":
            return stage in (RollbackStage.LOADING, RollbackStage.CHOOSE, RollbackStage.DONE)
        return True

    def action_confirm(self) -> None:
        """Check the highlighted entry against the host (the first Enter)."""
        view = self._selected()
        if view is None or not view.can_roll_back:
            return
        self._check(view.entry.id, Order.REFUSE)

    def action_restore_anyway(self) -> None:
        """The second Enter: restore everything shown, changed values included."""
        self._start(Changed.RESTORE)

    def action_keep_changed(self) -> None:
        """Keep the values changed since the apply, runtime and drop-in; restore the rest."""
        self._start(Changed.KEEP)

    def action_newest_first(self) -> None:
        """Plan the newer applies first, newest first, and show that chain for confirmation."""
        self._check(self.plans[-1].entry.id, Order.NEWEST_FIRST)

    def action_back(self) -> None:
        """Back to the journal list, nothing written."""
        self.plans = []
        self.query_one(OptionList).disabled = False
        self.stage = RollbackStage.CHOOSE
        view = self._selected()
        if view is not None:
            self._show(render_entry(view))
        self.query_one(OptionList).focus()

    def action_close(self) -> None:
        """Back to the table; say whether anything may have been written."""
        self.dismiss(self.wrote)

    def action_finish(self) -> None:
        """Enter after the result: back to the table."""
        self.action_close()

    def _check(self, entry_id: str, order: Order) -> None:
        self.stage = RollbackStage.CHECKING
        self.query_one(OptionList).disabled = True
        self._show(Content.from_markup("[$text-muted]Checking $id against the host…[/]", id=entry_id))
        self.check(entry_id, order)

    def _start(self, changed: Changed) -> None:
        plans = self.plans
        order = self.order
        if order is Order.REFUSE and plans[0].newer:
            order = Order.ALONE  # confirmed in the second step
        self.stage = RollbackStage.ROLLING
        self.wrote = True
        self.query_one(OptionList).disabled = True
        entry_id = plans[-1].entry.id
        self._show(Content.from_markup("[$text-muted]Rolling back $id: journal, write, read back…[/]", id=entry_id))
        self.restore(entry_id, changed, order, plans)

    def _show(self, content: Content) -> None:
        self.query_one("#rollback-text", Static).update(content)
        self.query_one("#rollback-body", VerticalScroll).scroll_home(animate=False)
