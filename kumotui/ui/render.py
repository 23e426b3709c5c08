"""Pure renderers: plans, outcomes, journal entries and runs as Textual ``Content``.

No widget state and no I/O: screens and dialogs show what these build, and
tests check them directly."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content

from kumotui.bench.records import RunRecord
from kumotui.bench.report import (
    compare_figures,
    headline,
    not_compared,
    not_like_for_like,
    parameter_differences,
    published_verdict,
    redirect_text,
    refused_text,
    setup_differences,
    what_was_measured,
    window_mmh,
    window_rate,
)
from kumotui.text.escape import printable
from kumotui.text.format import DASH, format_count, format_mmh, format_ms, format_rate, format_seconds, format_size
from kumotui.tuning.apply import Outcome
from kumotui.tuning.catalog import mode_change
from kumotui.tuning.journal import EntryKind, EntryStatus
from kumotui.tuning.plan import Plan
from kumotui.tuning.profiles import Profile
from kumotui.tuning.rollback import EntryView, KeyState, RollbackPlan
from kumotui.tuning.values import normalize, takes_away


def _markup(template: str, **values: object) -> Content:
    """``Content.from_markup`` with every substituted value shown through :func:`printable`.

    The values are data (journal fields, kernel values, host names, file
    lines): markup in them is already inert, and control characters are
    escaped here, so nothing read from a host reaches the terminal raw.
    """
    return Content.from_markup(template, **{name: printable(str(value), keep="") for name, value in values.items()})


def _key_width(keys: Sequence[str]) -> int:
    return min(max((len(k) for k in keys), default=0), 34)


def render_preview(plan: Plan, profile: Profile | None = None) -> Content:
    """What apply will do: runtime changes, the drop-in as written, boot warnings.

    A change that takes capacity away from the current value (a smaller
    number, a narrower range) is marked, whoever proposed it.
    """
    parts: list[Content] = []
    if plan.changes:
        width = _key_width([c.key for c in plan.changes])
        parts.append(_markup(f"[b]Runtime[/b] [$text-muted]({len(plan.changes)} written now, each read back)[/]"))
        for change in plan.changes:
            param = profile.param(change.key) if profile else None
            mode = mode_change(change.key, change.before, change.after)
            lowers = mode is None and param is not None and takes_away(param.rule, change.before, change.after)
            line = _markup(
                "  $key  [$text-muted]$before →[/] [$text-accent b]$after[/]",
                key=change.key.ljust(width),
                before=normalize(change.before),
                after=change.after,
            )
            if mode is not None:
                line += _markup("  [$text-muted]$mode[/]", mode=mode)
            elif lowers:
                line += _markup("  [$text-warning]⚠ takes away from the current value[/]")
            parts.append(line)
    else:
        parts.append(_markup("[b]Runtime[/b] [$text-muted]nothing to write: values already match[/]"))
    # Warnings come before the file text: at 80x24 they must be visible
    # without scrolling, right above the key that confirms.
    if plan.overrides:
        parts.append(Content(""))
        parts.append(_markup("[$text-warning b]⚠ At boot another file wins:[/]"))
        for override in plan.overrides:
            parts.append(_markup("  [$text-warning]$o[/]", o=str(override)))
    if plan.warnings:
        parts.append(Content(""))
        for warning in plan.warnings:
            parts.append(_markup("[$text-warning b]⚠[/] [$text-warning]$w[/]", w=warning))
    parts.append(Content(""))
    if plan.dropin_after is None:
        parts.append(_markup("[b]At boot[/b] [$text-muted]not persisted[/]"))
    elif not plan.dropin_changed:
        parts.append(_markup("[b]Drop-in[/b] $path [$text-muted](already up to date)[/]", path=str(plan.dropin)))
    else:
        what = "new file" if plan.dropin_before is None else "replaces the current file"
        parts.append(_markup("[b]Drop-in[/b] $path [$text-muted]($what)[/]", path=str(plan.dropin), what=what))
        for text in plan.dropin_after.rstrip("\n").splitlines():
            style = "$text-muted" if text.startswith("#") or not text else "$text"
            parts.append(_markup(f"  [{style}]$text[/]", text=text))
    return Content("\n").join(parts)


def render_outcome(outcome: Outcome, error: str | None = None) -> Content:
    """Each key's verified result, the drop-in, and how to undo."""
    parts: list[Content] = []
    if error:
        parts.append(_markup("[$text-error b]✖ $e[/]", e=error))
        parts.append(Content(""))
    elif outcome.ok:
        entry = outcome.entry
        undo = " (r rolls it back)" if entry.kind is EntryKind.APPLY and (entry.changes or entry.dropin) else ""
        parts.append(
            _markup(f"[$text-success b]✔ Done[/] [$text-muted]journal entry $id{undo}[/]", id=outcome.entry.id)
        )
        parts.append(Content(""))
    width = _key_width([r.key for r in outcome.results])

    def shown(value: str | None) -> str:
        return normalize(value) if value is not None else "(unreadable)"

    value_width = max((len(shown(r.read_back)) for r in outcome.results if r.ok), default=0)
    for result in outcome.results:
        read_back = shown(result.read_back)
        if result.restored and result.ok:
            parts.append(
                _markup(
                    "[$text-warning]↺[/] $key  $value  [$text-muted]restored[/]",
                    key=result.key.ljust(width),
                    value=normalize(result.before).ljust(value_width),
                )
            )
        elif result.ok:
            parts.append(
                _markup(
                    "[$text-success]✔[/] $key  $value  [$text-muted]read back, as written[/]",
                    key=result.key.ljust(width),
                    value=read_back.ljust(value_width),
                )
            )
        else:
            parts.append(
                _markup(
                    "[$text-error b]✖[/] $key  [$text-error]$why[/]",
                    key=result.key.ljust(width),
                    why=(result.error or f"kept {read_back}")
                    + (f"; restored {normalize(result.before)}" if result.restored else ""),
                )
            )
    dropin = {
        "written": "written",
        "removed": "removed (there was none before)",
        "restored": "restored",
        "unchanged": "unchanged",
        "untouched": "not touched",
    }.get(outcome.dropin, outcome.dropin)
    path = outcome.dropin_path or "drop-in"
    parts.append(Content(""))
    parts.append(_markup("[$text-muted]$path $d[/]", path=path, d=dropin))
    for override in outcome.overrides:
        parts.append(_markup("[$text-warning b]⚠[/] [$text-warning]$o[/]", o=str(override)))
    for note in outcome.notes:
        parts.append(_markup("[$text-muted]$n[/]", n=note))
    return Content("\n").join(parts)


