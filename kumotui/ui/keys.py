"""Keys every list answers to, for the dialogs.

Textual stops the app's bindings at a modal screen, so the dialogs with a
list (hosts, profiles, the journal) bind these themselves; each runs the
app's one action, so a list behaves the same in a dialog as on a screen.
"""

from __future__ import annotations

from textual.binding import Binding, BindingType

LIST_KEYS: list[BindingType] = [
    Binding("j", "app.cursor('down')", "Down", show=False),
    Binding("k", "app.cursor('up')", "Up", show=False),
    Binding("slash", "app.filter_list", "Filter", id="dialog-filter", show=False, tooltip="Show only matching rows"),
    Binding("question_mark", "app.help", "Help", id="dialog-help", show=False, tooltip="The keys of this dialog"),
]
"""j/k, / and ? inside a dialog (see the module docstring)."""
