"""Checking a proposed value before anything is written.

Values are data: a value with a newline, a control character or shell
punctuation is refused here, so it can never reach a file, a command line
or a shell. Numeric parameters must look like the kernel's current value
(same number of fields) and stay inside the kernel's limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from kumotui.errors import KumotuiError
from kumotui.tuning.catalog import info
from kumotui.tuning.profiles import Param, is_valid_key
from kumotui.tuning.sysctl import SysctlTree
from kumotui.tuning.values import (
    MAX_DIGITS,
    MAX_VALUE_CHARS,
    Rule,
    format_numbers,
    is_safe_value,
    longest_number,
    parse_numbers,
)


class ValidationError(KumotuiError):
    """A value that must not be written, with the key and what is valid."""


@dataclass(frozen=True)
class Checked:
    """A value that passed validation, in canonical form, with any advice."""

    key: str
    value: str
    warnings: tuple[str, ...] = ()
    lowers_target: bool = False
    """The value is below the profile's ``at-least`` target: confirm first."""


def check_value(
    key: str, value: str, tree: SysctlTree, param: Param | None = None, current: str | None = None
) -> Checked:
    """Validate ``value`` for ``key`` against its type and the kernel's limits.

    Args:
        key: the dotted sysctl name.
        value: the value the user or profile wants written.
        tree: where the current value (and related keys) are read.
        param: the profile's entry for the key, if any (its rule gives the type).
        current: the current value when already read (saves a read).

    Raises:
        ValidationError: naming the key, the value and what would be valid.
    """
    if not is_valid_key(key):
        raise ValidationError(f"{key!r} is not a dotted sysctl name such as net.core.somaxconn")
    shown = value[:80].encode("unicode_escape").decode("ascii") + ("..." if len(value) > 80 else "")
    if not value.strip():
        raise ValidationError(f"{key}: the value is empty")
    if longest_number(value) > MAX_DIGITS:
        raise ValidationError(
            f"{key}: refusing '{shown}': a number of {longest_number(value)} digits; kernel numbers have at most "
            f"{MAX_DIGITS} digits (2^64 is 18446744073709551616)"
        )
    if len(value) > MAX_VALUE_CHARS:
        raise ValidationError(f"{key}: refusing a value of {len(value)} characters (at most {MAX_VALUE_CHARS})")
    if not is_safe_value(value.strip(" ")):
        raise ValidationError(
            f"{key}: refusing value '{shown}': only one line of letters, digits, spaces and "
            "_ . : , / % | @ + = - is accepted"
        )
    if current is None:
        reading = tree.read(key)
        if reading.value is None:
            raise ValidationError(f"{key}: cannot be set: {reading.error}")
        current = reading.value

    numeric = (param is not None and param.rule.numeric) or parse_numbers(current) is not None
    if not numeric:
        return Checked(key, " ".join(value.split()))
    numbers = parse_numbers(value)
    width = len(current.split())
    if numbers is None or len(numbers) != width:
        what = "a whole number" if width == 1 else f"{width} whole numbers separated by spaces"
        raise ValidationError(
            f"{key}: '{shown}' is not valid: expected {what} (current value: {' '.join(current.split())})"
        )

    warnings = list(_kernel_limits(key, numbers, tree))
    lowers = False
    if param is not None and param.rule is Rule.AT_LEAST:
        target = parse_numbers(param.value) or ()
        lowers = any(n < t for n, t in zip(numbers, target, strict=False))
    if param is not None and param.rule is Rule.COVERS:
        target = parse_numbers(param.value) or ()
        lowers = numbers[0] > target[0] or numbers[1] < target[1]
    if lowers and param is not None:
        warnings.append(f"{key}: {format_numbers(numbers)} is below the profile's recommendation {param.value}")
    return Checked(key, format_numbers(numbers), tuple(warnings), lowers)


def _kernel_limits(key: str, numbers: tuple[int, ...], tree: SysctlTree) -> list[str]:
    """Raise for values the kernel would refuse; return advice for odd ones."""
    meta = info(key)
    warnings: list[str] = []
    if meta is not None:
        for n in numbers:
            if not meta.minimum <= n <= meta.maximum:
                raise ValidationError(
                    f"{key}: {n} is out of range: the kernel accepts {meta.minimum} to {meta.maximum}"
                )
    if key == "net.ipv4.ip_local_port_range":
        lo, hi = numbers
        if not 1 <= lo < hi <= 65535:
            raise ValidationError(f"{key}: '{lo} {hi}' is not valid: need 1 <= lo < hi <= 65535")
        start = parse_numbers(tree.read("net.ipv4.ip_unprivileged_port_start").value or "")
        if start is not None and lo < start[0]:
            raise ValidationError(
                f"{key}: lo {lo} is below net.ipv4.ip_unprivileged_port_start ({start[0]}); "
                "the kernel refuses that (EINVAL)"
            )
        if lo % 2 == hi % 2:
            # The suggestion widens the range by one port, so it never goes below a `covers` target.
            fix = f"{lo} {hi + 1}" if hi < 65535 else f"{lo - 1} {hi}"
            warnings.append(
                f"{key}: {lo} and {hi} have the same parity; the kernel documentation advises "
                f"one even and one odd (e.g. {fix}) so ports spread evenly"
            )
    if key in ("net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem") and list(numbers) != sorted(numbers):
        warnings.append(f"{key}: fields should rise: min <= default <= max")
    return warnings
