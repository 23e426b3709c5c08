"""Host resources while a benchmark runs: CPU per core, memory, network
throughput, TCP sockets, open files and listen-queue overflows.

Everything here is cheap enough to read a few times a second while tens of
thousands of connections are open: TCP counts come from
``/proc/net/sockstat`` (kernel counters) rather than walking every socket,
and open files from ``/proc/sys/fs/file-nr``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

PROC = Path("/proc")


@dataclass(frozen=True)
class HostStats:
    """One reading of the local host."""

    time: float
    cpu_per_core: tuple[float, ...]
    """Percent busy per core since the previous reading."""
    memory_used: int
    memory_total: int
    interface: str | None
    rx_bytes_per_s: float | None
    tx_bytes_per_s: float | None
    tcp_inuse: int
    """TCP sockets in use (established, plus listening and closing ones)."""
    tcp_time_wait: int
    open_files: int
    open_files_max: int
    listen_overflows: int
    """Cumulative ``TcpExt: ListenOverflows``: connections dropped because an accept queue was full."""
    listen_drops: int
    tcp_established: int | None = None
    """TCP connections ESTABLISHED or CLOSE-WAIT now (``Tcp: CurrEstab`` in /proc/net/snmp)."""


def _sockstat() -> tuple[int, int]:
    """TCP sockets in use and in TIME_WAIT, IPv4 and IPv6 together."""
    inuse = time_wait = 0
    for name in ("sockstat", "sockstat6"):
        with contextlib.suppress(OSError):
            for line in (PROC / "net" / name).read_text().splitlines():
                if line.startswith(("TCP:", "TCP6:")):
                    fields = line.split()[1:]
                    values = dict(zip(fields[::2], fields[1::2], strict=False))
                    inuse += int(values.get("inuse", 0))
                    time_wait += int(values.get("tw", 0))
    return inuse, time_wait


def _netstat(text: str) -> dict[str, int]:
    """``TcpExt`` counters from /proc/net/netstat (a header line, then a value line)."""
    lines = [line.split() for line in text.splitlines() if line.startswith("TcpExt:")]
    if len(lines) < 2:
        return {}
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:], strict=False)}


def _curr_estab() -> int | None:
    """``CurrEstab`` from /proc/net/snmp: a kernel counter, cheap however many sockets are open."""
    try:
        lines = [line.split() for line in (PROC / "net" / "snmp").read_text().splitlines() if line.startswith("Tcp:")]
    except OSError:
        return None
    if len(lines) < 2 or "CurrEstab" not in lines[0]:
        return None
    return int(lines[1][lines[0].index("CurrEstab")])


def _file_nr() -> tuple[int, int]:
    try:
        allocated, _free, maximum = (PROC / "sys" / "fs" / "file-nr").read_text().split()
        return int(allocated), int(maximum)
    except (OSError, ValueError):
        return 0, 0


def interface_for(target_host: str) -> str | None:
    """The interface traffic to ``target_host`` leaves by.

    A UDP socket's connect() picks the route without sending anything; the
    local address it gets names the interface.
    """
    try:
        family = socket.AF_INET6 if ":" in target_host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((target_host, 9))
            local = probe.getsockname()[0]
    except OSError:
        return None
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.address.split("%")[0] == local for a in addresses):
            return name
    return None


class HostSampler:
    """Readings with rates computed against the previous one."""

    def __init__(self, interface: str | None = None) -> None:
        self.interface = interface
        self._last_net: tuple[float, int, int] | None = None
        psutil.cpu_percent(percpu=True)  # the first call only sets the baseline

    def sample(self) -> HostStats:
        """Read everything once."""
        now = time.monotonic()
        memory = psutil.virtual_memory()
        rx_rate = tx_rate = None
        if self.interface is not None:
            counters = psutil.net_io_counters(pernic=True).get(self.interface)
            if counters is not None:
                if self._last_net is not None and now > self._last_net[0]:
                    span = now - self._last_net[0]
                    rx_rate = (counters.bytes_recv - self._last_net[1]) / span
                    tx_rate = (counters.bytes_sent - self._last_net[2]) / span
                self._last_net = (now, counters.bytes_recv, counters.bytes_sent)
        inuse, time_wait = _sockstat()
        open_files, open_max = _file_nr()
        try:
            netstat = _netstat((PROC / "net" / "netstat").read_text())
        except OSError:
            netstat = {}
        return HostStats(
            time=now,
            cpu_per_core=tuple(psutil.cpu_percent(percpu=True)),
            memory_used=memory.total - memory.available,
            memory_total=memory.total,
            interface=self.interface,
            rx_bytes_per_s=rx_rate,
            tx_bytes_per_s=tx_rate,
            tcp_inuse=inuse,
            tcp_time_wait=time_wait,
            open_files=open_files,
            open_files_max=open_max,
            listen_overflows=netstat.get("ListenOverflows", 0),
            listen_drops=netstat.get("ListenDrops", 0),
            tcp_established=_curr_estab(),
        )


@dataclass(frozen=True)
class ProcessCpu:
    """CPU use of a job's process tree since the previous reading."""

    total: float
    """Percent of one core, summed over the tree (200 = two cores busy)."""
    busiest: float
    """The busiest single process: near 100 means it is pinned to one core."""


def process_cpu(pid: int | None) -> ProcessCpu | None:
    """CPU of a process and its children since the last call for them (None if gone)."""
    if pid is None:
        return None
    try:
        root = _PROCESSES.get(pid) or _PROCESSES.setdefault(pid, psutil.Process(pid))
        tree = [root, *(_PROCESSES.setdefault(c.pid, c) for c in root.children(recursive=True))]
        percents = []
        for process in tree:
            with contextlib.suppress(psutil.Error):
                percents.append(process.cpu_percent())
    except psutil.Error:
        return None
    return ProcessCpu(sum(percents), max(percents, default=0.0))


_PROCESSES: dict[int, psutil.Process] = {}
"""psutil keeps each process's previous CPU times on the object, so reuse them."""
