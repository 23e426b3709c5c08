"""The Postfix backend: finding smtp-sink/smtp-source, their command lines, and
their counter output, parsed from recorded bytes and from the real tools on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kumotui.backends.lines import tcp_accepts
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
from tests.smtp_support import postfix_tools
from tests.standins import free_port, run_streaming

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


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


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


# --- the real tools on loopback ---------------------------------------------------------------


@pytest.fixture
def real_tools() -> PostfixTools:
    """Postfix's tools where the engine tests find them (skipped locally, a failure in CI, when missing)."""
    root = postfix_tools()
    tools = find_postfix_tools(env={"KUMOTUI_POSTFIX_DIR": str(root), "PATH": ""})
    assert find_postfix_tools(root, env={}) == tools
    return tools


def start_sink(tools: PostfixTools, port: int, *extra: str) -> subprocess.Popen[bytes]:
    command = smtp_sink_command(tools, f"127.0.0.1:{port}", concurrency=10, user="nobody")
    command[1:1] = list(extra)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tools.environ())


def wait_until_accepting(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while not tcp_accepts("127.0.0.1", port, timeout=0.5):
        assert process.poll() is None, "smtp-sink exited"
        assert time.monotonic() < deadline, "smtp-sink never accepted"
        time.sleep(0.02)


def drain(process: subprocess.Popen[bytes], reader: SmtpSinkOutput) -> None:
    """Stop the sink by PID (SIGTERM, then SIGKILL) and feed everything it printed."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        out, err = process.communicate(timeout=5)
    reader.feed_stdout(out)
    reader.feed_stderr(err)


@pytest.mark.parametrize("reuse", [True, False])
def test_real_tools_exact_counts(real_tools: PostfixTools, reuse: bool) -> None:
    port = free_port()
    sink = start_sink(real_tools, port)
    sink_reader = SmtpSinkOutput()
    try:
        wait_until_accepting(port, sink)
        source = SmtpSourceOutput(expected_messages=500, body_size=1000)
        samples: list[Sample] = []

        def on_stdout(data: bytes, elapsed: float) -> None:
            source.feed_stdout(data)
            samples.append(source.sample(elapsed))

        command = smtp_source_command(
            real_tools, f"127.0.0.1:{port}", concurrency=5, messages=500, body_size=1000, reuse_connections=reuse
        )
        finished = run_streaming(command, on_stdout, lambda data, t: source.feed_stderr(data), env=real_tools.environ())
        summary = source.finish(finished.elapsed)
        assert finished.code == 0
        assert finished.stdout == b"".join(f"{n}\r".encode() for n in range(1, 501)) + b"\n"
        assert summary.ok, summary.reason
        assert summary.count == 500 and summary.failed == 0
        assert samples[-1].count == 500
    finally:
        drain(sink, sink_reader)
    assert sink_reader.messages == 500
    assert sink_reader.quits == (5 if reuse else 500)
    assert sink_reader.sessions == sink_reader.quits + 1  # the readiness probe connected and left


def test_real_tools_rejections_with_keep_going(real_tools: PostfixTools) -> None:
    port = free_port()
    sink = start_sink(real_tools, port, "-r", "DATA")  # every DATA gets 450
    try:
        wait_until_accepting(port, sink)
        source = SmtpSourceOutput(expected_messages=10)
        command = smtp_source_command(real_tools, f"127.0.0.1:{port}", concurrency=2, messages=10, keep_going=True)
        finished = run_streaming(
            command, lambda d, t: source.feed_stdout(d), lambda d, t: source.feed_stderr(d), env=real_tools.environ()
        )
        summary = source.finish(finished.elapsed)
    finally:
        drain(sink, SmtpSinkOutput())
    assert finished.code == 0 and finished.stdout == b"\n"
    assert summary.count == 0 and summary.failed == 10 and not summary.ok
    assert summary.failures == {"data rejected: 450 4.3.0 Error: command failed": 10}


def test_real_tools_fatal_errors(real_tools: PostfixTools) -> None:
    port = free_port()
    source = SmtpSourceOutput()
    finished = run_streaming(
        smtp_source_command(real_tools, f"127.0.0.1:{port}"),
        lambda d, t: source.feed_stdout(d),
        lambda d, t: source.feed_stderr(d),
        env=real_tools.environ(),
    )
    assert finished.code == 1
    assert source.finish(finished.elapsed).reason == "smtp-source stopped: connect: Connection refused"

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        reader = SmtpSinkOutput()
        sink = start_sink(real_tools, port)
        try:
            assert sink.wait(timeout=10) == 1
        finally:
            drain(sink, reader)
    assert reader.fatal == f"bind 127.0.0.1 port {port}: Address already in use"
