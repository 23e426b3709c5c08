"""Benchmark backends other than kumotui's own engines: KumoMTA and Postfix.

Each backend module finds its tools, builds their command lines (argument
lists, never shell text) and parses their output into
:class:`kumotui.samples.Sample` and :class:`kumotui.samples.Summary`. They
start no processes themselves: the job model does that, locally or over
SSH, and feeds the bytes it reads to the parsers here.

This package holds what the backends share: splitting a byte stream into
lines (tools that redraw a counter use ``\\r``), stripping ANSI colour,
sizes such as ``100KB`` and a TCP readiness probe.
"""

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


def format_count(value: float) -> str:
    """A whole number with comma thousands separators, as traffic-gen prints them."""
    return f"{round(value):,}"


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


def split_host_port(target: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or ``v6`` into host and port.

    Raises:
        ValueError: the port is not a number in 1-65535.
    """
    text = target.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"'{target}': the port must be a number from 1 to 65535")
    return host, int(port_text)
