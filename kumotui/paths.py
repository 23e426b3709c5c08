"""Where kumotui finds and keeps things: XDG config and state dirs, sysctl defaults.

Every path can be redirected: the CLI's ``--state-dir`` and ``--sysctl-d``
flags, or ``KUMOTUI_CONFIG_DIR`` / ``KUMOTUI_STATE_DIR`` / ``XDG_*`` for the
config and state dirs, so tests and simulations never touch the real system.
"""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    """The user's config dir: ``$KUMOTUI_CONFIG_DIR`` or ``$XDG_CONFIG_HOME/kumotui``."""
    override = os.environ.get("KUMOTUI_CONFIG_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kumotui"


def user_profiles_dir() -> Path:
    """Where user profiles live; they may extend shipped ones."""
    return config_dir() / "profiles"


def default_state_dir() -> Path:
    """Journal and run records: ``$KUMOTUI_STATE_DIR``, else ``/var/lib/kumotui`` as root, else XDG state.

    The override wins for root too (root ignores ``XDG_STATE_HOME``), so a
    test or a trial run can keep its records away from the real ones.
    """
    override = os.environ.get("KUMOTUI_STATE_DIR")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/lib/kumotui")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kumotui"


DEFAULT_SYSCTL_ROOT = Path("/proc/sys")
DEFAULT_SYSCTL_D = Path("/etc/sysctl.d")
DROP_IN_NAME = "90-kumomta.conf"
