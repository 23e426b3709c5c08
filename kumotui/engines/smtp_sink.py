#!/usr/bin/env python3
"""A fast, correct SMTP sink that accepts mail and throws it away.

Why it exists: a benchmark needs a receiver that is never the bottleneck and
that any SMTP client can talk to. This one speaks the server side of ESMTP
(PIPELINING, 8BITMIME, SIZE, ENHANCEDSTATUSCODES) on an ``asyncio.Protocol``,
on uvloop when it is installed, and never buffers a message: the end of data
is found with ``bytes.find`` on each read plus a four-byte tail carried across
reads, so memory stays bounded whatever a client sends.

Standalone on purpose: it imports only the standard library (uvloop is
optional) and ``smtp_common``, the process plumbing it shares with the
generator (forked workers, JSON lines, stop requests), so the same file runs
as ``python3 -m kumotui.engines.smtp_sink`` or, with ``smtp_common.py`` beside
it, as ``python3 smtp_sink.py`` on a host that has nothing else.

Output: JSON lines on stdout. ``{"type": "ready", ...}`` once listening,
``{"type": "progress", ...}`` every ``--interval`` seconds, and a final
``{"type": "summary", ...}`` on SIGTERM, SIGINT or (with
``--exit-on-stdin-eof``) when stdin closes; then exit 0. A failure to start
prints ``{"type": "error", "error": "..."}`` and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import http.server
import json
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

if __package__:  # python -m kumotui.engines.smtp_sink, or imported by kumotui
    from . import smtp_common as common
    from . import smtp_responses as responses
else:  # a plain script, as shipped to a remote host, with smtp_common.py beside it
    # Python puts a script's directory first on sys.path, but not under -I, -P
    # or PYTHONSAFEPATH; putting it there finds the sibling in every mode.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import smtp_common as common  # type: ignore[import-not-found, no-redef]  # the same file as above
    import smtp_responses as responses  # type: ignore[import-not-found, no-redef]  # likewise

DEFAULT_LISTEN = "127.0.0.1:2026"
"""KumoMTA's sink policy listens on 2026; matching it lets either sink stand in."""

END_OF_DATA = b"\r\n.\r\n"
CR, SP, GT, TWO, FOUR, FIVE = b"\r"[0], b" "[0], b">"[0], b"2"[0], b"4"[0], b"5"[0]
"""Byte values, compared with ``data[i]`` (an int) to avoid a slice per test."""
MAX_ERRORS = 20
"""Bad commands tolerated per session before 421, as Postfix's hard error limit."""
MAX_RECIPIENTS = 1000
"""Recipients per transaction; counted, never stored, but a bound all the same."""
COUNTER_FIELDS = (
    "received",
    "rejected_mail",
    "rejected_rcpt",
    "rejected_data",
    "aborted",
    "timeouts",
    "recipients",
    "connections",
    "connections_total",
    "bytes",
    "refusals",
)
"""What the sink counts, each in one unit:

- ``received``: messages accepted at the end of data;
- ``rejected_mail``: messages refused at MAIL (the client's whole transaction);
- ``rejected_rcpt``: recipients refused at RCPT (a message may still go to the others);
- ``rejected_data``: messages refused at DATA (no valid recipient) or at the end of data;
- ``aborted``: transactions the client cut short (closed the connection mid-way);
- ``timeouts``: sessions closed for making no progress within ``--idle-timeout``;
- ``refusals``: every refusal by stage and code (``"data 451"``), for the reply classes.
"""
DATA_CHUNK = 8192
"""Message bytes that count as progress for the idle deadline: a client must move at
least this much content (or finish a command) within ``--idle-timeout``, so one byte
a second cannot hold a session open."""
MAX_SIZE_DIGITS = 20
"""Digits a ``SIZE=`` value may have (2^64 has 20): longer is a syntax error, not a big number."""


StartError = common.StartError
"""A reason the sink cannot start (port in use, bad address); the worker pool raises it too."""


@dataclass(frozen=True)
class Config:
    """Everything a worker needs, fixed before any fork."""

    host: str
    port: int
    hostname: str
    max_size: int
    max_line: int
    idle_timeout: float
    tempfail_percent: float
    permfail_percent: float
    max_per_connection: int
    interval: float
    stamps: str | None = None
    """``--stamps TAG``: read each accepted message's ``X-Kumotui-Stamp`` of this run (see :class:`Stamps`)."""
    responses: str | None = None
    """``--responses FILE``: answer as KumoMTA's Smart Sink does, per recipient domain (:class:`SmartProtocol`)."""
    seed: int | None = None
    """``--seed N``: the draws' random seed (worker ``i`` of a pool uses ``N + i``), for repeatable runs."""


