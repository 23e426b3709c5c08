"""A crash at any instant is recoverable: real ``kumotui apply`` and ``rollback`` processes, SIGKILLed at random.

Each run gives a fresh simulated host (24 keys the profile raises, and in
every other run an existing drop-in of the admin's own) to a real ``python
-m kumotui apply --yes`` under strace, which slows every write point down
from outside (a value's ``write``, each ``fsync`` and ``rename`` of the
journal and the drop-in) so that random kill times spread over all of them.
After the SIGKILL the test records where the apply was (from the journal and
the files, not from kumotui's word), checks that ``check`` now says an apply
was interrupted and names the command that undoes it, runs that rollback,
and compares every file of the tree and the drop-in, byte for byte, with the
originals. The loop goes on until every point was hit (or a generous cap),
then prints how often each was.

A second loop does the same to ``rollback`` itself: a rollback killed half
way is finished by the next one.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.processes import alive, children
from tests.support.slow import WRITE_POINTS, slowed, strace_usable
from tests.support.trees import host_flags, host_paths, make_tree
from tests.support.waits import wait_until

pytestmark = pytest.mark.serial  # kill timing: alone on the machine

KEYS = 24
DELAYS = {
    **dict.fromkeys(WRITE_POINTS, 0.006),
    "write": 0.002,
    "fsync": 0.02,
}
"""Seconds strace holds each write point: values go by one at a time, files linger at fsync and rename."""

APPLY_POINTS = (
    "killed before its journal entry existed (host untouched)",
    "pending, no value written yet",
    "pending, some values written",
    "pending, every value written, drop-in not yet replaced",
    "pending, drop-in replaced, journal not completed",
    "applied (finished before the kill)",
)
ROLLBACK_POINTS = (
    "killed before the rollback's journal entry existed",
    "rollback pending, some values restored",
    "rollback pending, every value restored, drop-in not yet",
    "rollback done (finished before the kill, or just after)",
)
MIN_RUNS = 40
MAX_RUNS = 120


@dataclass
class Host:
    """One run's simulated host and its originals."""

    paths: dict[str, Path]
    profile: Path
    originals: dict[str, bytes]
    dropin: bytes | None

    @property
    def flags(self) -> list[str]:
        return ["--profile", str(self.profile), *map(str, host_flags(self.paths))]

    @property
    def dropin_path(self) -> Path:
        return self.paths["sysctl_d"] / "90-kumomta.conf"

    def tree_now(self) -> dict[str, bytes]:
        tree = self.paths["tree"]
        return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}

    def dropin_now(self) -> bytes | None:
        return self.dropin_path.read_bytes() if self.dropin_path.exists() else None

    def changed_keys(self) -> int:
        now = self.tree_now()
        return sum(1 for name, data in self.originals.items() if now[name] != data)

    def journal(self) -> list[dict[str, object]]:
        directory = self.paths["state"] / "journal"
        return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))] if directory.is_dir() else []

    def assert_original(self, context: str) -> None:
        assert self.tree_now() == self.originals, context
        assert self.dropin_now() == self.dropin, context


def make_host(base: Path, with_dropin: bool) -> Host:
    values = {f"kernel.kt_{i:03d}": str(100 + i) for i in range(KEYS)}
    values["kernel.hostname"] = "mta-crash"
    tree = make_tree(base / "proc-sys", values)
    paths = host_paths(base, tree)
    paths["sysctl_d"].mkdir(parents=True)
    if with_dropin:
        (paths["sysctl_d"] / "90-kumomta.conf").write_text(
            "# the admin's own\nkernel.kt_000 = 100\nfs.aio-max-nr = 1048576\n"
        )
    profile = base / "crash.yaml"
    params = "".join(
        f"  kernel.kt_{i:03d}: {{value: {1000 + i}, rule: at-least, why: a key to crash in}}\n" for i in range(KEYS)
    )
    profile.write_text(f"name: crash\ntitle: Crash test\nsource: tests\nparams:\n{params}")
    host = Host(paths, profile, {}, None)
    host.originals = host.tree_now()
    host.dropin = host.dropin_now()
    return host


