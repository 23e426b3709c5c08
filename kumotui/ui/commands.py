"""The command palette's commands: every key of the screen (and the app) that applies now."""

from __future__ import annotations

from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode


class ScreenCommands(Provider):
    """Offers each of the screen's bindings whose action is enabled now, then the app's.

    The palette and the footer ask the same ``check_action``, so the palette
    never offers "Apply" without pending changes; unlike the footer it also
    lists the keys hidden there to save room (re-read, details). The app's
    own commands (switching to the benchmark, runs or tuning screen) follow
    the screen's, as ``app.``-namespaced actions.
    """

    def _commands(self) -> list[tuple[str, str, str]]:
        """(title, help, action) for every enabled binding of the calling screen, then of the app."""
        found: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        for node, prefix in ((self.screen, ""), (self.app, "app.")):
            for _key, binding in node._bindings:
                if not self._offered(node, binding, seen):
                    continue
                seen.add(binding.action)
                key = self.app.get_key_display(binding)
                found.append((binding.description, f"{binding.tooltip} (key: {key})", prefix + binding.action))
        return found

    @staticmethod
    def _offered(node: DOMNode, binding: Binding, seen: set[str]) -> bool:
        """Whether ``binding`` is one of kumotui's own commands and enabled now."""
        # Only kumotui's commands (they carry an id); Textual's focus, copy
        # and palette keys are not what an operator searches for.
        if binding.id is None or binding.action in seen or not binding.description:
            return False
        if binding.action == "command_palette":
            return False
        return node.check_action(binding.action, ()) is True

    async def discover(self) -> Hits:
        """Every enabled command, before anything is typed."""
        for title, help_text, action in self._commands():
            yield DiscoveryHit(title, partial(self.screen.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        """Enabled commands matching ``query`` by title or help text."""
        matcher = self.matcher(query)
        for title, help_text, action in self._commands():
            score = max(matcher.match(title), matcher.match(help_text) * 0.5)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(title), partial(self.screen.run_action, action), text=title, help=help_text
                )


TuningCommands = ScreenCommands
"""The tuning screen's provider under its first name (the same commands)."""
