"""Smart Sink responses: KumoMTA's ``responses.toml``, read and drawn from per recipient domain.

Why: a sink that accepts everything puts no backpressure on the MTA under
test, so its queues never build up. KumoMTA's Smart Sink answers a share of
messages with the big providers' real deferral and bounce texts, per
recipient domain, from a TOML file; this module reads that same file, so a
responses file written for KumoMTA works here unchanged, and draws the reply
for one message.

The format: ``[default]`` with ``bounce`` and ``defer`` (percent);
``[domain."NAME"]`` overriding either for a domain (a key it omits keeps the
default's value); ``[[bounce."NAME"]]`` and ``[[defer."NAME"]]`` array tables
of ``code`` + ``msg``, one drawn at random when that outcome is drawn
(without a list, KumoMTA's ``550 boing!`` / ``451 later!``). A ``msg`` may hold
several lines (``\\r\\n`` or ``\\n``); each is sent as a line of one multi-line
reply, a code a line repeats at its start dropped. The draw: a uniform roll in
[0, 100); below ``bounce`` a bounce, below ``bounce + defer`` a deferral, else
accepted. (KumoMTA's policy rolls an integer 1-100 and compares with ``<``, so
it bounces 1% less than written; here the shares are exactly as written.)

A recipient domain is matched whole, then with trailing labels removed, so
``gmail.com.kumotui.test`` (the generator's ``--domain-suffix``) finds
``gmail.com``'s rules. Stdlib only (``tomllib``): shipped beside the sink.
"""

from __future__ import annotations

import random
import re
import tomllib
from dataclasses import dataclass

FALLBACK_BOUNCE = (550, "boing!")
"""KumoMTA's Smart Sink's reply for a bounce drawn for a domain without a ``[[bounce."NAME"]]`` list."""
FALLBACK_DEFER = (451, "later!")
"""Its reply for a deferral drawn for a domain without a ``[[defer."NAME"]]`` list."""
MAX_LINE = 480
"""Text bytes per reply line (RFC 5321 allows 512 with the code and CRLF): longer lines are wrapped."""
MAX_TEXT = 8000
"""Characters one ``msg`` may have: a reply, not a document."""
MAX_LOOKUPS = 4096
"""Recipient domains whose rule is remembered; past this, each lookup is done again (bounded memory)."""
_LINE_BREAK = re.compile(r"\r\n|\n|\r")


class ResponsesError(ValueError):
    """A responses file that cannot be used; the message names the file, the table and the key."""


@dataclass(frozen=True)
class DomainRule:
    """What one recipient domain gets: the shares and the replies to draw from."""

    name: str
    """The domain's name in the file, or ``default`` for a domain the file does not name."""
    bounce: float
    defer: float
    bounces: tuple[bytes, ...]
    defers: tuple[bytes, ...]

    def draw(self, rng: random.Random) -> bytes | None:
        """One message's reply: a bounce, a deferral, or None to accept it."""
        roll = rng.random() * 100.0
        if roll < self.bounce:
            return rng.choice(self.bounces)
        if roll < self.bounce + self.defer:
            return rng.choice(self.defers)
        return None


class Responses:
    """A parsed responses file: rules by domain name, and a cache of recipient domains to rules."""

    def __init__(self, rules: dict[str, DomainRule], default: DomainRule, source: str) -> None:
        self.rules = rules
        self.default = default
        self.source = source
        self._cache: dict[bytes, DomainRule] = {}

    def rule_for(self, domain: bytes) -> DomainRule:
        """The rule of a recipient domain (lower case): its own, a parent's by trailing labels, or the default."""
        rule = self._cache.get(domain)
        if rule is not None:
            return rule
        labels = domain.decode("ascii", "replace").rstrip(".").split(".")
        rule = self.default
        for end in range(len(labels), 0, -1):
            found = self.rules.get(".".join(labels[:end]))
            if found is not None:
                rule = found
                break
        if len(self._cache) < MAX_LOOKUPS:
            self._cache[domain] = rule
        return rule


def render(code: int, msg: str) -> bytes:
    """An SMTP reply (CRLF-ended lines) of ``code`` with the text ``msg``, one line per line of it."""
    lines = []
    for raw in _LINE_BREAK.split(msg):
        text = raw.strip()
        if text[:3] == str(code) and text[3:4] in ("-", " ", ",", ""):
            text = text[4:].strip()  # the provider's own "421-" prefix: the code goes in once
        while len(text) > MAX_LINE:
            lines.append(text[:MAX_LINE])
            text = text[MAX_LINE:]
        if text:
            lines.append(text)
    lines = lines or [""]
    out = [f"{code}-{line}" for line in lines[:-1]] + [f"{code} {lines[-1]}".rstrip()]
    return ("\r\n".join(out) + "\r\n").encode("ascii", "replace")


