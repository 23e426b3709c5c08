"""The persistent drop-in and what will win at boot.

kumotui never edits ``/etc/sysctl.conf``: it owns one drop-in file
(``/etc/sysctl.d/90-kumomta.conf`` by default) and, after writing it, works
out which file will set each key at boot the way procps ``sysctl --system``
and systemd-sysctl do, so an operator learns *before* the next reboot that
another file will override a value.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kumotui import __version__
from kumotui.errors import KumotuiError
from kumotui.hosts import Host
from kumotui.text.escape import printable
from kumotui.tuning.profiles import is_valid_key, is_valid_name
from kumotui.tuning.values import MAX_DIGITS, is_safe_value, longest_number, normalize

# Searched in this order; for the same file name, the first directory wins.
BOOT_DIRS = (
    "etc/sysctl.d",
    "run/sysctl.d",
    "usr/local/lib/sysctl.d",
    "usr/lib/sysctl.d",
    "lib/sysctl.d",
)
SYSCTL_CONF = "etc/sysctl.conf"


@dataclass(frozen=True)
class Setting:
    """One ``key = value`` line of a sysctl configuration file."""

    key: str
    value: str
    path: Path
    line: int


@dataclass(frozen=True)
class Override:
    """A file that will set a key at boot after (and differently from) ours."""

    key: str
    ours: str
    theirs: str
    path: Path
    line: int

    def __str__(self) -> str:
        return (
            f"{self.key}: {self.path}:{self.line} sets {self.theirs} and is read after the "
            f"drop-in, so at boot {self.key} will be {self.theirs}, not {self.ours}"
        )


def parse_conf(text: str, path: Path) -> list[Setting]:
    """The settings in a sysctl.conf-style file, in order.

    Follows procps: ``#`` and ``;`` start comments, a leading ``-`` means
    "ignore errors", and a key written with '/' separators is the same key
    with dots.
    """
    settings = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().lstrip("-").strip()
        if "/" in key and "." not in key.split("/")[0]:
            key = key.replace("/", ".")
        settings.append(Setting(key, normalize(value), path, number))
    return settings


class UnsafeDropin(KumotuiError):
    """A line kumotui would write to the drop-in that is not a plain ``key = value``."""


def render_dropin(
    values: Mapping[str, str],
    profile: str,
    now: datetime | None = None,
    *,
    host: str | None = None,
    reasons: Mapping[str, str] | None = None,
) -> str:
    """The drop-in's text: a header saying who wrote it, for which host, and how to undo it.

    Rendered from validated data only, checked again here because the file
    is read as root at every boot: every key a sysctl name, every value one
    line of safe characters, the profile one short word. Keys and values
    kept from an existing drop-in pass the same check. Each value follows
    its reason (``reasons``), one comment line, so a reader of the file (or
    of ``kumotui export --format sysctl-d``, which is this same text) sees
    why it is there.

    Raises:
        UnsafeDropin: naming the key or profile and what is valid.
    """
    _require_renderable(values, profile)
    stamp = (now or datetime.now().astimezone()).isoformat(timespec="seconds")
    header = [
        f"# Written by kumotui {__version__}; changes here are overwritten by `kumotui apply`.",
        f"# Profile: {profile}",
        *([f"# Host: {comment_text(host)}"] if host is not None else []),
        f"# Written: {stamp}",
        "# Undo: `kumotui rollback` (restores the previous values and this file),",
        "# or delete this file and run `sysctl --system`.",
    ]
    body: list[str] = []
    for key, value in values.items():
        reason = (reasons or {}).get(key)
        if reason:
            body += [""] * bool(body) + [f"# {comment_text(reason)}"]
        body.append(f"{key} = {value}")
    return "\n".join([*header, "", *body]) + "\n"


def comment_text(text: str, limit: int = 1000) -> str:
    """``text`` as one line fit for a ``#`` comment in any file kumotui writes.

    Reasons come from profiles and host names from hosts, both someone
    else's text: every control character (a line break would end the
    comment and start a setting) is shown escaped, and the line is capped.
    """
    flat = printable(" ".join(text.split()), keep="")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _require_renderable(values: Mapping[str, str], profile: str) -> None:
    if not is_valid_name(profile):
        raise UnsafeDropin(f"profile name {profile!r} cannot go into a drop-in: one word of letters, digits, _ . + -")
    for key, value in values.items():
        if not is_valid_key(key):
            raise UnsafeDropin(
                f"{key!r} cannot go into a drop-in: not a sysctl name such as net.core.somaxconn "
                "(if an existing drop-in has this line, fix or remove it)"
            )
        if not is_safe_value(value) or longest_number(value) > MAX_DIGITS:
            raise UnsafeDropin(
                f"{key}: the value {value!r} cannot go into a drop-in: one line of letters, digits, spaces "
                "and _ . : , / % | @ + = - (if an existing drop-in has this line, fix or remove it)"
            )


def dropin_values(text: str | None, path: Path) -> dict[str, str]:
    """The key/value lines of an existing drop-in, comments ignored."""
    if not text:
        return {}
    return {s.key: s.value for s in parse_conf(text, path)}


def boot_files(host: Host, dropin: Path, system_root: Path) -> list[Path]:
    """Every file ``sysctl --system`` would read, in the order it reads them.

    The drop-in's directory stands in for ``/etc/sysctl.d`` (the first,
    winning directory) and the drop-in counts even before it is written; the
    other directories are taken under ``system_root`` (``/`` normally).
    """
    dirs = [dropin.parent] + [system_root / d for d in BOOT_DIRS[1:]]
    chosen: dict[str, Path] = {dropin.name: dropin}
    for directory in dirs:
        try:
            names = host.list_dir(directory)
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf"):
                chosen.setdefault(name, directory / name)
    files = [chosen[name] for name in sorted(chosen)]
    return [*files, system_root / SYSCTL_CONF]


def overrides(host: Host, ours: Path, values: dict[str, str], system_root: Path) -> list[Override]:
    """Where another file, read after ours at boot, sets one of our keys differently."""
    found: dict[str, Override] = {}
    after_ours = False
    for path in boot_files(host, ours, system_root):
        if path == ours:
            after_ours = True
            continue
        try:
            text = host.read_text(path)
        except OSError:
            continue
        for setting in parse_conf(text, path):
            for key, value in values.items():
                if not fnmatch.fnmatchcase(key, setting.key):
                    continue
                if after_ours and setting.value != value:
                    found[key] = Override(key, value, setting.value, path, setting.line)
                elif after_ours:
                    found.pop(key, None)
    return list(found.values())


@dataclass(frozen=True)
class BootView:
    """Who sets each key at boot, read from every sysctl file in boot order.

    ``last`` is the file that wins today (our drop-in as it is on disk
    included); ``after_ours`` the last file read after our drop-in, which
    would override whatever apply persists.
    """

    dropin: Path
    last: dict[str, Setting]
    after_ours: dict[str, Setting]

    def outlook(self, key: str, current: str | None, write: str | None) -> tuple[str, str]:
        """(mark, words) for ``key`` after an apply: ✔ survives a reboot, ⚠ does not, · not persisted.

        ``write`` is what apply would persist for the key (None: nothing);
        otherwise the question is whether today's value comes back at boot.
        """
        if write is not None:
            later = self.after_ours.get(key)
            if later is not None and normalize(later.value) != normalize(write):
                return "⚠", f"at boot {later.path}:{later.line} sets {later.value}, overriding the drop-in"
            return "✔", f"the drop-in {self.dropin} sets it at boot"
        last = self.last.get(key)
        if last is None:
            return "·", "no file sets it: at boot the kernel's default applies"
        if current is not None and normalize(last.value) == normalize(current):
            return "✔", f"{last.path}:{last.line} sets it at boot"
        return "⚠", f"at boot {last.path}:{last.line} sets {last.value}, not today's value"


def boot_view(host: Host, ours: Path, keys: list[str], system_root: Path) -> BootView:
    """Read every sysctl file in boot order and note who sets each of ``keys`` last (see :class:`BootView`)."""
    last: dict[str, Setting] = {}
    after_ours: dict[str, Setting] = {}
    passed_ours = False
    for path in boot_files(host, ours, system_root):
        try:
            text = host.read_text(path)
        except OSError:
            text = ""
        for setting in parse_conf(text, path):
            for key in keys:
                if fnmatch.fnmatchcase(key, setting.key):
                    last[key] = setting
                    if passed_ours:
                        after_ours[key] = setting
        passed_ours = passed_ours or path == ours
    return BootView(ours, last, after_ours)
