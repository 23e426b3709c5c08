"""``kumotui bench``, ``sink`` and ``report`` refusing what they cannot do, in-process, before
any process starts: nonsense numbers, a public target, missing tools; and the routing snippet."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--body-size", "lots"], "--body-size"),
        (["--body-size", "0"], "--body-size"),
        (["--body-size", "-5KB"], "--body-size"),
        (["--body-size", "9GB"], "--body-size"),
        (["--messages", "0"], "--messages"),
        (["--rate", "-1"], "--rate"),
        (["--duration", "0"], "--duration"),
        (["--concurrency", "0"], "--concurrency"),
        (["--messages", "many"], "--messages"),
    ],
)
def test_nonsense_input_is_refused(args: list[str], message: str, cli: Cli) -> None:
    done = cli("bench", "--local-sink", *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_remote_target_refused_without_flag(cli: Cli) -> None:
    done = cli("bench", "--target", "192.0.2.10:25", "--messages", "1")
    assert done.returncode == 2
    assert "--allow-remote-target" in done.stderr and "Traceback" not in done.stderr


def test_missing_backend_tools_exit_2(tmp_path: Path, cli: Cli) -> None:
    run = cli(
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


def test_print_routing_names_the_sink(cli: Cli) -> None:
    run = cli("sink", "--print-routing", "--listen", "10.1.2.3:2026")
    assert run.returncode == 0
    assert "msg:set_meta('queue', '[10.1.2.3]')" in run.stdout and "smtp_port = 2026" in run.stdout
