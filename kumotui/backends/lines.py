"""What the backends' output readers share: byte chunks into lines, ANSI stripping,
sizes such as ``100KB`` and a TCP readiness probe."""

from __future__ import annotations

import re
import socket

from kumotui.engines import smtp_gen
from kumotui.errors import KumotuiError

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""CSI sequences: colours (``\\x1b[32m``) and line erases (``\\x1b[K``)."""


_LINE_END = re.compile(rb"[\r\n]")


def strip_ansi(text: str) -> str:
    """Text without terminal escape sequences."""
    return ANSI_ESCAPE.sub("", text)


def parse_size(text: str | int, flag: str = "--body-size") -> int:
    """Bytes from ``100000``, ``100KB``, ``100 kB`` or ``1MiB`` (KB = 1000, KiB = 1024, as traffic-gen).

    The core's one size parser is the generator engine's own (the engines
    must stay standalone, so the core calls theirs rather than the other way
    round): a size then means the same to every backend, to the CLI and to
    the engine, within the same bounds (1 byte to 64 MiB), and a bad one is
    refused in the same words, naming ``flag``.

    Raises:
        KumotuiError: the text is not such a size, naming the flag and what would be valid.
    """
    try:
        return smtp_gen.parse_size(str(text), flag)
    except smtp_gen.StartError as error:
        raise KumotuiError(str(error)) from None


class LineSplitter:
    """Turns arbitrary byte chunks into complete lines.

    A pipe read can end anywhere: inside a line, between ``\\r`` and
    ``\\n``, or inside a multi-byte UTF-8 character. Lines end at ``\\r`` or
    ``\\n`` (``\\r\\n`` gives one empty line extra, which callers skip), so
    counters that redraw themselves with ``\\r`` and never print a newline
    still arrive as lines. Bytes are decoded only once a line is complete,
    so a character split across reads decodes whole.
    """

    def __init__(self, max_line: int = 65536) -> None:
        """Keep at most ``max_line`` bytes of an unfinished line (a bound, not a limit on output)."""
        self._pending = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[str]:
        """The lines completed by ``data``, decoded, without their terminators."""
        *complete, rest = _LINE_END.split(bytes(self._pending) + data)
        self._pending = bytearray(rest[-self._max_line :])
        return [line.decode("utf-8", "replace") for line in complete]

    def peek(self) -> str:
        """The unterminated line so far, decoded (a counter line waits here until the next redraw)."""
        return self._pending.decode("utf-8", "replace")

    def flush(self) -> list[str]:
        """The unterminated rest once the stream has ended (a last progress line)."""
        rest = self._pending.decode("utf-8", "replace")
        self._pending.clear()
        return [rest] if rest else []


def tcp_accepts(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port.

    smtp-sink prints nothing when it is ready, so readiness is a connect.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
