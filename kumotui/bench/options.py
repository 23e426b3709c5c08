"""Benchmark requests checked before anything runs: the CLI's flag checks.

Why a separate module: every flag is refused here, each error naming its
flag, before any process starts, whichever backend then runs the jobs
(:mod:`kumotui.bench.run` starts and stops every job for the CLI and the app).
The built-in engines check their own flags again (they are shipped alone to
remote hosts); the checks here use the engines' own parsers, so both agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kumotui.backends import LoadRequest, SinkRequest
from kumotui.backends.lines import parse_size as parse_size
from kumotui.bench.watched import DEFAULT_METRICS_PORT
from kumotui.engines import smtp_gen, smtp_responses
from kumotui.errors import KumotuiError, require
from kumotui.hosts.address import format_address, is_loopback, parse_address


def check_target(text: str, allow_remote: bool) -> str:
    """Refuse a target outside loopback and private ranges unless allowed.

    Checked here, before any process starts, and again inside the engine.
    """
    try:
        host, port = smtp_gen.parse_target(text)
        smtp_gen.resolve_target(host, port, allow_remote)
    except smtp_gen.StartError as error:
        raise KumotuiError(str(error)) from None
    return text


@dataclass(frozen=True)
class BenchOptions:
    """A validated benchmark request, as the CLI (or later the UI) builds it."""

    target: str | None
    local_sink: bool
    messages: int | None = None
    duration: float | None = None
    concurrency: int = 50
    body_size: int = 1000
    rate: float | None = None
    workers: int = 1
    pipelining: bool = True
    per_connection: int = 1000
    connect_timeout: float = 5.0
    reply_timeout: float | None = None
    recipient: str | None = None
    allow_remote_target: bool = False
    extra_gen_args: tuple[str, ...] = field(default_factory=tuple)
    through: str | None = None
    """``HOST:PORT`` of the MTA under test: the generator sends there, the started sink counts what it relays."""
    probe_timeout: float = 30.0
    """Seconds the routing probes may take to reach the sink through the MTA."""
    drain_timeout: float = 60.0
    """Seconds to wait, after the generator ends, for the MTA to deliver what it accepted."""
    domains: tuple[tuple[str, float], ...] = ()
    """Weighted recipient domains (``--domain``, ``--mix``); empty: the generator's default."""
    domain_suffix: str | None = None
    """``--domain-suffix``; None: the generator's default (:data:`~kumotui.engines.smtp_gen.DEFAULT_SUFFIX`)."""
    headers: tuple[str, ...] = ()
    """``--header`` lines."""
    allow_real_domains: bool = False
    """``--allow-real-domains``: recipients outside reserved names (outbound mail redirected to a sink)."""
    mta_metrics: str | None = None
    """``HOST:PORT`` of the MTA's (kumod's) HTTP listener, for its ``/metrics``."""
    mta_postfix_config: str | None = None
    """A Postfix MTA's configuration directory, for ``postqueue -c DIR -j`` (default: Postfix's own)."""
    sink: str | None = None
    """``--sink HOST:PORT``: a running sink the MTA under test delivers to, which kumotui did not start and
    counts from its ``/metrics`` (:class:`~kumotui.bench.watched.WatchedSink`)."""
    sink_metrics: str | None = None
    """``--sink-metrics HOST:PORT``: where that sink serves ``/metrics`` (default: its host, port 8002)."""
    redirect_port25: bool = False
    """``--redirect-port25``: for the run, a firewall rule sends the MTA host's outbound port 25 to the
    sink (:mod:`kumotui.tuning.redirect`), so the MTA routes with its real routing and shaping."""

    def validate(self) -> BenchOptions:
        """Every flag checked up front, each error naming its flag."""
        checks = [
            (
                [self.local_sink, self.target is not None, self.sink is not None].count(True) == 1,
                "give exactly one of --target, --local-sink or --sink",
            ),
            (self.sink is None or self.through is not None, "--sink needs --through: it counts what an MTA relays"),
            (self.sink_metrics is None or self.sink is not None, "--sink-metrics needs --sink"),
            (self.messages is None or self.messages >= 1, "--messages must be at least 1"),
            (self.duration is None or 0 < self.duration < float("inf"), "--duration must be positive seconds"),
            (1 <= self.concurrency <= 100000, "--concurrency must be within 1-100000"),
            (self.rate is None or 0 < self.rate < float("inf"), "--rate must be positive messages per second"),
            (1 <= self.workers <= 256, "--workers must be within 1-256"),
            (self.per_connection >= 0, "--messages-per-connection must be 0 or more"),
            (0 < self.connect_timeout <= 600, "--connect-timeout must be within 0-600 s"),
            (
                self.reply_timeout is None or 0 < self.reply_timeout <= 3600,
                "--reply-timeout must be within 0-3600 s",
            ),
        ]
        require(checks)
        if self.target is not None:
            check_target(self.target, self.allow_remote_target)
        if self.through is not None:
            require(
                [
                    (0 < self.probe_timeout <= 600, "--probe-timeout must be within 0-600 s"),
                    (0 <= self.drain_timeout <= 3600, "--drain-timeout must be within 0-3600 s"),
                ]
            )
            try:
                check_target(self.through, self.allow_remote_target)
            except KumotuiError as error:
                raise KumotuiError(str(error).replace("--target", "--through", 1)) from None
            if self.mta_metrics is not None:
                parse_listen(self.mta_metrics, "--mta-metrics")
            if self.sink is not None:
                self._check_running_sink()
            if self.redirect_port25 and not is_loopback(parse_address(self.through, 25)[0]):
                raise KumotuiError(
                    f"--redirect-port25: the rule goes on the host the generator runs on, so the MTA under test "
                    f"must run there too: --through a loopback address (--host for another machine), not {self.through}"
                )
        elif self.redirect_port25:
            raise KumotuiError("--redirect-port25 needs --through: it redirects the MTA under test's outbound mail")
        if self.recipient is not None and not self.allow_real_domains:
            try:
                smtp_gen.check_recipient_domain(self.recipient.rpartition("@")[2])
            except smtp_gen.StartError as error:
                raise KumotuiError(f"--recipient: {error}") from None
        self.destinations()
        return self

    def _check_running_sink(self) -> None:
        """``--sink`` and its ``--sink-metrics``: well formed, in loopback or private ranges unless allowed."""
        for flag, text in (("--sink", self.sink), ("--sink-metrics", self.running_sink_metrics)):
            try:
                check_target(text or "", self.allow_remote_target)
            except KumotuiError as error:
                raise KumotuiError(str(error).replace("--target", flag, 1)) from None
        if self.redirect_port25:
            raise KumotuiError("--redirect-port25 needs --local-sink: the rule sends port 25 to a sink kumotui starts")

    @property
    def running_sink_metrics(self) -> str | None:
        """Where ``--sink``'s ``/metrics`` is read: ``--sink-metrics``, else the sink's host on port 8002."""
        if self.sink is None:
            return None
        if self.sink_metrics is not None:
            return self.sink_metrics
        return format_address(parse_address(self.sink, 25)[0], DEFAULT_METRICS_PORT)

    def destinations(self) -> list[tuple[str, float]]:
        """The recipient domains as sent (suffixed), with their weights; headers checked on the way.

        Raises:
            KumotuiError: a bad ``--domain``, ``--domain-suffix`` or ``--header``, or a real domain not allowed.
        """
        suffix = smtp_gen.DEFAULT_SUFFIX if self.domain_suffix is None else self.domain_suffix
        try:
            for header in self.headers:
                smtp_gen.parse_header(header)
            return smtp_gen.destination_domains(
                list(self.domains) or [("example.com", 1.0)], suffix, self.allow_real_domains
            )
        except smtp_gen.StartError as error:
            raise KumotuiError(str(error)) from None

    def load(self, target: str, *, keep_going: bool = False) -> LoadRequest:
        """What the generator is asked to send to ``target`` (the given one, or a started sink)."""
        return LoadRequest(
            target=target,
            concurrency=self.concurrency,
            messages=self.messages,
            duration=self.duration,
            body_size=self.body_size,
            rate=self.rate,
            workers=self.workers,
            pipelining=self.pipelining,
            per_connection=self.per_connection,
            connect_timeout=self.connect_timeout,
            reply_timeout=self.reply_timeout,
            recipient=self.recipient,
            allow_remote_target=self.allow_remote_target,
            keep_going=keep_going,
            domains=self.domains,
            domain_suffix=self.domain_suffix,
            headers=self.headers,
            allow_real_domains=self.allow_real_domains,
            extra_args=self.extra_gen_args,
        )


