"""A yes/no question before something that cannot wait, such as quitting during a run."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static


class ConfirmScreen(ModalScreen[bool]):
    """Ask one question; dismisses with True (confirmed) or False (Escape, n)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,y,q", "answer(True)", "Yes", id="confirm-yes", tooltip="Go ahead"),
        Binding("escape,n", "answer(False)", "No", id="confirm-no", tooltip="Back, nothing changes"),
    ]

    def __init__(self, title: str, question: str, *, id: str | None = None) -> None:
        """Create the dialog with a bold ``title`` and the ``question`` under it."""
        super().__init__(id=id)
        self.title_text = title
        self.question = question

    def compose(self) -> ComposeResult:
        """Title, question, the two keys."""
        with Vertical(id="confirm-dialog"):
            yield Static(self.title_text, id="confirm-title", markup=False)
            yield Static(self.question, id="confirm-question", markup=False)
            yield Footer()

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)
