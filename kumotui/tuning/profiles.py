"""Tuning profiles: YAML files naming parameters, targets, rules and reasons.

A profile is refused as a whole, with file, line and reason, when anything
in it is wrong; a half-understood profile must never drive a write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kumotui.errors import ProfileError
from kumotui.paths import user_profiles_dir
from kumotui.tuning.values import Rule, parse_numbers

# A dotted sysctl name: at least two components. '/' may appear inside a
# component, standing for a '.' in the /proc/sys path (procps convention).
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-/:@+]*(\.[A-Za-z0-9_\-/:@+]+)+$")
_TOP_FIELDS = {"name", "title", "source", "extends", "params"}
_PARAM_FIELDS = {"value", "rule", "why"}


@dataclass(frozen=True)
class Param:
    """One parameter of a profile."""

    key: str
    value: str
    """The target, as sysctl text (``"5000 63000"``)."""
    rule: Rule
    why: str
    origin: str = ""
    """The profile name that defined this entry (a parent's, when inherited)."""


@dataclass(frozen=True)
class Profile:
    """A resolved profile: its own params merged over its parents'."""

    name: str
    title: str
    source: str
    path: Path
    extends: str | None = None
    params: tuple[Param, ...] = field(default_factory=tuple)

    def param(self, key: str) -> Param | None:
        """The entry for ``key``, if the profile has one."""
        return next((p for p in self.params if p.key == key), None)


def is_valid_key(key: str) -> bool:
    """Whether ``key`` looks like a dotted sysctl name."""
    return bool(_KEY.match(key))


def shipped_profiles_dir() -> Path:
    """The profiles kumotui ships: package data in ``kumotui/profiles``, found through
    :mod:`importlib.resources` whether kumotui runs from a checkout or an installed wheel."""
    return Path(str(resources.files("kumotui") / "profiles"))


def profile_dirs() -> list[Path]:
    """Where profiles are looked up by name, first match wins."""
    return [user_profiles_dir(), shipped_profiles_dir()]


def available_profiles() -> list[tuple[str, Path]]:
    """Every profile findable by name, user profiles shadowing shipped ones."""
    found: dict[str, Path] = {}
    for directory in profile_dirs():
        for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
            found.setdefault(path.stem, path)
    return sorted(found.items())


def find_profile(name: str, *, skip: Path | None = None) -> Path | None:
    """The file for a profile name, skipping ``skip`` (so a user's ``kumomta``
    may extend the shipped ``kumomta``)."""
    for directory in profile_dirs():
        path = directory / f"{name}.yaml"
        if path.is_file() and (skip is None or path.resolve() != skip.resolve()):
            return path
    return None


def load_profile(spec: str) -> Profile:
    """Load a profile by name (user dir, then shipped) or by path.

    Raises:
        ProfileError: the file is missing or invalid (with file and line).
    """
    if "/" in spec or spec.endswith((".yaml", ".yml")):
        path = Path(spec)
        if not path.is_file():
            raise ProfileError(spec, None, "no such profile file")
    else:
        found = find_profile(spec)
        if found is None:
            names = ", ".join(name for name, _ in available_profiles()) or "none"
            raise ProfileError(spec, None, f"no profile of that name (available: {names})")
        path = found
    return _load(path, chain=())


def _load(path: Path, chain: tuple[Path, ...]) -> Profile:
    raw, lines = _read_yaml(path)
    where = str(path)
    name = _text(raw, "name", where, lines, required=True)
    title = _text(raw, "title", where, lines) or name
    source = _text(raw, "source", where, lines)
    extends = _text(raw, "extends", where, lines) or None

    params_raw = raw.get("params")
    if not isinstance(params_raw, dict) or not params_raw:
        raise ProfileError(
            where,
            lines.get(("params",), 1),
            "'params' must be a mapping of key: {value, rule, why}",
        )
    own = [_param(key, spec, where, lines, name) for key, spec in params_raw.items()]

    merged: dict[str, Param] = {}
    if extends:
        parent = _parent(extends, path, chain, where, lines.get(("extends",)))
        merged.update((p.key, p) for p in parent.params)
    merged.update((p.key, p) for p in own)
    return Profile(
        name=name,
        title=title,
        source=source,
        path=path,
        extends=extends,
        params=tuple(merged.values()),
    )


def _parent(name: str, path: Path, chain: tuple[Path, ...], where: str, line: int | None) -> Profile:
    resolved = path.resolve()
    parent_path = find_profile(name, skip=path)
    if parent_path is None:
        raise ProfileError(where, line, f"extends unknown profile '{name}'")
    if parent_path.resolve() in (*chain, resolved):
        cycle = " -> ".join(p.stem for p in (*chain, resolved, parent_path.resolve()))
        raise ProfileError(where, line, f"extends cycle: {cycle}")
    return _load(parent_path, (*chain, resolved))


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """Parse a YAML mapping, keeping the 1-based line of every key for messages."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ProfileError(where, None, f"cannot read: {error}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        raise ProfileError(where, line, f"YAML syntax error: {problem}") from None
    if not isinstance(data, dict):
        raise ProfileError(where, 1, "a profile must be a YAML mapping with name, title, source, params")
    lines: dict[tuple[str, ...], int] = {}
    _collect_lines(node, (), lines)
    for key in data:
        if key not in _TOP_FIELDS:
            allowed = ", ".join(sorted(_TOP_FIELDS))
            raise ProfileError(where, lines.get((str(key),)), f"unknown field '{key}' (allowed: {allowed})")
    return data, lines


def _collect_lines(node: yaml.Node | None, prefix: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            out[path] = key_node.start_mark.line + 1
            _collect_lines(value_node, path, out)


def _text(
    raw: dict[str, Any],
    key: str,
    where: str,
    lines: dict[tuple[str, ...], int],
    *,
    required: bool = False,
) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            raise ProfileError(where, 1, f"missing required field '{key}'")
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(where, lines.get((key,)), f"'{key}' must be non-empty text")
    return value.strip()


def _param(key: Any, spec: Any, where: str, lines: dict[tuple[str, ...], int], origin: str) -> Param:
    key = str(key)
    line = lines.get(("params", key))
    if not is_valid_key(key):
        raise ProfileError(where, line, f"'{key}' is not a dotted sysctl name such as net.core.somaxconn")
    if not isinstance(spec, dict):
        raise ProfileError(where, line, f"{key}: expected a mapping with value, rule and why")
    for field_name in spec:
        if field_name not in _PARAM_FIELDS:
            raise ProfileError(
                where,
                lines.get(("params", key, str(field_name)), line),
                f"{key}: unknown field '{field_name}' (allowed: rule, value, why)",
            )
    for required in ("value", "rule"):
        if required not in spec:
            raise ProfileError(where, line, f"{key}: missing '{required}'")

    rule_line = lines.get(("params", key, "rule"), line)
    try:
        rule = Rule(spec["rule"])
    except ValueError:
        valid = ", ".join(r.value for r in Rule)
        raise ProfileError(where, rule_line, f"{key}: unknown rule '{spec['rule']}' (valid: {valid})") from None

    value_line = lines.get(("params", key, "value"), line)
    value = _value_text(spec["value"], key, where, value_line)
    numbers = parse_numbers(value)
    if rule.numeric and numbers is None:
        raise ProfileError(where, value_line, f"{key}: rule '{rule}' needs whole numbers, got '{value}'")
    if rule is Rule.COVERS and (numbers is None or len(numbers) != 2 or numbers[0] > numbers[1]):
        raise ProfileError(where, value_line, f"{key}: rule 'covers' needs 'lo hi' with lo <= hi, got '{value}'")

    why = spec.get("why", "")
    if not isinstance(why, str):
        raise ProfileError(where, lines.get(("params", key, "why"), line), f"{key}: 'why' must be text")
    return Param(key=key, value=value, rule=rule, why=" ".join(why.split()), origin=origin)


def _value_text(value: Any, key: str, where: str, line: int | None) -> str:
    """A YAML scalar or list as sysctl text; floats and booleans are refused."""
    items = value if isinstance(value, list) else [value]
    parts: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ProfileError(
                where,
                line,
                f"{key}: value must be a whole number, text or a list of them, got {item!r}",
            )
        parts.extend(str(item).split())
    if not parts:
        raise ProfileError(where, line, f"{key}: value is empty")
    if any(ch in "\n\r\x00" for ch in str(value)):
        raise ProfileError(where, line, f"{key}: value must be on one line")
    return " ".join(parts)
