"""Roll back: the journal as data, checked again, the host restored exactly.

A rollback treats its journal entry as data, never as orders: every key,
value and drop-in path is checked again as an apply checks them, only the
files kumotui manages are touched, and what runs after a file change
(``systemctl daemon-reload``) is decided by :mod:`kumotui.tuning.apply`
from which file it is. An interrupted (``pending``) apply is rolled back
from the original values its entry recorded before the first write. A key
changed since the apply, or a newer apply still in place, needs the
operator's word (:class:`Changed`, :class:`Order`); the drop-in is edited
so that it never disagrees with the runtime values a rollback leaves.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kumotui.errors import KumotuiError
from kumotui.tuning import lock
from kumotui.tuning.apply import (
    ApplyFailed,
    Managed,
    Outcome,
    PlanChanged,
    RollbackRefused,
    entry_for,
    locked,
    managed_kind,
    restorable,
    run_changes,
    unit_dropin,
)
from kumotui.tuning.dropin import dropin_values, parse_conf
from kumotui.tuning.journal import DropinChange, Entry, EntryKind, EntryStatus
from kumotui.tuning.limits import UNIT_DROPIN
from kumotui.tuning.privilege import Writer, detect_privilege, writer_for
from kumotui.tuning.profiles import is_valid_key
from kumotui.tuning.redirect import leftover_notice
from kumotui.tuning.sysctl import key_to_relpath
from kumotui.tuning.target import Target, read_file, read_managed
from kumotui.tuning.validate import ValidationError, check_value
from kumotui.tuning.values import normalize, same_value

# -- the journal as a whole: what is in place, what was interrupted --------------


@dataclass(frozen=True)
class EntryView:
    """A journal entry with what the rest of the journal says about it."""

    entry: Entry
    rolled_back_by: str | None
    """The rollback that undid it (recorded on the entry, or an applied rollback naming it)."""
    interrupted: bool
    """Killed mid-way (``pending`` with nobody running), or failed without a full restore."""

    @property
    def in_place(self) -> bool:
        """An apply whose changes may still be on the host."""
        entry = self.entry
        return (
            entry.kind is EntryKind.APPLY
            and entry.status in (EntryStatus.APPLIED, EntryStatus.PENDING, EntryStatus.FAILED)
            and self.rolled_back_by is None
            and bool(entry.changes or entry.dropin)
        )

    @property
    def can_roll_back(self) -> bool:
        """Whether ``rollback`` accepts this entry (a pending one only when nobody is running it)."""
        return self.in_place and (self.entry.status is not EntryStatus.PENDING or self.interrupted)

    @property
    def why_not(self) -> str:
        """Why it cannot be rolled back, in words ("" when it can)."""
        entry = self.entry
        if self.can_roll_back:
            return ""
        if entry.kind is not EntryKind.APPLY:
            return "it is a rollback; roll back the apply it undid instead"
        if self.rolled_back_by:
            return f"already rolled back by {self.rolled_back_by}"
        if entry.status is EntryStatus.RESTORED:
            return "it failed and was restored already: the host is as it was"
        if entry.status is EntryStatus.PENDING:
            return "it is still running"
        return "it changed nothing"


def journal_view(entries: Sequence[Entry], *, running: bool = False) -> list[EntryView]:
    """Every entry with its effective state, oldest first.

    ``running``: another kumotui holds the lock now, so a ``pending`` entry
    may be its apply in progress rather than an interrupted one.
    """
    undone: dict[str, str] = {}
    for entry in entries:
        if entry.kind is EntryKind.ROLLBACK and entry.status is EntryStatus.APPLIED and entry.target:
            undone.setdefault(entry.target, entry.id)
    views = []
    for entry in entries:
        by = entry.rolled_back_by or undone.get(entry.id)
        if entry.kind is EntryKind.APPLY:
            interrupted = by is None and (
                entry.status is EntryStatus.FAILED or (entry.status is EntryStatus.PENDING and not running)
            )
        else:
            finished = entry.target is not None and entry.target in undone
            interrupted = entry.status is EntryStatus.PENDING and not running and not finished
        views.append(EntryView(entry, by, interrupted and bool(entry.changes or entry.dropin)))
    return views


def interruption_notices(target: Target, *, undo_flags: str = "") -> list[str]:
    """What the next apply, check or app start must say: interrupted changes and how to undo them.

    A port-25 redirect that a benchmark left behind (:mod:`~kumotui.tuning.redirect`) is one of them.

    Also names journal files that cannot be read (they block ``rollback``).
    Never creates anything; empty when all is well.
    """
    try:
        holder = lock.holder_now(target.host, target.journal.state_dir)
    except (OSError, KumotuiError):
        holder = None
    entries, problems = target.journal.scan()
    notices = [str(problem) for problem in problems]
    views = journal_view(entries, running=holder is not None)
    if holder is not None and any(v.entry.status is EntryStatus.PENDING and v.rolled_back_by is None for v in views):
        notices.append(f"an apply or rollback is in progress on {target.host.name}: {holder}")
    try:
        redirect = leftover_notice(target.host, target.journal.state_dir, undo_flags)
    except KumotuiError as error:
        redirect = str(error)
    if redirect is not None:
        notices.append(redirect)
    for view in views:
        if not view.interrupted:
            continue
        entry = view.entry
        if entry.kind is EntryKind.ROLLBACK:
            notices.append(
                f"a rollback on {entry.host} was interrupted (journal entry {entry.id}, started {entry.time}); "
                f"finish it with: kumotui rollback {entry.target}{undo_flags}"
            )
        elif entry.status is EntryStatus.FAILED:
            notices.append(
                f"an apply on {entry.host} failed and could not be fully restored (journal entry {entry.id}, "
                f"{entry.time}); undo it with: kumotui rollback {entry.id}{undo_flags}"
            )
        else:
            notices.append(
                f"an apply on {entry.host} was interrupted (journal entry {entry.id}, started {entry.time}) and may "
                f"have left it half-applied; undo it with: kumotui rollback {entry.id}{undo_flags}"
            )
    return notices


# -- rollback -----------------------------------------------------------------


class Changed(enum.StrEnum):
    """What a rollback does with keys (and a drop-in) changed since the apply."""

    REFUSE = "refuse"
    """Raise :class:`NeedsConfirmation`: the operator has not seen them."""
    RESTORE = "restore"
    """Put them back to their original values anyway."""
    KEEP = "keep"
    """Leave them (runtime and their drop-in lines) as they are now; restore the rest."""


class Order(enum.StrEnum):
    """What a rollback does when newer applies touching the same keys are still in place."""

    REFUSE = "refuse"
    """Raise :class:`NeedsConfirmation`: roll back newest first."""
    ALONE = "alone"
    """Roll back the chosen entry alone (its keys changed since count as changed)."""
    NEWEST_FIRST = "newest-first"
    """Roll back the newer ones first, newest first, then the chosen one."""


class KeyState(enum.StrEnum):
    """Where a journaled key (or the drop-in) stands now against the entry."""

    AS_APPLIED = "as applied"
    ALREADY = "already as before"
    """Never written (an interrupted apply) or already put back."""
    CHANGED = "changed since apply"
    """By a later entry or by hand."""


@dataclass(frozen=True)
class KeyRollback:
    """One key of a rollback: what is there now, what the apply wrote, what the rollback writes."""

    key: str
    live: str
    applied: str
    restore: str
    """The original value, checked and in canonical form."""

    @property
    def state(self) -> KeyState:
        """As applied, already restored, or changed since."""
        if same_value(self.live, self.restore):
            return KeyState.ALREADY
        if same_value(self.live, self.applied):
            return KeyState.AS_APPLIED
        return KeyState.CHANGED


@dataclass(frozen=True)
class RollbackPlan:
    """What rolling back one entry would do, checked, before anything is written."""

    entry: Entry
    keys: tuple[KeyRollback, ...]
    """In the reverse of the apply's order."""
    dropin: Path | None
    """The managed file the entry changed, if any."""
    dropin_live: str | None = None
    dropin_state: KeyState | None = None
    newer: tuple[Entry, ...] = ()
    """Newer applies still in place that touch the same keys or file, newest first."""

    @property
    def changed(self) -> tuple[KeyRollback, ...]:
        """The keys changed since the apply."""
        return tuple(k for k in self.keys if k.state is KeyState.CHANGED)

    @property
    def dropin_changed(self) -> bool:
        """The drop-in is neither as the apply left it nor as it was before."""
        return self.dropin_state is KeyState.CHANGED

    @property
    def interrupted(self) -> bool:
        """The apply never completed (killed, or failed without a full restore)."""
        return self.entry.status is not EntryStatus.APPLIED

    def snapshot(self) -> tuple[object, ...]:
        """What the operator was shown: compared again under the lock before writing."""
        return (
            self.entry.id,
            tuple((k.key, normalize(k.live)) for k in self.keys),
            self.dropin_live,
            tuple(e.id for e in self.newer),
        )