def load(path: str) -> Responses:
    """Read and check a responses file; :class:`ResponsesError` names what is wrong and where."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ResponsesError(f"{path}: cannot read: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ResponsesError(f"{path}: not valid TOML: {error}") from None
    return parse(data, path)


def parse(data: dict[str, object], source: str) -> Responses:
    """Check a decoded responses file and build its rules."""
    unknown = sorted(set(data) - {"default", "domain", "bounce", "defer"})
    if unknown:
        raise ResponsesError(f"{source}: unknown table {unknown[0]!r}; expected default, domain, bounce, defer")
    base = _table(data.get("default", {}), source, "[default]")
    bounce, defer = _shares(base, 0.0, 0.0, source, "[default]")
    domains = _table(data.get("domain", {}), source, "[domain]")
    bounce_lists = _table(data.get("bounce", {}), source, "[bounce]")
    defer_lists = _table(data.get("defer", {}), source, "[defer]")
    rules: dict[str, DomainRule] = {}
    for name in sorted(set(domains) | set(bounce_lists) | set(defer_lists)):
        where = f'[domain."{name}"]'
        own = _table(domains.get(name, {}), source, where)
        share_b, share_d = _shares(own, bounce, defer, source, where)
        rules[name.lower()] = DomainRule(
            name=name.lower(),
            bounce=share_b,
            defer=share_d,
            bounces=_replies(bounce_lists.get(name), source, f'[[bounce."{name}"]]', FALLBACK_BOUNCE),
            defers=_replies(defer_lists.get(name), source, f'[[defer."{name}"]]', FALLBACK_DEFER),
        )
    fallback = (render(*FALLBACK_BOUNCE),), (render(*FALLBACK_DEFER),)
    return Responses(rules, DomainRule("default", bounce, defer, *fallback), source)


def _table(value: object, source: str, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ResponsesError(f"{source}: {where} must be a table")
    return value


def _shares(table: dict[str, object], bounce: float, defer: float, source: str, where: str) -> tuple[float, float]:
    """A table's ``bounce`` and ``defer`` percentages (missing: the given defaults), checked."""
    unknown = sorted(set(table) - {"bounce", "defer"})
    if unknown:
        raise ResponsesError(f"{source}: {where}: unknown key {unknown[0]!r}; expected bounce, defer (percent)")
    values = []
    for key, fallback in (("bounce", bounce), ("defer", defer)):
        value = table.get(key, fallback)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise ResponsesError(f"{source}: {where} {key} = {value!r}: expected a percentage within 0-100")
        values.append(float(value))
    if values[0] + values[1] > 100:
        raise ResponsesError(f"{source}: {where}: bounce plus defer is {values[0] + values[1]:g}, more than 100")
    return values[0], values[1]


def _replies(entries: object, source: str, where: str, fallback: tuple[int, str]) -> tuple[bytes, ...]:
    """The rendered replies of one ``[[bounce."NAME"]]`` or ``[[defer."NAME"]]`` list (its fallback without one)."""
    if entries is None:
        return (render(*fallback),)
    if not isinstance(entries, list) or not entries:
        raise ResponsesError(f"{source}: {where} must be a non-empty array of tables (code, msg)")
    replies = []
    for number, entry in enumerate(entries, 1):
        here = f"{where} entry {number}"
        if not isinstance(entry, dict) or sorted(entry) != ["code", "msg"]:
            raise ResponsesError(f"{source}: {here}: expected exactly the keys code and msg")
        code, msg = entry["code"], entry["msg"]
        if isinstance(code, bool) or not isinstance(code, int) or not 400 <= code <= 599:
            raise ResponsesError(f"{source}: {here}: code {code!r} is not a 4xx or 5xx reply code")
        if not isinstance(msg, str) or len(msg) > MAX_TEXT or any(c < " " and c not in "\r\n\t" for c in msg):
            raise ResponsesError(f"{source}: {here}: msg must be text of at most {MAX_TEXT} characters")
        reply = render(code, msg)
        if reply == f"{code}\r\n".encode():
            raise ResponsesError(f"{source}: {here}: msg has no text (kumod would send no reply line at all)")
        replies.append(reply)
    return tuple(replies)
