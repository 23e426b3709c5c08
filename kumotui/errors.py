"""Errors that reach users as a clear message instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterable


class KumotuiError(Exception):
    """An expected failure (bad input, unreachable host, refused write).

    The CLI prints ``str(error)`` and exits 2; the UI shows it in a notice.
    Messages name the file, line, key or flag at fault and what would be valid.
    """


class ProfileError(KumotuiError):
    """A profile file that cannot be used, with its file and line."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {reason}")


def require(checks: Iterable[tuple[bool, str]]) -> None:
    """Raise :class:`KumotuiError` with the message of the first check that is False.

    Lets a validator read as a table of (condition, what would be valid).
    """
    for ok, message in checks:
        if not ok:
            raise KumotuiError(message)
