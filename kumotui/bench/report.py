"""Run reports: the ``runs`` listing and the Markdown (or HTML, with charts) of one run or two compared.

Every figure says what it is: the steady-state window leads, the whole run
(wall time) beside it, and a run too short to compare is marked so. Two runs
are compared setup first: any difference in backend, MTA, message size,
concurrency, amount, workers or host makes them "not like for like", and the
kernel parameters that differed come after. KumoMTA's published figures are
set against a run only where :func:`~kumotui.bench.published.comparability` allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from html import escape
from pathlib import Path

from kumotui.backends.samples import Summary
from kumotui.bench.backpressure import DomainPushback
from kumotui.bench.charts import chart_svg, overlay_charts, run_charts
from kumotui.bench.delivery import Delivery
from kumotui.bench.measure import Rate
from kumotui.bench.published import (
    PLANNING_GUIDANCE,
    PUBLISHED_RESULTS,
    PUBLISHED_STUDIES,
    closest_published,
    comparability,
    versus_published,
)
from kumotui.bench.records import HostEntry, RunRecord, RunRedirect, RunStatus
from kumotui.errors import KumotuiError
from kumotui.hosts.local import atomic_write
from kumotui.text.format import (
    DASH,
    format_bytes,
    format_count,
    format_mb_rate,
    format_mmh,
    format_ms,
    format_percent,
    format_rate,
    format_seconds,
    format_size,
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


def what_was_measured(run: RunRecord) -> str:
    """The path the messages took, in words: what the run's numbers are numbers of."""
    if run.config.through and run.config.sink_metrics:
        return (
            f"{run.backend} generator → MTA under test {run.config.through} → running sink {run.config.target} "
            f"(counted from {run.config.sink_metrics}/metrics)"
        )
    if run.config.through:
        return f"{run.backend} generator → MTA under test {run.config.through} → sink"
    return f"{run.backend} generator → sink {run.config.target}, no MTA in the path (a calibration of the harness)"


def headline(run: RunRecord) -> list[str]:
    """The run's rates as lines, each labelled: window first, whole run beside it, the verdict on length."""
    measured = run.measurement
    if measured is None:
        gen = run.generator
        return [f"Rate over the generator's own clock: {format_rate(gen.msgs_per_s)} msgs/s"] if gen else []
    lines = []
    window = measured.window
    if window is not None:
        lines.append(
            f"Steady state ({format_seconds(measured.window_start)} to {format_seconds(measured.window_end)}, "
            f"after a {measured.warmup:g} s warm-up): {format_rate(window.msgs_per_s)} msgs/s = "
            f"{format_mmh(window.mmh)} MMH"
        )
    whole = measured.whole_run
    lines.append(
        f"Whole run: {format_count(whole.messages)} messages in {format_seconds(whole.seconds)} of wall time = "
        f"{format_rate(whole.msgs_per_s)} msgs/s"
    )
    if measured.too_short:
        lines.append(measured.too_short.capitalize() + "; not compared with anything.")
    return lines


def published_verdict(run: RunRecord) -> str:
    """One line on KumoMTA's published figures: the run set against the closest ones where
    :func:`~kumotui.bench.published.comparability` allows, else why it cannot be."""
    reason = comparability(run)
    if reason:
        return reason
    mmh_value = window_mmh(run) or 0.0
    return (
        f"your MTA relayed {format_mmh(mmh_value)} MMH on {run.host.cpus} CPUs: "
        f"{versus_published(mmh_value, run.host.cpus)}."
    )


def refused_text(failures: Mapping[str, int]) -> str:
    """A sink's refusal counters in words (``rejected mail 3, aborted 1``), or ``none``."""
    return ", ".join(f"{kind.replace('_', ' ')} {count:,}" for kind, count in failures.items()) or "none"


def redirect_text(redirect: RunRedirect) -> str:
    """A run's port-25 redirect in one line: the rule, the firewall, and whether it was removed."""
    end = "removed when the run ended" if redirect.removed else f"NOT removed ({redirect.error or 'unknown'})"
    return f"on {redirect.host}: {redirect.rule}; {end}"


