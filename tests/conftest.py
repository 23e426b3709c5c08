"""Shared fixtures: simulated trees and isolated config/state dirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sshd import Sshd, available, start_sshd
from tests.trees import COMPLIANT, MODERN_KERNEL, make_tree


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the developer's own config or write their state."""
    monkeypatch.setenv("KUMOTUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def modern_tree(tmp_path: Path) -> Path:
    """A simulated modern kernel: several values above KumoMTA's numbers."""
    return make_tree(tmp_path / "proc-sys", MODERN_KERNEL)


@pytest.fixture
def compliant_tree(tmp_path: Path) -> Path:
    """A simulated kernel on which the kumomta profile passes."""
    return make_tree(tmp_path / "proc-sys-ok", COMPLIANT)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """One real OpenSSH server on 127.0.0.1 for every remote test; stopped by PID at the end."""
    if not available():
        if os.environ.get("CI"):
            pytest.fail("CI installs openssh-server; sshd must be available")
        pytest.skip("openssh-server is not installed")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()
