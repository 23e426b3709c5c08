#!/usr/bin/env python3
"""A fast SMTP traffic generator with exact counts and a latency histogram.

Why it exists: a tuning change is only worth what a benchmark shows, and
the benchmark must run anywhere. This client keeps ``--concurrency``
connections busy, each sending many messages; with PIPELINING it sends the
end of one message and the next envelope in one write (RFC 2920 allows
message content first and DATA last in a group), so a message costs one
round trip. The body is generated once. Every message attempted is either
sent, failed (by reply class) or, at a hard stop, unfinished, so counts
add up exactly against any sink.

Standalone on purpose: standard library only (uvloop optional) plus
``smtp_common``, the process plumbing it shares with the sink (forked
workers, JSON lines, stop requests), so the same file runs as ``python3 -m
kumotui.engines.smtp_gen`` or, with ``smtp_common.py`` beside it, as a plain
script on a host that has nothing else.

Output: JSON lines on stdout: ``ready``, ``progress`` every ``--interval``
seconds, then ``summary`` (also on SIGTERM, SIGINT, or stdin EOF with
``--exit-on-stdin-eof``), exit 0. Bad input or an unreachable target prints
``{"type": "error", ...}`` and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import math
import os
import random
import re
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, cast

if __package__:  # python -m kumotui.engines.smtp_gen, or imported by kumotui
    from . import smtp_common as common
else:  # a plain script, as shipped to a remote host, with smtp_common.py beside it
    # Python puts a script's directory first on sys.path, but not under -I, -P
    # or PYTHONSAFEPATH; putting it there finds the sibling in every mode.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import smtp_common as common  # type: ignore[import-not-found, no-redef]  # the same file as above

BUCKETS_PER_OCTAVE = common.BUCKETS_PER_OCTAVE
BUCKETS = common.BUCKETS
MAX_BODY = 64 * 1024 * 1024
RECIPIENT_CYCLE = 1000
"""Distinct recipients cycled through; envelopes are prebuilt once."""
RESERVED_SUFFIXES = (".test", ".invalid", ".example", ".localhost")
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
DEFAULT_SUFFIX = "kumotui.test"
"""Appended to every ``--domain`` that is not reserved itself (``gmail.com.kumotui.test``), so a
realistic mix still never names a real mailbox; the Smart Sink matches it to ``gmail.com``'s rules."""
PROVIDER_MIX = (
    ("gmail.com", 67.4),
    ("hotmail.com", 8.8),
    ("yahoo.com", 5.9),
    ("aol.com", 1.5),
    ("icloud.com", 1.2),
    ("outlook.com", 1.2),
    ("comcast.net", 0.5),
    ("msn.com", 0.5),
    ("orange.fr", 0.4),
    ("live.com", 0.3),
    ("sbcglobal.net", 0.3),
    ("bellsouth.net", 0.2),
    ("me.com", 0.2),
)
"""``--mix providers``: the mailbox-provider distribution of KumoMTA's testing guide (relative weights)."""
MIXES = {"providers": PROVIDER_MIX}
_DOMAIN_NAME = re.compile(
    r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")
GRACE = 2.0
"""Seconds after ``--duration`` for transactions in flight to finish."""
SIZE_UNITS = {
    "": 1,
    "B": 1,
    "K": 1000,
    "KB": 1000,
    "KIB": 1024,
    "M": 1000**2,
    "MB": 1000**2,
    "MIB": 1024**2,
    "G": 1000**3,
    "GB": 1000**3,
    "GIB": 1024**3,
}

BANNER, EHLO, HELO, MAIL, RCPT, DATA, DOT, RSET, QUIT = range(9)


StartError = common.StartError
"""Bad input or an unusable target; the message names the flag. The worker pool raises it too."""


# -- input parsing (also the core's, through kumotui.backends.parse_size) --------


def parse_size(text: str, flag: str = "--body-size") -> int:
    """``1000``, ``1KB``, ``100KB``, ``1MiB`` into bytes (KB = 1000, KiB = 1024).

    The units follow KumoMTA's traffic-gen, so a size means the same to both.
    A fraction rounds to the nearest byte (``1.001KB`` is 1001, where
    truncating the float product would give 1000).
    """
    # ASCII digits, a bounded count: float() of 5000 nines is infinity, and round() of that a crash.
    match = re.fullmatch(r"\s*([0-9]{1,15}(?:\.[0-9]{1,15})?)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else ""
    if not match or unit not in SIZE_UNITS:
        shown = str(text) if len(str(text)) <= 40 else str(text)[:40] + "…"
        raise StartError(f"{flag} {shown!r}: expected a size like 1000, 1KB, 100KB or 1MiB")
    value = round(float(match.group(1)) * SIZE_UNITS[unit])
    if value < 1:
        raise StartError(f"{flag} {text!r}: must be at least 1 byte")
    if value > MAX_BODY:
        raise StartError(f"{flag} {text!r}: at most {MAX_BODY // 1024**2} MiB")
    return value


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` into host and port (``smtp_common.split_host_port``)."""
    try:
        return common.split_host_port(text)
    except ValueError as error:
        raise StartError(f"--target {text!r}: {error}; expected HOST:PORT, e.g. 127.0.0.1:2026") from None


ALLOWED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
)
"""Loopback and the private ranges (RFC 1918, IPv6 ULA). Python's ``is_private``
is broader (documentation and benchmark ranges too), so the list is explicit."""


def address_allowed(address: str) -> bool:
    """Loopback and private ranges only: a benchmark never leaves the site."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in ALLOWED_NETWORKS)


def resolve_target(host: str, port: int, allow_remote: bool) -> tuple[int, str]:
    """Resolve once; refuse any address outside loopback/private ranges unless allowed.

    Returns the address family and the numeric address to connect to, so
    thousands of connections never resolve the name again.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise StartError(f"--target {host}: cannot resolve: {error.strerror}") from None
    addresses = [(info[0], str(info[4][0])) for info in infos]
    if not allow_remote:
        refused = sorted({a for _, a in addresses if not address_allowed(a)})
        if refused:
            raise StartError(
                f"--target {host}: {', '.join(refused)} is outside loopback and private "
                "ranges; pass --allow-remote-target if this host really is your sink"
            )
    return addresses[0]


def is_reserved(domain: str) -> bool:
    """Whether ``domain`` is reserved for testing (RFC 2606/6761): no real mailbox can be there."""
    d = domain.lower().rstrip(".")
    return d in RESERVED_DOMAINS or d.endswith(RESERVED_SUFFIXES) or d in ("test", "invalid")


def parse_domain(text: str) -> tuple[str, float]:
    """``NAME[:WEIGHT]`` (traffic-gen's ``--domain``) into a lower-case name and a positive weight (default 1)."""
    name, _, weight = text.strip().partition(":")
    name = name.lower().rstrip(".")
    try:
        value = float(weight) if weight else 1.0
    except ValueError:
        value = -1.0
    if not _DOMAIN_NAME.fullmatch(name):
        raise StartError(f"--domain {text!r}: {name!r} is not a domain name")
    if not (0 < value < math.inf):
        raise StartError(f"--domain {text!r}: the weight must be a positive number, as in gmail.com:67.4")
    return name, value


def destination_domains(domains: list[tuple[str, float]], suffix: str, allow_real: bool) -> list[tuple[str, float]]:
    """The recipient domains a run sends to: each non-reserved one given ``suffix``, all then checked.

    A reserved domain (``example.com``, ``x.test``) stays as it is; any other
    becomes ``NAME.SUFFIX``. The result must be reserved unless ``allow_real``
    (``--allow-real-domains``): only a run whose outbound mail is redirected
    to a sink should ever send to real names.
    """
    suffix = suffix.strip(".").lower()
    if suffix and not _DOMAIN_NAME.fullmatch(suffix):
        raise StartError(f"--domain-suffix {suffix!r}: not a domain name")
    out = []
    for name, weight in domains:
        full = name if is_reserved(name) or not suffix else f"{name}.{suffix}"
        if not allow_real and not is_reserved(full):
            raise StartError(
                f"recipient domain {full!r} is not reserved for testing; use a reserved --domain-suffix "
                f"(default {DEFAULT_SUFFIX}), or pass --allow-real-domains when outbound mail is redirected to a sink"
            )
        out.append((full, weight))
    return out


def recipient_cycle(domains: list[tuple[str, float]], size: int = RECIPIENT_CYCLE) -> list[str]:
    """``size`` recipients whose domains follow the weights (largest remainder), in a fixed shuffled order.

    Every domain with a weight gets at least one slot; the order is shuffled
    with a fixed seed, so domains interleave and every run sends the same mix.
    """
    total = sum(weight for _, weight in domains)
    quotas = [max(1, math.floor(size * weight / total)) for _, weight in domains]
    spare = size - sum(quotas)
    order = sorted(range(len(domains)), key=lambda i: -(size * domains[i][1] / total - quotas[i]))
    for i in order[: max(0, spare)]:
        quotas[i] += 1
    names = [name for (name, _), quota in zip(domains, quotas, strict=True) for _ in range(quota)]
    random.Random(20261).shuffle(names)
    return [f"user{n}@{name}" for n, name in enumerate(names)]


def parse_header(text: str) -> str:
    """``Name: value`` (``--header``) checked: a field name, and a value without line breaks, in ASCII."""
    name, colon, value = text.partition(":")
    if not colon or not _HEADER_NAME.fullmatch(name) or not value.strip():
        raise StartError(f"--header {text!r}: expected 'Name: value', e.g. 'X-Tenant: acme'")
    if not value.isascii() or any(c in value for c in "\r\n\0"):
        raise StartError(f"--header {text!r}: the value must be one line of ASCII")
    if name.lower() in ("x-kumotui-stamp", "from", "to", "date", "message-id"):
        raise StartError(f"--header {text!r}: {name} is set by the generator itself")
    return f"{name}: {value.strip()}"


def check_recipient_domain(domain: str) -> None:
    """Recipients stay on reserved test domains (RFC 2606/6761), so no real mailbox is hit."""
    if not is_reserved(domain):
        raise StartError(
            f"recipient domain {domain!r} is not reserved for testing; use example.com, a .test or .invalid name"
        )


# -- the message ------------------------------------------------------------------

WORDS = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "mail",
    "server",
    "queue",
    "delivery",
    "throughput",
    "latency",
    "kernel",
    "socket",
    "buffer",
    "message",
    "relay",
    "tuning",
    "sink",
    "benchmark",
    "connection",
    "pipeline",
    "envelope",
    "recipient",
    "sender",
    "header",
    "body",
)


def build_message(size: int, sender: str, domain: str, extra: tuple[str, ...] = ()) -> bytes:
    """A realistic message of exactly ``size`` bytes before the terminator (at least 2: one CRLF).

    Headers as a mail client writes them, then lines of words under 78
    characters; nothing starts with a dot, so no dot-stuffing is needed.
    A size below the headers' own length drops the optional headers from the
    end, then writes a body alone: the size asked for is always the size sent.
    ``extra`` (``--header``) come right after From and To, so they are the
    last to be dropped (:func:`config_from` refuses a size without room for them).
    """
    rng = random.Random(20260)
    headers = [
        f"From: kumotui bench <{sender}>\r\n",
        f"To: <recipient@{domain}>\r\n",
        *(f"{line}\r\n" for line in extra),
        "Subject: kumotui benchmark message\r\n",
        f"Date: {formatdate(usegmt=True)}\r\n",
        f"Message-ID: <{rng.getrandbits(64):016x}.bench@kumotui.invalid>\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: text/plain; charset=us-ascii\r\n",
        "Content-Transfer-Encoding: 7bit\r\n",
        "X-Mailer: kumotui-bench\r\n",
    ]
    while headers and not _room_for_body(len("".join(headers)) + 2, size):
        headers.pop()
    head = ("".join(headers) + "\r\n").encode("ascii") if headers else b""
    return head + _body(size - len(head), rng)


def _room_for_body(head: int, size: int) -> bool:
    """Whether ``head`` bytes of headers leave a body of 0 or at least 2 bytes (a body is CRLF lines)."""
    return size == head or size >= head + 2


def _body(size: int, rng: random.Random) -> bytes:
    """``size`` bytes of CRLF-ended lines of words (at most 78 bytes each), never starting with a dot."""
    lines: list[bytes] = []
    left = size
    while left > 0:
        width = min(76, left - 2)
        if 0 < left - (width + 2) < 3:
            width -= 3  # never leave a remainder too small for a line of its own
        text = ""
        while len(text) < width:
            text += rng.choice(WORDS) + " "
        lines.append(text[:width].encode("ascii") + b"\r\n")
        left -= width + 2
    return b"".join(lines)


# -- counters ---------------------------------------------------------------------


class Stats:
    """Counters of one process; merged across workers by addition."""

    __slots__ = (
        "bytes",
        "connect_errors",
        "connections",
        "connections_total",
        "failed",
        "failed_by",
        "hist",
        "latency_sum_us",
        "max_latency_us",
        "sent",
        "unfinished",
    )

    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
        self.failed_by: dict[str, int] = {}
        self.connect_errors: dict[str, int] = {}
        self.unfinished = 0
        self.bytes = 0
        self.connections = 0
        self.connections_total = 0
        self.hist = [0] * BUCKETS
        self.latency_sum_us = 0
        self.max_latency_us = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counters, histogram included (the parent merges it)."""
        return {name: getattr(self, name) for name in self.__slots__}

    def add_latency(self, seconds: float) -> None:
        """One transaction's latency into the fixed log-bucket histogram."""
        us = int(seconds * 1e6)
        self.hist[common.bucket_of(us)] += 1
        self.latency_sum_us += us
        if us > self.max_latency_us:
            self.max_latency_us = us


def latency_summary(state: dict[str, Any]) -> dict[str, float]:
    """p50/p90/p95/p99/max/avg in milliseconds from a (merged) state's histogram."""
    hist: list[int] = state.get("hist") or [0] * BUCKETS
    return common.histogram_summary(hist, float(state.get("max_latency_us", 0)), state.get("latency_sum_us", 0))


# -- the client -------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Everything a worker needs, fixed before any fork."""

    family: int
    address: str
    port: int
    target: str
    concurrency: int
    messages: int | None
    duration: float | None
    rate: float | None
    body_size: int
    pipelining: bool
    per_connection: int
    connect_timeout: float
    reply_timeout: float
    connect_retries: int
    sender: str
    recipient: str | None
    domain: str
    hostname: str
    interval: float
    stamp: str | None = None
    """``--stamp TAG``: put an ``X-Kumotui-Stamp`` header (tag, unique id, send time) first in each message."""
    domains: tuple[tuple[str, float], ...] = ()
    """Weighted recipient domains (``--domain NAME:WEIGHT``, suffixed); empty: ``domain`` alone."""
    headers: tuple[str, ...] = ()
    """``--header`` lines put in every message."""
    worker: int = 0
    """This process's index among the workers (the high bits of every stamp id)."""


class Txn:
    """One transaction in flight: when it started, its first failure, whether
    the server has answered any of it (if not, a lost connection gives the
    message back to the budget instead of counting it as failed)."""

    __slots__ = ("done", "fail", "ident", "replied", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.fail = 0
        self.replied = False
        self.done = False
        self.ident = -1
        """The message's stamp id once its content is sent (``--stamp``)."""


class Generator:
    """The shared state of one process: budget, pacing, counters, sessions."""

    def __init__(self, cfg: Config, loop: asyncio.AbstractEventLoop) -> None:
        self.cfg = cfg
        self.loop = loop
        self.stats = Stats()
        self.remaining = cfg.messages
        self.stopping = False
        self.sessions: set[Client] = set()
        self.next_slot = 0.0
        self.gap = 1.0 / cfg.rate if cfg.rate else 0.0
        stamp = common.STAMP_LENGTH if cfg.stamp else 0
        message = build_message(cfg.body_size - stamp, cfg.sender, cfg.domain, cfg.headers)
        self.message_size = len(message) + stamp
        self.content = message + b".\r\n"
        self.accepted = common.IdRanges()
        """Stamp ids the server accepted (``--stamp``): the core subtracts what the sink saw."""
        self.sequence = 0
        rcpts = [cfg.recipient] if cfg.recipient else recipient_cycle(list(cfg.domains) or [(cfg.domain, 1.0)])
        mail = f"MAIL FROM:<{cfg.sender}>"
        size = f" SIZE={self.message_size}"
        self.mail_plain = (mail + "\r\n").encode()
        self.mail_sized = (mail + size + "\r\n").encode()
        self.rcpt_lines = [f"RCPT TO:<{r}>\r\n".encode() for r in rcpts]
        self.groups_plain = [self.mail_plain + r + b"DATA\r\n" for r in self.rcpt_lines]
        self.groups_sized = [self.mail_sized + r + b"DATA\r\n" for r in self.rcpt_lines]
        self.counter = 0

    def stamp(self, txn: Txn) -> bytes:
        """The stamp line for ``txn``'s message, sent now: a new id, this moment's wall clock."""
        self.sequence += 1
        txn.ident = self.cfg.worker << common.WORKER_SHIFT | self.sequence
        assert self.cfg.stamp is not None
        return common.stamp_line(self.cfg.stamp, txn.ident, time.time_ns())

    def take(self) -> bool:
        """Claim one message from the budget; False when none is left or stopping."""
        if self.stopping:
            return False
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def give_back(self) -> None:
        """A claimed message the server never saw goes back to the budget."""
        if self.remaining is not None:
            self.remaining += 1

    def has_budget(self) -> bool:
        """Whether a slot should (re)connect."""
        return not self.stopping and (self.remaining is None or self.remaining > 0)

    def pace(self) -> float:
        """Seconds to wait before the next transaction under ``--rate`` (0: go now)."""
        if not self.gap:
            return 0.0
        now = self.loop.time()
        slot = self.next_slot if self.next_slot > now else now
        self.next_slot = slot + self.gap
        return slot - now

    def finish(self, txn: Txn, code: int) -> None:
        """Count a transaction once: sent on 2xx with no earlier failure, else failed."""
        if txn.done:
            return
        txn.done = True
        stats = self.stats
        if not txn.fail and 200 <= code < 300:
            if txn.ident >= 0:
                self.accepted.add(txn.ident)
            stats.sent += 1
            stats.bytes += self.message_size
            stats.add_latency(time.perf_counter() - txn.start)
            return
        self.fail(f"{(txn.fail or code) // 100}xx")

    def fail(self, reason: str) -> None:
        """One failed transaction, by reply class or by what cut it short."""
        stats = self.stats
        stats.failed += 1
        stats.failed_by[reason] = stats.failed_by.get(reason, 0) + 1

    def connect_error(self, reason: str) -> None:
        """A connection that never got to send mail, by errno name or reply."""
        errors = self.stats.connect_errors
        errors[reason] = errors.get(reason, 0) + 1


class Client(asyncio.Protocol):
    """One SMTP client session as a state machine: no task per message.

    ``expect`` holds what each awaited reply answers, in order, which is all
    PIPELINING needs: replies come back in the order commands were sent.
    """

    __slots__ = (
        "banner_ok",
        "caps",
        "closed",
        "closing",
        "count",
        "expect",
        "finished",
        "gen",
        "groups",
        "last_rx",
        "lines",
        "mail_line",
        "needs_rset",
        "pace_handle",
        "pipelining",
        "quitting",
        "rbuf",
        "reason",
        "transport",
    )

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.expect: deque[tuple[int, Txn | None]] = deque()
        self.rbuf = b""
        self.lines: list[bytes] = []
        self.caps: set[bytes] = set()
        self.pipelining = False
        self.groups = gen.groups_plain
        self.mail_line = gen.mail_plain
        self.count = 0
        self.finished = 0
        self.needs_rset = False
        self.banner_ok = False
        self.quitting = False
        self.closing = False
        self.reason = "dropped"
        self.pace_handle: asyncio.TimerHandle | None = None
        self.last_rx = time.monotonic()
        self.closed: asyncio.Future[None] = gen.loop.create_future()

    # -- transport callbacks -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Wait for the banner."""
        self.transport = cast(asyncio.Transport, transport)
        self.gen.stats.connections += 1
        self.gen.stats.connections_total += 1
        self.gen.sessions.add(self)
        self.expect.append((BANNER, None))
        self.last_rx = time.monotonic()

    def connection_lost(self, _exc: Exception | None) -> None:
        """Settle whatever was in flight and let the slot decide what next."""
        gen = self.gen
        gen.stats.connections -= 1
        gen.sessions.discard(self)
        self._settle(self.reason)
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        """Split replies into lines; act on each final line (``NNN `` or ``NNN``)."""
        buf = self.rbuf + data if self.rbuf else data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if len(line) < 3 or not line[:3].isdigit():
                self._abort("protocol")
                return
            if line[3:4] == b"-":
                if len(self.lines) < 100:
                    self.lines.append(line)
                continue
            self.lines.append(line)
            self.last_rx = time.monotonic()  # a whole reply: the next one's deadline starts now
            self._reply(int(line[:3]))
            self.lines = []
            if self.closing:
                return
        rest = buf[start:]
        if len(rest) > 65536:
            self._abort("protocol")
            return
        self.rbuf = rest

    # -- replies --------------------------------------------------------------------

    def _reply(self, code: int) -> None:
        if not self.expect:
            self._close()  # unsolicited, e.g. 421 before the server hangs up
            return
        kind, txn = self.expect.popleft()
        if txn is not None:
            txn.replied = True
        if code == 421 and kind != QUIT:
            if kind in (MAIL, RSET) and txn is not None and not txn.done:
                # Closing before the message started (a server closing after N
                # messages does this at MAIL; without PIPELINING the RSET that
                # opens the next message carries it): the message goes back to
                # the budget and is sent on a new connection, so every message
                # stays counted exactly once and none is called failed.
                txn.done = True
                self.gen.give_back()
            elif txn is not None:
                self.finished += 1
                self.gen.finish(txn, code)
            elif kind in (BANNER, EHLO, HELO):
                self.gen.connect_error(f"reply {code}")
            self.reason = "4xx"
            self._close()
            return
        if txn is not None:
            self.finished += 1  # the server is answering: this connection is useful
        if kind == DOT:
            self._dot(txn, code)
        elif kind == MAIL:
            self._mail(txn, code)
        elif kind == RCPT:
            self._rcpt(txn, code)
        elif kind == DATA:
            self._data(txn, code)
        elif kind == RSET:
            if txn is not None:  # no PIPELINING: the MAIL waited for RSET
                self._send(self.mail_line)
                self.expect.append((MAIL, txn))
        elif kind == BANNER:
            self._banner(code)
        elif kind in (EHLO, HELO):
            self._hello(kind, code)
        else:  # QUIT
            self._close()

    def _banner(self, code: int) -> None:
        if code != 220:
            self.gen.connect_error(f"banner {code}")
            self._close()
            return
        self._send(b"EHLO " + self.gen.cfg.hostname.encode() + b"\r\n")
        self.expect.append((EHLO, None))

    def _hello(self, kind: int, code: int) -> None:
        if 200 <= code < 300:
            self.banner_ok = True
            if kind == EHLO:
                self.caps = {line[4:].strip().split(b" ")[0].upper() for line in self.lines[1:]}
                self.pipelining = self.gen.cfg.pipelining and b"PIPELINING" in self.caps
                if b"SIZE" in self.caps:
                    self.groups = self.gen.groups_sized
                    self.mail_line = self.gen.mail_sized
            self._next(b"")
        elif kind == EHLO and 500 <= code < 600:
            self._send(b"HELO " + self.gen.cfg.hostname.encode() + b"\r\n")
            self.expect.append((HELO, None))
        else:
            self.gen.connect_error(f"{'EHLO' if kind == EHLO else 'HELO'} {code}")
            self._close()

    def _mail(self, txn: Txn | None, code: int) -> None:
        assert txn is not None
        if code >= 300:
            txn.fail = txn.fail or code
        if self.pipelining:
            return
        if txn.fail:
            self.gen.finish(txn, code)
            self._next(b"")
        else:
            self._send(self.gen.rcpt_lines[self.gen.counter % len(self.gen.rcpt_lines)])
            self.expect.append((RCPT, txn))

    def _rcpt(self, txn: Txn | None, code: int) -> None:
        assert txn is not None
        if code >= 300:
            txn.fail = txn.fail or code
        if self.pipelining:
            return
        if txn.fail:
            self.gen.finish(txn, code)
            self.needs_rset = True
            self._next(b"")
        else:
            self._send(b"DATA\r\n")
            self.expect.append((DATA, txn))

    def _data(self, txn: Txn | None, code: int) -> None:
        assert txn is not None
        if code == 354:
            if txn.fail:  # a server that says 354 after refusing every recipient
                self._send(b".\r\n")
                self.expect.append((DOT, txn))
                return
            self.expect.append((DOT, txn))
            content = self.gen.content
            if self.gen.cfg.stamp:
                content = self.gen.stamp(txn) + content
            if self.pipelining:
                self._next(content)
            else:
                self._send(content)
            return
        txn.fail = txn.fail or code
        self.gen.finish(txn, txn.fail)
        self.needs_rset = True
        self._next(b"")

    def _dot(self, txn: Txn | None, code: int) -> None:
        assert txn is not None
        self.gen.finish(txn, txn.fail or code)
        if not self.pipelining:
            self._next(b"")

    # -- sending ----------------------------------------------------------------------

    def _next(self, prefix: bytes) -> None:
        """Start the next transaction, after ``prefix`` in the same write.

        With PIPELINING the prefix is the current message, so its end and
        the next envelope share one write and one round trip.
        """
        gen = self.gen
        cap = gen.cfg.per_connection
        if (cap and self.count >= cap) or not gen.take():
            self.quitting = True
            self._send(prefix + b"QUIT\r\n" if prefix else b"QUIT\r\n")
            self.expect.append((QUIT, None))
            return
        self.count += 1
        delay = gen.pace()
        if delay > 0.0005:
            if prefix:
                self._send(prefix)
            self.pace_handle = gen.loop.call_later(delay, self._paced)
            return
        self._start(prefix)

    def _paced(self) -> None:
        self.pace_handle = None
        if self.transport is None:
            return
        if self.gen.stopping:
            self.gen.give_back()
            self.quitting = True
            self._send(b"QUIT\r\n")
            self.expect.append((QUIT, None))
            return
        self._start(b"")

    def _start(self, prefix: bytes) -> None:
        gen = self.gen
        if not self.expect:
            self.last_rx = time.monotonic()  # after a paced pause: the wait for replies starts now
        txn = Txn(time.perf_counter())
        parts = [prefix] if prefix else []
        if self.needs_rset:
            self.needs_rset = False
            parts.append(b"RSET\r\n")
            if not self.pipelining:
                self._send(b"".join(parts))
                self.expect.append((RSET, txn))
                return
            self.expect.append((RSET, None))
        if self.pipelining:
            gen.counter += 1
            parts.append(self.groups[gen.counter % len(self.groups)])
            self.expect.append((MAIL, txn))
            self.expect.append((RCPT, txn))
            self.expect.append((DATA, txn))
        else:
            gen.counter += 1
            parts.append(self.mail_line)
            self.expect.append((MAIL, txn))
        self._send(b"".join(parts) if len(parts) > 1 else parts[0])

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    # -- ending -----------------------------------------------------------------------

    def _settle(self, reason: str) -> None:
        """Count every transaction still awaited: failed (or unfinished at a hard
        stop) if the server answered part of it, else back to the budget."""
        gen = self.gen
        if self.pace_handle is not None:
            self.pace_handle.cancel()
            self.pace_handle = None
            gen.give_back()
        seen: set[int] = set()
        for _, txn in self.expect:
            if txn is None or txn.done or id(txn) in seen:
                continue
            seen.add(id(txn))
            txn.done = True
            if not txn.replied:
                gen.give_back()
            elif reason == "unfinished":
                gen.stats.unfinished += 1
            else:
                gen.fail(reason)
        self.expect.clear()

    def _close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def _abort(self, reason: str) -> None:
        self.closing = True
        self.reason = reason
        if self.transport is not None:
            self.transport.abort()

    def stop_now(self) -> None:
        """Hard stop (signal, grace over): abort; what was in flight is unfinished."""
        self._abort("unfinished")

    def check_timeout(self, now: float) -> None:
        """Abort a session whose awaited reply is later than ``--reply-timeout``.

        The deadline runs from the previous complete reply, so a server that
        trickles a byte at a time cannot stretch it.
        """
        if self.expect and now - self.last_rx > self.gen.cfg.reply_timeout:
            self._abort("timeout")


# -- running ----------------------------------------------------------------------


def errno_name(error: BaseException) -> str:
    """``ECONNREFUSED`` and friends: short, stable keys for the summary."""
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "ETIMEDOUT"
    code = getattr(error, "errno", None)
    if isinstance(code, int) and code in errno.errorcode:
        return errno.errorcode[code]
    return type(error).__name__


async def slot(gen: Generator) -> None:
    """One of ``--concurrency`` connection slots: connect, send, reconnect.

    A slot reconnects after a 421 or the per-connection cap while budget is
    left, and gives up after ``--connect-retries`` failures in a row so a
    dead target ends the run instead of spinning.
    """
    cfg = gen.cfg
    loop = gen.loop
    failures = 0
    while gen.has_budget():
        try:
            _, client = await asyncio.wait_for(
                loop.create_connection(lambda: Client(gen), cfg.address, cfg.port, family=cfg.family),
                cfg.connect_timeout,
            )
        except (TimeoutError, OSError) as error:
            gen.connect_error(errno_name(error))
            failures += 1
            if failures > cfg.connect_retries:
                return
            await asyncio.sleep(min(2.0, 0.05 * 2**failures))
            continue
        await client.closed
        if client.finished:
            failures = 0
        elif gen.has_budget():
            failures += 1
            if failures > cfg.connect_retries:
                return
            await asyncio.sleep(min(2.0, 0.05 * 2**failures))


def run_worker(cfg: Config, report: common.Reporter, use_uvloop: bool, stdin_eof: bool) -> int:
    """Send until the budget, the deadline or a signal ends it; ``report`` gets
    ``ready``, ``state`` every interval, and ``final``."""
    loop, loop_name = common.new_loop(use_uvloop)
    asyncio.set_event_loop(loop)
    gen = Generator(cfg, loop)
    halt = loop.create_future()

    def hard_stop() -> None:
        gen.stopping = True
        if not halt.done():
            halt.set_result(None)
        for client in list(gen.sessions):
            client.stop_now()

    common.add_stop_handlers(loop, hard_stop, stdin_eof)

    async def run() -> None:
        report("ready", {"loop": loop_name, "message_size": gen.message_size})
        started = time.monotonic()
        deadline = started + cfg.duration if cfg.duration else math.inf
        slots = [loop.create_task(slot(gen)) for _ in range(cfg.concurrency)]
        pending: set[asyncio.Future[Any]] = set(slots)
        next_report = started + cfg.interval
        while pending:
            now = time.monotonic()
            wake = min(next_report, deadline, deadline + GRACE if gen.stopping else math.inf)
            waiting: set[asyncio.Future[Any]] = {*pending, halt}
            _, still = await asyncio.wait(waiting, timeout=max(0.0, wake - now), return_when=asyncio.FIRST_COMPLETED)
            pending = {task for task in still if task is not halt}
            now = time.monotonic()
            for client in list(gen.sessions):
                client.check_timeout(now)
            if now >= deadline and not gen.stopping:
                gen.stopping = True  # no new transactions; those in flight may finish
                for client in list(gen.sessions):
                    if client.pace_handle is not None or not client.expect:
                        client.stop_now()
            if (now >= deadline + GRACE or halt.done()) and pending:
                hard_stop()
            if now >= next_report:
                report("state", _state(gen, now - started))
                next_report = max(next_report + cfg.interval, now)
        for task in slots:
            with contextlib.suppress(asyncio.CancelledError):
                task.result()
        report("final", _state(gen, time.monotonic() - started))

    try:
        loop.run_until_complete(run())
    finally:
        with contextlib.suppress(Exception):
            loop.close()
    return 0


def _state(gen: Generator, elapsed: float) -> dict[str, Any]:
    state = gen.stats.as_dict()
    state["elapsed_worker"] = round(elapsed, 3)
    state["unsent"] = gen.remaining if gen.remaining is not None else 0
    if gen.cfg.stamp:
        state["ranges_accepted"] = gen.accepted.as_list()
    return state


def present(state: dict[str, Any], elapsed: float, kind: str) -> dict[str, Any]:
    """A progress or summary line from (merged) counters: rates, MMH, percentiles."""
    sent = int(state.get("sent", 0))
    rate = sent / elapsed if elapsed > 0 else 0.0
    line: dict[str, Any] = {
        "type": kind,
        "elapsed": round(elapsed, 3),
        "sent": sent,
        "failed": int(state.get("failed", 0)),
        "failed_by": state.get("failed_by", {}),
        "connect_errors": state.get("connect_errors", {}),
        "unfinished": int(state.get("unfinished", 0)),
        "connections": int(state.get("connections", 0)),
        "connections_total": int(state.get("connections_total", 0)),
        "bytes": int(state.get("bytes", 0)),
        "msgs_per_s": round(rate, 1),
        "mmh": round(rate * 3600 / 1e6, 4),
        "mb_per_s": round(state.get("bytes", 0) / elapsed / 1e6, 3) if elapsed > 0 else 0.0,
        "latency_ms": latency_summary(state),
    }
    # The histogram in every line (its non-empty buckets only), so that the
    # readings of generators on several hosts merge exactly, live as at the end.
    hist = state.get("hist") or []
    line["latency_histogram"] = {
        "buckets_per_octave": BUCKETS_PER_OCTAVE,
        "unit": "us",
        "counts": {str(i): c for i, c in enumerate(hist) if c},
        "sum_us": int(state.get("latency_sum_us", 0)),
    }
    if kind == "summary":
        line["unsent"] = int(state.get("unsent", 0))
        if "ranges_accepted" in state:
            line["ranges_accepted"] = state["ranges_accepted"]
    return line


def _ready_line(cfg: Config, workers: int, loop_name: str, message_size: int) -> dict[str, Any]:
    return {
        "type": "ready",
        "target": cfg.target,
        "address": cfg.address,
        "concurrency": cfg.concurrency,
        "workers": workers,
        "messages": cfg.messages,
        "duration": cfg.duration,
        "rate": cfg.rate,
        "pipelining": cfg.pipelining,
        "message_size": message_size,
        "loop": loop_name,
        "pid": os.getpid(),
    }


def run_single(cfg: Config, use_uvloop: bool, stdin_eof: bool) -> int:
    """The whole generator in this process (the default)."""
    started = time.monotonic()

    def report(kind: str, payload: dict[str, Any]) -> None:
        if kind == "ready":
            common.emit(_ready_line(cfg, 1, payload["loop"], payload["message_size"]))
            return
        elapsed = time.monotonic() - started
        line = present(payload, elapsed, "progress" if kind == "state" else "summary")
        if kind == "final":
            line["workers"] = 1
        common.emit(line)

    return run_worker(cfg, report, use_uvloop, stdin_eof)


def split(total: int | None, parts: int, index: int) -> int | None:
    """Share ``index`` of ``total`` over ``parts`` so the shares add up exactly."""
    if total is None:
        return None
    return total // parts + (1 if index < total % parts else 0)


def run_pool(cfg: Config, workers: int, use_uvloop: bool, stdin_eof: bool) -> int:
    """``workers`` forked processes, each with its share of connections,
    messages and rate; this parent merges their counters (histograms add)."""
    pool = common.WorkerPool()
    pool.install_signals()
    sizes: list[int] = []
    for i in range(workers):
        share = Config(
            **{
                **cfg.__dict__,
                "concurrency": split(cfg.concurrency, workers, i) or 1,
                "messages": split(cfg.messages, workers, i),
                "rate": cfg.rate / workers if cfg.rate else None,
                "worker": cfg.worker + i,
            }
        )
        if share.messages == 0:
            continue
        sizes.append(i)
        pool.spawn(_child_runner(share, use_uvloop))
    started = time.monotonic()
    loop_name = pool.wait_ready()
    common.emit(_ready_line(cfg, len(sizes), loop_name, cfg.body_size))
    pool.serve(
        cfg.interval,
        stdin_eof,
        lambda: common.emit(present(pool.totals(), time.monotonic() - started, "progress")),
    )
    pool.stop()
    line = present(pool.totals(), time.monotonic() - started, "summary")
    line["workers"] = len(sizes)
    if pool.lost:
        line["workers_lost"] = pool.lost
    common.emit(line)
    return 0


def _child_runner(cfg: Config, use_uvloop: bool) -> Callable[[common.Reporter], int]:
    # A function of its own so each child binds its own share, not the loop's last.
    return lambda report: run_worker(cfg, report, use_uvloop, stdin_eof=False)


def preflight(cfg: Config) -> None:
    """One connection before the run, so an unreachable target is a clear error
    within ``--connect-timeout`` instead of a run of connect failures."""
    try:
        with socket.socket(cfg.family, socket.SOCK_STREAM) as sock:
            sock.settimeout(cfg.connect_timeout)
            sock.connect((cfg.address, cfg.port))
            banner = sock.recv(4096)
            with contextlib.suppress(OSError):
                sock.sendall(b"QUIT\r\n")
                sock.recv(4096)
    except TimeoutError:
        raise StartError(
            f"--target {cfg.target}: no answer within {cfg.connect_timeout:g} s (--connect-timeout)"
        ) from None
    except OSError as error:
        raise StartError(f"--target {cfg.target}: cannot connect: {error.strerror}") from None
    if not banner.startswith(b"220"):
        text = banner.decode("latin-1").strip()[:100] or "connection closed"
        raise StartError(f"--target {cfg.target}: not accepting mail: {text}")


def build_parser() -> argparse.ArgumentParser:
    """Flags of the generator; the CLI passes validated values straight through."""
    p = argparse.ArgumentParser(
        prog="smtp_gen",
        description="SMTP traffic generator: send test mail to a sink; JSON lines on stdout.",
    )
    p.add_argument("--target", required=True, help="HOST:PORT of the SMTP sink")
    p.add_argument("--concurrency", type=int, default=50, help="connections (default 50)")
    p.add_argument("--messages", type=int, help="messages to send (no deadline unless --duration)")
    p.add_argument("--duration", type=float, help="seconds to send for (default 60 without --messages)")
    p.add_argument("--body-size", default="1KB", help="message size: 1000, 1KB, 100KB, 1MiB")
    p.add_argument("--rate", type=float, help="at most this many messages per second in total")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the work")
    p.add_argument(
        "--worker-base",
        type=int,
        default=0,
        help="the first worker's index in stamp ids (generators on several hosts: distinct ranges)",
    )
    p.add_argument("--no-pipelining", action="store_true", help="never pipeline commands")
    p.add_argument(
        "--messages-per-connection",
        type=int,
        default=1000,
        help="reconnect after this many messages (default %(default)s, 0: never)",
    )
    p.add_argument("--connect-timeout", type=float, default=5.0, help="seconds (default 5)")
    p.add_argument(
        "--reply-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for any one reply before giving up the session (default 30)",
    )
    p.add_argument("--connect-retries", type=int, default=5, help="per slot, in a row")
    p.add_argument(
        "--stamp",
        metavar="TAG",
        help="put 'X-Kumotui-Stamp: TAG ID SEND_NS' first in each message (8 characters a-z0-9), "
        "so a sink behind an MTA can tell which message arrived and when it was sent",
    )
    p.add_argument("--sender", default="bench@kumotui.example", help="envelope sender")
    p.add_argument("--recipient", help="one fixed recipient instead of userN@DOMAIN")
    p.add_argument(
        "--domain",
        action="append",
        metavar="NAME[:WEIGHT]",
        help="recipient domain, repeatable with relative weights (gmail.com:67.4); default example.com",
    )
    p.add_argument(
        "--mix",
        choices=sorted(MIXES),
        help="a preset of weighted domains: providers = KumoMTA's guide's mailbox-provider mix (gmail-heavy)",
    )
    p.add_argument(
        "--domain-suffix",
        default=DEFAULT_SUFFIX,
        help="appended to every domain that is not reserved itself (default %(default)s; '' needs "
        "--allow-real-domains)",
    )
    p.add_argument(
        "--allow-real-domains",
        action="store_true",
        help="allow recipient domains that are not reserved (only with outbound mail redirected to a sink)",
    )
    p.add_argument("--header", action="append", metavar="'NAME: VALUE'", help="a header in every message (repeatable)")
    p.add_argument("--hostname", default="kumotui-gen.invalid", help="name sent in EHLO")
    p.add_argument(
        "--allow-remote-target",
        action="store_true",
        help="allow a target outside loopback and private ranges",
    )
    common.add_common_flags(p)
    return p


def config_from(args: argparse.Namespace) -> Config:
    """Validate flags into a Config; ``StartError`` names the bad flag."""
    host, port = parse_target(args.target)
    body_size = parse_size(args.body_size)
    checks = [
        (body_size >= 2, "--body-size must be at least 2 bytes (a message is CRLF-ended lines)"),
        (args.concurrency >= 1, "--concurrency must be at least 1"),
        (args.messages is None or args.messages >= 1, "--messages must be at least 1"),
        (
            args.duration is None or (0 < args.duration < math.inf),
            "--duration must be a positive number of seconds",
        ),
        (args.rate is None or (0 < args.rate < math.inf), "--rate must be positive"),
        (args.workers >= 1, "--workers must be at least 1"),
        (
            args.worker_base >= 0 and args.worker_base + args.workers <= common.PROBE_WORKER,
            f"--worker-base must be at least 0, and --worker-base + --workers at most {common.PROBE_WORKER}",
        ),
        (args.messages_per_connection >= 0, "--messages-per-connection must be >= 0"),
        (args.connect_timeout > 0, "--connect-timeout must be positive"),
        (0 < args.reply_timeout < math.inf, "--reply-timeout must be a positive number of seconds"),
        (args.connect_retries >= 0, "--connect-retries must be >= 0"),
        (args.interval > 0, "--interval must be positive"),
        (
            not args.stamp or body_size >= common.STAMP_LENGTH + 2,
            f"--body-size must be at least {common.STAMP_LENGTH + 2} bytes with --stamp (the stamp is part of it)",
        ),
    ]
    common.require(checks)
    if args.stamp:
        common.check_stamp_tag(args.stamp)
    recipient = args.recipient
    domains, headers = _destinations(args), tuple(parse_header(h) for h in args.header or ())
    domain = domains[0][0]
    if recipient:
        if "@" not in recipient or any(c in recipient for c in "<> \r\n"):
            raise StartError(f"--recipient {recipient!r}: expected local@domain")
        domain = recipient.rpartition("@")[2]
        if not args.allow_real_domains:
            check_recipient_domain(domain)
    _check_room(body_size - (common.STAMP_LENGTH if args.stamp else 0), args.sender, domain, headers)
    family, address = resolve_target(host, port, args.allow_remote_target)
    duration = args.duration
    if duration is None and args.messages is None:
        duration = 60.0
    return Config(
        family=family,
        address=address,
        port=port,
        target=args.target,
        concurrency=args.concurrency,
        messages=args.messages,
        duration=duration,
        rate=args.rate,
        body_size=body_size,
        pipelining=not args.no_pipelining,
        per_connection=args.messages_per_connection,
        connect_timeout=args.connect_timeout,
        reply_timeout=args.reply_timeout,
        connect_retries=args.connect_retries,
        sender=args.sender,
        recipient=recipient,
        domain=domain,
        hostname=args.hostname,
        interval=args.interval,
        stamp=args.stamp,
        worker=args.worker_base,
        domains=tuple(domains),
        headers=headers,
    )


def _destinations(args: argparse.Namespace) -> list[tuple[str, float]]:
    """The weighted, suffixed recipient domains of ``--domain`` and ``--mix`` (example.com without either)."""
    given = [parse_domain(text) for text in args.domain or ()]
    if args.mix:
        given += list(MIXES[args.mix])
    return destination_domains(given or [("example.com", 1.0)], args.domain_suffix, args.allow_real_domains)


def _check_room(size: int, sender: str, domain: str, headers: tuple[str, ...]) -> None:
    """Refuse a ``--body-size`` too small to carry every ``--header`` (they are never dropped silently)."""
    if headers and not all(h.encode() in build_message(size, sender, domain, headers) for h in headers):
        raise StartError(f"--body-size {size} bytes has no room for the --header lines; give a larger size")


def main(argv: list[str] | None = None) -> int:
    """Run the generator; 0 once it finished or was stopped, 2 on bad input."""
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from(args)
        common.raise_nofile_limit()
        preflight(cfg)
        workers = min(args.workers, cfg.concurrency)
        if workers == 1:
            return run_single(cfg, not args.no_uvloop, args.exit_on_stdin_eof)
        return run_pool(cfg, workers, not args.no_uvloop, args.exit_on_stdin_eof)
    except StartError as error:
        common.emit({"type": "error", "error": str(error)})
        print(f"smtp_gen: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
