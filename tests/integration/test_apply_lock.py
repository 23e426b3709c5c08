"""One apply at a time: two real processes race for the same host, and the second one waits, then refuses.

The first process holds the state dir's lock; the second, a real ``kumotui
apply`` or ``rollback``, must wait a few seconds, refuse with who holds the
lock (pid, command, since when, which machine), and change nothing. A kill
releases the lock at once (the kernel drops a dead process's flock). Over
SSH the lock is held on the remote host, by kumotui's agent there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kumotui.hosts.address import HostSpec
from kumotui.hosts.remote import RemoteHost
from tests.support.cli import Cli, kumotui
from tests.support.processes import children, stop
from tests.support.slow import kumotui_slowed, require_strace
from tests.support.sshd import Sshd
from tests.support.trees import host_flags, read_tree, snapshot
from tests.support.waits import wait_until

WAIT = 5.0
"""Seconds a second apply waits (:data:`kumotui.tuning.lock.WAIT`)."""

HOLDER = """
import sys, time
from pathlib import Path
from kumotui.hosts.local import LocalHost
from kumotui.tuning.lock import hold
with hold(LocalHost(), Path(sys.argv[1]), command="kumotui apply --yes (the first one)"):
    print("held", flush=True)
    time.sleep(120)
"""


def start_holder(state: Path) -> subprocess.Popen[str]:
    """A second process that takes the lock through kumotui's own lock module and keeps it."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def lock_pid(state: Path) -> int | None:
    try:
        pid = json.loads((state / "apply.lock").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None
    return int(pid)


@pytest.mark.parametrize("command", [["apply", "--yes"], ["rollback", "--yes"]])
def test_a_second_apply_waits_then_names_the_holder(sim_paths: dict[str, Path], cli: Cli, command: list[str]) -> None:
    if command[0] == "rollback":
        assert cli("apply", "--yes", *host_flags(sim_paths)).returncode == 0
    before = snapshot(sim_paths["tree"])
    holder = start_holder(sim_paths["state"])
    try:
        started = time.monotonic()
        run = kumotui(*command, *host_flags(sim_paths))
        waited = time.monotonic() - started
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert run.returncode == 2, run.stdout + run.stderr
    assert waited >= WAIT * 0.9, f"refused after {waited:.1f} s without waiting"
    assert f"pid {holder.pid} (kumotui apply --yes (the first one))" in run.stderr
    assert " since 20" in run.stderr and " on " in run.stderr and "apply.lock" in run.stderr
    assert "Traceback" not in run.stderr
    assert snapshot(sim_paths["tree"]) == before
    # The holder was killed: its lock went with it, and the same command now works at once.
    started = time.monotonic()
    again = kumotui(*command, *host_flags(sim_paths))
    assert again.returncode == 0, again.stdout + again.stderr
    assert time.monotonic() - started < WAIT


def test_two_real_applies_never_interleave(sim_paths: dict[str, Path], cli: Cli) -> None:
    """A real ``kumotui apply`` slowed at every fsync holds the lock; a second real one refuses, naming it."""
    require_strace()
    first = kumotui_slowed(
        ["apply", "--yes", *map(str, host_flags(sim_paths))],
        {"fsync": 1.5},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        journal = sim_paths["state"] / "journal"
        # The first apply is mid-way once its pending journal entry exists (fsyncs are slow now).
        assert wait_until(lambda: journal.is_dir() and any(journal.glob("*.json")), timeout=30), "no apply started"
        pid = lock_pid(sim_paths["state"])
        assert pid in children(first.pid)  # the kumotui under strace holds it
        second = kumotui("apply", "--yes", "--set", "vm.max_map_count=999999", *host_flags(sim_paths))
        out, err = first.communicate(timeout=60)
    finally:
        stop(first)
    assert first.returncode == 0, out + err
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"pid {pid} (kumotui apply --yes --sysctl-root" in second.stderr
    assert read_tree(sim_paths["tree"], "vm.max_map_count") == "768000"  # the first one's value, alone
    entries = json.loads(cli("journal", "--json", *host_flags(sim_paths)).stdout)
    assert [(e["kind"], e["status"]) for e in entries] == [("apply", "applied")]


def test_limits_apply_takes_the_same_lock(tmp_path: Path) -> None:
    state = tmp_path / "state"
    holder = start_holder(state)
    try:
        run = kumotui(
            "limits", "--apply", "--yes", "--system-root", tmp_path / "root", "--state-dir", state, timeout=60
        )
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert run.returncode == 2 and f"pid {holder.pid}" in run.stderr, run.stdout + run.stderr
    assert not (tmp_path / "root/etc/systemd").exists()


def test_the_lock_of_a_remote_host_is_held_there(
    sshd: Sshd, sim_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent on the remote host holds the flock: a second kumotui (there or here) waits for it,
    and a dropped SSH session releases it."""
    from kumotui.tuning.lock import hold

    monkeypatch.setenv("KUMOTUI_SSH_CONFIG", str(sshd.ssh_config))
    remote = RemoteHost(HostSpec.parse(sshd.spec))
    try:
        with hold(remote, sim_paths["state"], command="kumotui apply --host far"):
            holder = json.loads((sim_paths["state"] / "apply.lock").read_text())
            run = kumotui("apply", "--yes", "--host", sshd.spec, *host_flags(sim_paths), env=sshd.env())
            local = kumotui("apply", "--yes", *host_flags(sim_paths))
    finally:
        remote.close()
    for refused in (run, local):
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"pid {holder['pid']} (kumotui apply --host far)" in refused.stderr
    assert read_tree(sim_paths["tree"], "vm.max_map_count") == "65530"
    # Take it again and drop the session without unlocking: the remote agent dies, and the lock with it.
    remote = RemoteHost(HostSpec.parse(sshd.spec))
    lock = hold(remote, sim_paths["state"], command="dropped")
    lock.__enter__()
    try:
        os.kill(remote._agent.pid, signal.SIGKILL)  # the SSH channel to the agent drops
        after = kumotui("apply", "--yes", "--host", sshd.spec, *host_flags(sim_paths), env=sshd.env())
    finally:
        lock.__exit__(None, None, None)
        remote.close()
    assert after.returncode == 0, after.stdout + after.stderr
