"""Run reports: the ``runs`` listing and the Markdown of one run or two compared."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from kumotui.backends.samples import Summary
from kumotui.bench.published import (
    PLANNING_GUIDANCE,
    PUBLISHED_BODY_SIZE,
    PUBLISHED_RESULTS,
    PUBLISHED_STUDIES,
    closest_published,
    versus_published,
)
from kumotui.bench.records import RunConfig, RunRecord
from kumotui.errors import KumotuiError
from kumotui.hosts import HostFacts
from kumotui.hosts.local import atomic_write
from kumotui.text.format import (
    DASH,
    format_bytes,
    format_count,
    format_mb_rate,
    format_mmh,
    format_ms,
    format_rate,
    format_seconds,
)
from kumotui.text.table import table

REPORTS_DIR = "reports"
"""Where reports go under the state dir, unless the operator names another file."""


def reports_dir(state_dir: Path) -> Path:
    """The state dir's reports folder: the guide's report and the export dialog's default."""
    return state_dir / REPORTS_DIR


def export_report(path: Path, text: str) -> Path:
    """Write a report where the operator asked, atomically; the absolute path written.

    Raises:
        KumotuiError: naming the path and the reason (a missing or read-only
            directory, a directory given as the file, a link).
    """
    target = path.expanduser().absolute()
    if target.is_dir():
        raise KumotuiError(f"{target} is a directory; name a file in it, e.g. {target / 'report.md'}")
    try:
        atomic_write(target, text, private=False)
    except OSError as error:
        raise KumotuiError(f"cannot write {target}: {error.strerror or error}") from None
    return target


def _status(summary: Summary | None) -> str:
    if summary is None:
        return DASH
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
                format_count(gen.count) if gen else DASH,
                format_rate(gen.msgs_per_s) if gen else DASH,
                format_mmh(gen.mmh) if gen else DASH,
                format_ms(gen.latency_p99_ms) if gen else DASH,
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
        ("Messages", format_count(s.count) if s else DASH),
        ("Failed", format_count(s.failed) if s else DASH),
        ("Elapsed", format_seconds(s.elapsed) if s else DASH),
        ("Rate (msgs/s)", format_rate(s.msgs_per_s) if s else DASH),
        ("MMH", format_mmh(s.mmh) if s else DASH),
        ("MB/s", format_mb_rate(s.mb_per_s) if s else DASH),
        ("Latency p50 (ms)", format_ms(s.latency_p50_ms) if s else DASH),
        ("Latency p90 (ms)", format_ms(s.latency_p90_ms) if s else DASH),
        ("Latency p95 (ms)", format_ms(s.latency_p95_ms) if s else DASH),
        ("Latency p99 (ms)", format_ms(s.latency_p99_ms) if s else DASH),
        ("Latency max (ms)", format_ms(s.latency_max_ms) if s else DASH),
        ("Status", _status(s)),
    ]


def _config_rows(config: RunConfig) -> list[tuple[str, str]]:
    return [
        ("Backend", config.backend),
        ("Target", config.target),
        ("Concurrency", format_count(config.concurrency)),
        ("Messages", format_count(config.messages)),
        ("Duration", format_seconds(config.duration)),
        ("Body size", f"{config.body_size:,} bytes" if config.body_size is not None else DASH),
    ]


def _host_rows(host: HostFacts) -> list[tuple[str, str]]:
    return [
        ("Hostname", host.hostname),
        ("Kernel", host.kernel),
        ("CPUs", str(host.cpus)),
        ("Memory", format_bytes(host.memory_bytes)),
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
        return DASH
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
        return format_mmh(value)
    if name.startswith("latency"):
        return format_ms(value)
    if name == "mb_per_s":
        return format_mb_rate(value)
    return format_rate(value)


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
    rows.append(("Failed (generator)", format_count(_failed(before)), format_count(_failed(after)), ""))
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


def _published_section(runs: Sequence[RunRecord]) -> list[str]:
    lines = ["## Published figures for context", ""]
    for run in runs:
        gen = run.generator
        if gen is not None:
            lines.append(
                f"- {_title(run)}: {format_mmh(gen.mmh)} MMH from the generator on {run.host.cpus} CPUs "
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
