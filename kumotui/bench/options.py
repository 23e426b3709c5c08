"""Benchmark requests checked before anything runs: the CLI's flag checks.

Why a separate module: every flag is refused here, each error naming its
flag, before any process starts, whichever backend then runs the jobs
(:mod:`kumotui.bench.run` starts and stops every job for the CLI and the app).
The built-in engines check their own flags again (they are shipped alone to
remote hosts); the checks here use the engines' own parsers, so both agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kumotui.backends.lines import parse_size as parse_size
from kumotui.engines import smtp_gen
from kumotui.errors import KumotuiError


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
    sink_workers: int = 1
    pipelining: bool = True
    per_connection: int = 1000
    connect_timeout: float = 5.0
    recipient: str | None = None
    allow_remote_target: bool = False
    extra_gen_args: tuple[str, ...] = field(default_factory=tuple)

    def validate(self) -> BenchOptions:
        """Every flag checked up front, each error naming its flag."""
        checks = [
            (self.local_sink != (self.target is not None), "give exactly one of --target or --local-sink"),
            (self.messages is None or self.messages >= 1, "--messages must be at least 1"),
            (self.duration is None or 0 < self.duration < float("inf"), "--duration must be positive seconds"),
            (1 <= self.concurrency <= 100000, "--concurrency must be within 1-100000"),
            (self.rate is None or 0 < self.rate < float("inf"), "--rate must be positive messages per second"),
            (1 <= self.workers <= 256, "--workers must be within 1-256"),
            (1 <= self.sink_workers <= 256, "--sink-workers must be within 1-256"),
            (self.per_connection >= 0, "--messages-per-connection must be 0 or more"),
            (0 < self.connect_timeout <= 600, "--connect-timeout must be within 0-600 s"),
        ]
        for ok, message in checks:
            if not ok:
                raise KumotuiError(message)
        if self.target is not None:
            check_target(self.target, self.allow_remote_target)
        if self.recipient is not None:
            try:
                smtp_gen.check_recipient_domain(self.recipient.rpartition("@")[2])
            except smtp_gen.StartError as error:
                raise KumotuiError(f"--recipient: {error}") from None
        return self

    def gen_args(self, target: str) -> list[str]:
        """The generator's command line for this request."""
        args = [
            "--target",
            target,
            "--concurrency",
            str(self.concurrency),
            "--body-size",
            str(self.body_size),
            "--workers",
            str(self.workers),
            "--messages-per-connection",
            str(self.per_connection),
            "--connect-timeout",
            f"{self.connect_timeout:g}",
        ]
        if self.messages is not None:
            args += ["--messages", str(self.messages)]
        if self.duration is not None:
            args += ["--duration", f"{self.duration:g}"]
        if self.rate is not None:
            args += ["--rate", f"{self.rate:g}"]
        if not self.pipelining:
            args.append("--no-pipelining")
        if self.recipient:
            args += ["--recipient", self.recipient]
        if self.allow_remote_target:
            args.append("--allow-remote-target")
        return args + list(self.extra_gen_args)


def check_sink_options(listen: str, workers: int, tempfail: float, permfail: float, idle: float) -> None:
    """Refuse nonsense sink flags before starting anything."""
    _host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise KumotuiError(f"--listen {listen!r}: expected ADDR:PORT, e.g. 127.0.0.1:2026")
    checks = [
        (1 <= workers <= 256, "--workers must be within 1-256"),
        (0 <= tempfail <= 100, "--tempfail-percent must be within 0-100"),
        (0 <= permfail <= 100, "--permfail-percent must be within 0-100"),
        (tempfail + permfail <= 100, "--tempfail-percent plus --permfail-percent must not exceed 100"),
        (idle > 0, "--idle-timeout must be positive"),
    ]
    for ok, message in checks:
        if not ok:
            raise KumotuiError(message)