def delivery_lines(run: RunRecord) -> list[tuple[str, str]]:
    """A run through an MTA, as label and text: the redirect, the probe, the accounting, latency, the drain,
    and the MTA's own figures at the end (when it publishes any)."""
    delivery, redirect, mta = run.delivery, run.redirect, run.mta
    if delivery is None:
        return []
    lines = [("redirect", redirect_text(redirect))] if redirect is not None else []
    probe = delivery.probe
    if probe is not None:
        lines.append(
            ("probe", f"{probe.arrived} of {probe.sent} routing probes reached the sink in {probe.seconds:.1f} s")
        )
        if probe.mta_banner:
            lines.append(("mta", f"{probe.mta_kind}: {probe.mta_banner}"))
    accounting = (
        f"injected {delivery.injected:,} · delivered {delivery.delivered:,} · lost {delivery.lost:,}"
        f" · duplicated {delivery.duplicated:,}"
    )
    if delivery.unexpected:
        accounting += f" · delivered though not counted as injected {delivery.unexpected:,}"
    lines.append(("delivery", accounting))
    if delivery.lost_ids:
        more = " …" if delivery.lost > len(delivery.lost_ids) else ""
        lines.append(("lost ids", ", ".join(delivery.lost_ids) + more))
    if delivery.per_message:
        lat = delivery.latency_ms
        figures = "  ".join(f"{k} {format_ms(lat.get(k))} ms" for k in ("p50", "p95", "p99", "max"))
        lines.append(("end to end", f"{figures}  ({delivery.clock})"))
    else:
        lines.append(("accounting", delivery.clock))
    if delivery.deferred or delivery.bounced:
        lines.append(("backpressure", drained(delivery)))
    lines.append(("drain", f"{format_seconds(delivery.drain_seconds)} after the generator ended"))
    if mta is not None:
        kind = f"{mta.kind} {mta.version}".strip()
        lines.append(("mta's view", f"{kind} at the end: {mta.error or mta.text()}"))
    return lines


def drained(delivery: Delivery) -> str:
    """How the MTA's retries drained a Smart Sink's deferrals, and what it had to give up."""
    waiting = delivery.deferred - delivery.deferred_delivered
    text = (
        f"{format_count(delivery.deferred)} messages deferred at the sink ({format_count(delivery.deferrals)} 4xx"
        f" answers) · {format_count(delivery.deferred_delivered)} later delivered by the MTA's retries"
    )
    if waiting > 0:
        text += f" · {format_count(waiting)} never got through"
    if delivery.bounced:
        text += f" · {format_count(delivery.bounced)} bounced (5xx: the MTA gives them up; not lost)"
    return text


def pushback_rows(rows: Sequence[DomainPushback]) -> list[tuple[str, str, str, str, str]]:
    """The backpressure a Smart Sink applied, one row per domain: answers, deferred and bounced shares, codes."""
    return [
        (
            row.domain,
            format_count(row.attempts),
            f"{format_count(row.deferred)} ({format_percent(row.share(row.deferred))})",
            f"{format_count(row.bounced)} ({format_percent(row.share(row.bounced))})",
            ", ".join(f"{code} x{format_count(count)}" for code, count in row.codes.items()) or "-",
        )
        for row in rows
    ]


def window_mmh(run: RunRecord) -> float | None:
    """The run's headline MMH: its window's, else the generator's own."""
    if run.measurement is not None:
        return run.measurement.headline.mmh
    return run.generator.mmh if run.generator else None


def window_rate(run: RunRecord) -> float | None:
    """The run's headline msgs/s: its window's, else the generator's own."""
    if run.measurement is not None:
        return run.measurement.headline.msgs_per_s
    return run.generator.msgs_per_s if run.generator else None


def format_runs_table(runs: Sequence[RunRecord]) -> str:
    """The ``kumotui runs`` listing: one line per run, oldest first."""
    if not runs:
        return "No runs yet."
    rows = []
    for run in runs:
        gen = run.generator
        config = run.config
        rows.append(
            [
                run.id,
                run.started.replace("T", " ").replace("+00:00", "Z"),
                run.backend,
                run.host.hostname,
                format_size(config.body_size) if config.body_size else DASH,
                format_count(config.concurrency),
                format_seconds(run.measurement.whole_run.seconds) if run.measurement else DASH,
                format_count(gen.count) if gen else DASH,
                format_rate(window_rate(run)),
                format_mmh(window_mmh(run)),
                format_ms(gen.latency_p99_ms) if gen else DASH,
                str(run.status),
                run.label,
            ]
        )
    headers = [
        "ID",
        "STARTED",
        "BACKEND",
        "HOST",
        "BODY",
        "CONC",
        "WALL",
        "SENT",
        "MSGS/S",
        "MMH",
        "P99 MS",
        "STATUS",
        "LABEL",
    ]
    return table(headers, rows) + "\nMSGS/S and MMH are over the steady-state window (see `kumotui report RUN`)."


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
    """Label and value for each result figure of one side (its own clock)."""
    s = summary
    return [
        ("Messages", format_count(s.count) if s else DASH),
        ("Failed", format_count(s.failed) if s else DASH),
        ("Elapsed (own clock)", format_seconds(s.elapsed) if s else DASH),
        ("Rate, own clock (msgs/s)", format_rate(s.msgs_per_s) if s else DASH),
        ("MB/s", format_mb_rate(s.mb_per_s) if s else DASH),
        ("Latency p50 (ms)", format_ms(s.latency_p50_ms) if s else DASH),
        ("Latency p90 (ms)", format_ms(s.latency_p90_ms) if s else DASH),
        ("Latency p95 (ms)", format_ms(s.latency_p95_ms) if s else DASH),
        ("Latency p99 (ms)", format_ms(s.latency_p99_ms) if s else DASH),
        ("Latency max (ms)", format_ms(s.latency_max_ms) if s else DASH),
        ("Status", _status(s)),
    ]