class NeedsConfirmation(KumotuiError):
    """A rollback would overwrite changes made since, or skip newer applies: the operator must choose."""

    def __init__(self, message: str, plans: list[RollbackPlan]) -> None:
        super().__init__(message)
        self.plans = plans


def plan_rollback(target: Target, entry_id: str | None = None, *, order: Order = Order.REFUSE) -> list[RollbackPlan]:
    """Check an entry (default: the newest that can be rolled back) and say what rolling it back would do.

    With :attr:`Order.NEWEST_FIRST` the list holds the newer applies first,
    newest first, each planned on the host as the previous ones would leave
    it; otherwise it holds the one entry (whose ``newer`` says what is in
    the way).

    Raises:
        JournalError: an entry file is malformed (named).
        RollbackRefused: the entry names a key, value or file an apply would refuse.
        KumotuiError: no such entry, or one that cannot be rolled back.
    """
    views = journal_view(target.journal.entries())
    by_id = {view.entry.id: view for view in views}
    if entry_id is None:
        candidates = [view for view in views if view.can_roll_back]
        if not candidates:
            raise KumotuiError("nothing to roll back: no applied journal entry that is not already rolled back")
        chosen = candidates[-1]
    else:
        chosen = by_id[target.journal.get(entry_id).id]
    if not chosen.can_roll_back:
        raise KumotuiError(f"entry {chosen.entry.id} cannot be rolled back: {chosen.why_not}")
    newer = tuple(
        reversed(
            [v.entry for v in views if v.entry.id > chosen.entry.id and v.in_place and _overlap(v.entry, chosen.entry)]
        )
    )
    chain = [*newer, chosen.entry] if order is Order.NEWEST_FIRST else [chosen.entry]
    live: dict[str, str] = {}
    files: dict[str, str | None] = {}
    plans: list[RollbackPlan] = []
    for entry in chain:
        plan = _plan_one(target, entry, live, files, newer if len(chain) == 1 else ())
        plans.append(plan)
        for key in plan.keys:  # what the next, older, entry will find
            live[key.key] = key.restore
        if plan.dropin is not None:
            write, text = _dropin_result(target, plan, (), Changed.RESTORE)
            files[os.path.normpath(str(plan.dropin))] = text if write else plan.dropin_live
    return plans


