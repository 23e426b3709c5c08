"""A pytest plugin that fails the session when the suite touched this machine's own kumotui files.

Tests point every kumotui path at temporary directories (``tests/conftest.py``);
this guard checks that it worked. Before the session it records each
guarded path (does it exist; every file and directory under it with size
and modification time), after the session it records them again, and any
difference fails the run with a message naming the path. Under
pytest-xdist only the controller process does this, once for the whole
run, so a change made by any worker is caught.

``KUMOTUI_TEST_GUARD_PATHS`` (paths separated by ``os.pathsep``) replaces the
guarded list; the guard's own test uses it to prove the guard on temporary
paths instead of real ones.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

GUARD_ENV = "KUMOTUI_TEST_GUARD_PATHS"

GUARDED = (
    Path("/var/lib/kumotui"),
    Path.home() / ".local/state/kumotui",
    Path.home() / ".config/kumotui",
    Path("/etc/sysctl.d"),
    Path("/etc/sysctl.conf"),
    Path("/etc/systemd/system/kumomta.service.d"),
    Path("/etc/postfix"),
)
"""The real state and config dirs, the system files kumotui writes when it really applies, and the
system Postfix's config (the ``postfix_mta`` relays only read it)."""

Listing = dict[str, tuple[str, int, int]]
"""Relative name ('.' for the path itself) -> (kind, size, mtime in ns)."""

_BEFORE = pytest.StashKey[dict[str, Listing | None]]()
_FOUND = pytest.StashKey[list[str]]()


def guarded_paths() -> tuple[Path, ...]:
    """The paths this run guards: :data:`GUARDED`, or those ``KUMOTUI_TEST_GUARD_PATHS`` names."""
    override = os.environ.get(GUARD_ENV)
    if override:
        return tuple(Path(part) for part in override.split(os.pathsep) if part)
    return GUARDED


def listing(path: Path) -> Listing | None:
    """What is at ``path`` now (None when nothing is); a directory with everything under it."""
    try:
        top = path.lstat()
    except FileNotFoundError:
        return None
    found: Listing = {".": (_kind(top.st_mode), top.st_size, top.st_mtime_ns)}
    if path.is_dir() and not path.is_symlink():
        for directory, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                full = Path(directory, name)
                try:
                    info = full.lstat()
                except FileNotFoundError:  # removed while we looked: the next look will differ
                    continue
                found[str(full.relative_to(path))] = (_kind(info.st_mode), info.st_size, info.st_mtime_ns)
    return found


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "file"


def record(paths: tuple[Path, ...]) -> dict[str, Listing | None]:
    """A listing of every guarded path."""
    return {str(path): listing(path) for path in paths}


def changes(before: dict[str, Listing | None], after: dict[str, Listing | None]) -> list[str]:
    """One line per guarded path that differs, naming the path and what changed."""
    lines: list[str] = []
    for path, was in before.items():
        now = after.get(path)
        if was == now:
            continue
        if was is None:
            lines.append(f"{path}: created during the test run")
            continue
        if now is None:
            lines.append(f"{path}: removed during the test run")
            continue
        added = sorted(set(now) - set(was))
        removed = sorted(set(was) - set(now))
        changed = sorted(name for name in set(was) & set(now) if was[name] != now[name])
        parts = [f"{label} {', '.join(names)}" for label, names in (("added", added), ("removed", removed)) if names]
        if changed:
            parts.append(f"changed {', '.join(changed)}")  # '.' is the path itself (a directory's entries)
        lines.append(f"{path}: {'; '.join(parts)}")
    return lines


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")  # set by pytest-xdist in its worker processes


def pytest_sessionstart(session: pytest.Session) -> None:
    """Record the guarded paths before any test runs (the controller only, under xdist)."""
    if not _is_worker(session.config):
        session.config.stash[_BEFORE] = record(guarded_paths())


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Compare with the record; any change fails the session."""
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    found = changes(before, record(tuple(Path(path) for path in before)))
    session.config.stash[_FOUND] = found
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say which real path the run touched, above the final counts."""
    found = config.stash.get(_FOUND, [])
    if found:
        terminalreporter.section("kumotui guard: real files changed during the test run", sep="!", red=True, bold=True)
        for line in found:
            terminalreporter.line(line, red=True)
        terminalreporter.line("Tests must use temporary dirs (KUMOTUI_STATE_DIR, KUMOTUI_CONFIG_DIR, --sysctl-d ...).")
