"""The engines' worker pool as real processes: one worker that cannot start fails
the whole pool, says why, and leaves no process behind."""

from __future__ import annotations

import os
import time

import pytest

from kumotui.engines import smtp_common


def _refuse(report: smtp_common.Reporter) -> int:
    report("error", {"error": "127.0.0.1:2026 is already in use"})
    return 2


def _wait(report: smtp_common.Reporter) -> int:
    time.sleep(60)  # a worker that never reports ready: the pool must stop it, not wait for it
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
