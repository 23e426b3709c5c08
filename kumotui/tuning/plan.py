"""From findings (and explicit ``--set`` values) to a plan validated as a whole.

A plan is what the user accepted: each change, its value now and the value
to write, and the drop-in as it will be persisted. Nothing is written here;
:mod:`kumotui.tuning.apply` carries a plan out."""

from __future__ import annotations

import shlex
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kumotui.tuning.dropin import Override, dropin_values, overrides, render_dropin
from kumotui.tuning.findings import Finding
from kumotui.tuning.profiles import Profile, is_valid_key
from kumotui.tuning.target import Target
from kumotui.tuning.validate import ValidationError, check_value
from kumotui.tuning.values import Status, normalize, same_value


@dataclass(frozen=True)
class Change:
    """One accepted change: a key, its value now, and the value to write."""

    key: str
    before: str
    after: str
    source: str = "profile"
    """``profile`` or ``--set``."""
    warnings: tuple[str, ...] = ()
    lowers_target: bool = False


@dataclass(frozen=True)
class Plan:
    """The validated set of changes, and the drop-in as it will be written."""

    profile: str
    changes: tuple[Change, ...]
    dropin: Path
    dropin_before: str | None
    dropin_after: str | None
    """None when not persisting."""
    overrides: tuple[Override, ...] = ()
    dropin_mode: int | None = None
    """The drop-in's permission bits before (None: no drop-in yet), journaled so a rollback restores them."""

    @property
    def dropin_changed(self) -> bool:
        """Whether persisting would change the drop-in's settings."""
        if self.dropin_after is None:
            return False
        return dropin_values(self.dropin_before, self.dropin) != dropin_values(self.dropin_after, self.dropin)

    @property
    def empty(self) -> bool:
        """Nothing to write at runtime nor to the drop-in."""
        return not self.changes and not self.dropin_changed

    @property
    def warnings(self) -> list[str]:
        """Advice from validation (parity, lowering) across all changes."""
        return [w for c in self.changes for w in c.warnings]

    @property
    def needs_confirmation(self) -> bool:
        """Some change goes below the profile's recommendation."""
        return any(c.lowers_target for c in self.changes)


