"""The options every face of kumotui shares (CLI flags, app factory, tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kumotui.paths import DEFAULT_SYSCTL_D, DEFAULT_SYSCTL_ROOT

DEFAULT_PROFILE = "kumomta"
"""The profile used when none is named: KumoMTA's published values."""


def local_now() -> datetime:
    """The current local time, with its UTC offset (journal times read as the operator's)."""
    return datetime.now().astimezone()


@dataclass(frozen=True)
class Settings:
    """Where to read and write, and which profile to judge by."""

    profile: str = DEFAULT_PROFILE
    """A profile name (user dir, then shipped) or a path to a YAML file."""
    sysctl_root: Path = DEFAULT_SYSCTL_ROOT
    """``/proc/sys``, or a directory laid out like it for simulation."""
    sysctl_d: Path = DEFAULT_SYSCTL_D
    """Where the persistent drop-in is written (``90-kumomta.conf``)."""
    state_dir: Path | None = None
    """Journal and run records; None means the host's default
    (``/var/lib/kumotui`` as root, else ``$XDG_STATE_HOME/kumotui``), decided
    on the host that is changed, so a remote journal lives remotely."""
    system_root: Path = Path("/")
    """Where ``run/sysctl.d``, ``usr/lib/sysctl.d`` and ``etc/sysctl.conf`` are
    looked up for boot-precedence warnings (tests point it at a fake tree)."""
    read_only: bool = False
    """Never write; show the commands to run by hand instead."""
    hosts: tuple[str, ...] = ()
    """``[user@]host[:port]`` of remote hosts; empty means this machine."""
    identity: Path | None = None
    """An SSH private key for ``hosts`` (else OpenSSH's own choice)."""
    clock: Callable[[], datetime] = local_now
    """What "now" is for journal entries, drop-in headers and run ids (screenshots freeze it)."""
