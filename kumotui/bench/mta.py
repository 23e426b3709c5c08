"""The MTA under test's own view, live: its connections, counters and queue, read from the MTA itself.

The sink says what arrived; only the MTA can say what it holds. KumoMTA
publishes Prometheus counters on its HTTP listener (``/metrics``), Postfix
answers ``postqueue -j`` with one JSON object per queued message. Either is
read once per tick (off the UI's event loop, as the host readings are) and
shown beside the accounting, so a backlog can be told apart from a slow sink.
Another MTA gives nothing kumotui can read, and the pane says so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kumotui.backends.kumomta.metrics import MetricSample, fetch_metrics, parse_prometheus
from kumotui.errors import KumotuiError
from kumotui.hosts import Host
from kumotui.hosts.address import parse_address
from kumotui.text.format import format_count

KUMOD_HTTP_PORT = 8000
"""kumod's usual HTTP listener in a production policy (KumoMTA's examples); ``--mta-metrics`` overrides it."""


@dataclass(frozen=True)
class MtaView:
    """One reading of the MTA's own figures; a None field is one this MTA does not publish."""

    kind: str
    """``kumomta``, ``postfix``."""
    connections_in: int | None = None
    connections_out: int | None = None
    received: int | None = None
    delivered: int | None = None
    transient_failures: int | None = None
    queued: Counter[str] = field(default_factory=Counter)
    """Messages held, by queue: ``scheduled`` and ``ready`` (KumoMTA), ``active``, ``deferred``... (Postfix)."""
    error: str = ""
    """Why this reading failed (the last good one is not repeated)."""
    version: str = ""
    """The MTA's version when it says (Postfix's ``mail_version``); empty otherwise."""

    @property
    def total_queued(self) -> int:
        """Messages the MTA holds in all its queues."""
        return sum(self.queued.values())

    def text(self) -> str:
        """The figures in one line, as the MTA pane and the report show them (only those it publishes)."""
        parts = [
            f"{label} {format_count(value)}"
            for label, value in (
                ("conns in", self.connections_in),
                ("out", self.connections_out),
                ("received", self.received),
                ("delivered", self.delivered),
                ("transfail", self.transient_failures),
            )
            if value is not None
        ]
        queues = ", ".join(f"{name} {format_count(count)}" for name, count in sorted(self.queued.items()))
        parts.append(f"queued {format_count(self.total_queued)}" + (f" ({queues})" if queues else ""))
        return " · ".join(parts)

    def as_json(self) -> dict[str, Any]:
        """The shape in run records and ``bench --json``."""
        return {
            "kind": self.kind,
            "connections_in": self.connections_in,
            "connections_out": self.connections_out,
            "received": self.received,
            "delivered": self.delivered,
            "transient_failures": self.transient_failures,
            "queued": dict(self.queued),
            "error": self.error,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MtaView:
        """Rebuild from :meth:`as_json`."""

        def number(name: str) -> int | None:
            value = data.get(name)
            return None if value is None else int(value)

        return cls(
            kind=str(data.get("kind", "unknown")),
            connections_in=number("connections_in"),
            connections_out=number("connections_out"),
            received=number("received"),
            delivered=number("delivered"),
            transient_failures=number("transient_failures"),
            queued=Counter({str(k): int(v) for k, v in (data.get("queued") or {}).items()}),
            error=str(data.get("error", "")),
            version=str(data.get("version", "")),
        )


def _total(
    samples: Iterable[MetricSample], name: str, keep: Callable[[MetricSample], bool] = lambda s: True
) -> int | None:
    values = [s.value for s in samples if s.name == name and keep(s)]
    return int(sum(values)) if values else None


def kumomta_view(text: str) -> MtaView:
    """KumoMTA's ``/metrics`` as an :class:`MtaView`: inbound sessions are the ESMTP listener's,
    outbound the SMTP client's; received, delivered and transient failures summed over services;
    ``scheduled_count`` and ``ready_count`` summed over queues."""
    samples = parse_prometheus(text)

    def service(prefix: str) -> Callable[[MetricSample], bool]:
        return lambda s: s.labels.get("service", "").startswith(prefix)

    queued: Counter[str] = Counter()
    for name, queue in (("scheduled_count", "scheduled"), ("ready_count", "ready")):
        count = _total(samples, name)
        if count is not None:
            queued[queue] = count
    return MtaView(
        kind="kumomta",
        connections_in=_total(samples, "connection_count", service("esmtp_listener")),
        connections_out=_total(samples, "connection_count", service("smtp_client")),
        received=_total(samples, "total_messages_received", service("esmtp_listener")),
        delivered=_total(samples, "total_messages_delivered", service("smtp_client")),
        transient_failures=_total(samples, "total_messages_transfail", service("smtp_client")),
        queued=queued,
    )


def postfix_view(lines: str) -> MtaView:
    """``postqueue -j`` output (one JSON object per message) as queue sizes by queue name."""
    queued: Counter[str] = Counter()
    for line in lines.splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            queued[str(entry.get("queue_name", "unknown"))] += 1
    return MtaView(kind="postfix", queued=queued)


class MtaWatcher:
    """Reads the MTA under test's view, one reading per call; built by :func:`watcher_for`."""

    def __init__(self, describe: str, read: Callable[[], MtaView]) -> None:
        """A watcher that says what it reads (``describe``) and reads with ``read``."""
        self.describe = describe
        self._read = read

    def read(self) -> MtaView:
        """One reading; a failure is a view with ``error`` set, never an exception."""
        try:
            return self._read()
        except KumotuiError as error:
            return MtaView(kind="unknown", error=str(error))


def watcher_for(
    through: str, banner: str, host: Host, *, metrics: str | None = None, postfix_config: str | None = None
) -> MtaWatcher | None:
    """How to watch the MTA at ``through`` (None: it gives nothing kumotui can read).

    ``metrics`` (``HOST:PORT`` of kumod's HTTP listener) reads KumoMTA's
    ``/metrics``; a Postfix (its greeting says so, or ``postfix_config`` is
    given) on ``host`` is read with ``postqueue -j``.
    """
    if metrics or "kumomta" in banner.lower():
        address = metrics or f"{parse_address(through, 25)[0]}:{KUMOD_HTTP_PORT}"
        http_host, http_port = parse_address(address, KUMOD_HTTP_PORT)
        return MtaWatcher(
            f"KumoMTA /metrics at {address}",
            lambda: kumomta_view(fetch_metrics(http_host, http_port, timeout=1.0)),
        )
    if postfix_config or "postfix" in banner.lower():
        config = ["-c", postfix_config] if postfix_config else []
        args = ["postqueue", *config, "-j"]
        version: list[str] = []

        def read_queue() -> MtaView:
            done = host.run(args)
            if done.code != 0:
                raise KumotuiError(f"{' '.join(args)}: {done.stderr.strip()[:200] or f'exit {done.code}'}")
            if not version:  # asked once: the MTA does not change version during a run
                asked = host.run(["postconf", *config, "-h", "mail_version"])
                version.append(asked.stdout.strip()[:40] if asked.code == 0 else "")
            return replace(postfix_view(done.stdout), version=version[0])

        return MtaWatcher(f"Postfix queue ({' '.join(args)})", read_queue)
    return None