class Stamps:
    """What the stamps of one run's accepted messages say: which ids arrived, and how late.

    ``stamped`` counts every stamped message accepted (a duplicate too);
    ``ranges_delivered`` is the set of ids (so the core finds lost ones as
    accepted minus delivered, and duplicates as stamped minus the set's
    size); the histogram is delivery latency, this host's wall clock at the
    end of data minus the sender's at the start of the message.
    """

    __slots__ = (
        "bounced",
        "bounced_ids",
        "deferrals",
        "deferred_ids",
        "delivery_max_us",
        "delivery_sum_us",
        "hist",
        "ids",
        "stamped",
        "tag",
        "unstamped",
    )

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.ids = common.IdRanges()
        self.stamped = 0
        self.unstamped = 0
        self.hist = [0] * common.BUCKETS
        self.delivery_max_us = 0
        self.delivery_sum_us = 0
        self.deferrals = 0
        """4xx answers to stamped messages (``--responses``): a message deferred twice counts twice."""
        self.deferred_ids = common.IdRanges()
        self.bounced = 0
        """Stamped messages answered 5xx (``--responses``), each once: the MTA gives them up."""
        self.bounced_ids = common.IdRanges()

    def refused(self, head: bytes, code: int) -> None:
        """A stamped message the Smart Sink answered ``code`` (4xx or 5xx): remember its id by outcome.

        So the core can tell how many deferred messages were later delivered
        (deferred ids that are also delivered ones) and does not count a
        bounced message as lost.
        """
        stamp = common.read_stamp(head)
        if stamp is None or stamp[0] != self.tag or stamp[1] >> common.WORKER_SHIFT == common.PROBE_WORKER:
            return
        if code < 500:
            self.deferrals += 1
            self.deferred_ids.add(stamp[1])
        elif self.bounced_ids.add(stamp[1]):
            self.bounced += 1

    def saw(self, head: bytes) -> None:
        """One accepted message whose first bytes are ``head``."""
        stamp = common.read_stamp(head)
        if stamp is None or stamp[0] != self.tag:
            self.unstamped += 1
            return
        _, ident, sent_ns = stamp
        self.ids.add(ident)
        if ident >> common.WORKER_SHIFT == common.PROBE_WORKER:
            return
        self.stamped += 1
        us = max(0, (time.time_ns() - sent_ns) // 1000)
        self.hist[common.bucket_of(us)] += 1
        self.delivery_sum_us += us
        if us > self.delivery_max_us:
            self.delivery_max_us = us

    def as_dict(self, final: bool = False) -> dict[str, Any]:
        """JSON-ready; the parent of a worker pool merges these (ranges by union, the rest by sum).

        The deferred and bounced ids are scattered (a random share of every
        id), so they are many ranges: they go in the final line only, the
        progress lines carry their counts.
        """
        data = {
            "stamped": self.stamped,
            "unstamped": self.unstamped,
            "ranges_delivered": self.ids.as_list(),
            "delivery_hist": list(self.hist),
            "delivery_sum_us": self.delivery_sum_us,
            "max_delivery_us": self.delivery_max_us,
        }
        if self.deferrals or self.bounced:
            data["deferrals_stamped"] = self.deferrals
            data["bounced_stamped"] = self.bounced
            if final:
                data["ranges_deferred"] = self.deferred_ids.as_list()
                data["ranges_bounced"] = self.bounced_ids.as_list()
        return data


def stamp_figures(state: dict[str, Any]) -> dict[str, Any]:
    """The stamps' part of a progress or summary line: counts, the id set, delivery latency in ms."""
    hist = state.get("delivery_hist") or [0] * common.BUCKETS
    figures = {
        "stamped": int(state.get("stamped", 0)),
        "unstamped": int(state.get("unstamped", 0)),
        "ranges_delivered": state.get("ranges_delivered") or [],
        "delivery_ms": common.histogram_summary(
            hist, float(state.get("max_delivery_us", 0)), float(state.get("delivery_sum_us", 0))
        ),
    }
    for key in ("deferrals_stamped", "bounced_stamped", "ranges_deferred", "ranges_bounced"):
        if key in state:
            figures[key] = state[key]
    return figures


OTHER_DOMAINS = "(other)"
"""Where recipients of domains past :data:`MAX_DOMAINS` are counted."""
MAX_DOMAINS = 1000
"""Recipient domains counted one by one: a client inventing domains cannot grow the sink's memory."""


class DomainCounts:
    """Per recipient domain, with a responses file: accepted, deferred (4xx), bounced (5xx), and by code.

    Keyed by the responses file's name for the domain when it has one
    (``gmail.com`` for ``gmail.com.kumotui.test``), else by the recipient's
    own domain, so the counts line up with the file's rules.
    """

    __slots__ = ("codes", "outcomes")

    def __init__(self) -> None:
        self.outcomes: dict[str, list[int]] = {}
        self.codes: dict[str, int] = {}

    def count(self, domain: str, reply: bytes) -> None:
        """One answer to a message (or a refused recipient) for ``domain``."""
        row = self.outcomes.get(domain)
        if row is None:
            if len(self.outcomes) >= MAX_DOMAINS:
                domain = OTHER_DOMAINS
            row = self.outcomes.setdefault(domain, [0, 0, 0])
        first = reply[0]
        row[0 if first == TWO else 1 if first == FOUR else 2] += 1
        if first != TWO:
            key = f"{domain} {reply[:3].decode()}"
            self.codes[key] = self.codes.get(key, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        """``domains`` (name to accepted/deferred/bounced) and ``domain_replies`` (``"NAME CODE"`` to count)."""
        return {
            "domains": {
                name: {"accepted": a, "deferred": d, "bounced": b} for name, (a, d, b) in self.outcomes.items()
            },
            "domain_replies": dict(self.codes),
        }


class Stats:
    """Plain counters; attribute increments are the cheapest thing Python does."""

    __slots__ = COUNTER_FIELDS

    def __init__(self) -> None:
        self.received = 0
        self.rejected_mail = 0
        self.rejected_rcpt = 0
        self.rejected_data = 0
        self.aborted = 0
        self.timeouts = 0
        self.recipients = 0
        self.connections = 0
        self.connections_total = 0
        self.bytes = 0
        self.refusals: dict[str, int] = {}

    def as_dict(self) -> dict[str, Any]:
        """The counters as JSON-ready data (the refusals dict copied)."""
        data = {name: getattr(self, name) for name in COUNTER_FIELDS}
        data["refusals"] = dict(self.refusals)
        return data

    def refused(self, stage: str, reply: bytes) -> bytes:
        """Count one refusal at ``stage`` (``mail``, ``rcpt``, ``data``) by its code; return the reply."""
        if stage == "mail":
            self.rejected_mail += 1
        elif stage == "rcpt":
            self.rejected_rcpt += 1
        else:
            self.rejected_data += 1
        key = f"{stage} {reply[:3].decode()}"
        self.refusals[key] = self.refusals.get(key, 0) + 1
        return reply


def _reply(text: str) -> bytes:
    return text.encode("ascii") + b"\r\n"


R_NOOP = _reply("250 2.0.0 OK")
R_RSET = _reply("250 2.0.0 reset")
R_MAIL_OK = _reply("250 2.1.0 sender OK")
R_RCPT_OK = _reply("250 2.1.5 recipient OK")
R_DATA_GO = _reply("354 end data with <CR><LF>.<CR><LF>")
R_QUEUED = _reply("250 2.0.0 OK queued by kumotui sink")
R_BYE = _reply("221 2.0.0 bye")
R_VRFY = _reply("252 2.1.5 cannot verify, will accept")
R_HELP = _reply("214 2.0.0 commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP")
R_UNKNOWN = _reply("500 5.5.2 command not recognized")
R_NOT_IMPL = _reply("502 5.5.1 command not implemented")
R_TOO_LONG = _reply("500 5.5.2 line too long")
R_BAD_SEQ_HELO = _reply("503 5.5.1 send EHLO or HELO first")
R_BAD_SEQ_NESTED = _reply("503 5.5.1 sender already given")
R_BAD_SEQ_MAIL = _reply("503 5.5.1 need MAIL first")
R_NO_RCPTS = _reply("554 5.5.1 no valid recipients")
R_SYNTAX_HELO = _reply("501 5.5.4 domain name required")
R_SYNTAX_MAIL = _reply("501 5.5.4 syntax: MAIL FROM:<address>")
R_SYNTAX_RCPT = _reply("501 5.5.4 syntax: RCPT TO:<address>")
R_SYNTAX_DATA = _reply("501 5.5.4 syntax: DATA takes no argument")
R_BAD_PARAM = _reply("555 5.5.4 unsupported parameter")
R_TOO_BIG_MAIL = _reply("552 5.3.4 message size exceeds fixed limit")
R_TOO_BIG_DATA = _reply("552 5.3.4 message too big")
R_TOO_BIG_CLOSE = _reply("552 5.3.4 message too big, closing")
R_TOO_MANY_RCPTS = _reply("452 4.5.3 too many recipients")
R_TEMPFAIL_RCPT = _reply("451 4.7.1 tempfail requested by recipient")
R_PERMFAIL_RCPT = _reply("550 5.1.1 permfail requested by recipient")
R_DEFER_450_RCPT = _reply("450 4.2.0 450 requested by recipient (450- local part)")
R_TEMPFAIL_DATA = _reply("451 4.3.0 random tempfail (--tempfail-percent)")
R_PERMFAIL_DATA = _reply("554 5.6.0 random permfail (--permfail-percent)")
R_TOO_MANY_ERRORS = _reply("421 4.7.0 too many errors, closing")
R_IDLE = _reply("421 4.4.2 idle timeout, closing")
R_CONN_LIMIT = _reply("421 4.7.0 message limit for this connection reached, closing")

NOT_IMPLEMENTED = frozenset({b"STARTTLS", b"AUTH", b"EXPN", b"BDAT", b"TURN", b"ETRN", b"ATRN"})


class SinkProtocol(asyncio.Protocol):
    """One SMTP session: a state machine fed by ``data_received``.

    Replies to everything in one read go out in one write, which is what
    makes PIPELINING cheap for both sides. A client that does not pipeline
    (Postfix's smtp-source) costs one read and one write per command, so the
    per-read work is kept to a few C-level calls: the common shapes (one
    whole command line; the rest of a message ending in its terminator; a
    canonical ``MAIL FROM:<path>`` or ``RCPT TO:<path>``) take short paths,
    and everything else goes through the general loop and parsers.
    """

    __slots__ = (
        "aborting",
        "buf",
        "data_bytes",
        "discarding",
        "dots",
        "errors",
        "failing",
        "giving_up",
        "greeted",
        "head",
        "idle_since",
        "in_data",
        "in_mail",
        "max_line",
        "max_per_connection",
        "max_size",
        "messages",
        "rcpts",
        "seen",
        "server",
        "stats",
        "tail",
        "transport",
    )

    def __init__(self, server: SinkServer) -> None:
        cfg = server.cfg
        self.server = server
        self.stats = server.stats
        # Config fields read per command, copied so each read is one attribute lookup.
        self.max_line = cfg.max_line
        self.max_size = cfg.max_size
        self.max_per_connection = cfg.max_per_connection
        self.failing = bool(cfg.tempfail_percent or cfg.permfail_percent)
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.tail = b""
        self.in_data = False
        self.in_mail = False
        self.greeted = False
        self.discarding = False
        self.aborting = False
        self.rcpts = 0
        self.data_bytes = 0
        self.dots = 0
        self.giving_up = False
        self.errors = 0
        self.messages = 0
        self.seen = True
        self.idle_since = 0.0
        self.head: bytes | None = None
        """The first bytes of the message in progress, while stamps are read (else None)."""

    # -- transport callbacks -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count the session and send the banner.

        Both uvloop and asyncio set TCP_NODELAY on the transports they create,
        so a reply leaves at once, which a client that waits for each reply needs.
        """
        # uvloop's transports do not subclass asyncio.Transport; they quack alike.
        self.transport = cast(asyncio.Transport, transport)
        self.stats.connections += 1
        self.stats.connections_total += 1
        self.server.sessions.add(self)
        self.transport.write(self.server.banner)

    def connection_lost(self, _exc: Exception | None) -> None:
        """Forget the session; a transaction cut short counts as aborted."""
        self.stats.connections -= 1
        if self.in_mail:
            self.stats.aborted += 1
        self.server.sessions.discard(self)
        self.transport = None

    def pause_writing(self) -> None:
        """A client that does not read its replies stops being read from.

        Without this, a client pipelining commands it never reads answers to
        would grow our write buffer without bound.
        """
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        """The client caught up: read again."""
        if self.transport is not None and not self.aborting:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        """Feed bytes through the command and data states; one write of replies.

        The read is scanned where it lies (``bytes.find`` from an offset, no
        copy), and only an unfinished command line (``buf``, at most
        ``max_line`` bytes) or the last four bytes of message content
        (``tail``) are kept across reads.
        """
        if self.aborting:
            return
        size = len(data)
        self.stats.bytes += size
        transport = self.transport
        if transport is None:
            return
        if self.in_data:
            pos = self._scan_data(data, 0)
            if pos < 0:
                if self.giving_up:
                    transport.write(R_TOO_BIG_CLOSE)
                    transport.close()
                return
            reply = self._end_of_data()
            if pos == size:
                transport.write(reply)
                return
            out = [reply]
        else:
            if not self.buf and not self.discarding:
                nl = data.find(b"\n")
                if nl == size - 1 and nl <= self.max_line:
                    reply = self._command(data[: nl - 1] if nl and data[nl - 1] == CR else data[:nl])
                    transport.write(reply)
                    if self.aborting:
                        transport.close()
                    return
            out = []
            pos = 0
        self._feed(data, pos, out)
        if out:
            transport.write(b"".join(out))
        if self.aborting:
            transport.close()

    def _feed(self, data: bytes, pos: int, out: list[bytes]) -> None:
        """The general loop: any mix of commands, data and partial lines."""
        end = len(data)
        while pos < end and not self.aborting:
            if self.in_data:
                found = self._scan_data(data, pos)
                if found < 0:
                    if self.giving_up:
                        out.append(R_TOO_BIG_CLOSE)  # after every reply already due, in order
                    return
                out.append(self._end_of_data())
                pos = found
                continue
            if self.buf:
                data = self.buf + data[pos:]
                self.buf = b""
                pos, end = 0, len(data)
            pos = self._commands(data, pos, out)

    # -- DATA ----------------------------------------------------------------

    def _scan_data(self, data: bytes, pos: int) -> int:
        """Look for CRLF.CRLF from ``pos``; return the index just past it, or -1.

        The last four bytes of the previous read are kept in ``tail`` so a
        terminator split across reads is still found; nothing else is kept.
        Such a terminator can only end in this read if the read starts with
        one of its later bytes (CR, LF or dot), so the join of ``tail`` and
        the read's first bytes is skipped for any other first byte. Stuffed
        dots (a line starting ``..``) are counted on the way, so the message's
        size is known as RFC 1870 defines it.
        """
        head = self.head
        if head is not None and len(head) < common.STAMP_SCAN:
            self.head = head + data[pos : pos + common.STAMP_SCAN - len(head)]
        tail = self.tail
        if tail and data[pos] in b"\r\n.":
            joined = tail + data[pos : pos + 4]
            i = joined.find(END_OF_DATA)
            if i >= 0:
                found = pos + i + 5 - len(tail)
                self.dots += joined.count(b"\r\n..", 0, i + 2)
                self._data_moved(found - pos)
                self.in_data = False
                self.tail = b""
                return found
            self.dots += (tail[-3:] + data[pos : pos + 3]).count(b"\r\n..")
        i = data.find(END_OF_DATA, pos)
        if i < 0:
            size = len(data)
            self.dots += data.count(b"\r\n..", pos)
            self._data_moved(size - pos)
            self.tail = data[-4:] if size - pos >= 4 else (tail + data[pos:])[-4:]
            if self.data_bytes > 2 * self.max_size + 65536:
                self._give_up_on_data()
            return -1
        found = i + 5
        self.dots += data.count(b"\r\n..", pos, i + 2)
        self._data_moved(found - pos)
        self.in_data = False
        self.tail = b""
        return found

    def _data_moved(self, count: int) -> None:
        """Add content bytes; crossing a :data:`DATA_CHUNK` counts as progress for the idle deadline."""
        before = self.data_bytes
        self.data_bytes = before + count
        if self.data_bytes // DATA_CHUNK != before // DATA_CHUNK:
            self.seen = True

    def message_size(self) -> int:
        """The message's size as RFC 1870 counts it: without the final ``.`` line and stuffed dots."""
        return self.data_bytes - 3 - self.dots

    def _give_up_on_data(self) -> None:
        """A message twice over the limit with no end in sight: stop reading it.

        RFC 5321 has the server read to the end before its 552, but a client
        that never ends a message would hold the session (and a core) forever.
        The caller sends the 552 after every reply already due, then closes.
        """
        self.stats.refused("data", R_TOO_BIG_CLOSE)
        self.in_mail = False
        self.in_data = False
        self.aborting = True
        self.giving_up = True

    def _end_of_data(self) -> bytes:
        self.in_mail = False
        self.rcpts = 0
        self.seen = True
        if self.message_size() > self.max_size:
            return self.stats.refused("data", R_TOO_BIG_DATA)
        if self.failing:
            reply = self._random_failure()
            if reply is not None:
                return reply
        self.stats.received += 1
        self.messages += 1
        stamps = self.server.stamps
        if stamps is not None and self.head is not None:
            stamps.saw(self.head)
        return R_QUEUED

    def _random_failure(self) -> bytes | None:
        """``--tempfail-percent`` / ``--permfail-percent``: a 4xx or 5xx by chance, or None."""
        cfg = self.server.cfg
        roll = self.server.rng.random() * 100.0
        if roll < cfg.tempfail_percent:
            return self.stats.refused("data", R_TEMPFAIL_DATA)
        if roll < cfg.tempfail_percent + cfg.permfail_percent:
            return self.stats.refused("data", R_PERMFAIL_DATA)
        return None

    # -- commands ------------------------------------------------------------

    def _commands(self, data: bytes, pos: int, out: list[bytes]) -> int:
        """Answer every complete command line from ``pos``.

        Returns the position where DATA content starts, or ``len(data)``
        once everything was consumed or kept (at most ``max_line`` bytes).
        """
        max_line = self.max_line
        size = len(data)
        while pos < size:
            nl = data.find(b"\n", pos)
            if self.discarding:
                if nl < 0:
                    return size
                self.discarding = False
                pos = nl + 1
                continue
            if nl < 0:
                if size - pos > max_line:
                    self._error(out, R_TOO_LONG)
                    self.discarding = True
                else:
                    self.buf = data[pos:]
                return size
            if nl - pos > max_line:
                self._error(out, R_TOO_LONG)
                pos = nl + 1
                if self.aborting:
                    return size
                continue
            line = data[pos : nl - 1 if nl > pos and data[nl - 1] == CR else nl]
            pos = nl + 1
            out.append(self._command(line))
            if self.in_data or self.aborting:
                return pos
        return pos

    def _error(self, out: list[bytes], reply: bytes) -> None:
        self.errors += 1
        if self.errors >= MAX_ERRORS:
            out.append(R_TOO_MANY_ERRORS)
            self.aborting = True
        else:
            out.append(reply)

    def _command(self, line: bytes) -> bytes:
        """One command line (without its line end) to its reply.

        Dispatch is one dict lookup on the first four bytes, which holds
        every verb in upper and lower case; any other spelling or a longer
        verb goes the slow way.
        """
        self.seen = True  # a whole command: progress for the idle deadline
        handler = COMMANDS.get(line[:4])
        if handler is not None and (len(line) == 4 or line[4] == SP):
            return handler(self, line)
        return self._other_command(line)

    def _other_command(self, line: bytes) -> bytes:
        """Mixed-case verbs, verbs we do not implement, and garbage."""
        sp = line.find(b" ")
        verb = (line if sp < 0 else line[:sp]).upper()
        handler = COMMANDS.get(verb)
        if handler is not None:
            return handler(self, line)
        return self._failed(R_NOT_IMPL if verb in NOT_IMPLEMENTED else R_UNKNOWN)

    def _failed(self, reply: bytes) -> bytes:
        """Count a client error; past the limit the session is closed."""
        self.errors += 1
        if self.errors >= MAX_ERRORS:
            self.aborting = True
            return reply + R_TOO_MANY_ERRORS
        return reply

    # Each handler gets the whole line; a verb is four bytes, so its argument
    # (if any) starts at offset 5.

    def _helo(self, line: bytes) -> bytes:
        if not self._hello(line):
            return self._failed(R_SYNTAX_HELO)
        return self.server.helo_reply

    def _ehlo(self, line: bytes) -> bytes:
        if not self._hello(line):
            return self._failed(R_SYNTAX_HELO)
        return self.server.ehlo_reply

    def _hello(self, line: bytes) -> bool:
        """Start over after HELO or EHLO; False when the domain is missing."""
        if not line[5:].strip():
            return False
        self.greeted = True
        self.in_mail = False
        self.rcpts = 0
        return True

    def _mail(self, line: bytes) -> bytes:
        reply = self._mail_reply(line)
        return reply if reply[0] == TWO else self.stats.refused("mail", reply)

    def _mail_reply(self, line: bytes) -> bytes:
        if not self.greeted:
            return self._failed(R_BAD_SEQ_HELO)
        if self.in_mail:
            return self._failed(R_BAD_SEQ_NESTED)
        # Nearly every client sends exactly "MAIL FROM:<path>": a single '<'
        # and the first '>' last means no parameters to look at.
        if not (line.startswith(b"MAIL FROM:<") and line.find(b">") == len(line) - 1 and line.find(b"<", 11) < 0):
            refused = self._mail_params(line[5:].strip())
            if refused is not None:
                return refused
        if self.max_per_connection and self.messages >= self.max_per_connection:
            self.aborting = True
            return R_CONN_LIMIT
        self.in_mail = True
        self.rcpts = 0
        return R_MAIL_OK

    def _mail_params(self, arg: bytes) -> bytes | None:
        """Check ``FROM:<path> PARAM=V ...``; the refusal, or None when acceptable."""
        if arg[:5].upper() != b"FROM:":
            return self._failed(R_SYNTAX_MAIL)
        params = _path_params(arg[5:])
        if params is None:
            return self._failed(R_SYNTAX_MAIL)
        for param in params:
            key, _, value = param.partition(b"=")
            key = key.upper()
            if key == b"SIZE":
                if not value.isdigit() or len(value) > MAX_SIZE_DIGITS:
                    return self._failed(R_SYNTAX_MAIL)
                if int(value) > self.max_size:
                    return R_TOO_BIG_MAIL
            elif key == b"BODY":
                if value.upper() not in (b"7BIT", b"8BITMIME"):
                    return self._failed(R_BAD_PARAM)
            else:
                return self._failed(R_BAD_PARAM)
        return None

    def _rcpt(self, line: bytes) -> bytes:
        # Outside a transaction (a pipelined RCPT after a refused MAIL) the 503 refuses no recipient.
        in_mail = self.in_mail
        reply = self._rcpt_reply(line)
        return reply if reply[0] == TWO or not in_mail else self.stats.refused("rcpt", reply)

    def _rcpt_reply(self, line: bytes) -> bytes:
        if not self.in_mail:
            return self._failed(R_BAD_SEQ_MAIL)
        # The common "RCPT TO:<path>": one '<', the first '>' last, a
        # non-empty path, and no "fail" anywhere (which might ask for a refusal).
        if not (
            line.startswith(b"RCPT TO:<")
            and line.find(b">") == len(line) - 1
            and line[9] != GT
            and line.find(b"<", 9) < 0
            and b"fail" not in line.lower()
        ):
            return self._rcpt_general(line[5:].strip())
        if self.rcpts >= MAX_RECIPIENTS:
            return R_TOO_MANY_RCPTS
        self.rcpts += 1
        self.stats.recipients += 1
        return R_RCPT_OK

    def _rcpt_general(self, arg: bytes) -> bytes:
        """Any other RCPT: syntax, parameters, and refusals asked for by the address."""
        if arg[:3].upper() != b"TO:":
            return self._failed(R_SYNTAX_RCPT)
        rest = arg[3:].strip()
        params = _path_params(rest)
        if params is None or rest[:2] == b"<>":
            return self._failed(R_SYNTAX_RCPT)
        if params:
            return self._failed(R_BAD_PARAM)
        if self.rcpts >= MAX_RECIPIENTS:
            return R_TOO_MANY_RCPTS
        local = rest.lstrip(b"<").partition(b"@")[0].lower()
        if b"tempfail" in local:
            return R_TEMPFAIL_RCPT
        if b"permfail" in local:
            return R_PERMFAIL_RCPT
        self.rcpts += 1
        self.stats.recipients += 1
        return R_RCPT_OK

    def _data(self, line: bytes) -> bytes:
        # Outside a transaction (a pipelined DATA after a refused MAIL) the 503 refuses no message.
        in_mail = self.in_mail
        reply = self._data_reply(line)
        if (reply[0] != FIVE and reply[0] != FOUR) or not in_mail:
            return reply
        return self.stats.refused("data", reply)

    def _data_reply(self, line: bytes) -> bytes:
        if not self.in_mail:
            return self._failed(R_BAD_SEQ_MAIL)
        if len(line) > 4 and line[5:].strip():
            return self._failed(R_SYNTAX_DATA)
        if not self.rcpts:
            # RFC 2920: a pipelined DATA after refused recipients is refused
            # too, and the transaction is over.
            self.in_mail = False
            return R_NO_RCPTS
        self.in_data = True
        self.data_bytes = 0
        self.dots = 0
        self.tail = b"\r\n"  # the CRLF that ended the DATA line starts a line
        if self.server.stamps is not None:
            self.head = b""
        return R_DATA_GO

    def _rset(self, line: bytes) -> bytes:
        self.in_mail = False
        self.rcpts = 0
        return R_RSET

    def _quit(self, line: bytes) -> bytes:
        self.aborting = True
        return R_BYE

    def _noop(self, line: bytes) -> bytes:
        return R_NOOP

    def _vrfy(self, line: bytes) -> bytes:
        return R_VRFY

    def _help(self, line: bytes) -> bytes:
        return R_HELP


_HANDLERS: dict[bytes, Callable[[SinkProtocol, bytes], bytes]] = {
    b"MAIL": SinkProtocol._mail,
    b"RCPT": SinkProtocol._rcpt,
    b"DATA": SinkProtocol._data,
    b"RSET": SinkProtocol._rset,
    b"EHLO": SinkProtocol._ehlo,
    b"HELO": SinkProtocol._helo,
    b"NOOP": SinkProtocol._noop,
    b"QUIT": SinkProtocol._quit,
    b"VRFY": SinkProtocol._vrfy,
    b"HELP": SinkProtocol._help,
}
COMMANDS = {**_HANDLERS, **{verb.lower(): handler for verb, handler in _HANDLERS.items()}}
"""Verb, in upper and in lower case, to its handler: one dict lookup per command."""


class SmartProtocol(SinkProtocol):
    """A session of the Smart Sink (``--responses FILE``), as KumoMTA's ``smart-sink`` policy answers.

    On top of the plain sink: a recipient whose local part starts with
    ``450-`` is refused with 450 and one starting with ``250-`` is accepted
    without a draw (``tempfail`` / ``permfail`` anywhere in it already force a
    4xx / 5xx in every sink); at the end of data, the transaction's first
    recipient domain draws from its rule (:mod:`smtp_responses`) a bounce, a
    deferral or acceptance; every answer is counted per domain. A subclass,
    so a sink without a responses file runs exactly the code it ran before.
    """

    __slots__ = ("domain", "forced")

    def __init__(self, server: SinkServer) -> None:
        super().__init__(server)
        self.domain = b""
        """The recipient domain of the transaction's first accepted recipient (lower case)."""
        self.forced = False
        """That recipient's local part starts with ``250-``: accepted without a draw."""

    def _rcpt_reply(self, line: bytes) -> bytes:
        reply = super()._rcpt_reply(line)
        local, domain = _recipient(line)
        if reply is R_RCPT_OK and local.startswith(b"450-"):
            self.rcpts -= 1
            self.stats.recipients -= 1
            reply = R_DEFER_450_RCPT
        if reply is R_RCPT_OK:
            if self.rcpts == 1:
                self.domain = domain
                self.forced = local.startswith(b"250-")
        elif reply is R_TEMPFAIL_RCPT or reply is R_PERMFAIL_RCPT or reply is R_DEFER_450_RCPT:
            self.server.count_domain(domain, reply)
        return reply

    def _end_of_data(self) -> bytes:
        server = self.server
        smart = server.smart
        assert smart is not None
        reply = None
        if not self.forced and self.message_size() <= self.max_size:
            reply = smart.rule_for(self.domain).draw(server.rng)
        if reply is None:
            reply = super()._end_of_data()
        else:
            self.in_mail = False
            self.rcpts = 0
            self.seen = True
            self.stats.refused("data", reply)
            if reply.startswith(b"421"):
                self.aborting = True  # 421 means closing, to the sink as to the MTA reading it
            if server.stamps is not None and self.head is not None:
                server.stamps.refused(self.head, int(reply[:3]))
        server.count_domain(self.domain, reply)
        return reply


def _recipient(line: bytes) -> tuple[bytes, bytes]:
    """The local part and the domain, lower case, of a ``RCPT TO:<local@domain>`` line (empty when absent)."""
    arg = line[5:].strip()[3:].strip()
    path = arg[1 : arg.find(b">")] if arg.startswith(b"<") else arg.partition(b" ")[0]
    local, _, domain = path.rpartition(b"@")
    return local.lower(), domain.lower()


def _path_params(text: bytes) -> list[bytes] | None:
    """Split ``<path> PARAM=V ...``; None when the path is malformed.

    Accepts a missing space after the colon and, like Postfix by default, a
    path without angle brackets.
    """
    text = text.strip()
    if text.startswith(b"<"):
        close = text.find(b">")
        if close < 0:
            return None
        path, rest = text[1:close], text[close + 1 :]
        if b"<" in path or (rest and not rest.startswith(b" ")):
            return None
    else:
        path, _, rest = text.partition(b" ")
        if not path:
            return None
    return rest.split()


class SinkServer:
    """The listening socket, its sessions, and the idle sweeper of one process."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.stats = Stats()
        self.stamps = Stamps(cfg.stamps) if cfg.stamps else None
        self.rng = random.Random(cfg.seed)
        """Every draw of this process (``--seed``, else the system's entropy)."""
        self.smart = load_responses(cfg.responses) if cfg.responses else None
        self.domains = DomainCounts()
        self.sessions: set[SinkProtocol] = set()
        name = cfg.hostname
        self.banner = _reply(f"220 {name} ESMTP kumotui sink")
        self.helo_reply = _reply(f"250 {name}")
        self.ehlo_reply = b"".join(
            _reply(line)
            for line in (
                f"250-{name}",
                "250-PIPELINING",
                "250-8BITMIME",
                f"250-SIZE {cfg.max_size}",
                "250 ENHANCEDSTATUSCODES",
            )
        )

    def protocol(self) -> SinkProtocol:
        """A new session: the Smart Sink's with a responses file, else the plain (fastest) one."""
        return SmartProtocol(self) if self.smart is not None else SinkProtocol(self)

    def count_domain(self, domain: bytes, reply: bytes) -> None:
        """Count one answer under the domain's name in the responses file, or its own name."""
        assert self.smart is not None
        rule = self.smart.rule_for(domain)
        name = rule.name if rule is not self.smart.default else domain.decode("ascii", "replace") or "(none)"
        self.domains.count(name, reply)

    def counters(self, final: bool = False) -> dict[str, Any]:
        """Every counter of this process: the SMTP ones, the stamps' when read, the domains' when smart."""
        data = self.stats.as_dict()
        if self.stamps is not None:
            data.update(self.stamps.as_dict(final))
        if self.smart is not None:
            data.update(self.domains.as_dict())
        return data

    def sweep(self, now: float) -> None:
        """Close sessions idle for ``idle_timeout``.

        A flag set on each read and checked here costs far less than
        rearming a timer per read. A session that is still flushing at its
        next timeout (a client that never reads) is aborted outright.
        """
        timeout = self.cfg.idle_timeout
        for session in list(self.sessions):
            if session.seen:
                session.seen = False
                session.idle_since = now
                continue
            if now - session.idle_since < timeout:
                continue
            transport = session.transport
            if transport is None:
                continue
            if session.aborting or transport.get_write_buffer_size() > 0:
                transport.abort()
                continue
            self.stats.timeouts += 1
            session.aborting = True
            session.idle_since = now
            transport.write(R_IDLE)
            transport.close()


# -- listening and running ---------------------------------------------------


def bind_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A listening TCP socket; ``StartError`` with the reason when it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise StartError(f"cannot resolve listen address {host!r}: {error}") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        sock.listen(4096)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise StartError(f"{_fmt_addr(host, port)} is already in use") from None
        raise StartError(f"cannot listen on {_fmt_addr(host, port)}: {error.strerror}") from None
    sock.setblocking(False)
    return sock


def probe_port(host: str, port: int) -> int:
    """Reserve-check the port without SO_REUSEPORT; return the port to use.

    Worker sockets share the port with SO_REUSEPORT, which would also let
    them silently join another sink already listening there; a plain bind
    first makes "port in use" an error instead, and resolves port 0.
    """
    sock = bind_socket(host, port, reuse_port=False)
    try:
        return int(sock.getsockname()[1])
    finally:
        sock.close()


def _fmt_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` or ``[V6]:PORT`` (``:PORT`` for every interface) into a host and a port."""
    try:
        return common.split_host_port(f"0.0.0.0{text}" if text.startswith(":") else text, allow_zero=True)
    except ValueError as error:
        raise StartError(f"--listen {text!r}: {error}; expected ADDR:PORT, e.g. 127.0.0.1:2026") from None


Emit = Callable[[dict[str, Any]], None]
"""Where the sink's JSON lines go: stdout, and the metrics endpoint's latest copy with ``--metrics-listen``."""


class MetricsEndpoint:
    """The sink's counters over HTTP, so a run can count a sink it did not start (``bench --sink``).

    ``GET /metrics`` answers Prometheus text in kumod's own series names
    (``total_messages_received`` and ``connection_count`` of
    ``service="esmtp_listener"``), so one reader counts a kumod sink and this
    one; ``GET /metrics.json`` answers the latest JSON line whole. A daemon
    thread serves the latest line the sink printed (at most ``--interval``
    old): the sink's own loop never waits on a reader.
    """

    def __init__(self, text: str) -> None:
        """Listen at ``text`` (``ADDR:PORT``); ``StartError`` naming ``--metrics-listen`` if it cannot."""
        try:
            host, port = common.split_host_port(text, allow_zero=True)
        except ValueError as error:
            raise StartError(f"--metrics-listen {text!r}: {error}; expected ADDR:PORT, e.g. 127.0.0.1:8002") from None
        self._latest: dict[str, Any] = {"type": "starting"}
        handler = self._handler()
        server_class = type(
            "Server",
            (http.server.ThreadingHTTPServer,),
            {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET},
        )
        try:
            self.server = server_class((host, port), handler)
        except OSError as error:
            raise StartError(f"--metrics-listen {text}: cannot listen: {error.strerror or error}") from None
        self.address = _fmt_addr(host, int(self.server.server_address[1]))

    def _serve(self) -> None:
        # Started with the ready line, after a pool has forked its workers: no thread crosses a fork.
        threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True).start()

    def emitting(self, out: Emit) -> Emit:
        """``out``, which also keeps each line for readers (the ready line names this endpoint)."""

        def emit(line: dict[str, Any]) -> None:
            if line.get("type") == "ready":
                line = {**line, "metrics": self.address}
                self._serve()
            self._latest = line  # one reference swap: readers see a whole line, old or new
            out(line)

        return emit

    @property
    def latest(self) -> dict[str, Any]:
        """The last line the sink printed."""
        return self._latest

    def prometheus(self) -> str:
        """The latest counters as kumod names them."""
        line = self._latest
        service = 'service="esmtp_listener"'
        return (
            "# HELP total_messages_received messages accepted at the end of data (kumotui sink)\n"
            "# TYPE total_messages_received counter\n"
            f"total_messages_received{{{service}}} {int(line.get('received', 0))}\n"
            "# HELP connection_count open inbound sessions (kumotui sink)\n"
            "# TYPE connection_count gauge\n"
            f"connection_count{{{service}}} {int(line.get('connections', 0))}\n"
            "# TYPE kumotui_sink_info gauge\n"
            f'kumotui_sink_info{{state="{line.get("type", "")}"}} 1\n'
        )

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5.0  # a silent client does not hold a thread for ever

            def do_GET(self) -> None:  # http.server's name for it
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, endpoint.prometheus(), "text/plain; version=0.0.4")
                elif path == "/metrics.json":
                    self._answer(200, json.dumps(endpoint.latest), "application/json")
                else:
                    self._answer(404, "not found: try /metrics or /metrics.json\n", "text/plain")

            def _answer(self, status: int, body: str, kind: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass  # stdout is the JSON lines' own

        return Handler


def run_worker(
    cfg: Config,
    sock: socket.socket,
    report: common.Reporter,
    use_uvloop: bool,
    stdin_eof: bool,
) -> int:
    """Serve on ``sock`` until told to stop; ``report`` receives counters.

    ``report(kind, payload)`` is called with ``ready``, ``state`` (every
    interval) and ``final``. A single-process sink prints those directly; a
    worker sends them to its parent through a pipe.
    """
    loop, loop_name = common.new_loop(use_uvloop)
    asyncio.set_event_loop(loop)
    server = SinkServer(cfg)
    stop = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    common.add_stop_handlers(loop, request_stop, stdin_eof)

    async def serve() -> None:
        srv = await loop.create_server(server.protocol, sock=sock, backlog=4096)
        report("ready", {"loop": loop_name})
        started = time.monotonic()
        sweep_every = min(1.0, cfg.idle_timeout / 4)
        next_report = started + cfg.interval
        next_sweep = started + sweep_every
        while not stop.done():
            now = time.monotonic()
            wait = max(0.0, min(next_report, next_sweep) - now)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(stop), wait)
            now = time.monotonic()
            if now >= next_sweep:
                server.sweep(now)
                next_sweep = now + sweep_every
            if now >= next_report:
                report("state", server.counters())
                next_report += cfg.interval
                if next_report < now:
                    next_report = now + cfg.interval
        srv.close()
        report("final", server.counters(final=True))

    try:
        loop.run_until_complete(serve())
    finally:
        with contextlib.suppress(Exception):
            loop.close()
    return 0


def run_single(cfg: Config, use_uvloop: bool, stdin_eof: bool, out: Emit = common.emit) -> int:
    """The whole sink in this process: the default, and the fastest at one core; each line goes to ``out``."""
    sock = bind_socket(cfg.host, cfg.port, reuse_port=False)
    port = int(sock.getsockname()[1])
    started = time.monotonic()

    def report(kind: str, payload: dict[str, Any]) -> None:
        elapsed = round(time.monotonic() - started, 3)
        if kind == "ready":
            out(_ready_line(cfg, port, 1, payload["loop"]))
            return
        line = {"type": "progress" if kind == "state" else "summary", "elapsed": elapsed}
        line.update(_presented(payload))
        if kind == "final":
            line["workers"] = 1
        out(line)

    return run_worker(cfg, sock, report, use_uvloop, stdin_eof)


def _ready_line(cfg: Config, port: int, workers: int, loop_name: str) -> dict[str, Any]:
    return {
        "type": "ready",
        "listen": _fmt_addr(cfg.host, port),
        "port": port,
        "workers": workers,
        "loop": loop_name,
        "pid": os.getpid(),
        "nofile": common.raise_nofile_limit(),
        "max_size": cfg.max_size,
        "responses": cfg.responses,
    }


def run_pool(cfg: Config, workers: int, use_uvloop: bool, stdin_eof: bool, out: Emit = common.emit) -> int:
    """``workers`` forked processes sharing the port with SO_REUSEPORT.

    Each worker reports its counters as JSON lines on a pipe; this parent
    sums the latest of each and prints one stream, so a reader cannot tell
    one worker from many except by the ``workers`` field.
    """
    port = probe_port(cfg.host, cfg.port)
    pool = common.WorkerPool()
    pool.install_signals()
    for index in range(workers):
        pool.spawn(_pool_runner(_worker_config(cfg, index), port, use_uvloop))
    started = time.monotonic()
    loop_name = pool.wait_ready()
    out(_ready_line(cfg, port, workers, loop_name))
    pool.serve(cfg.interval, stdin_eof, lambda: out(_progress(pool, started)))
    pool.stop()
    line: dict[str, Any] = {"type": "summary", "elapsed": round(time.monotonic() - started, 3)}
    line.update(Stats().as_dict())
    line.update(_presented(pool.totals()))
    line["workers"] = workers
    if pool.lost:
        line["workers_lost"] = pool.lost
    out(line)
    return 0


def _progress(pool: common.WorkerPool, started: float) -> dict[str, Any]:
    line: dict[str, Any] = {"type": "progress", "elapsed": round(time.monotonic() - started, 3)}
    line.update(Stats().as_dict())  # every field, even before a worker has reported
    line.update(_presented(pool.totals()))
    return line


def _presented(state: dict[str, Any]) -> dict[str, Any]:
    """Counters as a line shows them: the stamps' histogram turned into delivery percentiles."""
    if "delivery_hist" not in state:
        return state
    shown = {k: v for k, v in state.items() if k not in ("delivery_hist", "delivery_sum_us", "max_delivery_us")}
    shown.update(stamp_figures(state))
    return shown


def _worker_config(cfg: Config, index: int) -> Config:
    """Worker ``index``'s config: its own seed (``--seed`` + index), so workers do not draw alike."""
    return cfg if cfg.seed is None else replace(cfg, seed=cfg.seed + index)


def _pool_runner(cfg: Config, port: int, use_uvloop: bool) -> Callable[[common.Reporter], int]:
    # A function of its own so each child binds its own config, not the loop's last.
    return lambda report: _pool_child(cfg, port, report, use_uvloop)


def load_responses(path: str) -> responses.Responses:
    """The responses file at ``path``; ``StartError`` naming what is wrong (file, table, key)."""
    try:
        return responses.load(path)
    except responses.ResponsesError as error:
        raise StartError(f"--responses {error}") from None


def _pool_child(cfg: Config, port: int, report: common.Reporter, use_uvloop: bool) -> int:
    try:
        sock = bind_socket(cfg.host, port, reuse_port=True)
    except StartError as error:
        report("error", {"error": str(error)})
        return 2
    return run_worker(cfg, sock, report, use_uvloop, stdin_eof=False)


def build_parser() -> argparse.ArgumentParser:
    """Flags of the sink; the CLI passes its own flags straight through."""
    p = argparse.ArgumentParser(
        prog="smtp_sink",
        description="SMTP sink: accept mail on ADDR:PORT and discard it; JSON lines on stdout.",
    )
    p.add_argument("--listen", default=DEFAULT_LISTEN, help="ADDR:PORT (default %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    p.add_argument("--hostname", default="kumotui-sink.invalid", help="name in banner and EHLO")
    p.add_argument(
        "--max-message-size",
        type=int,
        default=50 * 1024 * 1024,
        help="largest message accepted, bytes (advertised as SIZE; default %(default)s)",
    )
    p.add_argument(
        "--max-line-length",
        type=int,
        default=2048,
        help="longest command line accepted, bytes (default %(default)s, as Postfix)",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=300.0,
        help="close a session silent this long, seconds (default %(default)s, RFC 5321)",
    )
    p.add_argument(
        "--stamps",
        metavar="TAG",
        help="read the X-Kumotui-Stamp header of run TAG in each accepted message: which messages "
        "arrived (ranges_delivered) and their delivery latency (delivery_ms)",
    )
    p.add_argument(
        "--responses",
        metavar="FILE",
        help="answer as KumoMTA's Smart Sink: per recipient domain, bounce and defer shares and reply "
        "texts from FILE (its responses.toml format); counts per domain in the JSON lines",
    )
    p.add_argument("--seed", type=int, help="random seed of every draw (repeatable runs; worker i uses SEED+i)")
    p.add_argument(
        "--metrics-listen",
        metavar="ADDR:PORT",
        help="also serve the counters over HTTP: /metrics in kumod's names, /metrics.json the latest line",
    )
    p.add_argument("--tempfail-percent", type=float, default=0.0, help="451 this share of DATA")
    p.add_argument("--permfail-percent", type=float, default=0.0, help="554 this share of DATA")
    p.add_argument(
        "--max-messages-per-connection",
        type=int,
        default=0,
        help="answer MAIL with 421 and close after this many messages (0: no limit)",
    )
    common.add_common_flags(p)
    return p


def config_from(args: argparse.Namespace) -> Config:
    """Validate flags into a Config; ``StartError`` names the bad flag."""
    host, port = parse_listen(args.listen)
    checks = [
        (args.workers >= 1, "--workers must be at least 1"),
        (args.max_message_size >= 1, "--max-message-size must be positive"),
        (args.max_line_length >= 512, "--max-line-length must be at least 512 (RFC 5321)"),
        (args.idle_timeout > 0, "--idle-timeout must be positive"),
        (args.interval > 0, "--interval must be positive"),
        (0 <= args.tempfail_percent <= 100, "--tempfail-percent must be within 0-100"),
        (0 <= args.permfail_percent <= 100, "--permfail-percent must be within 0-100"),
        (
            args.tempfail_percent + args.permfail_percent <= 100,
            "--tempfail-percent plus --permfail-percent must not exceed 100",
        ),
        (args.max_messages_per_connection >= 0, "--max-messages-per-connection must be >= 0"),
    ]
    common.require(checks)
    if args.stamps:
        common.check_stamp_tag(args.stamps)
    if args.responses:
        common.require(
            [
                (
                    not (args.tempfail_percent or args.permfail_percent),
                    "--responses and --tempfail-percent/--permfail-percent: put the shares in the "
                    "responses file ([default] defer = ..., bounce = ...) instead",
                )
            ]
        )
        load_responses(args.responses)
    return Config(
        host=host,
        port=port,
        hostname=args.hostname,
        max_size=args.max_message_size,
        max_line=args.max_line_length,
        idle_timeout=args.idle_timeout,
        tempfail_percent=args.tempfail_percent,
        permfail_percent=args.permfail_percent,
        max_per_connection=args.max_messages_per_connection,
        interval=args.interval,
        stamps=args.stamps,
        responses=args.responses,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the sink; 0 after a clean stop, 2 when it cannot start."""
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from(args)
        common.raise_nofile_limit()
        use_uvloop = not args.no_uvloop
        out = MetricsEndpoint(args.metrics_listen).emitting(common.emit) if args.metrics_listen else common.emit
        if args.workers == 1:
            return run_single(cfg, use_uvloop, args.exit_on_stdin_eof, out)
        return run_pool(cfg, args.workers, use_uvloop, args.exit_on_stdin_eof, out)
    except StartError as error:
        common.emit({"type": "error", "error": str(error)})
        print(f"smtp_sink: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
