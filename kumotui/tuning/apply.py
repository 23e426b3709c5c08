"""Plan, validate, journal, write, verify, restore; persist; roll back.

The order matters and is the point of this module:

- one apply at a time per host: everything below runs holding the state
  dir's lock (:mod:`kumotui.tuning.lock`);
- under the lock the plan is checked against the host as it is now, so a
  value changed since the preview is never overwritten unseen;
- the journal entry, with every original value and the drop-in's original
  content, is written (and fsynced) before the first write, so a kill at any
  instant leaves a ``pending`` entry that ``rollback`` restores exactly;
- every write is read back, and any failure (a refusal, a timeout, a full
  disk, Ctrl+C) restores everything this run changed and journals that.

Rolling back (:mod:`kumotui.tuning.rollback`) goes through the same loop;
what runs after a managed file changes (``systemctl daemon-reload``) is
decided here, from which file it is, for both.
"""

from __future__ import annotations

import enum
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from kumotui.errors import KumotuiError
from kumotui.ids import new_id
from kumotui.text.escape import printable
from kumotui.tuning import lock
from kumotui.tuning.dropin import Override
from kumotui.tuning.journal import DropinChange, Entry, EntryKind, EntryStatus, KeyChange
from kumotui.tuning.limits import UNIT_DROPIN
from kumotui.tuning.plan import Plan
from kumotui.tuning.privilege import Writer, detect_privilege, writer_for
from kumotui.tuning.sysctl import describe_errno
from kumotui.tuning.target import Target, read_file, read_managed
from kumotui.tuning.validate import ValidationError, check_value
from kumotui.tuning.values import normalize, same_value


class DropinState(enum.StrEnum):
    """What an apply or rollback did to the drop-in (or the file :func:`persist_file` manages)."""

    WRITTEN = "written"
    RESTORED = "restored"
    """Put back as it was before the apply being rolled back."""
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
    restored: bool = False
    """The change failed later and this key was put back to ``before`` (read back as such)."""


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

    @property
    def dropin_path(self) -> str | None:
        """The file this change wrote or removed, if any."""
        return self.entry.dropin.path if self.entry.dropin is not None else None


class ApplyFailed(KumotuiError):
    """A write failed or read back differently; earlier writes were restored."""

    def __init__(self, message: str, outcome: Outcome) -> None:
        super().__init__(message)
        self.outcome = outcome


class PlanChanged(KumotuiError):
    """The host changed between the plan (or the preview) and the write: nothing was written."""


class RollbackRefused(KumotuiError):
    """A journal entry asks for something a rollback must not do (a bad key, value or path)."""


# -- the files kumotui manages ------------------------------------------------


class Managed(enum.StrEnum):
    """The only files an apply, ``limits --apply`` or a rollback writes or removes."""

    SYSCTL = "sysctl drop-in"
    UNIT = "kumomta.service drop-in"


def unit_dropin(target: Target) -> Path:
    """The systemd drop-in ``limits --apply`` writes, under the target's system root."""
    return target.system_root / UNIT_DROPIN.relative_to("/")


def managed_kind(target: Target, path: str | Path) -> Managed | None:
    """Which managed file ``path`` is for this target; None for any other path."""
    wanted = os.path.normpath(str(path))
    if wanted == os.path.normpath(str(target.dropin)):
        return Managed.SYSCTL
    if wanted == os.path.normpath(str(unit_dropin(target))):
        return Managed.UNIT
    return None


def reload_command(target: Target, kind: Managed | None) -> tuple[str, ...]:
    """What must run after a managed file changes: decided here, never read from a journal.

    systemd reads the unit drop-in only after ``daemon-reload``; sysctl
    drop-ins are read at boot. A simulated system root has no systemd to tell.
    """
    if kind is Managed.UNIT and target.system_root == Path("/"):
        return ("systemctl", "daemon-reload")
    return ()


@contextmanager
def locked(target: Target, command: str | None = None) -> Iterator[lock.Holder]:
    """Hold the target's apply lock (see :mod:`kumotui.tuning.lock`); nested holds are free."""
    with lock.hold(target.host, target.journal.state_dir, command=command) as holder:
        yield holder


# -- apply --------------------------------------------------------------------


