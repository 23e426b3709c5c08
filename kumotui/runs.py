"""Run records: every benchmark kept, listed, compared and reported.

A record holds what is needed to judge a result later and to compare it
with another (before vs after tuning): the configuration, the backend, the
host's facts, the kernel parameters' values at the start, a bounded
per-second series and both sides' summaries. Records are JSON files under
``<state_dir>/runs/<id>.json`` on the machine running kumotui, written
atomically.

KumoMTA's published figures live here too (:data:`PUBLISHED_RESULTS`), so
the report and the UI put "your MMH" next to the same numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kumotui.errors import KumotuiError
from kumotui.hosts import HostFacts, LocalHost
from kumotui.journal import new_id
from kumotui.samples import Sample, Summary, thin_series
from kumotui.textfmt import table

RECORD_VERSION = 1
MAX_SERIES = 3600
"""Samples kept per role: an hour at one per second; longer runs are thinned evenly."""


# --- published figures -------------------------------------------------------


@dataclass(frozen=True)
class PublishedResult:
    """One result KumoMTA published, for "your MMH vs published" comparisons."""

    study: str
    """Key into :data:`PUBLISHED_STUDIES`."""
    software: str
    """``KumoMTA`` or ``Postfix``."""
    setup: str
    """The machine as published (instance type or sender size)."""
    cpus: int
    memory_gb: int
    mmh: float


PUBLISHED_BODY_SIZE = 100_000
"""Every published figure used 100 KB messages."""
PUBLISHED_STUDIES = {
    "seed": "KumoMTA performance docs: 100 KB messages x 100,000, AWS sender vs. an 8 CPU / 16 GB sink",
    "2023-07": "July 2023, 100 KB messages, KumoMTA vs. Postfix on the same AWS instance",
}
PUBLISHED_RESULTS: tuple[PublishedResult, ...] = (
    PublishedResult("seed", "KumoMTA", "2 CPU / 4 GB sender", 2, 4, 2.7),
    PublishedResult("seed", "KumoMTA", "4 CPU / 16 GB sender", 4, 16, 4.4),
    PublishedResult("seed", "KumoMTA", "8 CPU / 30 GB sender", 8, 30, 4.9),
    PublishedResult("seed", "KumoMTA", "16 CPU / 64 GB sender", 16, 64, 5.1),
    PublishedResult("2023-07", "KumoMTA", "c5.2xlarge", 8, 16, 4.034),
    PublishedResult("2023-07", "KumoMTA", "c5.4xlarge", 16, 32, 4.434),
    PublishedResult("2023-07", "KumoMTA", "c5a.8xlarge", 32, 64, 5.096),
    PublishedResult("2023-07", "KumoMTA", "c6g.16xlarge", 64, 128, 6.086),
    PublishedResult("2023-07", "KumoMTA", "c5.24xlarge", 96, 192, 6.831),
    PublishedResult("2023-07", "Postfix", "c5.2xlarge", 8, 16, 0.15),
    PublishedResult("2023-07", "Postfix", "c5.4xlarge", 16, 32, 0.22),
    PublishedResult("2023-07", "Postfix", "c5a.8xlarge", 32, 64, 0.30),
    PublishedResult("2023-07", "Postfix", "c6g.16xlarge", 64, 128, 0.41),
    PublishedResult("2023-07", "Postfix", "c5.24xlarge", 96, 192, 0.50),
)
PLANNING_GUIDANCE = (
    "KumoMTA's architecture docs suggest planning 4-6 MMH per node, "
    "with 16 cores / 32 GB as a starting point and 10 Gbps networking."
)


def closest_published(cpus: int, software: str = "KumoMTA") -> list[PublishedResult]:
    """Per study, the published result whose CPU count is closest to ``cpus`` (a tie: the smaller machine)."""
    best: dict[str, PublishedResult] = {}
    for result in PUBLISHED_RESULTS:
        if result.software != software:
            continue
        current = best.get(result.study)
        if current is None or abs(result.cpus - cpus) < abs(current.cpus - cpus):
            best[result.study] = result
    return list(best.values())


# --- records -------------------------------------------------------------------


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

    @property
    def backend(self) -> str:
        """The backend that ran (from the configuration)."""
        return self.config.backend

    @property
    def ok(self) -> bool:
        """Whether every summary present says the run went as asked."""
        summaries = [s for s in (self.generator, self.sink) if s is not None]
        return bool(summaries) and all(s.ok for s in summaries)

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
            host=HostFacts(
                hostname=str(host["hostname"]),
                kernel=str(host["kernel"]),
                cpus=int(host["cpus"]),
                memory_bytes=int(host["memory_bytes"]),
            ),
            parameters={str(k): str(v) for k, v in data.get("parameters", {}).items()},
            generator=Summary.from_json(data["generator"]) if data.get("generator") else None,
            sink=Summary.from_json(data["sink"]) if data.get("sink") else None,
            series=tuple(Sample.from_json(s) for s in data.get("series", [])),
        )


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
        LocalHost().replace_file(path, json.dumps(bounded.as_json(), indent=1) + "\n", mode=0o600)
    except OSError as error:
        raise KumotuiError(
            f"cannot save the run record in {path.parent}: {error.strerror} (choose another with --state-dir)"
        ) from None
    return path


def list_runs(state_dir: Path) -> list[RunRecord]:
    """Every saved run, newest last.

    Raises:
        KumotuiError: a record cannot be read, naming the file.
    """
    directory = runs_dir(state_dir)
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

_DASH = "–"


def _int(value: int | None) -> str:
    return f"{value:,}" if value is not None else _DASH


def _rate(value: float | None) -> str:
    if value is None:
        return _DASH
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _mmh(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else _DASH


def _ms(value: float | None) -> str:
    if value is None:
        return _DASH
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    return f"{value:,.1f} s" if value is not None else _DASH


def _memory(value: int) -> str:
    return f"{value / 2**30:.1f} GiB"


def _status(summary: Summary | None) -> str:
    if summary is None:
        return _DASH
    return "ok" if summary.ok else f"not ok: {summary.reason}" if summary.reason else "not ok"


def format_runs_table(runs: Sequence[RunRecord]) -> str:
    """The ``kumotui runs`` listing: one line per run, oldest first."""
    if not runs:
        return "No runs yet."
    rows = []
    for run in runs:
        gen = run.generator
        rows.append(
            [
                run.id,
                run.started.replace("T", " ").replace("+00:00", "Z"),
                run.backend,
                run.host.hostname,
                run.config.target,
                _int(gen.count) if gen else _DASH,
                _rate(gen.msgs_per_s) if gen else _DASH,
                _mmh(gen.mmh) if gen else _DASH,
                _ms(gen.latency_p99_ms) if gen else _DASH,
                "ok" if run.ok else "not ok",
                run.label,
            ]
        )
    headers = ["ID", "STARTED", "BACKEND", "HOST", "TARGET", "SENT", "MSGS/S", "MMH", "P99 MS", "STATUS", "LABEL"]
    return table(headers, rows)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[str]], align: str = "") -> list[str]:
    aligns = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in aligns]
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _summary_rows(summary: Summary | None) -> list[tuple[str, str]]:
    """Label and value for each result figure of one side."""
    s = summary
    return [
        ("Messages", _int(s.count) if s else _DASH),
        ("Failed", _int(s.failed) if s else _DASH),
        ("Elapsed", _seconds(s.elapsed) if s else _DASH),
        ("Rate (msgs/s)", _rate(s.msgs_per_s) if s else _DASH),
        ("MMH", _mmh(s.mmh) if s else _DASH),
        ("MB/s", f"{s.mb_per_s:,.1f}" if s and s.mb_per_s is not None else _DASH),
        ("Latency p50 (ms)", _ms(s.latency_p50_ms) if s else _DASH),
        ("Latency p90 (ms)", _ms(s.latency_p90_ms) if s else _DASH),
        ("Latency p95 (ms)", _ms(s.latency_p95_ms) if s else _DASH),
        ("Latency p99 (ms)", _ms(s.latency_p99_ms) if s else _DASH),
        ("Latency max (ms)", _ms(s.latency_max_ms) if s else _DASH),
        ("Status", _status(s)),
    ]


def _config_rows(config: RunConfig) -> list[tuple[str, str]]:
    return [
        ("Backend", config.backend),
        ("Target", config.target),
        ("Concurrency", _int(config.concurrency)),
        ("Messages", _int(config.messages)),
        ("Duration", _seconds(config.duration)),
        ("Body size", f"{config.body_size:,} bytes" if config.body_size is not None else _DASH),
    ]


def _host_rows(host: HostFacts) -> list[tuple[str, str]]:
    return [
        ("Hostname", host.hostname),
        ("Kernel", host.kernel),
        ("CPUs", str(host.cpus)),
        ("Memory", _memory(host.memory_bytes)),
    ]


def _title(run: RunRecord) -> str:
    return f"{run.id} ({run.label})" if run.label else run.id


def report_markdown(run: RunRecord, other: RunRecord | None = None) -> str:
    """The ``kumotui report`` Markdown: one run, or two compared (``run`` before ``other``)."""
    lines = _comparison(run, other) if other is not None else _single(run)
    lines += ["", *_published_section([r for r in (run, other) if r is not None])]
    return "\n".join(lines).rstrip() + "\n"


def _single(run: RunRecord) -> list[str]:
    lines = [f"# kumotui benchmark run {_title(run)}", ""]
    lines += [f"Started {run.started} on {run.host.hostname} with the {run.backend} backend.", ""]
    lines += ["## Results", ""]
    gen_rows, sink_rows = _summary_rows(run.generator), _summary_rows(run.sink)
    rows = [(label, g, s) for (label, g), (_, s) in zip(gen_rows, sink_rows, strict=True)]
    lines += _md_table(["", "Generator", "Sink"], rows)
    lines += ["", "## Configuration", "", *_md_table(["Setting", "Value"], _config_rows(run.config), align="ll")]
    lines += ["", "## Host", "", *_md_table(["Fact", "Value"], _host_rows(run.host), align="ll")]
    lines += ["", "## Kernel parameters at start", ""]
    if run.parameters:
        lines += _md_table(["Parameter", "Value"], sorted(run.parameters.items()), align="ll")
    else:
        lines.append("Not recorded.")
    return lines


def _change(before: float | None, after: float | None, higher_is_better: bool) -> str:
    """``+12.3% (better)``; a dash when either side is missing or the base is zero."""
    if before is None or after is None or before == 0:
        return _DASH
    percent = (after - before) / before * 100
    if abs(percent) < 0.05:
        return "0.0%"
    better = (percent > 0) == higher_is_better
    return f"{percent:+.1f}% ({'better' if better else 'worse'})"


_COMPARED: tuple[tuple[str, str, str, bool], ...] = (
    ("generator", "msgs_per_s", "Generator rate (msgs/s)", True),
    ("generator", "mmh", "Generator MMH", True),
    ("generator", "mb_per_s", "Generator MB/s", True),
    ("generator", "latency_p50_ms", "Latency p50 (ms)", False),
    ("generator", "latency_p90_ms", "Latency p90 (ms)", False),
    ("generator", "latency_p95_ms", "Latency p95 (ms)", False),
    ("generator", "latency_p99_ms", "Latency p99 (ms)", False),
    ("generator", "latency_max_ms", "Latency max (ms)", False),
    ("sink", "msgs_per_s", "Sink rate (msgs/s)", True),
    ("sink", "mmh", "Sink MMH", True),
)


def _figure(run: RunRecord, role: str, name: str) -> float | None:
    summary = run.generator if role == "generator" else run.sink
    value = getattr(summary, name) if summary is not None else None
    return float(value) if value is not None else None


def _format_figure(name: str, value: float | None) -> str:
    if name == "mmh":
        return _mmh(value)
    if name.startswith("latency"):
        return _ms(value)
    if name == "mb_per_s":
        return f"{value:,.1f}" if value is not None else _DASH
    return _rate(value)


def parameter_differences(before: RunRecord, after: RunRecord) -> list[tuple[str, str | None, str | None]]:
    """Kernel parameters whose start values differ (None: not recorded in that run), by key."""
    keys = sorted(set(before.parameters) | set(after.parameters))
    return [
        (key, before.parameters.get(key), after.parameters.get(key))
        for key in keys
        if before.parameters.get(key) != after.parameters.get(key)
    ]


def compare_figures(before: RunRecord, after: RunRecord) -> list[tuple[str, str, str, str]]:
    """Label, A, B and the change for every result figure either run has, then failures and status.

    The report's results table and the app's side-by-side view are built from these rows.
    """
    rows = []
    for role, name, label, higher in _COMPARED:
        a, b = _figure(before, role, name), _figure(after, role, name)
        if a is None and b is None:
            continue
        rows.append((label, _format_figure(name, a), _format_figure(name, b), _change(a, b, higher)))
    rows.append(("Failed (generator)", _int(_failed(before)), _int(_failed(after)), ""))
    rows.append(("Status", "ok" if before.ok else "not ok", "ok" if after.ok else "not ok", ""))
    return rows


def _comparison(before: RunRecord, after: RunRecord) -> list[str]:
    lines = [f"# kumotui benchmark comparison: {_title(before)} vs {_title(after)}", ""]
    lines += [f"A: {_title(before)}, started {before.started} on {before.host.hostname} ({before.backend}).", ""]
    lines += [f"B: {_title(after)}, started {after.started} on {after.host.hostname} ({after.backend}).", ""]
    lines += ["## Results", ""]
    lines += _md_table(["", "A", "B", "Change"], compare_figures(before, after))
    lines += ["", "## Kernel parameters that differed", ""]
    differences = parameter_differences(before, after)
    if differences:
        shown = [
            (k, a if a is not None else "(not recorded)", b if b is not None else "(not recorded)")
            for k, a, b in differences
        ]
        lines += _md_table(["Parameter", "A", "B"], shown, align="lll")
    else:
        lines.append("None: both runs started with the same recorded values.")
    lines += ["", *_setup_differences(before, after)]
    return lines


def _failed(run: RunRecord) -> int | None:
    return run.generator.failed if run.generator else None


def _setup_differences(before: RunRecord, after: RunRecord) -> list[str]:
    """Configuration and host side by side, with a warning when they are not like for like."""
    lines = ["## Configuration and host", ""]
    rows = [
        (label, a, b, "" if a == b else "differs")
        for (label, a), (_, b) in zip(
            _config_rows(before.config) + _host_rows(before.host),
            _config_rows(after.config) + _host_rows(after.host),
            strict=True,
        )
    ]
    lines += _md_table(["", "A", "B", ""], rows, align="llll")
    differing = [row[0] for row in rows if row[3] and row[0] not in ("Kernel", "Memory")]
    if differing:
        lines += ["", f"Not like for like: {', '.join(differing)} differ, so the change is not the kernel's alone."]
    return lines


def versus_published(mmh_value: float, cpus: int) -> str:
    """``73% of 4.9 MMH (8 CPU / 30 GB sender), 89% of 4.034 MMH (c5.2xlarge)``: a run against
    KumoMTA's closest published results, one per study."""
    parts = [f"{mmh_value / r.mmh * 100:.0f}% of {r.mmh:g} MMH ({r.setup})" for r in closest_published(cpus, "KumoMTA")]
    return ", ".join(parts)


