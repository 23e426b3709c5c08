"""The kumotui app and the one factory that builds it.

The CLI, the tests and the screenshot script all call :func:`make_app`, so
what the tests see is what an operator runs.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from kumotui.hosts import HostFacts
from kumotui.privilege import Privilege
from kumotui.settings import Settings
from kumotui.ui.screens.tuning import TuningScreen


class KumotuiApp(App[None]):
    """Tune a KumoMTA host's kernel: see what is off, fix it, undo it."""

    CSS_PATH = "kumotui.tcss"
    TITLE = "kumotui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        # Replaces Textual's own palette binding only to say "More" in the
        # footer: the palette lists every command, the footer only some.
        Binding(
            "ctrl+p",
            "command_palette",
            "More",
            id="command-palette",
            show=False,
            priority=True,
            tooltip="Search every command, including those not shown here",
        ),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        host_facts: HostFacts | None = None,
        privilege: Privilege | None = None,
    ) -> None:
        """Create the app; see :func:`make_app` for the arguments."""
        super().__init__()
        self.settings = settings
        self.host_facts = host_facts
        self.privilege = privilege

    def on_mount(self) -> None:
        """Open the tuning screen."""
        self.push_screen(TuningScreen(self.settings, host_facts=self.host_facts, privilege=self.privilege))


def make_app(
    settings: Settings,
    *,
    host_facts: HostFacts | None = None,
    privilege: Privilege | None = None,
) -> KumotuiApp:
    """Build the app for the CLI, the tests and the screenshot script.

    Args:
        settings: paths and the profile, as the CLI parsed them.
        host_facts: fixed facts for a deterministic header; read from the host when None.
        privilege: show this privilege mode instead of detecting it (a
            deterministic header for screenshots). Writes still go through
            the core, which checks for itself; use ``Settings.read_only``
            to test the read-only flow for real.
    """
    return KumotuiApp(settings, host_facts=host_facts, privilege=privilege)
