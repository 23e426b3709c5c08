"""``kumotui bench --backend kumomta|postfix``, ``sink``, ``runs`` and ``report`` as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli import kumotui
from tests.smtp_support import free_port, postfix_tools
from tests.standins import install_kumomta


@pytest.fixture
def kumo_env(tmp_path: Path) -> dict[str, str]:
    install_kumomta(tmp_path / "kumomta")
    return {"KUMOMTA_PREFIX": str(tmp_path / "kumomta")}


def test_bench_kumomta_backend_records_the_run(tmp_path: Path, kumo_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    run = kumotui(
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
        env=kumo_env,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["backend"] == "kumomta"  # auto picked it: kumod and traffic-gen are installed
    assert (result["sent"], result["failed"], result["sink"]["received"]) == (400, 0, 400)
    runs = json.loads(kumotui("runs", "--json", "--state-dir", state).stdout)
    assert [r["id"] for r in runs] == [result["run"]]
    assert runs[0]["parameters"]  # the profile's kernel values at start


def test_bench_postfix_backend(tmp_path: Path) -> None:
    env = {"KUMOTUI_POSTFIX_DIR": str(postfix_tools())}
    run = kumotui(
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
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert (result["backend"], result["sent"], result["sink"]["received"]) == ("postfix", 1000, 1000)


def test_missing_backend_tools_exit_2(tmp_path: Path) -> None:
    run = kumotui(
        "bench",
        "--backend",
        "kumomta",
        "--local-sink",
        "--messages",
        "10",
        env={"KUMOMTA_PREFIX": str(tmp_path / "none")},
    )
    assert run.returncode == 2 and "kumod" in run.stderr and str(tmp_path / "none") in run.stderr
    assert "Traceback" not in run.stderr


def test_report_compares_two_runs(tmp_path: Path) -> None:
    ids = []
    for messages in ("1000", "2000"):
        run = kumotui(
            "bench", "--backend", "builtin", "--local-sink", "--messages", messages, "--json", "--state-dir", tmp_path
        )
        ids.append(json.loads(run.stdout.splitlines()[-1])["run"])
    table = kumotui("runs", "--state-dir", tmp_path)
    assert all(run_id in table.stdout for run_id in ids)
    report = kumotui("report", ids[0], ids[1], "--state-dir", tmp_path, "--output", tmp_path / "r.md")
    assert report.returncode == 0
    text = (tmp_path / "r.md").read_text()
    assert text.startswith("# kumotui benchmark comparison") and "Generator MMH" in text
    assert "Published figures" in text
    bad = kumotui("report", "nope", "--state-dir", tmp_path)
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_sink_kumomta_prints_samples_and_stops_cleanly(tmp_path: Path, kumo_env: dict[str, str]) -> None:
    import os

    port, http_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "kumotui",
        "sink",
        "--backend",
        "kumomta",
        "--listen",
        f"127.0.0.1:{port}",
        "--http-port",
        str(http_port),
        "--kumod-user",
        "nobody",
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **kumo_env}
    )
    try:
        ready = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert ready["type"] == "ready" and ready["backend"] == "kumomta" and ready["port"] == port
        progress = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert progress["type"] == "progress" and progress["received"] == 0
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, _err = proc.communicate(timeout=20)
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["type"] == "summary" and proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_print_routing_names_the_sink() -> None:
    run = kumotui("sink", "--print-routing", "--listen", "10.1.2.3:2026")
    assert run.returncode == 0
    assert "msg:set_meta('queue', '[10.1.2.3]')" in run.stdout and "smtp_port = 2026" in run.stdout
