"""Run TuneD's own profile loader and sysctl plugin on a kumotui TuneD export, without the daemon.

Started by the tests as ``python tuned_judge.py STOCK_DIR PROFILES_DIR NAME TREE`` with
``PYTHONPATH`` at the ``tuned`` modules Debian's package ships (unpacked by
``.ci/setup --test`` into ``.ci/cache/tuned``). It loads profile NAME the way
``tuned`` does (the stock profiles first, so ``include=`` resolves), then lets
TuneD's ``SysctlPlugin`` apply the merged ``[sysctl]`` section, with one
change: the plugin's ``/proc/sys`` path function points at the simulated TREE,
so TuneD's parsing, variable expansion, unquoting, ``>``/``<`` comparison and
writes are its own, and no kernel value is touched. Prints JSON: the merged
options and the values TuneD wrote over (its ``_sysctl_original``).
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

import tuned.profiles as profiles
import tuned.profiles.variables as variables
from tuned.plugins import plugin_sysctl
from tuned.utils.commands import commands


class Storage:
    """TuneD's per-plugin storage (a file under /run in the daemon), in memory."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value

    def unset(self, key: str) -> None:
        self.data.pop(key, None)


class GlobalConfig:
    """tuned-main.conf: ``reapply_sysctl`` off, so TuneD does not re-read the machine's own sysctl files."""

    def get_bool(self, key: str, default: bool = False) -> bool:
        return False


def main() -> None:
    stock, mine, name, tree = sys.argv[1:5]
    loader = profiles.Loader(
        profiles.Locator([stock, mine]), profiles.Factory(), profiles.Merger(), None, variables.Variables()
    )
    profile = loader.load(name)
    options = dict(profile.units["sysctl"].options)
    plugin_sysctl._get_sysctl_path = lambda option: f"{tree}/{option.replace('.', '/')}"
    plugin = plugin_sysctl.SysctlPlugin.__new__(plugin_sysctl.SysctlPlugin)
    plugin._variables = variables.Variables()
    plugin._cmd = commands()
    plugin._storage = Storage()
    plugin._global_cfg = GlobalConfig()
    instance = SimpleNamespace(name="sysctl", _sysctl=options, _sysctl_original={})
    plugin._instance_apply_static(instance)
    print(json.dumps({"options": options, "overwritten": instance._sysctl_original}))


if __name__ == "__main__":
    main()
