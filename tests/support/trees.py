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


BELOW_ON_MODERN = {
    "vm.max_map_count": "768000",
    "net.core.rmem_max": "262144",
    "net.core.wmem_max": "262144",
    "net.ipv4.ip_local_port_range": "5000 63001",
    "net.ipv4.tcp_tw_reuse": "1",
    "vm.nr_hugepages": "20",
}
"""What the kumomta profile raises on :data:`MODERN_KERNEL` (everything else is already as good)."""


def host_paths(base: Path, tree: Path) -> dict[str, Path]:
    """A simulated host under ``base``: the tree, drop-in dir, state dir and a system root."""
    return {
        "tree": tree,
        "sysctl_d": base / "etc-sysctl.d",
        "state": base / "state",
        "system": base / "system",
    }


def host_flags(paths: dict[str, Path]) -> list[str | Path]:
    """The CLI flags pointing at a simulated host (:func:`host_paths`)."""
    return [
        "--sysctl-root",
        paths["tree"],
        "--sysctl-d",
        paths["sysctl_d"],
        "--state-dir",
        paths["state"],
        "--system-root",
        paths["system"],
    ]


def snapshot(tree: Path) -> dict[str, str]:
    """Every file in a tree, to prove nothing changed."""
    return {str(p.relative_to(tree)): p.read_text() for p in sorted(tree.rglob("*")) if p.is_file()}
