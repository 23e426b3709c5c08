"""Plan, validate, journal, write, verify, restore; persist; roll back.

The order matters and is the point of this module: a plan is validated as
a whole before the first write; the journal entry exists before the first
write; every write is read back; and any failure restores every value this
plan already wrote, so a host is never left half-applied without saying so.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kumotui.errors import KumotuiError
from kumotui.findings import Finding
from kumotui.hosts import Host, LocalHost
from kumotui.journal import DropinChange, Entry, Journal, KeyChange, new_id
from kumotui.locations import DROP_IN_NAME
from kumotui.persist import Override, dropin_values, overrides, render_dropin
from kumotui.privilege import Privilege, Writer, detect_privilege, writer_for
from kumotui.profiles import Profile
from kumotui.settings import Settings
from kumotui.sysctl import SysctlTree, describe_errno
from kumotui.validate import ValidationError, check_value
from kumotui.values import normalize, parse_numbers


@dataclass(frozen=True)
class Target:
    """Everything apply and rollback touch on one host."""

    tree: SysctlTree
    dropin: Path
    system_root: Path
    journal: Journal
    read_only: bool = False
    """The user asked never to write (``--read-only``)."""

    @classmethod
    def from_settings(cls, settings: Settings, host: Host | None = None) -> Target:
        """Build the target the settings describe (local host by default)."""
        host = host or LocalHost()
        return cls(
            tree=SysctlTree(settings.sysctl_root, host),
            dropin=settings.sysctl_d / DROP_IN_NAME,
            system_root=settings.system_root,
            journal=Journal(host, settings.state_dir or host.default_state_dir()),
            read_only=settings.read_only,
        )

    @property
    def host(self) -> Host:
        """The machine being changed."""
        return self.tree.host

    def read_dropin(self) -> str | None:
        """The drop-in's current text, or None when there is none."""
        return read_file(self.host, self.dropin)


