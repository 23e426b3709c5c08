"""Importing what a team already runs: sysctl.conf / sysctl.d files, or a TuneD profile's ``[sysctl]``, as a profile.

Each setting becomes an ``exactly`` rule (TuneD's ``>N`` and ``<N`` become
``at-least`` and ``at-most``) whose ``why`` names the file and line it came
from, with the comment just above it when there is one. Files are read in the
order given and, as ``sysctl --system`` reads its files, a later setting of a
key wins.

The files are someone else's, so they are read as a profile is (hostile until
proven otherwise): at most :data:`MAX_IMPORT_BYTES` each, UTF-8, every key a
dotted sysctl name and every value one line of the characters a sysctl value
may hold; anything else is refused as a whole with its file, line and
reason. What cannot be a rule (a ``*`` pattern, another TuneD section, a
TuneD ``include``) is left out and said so. The YAML is read back through the
profile loader before it is returned, so an import is a profile ``--profile``
accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from kumotui import __version__
from kumotui.errors import KumotuiError
from kumotui.text.escape import printable
from kumotui.tuning.dropin import comment_text
from kumotui.tuning.profiles import MAX_TEXT_CHARS, Profile, is_valid_key, is_valid_name, parse_profile
from kumotui.tuning.values import MAX_DIGITS, Rule, is_safe_value, longest_number, normalize, parse_numbers

MAX_IMPORT_BYTES = 1024 * 1024
"""Largest file imported; a distribution's sysctl files are a few KB."""
_SECTION = re.compile(r"^\[([^\]]*)\]$")
_PATTERN_CHARS = frozenset("*?[")


class UnimportableFile(KumotuiError):
    """A file cannot be imported: its name, line and reason."""

    def __init__(self, path: Path, line: int | None, reason: str) -> None:
        where = printable(str(path), keep="") + (f":{line}" if line else "")
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Imported:
    """One setting read from a file, with where it came from."""

    key: str
    value: str
    rule: Rule
    source: str
    """``FILE:LINE``, escaped for display."""
    note: str = ""
    """The comment just above the setting, if any."""

    @property
    def why(self) -> str:
        """The profile's reason: the source, and the comment when there is one."""
        return comment_text(f"from {self.source}" + (f": {self.note}" if self.note else ""))


@dataclass(frozen=True)
class Result:
    """An import: the profile's YAML, the profile it loads as, and what was left out."""

    yaml: str
    profile: Profile
    skipped: tuple[str, ...]


