"""A sink kumotui did not start, counted from its ``/metrics``: ``bench --through MTA --sink HOST:PORT``.

A user measuring an MTA may already run the sink the MTA delivers to: a
kumod with KumoMTA's sink policy on another machine, or ``kumotui sink
--metrics-listen``. kumotui neither starts nor stops such a sink; it reads
the one counter both publish in kumod's names,
``total_messages_received{service="esmtp_listener"}``, and counts from its
value when the run began. That is count-level accounting (how many, not
which): the sink does not read kumotui's per-message stamps for this run.
"""

from __future__ import annotations

import time

from kumotui.backends.job import Job
from kumotui.backends.kumomta.metrics import fetch_metrics, sink_counters
from kumotui.backends.process import Launcher
from kumotui.backends.samples import RateWindow, Role, Sample, Summary, active_summary
from kumotui.errors import KumotuiError
from kumotui.hosts.address import format_address, parse_address

DEFAULT_METRICS_PORT = 8002
"""Where kumotui's kumod sink policy serves HTTP (KumoMTA's sink example too): ``--sink-metrics``'s default port."""


class WatchedSink(Job):
    """A running sink's counters as sink samples, relative to the run's start.

    Ready once its ``/metrics`` answers with the received counter (the
    baseline); :meth:`reading` polls it (about once a second is enough).
    The job has no process of its own: its :class:`ChildProcess` is never
    started, so its PID is None, its log empty, and :meth:`stop` a no-op.
    """

    role: Role = "sink"
    backend = "running"

    def __init__(self, address: str, metrics: str) -> None:
        """Count the sink at ``address`` (``--sink``) from the ``/metrics`` at ``metrics`` (``--sink-metrics``)."""
        super().__init__(Launcher(), ["running-sink"], name="running sink")
        self.address = address
        self.port = parse_address(address, 25)[1]
        self.metrics = metrics
        self._http = parse_address(metrics, DEFAULT_METRICS_PORT)
        self._baseline: int | None = None
        self._rates = RateWindow(5.0)
        self._latest: Sample | None = None
        self.kind = "unknown"
        """``kumotui`` or ``kumod``: which sink answered (kumotui's adds ``kumotui_sink_info``)."""

    def start(self) -> WatchedSink:
        """Nothing to launch: the first reading happens in :meth:`wait_ready`."""
        self._started_at = time.monotonic()
        return self

    def poll_ready(self) -> None:
        try:
            text = self._fetch()
        except KumotuiError as error:
            self.fail(str(error))
            return
        received = sink_counters(text).received
        if received is None:
            self.fail(
                f"--sink-metrics {self.metrics}: /metrics has no total_messages_received of the esmtp_listener "
                "service: not a kumod sink nor `kumotui sink --metrics-listen`"
            )
            return
        self.kind = "kumotui" if "kumotui_sink_info" in text else "kumod"
        self._baseline = received
        self.mark_ready()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the first reading; KumotuiError naming ``--sink-metrics`` when there is none."""
        try:
            super().wait_ready(timeout)
        except KumotuiError as error:
            why = self.error or str(error)
            raise KumotuiError(f"cannot count the running sink at {self.address}: {why}") from None

    def _fetch(self) -> str:
        try:
            return fetch_metrics(*self._http, timeout=2.0)
        except KumotuiError as error:
            raise KumotuiError(f"--sink-metrics {self.metrics}: {error}") from None

    def reading(self) -> Sample | None:
        if self._baseline is None:
            return None
        try:
            counters = sink_counters(self._fetch())
        except KumotuiError:
            return self._latest  # one missed poll keeps the last reading; the run's deadlines still hold
        if counters.received is None:
            return self._latest
        count = max(0, counters.received - self._baseline)  # a restarted sink starts again from 0
        elapsed = self.elapsed()
        self._latest = Sample(
            role="sink",
            elapsed=elapsed,
            count=count,
            connections=counters.connections,
            rate=self._rates.add(elapsed, count),
        )
        return self._latest

    def summary(self, series: list[Sample]) -> Summary | None:
        return active_summary("sink", series) if series else None

    def describe(self) -> str:
        return f"the running sink at {self.address} (counted from {format_address(*self._http)}/metrics)"
