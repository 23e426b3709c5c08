"""Another local user on a remote host cannot plant code in the directory kumotui runs from.

kumotui used to copy its engines and watchdog into ``/tmp/kumotui-engines-<hash
of their text>``: a name anyone can compute, in a directory anyone can write.
A throwaway unprivileged account (made here with ``useradd``, removed with
``userdel -r``) creates that directory first, with a ``watchdog.py`` and, beside
it, a ``signal.py`` and a ``subprocess.py`` that Python imports from the
script's directory before the standard library: each writes a marker. Then
root runs a benchmark whose sink is on the "remote" host (this machine, over
the sshd fixture, logged in as root). The marker must never appear; the
planted files stay as the attacker left them (kumotui neither ran nor wrote
them), and kumotui leaves no directory of its own behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import kumotui.engines
import kumotui.hosts
from tests.support.cli import Cli
from tests.support.sshd import Sshd

pytestmark = [
    pytest.mark.serial,  # adds and removes an account; looks at the real /tmp
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("useradd"), reason="needs root and useradd"),
]

PLANTED = """import os
with open({marker!r}, "a") as f:
    f.write("ran " + __file__ + " as uid " + str(os.getuid()) + "\\n")
raise SystemExit(0)
"""


def predictable_dir() -> Path:
    """Where the old scheme put the engines: ``<tempdir>/kumotui-engines-<first 12 hex of their hash>``."""
    engines = Path(kumotui.engines.__file__).parent
    watchdog = next(
        p for p in (Path(kumotui.hosts.__file__).parent / "watchdog.py", engines / "watchdog.py") if p.exists()
    )
    files = {p.name: p.read_text(encoding="utf-8") for p in (*engines.glob("smtp_*.py"), watchdog)}
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"kumotui-engines-{digest}"


@pytest.fixture
def attacker() -> Iterator[str]:
    """A throwaway unprivileged account, removed afterwards."""
    name = f"ktatk{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


@pytest.fixture
def planted(attacker: str, tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """The predictable directory, made by the attacker with code that writes a marker; (dir, marker, files)."""
    directory = predictable_dir()
    marker = tmp_path / "MARKER"
    files = {name: PLANTED.format(marker=str(marker)) for name in ("watchdog.py", "signal.py", "subprocess.py")}
    shutil.rmtree(directory, ignore_errors=True)
    as_attacker = ["runuser", "-u", attacker, "--"]
    subprocess.run([*as_attacker, "mkdir", "-m", "0777", str(directory)], check=True, cwd="/")
    for name, text in files.items():
        subprocess.run(
            [*as_attacker, "tee", str(directory / name)], input=text.encode(), stdout=subprocess.DEVNULL, check=True
        )
    assert directory.stat().st_uid != 0
    try:
        yield directory, marker, files
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def private_dirs() -> set[str]:
    """kumotui's private directories in the real temp dir (``mkdtemp``'s 8 random characters after the prefix).

    Only these: other checkouts' suites on this machine may make old-style 12-hex ones meanwhile.
    """
    return {p.name for p in Path(tempfile.gettempdir()).glob("kumotui-engines-????????") if p.is_dir()}


def test_a_planted_engines_directory_is_never_used(
    sshd: Sshd, planted: tuple[Path, Path, dict[str, str]], cli: Cli
) -> None:
    directory, marker, files = planted
    before = private_dirs()
    run = cli(
        "bench", "--local-sink", "--sink-host", sshd.spec, "--messages", "300", "--concurrency", "4", "--json",
        env=sshd.env(),
    )  # fmt: skip
    assert not marker.exists(), marker.read_text()
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["sent"] == 300 and result["sink"]["received"] == 300
    assert {p.name: p.read_text() for p in directory.iterdir()} == files  # neither run nor overwritten
    assert private_dirs() == before, "kumotui left a directory of its own"


def test_a_shared_parent_without_sticky_bit_is_refused(
    sshd: Sshd, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A temp dir anyone can write and rename in (0777, no sticky bit) is no place for a private directory."""
    from kumotui.hosts import launch

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setattr(launch, "REMOTE_TMPDIR", str(shared))
    run = cli("bench", "--local-sink", "--sink-host", sshd.spec, "--messages", "10", env=sshd.env())
    assert run.returncode == 2, run.stdout + run.stderr
    assert "cannot make a private directory" in run.stderr and "without the sticky bit" in run.stderr
    assert not any(shared.iterdir())