def entry_label(view: EntryView) -> Content:
    """One line per journal entry: when, what, how many keys, and its state."""
    entry = view.entry
    when = entry.time.replace("T", " ")[:19]
    keys = f"{len(entry.changes)} key{'s' if len(entry.changes) != 1 else ''}"
    if view.rolled_back_by:
        state = "rolled back"
    elif view.interrupted:
        state = "interrupted" if entry.status is EntryStatus.PENDING else "not restored"
    elif entry.kind is EntryKind.ROLLBACK:
        state = f"undid {entry.target}" if entry.target else "rollback"
    else:
        state = entry.status
    return _markup(
        "$when  [b]$kind[/b]  $profile  $keys  [$text-muted]$state[/]",
        when=when,
        kind=entry.kind.ljust(8),
        profile=entry.profile,
        keys=keys,
        state=state,
    )


def render_entry(view: EntryView) -> Content:
    """What rolling back an entry would restore, from its journal record."""
    entry = view.entry
    parts = [_markup("[b]$id[/b] [$text-muted]on $host[/]", id=entry.id, host=entry.host)]
    if entry.error:
        parts.append(_markup("[$text-warning]$e[/]", e=entry.error))
    if view.interrupted and view.can_roll_back:
        parts.append(
            _markup(
                "[$text-warning b]⚠ This apply did not finish: the host may be half-applied.[/] "
                "[$text-muted]Enter restores the values from before it (those written so far).[/]"
            )
        )
    elif not view.can_roll_back:
        parts.append(_markup("[$text-muted]Cannot roll back: $why.[/]", why=view.why_not))
    else:
        parts.append(_markup("[$text-muted]Enter restores these values:[/]"))
    width = min(max((len(c.key) for c in entry.changes), default=0), 34)
    for change in entry.changes:
        parts.append(
            _markup(
                "  $key  [$text-muted]$after →[/] [$text-accent b]$before[/]",
                key=change.key.ljust(width),
                after=normalize(change.after),
                before=normalize(change.before),
            )
        )
    if entry.dropin is not None:
        action = "removed" if entry.dropin.before is None else "restored to its previous content"
        parts.append(_markup("  drop-in $path $action", path=entry.dropin.path, action=action))
    return Content("\n").join(parts)


