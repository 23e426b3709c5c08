"""What the CLI prints: tables, plans, results and benchmark summaries (text and JSON).

Kept apart from the argument parsing so each command module reads as
"parse, call the core, print"."""

from __future__ import annotations

import sys
from typing import Any

from kumotui.backends.samples import Sample, Summary
from kumotui.bench.published import closest_published, comparability
from kumotui.bench.report import (
    delivery_lines,
    headline,
    published_verdict,
    refused_text,
    sender_lines,
    what_was_measured,
)
from kumotui.bench.run import BenchOutcome
from kumotui.bench.senders import SenderResult
from kumotui.errors import KumotuiError
from kumotui.text.escape import printable
from kumotui.text.format import format_mb_rate, format_ms, format_rate, format_seconds
from kumotui.text.table import table
from kumotui.tuning.apply import DropinState, Outcome
from kumotui.tuning.findings import Finding
from kumotui.tuning.plan import Plan
from kumotui.tuning.rollback import KeyState, RollbackPlan
from kumotui.tuning.values import STATUS_ICON, Status, normalize


def findings_table(findings: list[Finding]) -> str:
    """The check table: key, current, recommended, rule, status, proposed."""
    rows, colours = [], []
    for f in findings:
        status = f"{STATUS_ICON[f.status]} {f.status}"
        current = f.current if f.current is not None else f"({f.error})"
        proposed = f.proposed if f.needs_change and f.proposed is not None else "-"
        rows.append([f.key, current, f.recommended, str(f.rule), status, proposed])
        colours.append([None, None, None, None, STATUS_COLOUR[f.status], None])
    return table(["KEY", "CURRENT", "RECOMMENDED", "RULE", "STATUS", "PROPOSED"], rows, colours)


def confirm(question: str, assume_yes: bool) -> bool:
    """Ask on a terminal; refuse (not hang) when nobody can answer."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise KumotuiError(f"{question} needs confirmation: re-run with --yes (stdin is not a terminal)")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def ask(question: str, answers: dict[str, str], otherwise: str) -> str | None:
    """Ask on a terminal for one of ``answers`` (letter -> meaning); None for no.

    Raises:
        KumotuiError: stdin is not a terminal; ``otherwise`` says which flags answer instead.
    """
    if not sys.stdin.isatty():
        raise KumotuiError(f"{question} needs an answer: {otherwise} (stdin is not a terminal)")
    letters = "/".join([*answers, "N"])
    answer = input(f"{question} [{letters}] ").strip().lower()
    return answers.get(answer[:1]) if answer else None


def print_missing(findings: list[Finding], only: list[str] | None = None) -> None:
    """Say which of the profile's keys this host lacks (or cannot read): they are not applied."""
    lacking = [f for f in findings if f.current is None and (only is None or f.key in only)]
    if lacking:
        names = ", ".join(f"{f.key} ({f.error or f.status})" for f in lacking)
        print(f"note: this host lacks {len(lacking)} of the profile's keys, left out: {names}")


def print_plan(plan: Plan) -> None:
    """The diff, the drop-in as it will be written, and the warnings."""
    if plan.changes:
        print("Runtime changes:")
        for c in plan.changes:
            note = "  (--set)" if c.source == "--set" else ""
            print(f"  {c.key}: {printable(normalize(c.before))} -> {printable(c.after)}{note}")
    else:
        print("Runtime changes: none (every value already passes).")
    if plan.dropin_after is not None:
        state = "unchanged" if not plan.dropin_changed else ("new file" if plan.dropin_before is None else "updated")
        print(f"\nDrop-in {plan.dropin} ({state}):")
        print("".join(f"  {printable(line)}\n" for line in plan.dropin_after.splitlines()), end="")
    for override in plan.overrides:
        print(f"warning: boot precedence: {printable(str(override))}")
    for warning in plan.warnings:
        print(f"warning: {printable(warning)}")


