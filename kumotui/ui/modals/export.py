"""The export dialog: where to write a run's (or two runs') report, or the tuning plan in a chosen format.

It offers a default (the state dir's reports folder for reports), shows the
full path the typed text resolves to, and writes the file itself through
the caller's ``write``: a bad path (a missing or read-only directory, a
directory, a link) keeps the dialog open with the reason, so the operator
fixes the path instead of starting over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Select, Static
from textual.worker import Worker, WorkerState

from kumotui.ui.notices import describe_error


@dataclass(frozen=True)
class ExportChoice:
    """Where to write, and in which format (None when the dialog offered just one)."""

    path: Path
    format: str | None = None


Writer = Callable[[ExportChoice], object]
"""Writes the export for a choice (in a worker thread); raises KumotuiError with the reason it could not."""


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Ask where to write (and, when offered, in which format), write it; dismisses with the choice, or None.

    Given ``formats`` (format -> its default file name), a list of them
    comes first and choosing one puts its default name into the path, in the
    same directory; Enter in the path writes.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="export-cancel", tooltip="Write nothing"),
    ]

    class Written(Message):
        """The export is on disk."""

        def __init__(self, choice: ExportChoice) -> None:
            super().__init__()
            self.choice = choice

    def __init__(
        self,
        default: Path,
        what: str,
        write: Writer,
        *,
        title: str = "Export report",
        formats: Mapping[str, str] | None = None,
        written: str = "the Markdown file",
    ) -> None:
        """Offer ``default`` as the file for ``what``, written by ``write``; ``formats`` to choose from."""
        super().__init__()
        self.default = default
        self.what = what
        self.writer = write
        self.title_text = title
        self.formats = dict(formats or {})
        self.written = written
        self.error = ""
        """Why the last attempt failed, shown under the path."""

    def compose(self) -> ComposeResult:
        """Title, format (when offered), path, the full path it resolves to, an error line, keys."""
        with Vertical(id="export-dialog"):
            yield Static(
                Content.from_markup("[b]$title[/b] · $what", title=self.title_text, what=self.what), id="export-title"
            )
            if self.formats:
                choices = [(name, name) for name in self.formats]
                yield Select[str](choices, value=next(iter(self.formats)), allow_blank=False, id="export-format")
            yield Input(str(self.default), id="export-path")
            yield Static(id="export-full")
            yield Static(id="export-error")
            keys = "Tab: the path · " if self.formats else ""
            yield Static(
                Content.from_markup(f"[$text-muted]{keys}Enter writes $written · Esc cancels[/]", written=self.written),
                id="export-help",
            )
            yield Footer()

    def on_mount(self) -> None:
        """Show where the default goes."""
        self.show_full(str(self.default))

    @property
    def chosen_format(self) -> str | None:
        """The format picked now, or None when none was offered."""
        if not self.formats:
            return None
        value = self.query_one("#export-format", Select).value
        return value if isinstance(value, str) else None

    def show_full(self, text: str) -> None:
        """The absolute path the typed text names (``~`` and relative paths resolved)."""
        full = Path(text.strip()).expanduser().absolute() if text.strip() else None
        self.query_one("#export-full", Static).update(
            Content.from_markup("[$text-muted]Writes[/] $path", path=str(full) if full else "(no path)")
        )

    @on(Select.Changed, "#export-format")
    def _format_changed(self, event: Select.Changed) -> None:
        name = self.formats.get(str(event.value))
        if name is not None:
            path = self.query_one("#export-path", Input)
            path.value = str(Path(path.value.strip() or str(self.default)).expanduser().parent / name)

    @on(Input.Changed, "#export-path")
    def _changed(self, event: Input.Changed) -> None:
        self.show_full(event.value)

    @on(Input.Submitted, "#export-path")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.show_error("name a file to write")
            return
        self.write(ExportChoice(Path(text).expanduser().absolute(), self.chosen_format))

    @work(thread=True, group="export", exclusive=True, exit_on_error=False)
    def write(self, choice: ExportChoice) -> None:
        """Write the export (file I/O, off the event loop)."""
        self.writer(choice)
        self.post_message(self.Written(choice))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bad path: say why and stay open."""
        if event.state is WorkerState.ERROR:
            self.show_error(describe_error(event.worker.error))

    def show_error(self, message: str) -> None:
        """Show why nothing was written; the path stays editable."""
        self.error = message
        self.query_one("#export-error", Static).update(
            Content.from_markup("[$text-error b]✖ $message[/]", message=message)
        )
        self.query_one("#export-path", Input).focus()

    def on_export_screen_written(self, message: Written) -> None:
        """Done: close with what was written."""
        self.dismiss(message.choice)

    def action_cancel(self) -> None:
        """Write nothing."""
        self.dismiss(None)
