"""``kumotui bench --through``: generator → MTA under test → kumotui's sink, every message accounted for.

The MTA here is :class:`tests.support.relay.Relay`, a store-and-forward
stand-in whose faults the test chooses (a lost message, a duplicate, mail
delivered nowhere); the same path through a real Postfix is in
``test_through_postfix.py``. The sink and generator are kumotui's own
engines, for real, on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kumotui.engines.smtp_common import STAMP_SCAN, read_stamp
from tests.support.cli import Cli, CliResult
from tests.support.processes import free_port
from tests.support.relay import Relay

pytestmark = pytest.mark.processes


def stamp_id(message: bytes) -> int | None:
    """The id in a message's kumotui stamp (what the generator numbered it)."""
    stamp = read_stamp(message[:STAMP_SCAN])
    return stamp[1] if stamp else None


@contextmanager
def relay_to_sink(**faults: Any) -> Iterator[tuple[Relay, int]]:
    """A relay forwarding to the port the test's sink will listen on (None: forwards nowhere)."""
    port = free_port()
    nowhere = faults.pop("nowhere", False)
    with Relay(None if nowhere else ("127.0.0.1", port), **faults) as relay:
        yield relay, port


def bench_through(cli: Cli, relay: Relay, port: int, tmp_path: Path, *extra: str) -> tuple[CliResult, dict[str, Any]]:
    done = cli(
        "bench", "--through", relay.address, "--local-sink", "--listen", f"127.0.0.1:{port}",
        "--messages", "1500", "--concurrency", "10", "--probe-timeout", "5", "--drain-timeout", "10",
        "--state-dir", tmp_path, "--json", *extra,
    )  # fmt: skip
    summary = json.loads(done.stdout.splitlines()[-1]) if done.stdout.strip() else {}
    return done, summary


def test_every_message_is_delivered_once_with_its_latency(cli: Cli, tmp_path: Path) -> None:
    with relay_to_sink() as (relay, port):
        done, result = bench_through(cli, relay, port, tmp_path)
        assert relay.accepted == 1500 + 3  # the load and the three routing probes, nothing else
    assert done.returncode == 0, done.stderr
    delivery = result["delivery"]
    assert (delivery["injected"], delivery["delivered"], delivery["lost"], delivery["duplicated"]) == (1500, 1500, 0, 0)
    assert delivery["per_message"] and delivery["lost_ids"] == [] and delivery["unexpected"] == 0
    assert delivery["probe"]["sent"] == delivery["probe"]["arrived"] == 3
    assert "stand-in relay" in delivery["probe"]["mta_banner"]
    latency = delivery["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"] < 60_000
    assert delivery["clock"].startswith("same host")
    assert result["through"] == relay.address
    # The headline through an MTA is what the sink got, not what the generator sent.
    record = json.loads(cli("runs", "--json", "--state-dir", tmp_path).stdout)[0]
    assert result["whole_run"]["messages"] == 1500, [x for x in record["series"] if x["role"] == "sink"][:4]
    record = json.loads(cli("runs", "--json", "--state-dir", tmp_path).stdout)[0]
    assert record["config"]["through"] == relay.address and record["delivery"]["delivered"] == 1500


def test_a_lost_message_is_named_and_fails_the_run(cli: Cli, tmp_path: Path) -> None:
    # The load's 7th and 497th messages (by their stamps) vanish in the relay.
    with relay_to_sink(drop=lambda message: stamp_id(message) in (7, 497)) as (relay, port):
        done, result = bench_through(cli, relay, port, tmp_path)
    assert done.returncode == 1
    delivery = result["delivery"]
    assert (delivery["injected"], delivery["delivered"], delivery["lost"]) == (1500, 1498, 2)
    assert delivery["lost_ids"] == ["0:7", "0:497"] and result["status"] == "failed"
    text = cli("report", result["run"], "--state-dir", tmp_path).stdout
    assert "lost 2" in text


def test_a_duplicate_is_counted_not_taken_for_a_delivery(cli: Cli, tmp_path: Path) -> None:
    with relay_to_sink(duplicate=lambda message: stamp_id(message) == 100) as (relay, port):
        done, result = bench_through(cli, relay, port, tmp_path)
    assert done.returncode == 0, done.stderr
    delivery = result["delivery"]
    assert (delivery["delivered"], delivery["lost"], delivery["duplicated"]) == (1500, 0, 1)
    assert result["sink"]["received"] == 1501


def test_a_misrouted_mta_gets_no_load(cli: Cli, tmp_path: Path) -> None:
    with relay_to_sink(nowhere=True) as (relay, port):
        done, _ = bench_through(cli, relay, port, tmp_path, "--probe-timeout", "2")
        assert relay.accepted == 3  # the probes only: the load never started
    assert done.returncode == 2
    err = done.stderr
    assert "0 reached the sink" in err and "the load was not started" in err
    assert f"relayhost = [127.0.0.1]:{port}" in err and "kumo.on('smtp_server_message_received'" in err
    assert "Traceback" not in err and not list((tmp_path / "runs").glob("*.json"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--through", "127.0.0.1:2525", "--target", "127.0.0.1:2026"], "--through needs --local-sink"),
        (["--through", "8.8.8.8:25", "--local-sink"], "--through"),
        (["--through", "nohost", "--local-sink"], "--through"),
        (["--through", "127.0.0.1:2525", "--local-sink", "--drain-timeout", "-1"], "--drain-timeout"),
    ],
)
def test_bad_through_options_are_named(cli: Cli, extra: list[str], message: str) -> None:
    done = cli("bench", "--messages", "10", *extra)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_the_sink_itself_is_not_an_mta(cli: Cli, tmp_path: Path) -> None:
    """--through pointing at kumotui's own sink would measure the sink and call it an MTA."""
    port = free_port()
    done = cli(
        "bench", "--through", f"127.0.0.1:{port}", "--local-sink", "--listen", f"127.0.0.1:{port}",
        "--messages", "10", "--state-dir", tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "is the sink itself" in done.stderr and "Traceback" not in done.stderr