SHIPPED_RESPONSES = "providers"
"""The name of kumotui's own responses file (``--responses providers``)."""


def domain_list(given: list[str], mix: str | None) -> tuple[tuple[str, float], ...]:
    """``--domain NAME[:WEIGHT]`` flags and a ``--mix`` preset as one weighted list.

    Raises:
        KumotuiError: a flag that is not a domain with a positive weight.
    """
    try:
        domains = [smtp_gen.parse_domain(text) for text in given]
    except smtp_gen.StartError as error:
        raise KumotuiError(str(error)) from None
    return tuple(domains + list(smtp_gen.MIXES[mix] if mix else ()))


def resolve_responses(text: str | None) -> str | None:
    """``--responses FILE`` (or ``providers``, the shipped file) as a checked absolute path, or None.

    Raises:
        KumotuiError: the file cannot be read or is not a valid responses file (naming file, table, key).
    """
    if not text:
        return None
    path = Path(str(resources.files("kumotui.engines") / "responses.toml")) if text == SHIPPED_RESPONSES else Path(text)
    try:
        smtp_responses.load(str(path))
    except smtp_responses.ResponsesError as error:
        raise KumotuiError(f"--responses {error}") from None
    return str(path.resolve())


def parse_listen(text: str, flag: str = "--listen") -> tuple[str, int]:
    """``ADDR:PORT`` or ``[v6]:PORT`` where a sink listens, naming ``flag`` when it is not one.

    Raises:
        KumotuiError: not an address with a port in 0-65535 (0: any free port).
    """
    try:
        return parse_address(text, allow_zero=True)
    except ValueError as error:
        raise KumotuiError(f"{flag} {text!r}: {error}; expected ADDR:PORT, e.g. 127.0.0.1:2026") from None


