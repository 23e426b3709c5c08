"""The table of a profile's parameters: what each is, should be, and will become."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from kumotui.text.escape import printable
from kumotui.tuning.plan import PlanRow
from kumotui.tuning.values import STATUS_ICON, Status, normalize

ELLIPSIS = "…"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "Parameter"),
    ("current", "Current"),
    ("recommended", "Recommended"),
    ("status", "Status"),
    ("boot", "Boot"),
    ("proposed", "Proposed"),
)
"""Column keys and headers, left to right."""

_MIN_WIDTH = {"key": 16, "current": 5, "recommended": 5, "status": 4, "boot": 4, "proposed": 5}
_SOFT_MIN = 11
"""Value columns shrink to this before the key column gives up anything:
a value of up to 11 characters (``32768 60999``) stays whole."""


def ellipsize(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` cells, marking the cut with an ellipsis."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + ELLIPSIS


def field_segments(value: str, reference: str) -> list[tuple[str, bool]]:
    """A value's fields, each marked when it differs from the same field of ``reference``.

    Only values of several fields (``tcp_rmem``: min default max) are
    marked, and only against a reference of as many fields.
    """
    fields, others = value.split(), reference.split()
    if len(fields) < 2 or len(fields) != len(others):
        return [(value, False)]
    return [(field, field != other) for field, other in zip(fields, others, strict=True)]


def fit_fields(segments: list[tuple[str, bool]], width: int) -> list[tuple[str, bool]]:
    """Segments shortened to ``width`` cells so the differing fields stay visible.

    Fields that match the reference give way first (each run of them
    becomes one ``…``); only then is the end cut, with an ellipsis.
    """

    def length(parts: list[tuple[str, bool]]) -> int:
        return len(" ".join(text for text, _ in parts))

    if length(segments) <= width or not any(differs for _, differs in segments):
        return segments if length(segments) <= width else [(ellipsize(" ".join(t for t, _ in segments), width), False)]
    kept: list[tuple[str, bool]] = []
    for text, differs in segments:
        if differs:
            kept.append((text, True))
        elif not kept or kept[-1] != (ELLIPSIS, False):
            kept.append((ELLIPSIS, False))
    if length(kept) <= width:
        return kept
    return [(ellipsize(" ".join(t for t, _ in kept), width), False)]


def fit_widths(natural: dict[str, int], available: int) -> dict[str, int]:
    """Column widths that fit ``available`` cells, shrinking the widest first.

    Value columns give way down to a width that keeps ordinary values whole
    before the key column shrinks, because a truncated key is harder to
    recognise than a truncated 20-digit number; the status column never
    shrinks below its longest word.
    """
    widths = dict(natural)

    def shrink(names: Sequence[str], floor: dict[str, int]) -> None:
        while sum(widths.values()) > available:
            candidates = [n for n in names if widths[n] > floor[n]]
            if not candidates:
                return
            widest = max(candidates, key=lambda n: widths[n])
            widths[widest] -= 1

    values = ("current", "recommended", "proposed")
    shrink(values, {n: max(_SOFT_MIN, _MIN_WIDTH[n]) for n in values})
    shrink(("key",), _MIN_WIDTH)
    shrink(values, _MIN_WIDTH)
    return widths


class _KeyCell(Text):
    """A key cell that remembers the full key, so rows sort by profile order."""

    def __init__(self, key: str, shown: str, rank: int) -> None:
        super().__init__(shown, no_wrap=True, end="")
        self.full_key = key
        self.rank = rank


def _differs(new: Text, old: Text) -> bool:
    """Whether a cell must be redrawn (text, style, or a key cell's sort rank)."""
    if new.plain != old.plain or new.style != old.style:
        return True
    return isinstance(new, _KeyCell) and isinstance(old, _KeyCell) and new.rank != old.rank


def _rank_of(cell: object) -> int:
    """The sort key of a key cell."""
    return cell.rank if isinstance(cell, _KeyCell) else 0


class ParamTable(DataTable[Text]):
    """The profile's parameters, problems first, one keyed row per sysctl key.

    Rows are keyed by the sysctl key and updated in place: a re-read changes
    only the cells whose text changed, so the cursor stays on the parameter
    the operator was looking at. Long values are cut to the column with an
    ellipsis; the details panel shows them whole.

    | Class | Description |
    | :- | :- |
    | `param-table--ok` | A status that passes. |
    | `param-table--bad` | A status that needs a change. |
    | `param-table--unknown` | A key that is missing or unreadable. |
    | `param-table--change` | A value apply would write. |
    | `param-table--muted` | Nothing to do, or taken out of the plan. |
    | `param-table--field` | The field of a multi-field value that differs. |
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "param-table--ok",
        "param-table--bad",
        "param-table--unknown",
        "param-table--change",
        "param-table--muted",
        "param-table--field",
    }

    DEFAULT_CSS = """
    ParamTable {
        height: auto;
        max-height: 100%;
        & > .param-table--ok { color: $text-success; }
        & > .param-table--bad { color: $text-error; text-style: bold; }
        & > .param-table--unknown { color: $text-warning; }
        & > .param-table--change { color: $text-accent; text-style: bold; }
        & > .param-table--muted { color: $text-muted; }
        & > .param-table--field { text-style: bold underline; }
    }
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create an empty table with a row cursor; rows arrive with ``show``."""
        super().__init__(name=name, id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self._rows: dict[str, PlanRow] = {}
        self._order: list[str] = []
        self._ranks: dict[str, int] = {}
        self._widths: dict[str, int] = {}
        self._drawn_widths: tuple[int, ...] = ()
        self.boot_marks: dict[str, str] = {}
        """Per key: ✔ the value survives a reboot after apply, ⚠ a later file overrides it, · not persisted."""

    def on_mount(self) -> None:
        """Add the columns; their widths follow the content and the table's width."""
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def rows_shown(self) -> list[PlanRow]:
        """The rows in display order."""
        return [self._rows[key] for key in self._order]

    @property
    def highlighted(self) -> PlanRow | None:
        """The row under the cursor, if any."""
        if not self._order or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return self._rows.get(str(row_key.value))

    def show(self, rows: Sequence[PlanRow], boot: dict[str, str] | None = None) -> None:
        """Make the table show ``rows``: drop stale rows, update changed cells, add new ones.

        The order is problems first, then profile order; the cursor stays on
        the same key when that key is still shown.
        """
        if boot is not None:
            self.boot_marks = boot
        current = self.highlighted
        keep_key = current.key if current is not None else None
        ordered = [row for _, row in sorted(enumerate(rows), key=lambda p: (p[1].rank, p[0]))]
        ranks = {row.key: index for index, row in enumerate(ordered)}
        widths = self._fit(ordered)
        refit = widths != self._widths
        self._widths = widths
        with self.app.batch_update():
            if refit:
                self._size_columns(widths)
            for key in [k for k in self._rows if k not in ranks]:
                self.remove_row(key)
                del self._rows[key]
            for row in ordered:
                cells = self._cells(row, ranks[row.key])
                old = self._rows.get(row.key)
                if old is None:
                    self.add_row(*cells.values(), key=row.key)
                else:
                    before = self._cells(old, self._ranks[row.key])
                    for column, cell in cells.items():
                        if refit or _differs(cell, before[column]):
                            self.update_cell(row.key, column, cell, update_width=True)
                self._rows[row.key] = row
            self._ranks = ranks
            if self._order_in_table() != [row.key for row in ordered]:
                self.sort("key", key=_rank_of)
            self._order = [row.key for row in ordered]
        if keep_key is not None and keep_key in ranks:
            self.move_cursor(row=self.get_row_index(keep_key))

    def _size_columns(self, widths: dict[str, int]) -> None:
        """Give each column its fitted width, the header cut with an ellipsis if it must be.

        DataTable's automatic widths only ever grow (a header or a value seen
        once keeps its column that wide), so on a narrow terminal the table
        would scroll sideways instead of fitting.
        """
        for key, label in COLUMNS:
            column = self.columns.get(ColumnKey(key))
            if column is None:
                continue
            column.auto_width = False
            column.width = widths[key]
            column.label = Text(ellipsize(label, widths[key]))
        self._require_update_dimensions = True

    def refit(self) -> None:
        """Fit the columns again after the table's width changed."""
        if self._rows:
            self.show(self.rows_shown)

    def _order_in_table(self) -> list[str]:
        """Row keys in the order the table currently shows them."""
        return [str(row.key.value) for row in self.ordered_rows]

    def _natural_widths(self, rows: Sequence[PlanRow]) -> dict[str, int]:
        """How wide each column would be with nothing cut."""
        natural = {key: len(label) for key, label in COLUMNS}
        for row in rows:
            for column, text in self._texts(row).items():
                natural[column] = max(natural[column], len(text))
        return natural

    def _fit(self, rows: Sequence[PlanRow]) -> dict[str, int]:
        """Column widths for the table's current width (cell padding excluded)."""
        width = (self.size.width or self.app.size.width) - self.scrollbar_size_vertical
        padding = 2 * self.cell_padding * len(COLUMNS)
        return fit_widths(self._natural_widths(rows), max(width - padding, 0))

    def _texts(self, row: PlanRow) -> dict[str, str]:
        """The full text of each cell, before fitting."""
        finding = row.finding
        status = finding.status
        if row.write is None:
            proposed = "—"
        elif not row.included:
            proposed = "excluded"
        else:
            proposed = ("✎ " if row.edited else "") + row.write
        current = normalize(finding.current) if finding.current is not None else "—"
        return {  # values read from the host (or typed) are data: control characters escaped
            "key": printable(finding.key, keep=""),
            "current": printable(current, keep=""),
            "recommended": printable(finding.recommended, keep=""),
            "status": f"{STATUS_ICON[status]} {status}",
            "boot": self.boot_marks.get(row.key, ""),
            "proposed": printable(proposed, keep=""),
        }

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def _cells(self, row: PlanRow, rank: int) -> dict[str, Text]:
        """The styled, fitted cells of one row."""
        texts = self._texts(row)
        widths = self._widths
        status = row.finding.status
        if status is Status.OK:
            status_style = self._style("param-table--ok")
        elif row.finding.current is None:
            status_style = self._style("param-table--unknown")
        else:
            status_style = self._style("param-table--bad")
        if row.write is not None and row.included:
            proposed_style = self._style("param-table--change")
        else:
            proposed_style = self._style("param-table--muted")
        cells: dict[str, Text] = {}
        references = {"current": texts["recommended"], "recommended": texts["current"], "proposed": texts["current"]}
        for column, text in texts.items():
            width = widths.get(column, len(text))
            shown = ellipsize(text, width)
            if column in references and row.finding.status is not Status.OK:
                style = proposed_style if column == "proposed" else Style()
                cells[column] = self._vector_cell(fit_fields(field_segments(text, references[column]), width), style)
                continue
            if column == "key":
                cells[column] = _KeyCell(row.key, shown, rank)
            elif column == "status":
                cells[column] = Text(shown, style=status_style, no_wrap=True, end="")
            elif column == "proposed":
                cells[column] = Text(shown, style=proposed_style, no_wrap=True, end="")
            else:
                cells[column] = Text(shown, no_wrap=True, end="")
        return cells

    def _vector_cell(self, segments: list[tuple[str, bool]], style: Style) -> Text:
        """A value cell with the differing fields marked (bold, underlined)."""
        cell = Text(no_wrap=True, end="", style=style)
        field_style = self._style("param-table--field")
        for index, (text, differs) in enumerate(segments):
            if index:
                cell.append(" ")
            cell.append(text, style=field_style if differs else None)
        return cell

    def on_idle(self) -> None:
        """Redraw everything once the columns settle on new widths.

        DataTable measures auto-width columns when idle but keys its line
        caches on an update counter, not on widths; a line drawn between
        ``add_row`` and that measurement (the header, typically) would keep
        its old widths until something else changed.
        """
        widths = tuple(column.get_render_width(self) for column in self.ordered_columns)
        if widths != self._drawn_widths:
            self._drawn_widths = widths
            self.notify_style_update()

    def on_resize(self, event: events.Resize) -> None:
        """Refit the columns to the new width, keeping every row."""
        self.refit()

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        """A scrollbar takes columns from the table: refit once it is drawn."""
        self.call_after_refresh(self.refit)
