"""Parsing host strings: ``[user@]host[:port]`` for SSH and ``HOST:PORT`` / ``[v6]:PORT`` for SMTP.

One parser for every place a user types an address, so they all accept and
refuse the same strings, in the same words."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from kumotui.engines import smtp_common
from kumotui.errors import KumotuiError

_SPEC = re.compile(
    r"^(?:(?P<user>(?!-)[A-Za-z0-9._-]{1,64})@)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|(?!-)[A-Za-z0-9._-]{1,253})(?::(?P<port>\d{1,5}))?$"
)
"""``[user@]host[:port]``. Neither the user nor the host may begin with ``-``:
OpenSSH would read such a word as an option (``-F``, ``-E``, ``-J``...)."""


@dataclass(frozen=True)
class HostSpec:
    """``[user@]host[:port]`` as the user typed it, plus an optional identity.

    Only :meth:`parse` makes one, so a host and a user are always plain
    names; the commands that use them still put ``--`` before the destination.
    """

    host: str
    user: str | None = None
    port: int | None = None
    identity: Path | None = None

    @classmethod
    def parse(cls, text: str, identity: Path | None = None) -> HostSpec:
        """Parse ``--host``; refuse anything that is not a plain host name."""
        stripped = text.strip()
        if stripped.startswith("-") or "@-" in stripped:
            raise KumotuiError(
                f"--host {_shown(text)}: a host or user name cannot begin with '-' (ssh would read it as an option)"
            )
        match = _SPEC.match(stripped)
        if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
            raise KumotuiError(f"--host {_shown(text)}: expected [user@]host[:port], e.g. root@mta1.example.net:2222")
        return cls(match["host"].strip("[]"), match["user"], int(match["port"]) if match["port"] else None, identity)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{user}{host}" + (f":{self.port}" if self.port else "")


def _shown(text: str, limit: int = 80) -> str:
    """The refused text as the error quotes it: repr, and cut when long."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def parse_address(text: str, default_port: int | None = None, *, allow_zero: bool = False) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` (a bare host when ``default_port`` is given) into host and port.

    The engines' own parser (:func:`kumotui.engines.smtp_common.split_host_port`),
    so an address means the same to the CLI, the app and an engine on a remote host.

    Raises:
        ValueError: what is wrong, in words; callers add the flag or field at fault.
    """
    return smtp_common.split_host_port(text, default_port, allow_zero=allow_zero)


def host_part(address: str) -> str:
    """The host of ``HOST:PORT`` (or a bare host), for finding the interface toward it; loopback when it
    does not parse (a reading then shows loopback rather than failing)."""
    try:
        return parse_address(address, 25)[0]
    except ValueError:
        return "127.0.0.1"


def format_address(host: str, port: int) -> str:
    """``HOST:PORT``, with an IPv6 host in brackets (``[::1]:2026``): what :func:`parse_address` reads."""
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost`` (this machine, without asking DNS)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
