"""Open-file limits for the processes a benchmark runs, and a systemd fix.

kumod and traffic-gen raise their soft ``nofile`` limit to the hard limit at
start, so the *hard* limit of whatever runs them decides how many
connections they can hold: the ``kumomta.service`` unit's ``LimitNOFILE``
when systemd starts kumod (KumoMTA's unit sets none, so systemd's default
applies), and the account's limit (``limits.d``, or the login session's
``ulimit -Hn``) for traffic-gen run by hand. A run at ``--concurrency
20000`` needs well over 20000 descriptors.
"""

from __future__ import annotations

import contextlib
import re
import resource
from dataclasses import dataclass
from pathlib import Path

from kumotui.errors import KumotuiError
from kumotui.hosts import Host

UNIT = "kumomta.service"
UNIT_DROPIN = Path("/etc/systemd/system/kumomta.service.d/90-kumotui-nofile.conf")
HEADROOM = 1024
"""Descriptors beyond one per connection: spool, logs, DNS, listeners."""


@dataclass(frozen=True)
class NofileLimit:
    """One hard limit and where it comes from."""

    who: str
    """What it limits, e.g. ``this shell (traffic-gen)`` or ``kumomta.service``."""
    hard: int | None
    """None: unlimited or unknown (see ``source``)."""
    source: str

    def enough_for(self, concurrency: int) -> bool:
        """Whether ``concurrency`` connections fit with some headroom."""
        return self.hard is None or self.hard >= needed(concurrency)


def needed(concurrency: int) -> int:
    """Descriptors a run at ``concurrency`` needs: one per connection plus headroom."""
    return concurrency + HEADROOM


def recommended(concurrency: int) -> int:
    """A round hard limit comfortably above what ``concurrency`` needs."""
    return max(65536, 1 << (needed(concurrency) - 1).bit_length())


def current_account() -> NofileLimit:
    """The hard limit this process (and anything it starts) has now."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return NofileLimit(
        "this account (traffic-gen, kumotui's engines)",
        None if hard == resource.RLIM_INFINITY else hard,
        "getrlimit(RLIMIT_NOFILE)",
    )


def parse_limit_nofile(text: str) -> int | None:
    """``LimitNOFILE=`` from unit text: the hard part of ``soft:hard`` or the single value.

    Returns None for ``infinity``; raises ValueError when no line sets it.
    """
    value = None
    for line in text.splitlines():
        match = re.match(r"^\s*LimitNOFILE\s*=\s*(\S*)\s*$", line)
        if match:
            value = match.group(1)  # later lines win, as systemd reads them
    if value is None:
        raise ValueError("no LimitNOFILE")
    hard = value.split(":")[-1]
    return None if hard == "infinity" else int(hard)


def unit_limit(host: Host) -> NofileLimit | None:
    """``kumomta.service``'s effective hard limit, via ``systemctl show``.

    None when systemd or the unit is not there.
    """
    shown = host.run(["systemctl", "show", UNIT, "--property=LimitNOFILE,LoadState"])
    if shown.code != 0 or "LoadState=loaded" not in shown.stdout:
        return None
    try:
        hard = parse_limit_nofile(shown.stdout)
    except ValueError:
        return None
    return NofileLimit(UNIT, hard, "systemctl show kumomta.service")


def limits_d(host: Host, user: str, etc: Path = Path("/etc")) -> NofileLimit | None:
    """The hard ``nofile`` pam_limits gives ``user`` at login (limits.conf, limits.d)."""
    files = [etc / "security" / "limits.conf"]
    with contextlib.suppress(OSError):
        files += [
            etc / "security" / "limits.d" / n
            for n in host.list_dir(etc / "security" / "limits.d")
            if n.endswith(".conf")
        ]
    found: NofileLimit | None = None
    for path in files:
        try:
            text = host.read_text(path)
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split("#", 1)[0].split()
            if len(fields) == 4 and fields[0] in (user, "*") and fields[1] in ("hard", "-") and fields[2] == "nofile":
                if fields[3] not in ("unlimited", "infinity") and not re.fullmatch(r"-?[0-9]{1,19}", fields[3]):
                    raise KumotuiError(f"{path}:{number}: nofile limit {fields[3][:40]!r} is not a number")
                hard = None if fields[3] in ("unlimited", "infinity") else int(fields[3])
                # A line naming the user beats a wildcard, whatever the order.
                if found is None or fields[0] == user or not found.source.endswith(f"({user})"):
                    found = NofileLimit(
                        f"user {user} at login", hard, f"{path}:{number}" + (f" ({user})" if fields[0] == user else "")
                    )
    return found


MAX_NOFILE = 1 << 30
"""The kernel's own ceiling for ``fs.nr_open`` (a hard limit above it cannot be set)."""


def unit_dropin_text(limit: int) -> str:
    """A systemd drop-in raising kumomta.service's open-file limit.

    Only a whole number goes into the unit file, so nothing in it can add a
    line (``ExecStartPre=``) that systemd would run as root.

    Raises:
        KumotuiError: ``limit`` is not a whole number from 1 to 2^30.
    """
    if type(limit) is not int or not 1 <= limit <= MAX_NOFILE:
        raise KumotuiError(f"LimitNOFILE must be a whole number from 1 to {MAX_NOFILE}, got {limit!r}")
    return (
        "# Written by kumotui: kumod raises its soft open-file limit to this hard limit.\n"
        "# Undo: `kumotui rollback`, or delete this file and run `systemctl daemon-reload`.\n"
        f"[Service]\nLimitNOFILE={limit}\n"
    )
