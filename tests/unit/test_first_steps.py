"""First steps as the README tells them: the screenshot script's --help, the tour on a simulated host."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_screenshots_help_prints_help_and_writes_nothing(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "scripts.screenshots", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0 and run.stdout.startswith("usage: python -m scripts.screenshots")
    assert not (ROOT / "--help").exists()


def readme_tour() -> str:
    """The README's tour section."""
    text = (ROOT / "README.md").read_text()
    return text.split("## A two-minute tour", 1)[1].split("\n## ", 1)[0]


def test_the_tour_says_how_to_get_kumotui_on_path_and_simulates_before_any_real_write() -> None:
    readme = (ROOT / "README.md").read_text()
    assert ". .venv/bin/activate" in readme and "pipx install ." in readme and "uv tool install ." in readme
    tour = readme_tour()
    commands = [line.split("#")[0].strip() for line in re.findall(r"^kumotui[^\n]*", tour, re.M)]
    first_write = next(i for i, c in enumerate(commands) if " apply" in c and "--dry-run" not in c)
    assert commands[0].startswith("kumotui simulate")
    assert "$SIM" in commands[first_write]  # the first apply writes into the simulated host


def test_the_tour_on_a_simulated_host_runs_as_written(tmp_path: Path) -> None:
    """The tour's simulated commands, run for real (kumotui's own CLI in a subprocess), in order."""
    tour = readme_tour()
    block = tour.split("```sh", 2)[1].split("```", 1)[0]
    sim = tmp_path / "sim"
    lines = [line.split("  #")[0].strip() for line in block.strip().splitlines()]
    sim_flags = ""
    kumotui = [sys.executable, "-m", "kumotui"]
    for line in lines:
        line = line.replace("/tmp/sim", str(sim))
        if line.startswith("SIM="):
            sim_flags = shlex.split(line.split("=", 1)[1])[0]
            continue
        argv = shlex.split(line.replace("$SIM", sim_flags))
        if argv == ["kumotui", *shlex.split(sim_flags)]:
            continue  # the app: needs a terminal (the UI tests drive it)
        assert argv[0] == "kumotui"
        if argv[-1] in ("apply", "rollback"):
            argv.append("--yes")  # the tour's apply asks first; a test answers for it
        run = subprocess.run([*kumotui, *argv[1:]], capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode in (0, 1), (line, run.stderr)
        if argv[-2:] == ["apply", "--yes"]:
            assert f"Drop-in {sim}/etc/sysctl.d/90-kumomta.conf: written" in run.stdout
        if argv[-2:] == ["rollback", "--yes"]:
            assert f"Drop-in {sim}/etc/sysctl.d/90-kumomta.conf: removed" in run.stdout