def print_results(outcome: Outcome) -> None:
    """Each key's verified result, then what happened to the drop-in (and its path)."""
    print()
    for r in outcome.results:
        if r.restored and r.ok:
            print(f"↺ {r.key} = {printable(normalize(r.before))}  (restored)")
            continue
        mark = "✔" if r.ok else "✖"
        detail = "verified" if r.ok else r.error
        if r.restored:
            detail = f"{detail}; restored {normalize(r.before)}"
        print(f"{mark} {r.key} = {printable(r.wanted)}  ({printable(str(detail))})")
    if outcome.dropin is not DropinState.UNTOUCHED:
        where = f" {outcome.dropin_path}" if outcome.dropin_path else ""
        print(f"Drop-in{where}: {outcome.dropin}")
    for note in outcome.notes:
        print(printable(note))


def _say(line: str) -> None:
    """Print a line built from journal fields and live values: data, shown through :func:`printable`."""
    print(printable(line))


def print_rollback_plan(plans: list[RollbackPlan]) -> None:
    """What each rollback would restore: live values, and those changed since the apply marked."""
    for plan in plans:
        entry = plan.entry
        state = " (interrupted: restoring the values from before it)" if plan.interrupted else ""
        _say(f"Roll back {entry.id}: {entry.kind} of {entry.profile} on {entry.host}, {entry.time}{state}")
        for key in plan.keys:
            live = normalize(key.live)
            if key.state is KeyState.ALREADY:
                _say(f"  {key.key}: {live} (already as before)")
            elif key.state is KeyState.CHANGED:
                restore = normalize(key.restore)
                _say(f"  {key.key}: {live} (changed since apply; journaled {normalize(key.applied)}) -> {restore}")
            else:
                _say(f"  {key.key}: {live} -> {normalize(key.restore)}")
        if plan.dropin is not None:
            if plan.dropin_state is KeyState.ALREADY:
                _say(f"  drop-in {plan.dropin}: already as before")
            elif plan.dropin_state is KeyState.CHANGED:
                _say(f"  drop-in {plan.dropin}: changed since apply; the rolled-back keys' lines are restored")
            elif entry.dropin is not None and entry.dropin.before is None:
                _say(f"  drop-in {plan.dropin}: removed (there was none before)")
            else:
                _say(f"  drop-in {plan.dropin}: restored to its previous content")


def sink_line(kind: str, sample: Sample) -> dict[str, Any]:
    return {
        "type": kind,
        "elapsed": round(sample.elapsed, 3),
        "received": sample.count,
        "rejected": sample.failed,
        "connections": sample.connections,
        "rate": round(sample.rate, 1) if sample.rate is not None else None,
    }


def summary_json(summary: Summary) -> dict[str, Any]:
    return {
        "count": summary.count,
        "failed": summary.failed,
        "elapsed": round(summary.elapsed, 3),
        "msgs_per_s": round(summary.msgs_per_s, 1),
        "mmh": round(summary.mmh, 4),
        "mb_per_s": round(summary.mb_per_s, 3) if summary.mb_per_s is not None else None,
        "latency_ms": summary.latency_ms,
        "failures": dict(summary.failures),
        "ok": summary.ok,
        "reason": summary.reason,
    }