def apply_plan(plan: Plan, target: Target, *, writer: Writer | None = None, command: str | None = None) -> Outcome:
    """Lock, check the plan against the host, journal, write, verify; restore everything on a failure.

    Raises:
        KumotuiError: read-only access (nothing written).
        LockBusy: another kumotui is changing this host.
        PlanChanged: a value or the drop-in changed since the plan was made (nothing written).
        ApplyFailed: a write was refused or not kept; the message names the
            key, the value and the kernel's reason, and says what was restored.
    """
    if plan.empty:
        return Outcome(
            entry_for(target, EntryKind.APPLY, plan.profile, status=EntryStatus.APPLIED),
            dropin=DropinState.UNCHANGED,
            notes=["Nothing to change: every value and the drop-in are already as planned."],
        )
    writer = writer or writer_for(detect_privilege(target), target.host)
    with locked(target, command):
        pairs = verify_plan(plan, target)
        dropin = None
        if plan.dropin_changed:
            dropin = DropinChange(str(plan.dropin), plan.dropin_before, plan.dropin_after, plan.dropin_mode)
        entry = target.journal.create(entry_for(target, EntryKind.APPLY, plan.profile, pairs, dropin))
        return run_changes(entry, pairs, dropin, target, writer, plan.overrides)


def verify_plan(plan: Plan, target: Target) -> list[tuple[str, str, str]]:
    """Check that every value and the drop-in are still what the plan was made from.

    Returns each change as (key, the value read now, the value to write):
    what the journal records as the original is what is there now.

    Raises:
        PlanChanged: naming each value that moved (nothing is written).
    """
    pairs: list[tuple[str, str, str]] = []
    moved: list[str] = []
    for change in plan.changes:
        now = target.tree.read(change.key)
        if now.value is None:
            moved.append(f"{change.key} can no longer be read ({now.error})")
        elif not same_value(now.value, change.before):
            moved.append(f"{change.key} is now {normalize(now.value)}, not {normalize(change.before)}")
        else:
            pairs.append((change.key, now.value, change.after))
    if plan.dropin_after is not None and read_file(target.host, plan.dropin) != plan.dropin_before:
        moved.append(f"{plan.dropin} changed")
    if moved:
        raise PlanChanged(
            f"the host changed since the plan was made ({'; '.join(moved)}). Nothing was written; "
            "look at the plan again and re-apply"
        )
    return pairs


def persist_file(
    target: Target,
    path: Path,
    text: str,
    label: str,
    *,
    writer: Writer | None = None,
    command: str | None = None,
) -> Outcome:
    """Write one managed configuration file (the kumomta.service drop-in) through the journal.

    The previous content (or its absence) is journaled first, so ``kumotui
    rollback`` restores or removes it exactly like the sysctl drop-in; what
    must run afterwards (``systemctl daemon-reload``) follows from the file.
    """
    kind = managed_kind(target, path)
    if kind is None:
        raise KumotuiError(f"{path} is not a file kumotui manages; refusing to write it")
    with locked(target, command):
        found = read_managed(target.host, path)
        before = found.text if found is not None else None
        if before == text:
            entry = entry_for(target, EntryKind.APPLY, label, status=EntryStatus.APPLIED)
            return Outcome(entry, dropin=DropinState.UNCHANGED, notes=[f"{path} already has this content."])
        writer = writer or writer_for(detect_privilege(target), target.host)
        dropin = DropinChange(str(path), before, text, found.mode if found is not None else None)
        entry = target.journal.create(entry_for(target, EntryKind.APPLY, label, dropin=dropin))
        return run_changes(entry, [], dropin, target, writer, ())


# -- the shared write, verify, restore loop -------------------------------------


class _StepFailed(Exception):
    """A step of :func:`_run` failed; the message says which and why."""