def import_files(paths: list[Path], name: str, now: datetime) -> Result:
    """Read ``paths`` (sysctl.conf style or TuneD) into a profile named ``name``.

    Raises:
        UnimportableFile: a file is unreadable, too large, not UTF-8, or holds a
            bad key or value (file, line, reason).
        KumotuiError: ``name`` is not a profile name, or no setting was found.
    """
    if not is_valid_name(name):
        raise KumotuiError(f"--name {name[:64]!r}: one word of letters, digits and _ . + - (at most 64)")
    found: dict[str, Imported] = {}
    skipped: list[str] = []
    for path in paths:
        text = _read(path)
        reader = _tuned_settings if _is_tuned(text) else _sysctl_settings
        for setting in reader(text, path, skipped):
            found.pop(setting.key, None)  # a later file's setting wins and takes the later place
            found[setting.key] = setting
    if not found:
        raise KumotuiError(f"no sysctl settings in {', '.join(printable(str(p), keep='') for p in paths)[:400]}")
    text = _yaml(found.values(), name, paths, now)
    return Result(text, parse_profile(text, Path(f"{name}.yaml")), tuple(skipped))


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_IMPORT_BYTES + 1)
    except OSError as error:
        raise UnimportableFile(path, None, f"cannot read: {error.strerror}") from None
    if len(data) > MAX_IMPORT_BYTES:
        raise UnimportableFile(path, None, f"larger than {MAX_IMPORT_BYTES // 1024} KB; not a sysctl file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnimportableFile(path, data[: error.start].count(b"\n") + 1, "not UTF-8 text") from None


def _is_tuned(text: str) -> bool:
    """A TuneD profile has ``[sections]``; a sysctl file never does."""
    return any(_SECTION.match(line.strip()) for line in text.splitlines())


def _sysctl_settings(text: str, path: Path, skipped: list[str]) -> list[Imported]:
    """``key = value`` lines as procps reads them: ``#``/``;`` comments, a ``-`` prefix, ``/`` for dots."""
    settings: list[Imported] = []
    note = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            note = ""
            continue
        if line[0] in "#;":
            note = line.lstrip("#;").strip() or note
            continue
        if "=" not in line:
            raise UnimportableFile(path, number, "expected KEY = VALUE (or a # comment)")
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("-").strip()
        if "/" in key and "." not in key.split("/")[0]:
            key = key.replace("/", ".")
        setting = _setting(path, number, key, value, Rule.EXACTLY, note, skipped)
        if setting is not None:
            settings.append(setting)
        note = ""
    return settings


def _tuned_settings(text: str, path: Path, skipped: list[str]) -> list[Imported]:
    """A TuneD ``tuned.conf``: the ``[sysctl]`` section; ``>N`` and ``<N`` as at-least and at-most."""
    settings: list[Imported] = []
    section = ""
    note = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            note = line.lstrip("#;").strip() if line else ""
            continue
        header = _SECTION.match(line)
        if header:
            section = header.group(1).strip()
            if section not in ("main", "sysctl"):
                skipped.append(
                    f"{_where(path, number)}: [{comment_text(section, 60)}] is not sysctl settings: left out"
                )
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise UnimportableFile(path, number, "expected KEY=VALUE (or a [section] or # comment)")
        if section == "main" and key.strip() == "include":
            skipped.append(f"{_where(path, number)}: include={comment_text(value, 60)}: that profile is not imported")
        if section != "sysctl":
            continue
        value = re.split(r"\s#", value, maxsplit=1)[0].strip()  # TuneD's inline comments
        rule = Rule.EXACTLY
        if value[:1] in "<>" and value:
            rule = Rule.AT_LEAST if value[0] == ">" else Rule.AT_MOST
            value = value[1:]
        if "${" in value or "$(" in value:
            raise UnimportableFile(
                path, number, f"{key.strip()}: TuneD variables and functions mean nothing outside TuneD"
            )
        setting = _setting(path, number, key.strip(), value.strip().strip('"'), rule, note, skipped)
        if setting is not None:
            settings.append(setting)
        note = ""
    return settings


def _setting(
    path: Path, number: int, key: str, value: str, rule: Rule, note: str, skipped: list[str]
) -> Imported | None:
    """One setting checked as a profile's parameter is; None (and a note) for a pattern."""
    if _PATTERN_CHARS & set(key):
        skipped.append(f"{_where(path, number)}: {comment_text(key, 80)} is a pattern, not one key: left out")
        return None
    if not is_valid_key(key):
        raise UnimportableFile(
            path,
            number,
            f"'{comment_text(key, 80)}' is not a dotted sysctl name such as net.core.somaxconn: names of "
            "letters, digits and _ - / : @ +, each starting with a letter, digit or _, joined by dots",
        )
    value = normalize(value)
    if not is_safe_value(value) or longest_number(value) > MAX_DIGITS:
        raise UnimportableFile(
            path,
            number,
            f"{key}: the value '{comment_text(value, 80)}' is not one line of letters, digits, spaces and "
            f"_ . : , / % | @ + = - (numbers of at most {MAX_DIGITS} digits)",
        )
    if rule is not Rule.EXACTLY and (numbers := parse_numbers(value)) is not None and len(numbers) != 1:
        rule = Rule.EXACTLY  # TuneD itself compares one number only
    if rule is not Rule.EXACTLY and parse_numbers(value) is None:
        raise UnimportableFile(path, number, f"{key}: TuneD's {'>' if rule is Rule.AT_LEAST else '<'} needs a number")
    clean_note = comment_text(note, 200) if note and not _noise(note) else ""
    return Imported(key, value, rule, _where(path, number), clean_note)


def _noise(note: str) -> bool:
    """A comment that says nothing about the value below it (a rule of ``#``s, a licence line)."""
    return not any(ch.isalnum() for ch in note)


def _where(path: Path, number: int) -> str:
    return f"{printable(str(path), keep='')}:{number}"


def _yaml(settings: Iterable[Imported], name: str, paths: list[Path], now: datetime) -> str:
    """The profile's YAML: a comment header, then name, title, source and params in file order."""
    files = ", ".join(printable(str(p), keep="") for p in paths)
    source = comment_text(f"kumotui profile import of {files}", MAX_TEXT_CHARS // 4)
    params = {s.key: {"value": s.value, "rule": str(s.rule), "why": s.why} for s in settings}
    data = {
        "name": name,
        "title": f"Imported from {len(paths)} file{'s' if len(paths) != 1 else ''}",
        "source": source,
        "params": params,
    }
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000, default_flow_style=False)
    stamp = now.isoformat(timespec="seconds")
    comment = (
        f"# Imported by kumotui {__version__} on {stamp}: each rule is `exactly` what the files set\n"
        "# (TuneD's > and < become at-least and at-most).\n"
    )
    return comment + body
