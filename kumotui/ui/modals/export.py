"""The export dialog: where to write a run's (or two runs') report."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static


class ExportScreen(ModalScreen[Path | None]):
    """Ask where to write the Markdown report; dismisses with the path, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="export-cancel", tooltip="Write nothing"),
    ]

    def __init__(self, default: Path, what: str) -> None:
        """Offer ``default`` as the file for the report of ``what``."""
        super().__init__()
        self.default = default
        self.what = what

    def compose(self) -> ComposeResult:
        """Title, path, keys."""
        with Vertical(id="export-dialog"):
            yield Static(Content.from_markup("[b]Export report[/b] · $what", what=self.what), id="export-title")
            yield Input(str(self.default), id="export-path")
            yield Static(
                Content.from_markup("[$text-muted]Enter writes the Markdown file · Esc cancels[/]"),
                id="export-help",
            )
            yield Footer()

    @on(Input.Submitted, "#export-path")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss(Path(text).expanduser() if text else None)

    def action_cancel(self) -> None:
        """Write nothing."""
        self.dismiss(None)