def _overlap(a: Entry, b: Entry) -> bool:
    """Whether two entries touch a common key or the same file."""
    same_file = (
        a.dropin is not None
        and b.dropin is not None
        and (os.path.normpath(a.dropin.path) == os.path.normpath(b.dropin.path))
    )
    return same_file or bool(set(a.keys) & set(b.keys))


def _refuse(entry: Entry, problem: str) -> RollbackRefused:
    return RollbackRefused(f"journal entry {entry.id}: {problem}; nothing was written")


def _check_key(target: Target, entry: Entry, key: str) -> None:
    """The key checks an apply makes, before anything is read: a dotted name that stays in the tree."""
    parts = key_to_relpath(key).split("/")
    if not is_valid_key(key) or any(not part or set(part) == {"."} for part in parts):
        raise _refuse(entry, f"{key!r} is not a sysctl name (it would leave {target.tree.root})")


def _plan_one(
    target: Target,
    entry: Entry,
    live_now: dict[str, str],
    files_now: dict[str, str | None],
    newer: tuple[Entry, ...],
) -> RollbackPlan:
    """Check one entry as data and read what is there now."""
    keys = []
    seen = set()
    for change in reversed(entry.changes):
        if change.key in seen:
            raise _refuse(entry, f"{change.key} appears twice")
        seen.add(change.key)
        _check_key(target, entry, change.key)
        live = live_now.get(change.key)
        if live is None:
            reading = target.tree.read(change.key)
            if reading.value is None:
                raise _refuse(entry, f"{change.key}: cannot read the current value ({reading.error})")
            live = reading.value
        try:
            restore = restorable(target, change.key, change.before, live)
            restorable(target, change.key, change.after, live)
        except ValidationError as error:
            raise _refuse(entry, str(error)) from None
        keys.append(KeyRollback(change.key, live, change.after, restore))
    if entry.dropin is None:
        return RollbackPlan(entry, tuple(keys), None, newer=newer)
    kind = managed_kind(target, entry.dropin.path)
    if kind is None:
        raise _refuse(
            entry,
            f"its drop-in {entry.dropin.path!r} is not a file kumotui manages here ({target.dropin} or "
            f"{unit_dropin(target)}); if it was written with other --sysctl-d/--system-root, pass those",
        )
    for text in (entry.dropin.before, entry.dropin.after):
        _check_file_text(target, entry, kind, text)
    path = Path(entry.dropin.path)
    normal = os.path.normpath(str(path))
    live_text = files_now[normal] if normal in files_now else read_file(target.host, path)
    if live_text == entry.dropin.before:
        state = KeyState.ALREADY
    elif live_text == entry.dropin.after:
        state = KeyState.AS_APPLIED
    else:
        state = KeyState.CHANGED
    return RollbackPlan(entry, tuple(keys), path, live_text, state, newer)


