"""Hints: what a running benchmark shows, tied back to the kernel parameter
or setting that would change it.

Each rule reads plain data (the latest samples, host readings, the
profile's current values, failure reasons) and says something specific
and true, or nothing. The UI shows them with a jump to the parameter on the
tuning screen; nothing here knows about Textual.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

from kumotui.backends.samples import Sample
from kumotui.bench.hoststats import HostStats, ProcessCpu
from kumotui.tuning.values import parse_numbers


@dataclass(frozen=True)
class Hint:
    """One observation and what to do about it."""

    id: str
    """Stable per rule, so the UI can update a hint in place."""
    title: str
    detail: str
    param: str | None = None
    """The sysctl key to look at, for the jump to tuning; or a benchmark flag
    (``--workers``) when the fix is in the run's own settings."""
    severity: str = "warn"
    host: str | None = None
    """The host the symptom shows on and whose parameter to change (None: the run's one host):
    the tuning screen opens for this host."""


@dataclass(frozen=True)
class HintInputs:
    """What the rules read; any part may be missing."""

    generator: Sample | None = None
    sink: Sample | None = None
    host: HostStats | None = None
    host_at_start: HostStats | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    """Current kernel values by key (``net.ipv4.ip_local_port_range``: ``"32768 60999"``)."""
    failures: Mapping[str, int] = field(default_factory=dict)
    """Failure reasons and counts, in the backend's own words."""
    generator_cpu: ProcessCpu | None = None
    generator_workers: int = 1
    nofile_limit: int | None = None
    """The generator's hard open-file limit, when known."""
    backlog: tuple[int, ...] = ()
    """Through an MTA: its backlog (injected − delivered) at the last readings, oldest first."""
    through: bool = False
    """The generator sends to an MTA under test (its connection failures are the MTA's listener's)."""


TIME_WAIT_SHARE = 0.8
FILES_SHARE = 0.9
PINNED_PERCENT = 90.0
SINK_LAG = 0.8

_ADDR_NOT_AVAIL = re.compile(r"EADDRNOTAVAIL|Cannot assign requested address|os error 99", re.I)
_TOO_MANY_FILES = re.compile(r"EMFILE|ENFILE|Too many open files|os error 2[34]\b", re.I)
_TURNED_AWAY = re.compile(
    r"ECONNREFUSED|ECONNRESET|ETIMEDOUT|Connection refused|Connection reset|os error 11[01]\b|banner 4\d\d", re.I
)


def port_range_width(parameters: Mapping[str, str]) -> int | None:
    """How many ephemeral ports ``ip_local_port_range`` allows."""
    numbers = parse_numbers(parameters.get("net.ipv4.ip_local_port_range", ""))
    if numbers is None or len(numbers) != 2:
        return None
    return numbers[1] - numbers[0] + 1


def time_wait_near_port_range(inputs: HintInputs) -> Hint | None:
    """TIME_WAIT sockets pin ephemeral ports; near the range's width, connects start failing."""
    width = port_range_width(inputs.parameters)
    if inputs.host is None or width is None or inputs.host.tcp_time_wait < TIME_WAIT_SHARE * width:
        return None
    reuse = inputs.parameters.get("net.ipv4.tcp_tw_reuse", "").strip()
    advice = "widen net.ipv4.ip_local_port_range"
    if reuse != "1":
        advice += f" and set net.ipv4.tcp_tw_reuse = 1 (now {reuse or 'unknown'})"
    return Hint(
        "time-wait",
        "TIME_WAIT is near the ephemeral port range",
        f"{inputs.host.tcp_time_wait:,} sockets in TIME_WAIT against {width:,} ports in "
        f"ip_local_port_range: new outbound connections will soon fail. {advice.capitalize()}.",
        "net.ipv4.ip_local_port_range",
    )


def ports_exhausted(inputs: HintInputs) -> Hint | None:
    """Connects failing with EADDRNOTAVAIL: no free ephemeral port."""
    count = sum(n for reason, n in inputs.failures.items() if _ADDR_NOT_AVAIL.search(reason))
    if not count:
        return None
    return Hint(
        "ports-exhausted",
        "Ephemeral ports ran out",
        f"{count:,} connects failed with EADDRNOTAVAIL (cannot assign requested address): every local "
        "port toward the target is in use or in TIME_WAIT. Widen net.ipv4.ip_local_port_range and "
        "set net.ipv4.tcp_tw_reuse = 1.",
        "net.ipv4.ip_local_port_range",
    )


