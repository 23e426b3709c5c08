"""Run records: every benchmark kept, listed, compared and reported.

A record holds what is needed to judge a result later and to compare it
with another (before vs after tuning): the configuration, the backend, the
host's facts, the kernel parameters' values at the start, a bounded
per-second series and both sides' summaries. Records are JSON files under
``<state_dir>/runs/<id>.json`` on the machine running kumotui, written
atomically.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kumotui.backends.samples import Sample, Summary, thin_series
from kumotui.bench.backpressure import DomainPushback
from kumotui.bench.delivery import Delivery
from kumotui.bench.measure import Measurement
from kumotui.bench.mta import MtaView
from kumotui.bench.senders import SenderResult
from kumotui.errors import KumotuiError
from kumotui.hosts import HostFacts, RefusedPath
from kumotui.hosts.local import atomic_write, require_private_dir
from kumotui.ids import new_id

RECORD_VERSION = 1
MAX_SERIES = 3600
"""Samples kept per role: an hour at one per second; longer runs are thinned evenly."""


# --- published figures -------------------------------------------------------


# --- records -------------------------------------------------------------------


class RunStatus(enum.StrEnum):
    """How a run ended, as the runs list and reports say it."""

    OK = "ok"
    STOPPED = "stopped"
    """Stopped early: partial counts."""
    FAILED = "failed"
    """A side failed or reported failures (see the summaries' reasons)."""
    TOO_SHORT = "too short"
    """Finished, but its steady state is too short to compare (see the measurement)."""


@dataclass(frozen=True)
class RunConfig:
    """What the user asked the benchmark to do."""

    backend: str
    """``kumomta``, ``postfix`` or ``builtin``."""
    target: str
    """``host:port`` the generator sent to."""
    concurrency: int | None = None
    messages: int | None = None
    duration: float | None = None
    """Seconds; None when the message count alone bounded the run."""
    body_size: int | None = None
    """Message body bytes."""
    workers: int | None = None
    """Generator processes (built-in generator)."""
    sink_workers: int | None = None
    """Processes of a sink kumotui started (built-in sink)."""
    through: str | None = None
    """``host:port`` of the MTA under test the messages went through, or None (generator → sink)."""
    sink_metrics: str | None = None
    """``host:port`` whose ``/metrics`` counted a running sink kumotui did not start (``--sink``), or None."""


@dataclass(frozen=True)
class HostEntry:
    """One host of a run as it was at the start: what it did, its facts, its kernel values."""

    name: str
    """As the user named it (``local`` for this machine)."""
    roles: tuple[str, ...]
    """``generator``, ``sink``, ``mta`` (the MTA under test): what ran there."""
    facts: HostFacts
    parameters: Mapping[str, str] = field(default_factory=dict)
    """The profile's kernel parameters' values on this host at the start."""

    def as_json(self) -> dict[str, Any]:
        """The stored shape."""
        return {
            "name": self.name,
            "roles": list(self.roles),
            "facts": self.facts.as_dict(),
            "parameters": dict(self.parameters),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostEntry:
        """Rebuild from :meth:`as_json`."""
        return cls(
            name=str(data["name"]),
            roles=tuple(str(r) for r in data.get("roles", [])),
            facts=_facts(data["facts"]),
            parameters={str(k): str(v) for k, v in (data.get("parameters") or {}).items()},
        )


def _facts(data: Mapping[str, Any]) -> HostFacts:
    return HostFacts(
        hostname=str(data["hostname"]),
        kernel=str(data["kernel"]),
        cpus=int(data["cpus"]),
        memory_bytes=int(data["memory_bytes"]),
    )


@dataclass(frozen=True)
class RunRedirect:
    """A run's port-25 redirect (``--redirect-port25``, or the form's checkbox): what went where, and its end."""

    host: str
    """The MTA's host that had the rule (``local`` for this machine)."""
    rule: str
    """The rule in words (:meth:`~kumotui.tuning.redirect.Redirect.describe`)."""
    tool: str
    """``nftables`` or ``iptables``: the firewall that held it."""
    commands: tuple[str, ...]
    """The commands that wrote it, as a person would type them."""
    removed: bool = True
    """Removed when the run ended (else ``kumotui redirect remove`` must, and ``error`` says why not)."""
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        """The stored shape."""
        return {**asdict(self), "commands": list(self.commands)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRedirect:
        """Rebuild from :meth:`as_json`."""
        return cls(
            host=str(data["host"]),
            rule=str(data["rule"]),
            tool=str(data["tool"]),
            commands=tuple(str(command) for command in data.get("commands") or []),
            removed=bool(data.get("removed", True)),
            error=str(data.get("error") or ""),
        )


@dataclass(frozen=True)
class RunRecord:
    """One benchmark run as saved."""

    id: str
    started: str
    """ISO 8601 time in UTC."""
    config: RunConfig
    host: HostFacts
    parameters: Mapping[str, str] = field(default_factory=dict)
    """Kernel parameters' values at the start (key -> value as the kernel shows it)."""
    series: tuple[Sample, ...] = ()
    """Per-second samples of both roles, at most :data:`MAX_SERIES` per role."""
    generator: Summary | None = None
    sink: Summary | None = None
    profile: str | None = None
    """The tuning profile the parameters were judged by, if any."""
    label: str = ""
    """A note such as ``before tuning``."""
    measurement: Measurement | None = None
    """The steady-state window and the whole run (None in records from before windows existed)."""
    stopped: bool = False
    """Stopped early (a key, Ctrl+C, a signal): its counts are partial."""
    delivery: Delivery | None = None
    """Through an MTA under test: injected, delivered, lost, duplicated, delivery latency, the probe."""
    hosts: tuple[HostEntry, ...] = ()
    """Every host of the run with its roles, facts and kernel values at start (empty in older records:
    :meth:`host_entries` then derives one from ``host`` and ``parameters``)."""
    generators: tuple[SenderResult, ...] = ()
    """Each generator host's own numbers (empty in older records); ``generator`` is their merge."""
    failure: str = ""
    """Why the run failed as a whole (a generator host's link dropped mid-run), or empty."""

    pushback: tuple[DomainPushback, ...] = ()
    """A Smart Sink's answers per recipient domain (``--responses``): the backpressure applied."""
    mta: MtaView | None = None
    """The MTA under test's own figures at the end of the run (its counters are its own, since it started)."""
    redirect: RunRedirect | None = None
    """The MTA host's outbound port 25 was redirected to the sink for this run (None: it was not)."""

    def host_entries(self) -> tuple[HostEntry, ...]:
        """The run's hosts; for a record from before per-host entries, the one host it kept."""
        if self.hosts:
            return self.hosts
        return (HostEntry(self.host.hostname, ("generator",), self.host, self.parameters),)

    @property
    def status(self) -> RunStatus:
        """``ok``, ``stopped``, ``failed`` or ``too short``, in that order of precedence."""
        if self.stopped:
            return RunStatus.STOPPED
        if not self.ok:
            return RunStatus.FAILED
        if self.measurement is None or self.measurement.too_short:
            return RunStatus.TOO_SHORT
        return RunStatus.OK

    @property
    def backend(self) -> str:
        """The backend that ran (from the configuration)."""
        return self.config.backend

    @property
    def ok(self) -> bool:
        """Whether every summary present says the run went as asked."""
        summaries = [s for s in (self.generator, self.sink) if s is not None]
        lost = self.delivery is not None and self.delivery.lost > 0
        senders_ok = all(part.ok for part in self.generators)
        return bool(summaries) and all(s.ok for s in summaries) and not lost and senders_ok and not self.failure

    def as_json(self) -> dict[str, Any]:
        """The stored shape."""
        return {
            "version": RECORD_VERSION,
            "id": self.id,
            "started": self.started,
            "label": self.label,
            "profile": self.profile,
            "config": asdict(self.config),
            "host": self.host.as_dict(),
            "parameters": dict(self.parameters),
            "generator": self.generator.as_json() if self.generator else None,
            "sink": self.sink.as_json() if self.sink else None,
            "series": [s.as_json() for s in self.series],
            "measurement": self.measurement.as_json() if self.measurement else None,
            "stopped": self.stopped,
            "delivery": self.delivery.as_json() if self.delivery else None,
            "hosts": [entry.as_json() for entry in self.hosts],
            "generators": [part.as_json() for part in self.generators],
            "failure": self.failure,
            "pushback": [row.as_json() for row in self.pushback],
            "mta": self.mta.as_json() if self.mta else None,
            "redirect": self.redirect.as_json() if self.redirect else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """Rebuild a record from its stored shape."""
        host = data["host"]
        return cls(
            id=str(data["id"]),
            started=str(data["started"]),
            label=str(data.get("label") or ""),
            profile=data.get("profile"),
            config=RunConfig(**data["config"]),
            host=_facts(host),
            parameters={str(k): str(v) for k, v in data.get("parameters", {}).items()},
            generator=Summary.from_json(data["generator"]) if data.get("generator") else None,
            sink=Summary.from_json(data["sink"]) if data.get("sink") else None,
            series=tuple(Sample.from_json(s) for s in data.get("series", [])),
            measurement=Measurement.from_json(data["measurement"]) if data.get("measurement") else None,
            stopped=bool(data.get("stopped", False)),
            delivery=Delivery.from_json(data["delivery"]) if data.get("delivery") else None,
            hosts=tuple(HostEntry.from_json(h) for h in data.get("hosts") or []),
            generators=tuple(SenderResult.from_json(g) for g in data.get("generators") or []),
            failure=str(data.get("failure") or ""),
            pushback=tuple(DomainPushback.from_json(row) for row in data.get("pushback") or []),
            mta=MtaView.from_json(data["mta"]) if data.get("mta") else None,
            redirect=RunRedirect.from_json(data["redirect"]) if data.get("redirect") else None,
        )


MAX_LABEL = 80
"""Characters in a run's label: a note for the runs list, not a document."""


def check_label(text: str) -> str:
    """A run label as given, trimmed: one line of printable text of at most :data:`MAX_LABEL` characters.

    Raises:
        KumotuiError: naming what is wrong (the CLI and the form say whose label it is).
    """
    label = text.strip()
    if any(not char.isprintable() for char in label):
        raise KumotuiError(f"label {label!r}: one line of printable text, without control characters")
    if len(label) > MAX_LABEL:
        raise KumotuiError(f"label: at most {MAX_LABEL} characters, got {len(label)}")
    return label


def new_run(
    config: RunConfig,
    host: HostFacts,
    parameters: Mapping[str, str],
    *,
    profile: str | None = None,
    label: str = "",
    now: datetime | None = None,
) -> RunRecord:
    """A record for a run starting now; add the series and summaries with :func:`dataclasses.replace`."""
    moment = now or datetime.now(UTC)
    return RunRecord(
        id=new_id(moment),
        started=moment.astimezone(UTC).isoformat(timespec="seconds"),
        config=config,
        host=host,
        parameters=dict(parameters),
        profile=profile,
        label=label,
    )


def runs_dir(state_dir: Path) -> Path:
    """Where run records live."""
    return state_dir / "runs"


def save_run(state_dir: Path, run: RunRecord) -> Path:
    """Write a record atomically (its series thinned to the bound); returns its path.

    Raises:
        KumotuiError: the state directory cannot be written.
    """
    bounded = replace(run, series=tuple(thin_series(run.series, MAX_SERIES)))
    path = runs_dir(state_dir) / f"{run.id}.json"
    try:
        require_private_dir(state_dir)
        atomic_write(path, json.dumps(bounded.as_json(), indent=1) + "\n", mode=0o600)
    except OSError as error:
        raise KumotuiError(
            f"cannot save the run record in {path.parent}: {error.strerror} (choose another with --state-dir)"
        ) from None
    except RefusedPath as error:
        raise KumotuiError(f"cannot save the run record: {error}") from None
    return path


def list_runs(state_dir: Path) -> list[RunRecord]:
    """Every saved run, newest last.

    Raises:
        KumotuiError: a record cannot be read, naming the file.
    """
    directory = runs_dir(state_dir)
    for private in (state_dir, directory):
        require_private_dir(private)
    try:
        names = sorted(p.name for p in directory.iterdir() if p.suffix == ".json")
    except OSError:
        return []
    found = []
    for name in names:
        path = directory / name
        try:
            found.append(RunRecord.from_json(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise KumotuiError(f"{path}: unreadable run record ({error})") from None
    return sorted(found, key=lambda r: r.id)


def load_run(state_dir: Path, run_id: str) -> RunRecord:
    """One run by id or unique id prefix.

    Raises:
        KumotuiError: no run or more than one matches, listing the latest ids.
    """
    runs = list_runs(state_dir)
    exact = [r for r in runs if r.id == run_id]
    matches = exact or [r for r in runs if r.id.startswith(run_id)]
    if len(matches) != 1:
        known = ", ".join(r.id for r in runs[-5:]) or "none yet"
        what = "no" if not matches else "more than one"
        raise KumotuiError(f"{what} run matches '{run_id}' (latest: {known})")
    return matches[0]


# --- formatting --------------------------------------------------------------------
