"""Simulated /proc/sys trees for tests (never the machine's real kernel)."""

from __future__ import annotations

from pathlib import Path

from kumotui.sysctl import key_to_relpath

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
    "kernel.hostname": "mta-sim",
    "kernel.osrelease": "6.1.0-sim",
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
    for key, value in values.items():
        path = root / key_to_relpath(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return root


def read_tree(root: Path, key: str) -> str:
    """A value from a simulated tree, without its newline."""
    return (root / key_to_relpath(key)).read_text().rstrip("\n")