def run_changes(
    entry: Entry,
    pairs: Sequence[tuple[str, str, str]],
    dropin: DropinChange | None,
    target: Target,
    writer: Writer,
    found: tuple[Override, ...],
    *,
    restoring: bool = False,
) -> Outcome:
    """Write each value and the drop-in, read back, complete the journal; on any failure restore all.

    ``pairs`` are (key, value now, value to write). ``restoring`` (a
    rollback) reports the drop-in as restored rather than written.
    """
    results: list[KeyResult] = []
    attempted: list[tuple[str, str]] = []
    dropin_touched = False
    notes: list[str] = []
    try:
        for key, before, after in pairs:
            attempted.append((key, before))  # before the write: a timed-out write may still have landed
            error = _write_and_verify(target, writer, key, after)
            results.append(KeyResult(key, before, after, _read(target, key), error is None, error))
            if error is not None:
                raise _StepFailed(f"{key} = {after}: {error}")
        dropin_state = DropinState.UNTOUCHED
        if dropin is not None:
            dropin_touched = True
            dropin_state = _write_dropin(writer, dropin, restoring)
            reload = reload_command(target, managed_kind(target, dropin.path))
            if reload:
                reloaded = target.host.run(list(reload))
                if reloaded.code != 0:
                    notes.append(
                        f"`{' '.join(reload)}` failed ({reloaded.stderr.strip() or reloaded.code}); "
                        "run it yourself for the change to take effect"
                    )
        try:
            done = target.journal.update(entry, status=EntryStatus.APPLIED)
        except KumotuiError as error:
            raise _StepFailed(f"the journal could not record the outcome: {error}") from None
    except _StepFailed as failure:
        _fail(entry, results, attempted, dropin if dropin_touched else None, target, writer, str(failure))
    except Exception as error:  # a lost connection mid-read, a bug: restore all the same
        _fail(entry, results, attempted, dropin if dropin_touched else None, target, writer, _reason(error))
    except BaseException as interrupt:
        # Ctrl+C: put the host back before letting it through.
        why = "interrupted" if isinstance(interrupt, KeyboardInterrupt) else type(interrupt).__name__
        try:
            _fail(entry, results, attempted, dropin if dropin_touched else None, target, writer, why)
        except ApplyFailed as failed:
            interrupt.add_note(f"kumotui: {failed}")
        except BaseException as second:  # a second Ctrl+C while restoring: the journal entry stays pending
            interrupt.add_note(
                f"kumotui: restoring failed too ({type(second).__name__}); run kumotui rollback {entry.id}"
            )
        raise
    return Outcome(done, tuple(results), dropin_state, found, notes)


def _write_dropin(writer: Writer, dropin: DropinChange, restoring: bool) -> DropinState:
    """Replace or remove the drop-in; any failure becomes a :class:`_StepFailed` naming the file."""
    try:
        if dropin.after is None:
            writer.remove_file(Path(dropin.path))
            return DropinState.REMOVED
        writer.replace_file(Path(dropin.path), dropin.after, dropin.after_mode)
    except Exception as error:  # any failure must lead to the restore
        raise _StepFailed(f"{dropin.path}: {_reason(error)}") from None
    return DropinState.RESTORED if restoring else DropinState.WRITTEN


def _reason(error: BaseException) -> str:
    """A failed write in words: the kernel's errno, a timeout, or the error's own message."""
    if isinstance(error, subprocess.TimeoutExpired):
        return f"no answer within {round(error.timeout, 1):g} s (timed out; stopped waiting)"
    if isinstance(error, OSError) and error.errno is not None:
        return describe_errno(error.errno)
    return str(error) or type(error).__name__


def _write_and_verify(target: Target, writer: Writer, key: str, value: str) -> str | None:
    """Write one value and read it back; the reason in words, or None when kept."""
    try:
        target.tree.write(writer, key, value + "\n")
    except Exception as error:  # a refusal, a timeout, a lost connection: all restore
        return _reason(error)
    try:
        read_back = target.tree.read(key)
    except Exception as error:  # a lost connection: the write cannot be confirmed
        return f"could not read it back: {_reason(error)}"
    if read_back.value is None:
        return f"could not read it back: {read_back.error}"
    if not same_value(read_back.value, value):
        return (
            f"the kernel kept {normalize(read_back.value)} instead (it may clamp the value "
            "or lack the resources, e.g. free memory for huge pages)"
        )
    return None


def _read(target: Target, key: str) -> str | None:
    """A value as it is now, or None when it cannot be read (missing, or the connection is gone)."""
    try:
        return target.tree.read(key).value
    except Exception:  # restoring must go on for the other keys
        return None


