"""Rules and value comparison: the heart of "never make a host worse"."""

from __future__ import annotations

import pytest

from kumotui.tuning.values import Rule, Status, judge, normalize, parse_numbers

BIG = "18446744073692774399"


@pytest.mark.parametrize(
    ("rule", "current", "target", "status", "proposed"),
    [
        (Rule.AT_LEAST, "65530", "768000", Status.BELOW, "768000"),
        (Rule.AT_LEAST, "4096", "1024", Status.OK, "4096"),
        (Rule.AT_LEAST, "1024", "1024", Status.OK, "1024"),
        (Rule.AT_LEAST, BIG, "68719476736", Status.OK, BIG),
        (
            Rule.AT_LEAST,
            "9223372036854775807",
            "18446744073709551615",
            Status.BELOW,
            "18446744073709551615",
        ),
        (
            Rule.AT_LEAST,
            "4096\t131072\t6291456",
            "4096 87380 16777216",
            Status.BELOW,
            "4096 131072 16777216",
        ),
        (
            Rule.AT_LEAST,
            "8192 262144 16777216",
            "4096 87380 16777216",
            Status.OK,
            "8192 262144 16777216",
        ),
        (Rule.AT_MOST, "60", "30", Status.ABOVE, "30"),
        (Rule.AT_MOST, "15", "30", Status.OK, "15"),
        (Rule.AT_MOST, "10 90", "20 50", Status.ABOVE, "10 50"),
        (Rule.EXACTLY, "2", "1", Status.DIFFERS, "1"),
        (Rule.EXACTLY, "1", "1", Status.OK, "1"),
        (Rule.EXACTLY, "01", "1", Status.OK, "01"),
        (Rule.EXACTLY, "cubic", "bbr", Status.DIFFERS, "bbr"),
        (Rule.EXACTLY, "reno  cubic", "reno cubic", Status.OK, "reno cubic"),
        (Rule.COVERS, "32768\t60999", "5000 63000", Status.DIFFERS, "5000 63000"),
        (Rule.COVERS, "1024 65000", "5000 63000", Status.OK, "1024 65000"),
        (Rule.COVERS, "1024 60999", "5000 63000", Status.DIFFERS, "1024 63000"),
        (Rule.COVERS, "6000 65535", "5000 63000", Status.DIFFERS, "5000 65535"),
        # A value the rule cannot compare (wrong field count) is replaced.
        (Rule.AT_LEAST, "1 2", "5", Status.DIFFERS, "5"),
        (Rule.AT_LEAST, "abc", "5", Status.DIFFERS, "5"),
    ],
)
def test_judge(rule: Rule, current: str, target: str, status: Status, proposed: str) -> None:
    assert judge(rule, current, target) == (status, proposed)


def test_at_least_never_lowers_any_field() -> None:
    for current in ["0", "5", "1024", "99999999999999999999", "4096 1 9", "1 99999 2"]:
        target = " ".join(["1024"] * len(current.split()))
        _, proposed = judge(Rule.AT_LEAST, current, target)
        pairs = zip(parse_numbers(proposed) or (), parse_numbers(current) or (), strict=True)
        assert all(p >= c for p, c in pairs)


def test_numbers_beyond_64_bits_stay_exact() -> None:
    assert parse_numbers("18446744073709551615 -1") == (2**64 - 1, -1)
    assert normalize("32768\t \t60999\n") == "32768 60999"
    assert parse_numbers("1.5") is None
    assert parse_numbers("") is None


def test_numeric_rule_rejects_text_target() -> None:
    with pytest.raises(ValueError, match="needs numbers"):
        judge(Rule.AT_LEAST, "5", "lots")
