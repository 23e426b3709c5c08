"""The session guard (``tests/support/guard.py``) on temporary paths, never the real ones.

Its listing and comparison are checked directly; then a whole inner pytest
session, under xdist, whose one passing test writes into a guarded
(temporary) directory, must fail and name that directory, and the same
session without the write must pass.

A throwaway run proved it on the real paths too (a bench run without
KUMOTUI_STATE_DIR, a remembered host without KUMOTUI_CONFIG_DIR: exit 1,
naming /var/lib/kumotui and ~/.config/kumotui); such a test never stays here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.guard import GUARD_ENV, changes, guarded_paths, record

REPO = Path(__file__).resolve().parents[2]


def test_changes_name_the_path_and_what_changed(tmp_path: Path) -> None:
    state, conf, absent = tmp_path / "state", tmp_path / "sysctl.conf", tmp_path / "absent"
    (state / "runs").mkdir(parents=True)
    (state / "runs" / "old.json").write_text("{}")
    conf.write_text("vm.max_map_count = 262144\n")
    paths = (state, conf, absent)
    before = record(paths)
    assert changes(before, record(paths)) == []

    (state / "runs" / "new.json").write_text("{}")
    (state / "runs" / "old.json").unlink()
    conf.write_text("vm.max_map_count = 1\n")  # another size
    absent.mkdir()
    found = changes(before, record(paths))
    assert found == [
        f"{state}: added runs/new.json; removed runs/old.json; changed runs",
        f"{conf}: changed .",
        f"{absent}: created during the test run",
    ]
    conf.unlink()
    assert f"{conf}: removed during the test run" in changes(before, record(paths))


def test_same_size_rewrite_is_caught_by_its_mtime(tmp_path: Path) -> None:
    conf = tmp_path / "90-kumomta.conf"
    conf.write_text("a = 1\n")
    os.utime(conf, ns=(1_000_000_000, 1_000_000_000))
    before = record((conf,))
    conf.write_text("a = 2\n")
    assert changes(before, record((conf,))) == [f"{conf}: changed ."]


def test_the_real_paths_are_guarded_unless_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(GUARD_ENV, raising=False)
    assert {"/var/lib/kumotui", "/etc/sysctl.d", "/etc/sysctl.conf", "/etc/systemd/system/kumomta.service.d"} <= {
        str(path) for path in guarded_paths()
    }
    assert {Path.home() / ".local/state/kumotui", Path.home() / ".config/kumotui"} <= set(guarded_paths())
    monkeypatch.setenv(GUARD_ENV, f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    assert guarded_paths() == (tmp_path / "a", tmp_path / "b")


@pytest.mark.processes
@pytest.mark.parametrize("touch", [True, False], ids=["writes", "leaves-alone"])
def test_a_session_that_writes_a_guarded_path_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, touch: bool
) -> None:
    guarded = tmp_path / "var-lib-kumotui"
    (guarded / "runs").mkdir(parents=True)
    monkeypatch.setenv(GUARD_ENV, str(guarded))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    pytester.makeconftest('pytest_plugins = ["tests.support.guard"]\n')
    action = "(GUARDED / 'runs' / 'stray.json').write_text('{}')" if touch else "pass"
    pytester.makepyfile(
        f"""
        from pathlib import Path

        GUARDED = Path({str(guarded)!r})

        def test_passes_but_writes():
            {action}
            assert True
        """
    )
    # Writing: under xdist, so a worker writes and the controller must notice. The clean
    # session needs no workers: the whole suite shows the guard quiet under xdist.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *(["-n", "2"] if touch else []))
    result.assert_outcomes(passed=1)  # the test itself passes either way; the guard decides the session
    if touch:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(
            ["*kumotui guard: real files changed during the test run*", f"{guarded}: added runs/stray.json*"]
        )
    else:
        assert result.ret == pytest.ExitCode.OK
        assert "kumotui guard" not in result.stdout.str()
