"""Errors as notices: a failed worker's exception in one clear line, shown the same way everywhere."""

from __future__ import annotations

from textual.widget import Widget

from kumotui.errors import KumotuiError
from kumotui.text.escape import printable


def describe_error(error: BaseException | None) -> str:
    """An exception as one line: expected errors speak for themselves.

    The core's :class:`KumotuiError` messages already name the key, file or
    flag and what would be valid, so they are shown as they are; an OS error
    becomes its reason and file; anything else (a bug) shows its type and
    message, never a traceback. Control characters are shown escaped.
    """
    return printable(_describe(error), keep="\n")  # messages quote values and hosts' own words


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    if isinstance(error, KumotuiError):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    return f"{type(error).__name__}: {error}"


def notify_error(node: Widget, error: BaseException | str | None, title: str, *, timeout: float = 12) -> None:
    """Show ``error`` (an exception, or a message already in words) as an error notice titled ``title``.

    Markup is off: messages quote paths and values such as ``[::1]:2026``; control
    characters in them (a remote host's words) are shown escaped.
    """
    message = printable(error if isinstance(error, str) else describe_error(error), keep="\n")
    node.notify(message, title=title, severity="error", timeout=timeout, markup=False)
