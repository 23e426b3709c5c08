"""The one-line header: which machine, which profile, and what kumotui may do there."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from kumotui.hosts import HostFacts
from kumotui.text.escape import printable
from kumotui.text.format import format_bytes


class HostHeader(Widget):
    """Host name, kernel, CPUs, RAM, the active profile and the privilege mode.

    The privilege mode is the first thing an operator needs before pressing a
    key that writes: ``root`` and ``sudo`` write, ``read-only`` only shows the
    commands to run by hand. The host name is shortened with an ellipsis when
    the line would not fit; the mode never is.
    """

    DEFAULT_CSS = """
    HostHeader {
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
    }
    """

    facts: reactive[HostFacts | None] = reactive(None)
    """What the machine is; None until the facts have been read."""
    profile_name: reactive[str] = reactive("")
    """The profile the table judges by."""
    mode: reactive[str] = reactive("")
    """``root``, ``sudo`` or ``read-only``; empty until detected."""

    def render(self) -> Content:
        """The header line, fitted to the current width."""
        width = self.size.width
        facts = self.facts
        tail: list[Content] = []
        if self.profile_name:
            tail.append(Content.from_markup("profile [b]$name[/b]", name=self.profile_name))
        if self.mode:
            style = "$success" if self.mode == "read-only" else "$warning"
            tail.append(Content.from_markup(f"[{style} b]$mode[/]", mode=self.mode.replace("-", "\u2011")))
        right = Content(" │ ").join(tail)
        if facts is None:
            left = Content.from_markup("[$text-muted]reading host facts…[/]")
        else:
            room = width - 1 - (right.cell_length + 3 if tail else 0)
            kernel = printable(facts.kernel, keep="")
            memory = format_bytes(facts.memory_bytes)
            # Shed words before cutting the host name: it is what tells hosts apart.
            for details in (
                f" · Linux {kernel} · {facts.cpus} CPUs · {memory} RAM",
                f" · {kernel} · {facts.cpus} CPUs · {memory}",
                f" · {kernel} · {facts.cpus}c · {memory}",
            ):
                if len(printable(facts.hostname, keep="")) + len(details) <= room:
                    break
            host = printable(facts.hostname, keep="")  # a name read from the host: data, shown escaped
            if len(host) + len(details) > room:
                host = host[: max(room - len(details) - 1, 4)] + "…"
            left = Content.from_markup("[b]$host[/b]$details", host=host, details=details)
        line = Content(" ") + left
        if tail:
            line = line + Content(" │ ") + right
        return line
