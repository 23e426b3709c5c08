"""Benchmark requests checked before anything runs: the CLI's flag checks.

Why a separate module: every flag is refused here, each error naming its
flag, before any process starts, whichever backend then runs the jobs
(:mod:`kumotui.bench.run` starts and stops every job for the CLI and the app).
The built-in engines check their own flags again (they are shipped alone to
remote hosts); the checks here use the engines' own parsers, so both agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kumotui.backends import LoadRequest, SinkRequest
from kumotui.backends.lines import parse_size as parse_size
from kumotui.engines import smtp_gen
from kumotui.errors import KumotuiError, require
from kumotui.hosts.address import parse_address


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
    mta_metrics: str | None = None
    """``HOST:PORT`` of the MTA's (kumod's) HTTP listener, for its ``/metrics``."""
    mta_postfix_config: str | None = None
    """A Postfix MTA's configuration directory, for ``postqueue -c DIR -j`` (default: Postfix's own)."""

    def validate(self) -> BenchOptions:
        """Every flag checked up front, each error naming its flag."""
        checks = [
            (self.local_sink != (self.target is not None), "give exactly one of --target or --local-sink"),
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
        if self.recipient is not None:
            try:
                smtp_gen.check_recipient_domain(self.recipient.rpartition("@")[2])
            except smtp_gen.StartError as error:
                raise KumotuiError(f"--recipient: {error}") from None
        return self

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
            extra_args=self.extra_gen_args,
        )


def parse_listen(text: str, flag: str = "--listen") -> tuple[str, int]:
    """``ADDR:PORT`` or ``[v6]:PORT`` where a sink listens, naming ``flag`` when it is not one.

    Raises:
        KumotuiError: not an address with a port in 0-65535 (0: any free port).
    """
    try:
        return parse_address(text, allow_zero=True)
    except ValueError as error:
        raise KumotuiError(f"{flag} {text!r}: {error}; expected ADDR:PORT, e.g. 127.0.0.1:2026") from None


def check_sink(request: SinkRequest, *, workers_flag: str = "--workers") -> SinkRequest:
    """Refuse a nonsense sink before starting anything, each error naming its flag."""
    tempfail, permfail = request.tempfail_percent, request.permfail_percent
    checks = [
        (1 <= request.workers <= 256, f"{workers_flag} must be within 1-256"),
        (0 <= tempfail <= 100, "--tempfail-percent must be within 0-100"),
        (0 <= permfail <= 100, "--permfail-percent must be within 0-100"),
        (tempfail + permfail <= 100, "--tempfail-percent plus --permfail-percent must not exceed 100"),
        (request.idle_timeout is None or request.idle_timeout > 0, "--idle-timeout must be positive"),
        (1 <= request.http_port <= 65535, "--http-port must be within 1-65535"),
    ]
    require(checks)
    return request
