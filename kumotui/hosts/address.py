"""Parsing host strings: ``[user@]host[:port]`` for SSH and ``HOST:PORT`` / ``[v6]:PORT`` for SMTP.

One parser for every place a user types an address, so they all accept and
refuse the same strings, in the same words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kumotui.errors import KumotuiError

_SPEC = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d{1,5}))?$"
)


@dataclass(frozen=True)
class HostSpec:
    """``[user@]host[:port]`` as the user typed it, plus an optional identity."""

    host: str
    user: str | None = None
    port: int | None = None
    identity: Path | None = None

    @classmethod
    def parse(cls, text: str, identity: Path | None = None) -> HostSpec:
        """Parse ``--host``; refuse anything that is not a plain host name."""
        match = _SPEC.match(text.strip())
        if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
            raise KumotuiError(f"--host {text!r}: expected [user@]host[:port], e.g. root@mta1.example.net:2222")
        return cls(match["host"].strip("[]"), match["user"], int(match["port"]) if match["port"] else None, identity)

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{user}{host}" + (f":{self.port}" if self.port else "")


def split_host_port(target: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or ``v6`` into host and port.

    Raises:
        ValueError: the port is not a number in 1-65535.
    """
    text = target.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"'{target}': the port must be a number from 1 to 65535")
    return host, int(port_text)