def listen_overflows(inputs: HintInputs) -> Hint | None:
    """The kernel dropped connections because an accept queue was full."""
    if inputs.host is None or inputs.host_at_start is None:
        return None
    grown = inputs.host.listen_overflows - inputs.host_at_start.listen_overflows
    if grown <= 0:
        return None
    somaxconn = inputs.parameters.get("net.core.somaxconn", "unknown")
    return Hint(
        "listen-overflow",
        "Listen queue overflowed",
        f"{grown:,} connections were dropped since the run started because a listening socket's "
        f"accept queue was full (ListenOverflows in /proc/net/netstat). The queue is the backlog the "
        f"listener asks for, capped by net.core.somaxconn (now {somaxconn}): raise it and "
        "net.ipv4.tcp_max_syn_backlog, or the listener's own backlog if it asks for less.",
        "net.core.somaxconn",
    )


def too_many_files(inputs: HintInputs) -> Hint | None:
    """EMFILE/ENFILE in failures, or the system's file handles nearly used up."""
    count = sum(n for reason, n in inputs.failures.items() if _TOO_MANY_FILES.search(reason))
    host = inputs.host
    near_max = host is not None and host.open_files_max > 0 and host.open_files >= FILES_SHARE * host.open_files_max
    if not count and not near_max:
        return None
    if near_max and host is not None:
        return Hint(
            "open-files",
            "System file handles nearly used up",
            f"{host.open_files:,} of fs.file-max {host.open_files_max:,} file handles are allocated. "
            "Raise fs.file-max.",
            "fs.file-max",
        )
    limit = f" (hard limit {inputs.nofile_limit:,})" if inputs.nofile_limit else ""
    return Hint(
        "open-files",
        "Too many open files",
        f"{count:,} connections failed for lack of file descriptors{limit}. Raise the hard nofile limit "
        "of the account or unit running the generator and sink (see `kumotui limits`), and fs.file-max "
        "if the whole system is short.",
        "fs.file-max",
    )


def generator_pinned(inputs: HintInputs) -> Hint | None:
    """One generator process at ~100% of a core: the generator, not the target, is the limit."""
    cpu = inputs.generator_cpu
    if cpu is None or cpu.busiest < PINNED_PERCENT:
        return None
    if inputs.generator_workers > 1:
        detail = (
            f"A generator process is at {cpu.busiest:.0f}% of a core even with {inputs.generator_workers} "
            "workers: add workers, or run generators on more hosts."
        )
    else:
        detail = (
            f"The generator is at {cpu.busiest:.0f}% of one core, so the rate measures it, not the target. "
            "Run it with more workers (--workers N, one per spare core)."
        )
    return Hint("generator-pinned", "Generator is CPU-bound", detail, "--workers", "info")


def sink_lagging(inputs: HintInputs) -> Hint | None:
    """The sink receives clearly less than the generator sends (straight into it, no MTA between)."""
    gen, sink = inputs.generator, inputs.sink
    if inputs.backlog:
        return None  # through an MTA the sink's pace is the MTA's: see mta_backlog_growing
    if gen is None or sink is None or not gen.rate or sink.rate is None or gen.rate < 100:
        return None
    if sink.rate >= SINK_LAG * gen.rate:
        return None
    return Hint(
        "sink-slow",
        "The sink is slower than the generator",
        f"The sink takes {sink.rate:,.0f} msgs/s while the generator sends {gen.rate:,.0f}: messages queue "
        "in socket buffers and latency grows. Give the sink more workers (Sink workers, --sink-workers) "
        "so the benchmark measures the sender.",
        "--sink-workers",
        "info",
    )


BACKLOG_READINGS = 6
"""Readings (3 s at 2 Hz) over which a backlog must grow at every step to be called growing."""


def mta_backlog_growing(inputs: HintInputs) -> Hint | None:
    """Through an MTA: the backlog grows at every reading while the sink takes little of the load."""
    backlog, gen, sink = inputs.backlog[-BACKLOG_READINGS:], inputs.generator, inputs.sink
    if len(backlog) < BACKLOG_READINGS or any(b <= a for a, b in pairwise(backlog)):
        return None
    if gen is None or not gen.rate or sink is None or (sink.rate or 0.0) >= SINK_LAG * gen.rate:
        return None
    return Hint(
        "mta-backlog",
        "The MTA under test is queueing, not delivering",
        f"{backlog[-1]:,} messages accepted and not yet at the sink, growing for {BACKLOG_READINGS // 2} s, while "
        f"the sink takes {sink.rate or 0:,.0f} msgs/s of the {gen.rate:,.0f} sent: the MTA's delivery side is the "
        "limit. Check its routing to the sink and its outbound concurrency (KumoMTA: the egress path's "
        "connection_limit and max_ready; Postfix: default_destination_concurrency_limit).",
        "--through",
        "warn",
    )


