"""The help overlay: the current screen's keys, what its columns mean, and the words it uses.

``?`` opens it anywhere. The keys come from the screen's own bindings (the
same ones the footer and the palette use, so the three cannot disagree);
the explanations are written once here, per kind of screen.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

MMH = "MMH: millions of messages per hour (msgs/s × 3600 / 1,000,000), the unit KumoMTA publishes its figures in."

EVERYWHERE = (
    "t / b / h: tuning / benchmark / saved runs · g: guided setup · H: hosts · ?: this help · "
    "ctrl+p: every command, searchable · j / k: down / up in any list · y: copy what is under the cursor · "
    "q: quit (asks first while a benchmark runs)"
)

SCREEN_NOTES: dict[str, tuple[str, ...]] = {
    "TuningScreen": (
        "Columns. Parameter: the sysctl key. Current: the kernel's value now. Recommended: the profile's "
        "target. Status: ✔ ok, ▼ below, ▲ above, ≠ differs, ? missing (this kernel has no such key), "
        "✖ unreadable. Proposed: what apply would write (✎ you typed it; 'excluded' you took it out). "
        "Boot: what the value will be after a reboot once applied: ✔ the drop-in wins, ✖ a file read later "
        "overrides it (the details say which file and line), · nothing to persist.",
        "Values with several fields (tcp_rmem: min default max) show every field; the field that differs "
        "from the recommendation is highlighted.",
        "Rules. at-least: never lowered. at-most: never raised. exactly: one value (a mode such as "
        "tcp_tw_reuse 0 off, 1 on, 2 loopback only, is switched, and said so). covers: a port range, only "
        "ever widened.",
        "d shows the details as a full-width panel (Escape or d goes back); R re-reads every value.",
    ),
    "BenchScreen": (
        MMH,
        "The form: backend (which sink and generator), sink or target, messages and/or duration, rate, "
        "concurrency (connections), body size, workers. The panes show progress with ETA, msgs/s and MMH, "
        "the sink's count and connections, latency p50/p95/p99, the host's CPU per core, memory, network, "
        "TCP established and TIME_WAIT against the port range, open files, and hints tying a symptom to a "
        "kernel parameter (Enter on a hint opens it on the tuning screen).",
    ),
    "RunsScreen": (
        MMH,
        "Columns: when the run started, backend, messages, msgs/s and MMH over the measured window, "
        "latency, and whether the run completed. space picks two runs to compare; e exports a report.",
    ),
    "GuideScreen": (
        "Five steps: detect the host, review and apply the profile, start a sink, run a first benchmark, "
        "read the summary. Enter does a step, s skips it, Escape leaves (g resumes at the same step).",
        MMH,
    ),
}
"""What each kind of screen's columns and words mean, by class (a subclass finds its parent's)."""


def kind_of(screen: Screen[object]) -> str | None:
    """The class name :data:`SCREEN_NOTES` knows ``screen`` by (a subclass finds its parent's)."""
    return next((cls.__name__ for cls in type(screen).__mro__ if cls.__name__ in SCREEN_NOTES), None)


def notes_for(screen: Screen[object]) -> tuple[str, ...]:
    """The explanations for ``screen``'s kind."""
    kind = kind_of(screen)
    return SCREEN_NOTES[kind] if kind else ()


def keys_of(screen: Screen[object]) -> list[tuple[str, str]]:
    """(key, what it does) for every key that applies on ``screen`` now, the screen's before the app's."""
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        # kumotui's own keys (they carry an id); the widgets' arrows and page keys go without saying.
        if binding.id is None or not binding.description or not active.enabled or binding.action in seen:
            continue
        seen.add(binding.action)
        words = binding.tooltip or binding.description
        rows.append((screen.app.get_key_display(binding) or key, words))
    return rows


def help_text(screen: Screen[object]) -> Content:
    """The overlay's text for ``screen``: keys first, then what the screen shows."""
    rows = keys_of(screen)
    width = max((len(key) for key, _ in rows), default=0)
    parts = [Content.from_markup("[b]Keys here[/b]")]
    parts += [
        Content.from_markup("  [$text-accent]$key[/]  $what", key=key.ljust(width), what=what) for key, what in rows
    ]
    parts += [Content(""), Content.from_markup("[b]Anywhere[/b]"), Content(EVERYWHERE)]
    notes = notes_for(screen)
    if notes:
        parts += [Content(""), Content.from_markup("[b]What this screen shows[/b]")]
        for note in notes:
            parts += [Content(note), Content("")]
    return Content("\n").join(parts)


class HelpScreen(ModalScreen[None]):
    """The help for the screen it was opened over; Escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help-close", tooltip="Back to the screen"),
    ]

    def __init__(self, about: Screen[object]) -> None:
        """Create the overlay explaining ``about``."""
        super().__init__(id="help")
        self.about = about
        self.text = help_text(about)

    def compose(self) -> ComposeResult:
        """Title, the scrollable text, the footer."""
        with Vertical(id="help-dialog"):
            kind = kind_of(self.about) or type(self.about).__name__
            yield Static(f"Help · {kind.removesuffix('Screen')} · Esc closes", id="help-title")
            with VerticalScroll(id="help-body"):
                yield Static(self.text, id="help-text")
            yield Footer()

    def on_mount(self) -> None:
        """Scroll keys (j/k, arrows, page keys) go to the text."""
        self.query_one("#help-body").focus()

    def action_close(self) -> None:
        """Back to the screen."""
        self.dismiss(None)