def outcome_json(outcome: BenchOutcome) -> dict[str, Any]:
    """``bench --json``: how it ended, the steady-state ``window`` and the ``whole_run`` (each with its
    duration), whether it compares with KumoMTA's published figures, then each side's own summary.

    The top-level ``msgs_per_s`` and ``mmh`` are the headline: the window's, or the whole run's
    when the run had no steady state (``rate_basis`` says which). The generator's rate on its own
    clock is under ``generator_clock``; the sink's counters under ``sink``.
    """
    record = outcome.record
    gen = outcome.generator
    doc: dict[str, Any] = {
        "type": "summary",
        "run": record.id,
        "label": record.label,
        "status": str(record.status),
        "backend": record.config.backend,
        "target": outcome.target,
        "through": record.config.through,
    }
    if record.mta is not None:
        doc["mta"] = record.mta.as_json()
    measured = record.measurement
    if measured is not None:
        headline = measured.headline
        doc |= {
            "msgs_per_s": round(headline.msgs_per_s, 1),
            "mmh": round(headline.mmh, 4),
            "rate_basis": "window" if measured.window is not None else "whole_run",
        } | measured.as_json()
        doc["wall_seconds"] = doc["whole_run"]["seconds"]
        doc.pop("role", None)
    reason = comparability(record)
    doc["comparable"] = not reason
    doc["comparability"] = reason
    if not reason and measured is not None:
        doc["published"] = [
            {"setup": r.setup, "study": r.study, "mmh": r.mmh, "percent": round(measured.headline.mmh / r.mmh * 100)}
            for r in closest_published(record.host.cpus)
        ]
    if gen is not None:
        body = summary_json(gen)
        doc["sent"] = body.pop("count")
        doc["failed"] = body.pop("failed")
        doc["failed_by"] = body.pop("failures")
        doc["latency_ms"] = body.pop("latency_ms")
        doc["ok"] = body.pop("ok")
        doc["reason"] = body.pop("reason")
        doc["generator_clock"] = body
    doc["generators"] = [_sender_json(part) for part in record.generators]
    unsent = [part.unsent for part in record.generators]
    doc["unsent"] = sum(u for u in unsent if u is not None) if unsent and None not in unsent else None
    if record.failure:
        doc["failure"] = record.failure
    if record.delivery is not None:
        doc["delivery"] = record.delivery.as_json()
    if record.redirect is not None:
        doc["redirect"] = record.redirect.as_json()
    if outcome.sink is not None:
        sink = summary_json(outcome.sink)
        sink["received"] = sink.pop("count")
        sink["refused"] = sink.pop("failures")
        sink["refused_messages"] = sink.pop("failed")
        doc["sink"] = sink
    if outcome.interrupted:
        doc["interrupted"] = True
    return doc


def _sender_json(part: SenderResult) -> dict[str, Any]:
    """One generator host in ``bench --json``: host, sent, failed, unsent, msgs/s, latency, ok."""
    body = part.as_json()
    body.pop("summary")
    return body


def format_outcome(outcome: BenchOutcome) -> str:
    """The final report for people: what was measured, counts, labelled rates, latency, the sink's
    view, whether it compares with published figures, the run id."""
    record = outcome.record
    gen, sink = outcome.generator, outcome.sink
    lines = [
        f"measured    {printable(what_was_measured(record))}",
        f"status      {record.status}" + (f"  ({printable(record.label)})" if record.label else ""),
    ]
    if gen is not None:
        lines += [
            f"sent        {gen.count:,}",
            f"failed      {gen.failed:,}"
            + (f"  ({', '.join(f'{printable(k)} {v:,}' for k, v in gen.failures.items())})" if gen.failures else ""),
        ]
    per_host = [printable(line) for line in sender_lines(record)]  # host names and errors came from hosts
    lines += [f"            {line}" if i else f"per host    {line}" for i, line in enumerate(per_host)]
    if record.failure:
        lines.append(f"failed      {printable(record.failure)}")
    lines += [f"            {line}" if i else f"rate        {line}" for i, line in enumerate(headline(record))]
    if gen is not None:
        lines.append(
            f"            generator's own clock: {format_seconds(gen.elapsed)}, {format_rate(gen.msgs_per_s)} msgs/s"
            + (f", {format_mb_rate(gen.mb_per_s)} MB/s" if gen.mb_per_s is not None else "")
        )
        lat = gen.latency_ms
        if lat:
            lines.append("latency     " + "  ".join(f"{k} {format_ms(v)} ms" for k, v in lat.items()))
        if not gen.ok:
            lines.append(f"not ok      {printable(str(gen.reason))}")
    if sink is not None:
        refused = refused_text(sink.failures)
        lines.append(f"sink        received {sink.count:,}; refused: {refused}")
    lines += [f"{label:<12}{text}" for label, text in delivery_lines(record)]
    lines.append(f"published   {published_verdict(record)}")
    if outcome.interrupted:
        lines.append("interrupted: the counts above are partial")
    lines.append(f"run         {record.id}  (kumotui report {record.id})")
    return "\n".join(lines)


STATUS_COLOUR = {
    Status.OK: "green",
    Status.BELOW: "red",
    Status.ABOVE: "red",
    Status.DIFFERS: "red",
    Status.MISSING: "yellow",
    Status.UNREADABLE: "yellow",
}