SETUP_THAT_MATTERS = (
    "Backend",
    "MTA under test",
    "Body size",
    "Concurrency",
    "Messages",
    "Duration",
    "Workers",
    "Sink workers",
    "Host",
    "CPUs",
)
"""Setup rows that, when they differ, make two runs "not like for like"."""


def setup_rows(run: RunRecord) -> list[tuple[str, str]]:
    """What a run was asked to do and where it ran, as label and value."""
    config, host = run.config, run.host
    return [
        ("Backend", config.backend),
        ("MTA under test", config.through or "none (generator → sink)"),
        ("Body size", f"{config.body_size:,} bytes" if config.body_size is not None else DASH),
        ("Concurrency", format_count(config.concurrency)),
        ("Messages", format_count(config.messages)),
        ("Duration", format_seconds(config.duration)),
        ("Workers", format_count(config.workers)),
        ("Sink workers", format_count(config.sink_workers)),
        ("Host", host.hostname),
        ("CPUs", str(host.cpus)),
        ("Memory", format_bytes(host.memory_bytes)),
        ("Kernel", host.kernel),
        ("Target", config.target),
    ]


def setup_differences(before: RunRecord, after: RunRecord) -> list[tuple[str, str, str]]:
    """The setup rows that differ between two runs (label, A, B), in the order :func:`setup_rows` gives."""
    return [(label, a, b) for (label, a), (_, b) in zip(setup_rows(before), setup_rows(after), strict=True) if a != b]


def not_like_for_like(before: RunRecord, after: RunRecord) -> str:
    """Why two runs' difference is not the kernel's alone, in one line; empty when only the kernel differed."""
    differing = [label for label, _, _ in setup_differences(before, after) if label in SETUP_THAT_MATTERS]
    if not differing:
        return ""
    return f"Not like for like: {', '.join(differing)} differ, so the change is not the kernel's alone."


def not_compared(before: RunRecord, after: RunRecord) -> str:
    """Why the two runs' rates are not set against each other (a run too short, or stopped); empty when they are."""
    reasons = []
    for name, run in (("A", before), ("B", after)):
        if run.status is RunStatus.TOO_SHORT:
            reasons.append(f"{name} is too short")
        elif run.status is RunStatus.STOPPED:
            reasons.append(f"{name} was stopped early")
    return ("Rates not compared: " + ", ".join(reasons) + ".") if reasons else ""


def _title(run: RunRecord) -> str:
    return f"{run.id} ({run.label})" if run.label else run.id


def report_markdown(run: RunRecord, other: RunRecord | None = None) -> str:
    """The ``kumotui report`` Markdown: one run, or two compared (``run`` before ``other``)."""
    lines = _comparison(run, other) if other is not None else _single(run)
    lines += ["", *_published_section([r for r in (run, other) if r is not None])]
    return "\n".join(lines).rstrip() + "\n"


