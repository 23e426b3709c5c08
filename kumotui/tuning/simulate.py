"""Simulated hosts: a directory laid out like ``/proc/sys`` and ``/etc``.

For trying kumotui without touching a kernel (``kumotui simulate DIR``),
for the guided setup's practice run, and for tests and screenshots. The
values are what a current Debian kernel under systemd reports, so the
profile's verdicts look exactly as they would on a fresh server.
"""

from __future__ import annotations

from pathlib import Path

from kumotui.errors import KumotuiError
from kumotui.settings import Settings
from kumotui.tuning.sysctl import key_to_relpath

MODERN_KERNEL = {
    "fs.file-max": "9223372036854775807",
    "kernel.shmmax": "18446744073692774399",
    "net.core.somaxconn": "4096",
    "net.core.rmem_default": "212992",
    "net.core.wmem_default": "212992",
    "net.core.rmem_max": "212992",
    "net.core.wmem_max": "212992",
    "net.ipv4.ip_local_port_range": "32768\t60999",
    "net.ipv4.tcp_tw_reuse": "2",
    "vm.max_map_count": "65530",
    "vm.nr_hugepages": "0",
    "kernel.shmmni": "4096",
    "net.ipv4.ip_unprivileged_port_start": "1024",
    "net.core.netdev_max_backlog": "1000",
    "net.ipv4.tcp_max_syn_backlog": "1024",
    "net.ipv4.tcp_fin_timeout": "60",
    "fs.nr_open": "1048576",
    "net.ipv4.tcp_rmem": "4096\t131072\t6291456",
    "net.ipv4.tcp_wmem": "4096\t16384\t4194304",
    "net.ipv4.tcp_slow_start_after_idle": "1",
    "net.ipv4.tcp_max_tw_buckets": "262144",
    "kernel.hostname": "mta-sim",
    "kernel.osrelease": "6.1.0-sim-amd64",
}
"""A current Debian kernel's values for every key the shipped profiles name."""


def write_tree(root: Path, values: dict[str, str]) -> Path:
    """Write ``values`` as files laid out like /proc/sys under ``root``."""
    for key, value in values.items():
        path = root / key_to_relpath(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return root


def create(base: Path) -> Settings:
    """``kumotui simulate DIR``: a new simulated host in a new or empty directory.

    Refused with a clear error (never a traceback): a path that is a file, a
    symbolic link (a link planted under a predictable name would send the
    tree somewhere else), a directory that is not empty, or one that cannot
    be made.
    """
    if base.is_symlink():
        raise KumotuiError(f"{base}: a symbolic link; give the real directory")
    if base.exists() and not base.is_dir():
        raise KumotuiError(f"{base}: not a directory; choose a new directory")
    try:
        if base.is_dir() and any(base.iterdir()):
            raise KumotuiError(f"{base}: not empty; choose a new directory")
        base.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as error:
        raise KumotuiError(f"{base}: cannot make the directory: {error.strerror}") from None
    return make_simulated_host(base.resolve())


def make_simulated_host(base: Path, values: dict[str, str] | None = None, *, read_only: bool = False) -> Settings:
    """A whole simulated host under ``base``: ``proc/sys``, ``etc/sysctl.d``,
    ``var/lib/kumotui``; returns settings that point every read and write there."""
    try:
        write_tree(base / "proc" / "sys", values or MODERN_KERNEL)
        (base / "etc" / "sysctl.d").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise KumotuiError(f"{error.filename or base}: cannot write a simulated host: {error.strerror}") from None
    return Settings(
        sysctl_root=base / "proc" / "sys",
        sysctl_d=base / "etc" / "sysctl.d",
        state_dir=base / "var" / "lib" / "kumotui",
        system_root=base,
        read_only=read_only,
    )


def flags_for(settings: Settings) -> list[str]:
    """The command-line flags that select a simulated host."""
    return [
        "--sysctl-root",
        str(settings.sysctl_root),
        "--sysctl-d",
        str(settings.sysctl_d),
        "--state-dir",
        str(settings.state_dir),
        "--system-root",
        str(settings.system_root),
    ]
