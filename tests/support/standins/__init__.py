"""Stand-in KumoMTA executables for tests.

``kumod`` and ``traffic-gen`` here reproduce KumoMTA's documented command
lines and output bytes (see each script's docstring); :func:`install_kumomta`
lays them out as ``<prefix>/sbin/{kumod,traffic-gen}`` for
``KUMOMTA_PREFIX``, and :func:`load_standin` imports one to test its helpers.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

STANDINS = Path(__file__).resolve().parent
KUMOMTA_TOOLS = ("kumod", "traffic-gen")


def install_kumomta(prefix: Path) -> Path:
    """Symlink the stand-ins into ``prefix/sbin``; returns the sbin directory."""
    sbin = prefix / "sbin"
    sbin.mkdir(parents=True, exist_ok=True)
    for name in KUMOMTA_TOOLS:
        (sbin / name).symlink_to(STANDINS / name)
    return sbin


def load_standin(name: str) -> ModuleType:
    """One stand-in script as a module (they have no ``.py`` suffix)."""
    loader = importlib.machinery.SourceFileLoader(f"standin_{name.replace('-', '_')}", str(STANDINS / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
