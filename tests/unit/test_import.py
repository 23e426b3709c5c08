"""``profile import`` and ``profile diff``: real files in, a profile ``--profile`` accepts out; refusals named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kumotui.tuning.profiles import load_profile
from kumotui.tuning.values import Rule
from tests.support.cli import Cli

DEBIAN_PID_MAX = """\
#  This file is part of systemd.

# Bump the numeric PID range to make PID collisions less likely.
kernel.pid_max = 4194304
"""

LOCAL = """\
; our runbook, 2026
net.core.somaxconn=8192
-net.ipv4.tcp_tw_reuse = 1
net/ipv4/tcp_fin_timeout = 15
-net.ipv4.conf.*.promote_secondaries = 1
kernel.pid_max = 65536
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_import_names_file_and_line_and_a_later_file_wins(tmp_path: Path, cli: Cli) -> None:
    first = write(tmp_path, "50-pid-max.conf", DEBIAN_PID_MAX)
    second = write(tmp_path, "60-local.conf", LOCAL)
    out = tmp_path / "ours.yaml"
    run = cli("profile", "import", first, second, "--name", "ours", "-o", out)
    assert run.returncode == 0, run.stderr
    assert f"{second}:5: net.ipv4.conf.*.promote_secondaries is a pattern" in run.stderr
    profile = load_profile(str(out))
    assert profile.name == "ours"
    assert {p.key: (p.value, p.rule) for p in profile.params} == {
        "net.core.somaxconn": ("8192", Rule.EXACTLY),
        "net.ipv4.tcp_tw_reuse": ("1", Rule.EXACTLY),
        "net.ipv4.tcp_fin_timeout": ("15", Rule.EXACTLY),
        "kernel.pid_max": ("65536", Rule.EXACTLY),  # the later file's
    }
    assert profile.param("kernel.pid_max").why == f"from {second}:6"  # type: ignore[union-attr]
    assert profile.param("net.core.somaxconn").why == f"from {second}:2: our runbook, 2026"  # type: ignore[union-attr]
    alone = cli("profile", "import", first).stdout
    assert yaml.safe_load(alone)["params"]["kernel.pid_max"] == {
        "value": "4194304",
        "rule": "exactly",
        "why": f"from {first}:4: Bump the numeric PID range to make PID collisions less likely.",
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("net.core.somaxconn = 1024\nkernel.//.//.etc.shadow = 1\n", ":2: 'kernel.//.//.etc.shadow' is not a dotted"),
        ("vm.swappiness = 1; rm -rf /\n", ":1: vm.swappiness: the value '1; rm -rf /' is not one line"),
        ("kernel.core_pattern = a\x1b]0;x\x07b\n", ":1: kernel.core_pattern: the value 'a\\x1b]0;x\\x07b'"),
        ("fs.file-max = " + "9" * 40 + "\n", ":1: fs.file-max: the value"),
        ("just words\n", ":1: expected KEY = VALUE"),
        (b"vm.swappiness = 1\n\xff\xfe = 2\n", ":2: not UTF-8 text"),
        ("[sysctl]\nvm.swappiness=${f:exec:/bin/sh}\n", ":2: vm.swappiness: TuneD variables and functions"),
    ],
)
def test_hostile_files_are_refused_with_file_and_line(tmp_path: Path, cli: Cli, text: str | bytes, reason: str) -> None:
    path = write(tmp_path, "bad.conf", text)
    run = cli("profile", "import", path)
    assert run.returncode == 2 and run.stdout == ""
    assert f"kumotui: {path}{reason}" in run.stderr and "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1


def test_size_cap_empty_files_and_a_bad_name(tmp_path: Path, cli: Cli) -> None:
    big = write(tmp_path, "big.conf", "# x\n" * 300_000)
    assert "larger than 1024 KB" in cli("profile", "import", big).stderr
    empty = write(tmp_path, "empty.conf", "# nothing here\n")
    assert "no sysctl settings" in cli("profile", "import", empty).stderr
    good = write(tmp_path, "good.conf", "vm.swappiness = 10\n")
    assert "--name" in cli("profile", "import", good, "--name", "../x").stderr
    assert "cannot read" in cli("profile", "import", tmp_path / "missing.conf").stderr


def test_tuned_profile_import_keeps_its_at_least_and_says_what_it_left_out(tmp_path: Path, cli: Cli) -> None:
    conf = write(
        tmp_path,
        "tuned.conf",
        "[main]\nsummary=mta\ninclude=network-throughput\n\n[cpu]\ngovernor=performance\n\n[sysctl]\n"
        "# backlog\nnet.core.somaxconn=>4096 # inline\nvm.swappiness=<10\n"
        'net.ipv4.tcp_rmem="4096 87380 16777216"\nkernel.sched_autogroup_enabled=0\n',
    )
    run = cli("profile", "import", conf, "--name", "mta")
    assert run.returncode == 0, run.stderr
    assert f"{conf}:3: include=network-throughput: that profile is not imported" in run.stderr
    assert f"{conf}:5: [cpu] is not sysctl settings" in run.stderr
    params = yaml.safe_load(run.stdout)["params"]
    assert {k: (v["value"], v["rule"]) for k, v in params.items()} == {
        "net.core.somaxconn": ("4096", "at-least"),
        "vm.swappiness": ("10", "at-most"),
        "net.ipv4.tcp_rmem": ("4096 87380 16777216", "exactly"),
        "kernel.sched_autogroup_enabled": ("0", "exactly"),
    }
    assert params["net.core.somaxconn"]["why"] == f"from {conf}:10: backlog"


def test_tuned_export_imports_back_to_the_same_rules(tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("export", "--format", "tuned", "--profile-only", "-o", "kt").returncode == 0
    back = cli("profile", "import", "kt/tuned.conf", "--name", "back", "-o", "back.yaml")
    assert back.returncode == 0, back.stderr
    original = {p.key: p for p in load_profile("kumomta").params}
    for param in load_profile(str(tmp_path / "back.yaml")).params:
        assert param.value == original[param.key].value
        single_number = len(param.value.split()) == 1
        expected = original[param.key].rule if single_number else Rule.EXACTLY
        assert param.rule is (expected if expected is not Rule.COVERS else Rule.EXACTLY), param.key
    assert set(original) == {p.key for p in load_profile(str(tmp_path / "back.yaml")).params}


def test_profile_diff_side_by_side(tmp_path: Path, cli: Cli) -> None:
    same = cli("profile", "diff", "kumomta", "kumomta")
    assert same.returncode == 0 and "All 12 keys are the same." in same.stdout
    differ = cli("profile", "diff", "kumomta", "kumomta-extended")
    assert differ.returncode == 1
    assert "only B" in differ.stdout and "A: kumomta" in differ.stdout and "B: kumomta-extended" in differ.stdout
    mine = write(tmp_path, "mine.conf", "net.core.somaxconn = 1024\nvm.swappiness = 10\n")
    assert cli("profile", "import", mine, "--name", "mine", "-o", tmp_path / "mine.yaml").returncode == 0
    run = cli("profile", "diff", "kumomta", tmp_path / "mine.yaml")
    row = next(line for line in run.stdout.splitlines() if line.startswith("net.core.somaxconn"))
    assert row.split() == ["net.core.somaxconn", "at-least", "1024", "exactly", "1024", "≠"]
    assert "13 of 13 keys differ." in run.stdout
    bad = cli("profile", "diff", "kumomta", "nope")
    assert bad.returncode == 2 and "nope" in bad.stderr
