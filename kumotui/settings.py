"""The options every face of kumotui shares (CLI flags, app factory, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kumotui.locations import DEFAULT_SYSCTL_D, DEFAULT_SYSCTL_ROOT, default_state_dir
from kumotui.profiles import DEFAULT_PROFILE


@dataclass(frozen=True)
class Settings:
    """Where to read and write, and which profile to judge by."""

    profile: str = DEFAULT_PROFILE
    """A profile name (user dir, then shipped) or a path to a YAML file."""
    sysctl_root: Path = DEFAULT_SYSCTL_ROOT
    """``/proc/sys``, or a directory laid out like it for simulation."""
    sysctl_d: Path = DEFAULT_SYSCTL_D
    """Where the persistent drop-in is written (``90-kumomta.conf``)."""
    state_dir: Path = field(default_factory=default_state_dir)
    """Journal and run records."""
    system_root: Path = Path("/")
    """Where ``run/sysctl.d``, ``usr/lib/sysctl.d`` and ``etc/sysctl.conf`` are
    looked up for boot-precedence warnings (tests point it at a fake tree)."""
    read_only: bool = False
    """Never write; show the commands to run by hand instead."""
