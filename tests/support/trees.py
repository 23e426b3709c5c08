"""Simulated /proc/sys trees for tests (never the machine's real kernel)."""

from __future__ import annotations

from pathlib import Path

from kumotui.tuning.simulate import MODERN_KERNEL as MODERN
from kumotui.tuning.simulate import write_tree
from kumotui.tuning.sysctl import key_to_relpath

TWELVE = (
    "fs.file-max",
    "kernel.shmmax",
    "net.core.somaxconn",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "vm.max_map_count",
    "vm.nr_hugepages",
    "kernel.shmmni",
)

MODERN_KERNEL = {
    key: MODERN[key] for key in (*TWELVE, "net.ipv4.ip_unprivileged_port_start", "kernel.hostname", "kernel.osrelease")
}
"""What a current Debian kernel under systemd reports for KumoMTA's twelve keys."""

COMPLIANT = {
    **MODERN_KERNEL,
    "vm.max_map_count": "768000",
    "net.core.rmem_max": "262144",
    "net.core.wmem_max": "262144",
    "net.ipv4.ip_local_port_range": "1024\t65000",
    "net.ipv4.tcp_tw_reuse": "1",
    "vm.nr_hugepages": "64",
}


def make_tree(root: Path, values: dict[str, str]) -> Path:
    """Write ``values`` as files laid out like /proc/sys under ``root``."""
    return write_tree(root, values)


def read_tree(root: Path, key: str) -> str:
    """A value from a simulated tree, without its newline."""
    return (root / key_to_relpath(key)).read_text().rstrip("\n")
