"""The export dialog: where to write a run's (or two runs') report.

It offers the state dir's reports folder, shows the full path the report
will go to as it is typed, and writes the file itself: a bad path (a
missing or read-only directory, a directory, a link) keeps the dialog open
with the reason, so the operator fixes the path instead of starting over.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from kumotui.bench.report import export_report
from kumotui.ui.notices import describe_error


class ExportScreen(ModalScreen[Path | None]):
    """Ask where to write the Markdown report, write it; dismisses with the path written, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="export-cancel", tooltip="Write nothing"),
    ]

    class Written(Message):
        """The report is on disk."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, default: Path, what: str, text: str) -> None:
        """Offer ``default`` as the file for the report of ``what`` (``text``, the Markdown)."""
        super().__init__()
        self.default = default
        self.what = what
        self.text = text
        self.error = ""
        """Why the last attempt failed, shown under the path."""

    def compose(self) -> ComposeResult:
        """Title, path, the full path it resolves to, an error line, keys."""
        with Vertical(id="export-dialog"):
            yield Static(Content.from_markup("[b]Export report[/b] · $what", what=self.what), id="export-title")
            yield Input(str(self.default), id="export-path")
            yield Static(id="export-full")
            yield Static(id="export-error")
            yield Static(
                Content.from_markup("[$text-muted]Enter writes the Markdown file · Esc cancels[/]"),
                id="export-help",
            )
            yield Footer()

    def on_mount(self) -> None:
        """Show where the default goes."""
        self.show_full(str(self.default))

    def show_full(self, text: str) -> None:
        """The absolute path the typed text names (``~`` and relative paths resolved)."""
        full = Path(text.strip()).expanduser().absolute() if text.strip() else None
        self.query_one("#export-full", Static).update(
            Content.from_markup("[$text-muted]Writes[/] $path", path=str(full) if full else "(no path)")
        )

    @on(Input.Changed, "#export-path")
    def _changed(self, event: Input.Changed) -> None:
        self.show_full(event.value)

    @on(Input.Submitted, "#export-path")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            self.show_error("name a file to write")
            return
        self.write(Path(text))

    @work(thread=True, group="export", exclusive=True, exit_on_error=False)
    def write(self, path: Path) -> None:
        """Write the report (file I/O, off the event loop)."""
        self.post_message(self.Written(export_report(path, self.text)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bad path: say why and stay open."""
        if event.state is WorkerState.ERROR:
            self.show_error(describe_error(event.worker.error))

    def show_error(self, message: str) -> None:
        """Show why the report was not written; the path stays editable."""
        self.error = message
        self.query_one("#export-error", Static).update(
            Content.from_markup("[$text-error b]✖ $message[/]", message=message)
        )
        self.query_one("#export-path", Input).focus()

    def on_export_screen_written(self, message: Written) -> None:
        """Done: close with the path written."""
        self.dismiss(message.path)

    def action_cancel(self) -> None:
        """Write nothing."""
        self.dismiss(None)
