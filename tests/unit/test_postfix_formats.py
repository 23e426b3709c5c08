"""The Postfix backend: finding smtp-sink/smtp-source, their command lines, and
their counter output, parsed from recorded bytes.

The real tools on loopback are in ``tests/integration/test_postfix.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kumotui.backends.postfix import (
    PostfixTools,
    SmtpSinkOutput,
    SmtpSourceOutput,
    find_postfix_tools,
    smtp_sink_command,
    smtp_source_command,
)
from kumotui.backends.samples import Sample
from kumotui.errors import KumotuiError
from tests.support.streams import chunked

# Bytes as Postfix 3.7's tools wrote them (observed running them; see the module docstring of
# kumotui.backends.postfix): smtp-source -c prints "N\r" per message and "\n" when done;
# smtp-sink -c prints "sess=N quit=N mesg=N\r" at every message end, QUIT and disconnect.
SOURCE_STDOUT = b"".join(f"{n}\r".encode() for n in range(1, 21)) + b"\n"
SINK_STDOUT = (
    b"sess=0 quit=0 mesg=1\rsess=0 quit=0 mesg=2\rsess=0 quit=0 mesg=3\rsess=1 quit=1 mesg=3\r"
    b"sess=1 quit=1 mesg=4\rsess=2 quit=2 mesg=4\rsess=3 quit=3 mesg=4\r"
)
SOURCE_FATAL = b"/usr/sbin/smtp-source: fatal: connect: Connection refused\n"
SOURCE_REJECTED = b"/usr/sbin/smtp-source: warning: data rejected: 450 4.3.0 Error: command failed\n"
SINK_BIND_FAILED = b"/usr/sbin/smtp-sink: fatal: bind 127.0.0.1 port 2026: Address already in use\n"

FAKE = PostfixTools(Path("/p/smtp-sink"), Path("/p/smtp-source"))


# --- finding the tools ---------------------------------------------------------------


def fake_tools(sbin: Path) -> None:
    sbin.mkdir(parents=True)
    for name in ("smtp-sink", "smtp-source"):
        (sbin / name).write_text("#!/bin/sh\n")
        (sbin / name).chmod(0o755)


def test_find_in_an_extracted_package_sets_the_library_path(tmp_path: Path) -> None:
    fake_tools(tmp_path / "usr" / "sbin")
    libs = tmp_path / "usr" / "lib" / "postfix"
    libs.mkdir(parents=True)
    (libs / "libpostfix-util.so").write_bytes(b"")
    tools = find_postfix_tools(env={"KUMOTUI_POSTFIX_DIR": str(tmp_path), "PATH": ""})
    assert tools.smtp_sink == tmp_path / "usr" / "sbin" / "smtp-sink"
    assert tools.library_dir == libs
    assert tools.environ({"LD_LIBRARY_PATH": "/x"})["LD_LIBRARY_PATH"] == f"{libs}:/x"
    assert tools.environ({})["LD_LIBRARY_PATH"] == str(libs)


def test_find_in_a_given_directory_and_on_path(tmp_path: Path) -> None:
    fake_tools(tmp_path / "bin")
    given = find_postfix_tools(tmp_path / "bin", env={})
    assert given.smtp_source == tmp_path / "bin" / "smtp-source" and given.library_dir is None
    assert given.environ({"A": "1"}) == {"A": "1"}
    on_path = find_postfix_tools(env={"PATH": f"/nonexistent:{tmp_path / 'bin'}"})
    assert on_path.smtp_sink == tmp_path / "bin" / "smtp-sink"


def test_missing_tools_say_where_they_were_looked_for(tmp_path: Path) -> None:
    with pytest.raises(KumotuiError, match=rf"not found in {tmp_path} \(\$KUMOTUI_POSTFIX_DIR\)"):
        find_postfix_tools(env={"KUMOTUI_POSTFIX_DIR": str(tmp_path)})
    with pytest.raises(KumotuiError, match=r"given directory"):
        find_postfix_tools(tmp_path, env={})


# --- command lines -------------------------------------------------------------------


def test_smtp_sink_command() -> None:
    assert smtp_sink_command(FAKE, "127.0.0.1:2026", concurrency=10, as_root=False) == [
        "/p/smtp-sink",
        "-c",
        "-m",
        "256",
        "127.0.0.1:2026",
        "1024",
    ]
    root = smtp_sink_command(FAKE, "[::1]:2500", concurrency=5000, as_root=True, user="postfix")
    assert root == ["/p/smtp-sink", "-c", "-m", "5000", "-u", "postfix", "[::1]:2500", "5000"]
    with pytest.raises(KumotuiError, match="at least 1"):
        smtp_sink_command(FAKE, concurrency=0)


def test_smtp_source_command() -> None:
    command = smtp_source_command(FAKE, "127.0.0.1:2026", concurrency=50, messages=10_000, body_size="100KB")
    assert command == [
        "/p/smtp-source",
        "-c",
        "-s",
        "50",
        "-m",
        "10000",
        "-l",
        "100000",
        "-f",
        "kumotui@example.com",
        "-t",
        "sink@example.net",
        "-d",
        "127.0.0.1:2026",
    ]
    once = smtp_source_command(FAKE, "h:25", reuse_connections=False, keep_going=True, recipient="a@b.test")
    assert "-d" not in once and once[-2:] == ["-A", "h:25"] and "a@b.test" in once


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"recipient": "someone@gmail.com"}, "recipient someone@gmail.com is not in a reserved"),
        ({"sender": "me@example.com.evil.org"}, "sender"),
        ({"messages": 0}, "-m must be at least 1"),
        ({"body_size": "lots"}, "--body-size 'lots': expected a size"),
    ],
)
def test_smtp_source_refuses(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(KumotuiError, match=match):
        smtp_source_command(FAKE, "127.0.0.1:2026", **kwargs)  # type: ignore[arg-type]


# --- parsing recorded output -------------------------------------------------------------


def parse_source(chunks: list[bytes], stderr: bytes = b"") -> tuple[int, bool, str | None]:
    reader = SmtpSourceOutput(expected_messages=20, body_size=1000)
    for chunk in chunks:
        reader.feed_stdout(chunk)
    reader.feed_stderr(stderr)
    return reader.count, reader.completed, reader.fatal


def test_smtp_source_counter_in_chunks_of_every_size() -> None:
    for size in range(1, len(SOURCE_STDOUT) + 1):
        assert parse_source(chunked(SOURCE_STDOUT, size)) == (20, True, None), f"chunk size {size}"


def test_smtp_source_samples_and_summary() -> None:
    reader = SmtpSourceOutput(expected_messages=20, body_size=1000)
    reader.feed_stdout(SOURCE_STDOUT[:22])  # "1\r2\r...\r9\r10\r1": the last "1" is unfinished
    first = reader.sample(0.0)
    assert first == Sample(role="generator", elapsed=0.0, count=10, failed=0, rate=None, bytes=10_000)
    reader.feed_stdout(SOURCE_STDOUT[22:])
    assert reader.sample(2.0).rate == 5.0
    summary = reader.finish(elapsed=2.0)
    assert summary.ok and summary.count == 20 and summary.msgs_per_s == 10
    assert summary.mb_per_s == pytest.approx(0.01)
    assert summary.latency_p50_ms is None  # smtp-source reports no latency


def test_smtp_source_fatal_and_rejections() -> None:
    fatal = SmtpSourceOutput()
    fatal.feed_stderr(SOURCE_FATAL)
    summary = fatal.finish(elapsed=0.1)
    assert not summary.ok and summary.reason == "smtp-source stopped: connect: Connection refused"
    assert summary.failures == {"fatal: connect: Connection refused": 1}

    rejected = SmtpSourceOutput()
    rejected.feed_stdout(b"1\r2\r\n")
    rejected.feed_stderr(SOURCE_REJECTED * 3)
    summary = rejected.finish(elapsed=1.0)
    assert not summary.ok and summary.failed == 3
    assert summary.reason == "3 of 5 transactions were rejected (e.g. data rejected: 450 4.3.0 Error: command failed)"

    unfinished = SmtpSourceOutput()
    unfinished.feed_stdout(b"1\r2\r")
    assert "before finishing" in unfinished.finish(elapsed=1.0).reason


def test_smtp_sink_counters_in_chunks_of_every_size() -> None:
    for size in range(1, len(SINK_STDOUT) + 1):
        reader = SmtpSinkOutput()
        for chunk in chunked(SINK_STDOUT, size):
            reader.feed_stdout(chunk)
        assert (reader.sessions, reader.quits, reader.messages) == (3, 3, 4), f"chunk size {size}"


def test_smtp_sink_summary_covers_the_active_period() -> None:
    reader = SmtpSinkOutput()
    samples = [reader.sample(0.0), reader.sample(1.0)]
    reader.feed_stdout(b"sess=0 quit=0 mesg=100\r")
    samples.append(reader.sample(2.0))
    reader.feed_stdout(b"sess=4 quit=4 mesg=300\r")
    samples += [reader.sample(3.0), reader.sample(4.0), reader.sample(5.0)]
    summary = reader.finish(samples)
    assert summary.ok and summary.count == 300
    assert summary.elapsed == 2.0  # from the last idle reading (1.0) to the first at the final count (3.0)
    assert summary.msgs_per_s == 150


def test_smtp_sink_bind_failure() -> None:
    reader = SmtpSinkOutput()
    reader.feed_stderr(SINK_BIND_FAILED[:30])
    reader.feed_stderr(SINK_BIND_FAILED[30:])
    assert reader.fatal == "bind 127.0.0.1 port 2026: Address already in use"
    assert not reader.finish([]).ok
