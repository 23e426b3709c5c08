"""The command palette's commands: every key of the screen (and the app) that applies now."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ScreenCommands(Provider):
    """Offers each of kumotui's bindings that is enabled now: the screen's, then the app's.

    The palette and the footer ask the same ``check_action`` (through the
    screen's public ``active_bindings``), so the palette never offers "Apply"
    without pending changes; unlike the footer it also lists the keys hidden
    there to save room (re-read, details).
    """

    def _commands(self) -> list[tuple[str, str, str]]:
        """(title, help, action) for every enabled kumotui binding of the calling screen and the app."""
        found: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        for active in self.screen.active_bindings.values():
            binding = active.binding
            # Only kumotui's commands (they carry an id); Textual's focus, copy
            # and palette keys are not what an operator searches for.
            if binding.id is None or not binding.description or not active.enabled:
                continue
            if binding.action in seen or binding.action == "command_palette":
                continue
            seen.add(binding.action)
            prefix = "app." if active.node is self.app else ""
            key = self.app.get_key_display(binding)
            found.append((binding.description, f"{binding.tooltip} (key: {key})", prefix + binding.action))
        return found

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