def parse_sets(items: Iterable[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` items; a malformed one, or a key that is not a sysctl name, names itself.

    The key is checked here, before anything reads it: ``kernel.//.//.etc`` is
    ``kernel/../../etc`` once translated, a path, not a name.
    """
    sets: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--set {item!r}: expected KEY=VALUE, e.g. --set net.core.somaxconn=4096")
        if not is_valid_key(key.strip()):
            raise ValidationError(
                f"--set {key.strip()!r}: not a sysctl name; a key is dot-separated names of letters, digits "
                "and _ - / : @ +, each starting with a letter, digit or _, e.g. net.core.somaxconn"
            )
        sets[key.strip()] = value.strip() if "\n" not in value else value
    return sets


def make_plan(
    profile: Profile,
    findings: list[Finding],
    target: Target,
    *,
    only: Iterable[str] | None = None,
    sets: dict[str, str] | None = None,
    excluded: Iterable[str] = (),
    persist: bool = True,
) -> Plan:
    """Turn findings (plus explicit values) into a validated plan.

    Findings that need a change are taken unless excluded or outside
    ``only``; ``sets`` add or replace values for any key. Every value is
    validated before this returns; all problems are reported together.

    Raises:
        ValidationError: listing every refused value.
    """
    sets = dict(sets or {})
    only_keys = set(only) if only is not None else None
    unknown = (only_keys or set()) - {f.key for f in findings}
    if unknown:
        raise ValidationError(f"--only names keys not in profile {profile.name}: {', '.join(sorted(unknown))}")

    wanted: dict[str, tuple[str, str, str]] = {}  # key -> (before, after, source)
    by_key = {f.key: f for f in findings}
    for f in findings:
        if f.key in excluded or (only_keys is not None and f.key not in only_keys):
            continue
        if f.needs_change and f.current is not None and f.proposed is not None:
            wanted[f.key] = (f.current, f.proposed, "profile")

    errors: list[str] = []
    for key, value in sets.items():
        finding = by_key.get(key)
        current = finding.current if finding else None
        if current is None:
            reading = target.tree.read(key)
            if reading.value is None:
                errors.append(f"{key}: cannot be set: {reading.error}")
                continue
            current = reading.value
        wanted[key] = (current, value, "--set")

    changes: list[Change] = []
    for key, (before, after, source) in wanted.items():
        try:
            checked = check_value(key, after, target.tree, profile.param(key), current=before)
        except ValidationError as error:
            errors.append(str(error))
            continue
        if same_value(before, checked.value):
            continue
        lowers = checked.lowers_target and source == "--set"
        changes.append(Change(key, before, checked.value, source, checked.warnings, lowers))
    if errors:
        raise ValidationError("; ".join(errors) + ". Nothing was changed.")

    existing = target.read_dropin()
    before_text = existing.text if existing else None
    after_text = None
    found: tuple[Override, ...] = ()
    if persist:
        values = dropin_values(before_text, target.dropin)
        values.update((c.key, c.after) for c in changes)
        if values:
            after_text = render_dropin(
                values,
                profile.name,
                now=target.clock(),
                host=target.tree.facts().hostname,
                reasons=reasons(profile, changes, values),
            )
            if before_text is not None and dropin_values(before_text, target.dropin) == values:
                after_text = before_text  # idempotent: same settings, same file
            found = tuple(overrides(target.host, target.dropin, values, target.system_root))
    return Plan(
        profile.name, tuple(changes), target.dropin, before_text, after_text, found, existing.mode if existing else None
    )


def reasons(profile: Profile, changes: Iterable[Change], keys: Iterable[str]) -> dict[str, str]:
    """Why each key of a drop-in (or an export) has its value, in one line each.

    The profile's own ``why`` and rule for its keys; a value typed by the
    operator says so (and what the profile would have had); a key that is
    only in the existing drop-in was kept from it.
    """
    typed = {c.key for c in changes if c.source == "--set"}
    found: dict[str, str] = {}
    for key in keys:
        param = profile.param(key)
        rule = f"{profile.name}: {param.rule} {param.value}" if param else None
        if key in typed:
            found[key] = "set by hand" + (f" (the profile says {rule})" if rule else "")
        elif param is not None:
            found[key] = f"{param.why} ({rule})" if param.why else f"({rule})"
        else:
            found[key] = "kept from the existing drop-in (not in the profile)"
    return found


def manual_steps(plan: Plan, target: Target) -> str:
    """The exact commands and file content for someone to run by hand.

    Shown when kumotui may not write (not root and no ``sudo -n``). Every
    argument is shell-quoted and file content is given to ``printf`` one
    quoted line per argument (:func:`print_file_command`), never in a
    heredoc whose end marker data could write, so the text can be pasted as
    it is whatever the values hold. A simulated tree gets commands that write
    into the tree, never the real kernel.
    """
    lines = ["# Runtime values (take effect now):"]
    for c in plan.changes:
        if target.tree.simulated:
            lines.append(print_file_command(c.after + "\n", target.tree.path(c.key)))
        else:
            lines.append(f"sudo sysctl -w {shlex.quote(f'{c.key}={c.after}')}")
    if plan.dropin_after is not None and plan.dropin_changed:
        path = shlex.quote(str(plan.dropin))
        lines += [
            "",
            f"# Persist across reboots: write {path}",
            print_file_command(plan.dropin_after, plan.dropin),
            f"sudo chmod 0644 -- {path}",
        ]
    return "\n".join(lines) + "\n"


def print_file_command(text: str, path: Path) -> str:
    """Shell text writing exactly ``text`` to ``path``: ``printf '%s\\n' 'line' ... | sudo tee -- PATH``.

    Each line of ``text`` is one ``shlex.quote``d argument of a fixed
    format, so quotes, ``$``, backquotes, ``%`` and would-be heredoc end
    markers stay data. Several lines are shown one argument per line
    (joined by ``\\``), so the file reads as itself; a last line without a
    newline gets its own ``printf '%s'``.

    Raises:
        ValueError: ``text`` holds a NUL, which no command argument can carry
            (validated values never do).
    """
    if "\0" in text:
        raise ValueError("a NUL character cannot be passed to a shell command")
    lines = text.split("\n")
    last = lines.pop()  # "" when the text ends with a newline
    quoted = [shlex.quote(line) for line in lines]
    parts = []
    if len(quoted) == 1:
        parts.append(f"printf '%s\\n' {quoted[0]}")
    elif quoted:
        parts.append("printf '%s\\n' \\\n  " + " \\\n  ".join(quoted))
    if last or not parts:
        parts.append(f"printf '%s' {shlex.quote(last)}")
    printed = parts[0] if len(parts) == 1 else "{ " + "; ".join(parts) + "; }"
    return f"{printed} | sudo tee -- {shlex.quote(str(path))} > /dev/null"


@dataclass(frozen=True)
class PlanRow:
    """One parameter as the tuning screen shows it: a finding plus what the operator's plan does with it."""

    finding: Finding
    write: str | None
    """The value apply would write, or None when it would leave the key alone."""
    included: bool = True
    """False when the user took a needed change out of the plan."""
    edited: bool = False
    """The value to write was typed by the user rather than proposed."""

    @property
    def key(self) -> str:
        """The sysctl key, also the row's key in the table."""
        return self.finding.key

    @property
    def has_change(self) -> bool:
        """Whether there is a change the user could include or exclude."""
        return self.write is not None

    @property
    def rank(self) -> int:
        """Sort order: problems and changes first, then unreadable keys, then passing ones."""
        if self.finding.current is None:
            return 1
        if self.has_change or self.finding.status is not Status.OK:
            return 0
        return 2


def plan_rows(findings: Iterable[Finding], edits: Mapping[str, str], excluded: Collection[str]) -> list[PlanRow]:
    """Every finding with what the plan would do to it, in profile order (the tuning screen's rows).

    The same choice :func:`make_plan` makes: a value the operator typed, else
    the profile's proposal when the parameter needs a change; nothing when
    that equals the current value. :func:`make_plan` validates and builds the
    real plan from the same edits and exclusions.
    """
    rows = []
    for finding in findings:
        typed = edits.get(finding.key)
        write = typed if typed is not None else (finding.proposed if finding.needs_change else None)
        if write is not None and (finding.current is None or normalize(write) == normalize(finding.current)):
            write = None
        rows.append(PlanRow(finding, write, finding.key not in excluded, typed is not None))
    return rows
