"""The export dialog: where to write a run's (or two runs') report, or the tuning plan in a chosen format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Select, Static


@dataclass(frozen=True)
class ExportChoice:
    """Where to write, and in which format (None when the dialog offered just one)."""

    path: Path
    format: str | None = None


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Ask where to write (and, when offered, in which format); dismisses with the choice, or None.

    Given ``formats`` (format -> its default file name), a list of them
    comes first and choosing one puts its default name into the path, in the
    same directory; Enter in the path writes.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="export-cancel", tooltip="Write nothing"),
    ]

    def __init__(
        self,
        default: Path,
        what: str,
        *,
        title: str = "Export report",
        formats: Mapping[str, str] | None = None,
        written: str = "the Markdown file",
    ) -> None:
        """Offer ``default`` as the file for ``what``; ``formats`` to choose from, the first chosen."""
        super().__init__()
        self.default = default
        self.what = what
        self.title_text = title
        self.formats = dict(formats or {})
        self.written = written

    def compose(self) -> ComposeResult:
        """Title, format (when offered), path, keys."""
        with Vertical(id="export-dialog"):
            yield Static(
                Content.from_markup("[b]$title[/b] · $what", title=self.title_text, what=self.what), id="export-title"
            )
            if self.formats:
                choices = [(name, name) for name in self.formats]
                yield Select[str](choices, value=next(iter(self.formats)), allow_blank=False, id="export-format")
            yield Input(str(self.default), id="export-path")
            keys = "Tab: the path · " if self.formats else ""
            yield Static(
                Content.from_markup(f"[$text-muted]{keys}Enter writes $written · Esc cancels[/]", written=self.written),
                id="export-help",
            )
            yield Footer()

    @property
    def chosen_format(self) -> str | None:
        """The format picked now, or None when none was offered."""
        if not self.formats:
            return None
        value = self.query_one("#export-format", Select).value
        return value if isinstance(value, str) else None

    @on(Select.Changed, "#export-format")
    def _format_changed(self, event: Select.Changed) -> None:
        name = self.formats.get(str(event.value))
        if name is not None:
            path = self.query_one("#export-path", Input)
            path.value = str(Path(path.value.strip() or str(self.default)).expanduser().parent / name)

    @on(Input.Submitted, "#export-path")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss(ExportChoice(Path(text).expanduser(), self.chosen_format) if text else None)

    def action_cancel(self) -> None:
        """Write nothing."""
        self.dismiss(None)
