"""Benchmark backends: the tools a sink and a generator can be, behind one protocol.

A backend knows its tools: whether they are installed here, how to start a
sink and a generator from plain requests (:class:`SinkRequest`,
:class:`LoadRequest`) as :class:`~kumotui.backends.job.Job`\\ s, and how to
read their output into :mod:`~kumotui.backends.samples`. It never knows
where its jobs run: a :class:`~kumotui.backends.process.Launcher` (this
machine, or a host over SSH from :mod:`kumotui.hosts.launch`) runs the
argument lists it builds.

The registry is :class:`Backend`: each member names a module of this
package that exposes ``BACKEND``, an object following :class:`BenchBackend`.
A new backend is one new module plus one line in :class:`Backend`.
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, cast

from kumotui.backends.job import Job
from kumotui.backends.process import Launcher
from kumotui.errors import KumotuiError


class Backend(enum.StrEnum):
    """The registry of backends: ``NAME = "module"`` for each module of this package."""

    BUILTIN = "builtin"
    """kumotui's own SMTP sink and generator: always available."""
    KUMOMTA = "kumomta"
    """kumod with a sink policy kumotui writes, and traffic-gen."""
    POSTFIX = "postfix"
    """Postfix's smtp-sink and smtp-source."""

    @property
    def impl(self) -> BenchBackend:
        """The backend's implementation (its module's ``BACKEND``), imported on first use."""
        module = importlib.import_module(f"{__name__}.{self.value}")
        return cast(BenchBackend, module.BACKEND)


@dataclass(frozen=True)
class SinkRequest:
    """What a sink should be: where it listens and how it answers."""

    host: str = "127.0.0.1"
    """The address to listen on (``0.0.0.0`` for every interface)."""
    port: int | None = None
    """The port; None for the backend's own default (2026 for KumoMTA's sink,
    a free port for the built-in one)."""
    workers: int = 1
    """Processes sharing the port (built-in sink)."""
    concurrency: int = 50
    """Connections the sink must be able to hold at once (smtp-sink's ``-m``)."""
    tempfail_percent: float = 0.0
    """Share of messages answered 451 at end of data (built-in sink)."""
    permfail_percent: float = 0.0
    """Share of messages answered 554 at end of data (built-in sink)."""
    max_message_size: int | None = None
    """Largest message accepted (built-in sink; None for its default)."""
    idle_timeout: float | None = None
    """Seconds a silent session is kept (built-in sink; None for its default)."""
    kumod_user: str = "kumod"
    """The account kumod drops to when started as root (``--user``)."""
    http_port: int = 8002
    """kumod's HTTP listener for liveness and ``/metrics``."""
    stamps: str | None = None
    """Read the generator's per-message stamps of this run tag (built-in sink; a run through an MTA)."""
    responses: str | None = None
    """A Smart Sink responses file (KumoMTA's ``responses.toml`` format): per-domain bounces and deferrals
    (built-in sink; kumomta sink: embedded in its kumod policy)."""
    seed: int | None = None
    """The seed of the sink's draws, for repeatable runs (built-in sink)."""
    metrics_listen: str | None = None
    """Also serve the counters over HTTP here, in kumod's names, for runs that count a sink they did not
    start (``bench --sink``; built-in sink: kumod serves ``/metrics`` on its HTTP port already)."""


@dataclass(frozen=True)
class LoadRequest:
    """What a generator should send, and to where."""

    target: str
    """``HOST:PORT`` of the sink or MTA under test."""
    concurrency: int = 50
    messages: int | None = None
    """Messages to send; None: as many as the duration allows."""
    duration: float | None = None
    """Seconds to send for; None: until ``messages`` are sent (60 s when both are None)."""
    body_size: int = 1000
    rate: float | None = None
    """At most this many messages per second (built-in generator)."""
    workers: int = 1
    """Generator processes (built-in generator)."""
    pipelining: bool = True
    per_connection: int = 1000
    """Messages per connection before reconnecting (0: never)."""
    connect_timeout: float = 5.0
    reply_timeout: float | None = None
    """Seconds to wait for each reply before the session counts as failed (built-in; None: its default)."""
    recipient: str | None = None
    allow_remote_target: bool = False
    stamp: str | None = None
    """Stamp each message with this run tag, a unique id and its send time (built-in generator)."""
    worker_base: int = 0
    """The first worker's index in stamp ids: generators on several hosts take distinct ranges (built-in)."""
    keep_going: bool = False
    """Carry on after a refused message (the sink answers a share with 4xx/5xx)."""
    domains: tuple[tuple[str, float], ...] = ()
    """Weighted recipient domains as given (``--domain NAME:WEIGHT``, a ``--mix`` expanded); empty: the default."""
    domain_suffix: str | None = None
    """Appended to every domain that is not reserved (None: the generator's default)."""
    headers: tuple[str, ...] = ()
    """``Name: value`` lines put in every message."""
    allow_real_domains: bool = False
    """Allow recipient domains that are not reserved for testing (outbound mail redirected to a sink)."""
    extra_args: tuple[str, ...] = ()
    """Further arguments for the built-in generator (tests, experiments)."""


class BenchBackend(Protocol):
    """What every backend offers the benchmark run."""

    name: Backend

    def missing(self) -> str | None:
        """None when the backend's tools are installed here, else what is missing and where it was looked for."""
        ...

    def sink(self, launcher: Launcher, request: SinkRequest) -> Job:
        """A sink job for ``request`` (not started). Raises KumotuiError when it cannot be made."""
        ...

    def generator(self, launcher: Launcher, request: LoadRequest) -> Job:
        """A generator job for ``request`` (not started). Raises KumotuiError when it cannot be made."""
        ...


def available() -> list[Backend]:
    """The backends whose tools are installed here, in registry order (builtin first)."""
    return [backend for backend in Backend if backend.impl.missing() is None]


def preferred(found: Collection[str]) -> Backend:
    """What ``auto`` picks among the ``found`` backends: KumoMTA when its tools are there, else builtin."""
    return Backend.KUMOMTA if Backend.KUMOMTA in found else Backend.BUILTIN


def resolve(name: str) -> Backend:
    """A backend by name; ``auto`` is :func:`preferred` among those installed here.

    Raises:
        KumotuiError: an unknown name, listing the valid ones.
    """
    if name == "auto":
        return preferred(available())
    try:
        return Backend(name)
    except ValueError:
        raise KumotuiError(f"--backend {name!r}: choose auto, {', '.join(Backend)}") from None