def _fail(
    entry: Entry,
    results: list[KeyResult],
    attempted: list[tuple[str, str]],
    dropin: DropinChange | None,
    target: Target,
    writer: Writer,
    reason: str,
) -> NoReturn:
    """Restore what this run changed, newest first, journal the outcome, raise :class:`ApplyFailed`."""
    unrestored: list[str] = []
    restored: set[str] = set()
    for key, before in reversed(attempted):
        now = _read(target, key)
        if now is not None and same_value(now, before):
            continue  # never written (or the kernel refused it): nothing to undo
        try:
            value = restorable(target, key, before, before)
        except ValidationError as error:
            unrestored.append(f"{key} ({error})")
            continue
        error_text = _write_and_verify(target, writer, key, value)
        if error_text is None:
            restored.add(key)
        else:
            unrestored.append(f"{key} ({error_text})")
    dropin_state = DropinState.UNTOUCHED
    if dropin is not None:
        try:
            live = read_managed(target.host, Path(dropin.path))
            live_text = live.text if live is not None else None
            if live_text != dropin.before:
                restore_mode = 0o644 if dropin.before_mode is None else dropin.before_mode
                back = DropinChange(dropin.path, live_text, dropin.before, live.mode if live else None, restore_mode)
                _write_dropin(writer, back, restoring=True)
                dropin_state = DropinState.RESTORED if dropin.before is not None else DropinState.REMOVED
        except Exception as error:  # the drop-in too: report it, finish the journal
            unrestored.append(f"{dropin.path} ({_reason(error)})")
    shown = [replace(r, restored=r.key in restored) for r in results]
    if unrestored:
        status = EntryStatus.FAILED
        message = (
            f"{reason}. Could NOT restore {', '.join(unrestored)}. The journal entry {entry.id} holds every "
            f"original value: `kumotui rollback {entry.id}` restores them once the cause is fixed"
        )
    else:
        status = EntryStatus.RESTORED
        undone = ", ".join(sorted(restored)) or "nothing had been written"
        if dropin_state is not DropinState.UNTOUCHED:
            undone += f"; {dropin.path if dropin else 'the drop-in'} {dropin_state}"
        message = f"{reason}. Restored the previous values ({undone}); the host is as it was"
    try:
        done = target.journal.update(entry, status=status, error=message)
    except KumotuiError as error:
        done = entry
        message += (
            f". The journal entry {entry.id} could not be updated ({error}): it still says pending, "
            f"and `kumotui rollback {entry.id}` restores from it"
        )
    raise ApplyFailed(message, Outcome(done, tuple(shown), dropin_state))


def restorable(target: Target, key: str, original: str, live: str) -> str:
    """An original value, checked as an apply checks a value, ready to write back.

    The kernel prints multi-number values with tabs (``32768\t60999``);
    the original is written back byte for byte when it is exactly the
    checked value's fields separated by blanks, else in the checked form.

    Raises:
        ValidationError: the value would be refused by an apply.
    """
    if any(ch in original for ch in "\n\r\x00"):
        raise ValidationError(f"{key}: refusing value {original!r}: more than one line")
    checked = check_value(key, normalize(original), target.tree, current=live).value
    return original.strip(" ") if original.split() == checked.split() else checked


def entry_for(
    on: Target,
    kind: EntryKind,
    profile: str,
    pairs: Sequence[tuple[str, str, str]] = (),
    dropin: DropinChange | None = None,
    *,
    status: EntryStatus = EntryStatus.PENDING,
    **extra: Any,
) -> Entry:
    """A journal entry stamped by the target's clock and naming its host (``extra``: the other fields).

    The host's name is what its ``kernel.hostname`` says, so control
    characters in it are stored escaped: the journal accepts one-line names
    only, and an entry it could not read back would be an apply without undo.
    """
    now = on.clock()
    return Entry(
        new_id(now),
        kind,
        now.isoformat(timespec="seconds"),
        printable(on.tree.facts().hostname, keep="")[:1024],
        profile,
        tuple(KeyChange(*pair) for pair in pairs),
        dropin,
        status=status,
        **extra,
    )