def start(command: list[str], host: Host) -> subprocess.Popen[bytes]:
    """A real kumotui, slowed at its write points, in its own process group (killed as a whole)."""
    return subprocess.Popen(
        [*slowed(DELAYS), sys.executable, "-m", "kumotui", *command, *host.flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_entries(host: Host, count: int, process: subprocess.Popen[bytes], timeout: float = 30) -> float | None:
    """Until the journal holds ``count`` entries: the time it took, or None when the process ended first."""
    directory = host.paths["state"] / "journal"
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if directory.is_dir() and len(list(directory.glob("*.json"))) >= count:
            return time.monotonic() - began
        if process.poll() is not None:
            return None
        time.sleep(0.001)
    raise AssertionError("no journal entry appeared")


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to kumotui and strace at once: no signal handler, no cleanup, no last write.

    Returns once kumotui itself is gone (it dies a moment after strace).
    """
    pids = [process.pid, *children(process.pid)]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert wait_until(lambda: not any(alive(pid) for pid in pids), timeout=30), f"{pids} outlived SIGKILL"


def calibrate(base: Path, command: list[str], entries: int, prepare: bool) -> tuple[float, float]:
    """Seconds until the run's journal entry appears, and from then until the journal says it is done,
    in one unkilled run: kill times are drawn over that window."""
    host = make_host(base, with_dropin=True)
    if prepare:
        subprocess.run(
            [sys.executable, "-m", "kumotui", "apply", "--yes", *host.flags], check=True, capture_output=True
        )
    process = start(command, host)
    to_entry = wait_entries(host, entries, process)
    assert to_entry is not None
    began = time.monotonic()

    def done() -> bool:
        journal = host.journal()
        return journal[0].get("rolled_back_by") is not None if prepare else journal[-1]["status"] == "applied"

    assert wait_until(done, timeout=60, interval=0.001), "the calibration run never finished"
    to_done = time.monotonic() - began
    process.wait(timeout=60)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    return to_entry, to_done


def apply_point(host: Host) -> str:
    entries = host.journal()
    if not entries:
        return APPLY_POINTS[0]
    (entry,) = entries
    if entry["status"] == "applied":
        return APPLY_POINTS[5]
    assert entry["status"] == "pending", entry
    if host.dropin_now() != host.dropin:
        return APPLY_POINTS[4]
    changed = host.changed_keys()
    return APPLY_POINTS[1 if changed == 0 else 3 if changed == KEYS else 2]


def rollback_point(host: Host) -> str:
    entries = host.journal()
    if len(entries) == 1:
        return ROLLBACK_POINTS[0]
    rollback = entries[-1]
    if rollback["status"] == "applied":
        return ROLLBACK_POINTS[3]
    changed = host.changed_keys()
    return ROLLBACK_POINTS[2 if changed == 0 else 1]


def require_slowdown() -> None:
    if not strace_usable():
        if os.environ.get("CI"):
            pytest.fail("CI installs strace and allows ptrace; the kill loop needs it")
        pytest.skip("strace is not installed or ptrace is not allowed: kill times could not reach every point")


def test_a_killed_apply_is_always_rolled_back_exactly(tmp_path: Path, cli: Cli) -> None:
    require_slowdown()
    rng = random.Random(int(os.environ.get("KUMOTUI_TEST_SEED", time.time_ns())))
    to_entry, after_entry = calibrate(tmp_path / "calibrate", ["apply", "--yes"], 1, prepare=False)
    hits: Counter[str] = Counter()
    runs = 0
    while runs < MIN_RUNS or (len(hits) < len(APPLY_POINTS) and runs < MAX_RUNS):
        host = make_host(tmp_path / f"run-{runs:03d}", with_dropin=runs % 2 == 0)
        process = start(["apply", "--yes"], host)
        if runs % 8 == 7:  # some before the journal entry: lock, plan, the entry's own write
            time.sleep(rng.uniform(0.0, to_entry))
        elif wait_entries(host, 1, process) is not None:
            time.sleep(rng.uniform(0.0, after_entry * 1.1))
        kill(process)
        point = apply_point(host)
        hits[point] += 1
        runs += 1
        context = f"run {runs}, {point}"

        check = cli("check", *host.flags)
        entry_id = host.journal()[0]["id"] if host.journal() else None
        if point in APPLY_POINTS[1:5]:
            assert f"was interrupted (journal entry {entry_id}" in check.stderr, context
            assert f"kumotui rollback {entry_id}" in check.stderr, context
        else:
            assert "warning" not in check.stderr, context + check.stderr

        undo = cli("rollback", "--yes", *host.flags)
        if point == APPLY_POINTS[0]:
            assert undo.returncode == 2 and "nothing to roll back" in undo.stderr, context + undo.stderr
        else:
            assert undo.returncode == 0, context + undo.stdout + undo.stderr
        host.assert_original(context)
        assert "warning" not in cli("check", *host.flags).stderr, context
    report = "\n".join(f"  {hits[p]:3d}  {p}" for p in APPLY_POINTS)
    print(f"\nkill loop: {runs} real applies SIGKILLed, every one rolled back exactly:\n{report}")
    assert len(hits) == len(APPLY_POINTS), f"not every point was hit in {runs} runs:\n{report}"


def test_a_killed_rollback_is_finished_by_the_next(tmp_path: Path, cli: Cli) -> None:
    require_slowdown()
    rng = random.Random(int(os.environ.get("KUMOTUI_TEST_SEED", time.time_ns())))
    to_entry, after_entry = calibrate(tmp_path / "calibrate", ["rollback", "--yes"], 2, prepare=True)
    hits: Counter[str] = Counter()
    runs = 0
    while runs < MIN_RUNS // 2 or (len(hits) < len(ROLLBACK_POINTS) and runs < MAX_RUNS // 2):
        host = make_host(tmp_path / f"run-{runs:03d}", with_dropin=runs % 2 == 0)
        assert cli("apply", "--yes", *host.flags).returncode == 0
        process = start(["rollback", "--yes"], host)
        if runs % 6 == 5:
            time.sleep(rng.uniform(0.0, to_entry))
        elif wait_entries(host, 2, process) is not None:
            time.sleep(rng.uniform(0.0, after_entry * 1.1))
        kill(process)
        point = rollback_point(host)
        hits[point] += 1
        runs += 1
        context = f"run {runs}, {point}"
        if point in ROLLBACK_POINTS[1:3]:
            apply_id = host.journal()[0]["id"]
            check = cli("check", *host.flags)
            assert f"finish it with: kumotui rollback {apply_id}" in check.stderr, context + check.stderr
        undo = cli("rollback", "--yes", *host.flags)
        if point == ROLLBACK_POINTS[3]:
            assert undo.returncode == 2 and "nothing to roll back" in undo.stderr, context + undo.stderr
        else:
            assert undo.returncode == 0, context + undo.stdout + undo.stderr
        host.assert_original(context)
        assert "warning" not in cli("check", *host.flags).stderr, context
    report = "\n".join(f"  {hits[p]:3d}  {p}" for p in ROLLBACK_POINTS)
    print(f"\nkill loop: {runs} real rollbacks SIGKILLed, every one finished exactly:\n{report}")
    assert len(hits) == len(ROLLBACK_POINTS), f"not every point was hit in {runs} runs:\n{report}"


def test_the_journal_entry_is_on_disk_before_the_first_write(sim_paths: dict[str, Path], tmp_path: Path) -> None:
    """From a real apply's system calls: the entry (with every original) is fsynced, renamed into
    place and its directory fsynced before any value or the drop-in is opened for writing."""
    require_slowdown()
    log = tmp_path / "calls.log"
    calls = "trace=openat,write,fsync,rename,renameat,renameat2"
    args = [*map(str, host_flags(sim_paths))]
    subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-y",
            "-o",
            str(log),
            "-e",
            calls,
            sys.executable,
            "-m",
            "kumotui",
            "apply",
            "--yes",
            *args,
        ],
        check=True,
        capture_output=True,
    )
    # Files are opened beneath their directory (openat on a directory descriptor, O_NOFOLLOW), so
    # strace -y names each descriptor's path: "openat(5</tree/net/core>, \"somaxconn\", O_WRONLY...".
    lines = log.read_text().splitlines()
    tree, dropin_dir = str(sim_paths["tree"]), str(sim_paths["sysctl_d"])
    journal = str(sim_paths["state"] / "journal")

    def opened_in(line: str, directory: str) -> bool:
        return f"<{directory}" in line.split(",", 1)[0] or f'"{directory}/' in line

    first_write = next(
        i
        for i, line in enumerate(lines)
        if "openat(" in line and "O_WRONLY" in line and (opened_in(line, tree) or opened_in(line, dropin_dir))
    )
    temp = next(
        i for i, line in enumerate(lines) if "openat(" in line and "O_CREAT" in line and opened_in(line, journal)
    )
    renamed = next(i for i, line in enumerate(lines) if "rename" in line and '.json"' in line and journal in line)
    assert temp < renamed < first_write, "\n".join(lines[temp : first_write + 1])
    assert any("fsync(" in line for line in lines[temp:renamed]), "the entry was not fsynced before its rename"
    assert any("fsync(" in line for line in lines[renamed:first_write]), "its directory was not fsynced"
    entry = json.loads(next((sim_paths["state"] / "journal").glob("*.json")).read_text())
    assert {c["key"]: c["before"] for c in entry["changes"]}["net.ipv4.ip_local_port_range"] == "32768\t60999"
