"""The engines' pure parts, in-process: what they import (they ship alone), the
generator's sizes, address safety and latency histograms, and the sink's replies
to every command shape.

The engines as real processes are in ``tests/integration/`` (test_sink, test_gen, test_worker_pool).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from kumotui.engines import smtp_common, smtp_gen, smtp_sink

ENGINES = Path(smtp_common.__file__).parent
SHIPPED = sorted(ENGINES.glob("smtp_*.py"))
"""What ``kumotui.jobs.SshLauncher`` copies to a remote host (test_remote_bench runs the copies)."""


def _imported_modules(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports, relative ones included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.module is not None:
                names.add(node.module.split(".")[0])
            elif node.level:  # from . import NAME
                names.update(alias.name for alias in node.names)
    return names


def test_shipped_engines_import_only_the_stdlib_uvloop_and_each_other() -> None:
    """A host gets only the ``smtp_*.py`` files: anything else they import
    (kumotui, a sibling under another name) would fail there, not here."""
    shipped = {path.stem for path in SHIPPED}
    assert {"smtp_sink", "smtp_gen", "smtp_common"} <= shipped
    for path in SHIPPED:
        foreign = {
            name
            for name in _imported_modules(path)
            if name not in sys.stdlib_module_names and name != "uvloop" and name not in shipped
        }
        assert not foreign, f"{path.name} imports {sorted(foreign)}, which is not shipped"


def test_both_engines_use_the_one_common_module() -> None:
    """One StartError, so each engine's ``main`` catches what the pool raises."""
    assert vars(smtp_sink)["common"] is smtp_common and vars(smtp_gen)["common"] is smtp_common
    assert smtp_sink.StartError is smtp_gen.StartError is smtp_common.StartError


def test_merge_states_adds_counters_and_keeps_maxima() -> None:
    merged = smtp_common.merge_states(
        [
            {"sent": 2, "by": {"4xx": 1}, "hist": [1, 0], "max_latency_us": 5, "loop": "uvloop"},
            {"sent": 3, "by": {"4xx": 2, "5xx": 1}, "hist": [0, 4], "max_latency_us": 9, "loop": "asyncio"},
        ]
    )
    assert merged == {"sent": 5, "by": {"4xx": 3, "5xx": 1}, "hist": [1, 4], "max_latency_us": 9, "loop": "uvloop"}


# --- the generator's pure parts --------------------------------------------------------


def test_a_count_is_never_cut_by_a_default_deadline() -> None:
    args = smtp_gen.build_parser().parse_args(["--target", "127.0.0.1:1", "--messages", "5"])
    assert smtp_gen.config_from(args).duration is None


@pytest.mark.parametrize(
    ("text", "size"), [("1000", 1000), ("1KB", 1000), ("100KB", 100_000), ("1MiB", 1 << 20), ("2kib", 2048)]
)
def test_sizes(text: str, size: int) -> None:
    assert smtp_gen.parse_size(text) == size
    message = smtp_gen.build_message(size, "a@example.com", "example.com")
    if size >= 1000:
        assert len(message) == size
    assert message.endswith(b"\r\n") and b"\r\n." not in message


