"""The command palette's commands: every key of the screen that applies now."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class TuningCommands(Provider):
    """Offers each of the screen's bindings whose action is enabled now.

    The palette and the footer ask the same ``check_action``, so the palette
    never offers "Apply" without pending changes; unlike the footer it also
    lists the keys hidden there to save room (re-read, details).
    """

    def _commands(self) -> list[tuple[str, str, str]]:
        """(title, help, action) for every enabled binding of the calling screen."""
        screen = self.screen
        found: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        for _key, binding in screen._bindings:
            # Only the screen's own commands (they carry an id); Textual's
            # focus and copy keys are not what an operator searches for.
            if binding.id is None or binding.action in seen or not binding.description:
                continue
            if screen.check_action(binding.action, ()) is not True:
                continue
            seen.add(binding.action)
            key = self.app.get_key_display(binding)
            found.append((binding.description, f"{binding.tooltip} (key: {key})", binding.action))
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