def _single(run: RunRecord) -> list[str]:
    lines = [f"# kumotui benchmark run {_title(run)}", ""]
    lines += [f"Started {run.started} on {run.host.hostname}: {what_was_measured(run)}. Status: {run.status}.", ""]
    lines += ["## Headline", "", *(f"- {line}" for line in headline(run))]
    if run.delivery is not None:
        lines += ["", "## Through the MTA under test", ""]
        lines += _md_table(["", "Value"], delivery_lines(run), align="ll")
        if run.redirect is not None:
            lines += ["", "The redirect was written with:", "", *(f"    {cmd}" for cmd in run.redirect.commands)]
    if run.pushback:
        lines += ["", "## Backpressure applied by the sink (responses file, per recipient domain)", ""]
        lines += _md_table(
            ["Domain", "Answers", "Deferred (4xx)", "Bounced (5xx)", "Codes"], pushback_rows(run.pushback)
        )
    lines += ["", "## Results (each side's own count and clock)", ""]
    gen_rows, sink_rows = _summary_rows(run.generator), _summary_rows(run.sink)
    rows = [(label, g, s) for (label, g), (_, s) in zip(gen_rows, sink_rows, strict=True)]
    lines += _md_table(["", "Generator", "Sink"], rows)
    if run.failure:
        lines += ["", f"Failed: {run.failure}."]
    senders = sender_lines(run)
    if senders:
        lines += ["", "## Generator hosts", "", *(f"- {line}" for line in senders)]
    lines += ["", "## Setup", "", *_md_table(["Setting", "Value"], setup_rows(run), align="ll")]
    if run.hosts:
        lines += ["", "## Hosts", "", *_md_table(["Host", "Roles", "CPUs", "Memory", "Kernel"], host_rows(run))]
    if len(run.hosts) > 1:
        lines += ["", "## Kernel parameters at start, by host", ""]
        by_host = [(e.name, k, v) for e in run.hosts for k, v in sorted(e.parameters.items())]
        return lines + (_md_table(["Host", "Parameter", "Value"], by_host, align="lll") or ["Not recorded."])
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
    ("generator", "msgs_per_s", "Generator rate, own clock (msgs/s)", True),
    ("generator", "mb_per_s", "Generator MB/s", True),
    ("generator", "latency_p50_ms", "Latency p50 (ms)", False),
    ("generator", "latency_p90_ms", "Latency p90 (ms)", False),
    ("generator", "latency_p95_ms", "Latency p95 (ms)", False),
    ("generator", "latency_p99_ms", "Latency p99 (ms)", False),
    ("generator", "latency_max_ms", "Latency max (ms)", False),
    ("sink", "msgs_per_s", "Sink rate, own clock (msgs/s)", True),
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


def _matching(entry: HostEntry, others: Sequence[HostEntry], alone: bool) -> HostEntry | None:
    """The other run's entry for the same host: by name, else by hostname, else the only one of each."""
    for found in (
        [o for o in others if o.name == entry.name],
        [o for o in others if o.facts.hostname == entry.facts.hostname],
    ):
        if len(found) == 1:
            return found[0]
    return others[0] if alone and len(others) == 1 else None


def host_parameter_differences(before: RunRecord, after: RunRecord) -> list[tuple[str, str, str | None, str | None]]:
    """(host, key, A, B) for every kernel value that differed at start on the same host of both runs.

    A host is matched by its name, then its hostname (records from before
    per-host entries kept one host under its hostname). A host in only one
    run shows each of its values against ``None``.
    """
    a_hosts, b_hosts = before.host_entries(), after.host_entries()
    alone = len(a_hosts) == 1 == len(b_hosts)
    rows: list[tuple[str, str, str | None, str | None]] = []
    seen: list[HostEntry] = []
    for entry in a_hosts:
        other = _matching(entry, b_hosts, alone)
        if other is not None:
            seen.append(other)
        theirs = other.parameters if other is not None else {}
        for key in sorted(set(entry.parameters) | set(theirs)):
            if entry.parameters.get(key) != theirs.get(key):
                rows.append((entry.name, key, entry.parameters.get(key), theirs.get(key)))
    for entry in b_hosts:
        if entry not in seen:
            rows += [(entry.name, key, None, value) for key, value in sorted(entry.parameters.items())]
    return rows


def hosts_that_differed(before: RunRecord, after: RunRecord) -> list[str]:
    """The hosts whose kernel values at start differed between two runs, each named once, in order."""
    names: list[str] = []
    for name, _key, _a, _b in host_parameter_differences(before, after):
        if name not in names:
            names.append(name)
    return names


def host_rows(run: RunRecord) -> list[tuple[str, str, str, str, str]]:
    """Each host of a run: name, roles, CPUs, memory and kernel."""
    return [
        (e.name, ", ".join(e.roles), str(e.facts.cpus), format_bytes(e.facts.memory_bytes), e.facts.kernel)
        for e in run.host_entries()
    ]


