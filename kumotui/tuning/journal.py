"""The journal: one JSON file per apply or rollback, on the changed host.

An entry is written *before* the first change (status ``pending``), with
every key's value and the drop-in's content as they were, and completed
after, so even a crash mid-apply leaves a record from which ``kumotui
rollback`` restores the host exactly.

An entry file is data, never orders: it is parsed field by field, and
anything malformed (bad JSON, a wrong type, an unknown kind, status or
field) is refused with the file and the field named. What a rollback then
does with the values and paths is checked again by
:mod:`kumotui.tuning.apply`, exactly as an apply checks them.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from kumotui.errors import KumotuiError
from kumotui.hosts import Host

MAX_ENTRY_BYTES = 1 << 20
"""Largest entry file read: a real one is a few KB."""
MAX_TEXT = 256 * 1024
"""Longest string field (a drop-in's content); values and names are far shorter."""
_ID = re.compile(r"^\d{8}-\d{6}-\d{4}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters other than tab and newline."""


@dataclass(frozen=True)
class KeyChange:
    """One key's value before and after an apply or rollback."""

    key: str
    before: str
    after: str


@dataclass(frozen=True)
class DropinChange:
    """The drop-in file's content before and after (None: no such file)."""

    path: str
    before: str | None
    after: str | None
    before_mode: int | None = None
    """Permission bits of the file as it was (None: no file, or an entry older than this field),
    so a rollback restores them too."""
    after_mode: int = 0o644
    """Permission bits ``after`` is written with: 0644 for a drop-in (other tools read it), the
    original file's for a rollback."""


class EntryKind(enum.StrEnum):
    """What a journal entry records."""

    APPLY = "apply"
    ROLLBACK = "rollback"


class EntryStatus(enum.StrEnum):
    """Where a journaled change stands."""

    PENDING = "pending"
    """Written before the first change: in progress, or interrupted (a crash, a kill)."""
    APPLIED = "applied"
    """Every change written and read back."""
    RESTORED = "restored"
    """A change failed and every earlier one was undone: the host is as it was."""
    FAILED = "failed"
    """A change failed and could not be fully undone: check the keys by hand."""


class JournalError(KumotuiError):
    """A journal entry file that cannot be used: the message names the file and the field."""


@dataclass(frozen=True)
class Entry:
    """One journaled apply or rollback."""

    id: str
    kind: EntryKind
    time: str
    host: str
    profile: str
    changes: tuple[KeyChange, ...]
    dropin: DropinChange | None = None
    status: EntryStatus = EntryStatus.PENDING
    error: str | None = None
    target: str | None = None
    """For a rollback: the entry it undid."""
    rolled_back_by: str | None = None
    kept: tuple[str, ...] = ()
    """For a rollback: keys left as they were because they changed since the apply (the operator's choice)."""

    def __post_init__(self) -> None:
        # Callers' literals may pass plain strings: hold real enums either way.
        object.__setattr__(self, "kind", EntryKind(self.kind))
        object.__setattr__(self, "status", EntryStatus(self.status))

    @property
    def keys(self) -> list[str]:
        """The keys this entry changed."""
        return [c.key for c in self.changes]

    def as_json(self) -> dict[str, Any]:
        """The stored and ``journal --json`` shape (``kept`` only when there is any)."""
        data = dataclasses.asdict(self)
        if not self.kept:
            del data["kept"]
        return data

    @classmethod
    def from_json(cls, data: object, source: str = "journal entry") -> Entry:
        """Rebuild an entry from its stored shape, checking every field.

        Raises:
            JournalError: naming ``source`` and the field at fault.
        """
        return _Parser(source).entry(data)


class _Parser:
    """Checks an entry's JSON field by field; every refusal names the file and the field."""

    _FIELDS: ClassVar[set[str]] = {f.name for f in dataclasses.fields(Entry)}
    _LEGACY: ClassVar[set[str]] = {"reload"}
    """Fields older versions wrote that are read and ignored: what runs after a file
    change is decided by kumotui from the file, never read from an entry."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> JournalError:
        return JournalError(f"{self.source}: {where}: {problem}; kumotui will not act on it (move the file aside)")

    def entry(self, data: object) -> Entry:
        if not isinstance(data, dict):
            raise self.fail("the entry", f"expected a JSON object, got {_kind(data)}")
        unknown = sorted(set(data) - self._FIELDS - self._LEGACY)
        if unknown:
            raise self.fail(f"field {unknown[0]!r}", "unknown field")
        for required in ("id", "kind", "time", "host", "profile"):
            if required not in data:
                raise self.fail(f"field {required!r}", "missing")
        legacy = data.get("reload", [])
        if not isinstance(legacy, list) or not all(isinstance(x, str) for x in legacy):
            raise self.fail("field 'reload'", "expected a list of strings")
        changes = data.get("changes", [])
        if not isinstance(changes, list):
            raise self.fail("field 'changes'", f"expected a list, got {_kind(changes)}")
        kept = data.get("kept", [])
        if not isinstance(kept, list):
            raise self.fail("field 'kept'", f"expected a list, got {_kind(kept)}")
        return Entry(
            id=self.entry_id("id", data["id"]),
            kind=self.choice("kind", data["kind"], EntryKind),
            time=self.name("time", data["time"]),
            host=self.name("host", data["host"]),
            profile=self.name("profile", data["profile"]),
            changes=tuple(self.change(f"changes[{i}]", c) for i, c in enumerate(changes)),
            dropin=self.dropin(data.get("dropin")),
            status=self.choice("status", data.get("status", "pending"), EntryStatus),
            error=self.text("error", data.get("error"), optional=True),
            target=self.entry_id("target", data.get("target"), optional=True),
            rolled_back_by=self.entry_id("rolled_back_by", data.get("rolled_back_by"), optional=True),
            kept=tuple(self.name(f"kept[{i}]", k) for i, k in enumerate(kept)),
        )

    def text(self, where: str, value: object, *, optional: bool = False) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            want = "a string or null" if optional else "a string"
            raise self.fail(f"field {where!r}", f"expected {want}, got {_kind(value)}")
        if len(value) > MAX_TEXT:
            raise self.fail(f"field {where!r}", f"longer than {MAX_TEXT} characters")
        if "\x00" in value:
            raise self.fail(f"field {where!r}", "contains a NUL character")
        return value

    def name(self, where: str, value: object) -> str:
        """A short one-line string: a time, a host, a profile, a key."""
        text: str = self.text(where, value)
        if len(text) > 1024 or "\n" in text or _CONTROL.search(text):
            raise self.fail(f"field {where!r}", f"not a one-line name: {text[:60]!r}")
        return text

    def entry_id(self, where: str, value: object, *, optional: bool = False) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not _ID.match(value):
            raise self.fail(f"field {where!r}", f"not an entry id such as 20260314-093000-0000: {value!r:.60}")
        return value

    def choice(self, where: str, value: object, kind: type[enum.StrEnum]) -> Any:
        allowed = [str(member) for member in kind]
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(f"field {where!r}", f"{value!r:.60} is not one of {', '.join(allowed)}")
        return kind(value)

    def change(self, where: str, value: object) -> KeyChange:
        if not isinstance(value, dict) or set(value) != {"key", "before", "after"}:
            raise self.fail(where, "expected an object with exactly key, before and after")
        return KeyChange(
            self.name(f"{where}.key", value["key"]),
            self.text(f"{where}.before", value["before"]),
            self.text(f"{where}.after", value["after"]),
        )

    def dropin(self, value: object) -> DropinChange | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail("field 'dropin'", f"expected an object or null, got {_kind(value)}")
        known = {f.name: f for f in dataclasses.fields(DropinChange)}
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise self.fail(f"field 'dropin.{unknown[0]}'", "unknown field")
        fields: dict[str, Any] = {}
        for name, spec in known.items():
            where = f"dropin.{name}"
            if name not in value:
                if spec.default is dataclasses.MISSING:
                    raise self.fail(f"field {where!r}", "missing")
                continue
            item = value[name]
            annotation = str(spec.type)
            if annotation.startswith("int"):  # permission bits
                if item is None and "None" in annotation:
                    fields[name] = None
                elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 0o7777:
                    fields[name] = item
                else:
                    raise self.fail(f"field {where!r}", f"expected permission bits, got {item!r:.60}")
            else:
                text = self.text(where, item, optional="None" in annotation)
                fields[name] = self.name(where, text) if name == "path" else text
        return DropinChange(**fields)


def _kind(value: object) -> str:
    """A JSON value's kind, for messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)


@dataclass
class Journal:
    """Journal entries under ``state_dir/journal`` on one host."""

    host: Host
    state_dir: Path
    _cache: dict[str, Entry] = field(default_factory=dict, repr=False)

    @property
    def directory(self) -> Path:
        """Where the entry files live."""
        return self.state_dir / "journal"

    def create(self, entry: Entry) -> Entry:
        """Save a new entry under an id no other entry has (two in the same 100 µs get the next one)."""
        try:
            taken = set(self.host.list_dir(self.directory))
        except OSError:
            taken = set()
        stamp, _, number = entry.id.rpartition("-")
        serial = int(number)
        while f"{stamp}-{serial:04d}.json" in taken:
            serial += 1
            if serial > 9999:
                raise KumotuiError(f"cannot name a new journal entry in {self.directory}: every id of {stamp} is taken")
        return self.save(replace(entry, id=f"{stamp}-{serial:04d}"))

    def save(self, entry: Entry) -> Entry:
        """Write an entry atomically and durably (temp file, fsync, rename, fsync of the directory)."""
        try:
            self.host.replace_file(
                self.directory / f"{entry.id}.json",
                json.dumps(entry.as_json(), indent=2) + "\n",
                mode=0o600,
            )
        except OSError as error:
            raise KumotuiError(
                f"cannot write the journal in {self.directory}: {error.strerror or error} "
                "(choose another with --state-dir)"
            ) from None
        return entry

    def update(self, entry: Entry, **changes: Any) -> Entry:
        """Save a changed copy of an entry."""
        return self.save(replace(entry, **changes))

    def entries(self) -> list[Entry]:
        """All entries, oldest first.

        Raises:
            JournalError: an entry file is unreadable or malformed (named), so
                nothing acts on a journal it cannot fully read.
        """
        found, problems = self.scan()
        if problems:
            raise problems[0]
        return found

    def scan(self) -> tuple[list[Entry], list[JournalError]]:
        """Every readable entry, oldest first, and a clear error for each file that is not one."""
        try:
            names = self.host.list_dir(self.directory)
        except FileNotFoundError:
            return [], []
        except OSError as error:
            return [], [JournalError(f"cannot list the journal {self.directory}: {error.strerror or error}")]
        found: list[Entry] = []
        problems: list[JournalError] = []
        for name in sorted(n for n in names if n.endswith(".json")):
            try:
                found.append(self.read(name))
            except JournalError as error:
                problems.append(error)
        return found, problems

    def read(self, name: str) -> Entry:
        """One entry file by name, checked (see :meth:`Entry.from_json`)."""
        path = self.directory / name
        try:
            text = self.host.read_text(path)
        except OSError as error:
            raise JournalError(f"{path}: unreadable journal entry ({error.strerror or error})") from None
        except KumotuiError as error:
            raise JournalError(f"{path}: unreadable journal entry ({error})") from None
        if len(text) > MAX_ENTRY_BYTES:
            raise JournalError(f"{path}: larger than {MAX_ENTRY_BYTES} bytes, not a journal entry")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as error:
            reason = str(error) if isinstance(error, ValueError) else "nested too deeply"
            raise JournalError(f"{path}: not valid JSON ({reason}); kumotui will not act on it") from None
        entry = Entry.from_json(data, str(path))
        if f"{entry.id}.json" != name:
            raise JournalError(
                f"{path}: the entry says its id is {entry.id}, not the file's name; kumotui will not act on it"
            )
        return entry

    def get(self, entry_id: str) -> Entry:
        """One entry by id (a unique prefix is enough)."""
        entries = self.entries()
        matches = [e for e in entries if e.id.startswith(entry_id)] if entry_id else []
        if len(matches) != 1:
            known = ", ".join(e.id for e in entries[-5:]) or "none"
            what = "no" if not matches else "more than one"
            raise KumotuiError(f"{what} journal entry matches {entry_id!r} (latest: {known})")
        return matches[0]