def _check_file_text(target: Target, entry: Entry, kind: Managed, text: str | None) -> None:
    """Refuse file content an apply would never write: for the sysctl drop-in, every setting is
    checked like a value; the unit drop-in may only set ``LimitNOFILE``."""
    if text is None:
        return
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"its drop-in's line {number}"
        if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in raw):
            raise _refuse(entry, f"{where} holds a control character")
        if not line or line[0] in "#;":
            continue
        if kind is Managed.UNIT:
            if line == "[Service]" or _LIMIT_LINE.match(line):
                continue
            raise _refuse(entry, f"{where} ({line[:60]!r}) is not a line kumotui writes in {UNIT_DROPIN.name}")
        for setting in parse_conf(raw, Path(entry.dropin.path if entry.dropin else "")):
            _check_key(target, entry, setting.key)
            try:
                check_value(setting.key, setting.value, target.tree, current=setting.value)
            except ValidationError as error:
                raise _refuse(entry, f"{where}: {error}") from None
        if "=" not in line:
            raise _refuse(entry, f"{where} ({line[:60]!r}) is not a 'key = value' setting")


_LIMIT_LINE = re.compile(r"^LimitNOFILE=(\d{1,19}|infinity)(:(\d{1,19}|infinity))?$")


def _dropin_result(
    target: Target, plan: RollbackPlan, kept: Sequence[str], changed: Changed
) -> tuple[bool, str | None]:
    """What the managed file becomes: (whether to write, the text or None to remove).

    As the apply left it, with nothing kept: the original bytes come back.
    Otherwise the file is edited line by line: the rolled-back keys get their
    original lines, kept keys and anything a newer entry or a person added
    stay, so the drop-in and the runtime values never disagree.
    """
    dropin = plan.entry.dropin
    if dropin is None or plan.dropin is None or plan.dropin_state is KeyState.ALREADY:
        return False, None
    if plan.dropin_state is KeyState.AS_APPLIED and not kept:
        return True, dropin.before
    if managed_kind(target, plan.dropin) is Managed.UNIT:
        # One setting, no keys to merge: put it back only when told to.
        return (True, dropin.before) if changed is Changed.RESTORE else (False, None)
    before = dropin_values(dropin.before, plan.dropin)
    after = dropin_values(dropin.after, plan.dropin)
    updates = {
        key: before.get(key)
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key) and key not in kept
    }
    # A kept key keeps its live value at boot too: runtime and drop-in agree.
    for key in plan.keys:
        if key.key in kept and key.key in after:
            try:
                updates[key.key] = restorable(target, key.key, normalize(key.live), key.live)
            except ValidationError:
                continue  # leave its line as it is
    base = plan.dropin_live or ""
    text = _edit_settings(base, updates, plan.dropin)
    if not dropin_values(text, plan.dropin) and dropin.before is None:
        return (plan.dropin_live is not None), None
    return (text != base), text