def _published_section(runs: Sequence[RunRecord]) -> list[str]:
    lines = ["## Published figures for context", ""]
    for run in runs:
        gen = run.generator
        if gen is not None:
            lines.append(
                f"- {_title(run)}: {_mmh(gen.mmh)} MMH from the generator on {run.host.cpus} CPUs "
                f"({run.backend} backend): {versus_published(gen.mmh, run.host.cpus)}."
            )
    if any(r.config.body_size not in (None, PUBLISHED_BODY_SIZE) for r in runs):
        lines.append(
            f"- The published figures used {PUBLISHED_BODY_SIZE:,}-byte messages; "
            "other sizes are not directly comparable."
        )
    cpus = runs[0].host.cpus
    nearest = {id(r) for r in closest_published(cpus, "KumoMTA") + closest_published(cpus, "Postfix")}
    for study, title in PUBLISHED_STUDIES.items():
        rows = [
            (r.software, r.setup, f"{r.cpus} / {r.memory_gb} GB", f"{r.mmh:g}", "closest" if id(r) in nearest else "")
            for r in PUBLISHED_RESULTS
            if r.study == study
        ]
        lines += ["", f"{title}:", ""]
        lines += _md_table(["Software", "Machine", "CPUs / RAM", "MMH", f"vs {cpus} CPUs"], rows, align="lllrl")
    lines += ["", PLANNING_GUIDANCE]
    return lines