def test_address_safety() -> None:
    for ok in ("127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "192.168.1.1", "172.16.5.5", "fd00::1"):
        assert smtp_gen.address_allowed(ok), ok
    for bad in ("8.8.8.8", "192.0.2.1", "2001:db8::1", "0.0.0.0", "1.1.1.1"):
        assert not smtp_gen.address_allowed(bad), bad


def test_histogram_merge_is_exact_addition() -> None:
    a, b = smtp_gen.Stats(), smtp_gen.Stats()
    for ms in (1, 2, 3, 50):
        a.add_latency(ms / 1000)
    for ms in (4, 5, 200):
        b.add_latency(ms / 1000)
    merged = smtp_common.merge_states([a.as_dict(), b.as_dict()])
    assert merged["hist"] == [x + y for x, y in zip(a.hist, b.hist, strict=True)]
    assert merged["max_latency_us"] == 200_000
    lat = smtp_gen.latency_summary(merged)
    assert lat["max"] == 200.0 and 3.5 < lat["p50"] < 4.6


# --- the sink's replies, without a socket ----------------------------------------------


class _Transport:
    """Just enough of a transport to drive ``SinkProtocol`` in-process."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True


SHAPES = [
    (b"MAIL FROM:<a@example.com>", 503),  # before EHLO
    (b"EHLO", 501),
    (b"ehlo client.test", 250),
    (b"MAIL FROM:<a@example.com> SIZE=100", 250),
    (b"MAIL FROM:<a@example.com>", 503),  # nested
    (b"RSET", 250),
    (b"mail from:<a@example.com>", 250),  # lower case: general path
    (b"RSET", 250),
    (b"Mail From: <a@example.com>", 250),  # mixed case, space after the colon
    (b"RSET", 250),
    (b"MAIL FROM:<a<b@example.com>", 501),
    (b"MAIL FROM:<a@example.com>x", 501),
    (b"MAIL FROM:<a@example.com> SIZE=999999999999", 552),
    (b"MAIL FROM:<a@example.com> BODY=8BITMIME", 250),
    (b"RCPT TO:<>", 501),
    (b"RCPT TO:<c@failover.example.com>", 250),  # "fail" in the domain asks for nothing
    (b"RCPT TO:<TempFail@example.com>", 451),
    (b"RCPT TO:<permfail@example.com>", 550),
    (b"RCPT TO:<c@example.com> NOTIFY=NEVER", 555),
    (b"RCPT TO:<c<d@example.com>", 501),
    (b"rcpt to:<c@example.com>", 250),
    (b"RCPT TO:c@example.com", 250),
    (b"DATA now", 501),
    (b"MAIL\tFROM:<a@example.com>", 500),
    (b"NOOP\t", 500),
    (b"noop hello", 250),
    (b"STARTTLS", 502),
    (b"RSET", 250),
    (b"MAIL FROM:<>", 250),
    (b"RCPT TO:<c@example.com>", 250),
    (b"DATA", 354),
]


def test_command_shapes_answered_alike_one_per_read_and_pipelined() -> None:
    """The short paths (one command per read; canonical MAIL and RCPT) and the
    general loop (everything in one read) give the same replies."""
    from kumotui.engines import smtp_sink

    args = smtp_sink.build_parser().parse_args(["--max-message-size", "10000"])

    def replies(chunks: list[bytes]) -> list[int]:
        session = smtp_sink.SinkProtocol(smtp_sink.SinkServer(smtp_sink.config_from(args)))
        transport = _Transport()
        session.connection_made(transport)  # type: ignore[arg-type]
        for chunk in chunks:
            session.data_received(chunk)
        text = b"".join(transport.writes).decode()
        return [int(line[:3]) for line in text.splitlines() if line[3:4] == " "][1:]  # without the banner

    expected = [code for _, code in SHAPES]
    assert replies([line + b"\r\n" for line, _ in SHAPES]) == expected
    assert replies([b"".join(line + b"\r\n" for line, _ in SHAPES)]) == expected


def test_giving_up_on_an_endless_message_keeps_every_reply_due_in_order() -> None:
    """Pipelined commands and content far over the limit in one read: their replies, then the 552, then close."""
    from kumotui.engines import smtp_sink

    args = smtp_sink.build_parser().parse_args(["--max-message-size", "1000"])
    session = smtp_sink.SinkProtocol(smtp_sink.SinkServer(smtp_sink.config_from(args)))
    transport = _Transport()
    session.connection_made(transport)  # type: ignore[arg-type]
    envelope = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
    session.data_received(b"EHLO c.test\r\nNOOP\r\n" + envelope + b"y" * 100_000)
    text = b"".join(transport.writes).decode()
    codes = [int(line[:3]) for line in text.splitlines() if line[3:4] == " "][1:]
    assert codes == [250, 250, 250, 250, 354, 552]
    assert transport.closed
    assert session.stats.refusals == {"data 552": 1}


def test_every_body_size_is_the_size_sent() -> None:
    """``--body-size N`` makes exactly N bytes of message, headers dropped only when they cannot fit."""
    from kumotui.engines.smtp_gen import build_message

    for size in [*range(2, 3000), 99_999, 100_000, 1_000_000]:
        message = build_message(size, "bench@kumotui.example", "example.com")
        assert len(message) == size, size
        assert message.endswith(b"\r\n") and not message.startswith(b".") and b"\r\n." not in message
    assert build_message(325, "bench@kumotui.example", "example.com").startswith(b"From: ")