def read_file(host: Host, path: Path) -> str | None:
    """A file's text on a host, or None when it does not exist."""
    try:
        return host.read_text(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KumotuiError(f"cannot read {path}: {error.strerror}") from None


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
    """``--set KEY=VALUE`` items; a malformed one names itself."""
    sets: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--set {item!r}: expected KEY=VALUE, e.g. --set net.core.somaxconn=4096")
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
        if _same(before, checked.value):
            continue
        lowers = checked.lowers_target and source == "--set"
        changes.append(Change(key, before, checked.value, source, checked.warnings, lowers))
    if errors:
        raise ValidationError("; ".join(errors) + ". Nothing was changed.")

    before_text = target.read_dropin()
    after_text = None
    found: tuple[Override, ...] = ()
    if persist:
        values = dropin_values(before_text, target.dropin)
        values.update((c.key, c.after) for c in changes)
        if values:
            after_text = render_dropin(values, profile.name)
            if before_text is not None and dropin_values(before_text, target.dropin) == values:
                after_text = before_text  # idempotent: same settings, same file
            found = tuple(overrides(target.host, target.dropin, values, target.system_root))
    return Plan(profile.name, tuple(changes), target.dropin, before_text, after_text, found)


def _same(a: str, b: str) -> bool:
    na, nb = parse_numbers(a), parse_numbers(b)
    return na == nb if na is not None and nb is not None else normalize(a) == normalize(b)


@dataclass(frozen=True)
class KeyResult:
    """What happened to one key."""

    key: str
    before: str
    wanted: str
    read_back: str | None
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The result of an apply or rollback."""

    entry: Entry
    results: tuple[KeyResult, ...] = ()
    dropin: str = "untouched"
    """``written``, ``removed``, ``restored``, ``unchanged`` or ``untouched``."""
    overrides: tuple[Override, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every key verified and the journal entry completed."""
        return self.entry.status == "applied"


class ApplyFailed(KumotuiError):
    """A write failed or read back differently; earlier writes were restored."""

    def __init__(self, message: str, outcome: Outcome) -> None:
        super().__init__(message)
        self.outcome = outcome


def apply_plan(plan: Plan, target: Target, *, writer: Writer | None = None) -> Outcome:
    """Journal, write, verify; restore everything on the first failure.

    Raises:
        KumotuiError: read-only access (nothing written).
        ApplyFailed: a write was refused or not kept; the message names the
            key, the value and the kernel's reason, and says what was restored.
    """
    if plan.empty:
        entry = Entry(
            new_id(datetime.now()),
            "apply",
            _now(),
            _hostname(target),
            plan.profile,
            (),
            status="applied",
        )
        return Outcome(
            entry,
            dropin="unchanged",
            notes=["Nothing to change: every value and the drop-in are already as planned."],
        )
    writer = writer or writer_for(detect_privilege(target), target.host)
    dropin = DropinChange(str(plan.dropin), plan.dropin_before, plan.dropin_after) if plan.dropin_changed else None
    pairs = [(c.key, c.before, c.after) for c in plan.changes]
    entry = target.journal.save(
        Entry(
            new_id(datetime.now()),
            "apply",
            _now(),
            _hostname(target),
            plan.profile,
            tuple(KeyChange(*p) for p in pairs),
            dropin,
        )
    )
    return _run(entry, pairs, dropin, target, writer, plan.overrides)


def rollback(target: Target, entry_id: str | None = None, *, writer: Writer | None = None) -> Outcome:
    """Restore the runtime values and the drop-in an apply entry changed.

    Defaults to the latest applied entry not yet rolled back. The rollback
    is itself journaled and verified like an apply.
    """
    entries = target.journal.entries()
    if entry_id is None:
        candidates = [
            e
            for e in entries
            if e.kind == "apply" and e.status == "applied" and e.rolled_back_by is None and (e.changes or e.dropin)
        ]
        if not candidates:
            raise KumotuiError("nothing to roll back: no applied journal entry that is not already rolled back")
        original = candidates[-1]
    else:
        original = target.journal.get(entry_id)
        if original.kind != "apply" or original.status != "applied":
            raise KumotuiError(
                f"entry {original.id} is a {original.kind} with status {original.status}; "
                "only an applied apply can be rolled back"
            )
        if original.rolled_back_by:
            raise KumotuiError(f"entry {original.id} was already rolled back by {original.rolled_back_by}")

    pairs = []
    for change in reversed(original.changes):
        now = target.tree.read(change.key)
        if now.value is None:
            raise KumotuiError(f"{change.key}: cannot read the current value: {now.error}")
        pairs.append((change.key, now.value, change.before))
    dropin = None
    if original.dropin is not None:
        current = read_file(target.host, Path(original.dropin.path))
        dropin = DropinChange(original.dropin.path, current, original.dropin.before)
    writer = writer or writer_for(detect_privilege(target), target.host)
    entry = target.journal.save(
        Entry(
            new_id(datetime.now()),
            "rollback",
            _now(),
            _hostname(target),
            original.profile,
            tuple(KeyChange(*p) for p in pairs),
            dropin,
            target=original.id,
            reload=original.reload,
        )
    )
    outcome = _run(entry, pairs, dropin, target, writer, ())
    target.journal.update(original, rolled_back_by=entry.id)
    return outcome


def persist_file(
    target: Target,
    path: Path,
    text: str,
    label: str,
    *,
    reload: tuple[str, ...] = (),
    writer: Writer | None = None,
) -> Outcome:
    """Write one configuration file (e.g. a systemd drop-in) through the journal.

    The previous content (or its absence) is journaled first, so ``kumotui
    rollback`` restores or removes it exactly like the sysctl drop-in, and
    ``reload`` (e.g. ``systemctl daemon-reload``) runs after either.
    """
    before = read_file(target.host, path)
    if before == text:
        entry = Entry(new_id(datetime.now()), "apply", _now(), _hostname(target), label, (), status="applied")
        return Outcome(entry, dropin="unchanged", notes=[f"{path} already has this content."])
    writer = writer or writer_for(detect_privilege(target), target.host)
    dropin = DropinChange(str(path), before, text)
    entry = target.journal.save(
        Entry(new_id(datetime.now()), "apply", _now(), _hostname(target), label, (), dropin, reload=reload)
    )
    return _run(entry, [], dropin, target, writer, ())


def _run(
    entry: Entry,
    pairs: list[tuple[str, str, str]],
    dropin: DropinChange | None,
    target: Target,
    writer: Writer,
    found: tuple[Override, ...],
) -> Outcome:
    """The shared write-verify-restore loop of apply and rollback."""
    results: list[KeyResult] = []
    written: list[tuple[str, str]] = []
    for key, before, after in pairs:
        error = _write_and_verify(target, writer, key, after)
        read_back = target.tree.read(key).value
        if error is None:
            results.append(KeyResult(key, before, after, read_back, True))
            written.append((key, before))
            continue
        if read_back is not None and not _same(read_back, before):
            written.append((key, before))  # the kernel kept something else: undo that too
        results.append(KeyResult(key, before, after, read_back, False, error))
        return _fail(entry, results, written, target, writer, f"{key} = {after}: {error}")

    dropin_state = "untouched"
    if dropin is not None:
        try:
            if dropin.after is None:
                writer.remove_file(Path(dropin.path))
                dropin_state = "removed"
            else:
                writer.replace_file(Path(dropin.path), dropin.after)
                dropin_state = "written"
        except (OSError, KumotuiError) as error:
            reason = describe_errno(error.errno) if isinstance(error, OSError) else str(error)
            return _fail(entry, results, written, target, writer, f"{dropin.path}: {reason}")
    notes = []
    if entry.reload:
        reloaded = target.host.run(list(entry.reload))
        if reloaded.code != 0:
            notes.append(
                f"`{' '.join(entry.reload)}` failed ({reloaded.stderr.strip() or reloaded.code}); "
                "run it yourself for the change to take effect"
            )
    done = target.journal.update(entry, status="applied")
    return Outcome(done, tuple(results), dropin_state, found, notes)


def _write_and_verify(target: Target, writer: Writer, key: str, value: str) -> str | None:
    """Write one value and read it back; the reason in words, or None when kept."""
    try:
        writer.write_value(target.tree.path(key), value + "\n")
    except OSError as error:
        return describe_errno(error.errno)
    except KumotuiError as error:
        return str(error)
    read_back = target.tree.read(key)
    if read_back.value is None:
        return f"could not read it back: {read_back.error}"
    if not _same(read_back.value, value):
        return (
            f"the kernel kept {normalize(read_back.value)} instead (it may clamp the value "
            "or lack the resources, e.g. free memory for huge pages)"
        )
    return None


def _fail(
    entry: Entry,
    results: list[KeyResult],
    written: list[tuple[str, str]],
    target: Target,
    writer: Writer,
    reason: str,
) -> Outcome:
    """Restore what this run wrote, newest first, and journal the outcome."""
    unrestored = []
    for key, before in reversed(written):
        if _write_and_verify(target, writer, key, before) is not None:
            unrestored.append(key)
    if unrestored:
        status = "failed"
        message = (
            f"{reason}. Could NOT restore {', '.join(unrestored)}; check them by hand "
            f"(previous values are in journal entry {entry.id})"
        )
    else:
        status = "restored"
        undone = ", ".join(k for k, _ in written) or "nothing had been written"
        message = f"{reason}. Restored the previous values ({undone}); the host is as it was."
    done = target.journal.update(entry, status=status, error=message)
    raise ApplyFailed(message, Outcome(done, tuple(results)))


def manual_steps(plan: Plan, target: Target) -> str:
    """The exact commands and file content for someone to run by hand.

    Shown when kumotui may not write (not root and no ``sudo -n``). Every
    argument is shell-quoted, so the text can be pasted as it is. A simulated
    tree gets commands that write into the tree, never the real kernel.
    """
    lines = ["# Runtime values (take effect now):"]
    for c in plan.changes:
        if target.tree.simulated:
            path = shlex.quote(str(target.tree.path(c.key)))
            lines.append(f"printf '%s\\n' {shlex.quote(c.after)} | sudo tee {path} > /dev/null")
        else:
            lines.append(f"sudo sysctl -w {shlex.quote(f'{c.key}={c.after}')}")
    if plan.dropin_after is not None and plan.dropin_changed:
        lines += [
            "",
            f"# Persist across reboots: write {plan.dropin}",
            f"sudo tee {shlex.quote(str(plan.dropin))} > /dev/null <<'KUMOTUI_EOF'",
            plan.dropin_after.rstrip("\n"),
            "KUMOTUI_EOF",
            f"sudo chmod 0644 {shlex.quote(str(plan.dropin))}",
        ]
    return "\n".join(lines) + "\n"


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _hostname(target: Target) -> str:
    return target.tree.facts().hostname


__all__ = [
    "ApplyFailed",
    "Change",
    "KeyResult",
    "Outcome",
    "Plan",
    "Privilege",
    "Target",
    "apply_plan",
    "make_plan",
    "manual_steps",
    "parse_sets",
    "rollback",
]
