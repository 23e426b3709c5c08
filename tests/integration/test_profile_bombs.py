"""Profiles built to exhaust memory or time are refused fast, under a hard memory bound.

``kumotui check`` runs as a real process under ``prlimit --as`` (512 MiB of
address space) and a timeout, so a profile that still expanded would die of
MemoryError or run out the clock instead of taking the machine with it: an
855-byte alias bomb (ten keys per level, nine levels) and a sparse 4 GiB
file, which costs no disk but would be read whole.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.support.cli import kumotui
from tests.support.trees import MODERN_KERNEL, make_tree

MEMORY = 512 << 20
SECONDS = 10.0


def alias_bomb(path: Path) -> Path:
    """Nine levels of mappings, each aliasing the one before ten times: 10^9 keys once expanded."""
    lines = [
        "name: bomb",
        "params:",
        "  vm.max_map_count: {value: 1, rule: at-least, why: x}",
        "x0: &x0 {a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1, h: 1, i: 1, j: 1}",
    ]
    for level in range(1, 9):
        ref = f"*x{level - 1}"
        lines.append(f"x{level}: &x{level} {{" + ", ".join(f"{k}: {ref}" for k in "abcdefghij") + "}")
    path.write_text("\n".join(lines) + "\n")
    return path


def bounded_check(profile: Path, tree: Path) -> tuple[int, str, float]:
    """``kumotui check`` as a process with at most :data:`MEMORY` of address space."""
    if not shutil.which("prlimit"):
        pytest.skip("prlimit (util-linux) is not installed")
    start = time.monotonic()
    run = kumotui(
        "check", "--profile", profile, "--sysctl-root", tree, prefix=["prlimit", f"--as={MEMORY}", "--"], timeout=60
    )
    return run.returncode, run.stderr, time.monotonic() - start


def test_an_alias_bomb_is_refused_at_its_first_anchor(tmp_path: Path) -> None:
    bomb = alias_bomb(tmp_path / "bomb.yaml")
    assert bomb.stat().st_size < 1024
    code, stderr, took = bounded_check(bomb, make_tree(tmp_path / "tree", MODERN_KERNEL))
    assert code == 2, stderr
    assert f"{bomb}:4: YAML anchor '&x0': anchors and aliases are not allowed" in stderr
    assert "MemoryError" not in stderr and "Traceback" not in stderr
    assert took < SECONDS


def test_a_huge_profile_is_refused_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:
        handle.write(b"name: huge\nparams:\n")
        os.truncate(handle.fileno(), 4 << 30)  # sparse: no disk used, 4 GiB to read
    code, stderr, took = bounded_check(huge, make_tree(tmp_path / "tree", MODERN_KERNEL))
    assert code == 2, stderr
    assert f"{huge}: larger than 256 KB" in stderr and "Traceback" not in stderr
    assert took < SECONDS