def compare_figures(before: RunRecord, after: RunRecord) -> list[tuple[str, str, str, str]]:
    """Label, A, B and the change for every result figure either run has, then failures and status.

    The window leads; a change is given only when both runs can be compared
    (neither too short nor stopped). The report's results table and the
    app's side-by-side view are built from these rows.
    """
    compared = not not_compared(before, after)

    def change(a: float | None, b: float | None, higher: bool) -> str:
        return _change(a, b, higher) if compared else "not compared"

    a_window, b_window = _window(before), _window(after)
    rows = [
        (
            "Window rate (msgs/s)",
            format_rate(a_window.msgs_per_s if a_window else None),
            format_rate(b_window.msgs_per_s if b_window else None),
            change(a_window.msgs_per_s if a_window else None, b_window.msgs_per_s if b_window else None, True),
        ),
        (
            "Window MMH",
            format_mmh(a_window.mmh if a_window else None),
            format_mmh(b_window.mmh if b_window else None),
            change(a_window.mmh if a_window else None, b_window.mmh if b_window else None, True),
        ),
        (
            "Whole run (msgs/s, wall time)",
            format_rate(before.measurement.whole_run.msgs_per_s if before.measurement else None),
            format_rate(after.measurement.whole_run.msgs_per_s if after.measurement else None),
            "",
        ),
    ]
    for role, name, label, higher in _COMPARED:
        a, b = _figure(before, role, name), _figure(after, role, name)
        if a is None and b is None:
            continue
        rows.append((label, _format_figure(name, a), _format_figure(name, b), change(a, b, higher)))
    rows.append(("Failed (generator)", format_count(_failed(before)), format_count(_failed(after)), ""))
    rows += _delivery_rows(before.delivery, after.delivery, change)
    rows.append(("Status", str(before.status), str(after.status), ""))
    return rows


def _delivery_rows(
    a: Delivery | None, b: Delivery | None, change: Callable[[float | None, float | None, bool], str]
) -> list[tuple[str, str, str, str]]:
    """Through an MTA: lost and duplicated messages and end-to-end latency, side by side."""
    if a is None and b is None:
        return []
    rows = [
        ("Lost (through the MTA)", format_count(a.lost if a else None), format_count(b.lost if b else None), ""),
        ("Duplicated", format_count(a.duplicated if a else None), format_count(b.duplicated if b else None), ""),
    ]
    for key in ("p50", "p99"):
        x = a.latency_ms.get(key) if a else None
        y = b.latency_ms.get(key) if b else None
        rows.append((f"End-to-end {key} (ms)", format_ms(x), format_ms(y), change(x, y, False)))
    return rows


def _window(run: RunRecord) -> Rate | None:
    return run.measurement.window if run.measurement is not None else None


def _comparison(before: RunRecord, after: RunRecord) -> list[str]:
    lines = [f"# kumotui benchmark comparison: {_title(before)} vs {_title(after)}", ""]
    lines += [f"A: {_title(before)}, started {before.started}: {what_was_measured(before)}.", ""]
    lines += [f"B: {_title(after)}, started {after.started}: {what_was_measured(after)}.", ""]
    lines += ["## Setup", ""]
    differing = setup_differences(before, after)
    if differing:
        lines += _md_table(["Setting", "A", "B"], differing, align="lll")
    else:
        lines.append("Same setup: backend, MTA, message size, concurrency, amount, workers and host.")
    verdict = not_like_for_like(before, after)
    if verdict:
        lines += ["", f"**{verdict}**"]
    lines += ["", "## Results", ""]
    reason = not_compared(before, after)
    if reason:
        lines += [reason, ""]
    lines += _md_table(["", "A", "B", "Change"], compare_figures(before, after))
    if len(before.host_entries()) > 1 or len(after.host_entries()) > 1:
        return lines + _host_differences(before, after)
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
    return lines


def _host_differences(before: RunRecord, after: RunRecord) -> list[str]:
    """The comparison's parameter section for runs on several hosts: which host's values differed, and how."""
    lines = ["", "## Kernel parameters that differed, by host", ""]
    differed = hosts_that_differed(before, after)
    if not differed:
        return [*lines, "None: every host started both runs with the same recorded values."]
    lines += [f"Hosts whose parameters differed: {', '.join(differed)}.", ""]
    shown = [
        (host, key, a if a is not None else "(not recorded)", b if b is not None else "(not recorded)")
        for host, key, a, b in host_parameter_differences(before, after)
    ]
    return lines + _md_table(["Host", "Parameter", "A", "B"], shown, align="llll")


def _failed(run: RunRecord) -> int | None:
    return run.generator.failed if run.generator else None