def render_rollback_plan(plans: Sequence[RollbackPlan], *, newest_first: bool = False) -> Content:
    """The second confirmation: live values against the journal, and newer applies in the way.

    A key changed since the apply reads ``900000 (changed since apply) → 65530``.
    """
    parts: list[Content] = []
    first = plans[0]
    if first.newer and not newest_first:
        ids = ", ".join(e.id for e in first.newer)
        parts.append(
            _markup(
                "[$text-warning b]⚠ Newer applies of these keys are still in place: $ids.[/]\n"
                "[$text-muted]Rolling back newest first keeps runtime and drop-in consistent: "
                "n rolls back $ids, then $id; Enter rolls back $id alone.[/]",
                ids=ids,
                id=first.entry.id,
            )
        )
        parts.append(Content(""))
    for plan in plans:
        parts.append(_markup("[b]Roll back $id[/b] [$text-muted]on $host[/]", id=plan.entry.id, host=plan.entry.host))
        width = _key_width([k.key for k in plan.keys])
        for key in plan.keys:
            live = normalize(key.live)
            if key.state is KeyState.CHANGED:
                line = _markup(
                    "  $key  [$text-warning b]$live (changed since apply)[/] [$text-muted]→[/] "
                    "[$text-accent b]$restore[/]",
                    key=key.key.ljust(width),
                    live=live,
                    restore=normalize(key.restore),
                )
            elif key.state is KeyState.ALREADY:
                line = _markup("  $key  $live [$text-muted](already as before)[/]", key=key.key.ljust(width), live=live)
            else:
                line = _markup(
                    "  $key  [$text-muted]$live →[/] [$text-accent b]$restore[/]",
                    key=key.key.ljust(width),
                    live=live,
                    restore=normalize(key.restore),
                )
            parts.append(line)
        if plan.dropin is not None and plan.dropin_state is KeyState.CHANGED:
            parts.append(
                _markup(
                    "  [$text-warning]drop-in $path changed since apply:[/] [$text-muted]only the rolled-back "
                    "keys' lines change[/]",
                    path=str(plan.dropin),
                )
            )
    if any(p.changed or p.dropin_changed for p in plans):
        parts.append(Content(""))
        parts.append(
            _markup(
                "[$text-warning b]Some values changed since the apply.[/] [$text-muted]Enter restores them "
                "anyway; k keeps them (runtime and drop-in) and restores the rest; Esc goes back.[/]"
            )
        )
    return Content("\n").join(parts)


def run_cells(run: RunRecord, mark: str = "") -> dict[str, str]:
    """One run as the table shows it; ``mark`` is ``A`` or ``B`` when picked for comparison.

    Rates are the steady-state window's (the whole run's when it had none), as everywhere else.
    """
    gen, config = run.generator, run.config
    started = run.started.replace("T", " ")[5:16]
    return {
        "started": f"{mark or ' '} {started}",
        "status": str(run.status),
        "label": printable(run.label),
        "backend": run.backend,
        "body": format_size(config.body_size) if config.body_size else DASH,
        "conc": format_count(config.concurrency),
        "wall": format_seconds(run.measurement.whole_run.seconds) if run.measurement else DASH,
        "sent": format_count(gen.count) if gen else DASH,
        "failed": format_count(gen.failed) if gen else DASH,
        "rate": format_rate(window_rate(run)),
        "mmh": format_mmh(window_mmh(run)),
        "p99": format_ms(gen.latency_p99_ms) if gen else DASH,
    }


