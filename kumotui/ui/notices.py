"""Turning a failed worker's exception into one clear line for a notice."""

from __future__ import annotations

from kumotui.errors import KumotuiError


def describe_error(error: BaseException | None) -> str:
    """An exception as one line: expected errors speak for themselves.

    The core's :class:`KumotuiError` messages already name the key, file or
    flag and what would be valid, so they are shown as they are; an OS error
    becomes its reason and file; anything else (a bug) shows its type and
    message, never a traceback.
    """
    if error is None:
        return "unknown error"
    if isinstance(error, KumotuiError):
        return str(error)
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    return f"{type(error).__name__}: {error}"
