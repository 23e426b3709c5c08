"""The one address parser: SMTP targets and listen addresses, and SSH host specs."""

from __future__ import annotations

import pytest

from kumotui.engines import smtp_gen, smtp_sink
from kumotui.errors import KumotuiError
from kumotui.hosts.address import HostSpec, parse_address


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("127.0.0.1:2026", None, ("127.0.0.1", 2026)),
        ("[::1]:25", None, ("::1", 25)),
        ("mx.example.net:2525", None, ("mx.example.net", 2525)),
        ("sink", 2026, ("sink", 2026)),
        ("::1", 2026, ("::1", 2026)),
        ("[::1]", 2026, ("::1", 2026)),
        (" 10.0.0.5:25 ", None, ("10.0.0.5", 25)),
    ],
)
def test_accepted(text: str, default: int | None, expected: tuple[str, int]) -> None:
    assert parse_address(text, default) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("127.0.0.1", "no port"),
        ("127.0.0.1:", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:0", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:65536", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:25x", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:-1", "the port must be a number from 1 to 65535"),
        (":25", "no host"),
        ("::1:25", "needs brackets"),
        ("[::1:25", "unbalanced brackets"),
        ("[::1]x25", "unbalanced brackets"),
    ],
)
def test_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_address(text)


def test_port_zero_only_where_any_port_is_meant() -> None:
    assert parse_address("0.0.0.0:0", allow_zero=True) == ("0.0.0.0", 0)


def test_the_engines_use_the_same_parser() -> None:
    assert smtp_gen.parse_target("[::1]:2026") == ("::1", 2026)
    assert smtp_sink.parse_listen(":2026") == ("0.0.0.0", 2026)
    with pytest.raises(smtp_gen.StartError, match=r"^--target '::1:25': an IPv6 address with a port needs brackets"):
        smtp_gen.parse_target("::1:25")
    with pytest.raises(smtp_sink.StartError, match=r"^--listen '1.2.3.4:99999': the port must be"):
        smtp_sink.parse_listen("1.2.3.4:99999")


@pytest.mark.parametrize(
    ("text", "host", "user", "port"),
    [
        ("mta1", "mta1", None, None),
        ("root@mta1.example.net:2222", "mta1.example.net", "root", 2222),
        ("[fd00::5]:22", "fd00::5", None, 22),
    ],
)
def test_host_specs(text: str, host: str, user: str | None, port: int | None) -> None:
    spec = HostSpec.parse(text)
    assert (spec.host, spec.user, spec.port) == (host, user, port)
    assert HostSpec.parse(str(spec)) == spec


@pytest.mark.parametrize("text", ["", "bad host;rm", "a@b@c", "host:0", "host:70000", "$(id)"])
def test_bad_host_specs_name_the_flag(text: str) -> None:
    with pytest.raises(KumotuiError, match=r"^--host .*expected \[user@\]host\[:port\]"):
        HostSpec.parse(text)


@pytest.mark.parametrize(
    "text", ["-Fevil", "-oProxyCommand=touch /tmp/x", "-Fevil@localhost", "root@-Fevil", " -J attacker", "x" * 254]
)
def test_host_specs_ssh_would_read_as_options_are_refused(text: str) -> None:
    with pytest.raises(KumotuiError, match=r"^--host '"):
        HostSpec.parse(text)


def test_a_refused_host_is_quoted_short() -> None:
    with pytest.raises(KumotuiError) as refused:
        HostSpec.parse("-" + "F" * 5000)
    assert len(str(refused.value)) < 200
