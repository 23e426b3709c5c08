"""Sysctl values as the kernel prints them, and the rules that compare them.

A value is text (``"32768\\t60999"``); for comparison it is split on any run
of whitespace. Numeric rules need every field to be an integer; Python ints
hold the full 64-bit range (``kernel.shmmax`` is 18446744073692774399).
"""

from __future__ import annotations

import enum
import re

MAX_DIGITS = 20
"""Digits in the longest kernel number (2^64 - 1 has 20); a sign may come before them."""

_INT = re.compile(rf"^-?\d{{1,{MAX_DIGITS}}}$")
_DIGITS = re.compile(r"\d+")

# Characters a text sysctl value may hold (congestion control names, paths,
# core patterns); anything else, notably ';', '$', '`', quotes, control
# characters and newlines, is refused outright.
_SAFE_TEXT = re.compile(r"^[A-Za-z0-9_ .:,/%|@+=\-]+$")
MAX_VALUE_CHARS = 4096
"""Longest value accepted (the kernel's own limit for one write is a page)."""


class Rule(enum.StrEnum):
    """How a current value is judged against a profile's target."""

    AT_LEAST = "at-least"
    """Numbers, element-wise: passes when current >= target; never lowered."""
    AT_MOST = "at-most"
    """Numbers, element-wise: passes when current <= target."""
    EXACTLY = "exactly"
    """Numbers or text: passes when equal (whitespace-normalised)."""
    COVERS = "covers"
    """A ``lo hi`` range: passes when current contains target; proposal is the union."""

    @property
    def numeric(self) -> bool:
        """Whether the rule compares numbers (``exactly`` also takes text)."""
        return self is not Rule.EXACTLY


class Status(enum.StrEnum):
    """The verdict on one parameter."""

    OK = "ok"
    BELOW = "below"
    ABOVE = "above"
    DIFFERS = "differs"
    MISSING = "missing"
    UNREADABLE = "unreadable"


def fields(value: str) -> list[str]:
    """Split a value on runs of whitespace (tabs included)."""
    return value.split()


def normalize(value: str) -> str:
    """The canonical form: fields joined by single spaces."""
    return " ".join(fields(value))


def is_safe_value(value: str) -> bool:
    """Whether ``value`` is one line of the characters a sysctl value may hold.

    Nothing a file format or a shell reads specially: no quotes, ``$``, ``;``,
    backquotes, control characters or line breaks.
    """
    return len(value) <= MAX_VALUE_CHARS and bool(_SAFE_TEXT.match(value)) and bool(value.strip())


def longest_number(text: str) -> int:
    """The most digits in a row in ``text`` (to refuse absurd numbers before ``int()`` sees them)."""
    return max((len(run) for run in _DIGITS.findall(text)), default=0)


def parse_numbers(value: str) -> tuple[int, ...] | None:
    """The value's fields as ints, or None when any field is not an integer of at most :data:`MAX_DIGITS` digits."""
    parts = fields(value)
    if not parts or not all(_INT.match(p) for p in parts):
        return None
    return tuple(int(p) for p in parts)


def format_numbers(numbers: tuple[int, ...]) -> str:
    """Numbers back to sysctl text."""
    return " ".join(str(n) for n in numbers)


def judge(rule: Rule, current: str, target: str) -> tuple[Status, str]:
    """Compare a current value with a target under a rule.

    Returns the status and the proposed value: the value the parameter would
    have after applying the profile (equal to the normalised current value
    when nothing needs to change). ``at-least`` never proposes lowering any
    field, ``at-most`` never raising one, and ``covers`` proposes the union.
    """
    if rule is Rule.EXACTLY:
        cur_n, tgt_n = parse_numbers(current), parse_numbers(target)
        same = cur_n == tgt_n if cur_n is not None and tgt_n is not None else None
        if same is None:
            same = normalize(current) == normalize(target)
        return (Status.OK, normalize(current)) if same else (Status.DIFFERS, normalize(target))

    cur, tgt = parse_numbers(current), parse_numbers(target)
    if tgt is None:
        raise ValueError(f"rule {rule} needs numbers, got {target!r}")
    if cur is None or len(cur) != len(tgt):
        return Status.DIFFERS, normalize(target)

    if rule is Rule.AT_LEAST:
        proposed = tuple(max(c, t) for c, t in zip(cur, tgt, strict=True))
        status = Status.OK if proposed == cur else Status.BELOW
    elif rule is Rule.AT_MOST:
        proposed = tuple(min(c, t) for c, t in zip(cur, tgt, strict=True))
        status = Status.OK if proposed == cur else Status.ABOVE
    else:  # COVERS
        (c_lo, c_hi), (t_lo, t_hi) = cur, tgt
        proposed = (min(c_lo, t_lo), max(c_hi, t_hi))
        status = Status.OK if proposed == cur else Status.DIFFERS
    return status, format_numbers(proposed)


def takes_away(rule: Rule, current: str, proposed: str) -> bool:
    """Whether writing ``proposed`` would go against the rule's promise for ``current``.

    ``at-least`` and ``exactly``: any numeric field gets smaller. ``at-most``
    (a timeout, where less is the point): any field gets larger. ``covers``:
    the new range no longer contains the current one (raising the low end of
    a port range narrows it). The UI warns before such a change; a profile's
    own proposal never does this, and a mode (``tcp_tw_reuse``) is not a
    magnitude: callers describe it with :func:`kumotui.tuning.catalog.mode_change`
    first.
    """
    cur, new = parse_numbers(current), parse_numbers(proposed)
    if cur is None or new is None or len(cur) != len(new):
        return False
    if rule is Rule.COVERS and len(cur) == 2:
        return new[0] > cur[0] or new[1] < cur[1]
    if rule is Rule.AT_MOST:
        return any(n > c for c, n in zip(cur, new, strict=True))
    return any(n < c for c, n in zip(cur, new, strict=True))


def same_value(a: str, b: str) -> bool:
    na, nb = parse_numbers(a), parse_numbers(b)
    return na == nb if na is not None and nb is not None else normalize(a) == normalize(b)


STATUS_ICON = {
    Status.OK: "✔",
    Status.BELOW: "▼",
    Status.ABOVE: "▲",
    Status.DIFFERS: "≠",
    Status.MISSING: "?",
    Status.UNREADABLE: "✖",
}
"""An icon per status so the word and shape carry meaning without colour."""
