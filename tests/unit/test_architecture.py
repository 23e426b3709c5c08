"""The core never imports Textual: the CLI and remote jobs stay light.

import-linter's contracts (``pyproject.toml``, run by ``.ci/check``) prove the
same statically; this test proves it at run time, where a lazy import or a
plugin could still pull Textual in.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import kumotui

pytestmark = pytest.mark.processes  # fresh interpreters, so nothing this process imported can hide an import

FACES = ("kumotui.ui", "kumotui.cli", "kumotui.__main__")
"""The two faces open the app (the CLI only when asked to); everything else is core."""


def core_modules() -> list[str]:
    """Every kumotui module outside the faces."""
    return [
        info.name for info in pkgutil.walk_packages(kumotui.__path__, "kumotui.") if not info.name.startswith(FACES)
    ]


def test_core_modules_are_found() -> None:
    names = set(core_modules())
    assert {"kumotui.tuning.profiles", "kumotui.tuning.findings", "kumotui.bench.run", "kumotui.hosts.remote"} <= names
    assert not any(name.startswith(FACES) for name in names)


def test_no_core_module_imports_textual() -> None:
    """One interpreter imports every core module, then looks for Textual."""
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({n!r})\n" for n in core_modules())
    code += "sys.exit(1 if 'textual' in sys.modules else 0)\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"a core module pulls in textual\n{run.stderr}"


def test_the_cli_imports_textual_only_to_open_the_app() -> None:
    code = "import sys, kumotui.cli; sys.exit(1 if 'textual' in sys.modules else 0)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