def check_sink(request: SinkRequest, *, workers_flag: str = "--workers", backend: str = "builtin") -> SinkRequest:
    """Refuse a nonsense sink before starting anything, each error naming its flag.

    ``backend`` is the resolved backend that will run the sink: the built-in
    sink and kumod's sink policy answer from a responses file, Postfix's
    smtp-sink cannot, and silently ignoring ``--responses`` would report a
    run without backpressure as one with it.
    """
    tempfail, permfail = request.tempfail_percent, request.permfail_percent
    checks = [
        (
            not request.responses or backend in ("builtin", "kumomta"),
            f"--responses: the {backend} sink cannot answer from a responses file; the builtin and kumomta "
            "sinks can (use --backend builtin or kumomta, or leave --responses out)",
        ),
        (
            not request.metrics_listen or backend == "builtin",
            f"--metrics-listen: only the built-in sink needs it; the {backend} sink "
            + ("serves /metrics on its --http-port already" if backend == "kumomta" else "has no counters endpoint"),
        ),
        (1 <= request.workers <= 256, f"{workers_flag} must be within 1-256"),
        (0 <= tempfail <= 100, "--tempfail-percent must be within 0-100"),
        (0 <= permfail <= 100, "--permfail-percent must be within 0-100"),
        (tempfail + permfail <= 100, "--tempfail-percent plus --permfail-percent must not exceed 100"),
        (request.idle_timeout is None or request.idle_timeout > 0, "--idle-timeout must be positive"),
        (1 <= request.http_port <= 65535, "--http-port must be within 1-65535"),
        (
            not (request.responses and (tempfail or permfail)),
            "--responses and --tempfail-percent/--permfail-percent: put the shares in the responses file "
            "([default] defer = ..., bounce = ...) instead",
        ),
    ]
    require(checks)
    return request
