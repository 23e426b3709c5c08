"""Plan, validate, journal, write, verify, restore; persist; roll back.

The order matters and is the point of this module: a plan is validated as
a whole before the first write; the journal entry exists before the first
write; every write is read back; and any failure restores every value this
plan already wrote, so a host is never left half-applied without saying so.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kumotui.errors import KumotuiError
from kumotui.ids import new_id
from kumotui.tuning.dropin import Override
from kumotui.tuning.journal import DropinChange, Entry, EntryKind, EntryStatus, KeyChange
from kumotui.tuning.plan import Plan
from kumotui.tuning.privilege import Writer, detect_privilege, writer_for
from kumotui.tuning.sysctl import describe_errno
from kumotui.tuning.target import Target, read_managed
from kumotui.tuning.values import normalize, same_value


class DropinState(enum.StrEnum):
    """What an apply or rollback did to the drop-in (or the file :func:`persist_file` manages)."""

    WRITTEN = "written"
    REMOVED = "removed"
    """Removed, because there was none before the apply being rolled back."""
    UNCHANGED = "unchanged"
    """Already as planned: nothing to write."""
    UNTOUCHED = "untouched"
    """Not part of this change (``--no-persist``, or the change failed first)."""


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
    dropin: DropinState = DropinState.UNTOUCHED
    overrides: tuple[Override, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every key verified and the journal entry completed."""
        return self.entry.status is EntryStatus.APPLIED


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
        return Outcome(
            _entry(target, EntryKind.APPLY, plan.profile, status=EntryStatus.APPLIED),
            dropin=DropinState.UNCHANGED,
            notes=["Nothing to change: every value and the drop-in are already as planned."],
        )
    writer = writer or writer_for(detect_privilege(target), target.host)
    dropin = None
    if plan.dropin_changed:
        dropin = DropinChange(str(plan.dropin), plan.dropin_before, plan.dropin_after, plan.dropin_mode)
    pairs = [(c.key, c.before, c.after) for c in plan.changes]
    entry = target.journal.save(_entry(target, EntryKind.APPLY, plan.profile, pairs, dropin))
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
            if e.kind is EntryKind.APPLY
            and e.status is EntryStatus.APPLIED
            and e.rolled_back_by is None
            and (e.changes or e.dropin)
        ]
        if not candidates:
            raise KumotuiError("nothing to roll back: no applied journal entry that is not already rolled back")
        original = candidates[-1]
    else:
        original = target.journal.get(entry_id)
        if original.kind is not EntryKind.APPLY or original.status is not EntryStatus.APPLIED:
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
        current = read_managed(target.host, Path(original.dropin.path))
        restore_mode = original.dropin.before_mode
        dropin = DropinChange(
            original.dropin.path,
            current.text if current else None,
            original.dropin.before,
            current.mode if current else None,
            0o644 if restore_mode is None else restore_mode,
        )
    writer = writer or writer_for(detect_privilege(target), target.host)
    entry = target.journal.save(
        _entry(target, EntryKind.ROLLBACK, original.profile, pairs, dropin, target=original.id, reload=original.reload)
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
    found = read_managed(target.host, path)
    before = found.text if found else None
    if before == text:
        entry = _entry(target, EntryKind.APPLY, label, status=EntryStatus.APPLIED)
        return Outcome(entry, dropin=DropinState.UNCHANGED, notes=[f"{path} already has this content."])
    writer = writer or writer_for(detect_privilege(target), target.host)
    dropin = DropinChange(str(path), before, text, found.mode if found else None)
    entry = target.journal.save(_entry(target, EntryKind.APPLY, label, dropin=dropin, reload=reload))
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
        if read_back is not None and not same_value(read_back, before):
            written.append((key, before))  # the kernel kept something else: undo that too
        results.append(KeyResult(key, before, after, read_back, False, error))
        return _fail(entry, results, written, target, writer, f"{key} = {after}: {error}")

    dropin_state = DropinState.UNTOUCHED
    if dropin is not None:
        try:
            if dropin.after is None:
                writer.remove_file(Path(dropin.path))
                dropin_state = DropinState.REMOVED
            else:
                writer.replace_file(Path(dropin.path), dropin.after, dropin.after_mode)
                dropin_state = DropinState.WRITTEN
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
    done = target.journal.update(entry, status=EntryStatus.APPLIED)
    return Outcome(done, tuple(results), dropin_state, found, notes)


def _write_and_verify(target: Target, writer: Writer, key: str, value: str) -> str | None:
    """Write one value and read it back; the reason in words, or None when kept."""
    try:
        target.tree.write(writer, key, value + "\n")
    except OSError as error:
        return describe_errno(error.errno)
    except KumotuiError as error:
        return str(error)
    read_back = target.tree.read(key)
    if read_back.value is None:
        return f"could not read it back: {read_back.error}"
    if not same_value(read_back.value, value):
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
        status = EntryStatus.FAILED
        message = (
            f"{reason}. Could NOT restore {', '.join(unrestored)}; check them by hand "
            f"(previous values are in journal entry {entry.id})"
        )
    else:
        status = EntryStatus.RESTORED
        undone = ", ".join(k for k, _ in written) or "nothing had been written"
        message = f"{reason}. Restored the previous values ({undone}); the host is as it was."
    done = target.journal.update(entry, status=status, error=message)
    raise ApplyFailed(message, Outcome(done, tuple(results)))


def _entry(
    on: Target,
    kind: EntryKind,
    profile: str,
    pairs: Sequence[tuple[str, str, str]] = (),
    dropin: DropinChange | None = None,
    *,
    status: EntryStatus = EntryStatus.PENDING,
    **extra: Any,
) -> Entry:
    """A journal entry stamped by the target's clock and naming its host (``extra``: the other fields)."""
    now = on.clock()
    return Entry(
        new_id(now),
        kind,
        now.isoformat(timespec="seconds"),
        on.tree.facts().hostname,
        profile,
        tuple(KeyChange(*pair) for pair in pairs),
        dropin,
        status=status,
        **extra,
    )
