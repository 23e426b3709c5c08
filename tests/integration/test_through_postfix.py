"""``kumotui bench --through`` with a real MTA in the path: Debian's Postfix, relaying to kumotui's sink.

Postfix runs from a throwaway configuration (``tests/support/postfix_mta.py``)
on a free loopback port, relaying every message to the sink's port, and is
stopped by PID afterwards. What these tests prove with it: exact per-message
accounting through a real MTA (the issue's acceptance command), a misrouted
MTA gets no load, deferrals at the sink drain through Postfix's own retries
with the accounting balanced, and the MTA pane's reading of Postfix's queue.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kumotui.bench.mta import watcher_for
from kumotui.hosts.local import LocalHost
from tests.support.cli import Cli, CliResult
from tests.support.postfix_mta import PostfixRelay
from tests.support.processes import free_port

pytestmark = [pytest.mark.processes, pytest.mark.serial]  # a real MTA and 500 MB of mail: one at a time


def through(
    cli: Cli, relay: PostfixRelay, sink_port: int, tmp_path: Path, *extra: str
) -> tuple[CliResult, dict[str, Any]]:
    done = cli(
        "bench", "--through", f"127.0.0.1:{relay.port}", "--local-sink", "--listen", f"127.0.0.1:{sink_port}",
        "--state-dir", tmp_path / "state", "--json", *extra,
    )  # fmt: skip
    return done, (json.loads(done.stdout.splitlines()[-1]) if done.stdout.strip() else {})


def test_the_issues_command_through_a_real_postfix(
    cli: Cli, tmp_path: Path, postfix_mta: Callable[[int], PostfixRelay]
) -> None:
    """5,000 messages of 100 KB: injected 5,000, delivered 5,000, lost 0, duplicated 0, with latency."""
    sink_port = free_port()
    relay = postfix_mta(sink_port)
    done, result = through(
        cli, relay, sink_port, tmp_path, "--messages", "5000", "--body-size", "100KB", "--concurrency", "20",
        "--drain-timeout", "120", "--mta-postfix-config", relay.config_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + relay.log_tail()
    delivery = result["delivery"]
    assert (delivery["injected"], delivery["delivered"], delivery["lost"], delivery["duplicated"]) == (
        5000,
        5000,
        0,
        0,
    )
    assert "Postfix" in delivery["probe"]["mta_banner"] and delivery["probe"]["arrived"] == 3
    latency = delivery["latency_ms"]
    # Postfix queues before it relays: tens of ms at least, and well under the drain deadline.
    assert 0.1 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"] < 120_000
    assert result["msgs_per_s"] > 0 and result["whole_run"]["messages"] == 5000
    assert result["sink"]["received"] == 5000
    assert relay.queue_size() == 0
    # The MTA's own view at the end, from its own tools: its version, and an empty queue once drained.
    version = subprocess.run(
        ["postconf", "-c", str(relay.config_dir), "-h", "mail_version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert result["mta"] == {**result["mta"], "kind": "postfix", "version": version, "error": "", "queued": {}}
    assert version and version[0].isdigit()


def test_a_misrouted_postfix_gets_only_the_probes(
    cli: Cli, tmp_path: Path, postfix_mta: Callable[[int], PostfixRelay]
) -> None:
    sink_port = free_port()
    relay = postfix_mta(sink_port)
    relay.set_relayhost(f"127.0.0.1:{free_port()}")  # nobody listens there
    done, _ = through(cli, relay, sink_port, tmp_path, "--messages", "1000", "--probe-timeout", "5")
    assert done.returncode == 2
    assert "0 reached the sink" in done.stderr and "the load was not started" in done.stderr
    assert f"relayhost = [127.0.0.1]:{sink_port}" in done.stderr
    assert relay.queue_size() == 3  # the three probes wait in Postfix's queue; no load was sent
    watcher = watcher_for(f"127.0.0.1:{relay.port}", "ESMTP Postfix", LocalHost(), postfix_config=str(relay.config_dir))
    assert watcher is not None and watcher.read().total_queued == 3


def test_deferrals_drain_through_postfixs_retries(
    cli: Cli, tmp_path: Path, postfix_mta: Callable[[int], PostfixRelay]
) -> None:
    """The sink answers 451 to a share; Postfix retries them (a 1 s backoff here) and every one arrives."""
    sink_port = free_port()
    relay = postfix_mta(sink_port)
    done, result = through(
        cli, relay, sink_port, tmp_path, "--messages", "600", "--tempfail-percent", "20", "--drain-timeout", "90",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + relay.log_tail()
    delivery = result["delivery"]
    assert (delivery["injected"], delivery["delivered"], delivery["lost"]) == (600, 600, 0)
    assert result["sink"]["refused"].get("rejected_data", 0) > 0  # the sink did defer some
    assert delivery["drain_seconds"] > 0
    assert relay.queue_size() == 0
