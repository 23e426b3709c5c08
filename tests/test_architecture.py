"""The core never imports Textual: the CLI and remote jobs stay light."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import kumotui


def core_modules() -> list[str]:
    """Every kumotui module outside the ui package."""
    names = []
    for info in pkgutil.walk_packages(kumotui.__path__, "kumotui."):
        if not info.name.startswith("kumotui.ui") and info.name != "kumotui.__main__":
            names.append(info.name)
    return names


def test_core_modules_are_found() -> None:
    names = core_modules()
    assert {"kumotui.cli", "kumotui.profiles", "kumotui.findings", "kumotui.sysctl"} <= set(names)


def test_no_core_module_imports_textual() -> None:
    for name in core_modules():
        code = f"import sys, {name}; sys.exit(1 if 'textual' in sys.modules else 0)"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, f"{name} pulls in textual\n{run.stderr}"