def _published_section(runs: Sequence[RunRecord]) -> list[str]:
    """KumoMTA's figures beside each run that can be set against them; the reason for each that cannot."""
    lines = ["## KumoMTA's published figures", ""]
    comparable = []
    for run in runs:
        reason = comparability(run)
        if reason:
            lines.append(f"- {_title(run)}: {reason}")
            continue
        comparable.append(run)
        lines.append(f"- {_title(run)}: {published_verdict(run)}")
    if not comparable:
        return lines
    cpus = comparable[0].host.cpus
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


def sender_lines(record: RunRecord) -> list[str]:
    """One line per generator host (only when there were several): its counts, its rate, its p99, or why it has none."""
    if len(record.generators) < 2:
        return []
    lines = []
    for part in record.generators:
        summary = part.summary
        if summary is None:
            lines.append(f"{part.host}: no summary: {part.error}")
            continue
        unsent = f", {part.unsent:,} unsent" if part.unsent else ""
        p99 = summary.latency_p99_ms
        lines.append(
            f"{part.host}: {summary.count:,} sent, {summary.failed:,} failed{unsent}, "
            f"{format_rate(summary.msgs_per_s)} msgs/s" + (f", p99 {format_ms(p99)} ms" if p99 is not None else "")
        )
    return lines


# --- HTML ----------------------------------------------------------------------------------

HTML_STYLE = """
body { font-family: sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
td.r, th.r { text-align: right; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; }
"""
"""The report's only styling: readable tables, the charts side by side where they fit."""


def report_html(run: RunRecord, other: RunRecord | None = None) -> str:
    """The report as one self-contained HTML page: the Markdown report's content, and its charts as SVG.

    For people who will not open a terminal: the same sections and figures
    as :func:`report_markdown` (the page is made from it, so the two never
    disagree), and before them the run's msgs/s and latency over time (two
    runs: their curves on the same axes), drawn by
    :func:`~kumotui.bench.charts.chart_svg`.
    """
    lines = report_markdown(run, other).splitlines()
    if other is None:
        received = "delivered" if run.config.through else "received"
        charts = run_charts(run.series, delivered_name=received)
    else:
        charts = overlay_charts(run.series, other.series)
    figures = [
        f"<figure>{chart_svg(chart)}</figure>"
        if not chart.empty
        else f"<p>{escape(chart.title)}: no readings saved.</p>"
        for chart in charts
    ]
    first_section = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    title = escape(lines[0].lstrip("# ")) if lines else "kumotui report"
    body = [
        *_markdown_html(lines[:first_section]),
        "<h2>Over time</h2>",
        *figures,
        *_markdown_html(lines[first_section:]),
    ]
    head = f'<meta charset="utf-8"><title>{title}</title><style>{HTML_STYLE}</style>'
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>{head}</head>\n<body>\n' + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _inline(text: str) -> str:
    """Escaped text with the report's inline Markdown (``**bold**``, ``` `code` ```) as HTML."""
    html = escape(text)
    html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", html)


def _cells(row: str) -> list[str]:
    """A Markdown table row's cells (``\\|`` inside a cell kept as ``|``)."""
    cells = re.split(r"(?<!\\)\|", row.strip().strip("|"))
    return [cell.strip().replace("\\|", "|") for cell in cells]


def _markdown_html(lines: Sequence[str]) -> list[str]:
    """The Markdown the report writes (headings, bullets, tables, paragraphs) as HTML, nothing more."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("| "):
            rows = []
            while index < len(lines) and lines[index].startswith("| "):
                rows.append(lines[index])
                index += 1
            out += _table_html(rows)
            continue
        elif line.startswith("- "):
            items = []
            while index < len(lines) and lines[index].startswith("- "):
                items.append(f"<li>{_inline(lines[index][2:])}</li>")
                index += 1
            out += ["<ul>", *items, "</ul>"]
            continue
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        index += 1
    return out


RIGHT = ' class="r"'


def _table_html(rows: Sequence[str]) -> list[str]:
    """A Markdown table (header, rule, rows) as an HTML table, right-aligned where the rule says."""
    header, rule, *body = rows
    right = [cell.endswith(":") for cell in _cells(rule)]

    def row(cells: list[str], tag: str) -> str:
        shown = [f"<{tag}{RIGHT if right[i] else ''}>{_inline(c)}</{tag}>" for i, c in enumerate(cells)]
        return "<tr>" + "".join(shown) + "</tr>"

    return ["<table>", row(_cells(header), "th"), *(row(_cells(r), "td") for r in body), "</table>"]