def _edit_settings(text: str, updates: dict[str, str | None], path: Path) -> str:
    """``text`` with each key in ``updates`` set to its value (one line) or removed (None); other lines kept."""
    out: list[str] = []
    done: set[str] = set()
    for raw in text.splitlines():
        settings = parse_conf(raw, path)
        key = settings[0].key if settings else None
        if key is None or key not in updates:
            out.append(raw)
            continue
        value = updates[key]
        if key not in done and value is not None:
            out.append(f"{key} = {value}")
        done.add(key)  # a second line for the same key goes: one key, one value
    out += [f"{key} = {value}" for key, value in updates.items() if key not in done and value is not None]
    return "\n".join(out) + "\n" if out else ""


def rollback(
    target: Target,
    entry_id: str | None = None,
    *,
    writer: Writer | None = None,
    changed: Changed = Changed.REFUSE,
    order: Order = Order.REFUSE,
    expected: Sequence[RollbackPlan] | None = None,
    command: str | None = None,
) -> Outcome:
    """Restore the runtime values and the drop-in an apply entry changed (the last one of a chain).

    See :func:`rollback_all`.
    """
    return rollback_all(
        target, entry_id, writer=writer, changed=changed, order=order, expected=expected, command=command
    )[-1]


def rollback_all(
    target: Target,
    entry_id: str | None = None,
    *,
    writer: Writer | None = None,
    changed: Changed = Changed.REFUSE,
    order: Order = Order.REFUSE,
    expected: Sequence[RollbackPlan] | None = None,
    command: str | None = None,
) -> list[Outcome]:
    """Under the lock: plan again, compare with what the operator saw, then roll back (newest first).

    Defaults to the newest entry that can be rolled back, including an
    interrupted (``pending``) apply, whose original values are restored
    exactly. Each rollback is itself journaled and verified like an apply.

    Args:
        target: the host.
        entry_id: the apply entry (or a unique prefix).
        writer: how to write (detected when None).
        changed: what to do with keys changed since the apply.
        order: what to do when newer applies touching the same keys are in place.
        expected: the plans the operator confirmed (:func:`plan_rollback`);
            when the host moved since, nothing is written.
        command: how this process describes itself in the lock file.

    Raises:
        NeedsConfirmation: changed keys or newer applies, and ``changed`` or ``order`` says refuse.
        PlanChanged: the host changed since ``expected`` was shown.
        ApplyFailed: a write failed (what was restored is said).
    """
    writer = writer or writer_for(detect_privilege(target), target.host)
    with locked(target, command):
        plans = plan_rollback(target, entry_id, order=order)
        if expected is not None and [p.snapshot() for p in plans[:1]] != [p.snapshot() for p in expected[:1]]:
            raise PlanChanged(
                "the host or the journal changed since the rollback was shown. Nothing was written; look again"
            )
        _require_confirmed(plans, changed, order)
        outcomes: list[Outcome] = []
        for index, shown in enumerate(plans):
            plan = shown
            if index:  # plan each older step again: the newer ones just changed the host
                plan = plan_rollback(target, shown.entry.id, order=Order.ALONE)[0]
                _require_confirmed([plan], changed, Order.ALONE)
            try:
                outcomes.append(_rollback_one(plan, target, writer, changed))
            except ApplyFailed as failure:
                if outcomes:
                    done = ", ".join(o.entry.target or "?" for o in outcomes)
                    failure.args = (f"{failure} (already rolled back, newest first: {done})",)
                raise
        return outcomes


