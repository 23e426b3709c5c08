"""Reading a profile against a host: one finding per parameter."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from kumotui.tuning.profiles import Profile
from kumotui.tuning.sysctl import SysctlTree
from kumotui.tuning.values import Rule, Status, judge, normalize


@dataclass(frozen=True)
class Finding:
    """The verdict on one parameter of a profile."""

    key: str
    current: str | None
    """As the kernel shows it (tabs kept); None when missing or unreadable."""
    recommended: str
    rule: Rule
    status: Status
    proposed: str | None
    """The value after applying the profile; equals the normalised current
    value when nothing changes; None when the parameter cannot be read."""
    why: str = ""
    error: str | None = None
    """Why the value could not be read, for ``missing`` / ``unreadable``."""

    @property
    def needs_change(self) -> bool:
        """Whether applying the profile would write this parameter."""
        return self.proposed is not None and self.current is not None and normalize(self.current) != self.proposed

    def as_json(self) -> dict[str, Any]:
        """The shape of one ``check --json`` result."""
        data = asdict(self)
        data["rule"] = str(self.rule)
        data["status"] = str(self.status)
        del data["why"], data["error"]
        return data


def evaluate(profile: Profile, tree: SysctlTree) -> list[Finding]:
    """Read every parameter of ``profile`` and judge it, in profile order."""
    readings = tree.read_many([p.key for p in profile.params])
    findings = []
    for param in profile.params:
        reading = readings[param.key]
        if reading.value is None:
            status = Status.MISSING if reading.missing else Status.UNREADABLE
            findings.append(Finding(param.key, None, param.value, param.rule, status, None, param.why, reading.error))
            continue
        status, proposed = judge(param.rule, reading.value, param.value)
        findings.append(Finding(param.key, reading.value, param.value, param.rule, status, proposed, param.why))
    return findings


def parameter_values(profile: Profile, tree: SysctlTree) -> dict[str, str]:
    """The profile's parameters as they are now (normalised), for run records;
    unreadable ones are left out."""
    readings = tree.read_many([p.key for p in profile.params])
    return {key: normalize(r.value) for key, r in readings.items() if r.value is not None}


def summary(findings: list[Finding]) -> str:
    """One line such as ``5 of 12 parameters need a change``."""
    total = len(findings)
    bad = [f for f in findings if f.status is not Status.OK]
    if not bad:
        return f"All {total} parameters pass."
    change = sum(1 for f in bad if f.needs_change)
    unread = sum(1 for f in bad if f.current is None)
    parts = [f"{change} of {total} parameters need a change"]
    if unread:
        parts.append(f"{unread} missing or unreadable")
    return "; ".join(parts) + "."
