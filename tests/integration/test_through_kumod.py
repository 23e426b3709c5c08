"""``bench --through`` a KumoMTA: the kumod stand-in in relay mode, its ``/metrics`` read as the MTA's view.

KumoMTA cannot be installed here, so the MTA is the stand-in
(``tests/support/standins/kumod``) running a policy made the way an operator
would: kumotui's listeners plus the ``routing_snippet`` kumotui prints. The
stand-in follows KumoMTA's documented metric names; what this proves is that
kumotui's snippet routes, its probe passes, and its MTA view reads those
series, not that a real kumod behaves the same (the real-MTA path is
Postfix's, in ``test_through_postfix.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kumotui.backends.kumomta.metrics import fetch_metrics
from kumotui.bench.mta import kumomta_view
from tests.support.cli import Cli
from tests.support.processes import free_port
from tests.support.standins import running_kumod_sink

pytestmark = pytest.mark.processes


def test_through_a_kumod_every_message_and_its_metrics(
    cli: Cli, tmp_path: Path, kumo_prefix: Path, public_tmp: Path
) -> None:
    sink_port = free_port()
    with running_kumod_sink(public_tmp, relay_to=("127.0.0.1", sink_port)) as mta:
        done = cli(
            "bench", "--through", f"127.0.0.1:{mta.port}", "--local-sink", "--listen", f"127.0.0.1:{sink_port}",
            "--mta-metrics", f"127.0.0.1:{mta.http_port}", "--tempfail-percent", "10", "--seed", "7",
            "--messages", "600", "--concurrency", "8", "--probe-timeout", "10", "--drain-timeout", "30",
            "--state-dir", tmp_path, "--json", "--backend", "builtin",
        )  # fmt: skip
        after = kumomta_view(fetch_metrics("127.0.0.1", mta.http_port))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    delivery = result["delivery"]
    assert (delivery["injected"], delivery["delivered"], delivery["lost"], delivery["duplicated"]) == (600, 600, 0, 0)
    assert delivery["probe"]["mta_kind"] == "kumomta"
    # The sink deferred a share (451), the MTA retried each until it got through: its own counters say so.
    view = result["mta"]
    assert view["kind"] == "kumomta" and view["error"] == ""
    assert view["received"] == 603 and view["delivered"] == 603  # the load and the three probes
    assert view["transient_failures"] > 0 and view["transient_failures"] == after.transient_failures
    assert sum(view["queued"].values()) == 0  # drained
    report = cli("report", result["run"], "--state-dir", tmp_path).stdout
    assert "kumomta at the end: conns in" in report and "delivered 603" in report


def test_a_kumod_routed_elsewhere_is_refused_before_the_load(
    cli: Cli, tmp_path: Path, kumo_prefix: Path, public_tmp: Path
) -> None:
    dead, sink_port = free_port(), free_port()
    with running_kumod_sink(public_tmp, relay_to=("127.0.0.1", dead)) as mta:
        done = cli(
            "bench", "--through", f"127.0.0.1:{mta.port}", "--local-sink", "--listen", f"127.0.0.1:{sink_port}",
            "--messages", "100", "--probe-timeout", "3", "--state-dir", tmp_path, "--backend", "builtin",
        )  # fmt: skip
        view = kumomta_view(fetch_metrics("127.0.0.1", mta.http_port))
    assert done.returncode != 0
    assert "routing probes but 0 reached the sink" in done.stderr
    assert view.received == 3 and view.delivered == 0  # the probes only, stuck in the MTA's queue
    assert view.total_queued == 3 and view.transient_failures
