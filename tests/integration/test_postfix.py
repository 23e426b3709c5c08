"""The Postfix backend against Postfix's real smtp-sink and smtp-source on loopback:
exact counts, rejections with keep-going, fatal errors.

Parsing their recorded output is in ``tests/unit/test_postfix_formats.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
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
from tests.support.processes import free_port
from tests.support.streams import run_streaming
from tests.support.waits import wait_listening, wait_sessions_closed

# --- the real tools on loopback ---------------------------------------------------------------


@pytest.fixture
def real_tools(postfix_root: Path) -> PostfixTools:
    """Postfix's tools where the engine tests find them (skipped locally, a failure in CI, when missing)."""
    root = postfix_root
    tools = find_postfix_tools(env={"KUMOTUI_POSTFIX_DIR": str(root), "PATH": ""})
    assert find_postfix_tools(root, env={}) == tools
    return tools


def start_sink(tools: PostfixTools, port: int, *extra: str) -> subprocess.Popen[bytes]:
    command = smtp_sink_command(tools, f"127.0.0.1:{port}", concurrency=10, user="nobody")
    command[1:1] = list(extra)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=tools.environ())


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
        wait_listening(port, process=sink)
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
        wait_sessions_closed(port)  # smtp-source may exit before the sink has counted its last QUIT
    finally:
        drain(sink, sink_reader)
    assert sink_reader.messages == 500
    assert sink_reader.quits == (5 if reuse else 500)
    assert sink_reader.sessions == sink_reader.quits + 1  # the readiness probe connected and left


def test_real_tools_rejections_with_keep_going(real_tools: PostfixTools) -> None:
    port = free_port()
    sink = start_sink(real_tools, port, "-r", "DATA")  # every DATA gets 450
    try:
        wait_listening(port, process=sink)
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
