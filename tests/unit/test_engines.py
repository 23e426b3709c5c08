"""The engines' shared plumbing: it ships with them and needs nothing else, and
a worker pool that cannot start says why and leaves no process behind."""

from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path

import pytest

from kumotui.engines import smtp_common, smtp_gen, smtp_sink

ENGINES = Path(smtp_common.__file__).parent
SHIPPED = sorted(ENGINES.glob("smtp_*.py"))
"""What ``kumotui.jobs.SshLauncher`` copies to a remote host (test_remote_bench runs the copies)."""


def _imported_modules(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports, relative ones included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.module is not None:
                names.add(node.module.split(".")[0])
            elif node.level:  # from . import NAME
                names.update(alias.name for alias in node.names)
    return names


def test_shipped_engines_import_only_the_stdlib_uvloop_and_each_other() -> None:
    """A host gets only the ``smtp_*.py`` files: anything else they import
    (kumotui, a sibling under another name) would fail there, not here."""
    shipped = {path.stem for path in SHIPPED}
    assert {"smtp_sink", "smtp_gen", "smtp_common"} <= shipped
    for path in SHIPPED:
        foreign = {
            name
            for name in _imported_modules(path)
            if name not in sys.stdlib_module_names and name != "uvloop" and name not in shipped
        }
        assert not foreign, f"{path.name} imports {sorted(foreign)}, which is not shipped"


def test_both_engines_use_the_one_common_module() -> None:
    """One StartError, so each engine's ``main`` catches what the pool raises."""
    assert vars(smtp_sink)["common"] is smtp_common and vars(smtp_gen)["common"] is smtp_common
    assert smtp_sink.StartError is smtp_gen.StartError is smtp_common.StartError


def _refuse(report: smtp_common.Reporter) -> int:
    report("error", {"error": "127.0.0.1:2026 is already in use"})
    return 2


def _wait(report: smtp_common.Reporter) -> int:
    time.sleep(60)
    return 0


def test_a_worker_that_cannot_start_fails_the_pool_and_leaves_no_children() -> None:
    pool = smtp_common.WorkerPool()
    pool.spawn(_wait)
    pool.spawn(_refuse)
    pids = list(pool.pids)
    with pytest.raises(smtp_common.StartError, match="already in use"):
        pool.wait_ready(timeout=10)
    assert pool.pids == []
    for pid in pids:
        with pytest.raises(ChildProcessError):  # reaped already: no orphan, no zombie
            os.waitpid(pid, os.WNOHANG)


def test_merge_states_adds_counters_and_keeps_maxima() -> None:
    merged = smtp_common.merge_states(
        [
            {"sent": 2, "by": {"4xx": 1}, "hist": [1, 0], "max_latency_us": 5, "loop": "uvloop"},
            {"sent": 3, "by": {"4xx": 2, "5xx": 1}, "hist": [0, 4], "max_latency_us": 9, "loop": "asyncio"},
        ]
    )
    assert merged == {"sent": 5, "by": {"4xx": 3, "5xx": 1}, "hist": [1, 4], "max_latency_us": 9, "loop": "uvloop"}
