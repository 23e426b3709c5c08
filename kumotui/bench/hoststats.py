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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import psutil

from kumotui.errors import KumotuiError
from kumotui.hosts import agent

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


# --- any host, over the agent channel -------------------------------------------------------


class CounterSource(Protocol):
    """A remote host's agent channel, as far as readings need it (:class:`~kumotui.hosts.remote.RemoteHost`)."""

    name: str
    bytes_sent: int
    bytes_received: int

    def host_counters(self, interface: str | None = None, route_to: str | None = None) -> dict[str, Any]:
        """One batched reading of the host's raw counters."""
        ...


@dataclass(frozen=True)
class HostReading:
    """One host's reading in a tick: its stats, or why there are none, and what the reading cost."""

    host: str
    """The host as the run names it (``local`` for this machine)."""
    stats: HostStats | None
    error: str = ""
    """Why there is no reading (the link dropped); the pane says so instead of going blank."""
    reader_pid: int | None = None
    """The pid of the process that read the counters there: the agent's on a remote host."""
    processes: int | None = None
    """Processes the host has now, as the reader saw them."""
    nofile_soft: int | None = None
    nofile_hard: int | None = None
    """The open-file limits of the account kumotui runs as there (the agent's, or this process's)."""
    seconds: float = 0.0
    """How long the reading took (one round trip on the agent channel for a remote host)."""
    bytes: int = 0
    """Bytes the reading moved over the agent channel (request and reply; 0 on this machine)."""


class AgentSampler:
    """Readings of one host from raw counters, read in one call (one agent request when remote).

    The same parsing serves every host: on this machine
    :func:`~kumotui.hosts.agent.host_counters` runs in-process; on a remote
    one the agent runs it and sends the numbers back. CPU percentages and
    network rates are the change since the previous reading.
    """

    def __init__(
        self,
        name: str,
        source: CounterSource | None = None,
        *,
        interface: str | None = None,
        route_to: str | None = None,
    ) -> None:
        """Read ``source`` (None: this machine) for the host named ``name``; the interface is ``interface``,
        or the one traffic to ``route_to`` leaves by there."""
        self.name = name
        self.source = source
        self.interface = interface
        self.route_to = route_to
        self._last: tuple[float, dict[str, Any]] | None = None

    def _counters(self) -> tuple[dict[str, Any], int]:
        if self.source is None:
            return agent.host_counters(interface=self.interface, route_to=self.route_to), 0
        before = self.source.bytes_sent + self.source.bytes_received
        counters = self.source.host_counters(self.interface, self.route_to)
        return counters, self.source.bytes_sent + self.source.bytes_received - before

    def read(self) -> HostReading:
        """One reading; a failure (a dropped link, a malformed reply) is a reading with an error, not an exception."""
        started = time.monotonic()
        try:
            counters, moved = self._counters()
            stats = self._stats(started, counters)
        except (KumotuiError, OSError, KeyError, TypeError, ValueError) as error:
            return HostReading(self.name, None, error=str(error), seconds=time.monotonic() - started)
        self.interface = counters.get("interface") or self.interface
        return HostReading(
            self.name,
            stats,
            reader_pid=_int_or_none(counters.get("pid")),
            processes=_int_or_none(counters.get("processes")),
            nofile_soft=_int_or_none(counters.get("nofile_soft")),
            nofile_hard=_int_or_none(counters.get("nofile_hard")),
            seconds=time.monotonic() - started,
            bytes=moved,
        )

    def sample(self) -> HostStats | None:
        """Just the stats (the shape :class:`HostSampler` gives), None when the host could not be read."""
        return self.read().stats

    def _stats(self, now: float, counters: dict[str, Any]) -> HostStats:
        last = self._last
        self._last = (now, counters)
        cpus = [(int(busy), int(total)) for busy, total in counters["cpu"]]
        previous = [(int(b), int(t)) for b, t in last[1]["cpu"]] if last is not None else []
        per_core = (
            tuple(
                100.0 * (busy - old_busy) / (total - old_total) if total > old_total else 0.0
                for (busy, total), (old_busy, old_total) in zip(cpus, previous or [(0, 0)] * len(cpus), strict=False)
            )
            if last is not None
            else tuple(0.0 for _ in cpus)
        )
        rx_rate = tx_rate = None
        if last is not None and now > last[0]:
            span = now - last[0]
            if counters.get("rx_bytes") is not None and last[1].get("rx_bytes") is not None:
                rx_rate = (int(counters["rx_bytes"]) - int(last[1]["rx_bytes"])) / span
                tx_rate = (int(counters["tx_bytes"]) - int(last[1]["tx_bytes"])) / span
        total = int(counters["memory_total"])
        return HostStats(
            time=now,
            cpu_per_core=per_core,
            memory_used=total - int(counters["memory_available"]),
            memory_total=total,
            interface=counters.get("interface"),
            rx_bytes_per_s=rx_rate,
            tx_bytes_per_s=tx_rate,
            tcp_inuse=int(counters["tcp_inuse"]),
            tcp_time_wait=int(counters["tcp_time_wait"]),
            open_files=int(counters["open_files"]),
            open_files_max=int(counters["open_files_max"]),
            listen_overflows=int(counters["listen_overflows"]),
            listen_drops=int(counters["listen_drops"]),
            tcp_established=_int_or_none(counters.get("tcp_established")),
        )


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


class HostReader(Protocol):
    """One host's reader: an :class:`AgentSampler`, or fixed readings (screenshots)."""

    name: str

    def read(self) -> HostReading:
        """One reading of the host; a failure is a reading with an error."""
        ...


class SamplerReader:
    """A :class:`HostSampler` (or a stand-in with its ``sample()``) as a :class:`HostReader` for this machine."""

    def __init__(self, name: str, sampler: HostSampler) -> None:
        """Read ``sampler`` under ``name``."""
        self.name = name
        self.sampler = sampler

    def read(self) -> HostReading:
        """One reading, timed."""
        started = time.monotonic()
        return HostReading(self.name, self.sampler.sample(), seconds=time.monotonic() - started)


class HostReaders:
    """Every host of a run read once per tick, all at once: one agent request per remote host, in parallel,
    so a tick costs about the slowest host's round trip, not their sum."""

    def __init__(self, samplers: Sequence[HostReader]) -> None:
        """Read ``samplers`` (one per host) on each :meth:`read`."""
        self.samplers = list(samplers)
        self._pool: ThreadPoolExecutor | None = None

    def read(self) -> list[HostReading]:
        """One reading per host, in the samplers' order (one host is read in the caller's thread)."""
        if len(self.samplers) < 2:
            return [sampler.read() for sampler in self.samplers]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=len(self.samplers), thread_name_prefix="kumotui-hosts")
        return list(self._pool.map(lambda sampler: sampler.read(), self.samplers))

    def close(self) -> None:
        """Stop the reading threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def sampler_for(name: str, host: object, *, route_to: str | None = None) -> AgentSampler:
    """The sampler for an open host: over its agent channel when it has one, in-process for this machine."""
    source = host if hasattr(host, "host_counters") else None
    return AgentSampler(name, cast("CounterSource | None", source), route_to=route_to)
