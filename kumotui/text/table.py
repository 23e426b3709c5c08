"""Plain-text tables and colour for the CLI (no Rich: the core stays light)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from kumotui.text.escape import printable

_ANSI = {"green": "32", "red": "31", "yellow": "33", "dim": "2", "bold": "1"}


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set."""
    return stream.isatty() and "NO_COLOR" not in os.environ


def paint(text: str, colour: str, enabled: bool) -> str:
    """Wrap text in an ANSI colour when enabled."""
    return f"\x1b[{_ANSI[colour]}m{text}\x1b[0m" if enabled else text


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    colours: Sequence[Sequence[str | None]] | None = None,
    stream: TextIO = sys.stdout,
) -> str:
    """Left-aligned columns separated by two spaces; colours per cell.

    Cells are data (values read from a host, journal fields): control
    characters in them are shown escaped (:func:`~kumotui.text.escape.printable`),
    never sent to the terminal.
    """
    cells = [[printable(cell).expandtabs(8) for cell in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    colour_on = use_colour(stream)
    lines = ["  ".join(paint(h.ljust(w), "bold", colour_on) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r, row in enumerate(cells):
        out = []
        for i, cell in enumerate(row):
            colour = colours[r][i] if colours else None
            padded = cell.ljust(widths[i])
            out.append(paint(padded, colour, colour_on) if colour else padded)
        lines.append("  ".join(out).rstrip())
    return "\n".join(lines)
