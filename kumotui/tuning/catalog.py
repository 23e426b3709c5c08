"""What kumotui knows about the parameters it ships: units, defaults, limits.

Profiles say *why* a value is wanted; the catalog says what the kernel will
accept, so a bad value is refused before anything is written, and gives the
UI units and the usual default. Limits follow the kernel's own handlers
(``proc_dointvec_minmax`` ranges in net/core/sysctl_net_core.c,
net/ipv4/sysctl_net_ipv4.c, kernel/sysctl.c, fs/file_table.c).
"""

from __future__ import annotations

from dataclasses import dataclass

INT_MAX = 2**31 - 1
ULONG_MAX = 2**64 - 1
LONG_MAX = 2**63 - 1


@dataclass(frozen=True)
class ParamInfo:
    """Facts about one kernel parameter."""

    units: str
    default: str
    """The usual default on a current kernel (as sysctl prints it)."""
    minimum: int = 0
    maximum: int = ULONG_MAX
    fields: int = 1
    netns: bool = False
    """Per network namespace: testable for real inside ``unshare --net``."""
    modes: tuple[tuple[str, str], ...] = ()
    """For a parameter that selects a behaviour rather than a magnitude: each value and its name.

    ``tcp_tw_reuse`` 2 -> 1 is "loopback only -> all", not a lower value, so
    such a change is described as a switch of mode and never as taking
    capacity away."""

    def mode_name(self, value: str) -> str | None:
        """The name of ``value`` when this parameter is a mode (None otherwise)."""
        return dict(self.modes).get(" ".join(value.split()))


CATALOG: dict[str, ParamInfo] = {
    "vm.max_map_count": ParamInfo("memory map areas per process", "65530", 0, INT_MAX),
    "net.core.rmem_default": ParamInfo("bytes", "212992", 2304, INT_MAX),
    "net.core.wmem_default": ParamInfo("bytes", "212992", 4608, INT_MAX),
    "net.core.rmem_max": ParamInfo("bytes", "212992", 2304, INT_MAX),
    "net.core.wmem_max": ParamInfo("bytes", "212992", 4608, INT_MAX),
    "fs.file-max": ParamInfo("open file handles, system-wide", "9223372036854775807 (systemd)", 0, LONG_MAX),
    "net.ipv4.ip_local_port_range": ParamInfo("lowest and highest ephemeral port", "32768 60999", 1, 65535, 2, True),
    "net.ipv4.tcp_tw_reuse": ParamInfo(
        "mode: 0 off, 1 all connections, 2 loopback only",
        "2",
        0,
        2,
        1,
        True,
        (("0", "off"), ("1", "all"), ("2", "loopback only")),
    ),
    "kernel.shmmax": ParamInfo("bytes per shared memory segment", "18446744073692774399", 0, ULONG_MAX),
    "net.core.somaxconn": ParamInfo("queued connections per listening socket", "4096", 0, INT_MAX, 1, True),
    "vm.nr_hugepages": ParamInfo("2 MiB huge pages", "0", 0, ULONG_MAX),
    "kernel.shmmni": ParamInfo("shared memory segments, system-wide", "4096", 1, 1 << 24),
    "net.core.netdev_max_backlog": ParamInfo("packets queued per CPU", "1000", 0, INT_MAX),
    "net.ipv4.tcp_max_syn_backlog": ParamInfo("half-open connections", "128-1024 (by RAM)", 0, INT_MAX, 1, True),
    "net.ipv4.tcp_fin_timeout": ParamInfo("seconds", "60", 0, INT_MAX, 1, True),
    "fs.nr_open": ParamInfo("open files per process, ceiling", "1048576", 64, 1073741816),
    "net.ipv4.tcp_rmem": ParamInfo("bytes: min default max", "4096 131072 6291456", 1, INT_MAX, 3, True),
    "net.ipv4.tcp_wmem": ParamInfo("bytes: min default max", "4096 16384 4194304", 1, INT_MAX, 3, True),
    "net.ipv4.tcp_slow_start_after_idle": ParamInfo(
        "mode: 0 off, 1 on", "1", 0, 1, 1, True, (("0", "off"), ("1", "on"))
    ),
    "net.ipv4.tcp_max_tw_buckets": ParamInfo("TIME_WAIT sockets", "262144 (by RAM)", 0, INT_MAX, 1, True),
}


def info(key: str) -> ParamInfo | None:
    """The catalog entry for ``key``, if kumotui knows it."""
    return CATALOG.get(key)


def mode_change(key: str, current: str, proposed: str) -> str | None:
    """``changes mode: loopback only → all`` when ``key`` is a mode and the value changes, else None."""
    facts = CATALOG.get(key)
    if facts is None or not facts.modes:
        return None
    before, after = facts.mode_name(current), facts.mode_name(proposed)
    if before is None or after is None or before == after:
        return None
    return f"changes mode: {before} → {after}"