def render_run(run: RunRecord) -> Content:
    """One run's details: configuration, results of both sides, and KumoMTA's figures for scale."""
    config, gen, sink = run.config, run.generator, run.sink
    lines = [
        _markup(
            "[b]$id[/b]$label [$text-muted]on $host · $backend → $target[/]",
            id=run.id,
            label=f" ({run.label})" if run.label else "",
            host=run.host.hostname,
            backend=run.backend,
            target=config.target,
        )
    ]
    amount = []
    if config.messages is not None:
        amount.append(f"{config.messages:,} messages")
    if config.duration is not None:
        amount.append(f"{config.duration:g} s")
    size = format_size(config.body_size) if config.body_size is not None else "?"
    lines.append(
        Content(f"{' or '.join(amount) or 'default length'} · {size} bodies · {config.concurrency or '?'} connections")
    )
    lines.append(_markup("[$text-muted]$what · $status[/]", what=what_was_measured(run), status=str(run.status)))
    if gen is not None:
        lines.append(
            _markup(
                "sent [b]$sent[/b] · failed $failed · p50 $p50 · p99 $p99 ms",
                sent=format_count(gen.count),
                failed=format_count(gen.failed),
                p50=format_ms(gen.latency_p50_ms),
                p99=format_ms(gen.latency_p99_ms),
            )
        )
    lines += [_markup("$line", line=line) for line in headline(run)]
    if gen is not None and not gen.ok and gen.reason:
        lines.append(_markup("[$text-warning]not ok: $reason[/]", reason=gen.reason))
    if sink is not None:
        refused = refused_text(sink.failures)
        lines.append(
            _markup("sink received $count · refused: $refused", count=format_count(sink.count), refused=refused)
        )
    if run.redirect is not None:
        lines.append(_markup("port 25 redirected $text", text=redirect_text(run.redirect)))
    lines.append(_markup("[$text-muted]$verdict[/]", verdict=published_verdict(run)))
    lines.append(_markup("[$text-muted]space picks it for a comparison · e exports its report[/]"))
    return Content("\n").join(lines)


COMPACT_SKIP = frozenset({"Generator MB/s", "Latency p90 (ms)", "Latency max (ms)", "Sink MMH"})
"""Figures left out of a narrow comparison, so the parameters that differed fit 80x24 (the report has them all)."""


def render_comparison(before: RunRecord, after: RunRecord, *, compact: bool = False) -> Content:
    """Two runs side by side: the result figures with their change, then the parameters that differed."""
    setup = setup_differences(before, after)
    rows = [row for row in compare_figures(before, after) if not (compact and row[0] in COMPACT_SKIP)]
    label_w = max(len("Result"), *(len(label) for label, _, _, _ in rows))
    a_w = max(len("A"), *(len(a) for _, a, _, _ in rows))
    b_w = max(len("B"), *(len(b) for _, _, b, _ in rows))
    header = f"{'Result':<{label_w}}  {'A':>{a_w}}  {'B':>{b_w}}  Change"
    lines = [
        _markup("[b]A[/b] $a", a=run_title(before)),
        _markup("[b]B[/b] $b", b=run_title(after)),
    ]
    lines.append(_markup("[b]Setup that differed[/b]"))
    if not setup:
        lines.append(_markup("[$text-muted]none: like for like[/]"))
    setup_w = max((len(label) for label, _, _ in setup), default=0)
    for label, a, b in setup:
        lines.append(
            _markup("$label  $a [$text-muted]→[/] [$text-accent b]$b[/]", label=label.ljust(setup_w), a=a, b=b)
        )
    for warning in (not_like_for_like(before, after), not_compared(before, after)):
        if warning:
            lines.append(_markup("[$text-warning]$warning[/]", warning=warning))
    lines.append(Content(header).stylize("bold"))
    for label, a, b, change in rows:
        style = "$text-success" if "better" in change else "$text-error" if "worse" in change else "$text-muted"
        lines.append(
            _markup(
                f"$label  $a  $b  [{style}]$change[/]",
                label=label.ljust(label_w),
                a=a.rjust(a_w),
                b=b.rjust(b_w),
                change=change,
            )
        )
    if not compact:
        lines.append(Content(""))
    lines.append(_markup("[b]Kernel parameters that differed[/b]"))
    differences = parameter_differences(before, after)
    if not differences:
        lines.append(_markup("[$text-muted]none: both started with the same recorded values[/]"))
    key_w = max((len(key) for key, _, _ in differences), default=0)
    for key, a_value, b_value in differences:
        lines.append(
            _markup(
                "$key  $a [$text-muted]→[/] [$text-accent b]$b[/]",
                key=key.ljust(key_w),
                a=a_value if a_value is not None else "(not recorded)",
                b=b_value if b_value is not None else "(not recorded)",
            )
        )
    return Content("\n").join(lines)


def run_title(run: RunRecord) -> str:
    """``20260314-091500-0000 · 03-14 09:15 · builtin · before tuning``: which run a column is."""
    parts = [run.id, run.started.replace("T", " ")[5:16], run.backend]
    if run.label:
        parts.append(run.label)
    return " · ".join(parts)
