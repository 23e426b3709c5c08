"""The journal: one JSON file per apply or rollback, on the changed host.

An entry is written *before* the first change (status ``pending``) and
completed after, so even a crash mid-apply leaves a record of every value's
previous state from which ``kumotui rollback`` can restore it.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kumotui.errors import KumotuiError
from kumotui.hosts import Host


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
    reload: tuple[str, ...] = ()
    """A command to run after the file changes (``systemctl daemon-reload``),
    on apply and on rollback alike."""

    def __post_init__(self) -> None:
        # Entries come from JSON and from callers' literals alike: hold real enums either way.
        object.__setattr__(self, "kind", EntryKind(self.kind))
        object.__setattr__(self, "status", EntryStatus(self.status))

    @property
    def keys(self) -> list[str]:
        """The keys this entry changed."""
        return [c.key for c in self.changes]

    def as_json(self) -> dict[str, Any]:
        """The stored and ``journal --json`` shape."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        """Rebuild an entry from its stored shape."""
        dropin = data.get("dropin")
        return cls(
            **{
                **data,
                "changes": tuple(KeyChange(**c) for c in data.get("changes", [])),
                "dropin": DropinChange(**dropin) if dropin else None,
                "reload": tuple(data.get("reload", ())),
            }
        )


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

    def save(self, entry: Entry) -> Entry:
        """Write an entry atomically (temp file + rename)."""
        try:
            self.host.replace_file(
                self.directory / f"{entry.id}.json",
                json.dumps(entry.as_json(), indent=2) + "\n",
                mode=0o600,
            )
        except OSError as error:
            raise KumotuiError(
                f"cannot write the journal in {self.directory}: {error.strerror} (choose another with --state-dir)"
            ) from None
        return entry

    def update(self, entry: Entry, **changes: Any) -> Entry:
        """Save a changed copy of an entry."""
        return self.save(replace(entry, **changes))

    def entries(self) -> list[Entry]:
        """All entries, oldest first."""
        try:
            names = self.host.list_dir(self.directory)
        except OSError:
            return []
        found = []
        for name in sorted(n for n in names if n.endswith(".json")):
            try:
                found.append(Entry.from_json(json.loads(self.host.read_text(self.directory / name))))
            except (OSError, ValueError, TypeError) as error:
                raise KumotuiError(f"{self.directory / name}: unreadable journal entry ({error})") from None
        return found

    def get(self, entry_id: str) -> Entry:
        """One entry by id (a unique prefix is enough)."""
        matches = [e for e in self.entries() if e.id.startswith(entry_id)]
        if len(matches) != 1:
            known = ", ".join(e.id for e in self.entries()[-5:]) or "none"
            what = "no" if not matches else "more than one"
            raise KumotuiError(f"{what} journal entry matches '{entry_id}' (latest: {known})")
        return matches[0]
