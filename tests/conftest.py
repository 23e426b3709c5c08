"""Shared fixtures, the markers each directory implies, and the guard on real files.

Layout: ``unit/`` is the pure core and the in-process CLI, ``integration/``
runs real processes (engines, jobs, backends, sshd, a kernel namespace),
``ui/`` drives the app with Pilot, ``snapshots/`` compares SVG snapshots;
``support/`` holds the helpers they share.

Markers (registered in ``pyproject.toml``, ``--strict-markers``) come from
the place and the fixtures: ``integration/`` -> ``processes``; ``ui/`` ->
``ui``; ``snapshots/`` -> ``ui`` and ``snapshot``; the ``sshd`` fixture ->
``ssh``; the ``postfix_root`` and ``postfix_mta`` fixtures -> ``postfix``. ``netns``, ``serial``
and ``processes`` outside ``integration/`` are written on the tests.

Every test gets its own config and state dirs (:func:`isolated_dirs`), and
:mod:`tests.support.guard` fails the session if the machine's own kumotui
state, config or sysctl files changed anyway.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.postfix_mta import PostfixRelay, postfix_relay, require_postfix
from tests.support.smtp import postfix_tools
from tests.support.sshd import Sshd, available, start_sshd
from tests.support.standins import install_kumomta
from tests.support.trees import COMPLIANT, MODERN_KERNEL, host_paths, make_tree

pytest_plugins = ["pytester", "tests.support.guard"]

TESTS = Path(__file__).resolve().parent

MARKS_BY_DIRECTORY = {
    "integration": ("processes",),
    "ui": ("ui",),
    "snapshots": ("ui", "snapshot"),
}
MARKS_BY_FIXTURE = {"sshd": "ssh", "postfix_root": "postfix", "postfix_mta": "postfix"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its directory and by the fixtures it uses."""
    for item in items:
        parts = item.path.relative_to(TESTS).parts
        for name in MARKS_BY_DIRECTORY.get(parts[0], ()) if len(parts) > 1 else ():
            item.add_marker(name)
        for fixture, name in MARKS_BY_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(name)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the developer's own config or write the machine's state (root's is /var/lib/kumotui)."""
    monkeypatch.setenv("KUMOTUI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("KUMOTUI_STATE_DIR", str(tmp_path / "kumotui-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``kumotui.cli.main`` in-process: ``cli("check", "--json")`` -> returncode, stdout, stderr."""
    return Cli(capsys, monkeypatch)


@pytest.fixture
def modern_tree(tmp_path: Path) -> Path:
    """A simulated modern kernel: several values above KumoMTA's numbers."""
    return make_tree(tmp_path / "proc-sys", MODERN_KERNEL)


@pytest.fixture
def compliant_tree(tmp_path: Path) -> Path:
    """A simulated kernel on which the kumomta profile passes."""
    return make_tree(tmp_path / "proc-sys-ok", COMPLIANT)


@pytest.fixture
def sim_paths(tmp_path: Path, modern_tree: Path) -> dict[str, Path]:
    """A simulated host on the modern tree: ``tree``, ``sysctl_d``, ``state``, ``system`` (see ``host_flags``)."""
    return host_paths(tmp_path, modern_tree)


@pytest.fixture
def demo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run inside a fresh directory for the demo host, so its paths read ``etc/sysctl.d/...``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def kumo_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``<tmp>/kumomta/sbin/{kumod,traffic-gen}`` as the stand-ins, with ``KUMOMTA_PREFIX`` pointing there."""
    prefix = tmp_path / "kumomta"
    install_kumomta(prefix)
    monkeypatch.setenv("KUMOMTA_PREFIX", str(prefix))
    return prefix


@pytest.fixture
def public_tmp() -> Iterator[Path]:
    """A directory under /tmp as kumotui makes one for kumod: reachable by kumod's user after it drops root.

    pytest's own temporary dirs are 0700 root, which that user could not enter.
    """
    path = Path(tempfile.mkdtemp(prefix="kumotui-test-sink-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postfix_root() -> Path:
    """Where Postfix's smtp-sink and smtp-source are (skipped locally, a failure in CI, when missing)."""
    return postfix_tools()


@pytest.fixture
def postfix_mta(tmp_path: Path) -> Iterator[Callable[[int], PostfixRelay]]:
    """A real Postfix as the MTA under test: ``postfix_mta(sink_port)`` starts one relaying everything there.

    Each is stopped, with every process it started, after the test (or
    earlier by ``relay.stop()``). Skipped locally, a failure in CI, when
    Postfix is not installed.
    """
    require_postfix()
    with ExitStack() as running:
        yield lambda sink_port: running.enter_context(postfix_relay(sink_port, tmp_path=tmp_path))


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """One real OpenSSH server on 127.0.0.1 per test process; stopped by PID at the end."""
    if not available():
        if os.environ.get("CI"):
            pytest.fail("CI installs openssh-server; sshd must be available")
        pytest.skip("openssh-server is not installed")
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()
