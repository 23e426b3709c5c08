"""``kumotui bench``, ``sink``, ``runs`` and ``report`` as a user runs them, in-process
(``kumotui.cli.main``) with real engines, stand-ins and Postfix tools on loopback:
exit codes, no tracebacks, runs saved where ``--state-dir`` (or ``KUMOTUI_STATE_DIR``) says.

Signals, a killed CLI and the module entry point need a real process:
``test_cli_process.py``.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.processes import free_port


def test_done_when_command(cli: Cli, tmp_path: Path) -> None:
    """The issue's acceptance command: 20000 sent, 0 failed, the sink agrees; saved in the state dir."""
    done = cli("bench", "--local-sink", "--messages", "20000", "--body-size", "1KB", "--concurrency", "50", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["sent"], result["failed"]) == (20000, 0)
    assert result["sink"]["received"] == 20000
    assert result["msgs_per_s"] > 0 and result["mmh"] == pytest.approx(result["msgs_per_s"] * 3600 / 1e6, rel=1e-3)
    assert {"p50", "p90", "p95", "p99", "max"} <= set(result["latency_ms"])
    assert set(result["generator_clock"]) == {"elapsed", "msgs_per_s", "mmh", "mb_per_s"}
    # 20,000 messages take well under the warm-up: no steady state, so the headline is the whole run,
    # the run is "too short", and it is never set against KumoMTA's published figures.
    assert result["window"] is None and result["rate_basis"] == "whole_run"
    assert result["whole_run"]["messages"] == 20000 and result["whole_run"]["seconds"] == result["wall_seconds"] > 0
    assert result["msgs_per_s"] == pytest.approx(20000 / result["wall_seconds"], rel=0.01)
    assert result["status"] == "too short" and result["too_short"].startswith("no steady state")
    assert result["comparable"] is False and "published" not in result
    assert "no MTA in the path" in result["comparability"] and "1,000-byte messages" in result["comparability"]
    # No --state-dir: the default, which tests point at a temporary KUMOTUI_STATE_DIR.
    assert [p.stem for p in (tmp_path / "kumotui-state" / "runs").glob("*.json")] == [result["run"]]


@pytest.mark.serial
def test_a_run_with_a_steady_state_reports_its_window_and_labels(cli: Cli, tmp_path: Path) -> None:
    """Eight seconds: a 5 s warm-up, then a window of about 3 s (too short to compare, but measured)."""
    done = cli(
        "bench", "--local-sink", "--duration", "8", "--rate", "2000", "--label", "short one", "--json",
        "--state-dir", tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    window, whole = result["window"], result["whole_run"]
    assert result["rate_basis"] == "window" and result["label"] == "short one"
    assert window["warmup"] == 5.0 and 5.0 <= window["start"] < 6.5 and 2.0 < window["seconds"] <= 4.0
    assert window["msgs_per_s"] == pytest.approx(2000, rel=0.05) and result["msgs_per_s"] == window["msgs_per_s"]
    assert 8.0 <= whole["seconds"] < 9.5 and whole["messages"] == result["sent"]
    assert result["status"] == "too short" and "30 s needed" in result["too_short"]
    assert result["comparable"] is False
    table = cli("runs", "--state-dir", tmp_path).stdout
    assert "short one" in table and "too short" in table


def test_a_run_on_a_simulated_host_records_that_hosts_facts(cli: Cli, tmp_path: Path) -> None:
    sim = tmp_path / "sim"
    assert cli("simulate", sim).returncode == 0
    (sim / "proc/sys/kernel/hostname").write_text("sim-mx1\n")
    (sim / "proc/sys/kernel/osrelease").write_text("9.9.9-sim\n")
    done = cli("bench", "--sysctl-root", sim / "proc/sys", "--state-dir", tmp_path / "st", "--local-sink",
               "--messages", "100", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = json.loads(cli("runs", "--json", "--state-dir", tmp_path / "st").stdout)
    assert (runs[0]["host"]["hostname"], runs[0]["host"]["kernel"]) == ("sim-mx1", "9.9.9-sim")


def test_bad_label_is_refused(cli: Cli) -> None:
    done = cli("bench", "--local-sink", "--messages", "10", "--label", "a\x1b[2Jb")
    assert done.returncode == 2 and "--label" in done.stderr and "printable" in done.stderr


def test_human_summary(cli: Cli) -> None:
    done = cli("bench", "--local-sink", "--messages", "500", "--body-size", "100KB", "--workers", "2")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "sent        500" in out and "Whole run: 500 messages in" in out
    assert "received 500; refused: none" in out
    assert "published   Not comparable with KumoMTA's published figures: no MTA in the path" in out
    assert "%" not in out


def test_unreachable_target_fails_fast(cli: Cli) -> None:
    port = free_port()  # nobody listens there
    started = time.monotonic()
    done = cli("bench", "--target", f"127.0.0.1:{port}", "--messages", "10", "--connect-timeout", "2")
    assert done.returncode == 2 and "cannot connect" in done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - started < 10


def test_sink_port_in_use(cli: Cli) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = cli("sink", "--listen", f"127.0.0.1:{port}")
    assert done.returncode == 2
    assert "already in use" in done.stderr and "Traceback" not in done.stderr


def test_bench_kumomta_backend_records_the_run(tmp_path: Path, kumo_prefix: Path, cli: Cli) -> None:
    state = tmp_path / "state"
    run = cli(
        "bench",
        "--local-sink",
        "--messages",
        "400",
        "--concurrency",
        "4",
        "--json",
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--http-port",
        str(free_port()),
        "--kumod-user",
        "nobody",
        "--state-dir",
        state,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["backend"] == "kumomta"  # auto picked it: kumod and traffic-gen are installed
    assert (result["sent"], result["failed"], result["sink"]["received"]) == (400, 0, 400)
    runs = json.loads(cli("runs", "--json", "--state-dir", state).stdout)
    assert [r["id"] for r in runs] == [result["run"]]
    assert runs[0]["parameters"]  # the profile's kernel values at start


def test_bench_postfix_backend(tmp_path: Path, postfix_root: Path, cli: Cli) -> None:
    run = cli(
        "bench",
        "--backend",
        "postfix",
        "--local-sink",
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--messages",
        "1000",
        "--concurrency",
        "5",
        "--json",
        "--state-dir",
        tmp_path,
        env={"KUMOTUI_POSTFIX_DIR": str(postfix_root)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert (result["backend"], result["sent"], result["sink"]["received"]) == ("postfix", 1000, 1000)


def test_report_compares_two_runs(tmp_path: Path, cli: Cli) -> None:
    ids = []
    for messages in ("1000", "2000"):
        run = cli(
            "bench", "--backend", "builtin", "--local-sink", "--messages", messages, "--json", "--state-dir", tmp_path
        )
        ids.append(json.loads(run.stdout.splitlines()[-1])["run"])
    table = cli("runs", "--state-dir", tmp_path)
    assert all(run_id in table.stdout for run_id in ids)
    report = cli("report", ids[0], ids[1], "--state-dir", tmp_path, "--output", tmp_path / "r.md")
    assert report.returncode == 0
    text = (tmp_path / "r.md").read_text()
    assert text.startswith("# kumotui benchmark comparison") and "Window MMH" in text
    assert "Not like for like: Messages differ" in text
    assert "## KumoMTA's published figures" in text and "Not comparable" in text and "% of" not in text
    bad = cli("report", "nope", "--state-dir", tmp_path)
    assert bad.returncode == 2 and "nope" in bad.stderr