def mta_turning_connections_away(inputs: HintInputs) -> Hint | None:
    """Through an MTA: connects refused, reset, timed out or answered 421 at the greeting: its listener is full."""
    if not inputs.through:
        return None
    count = sum(n for reason, n in inputs.failures.items() if _TURNED_AWAY.search(reason))
    if not count:
        return None
    somaxconn = inputs.parameters.get("net.core.somaxconn", "unknown")
    return Hint(
        "mta-refusing",
        "The MTA under test turns connections away",
        f"{count:,} connections to the MTA were refused, reset, timed out or greeted with a 4xx: its listener "
        "is full. Raise its connection limit (KumoMTA: start_esmtp_listener's max_connections, 421 4.3.2 beyond "
        "it; Postfix: smtpd_client_connection_count_limit and default_process_limit) and, on the MTA's host, "
        f"net.core.somaxconn (now {somaxconn} here) with net.ipv4.tcp_max_syn_backlog; or send with less "
        "--concurrency.",
        "net.core.somaxconn",
    )


RULES: tuple[Callable[[HintInputs], Hint | None], ...] = (
    ports_exhausted,
    time_wait_near_port_range,
    listen_overflows,
    too_many_files,
    generator_pinned,
    sink_lagging,
    mta_backlog_growing,
    mta_turning_connections_away,
)


def evaluate(inputs: HintInputs) -> list[Hint]:
    """Every hint that applies now, most urgent first."""
    return [hint for rule in RULES if (hint := rule(inputs)) is not None]


def _is_kernel_key(param: str | None) -> bool:
    return param is not None and not param.startswith("-")


def host_hints(host: str, roles: Sequence[str], inputs: HintInputs) -> list[Hint]:
    """The rules on one host of a run, each hint naming the host and where to act.

    ``sink host mx2: Listen queue overflowed → net.core.somaxconn on mx2``:
    the id is the rule's and the host's (``listen-overflow@mx2``), so a pane
    updates it in place, and :attr:`Hint.host` says which host's tuning
    screen Enter opens.
    """
    where = f"{roles[0] if roles else 'the'} host {host}"
    found = []
    for hint in evaluate(inputs):
        action = (
            f" → {hint.param} on {host}" if _is_kernel_key(hint.param) else (f" → {hint.param}" if hint.param else "")
        )
        found.append(replace(hint, id=f"{hint.id}@{host}", title=f"{where}: {hint.title}{action}", host=host))
    return found


def hints_by_host(
    hosts: Sequence[tuple[str, Sequence[str], Mapping[str, str]]],
    readings: Mapping[str, HostStats | None],
    at_start: Mapping[str, HostStats | None],
    *,
    generators: Mapping[str, Sample] | None = None,
    sink: Sample | None = None,
    failures: Mapping[str, Mapping[str, int]] | None = None,
) -> list[Hint]:
    """Every host's hints for one tick, warnings first.

    Args:
        hosts: each host's name, roles (``generator``, ``sink``, ``mta``) and the profile's kernel values there
            at start (a run record's :class:`~kumotui.bench.records.HostEntry` gives all three).
        readings: each host's latest :class:`HostStats` (None: not read this tick).
        at_start: each host's first reading, the base of counters that only grow (listen overflows).
        generators: each generator host's latest reading (the CPU-bound and sink-lag rules).
        sink: the sink's latest reading, for the sink's host.
        failures: failure reasons and counts of each generator host's job.
    """
    found: list[Hint] = []
    for name, roles, parameters in hosts:
        inputs = HintInputs(
            generator=(generators or {}).get(name),
            sink=sink if "sink" in roles else None,
            host=readings.get(name),
            host_at_start=at_start.get(name),
            parameters=parameters,
            failures=(failures or {}).get(name, {}),
        )
        found += host_hints(name, roles, inputs)
    return sorted(found, key=lambda hint: hint.severity != "warn")
