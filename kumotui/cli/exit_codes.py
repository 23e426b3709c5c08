"""The exit statuses ``kumotui`` promises scripts (the README's table, in code)."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """What a ``kumotui`` command's exit status means."""

    OK = 0
    """Success; for ``check``, every parameter passes."""
    NOT_OK = 1
    """The command ran and the answer is no: a check found problems, a benchmark
    was not ok, an apply failed (and was restored), or a confirmation was declined."""
    ERROR = 2
    """Bad input, an unreachable host, or an environment that cannot be used
    (including read-only access when writing was asked for). Nothing was changed."""
    CRASHED = 70
    """The app stopped on an error kumotui did not expect (a bug; Textual printed its traceback).
    70 is EX_SOFTWARE, "internal software error", from sysexits.h."""
    INTERRUPTED = 130
    """Stopped by Ctrl+C or SIGTERM (a benchmark keeps its partial record)."""
    BROKEN_PIPE = 141
    """The reader of stdout went away (``kumotui check | head -1``): stopped quietly,
    with the status a shell shows for a command ended by SIGPIPE (128 + 13)."""
