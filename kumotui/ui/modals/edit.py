"""The modal that edits one value, checked by the core before it is accepted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from kumotui.text.escape import printable
from kumotui.tuning.profiles import Param
from kumotui.tuning.sysctl import SysctlTree
from kumotui.tuning.validate import Checked, ValidationError, check_value
from kumotui.ui.notices import describe_error


@dataclass(frozen=True)
class EditRequest:
    """What the modal needs to know about the value being edited."""

    key: str
    current: str
    recommended: str
    value: str
    """The value the input starts with (the proposal, or an earlier edit)."""
    param: Param | None = None
    units: str | None = None


class EditScreen(ModalScreen[str | None]):
    """Type a value for one parameter; the core says whether it may be written.

    Enter (the Input's own submit, so it follows every key typed before it)
    checks the value with :func:`kumotui.validate.check_value` in a
    worker (it may read related keys from the host). A refused value shows
    the core's message and stays in the input; a value with warnings (below
    the recommendation, odd port parity) shows them and needs a second
    Enter; a clean value closes the modal with the canonical value.
    Escape cancels.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="edit-cancel", tooltip="Close without changing the plan"),
    ]

    HINT = "[$text-muted]Enter checks the value and keeps it · Esc cancels[/]"
    """Enter belongs to the Input (see ``_submitted``), so the footer cannot show it."""

    class ValueChecked(Message):
        """The core accepted a typed value (possibly with warnings)."""

        def __init__(self, typed: str, checked: Checked) -> None:
            super().__init__()
            self.typed = typed
            self.checked = checked

    def __init__(self, request: EditRequest, tree: SysctlTree) -> None:
        """Create the modal for ``request``, validating against ``tree``."""
        super().__init__()
        self.request = request
        self.sysctl = tree
        self._confirm: str | None = None
        """A value whose warnings were shown: Enter again keeps it."""

    def compose(self) -> ComposeResult:
        """Title, facts, the input, and the core's verdict under it."""
        request = self.request
        with Vertical(id="edit-dialog"):
            yield Static(Content.from_markup("Edit [b]$key[/b]", key=request.key), id="edit-title")
            facts = [
                ("Current", printable(" ".join(request.current.split()), keep="")),
                ("Recommended", f"{request.recommended}" + (f" ({request.param.rule})" if request.param else "")),
            ]
            if request.units:
                facts.append(("Units", request.units))
            lines = [Content.from_markup(f"[$text-muted]{label:<12}[/] $value", value=value) for label, value in facts]
            yield Static(Content("\n").join(lines), id="edit-facts")
            yield Input(value=request.value, id="edit-value", select_on_focus=True)
            yield Static(Content.from_markup(self.HINT), id="edit-message")

    def on_mount(self) -> None:
        """Type straight away."""
        self.query_one(Input).focus()

    @on(Input.Changed, "#edit-value")
    def _typed(self) -> None:
        self._confirm = None
        self._say(self.HINT)

    def action_cancel(self) -> None:
        """Leave the plan as it was."""
        self.dismiss(None)

    @on(Input.Submitted, "#edit-value")
    def _submitted(self, event: Input.Submitted) -> None:
        # Enter arrives here through the Input's own queue, after every key
        # typed before it; a priority binding would overtake fast typing.
        self.action_submit(event.value)

    def action_submit(self, typed: str | None = None) -> None:
        """Check the typed value, or keep it when its warnings were already shown."""
        if typed is None:
            typed = self.query_one(Input).value
        if self._confirm is not None and typed == self._confirm:
            self.dismiss(typed)
            return
        self._say("[$text-muted]Checking…[/]")
        self.check(typed)

    @work(thread=True, group="validate", exclusive=True, exit_on_error=False)
    def check(self, typed: str) -> None:
        """Validate ``typed`` with the core (it may read related keys)."""
        request = self.request
        checked = check_value(request.key, typed, self.sysctl, request.param, current=request.current)
        if not get_current_worker().is_cancelled:
            self.post_message(self.ValueChecked(typed, checked))

    def on_edit_screen_value_checked(self, message: ValueChecked) -> None:
        """Keep a clean value; show warnings and wait for a second Enter otherwise."""
        if message.typed != self.query_one(Input).value:
            return  # typed on since; the next Enter checks again
        checked = message.checked
        if not checked.warnings:
            self.dismiss(checked.value)
            return
        self._confirm = message.typed
        lines = [Content.from_markup("[$text-warning b]⚠ $w[/]", w=w) for w in checked.warnings]
        lines.append(Content.from_markup("[$text-muted]Enter again keeps $v; edit it to change.[/]", v=checked.value))
        self.query_one("#edit-message", Static).update(Content("\n").join(lines))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A refused value shows the core's own message."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        title = "Not accepted" if isinstance(error, ValidationError) else "Could not check the value"
        self.query_one("#edit-message", Static).update(
            Content.from_markup(f"[$text-error b]✖ {title}:[/] $m", m=describe_error(error))
        )

    def _say(self, markup: str) -> None:
        self.query_one("#edit-message", Static).update(Content.from_markup(markup))
