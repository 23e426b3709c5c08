"""``/`` in any list: a filter line under it that keeps only the rows containing some text.

One piece for every list that has no filter of its own (saved runs, hosts,
journal entries, profiles, hints): it remembers the list's rows when it
opens, shows those matching as the text changes, and puts every row back
when it closes. Rows keep their keys and options their ids, so what the
screens read from the cursor is unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Input, OptionList
from textual.widgets.option_list import Option

Filterable = DataTable[Any] | OptionList
"""The lists a :class:`ListFilter` can narrow."""


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


class ListFilter(Input):
    """A one-line filter for ``target``; Enter keeps the filter and returns to the list, Esc clears it."""

    DEFAULT_CSS = """
    ListFilter {
        dock: bottom;
        margin: 0 1 1 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "clear_filter", "Clear filter", id="list-filter-clear", tooltip="Show every row again"),
    ]

    def __init__(self, target: Filterable) -> None:
        """Remember ``target``'s rows (or options) to filter them."""
        super().__init__(placeholder="Filter · Enter keeps it · Esc clears it", compact=True)
        self.target = target
        self.rows: list[tuple[str, list[Any]]] = []
        self.options: list[Option] = []
        if isinstance(target, DataTable):
            for row in target.ordered_rows:
                self.rows.append((str(row.key.value), list(target.get_row(row.key))))
        else:
            self.options = [target.get_option_at_index(i) for i in range(target.option_count)]

    def show_matching(self, text: str) -> int:
        """Show only the rows containing ``text`` (any case, any column); how many are shown."""
        needle = text.strip().lower()
        target = self.target
        if isinstance(target, DataTable):
            target.clear()
            shown = [(k, cells) for k, cells in self.rows if needle in " ".join(map(_plain, cells)).lower()]
            for key, cells in shown:
                target.add_row(*cells, key=key)
            return len(shown)
        target.clear_options()
        matching = [option for option in self.options if needle in _plain(option.prompt).lower()]
        target.add_options(matching)
        if matching:
            target.highlighted = 0
        return len(matching)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.show_matching(event.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.target.focus()
        if not self.value.strip():
            self.remove()

    def action_clear_filter(self) -> None:
        """Every row back, the list focused, the line gone."""
        self.show_matching("")
        self.target.focus()
        self.remove()

    def on_blur(self, event: events.Blur) -> None:
        """An empty filter line that lost focus has no reason to stay."""
        if not self.value.strip():
            self.remove()
