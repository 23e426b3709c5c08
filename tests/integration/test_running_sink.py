"""``bench --through MTA --sink HOST:PORT``: a sink kumotui did not start, counted from its ``/metrics``.

Two such sinks, for real on loopback: ``kumotui sink --metrics-listen`` (a
subprocess of the CLI) and the kumod stand-in running kumotui's sink
policy. The MTA is the stand-in relay of ``test_through.py``. The sinks
have counted mail before the run, so a right answer proves the run counts
from its own start.
"""

from __future__ import annotations

import http.server
import json
import smtplib
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli, CliResult
from tests.support.processes import free_port, stop
from tests.support.relay import Relay
from tests.support.standins import running_kumod_sink

pytestmark = pytest.mark.processes


@contextmanager
def kumotui_sink(*extra: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``kumotui sink --metrics-listen`` on free loopback ports: (SMTP port, metrics address, ready line)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "kumotui", "sink", "--listen", f"127.0.0.1:{port}",
         "--metrics-listen", "127.0.0.1:0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        assert ready["type"] == "ready", ready
        yield port, ready["metrics"], ready
    finally:
        stop(process)


def send_direct(port: int, count: int) -> None:
    """Mail straight to the sink, before the run: counted by the sink, not by the run."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        for _ in range(count):
            smtp.sendmail("a@example.com", ["b@example.com"], b"Subject: earlier\r\n\r\nearlier\r\n")


def bench(cli: Cli, relay: Relay, tmp_path: Path, *extra: str) -> tuple[CliResult, dict[str, Any]]:
    done = cli(
        "bench", "--through", relay.address, "--messages", "1200", "--concurrency", "10",
        "--probe-timeout", "5", "--drain-timeout", "10", "--state-dir", tmp_path, "--json", *extra,
    )  # fmt: skip
    return done, json.loads(done.stdout.splitlines()[-1]) if done.stdout.strip() else {}


def test_a_running_kumotui_sink_is_counted_from_its_metrics(cli: Cli, tmp_path: Path) -> None:
    with kumotui_sink() as (port, metrics, ready):
        assert ready["metrics"] == metrics
        send_direct(port, 7)
        with Relay(("127.0.0.1", port)) as relay:
            done, result = bench(cli, relay, tmp_path, "--sink", f"127.0.0.1:{port}", "--sink-metrics", metrics)
            assert relay.accepted == 1200 + 3
    assert done.returncode == 0, done.stderr
    delivery = result["delivery"]
    assert (delivery["injected"], delivery["delivered"], delivery["lost"]) == (1200, 1200, 0)
    assert delivery["per_message"] is False and delivery["latency_ms"] == {}
    assert delivery["probe"]["arrived"] == 3
    assert delivery["clock"] == (
        f"count-level only: the running kumotui sink at 127.0.0.1:{port} was counted from its /metrics"
    )
    record = json.loads(cli("runs", "--json", "--state-dir", tmp_path).stdout)[0]
    assert record["config"]["target"] == f"127.0.0.1:{port}" and record["config"]["sink_metrics"] == metrics
    report = cli("report", record["id"], "--state-dir", tmp_path).stdout
    assert f"running sink 127.0.0.1:{port} (counted from {metrics}/metrics)" in report


def test_a_running_kumod_sink_is_counted_from_its_metrics(
    cli: Cli, tmp_path: Path, kumo_prefix: Path, public_tmp: Path
) -> None:
    with running_kumod_sink(public_tmp) as sink:
        send_direct(sink.port, 5)
        with Relay(("127.0.0.1", sink.port)) as relay:
            done, result = bench(
                cli,
                relay,
                tmp_path,
                "--sink",
                f"127.0.0.1:{sink.port}",
                "--sink-metrics",
                f"127.0.0.1:{sink.http_port}",
            )
    assert done.returncode == 0, done.stderr
    delivery = result["delivery"]
    assert (delivery["injected"], delivery["delivered"], delivery["lost"]) == (1200, 1200, 0)
    assert "running kumod sink" in delivery["clock"]


def test_a_misrouted_mta_is_refused_before_the_load(cli: Cli, tmp_path: Path) -> None:
    with kumotui_sink() as (port, metrics, _), Relay(None) as relay:  # the MTA delivers nowhere
        done, _ = bench(cli, relay, tmp_path, "--sink", f"127.0.0.1:{port}", "--sink-metrics", metrics)
        assert relay.accepted == 3  # the probes only
    assert done.returncode != 0
    assert "routing probes but 0 reached the sink" in done.stderr


@contextmanager
def http_answering(body: bytes) -> Iterator[str]:
    """An HTTP server on loopback that answers every GET with 200 and ``body``; its address."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name for it
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("closed", "cannot read the metrics"),
        ("smtp", "cannot read the metrics"),  # an SMTP port answers a GET with a banner, not HTTP
        ("http", "no total_messages_received of the esmtp_listener service"),
    ],
)
def test_a_sink_that_cannot_be_counted_is_refused_before_anything_is_sent(
    cli: Cli, tmp_path: Path, case: str, expected: str
) -> None:
    with kumotui_sink() as (port, _, _), Relay(("127.0.0.1", port)) as relay, http_answering(b"up\n") as web:
        address = {"closed": f"127.0.0.1:{free_port()}", "smtp": f"127.0.0.1:{port}", "http": web}[case]
        done, _ = bench(cli, relay, tmp_path, "--sink", f"127.0.0.1:{port}", "--sink-metrics", address)
        assert relay.accepted == 0
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"--sink-metrics {address}: " in done.stderr and expected in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--sink", "127.0.0.1:2026"], "--sink needs --through"),
        (["--through", "127.0.0.1:25", "--sink", "127.0.0.1:2026", "--local-sink"], "not allowed with argument"),
        (["--through", "127.0.0.1:25", "--sink", "8.8.8.8:2026"], "--sink"),
        (["--through", "127.0.0.1:25", "--sink", "127.0.0.1:2026", "--sink-metrics", "8.8.8.8:8002"],
         "--sink-metrics"),
        (["--through", "127.0.0.1:25", "--target", "127.0.0.1:2026", "--sink-metrics", "127.0.0.1:8002"],
         "--sink-metrics needs --sink"),
    ],
)  # fmt: skip
def test_bad_sink_flags_are_named(cli: Cli, tmp_path: Path, args: list[str], expected: str) -> None:
    done = cli("bench", *args, "--messages", "10", "--state-dir", tmp_path)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_only_the_builtin_sink_takes_metrics_listen(cli: Cli, kumo_prefix: Path) -> None:
    done = cli("sink", "--backend", "kumomta", "--metrics-listen", "127.0.0.1:0")
    assert done.returncode == 2
    assert "--metrics-listen: only the built-in sink needs it; the kumomta sink serves /metrics" in done.stderr
