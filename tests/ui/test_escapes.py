"""Host names and values read from a host reach the terminal escaped, never raw.

A simulated tree stands in for a hostile or broken host: its
``kernel.hostname`` and some values carry escape sequences that would retitle
the terminal, clear it or paint it, a C1 CSI, a carriage return and a
right-to-left override. The check is on what the app really sends to the
terminal: every segment of the screen's rendered lines (the compositor's
output, what the driver writes). Before, Textual passed ESC through as it was.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from textual.app import App

from kumotui.tuning.simulate import MODERN_KERNEL, make_simulated_host
from kumotui.ui.app import make_app
from kumotui.ui.widgets.param_table import ParamTable
from tests.support.pilot import started
from tests.support.waits import settle

HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b[31m\x9b1m\r\u202e"
RAW = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def raw_controls(app: App[Any]) -> list[str]:
    """Control characters in what the screen would send to the terminal, with the line they are on."""
    found = []
    for strip in app.screen._compositor.render_strips():
        line = "".join(segment.text for segment in strip)
        if RAW.search(line):
            found.append(repr(line.strip()))
    return found


async def test_hostile_host_name_and_values_are_shown_escaped(tmp_path: Path) -> None:
    values = {
        **MODERN_KERNEL,
        "kernel.hostname": f"mta{HOSTILE}",
        "kernel.osrelease": f"6.1{HOSTILE}",
        "net.core.somaxconn": f"4096{HOSTILE}",
    }
    settings = make_simulated_host(tmp_path / "host", values)
    app = make_app(settings)  # facts read from the tree: the header shows its kernel.hostname
    async with started(app, size=(160, 40)) as pilot:
        assert raw_controls(app) == []
        assert "mta\\x1b]0;owned" in "".join(s.text for strip in app.screen._compositor.render_strips() for s in strip)
        table = app.screen.query_one(ParamTable)
        table.move_cursor(row=table.get_row_index("net.core.somaxconn"))  # the details panel shows it in full
        await settle(pilot)
        assert raw_controls(app) == []
        await pilot.press("a")  # the apply preview lists current values
        await settle(pilot)
        assert raw_controls(app) == []