def _require_confirmed(plans: Sequence[RollbackPlan], changed: Changed, order: Order) -> None:
    """Raise :class:`NeedsConfirmation` for what the operator has not agreed to."""
    first = plans[0]
    if order is Order.REFUSE and first.newer:
        ids = ", ".join(e.id for e in first.newer)
        raise NeedsConfirmation(
            f"newer applies touching the same keys are still in place: {ids}. Roll back newest first "
            f"({ids}, then {first.entry.id}), or confirm rolling back {first.entry.id} alone",
            list(plans),
        )
    drifted = [(p, k) for p in plans for k in p.changed]
    files = [p for p in plans if p.dropin_changed]
    if changed is Changed.REFUSE and (drifted or files):
        what = [f"{k.key} is {normalize(k.live)} (journaled {normalize(k.applied)})" for _p, k in drifted]
        what += [f"{p.dropin} changed" for p in files]
        raise NeedsConfirmation(
            f"changed since the apply: {'; '.join(what)}. Confirm to restore them anyway, or keep them",
            list(plans),
        )


def _rollback_one(plan: RollbackPlan, target: Target, writer: Writer, changed: Changed) -> Outcome:
    """Journal and write one rollback, then mark the apply as rolled back."""
    kept = tuple(k.key for k in plan.changed if changed is Changed.KEEP)
    pairs = [(k.key, k.live, k.restore) for k in plan.keys if k.state is not KeyState.ALREADY and k.key not in kept]
    write, text = _dropin_result(target, plan, kept, changed)
    original = plan.entry
    dropin = None
    if write and plan.dropin:
        live = read_managed(target.host, plan.dropin)
        journaled = original.dropin.before_mode if original.dropin is not None else None
        dropin = DropinChange(
            str(plan.dropin),
            plan.dropin_live,
            text,
            live.mode if live is not None else None,
            0o644 if journaled is None else journaled,
        )
    entry = target.journal.create(
        entry_for(target, EntryKind.ROLLBACK, original.profile, pairs, dropin, target=original.id, kept=kept)
    )
    outcome = run_changes(entry, pairs, dropin, target, writer, (), restoring=True)
    try:
        target.journal.update(original, rolled_back_by=entry.id)
    except KumotuiError as error:  # the applied rollback entry names it: still counted as rolled back
        outcome.notes.append(f"could not mark {original.id} as rolled back ({error}); {entry.id} records it")
    if kept:
        outcome.notes.append(f"kept as they are (changed since the apply), in the drop-in too: {', '.join(kept)}")
    if not pairs and dropin is None:
        outcome.notes.append("Nothing to write: every value and the drop-in were already as before the apply.")
    return outcome
