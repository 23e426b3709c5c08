"""The question before a run redirects this host's outbound port 25 to the sink: the exact rule, then y or n.

Why its own dialog: the general :class:`~.confirm.ConfirmScreen` takes
Enter (and ``q``) as yes, which suits "quit?"; a firewall change is made
only on an explicit ``y``, so a key pressed for the form cannot write it.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from kumotui.tuning.redirect import TRADE_OFF_SHORT, Redirect
from kumotui.ui.modals.confirm import ConfirmScreen

TITLE = "Redirect this host's outbound port 25 to the sink?"


class RedirectConfirmScreen(ConfirmScreen, inherit_bindings=False):
    """The rule kumotui is about to write (the core's own text and commands) and the trade-off; y writes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Write it", id="redirect-yes", tooltip="Write the rule and start the run"),
        Binding("escape,n", "answer(False)", "No", id="redirect-no", tooltip="Write nothing; the run does not start"),
    ]

    def __init__(self, rule: Redirect, on: str = "") -> None:
        """Ask about ``rule`` on host ``on``, exactly as the run will write it."""
        super().__init__(TITLE, f"{rule.plan_text(on)}\n{TRADE_OFF_SHORT}", id="redirect-confirm")
        self.rule = rule
