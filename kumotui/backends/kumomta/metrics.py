"""kumod's HTTP endpoints: liveness, and ``/metrics`` counters turned into sink samples."""

from __future__ import annotations

import http.client
import math
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from kumotui.backends.kumomta.install import SINK_HTTP_PORT
from kumotui.backends.samples import RateWindow, Sample
from kumotui.errors import KumotuiError


@dataclass(frozen=True)
class Liveness:
    """What kumod's liveness endpoint answered."""

    ready: bool
    status: int | None
    """The HTTP status; None when nothing answered."""
    detail: str
    """The body (kumod's reason for a 503) or why the request failed."""


def _url(host: str, port: int, path: str) -> str:
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{bracketed}:{port}{path}"


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""No proxies: a sink on loopback or a lab network must never be reached through one."""


MAX_BODY = 32 * 1024 * 1024
"""The most of an answer read: a busy kumod's /metrics is megabytes, anything past this is not a metrics page."""


def _get(url: str, timeout: float) -> tuple[int, str]:
    """Status and body of a GET; an HTTP error status is an answer, not an exception.

    ``timeout`` bounds each socket wait and the whole body too: a server
    that drips bytes cannot hold the caller's sampling loop.

    Raises:
        ValueError: the body is larger than :data:`MAX_BODY` or slower than the deadline.
    """
    deadline = time.monotonic() + timeout
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read1(256 * 1024):
                size += len(chunk)
                if size > MAX_BODY:
                    raise ValueError(f"the answer is larger than {MAX_BODY // (1024 * 1024)} MiB")
                if time.monotonic() > deadline:
                    raise ValueError(f"the answer took more than {timeout:g} s")
                chunks.append(chunk)
            return int(response.status), b"".join(chunks).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        body = error.read(64 * 1024).decode("utf-8", "replace") if error.fp else ""
        return error.code, body


def check_liveness(host: str = "127.0.0.1", port: int = SINK_HTTP_PORT, timeout: float = 2.0) -> Liveness:
    """Ask ``/api/check-liveness/v1``: 200 means ready, 503 means starting or shedding load."""
    url = _url(host, port, "/api/check-liveness/v1")
    try:
        status, body = _get(url, timeout)
    except urllib.error.URLError as error:
        return Liveness(False, None, f"{url}: {getattr(error.reason, 'strerror', None) or error.reason}")
    except (OSError, ValueError, http.client.HTTPException) as error:
        return Liveness(False, None, f"{url}: {error}")
    return Liveness(status == 200, status, body.strip())


def fetch_metrics(host: str = "127.0.0.1", port: int = SINK_HTTP_PORT, timeout: float = 2.0) -> str:
    """kumod's Prometheus text from ``/metrics`` (loopback is trusted without auth).

    Raises:
        KumotuiError: no answer, or a status other than 200.
    """
    url = _url(host, port, "/metrics")
    try:
        status, body = _get(url, timeout)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
        reason: object = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(error, http.client.HTTPException):
            reason = f"not an HTTP answer ({str(error).strip()[:80] or type(error).__name__})"
        raise KumotuiError(f"cannot read the metrics at {url}: {reason}") from None
    if status != 200:
        raise KumotuiError(f"the metrics at {url} answered HTTP {status}: {body.strip()[:200]}")
    return body


@dataclass(frozen=True)
class MetricSample:
    """One series' value from Prometheus text."""

    name: str
    labels: Mapping[str, str]
    value: float


_METRIC_LINE = re.compile(
    r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*"
    r"([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|Inf|NaN))(?:\s+-?\d+)?\s*$"
)


_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


_LABEL_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_prometheus(text: str) -> list[MetricSample]:
    """Every series in Prometheus text exposition format.

    Comments and ``# HELP``/``# TYPE`` lines are skipped, labels may come in
    any order with escaped quotes, values may be ``1.5e+06``, ``+Inf`` or
    ``NaN``, and a trailing timestamp is ignored. Lines that do not parse
    are skipped: one odd metric must not hide the counters we need.
    """
    found = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _METRIC_LINE.match(line)
        if not match:
            continue
        labels = _parse_labels(match.group(2) or "")
        if labels is None:
            continue
        found.append(MetricSample(match.group(1), labels, float(match.group(3))))
    return found


def _parse_labels(text: str) -> dict[str, str] | None:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text.rstrip()):
        match = _LABEL.match(text, position)
        if not match:
            return None
        labels[match.group(1)] = re.sub(r"\\[\\\"n]", lambda m: _LABEL_ESCAPES[m.group(0)], match.group(2))
        position = match.end()
    return labels


@dataclass(frozen=True)
class SinkCounters:
    """The two series a kumod sink is watched by (None: not in the text)."""

    received: int | None
    """``total_messages_received{service="esmtp_listener"}``: +1 per DATA transaction."""
    connections: int | None
    """``connection_count{service="esmtp_listener"}``: open inbound sessions."""


def sink_counters(text: str) -> SinkCounters:
    """The sink's counters from ``/metrics`` text, summed over any extra labels."""
    totals: dict[str, float] = {}
    for sample in parse_prometheus(text):
        if sample.labels.get("service") != "esmtp_listener" or math.isnan(sample.value):
            continue
        if sample.name in ("total_messages_received", "connection_count"):
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    received = totals.get("total_messages_received")
    connections = totals.get("connection_count")
    return SinkCounters(
        received=int(received) if received is not None else None,
        connections=int(connections) if connections is not None else None,
    )


class KumodSinkSampler:
    """Turns successive ``/metrics`` readings into sink samples.

    Poll about once a second (what ``kcli top`` does); the rate is the
    counter's change over a sliding window.
    """

    def __init__(self, window: float = 5.0) -> None:
        """Rates over ``window`` seconds."""
        self._rates = RateWindow(window)
        self._last = 0

    def update(self, elapsed: float, metrics_text: str) -> Sample:
        """A sample from one reading taken ``elapsed`` seconds into the job."""
        counters = sink_counters(metrics_text)
        count = counters.received if counters.received is not None else self._last
        self._last = count
        return Sample(
            role="sink",
            elapsed=elapsed,
            count=count,
            connections=counters.connections,
            rate=self._rates.add(elapsed, count),
        )
