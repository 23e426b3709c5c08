"""Open-file limits against a planned concurrency, and the journaled systemd fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kumotui.hosts.local import LocalHost
from kumotui.tuning import limits
from tests.support.cli import Cli


def test_parse_limit_nofile() -> None:
    assert limits.parse_limit_nofile("LimitNOFILE=524288\n") == 524288
    assert limits.parse_limit_nofile("LimitNOFILE=1024:524288\nLoadState=loaded\n") == 524288
    assert limits.parse_limit_nofile("[Service]\nLimitNOFILE=10\nLimitNOFILE=infinity\n") is None
    with pytest.raises(ValueError):
        limits.parse_limit_nofile("[Service]\nUser=kumod\n")


def test_needed_and_recommended() -> None:
    assert limits.needed(20000) == 21024
    assert limits.recommended(20000) == 65536
    assert limits.recommended(100000) == 131072
    assert limits.recommended(100000) >= limits.needed(100000)


def test_limits_d_user_line_beats_wildcard(tmp_path: Path) -> None:
    security = tmp_path / "security"
    (security / "limits.d").mkdir(parents=True)
    (security / "limits.conf").write_text("# comment\n*  hard  nofile  1048576\n")
    (security / "limits.d" / "10-kumod.conf").write_text("kumod - nofile 8192  # both soft and hard\n")
    found = limits.limits_d(LocalHost(), "kumod", tmp_path)
    assert found is not None and found.hard == 8192 and "10-kumod.conf:1" in found.source
    other = limits.limits_d(LocalHost(), "postfix", tmp_path)
    assert other is not None and other.hard == 1048576
    assert not found.enough_for(20000) and other.enough_for(20000)


def test_apply_unit_dropin_and_roll_back(tmp_path: Path, cli: Cli) -> None:
    flags = ["--system-root", str(tmp_path / "root"), "--state-dir", str(tmp_path / "state")]
    (tmp_path / "root" / "etc" / "security").mkdir(parents=True)
    (tmp_path / "root" / "etc" / "security" / "limits.conf").write_text("kumod hard nofile 4096\n")
    check = cli("limits", "--concurrency", "20000", *flags)
    assert check.returncode == 1 and "▼ too low" in check.stdout and "limits.conf:1" in check.stdout
    run = cli("limits", "--concurrency", "20000", "--apply", "--yes", *flags)
    assert run.returncode == 0, run.stderr
    dropin = tmp_path / "root" / "etc/systemd/system/kumomta.service.d/90-kumotui-nofile.conf"
    assert "[Service]\nLimitNOFILE=65536\n" in dropin.read_text()
    assert limits.parse_limit_nofile(dropin.read_text()) == 65536
    again = cli("limits", "--concurrency", "20000", "--apply", "--yes", *flags)
    assert "already has this content" in again.stdout
    entries = json.loads(cli("journal", "--json", *flags).stdout)
    assert [e["profile"] for e in entries] == ["nofile"]
    assert entries[0]["dropin"]["before"] is None
    undo = cli("rollback", "--yes", *flags)
    assert undo.returncode == 0, undo.stderr
    assert not dropin.exists()


def test_bad_concurrency(cli: Cli) -> None:
    run = cli("limits", "--concurrency", "0")
    assert run.returncode == 2 and "argument --concurrency: must be at least 1, got 0" in run.stderr
