"""Tuning profiles: YAML files naming parameters, targets, rules and reasons.

A profile is refused as a whole, with file, line and reason, when anything
in it is wrong; a half-understood profile must never drive a write.

Profiles are shared, so a file is read as hostile until proven otherwise:
at most :data:`MAX_PROFILE_BYTES`; its YAML events are screened before any
node is built (no anchors or aliases, which let a few hundred bytes expand
into gigabytes; bounded nesting; no control characters or line breaks in
any text, since names, reasons, keys and values end up in drop-ins, the
journal, a terminal and commands shown to paste; no number longer than a
kernel number, which Python's ``int()`` would refuse with a traceback).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kumotui.errors import ProfileError
from kumotui.hosts.local import require_private_dir
from kumotui.paths import config_dir, user_profiles_dir
from kumotui.tuning.values import MAX_DIGITS, Rule, longest_number, parse_numbers

# A dotted sysctl name: at least two components, each starting with a letter,
# digit or '_' (so none is empty or made only of separators). '/' may appear
# inside a component, standing for a '.' in the /proc/sys path (procps
# convention: eth0/100 is eth0.100).
_COMPONENT = r"[A-Za-z0-9_][A-Za-z0-9_\-/:@+]*"
_KEY = re.compile(rf"^{_COMPONENT}(\.{_COMPONENT})+$")
MAX_KEY_CHARS = 255
# A profile's name (and what it extends): a file name stem, one short word.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")

MAX_PROFILE_BYTES = 256 * 1024
"""Largest profile read; the shipped ones are about 4 KB."""
MAX_DEPTH = 5
"""Deepest YAML nesting: profile > params > key > fields > a list value."""
MAX_TEXT_CHARS = 4096
"""Longest text in a profile (a long ``why`` is a few hundred)."""
_INT_OR_FLOAT = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_CHAR_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", "\x1b": "an escape (ESC)"}
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
    """Whether ``key`` is a dotted sysctl name (never a path: no empty, ``.`` or ``..`` component)."""
    return len(key) <= MAX_KEY_CHARS and bool(_KEY.match(key))


def is_valid_name(name: str) -> bool:
    """Whether ``name`` may name a profile: one short word of letters, digits and ``_ . + -``."""
    return bool(_NAME.match(name))


def unsafe_char(text: str) -> str | None:
    """The first character that must not reach a file, terminal or shell line, described; else None.

    Control characters (line breaks and tabs included), format characters
    such as bidirectional overrides, line and paragraph separators.
    """
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co"):
            return _CHAR_NAMES.get(ch) or f"the character U+{ord(ch):04X}"
    return None


def shipped_profiles_dir() -> Path:
    """The profiles kumotui ships: package data in ``kumotui/profiles``, found through
    :mod:`importlib.resources` whether kumotui runs from a checkout or an installed wheel."""
    return Path(str(resources.files("kumotui") / "profiles"))


def profile_dirs() -> list[Path]:
    """Where profiles are looked up by name, first match wins.

    Raises:
        KumotuiError: the user's config or profiles dir could be changed by
            someone else (a profile planted there would drive writes as root).
    """
    user = user_profiles_dir()
    for directory in (config_dir(), user):
        require_private_dir(directory)
    return [user, shipped_profiles_dir()]


def available_profiles() -> list[tuple[str, Path]]:
    """Every profile findable by name, user profiles shadowing shipped ones."""
    found: dict[str, Path] = {}
    for directory in profile_dirs():
        for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
            found.setdefault(path.stem, path)
    return sorted(found.items())


def find_profile(name: str, *, skip: Path | None = None) -> Path | None:
    """The file for a profile name, skipping ``skip`` (so a user's ``kumomta``
    may extend the shipped ``kumomta``); None for a name that is not one short word."""
    if not is_valid_name(name):
        return None
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


def parse_profile(text: str, path: Path) -> Profile:
    """A profile from its YAML text, checked as :func:`load_profile` checks a file (``path`` names it).

    ``kumotui profile import`` reads back what it wrote through this, so
    an imported profile is one that ``--profile`` will accept.

    Raises:
        ProfileError: with file, line and reason.
    """
    return _build(*_parse_yaml(text, str(path)), path, chain=())


def _load(path: Path, chain: tuple[Path, ...]) -> Profile:
    return _build(*_read_yaml(path), path, chain)


def _build(raw: dict[str, Any], lines: dict[tuple[str, ...], int], path: Path, chain: tuple[Path, ...]) -> Profile:
    where = str(path)
    name = _name(raw, "name", where, lines, required=True)
    title = _text(raw, "title", where, lines) or name
    source = _text(raw, "source", where, lines)
    extends = _name(raw, "extends", where, lines) or None

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
    """Parse a YAML mapping, keeping the 1-based line of every key for messages.

    The events are screened (:func:`_screen`) before one node is composed,
    and the data is built from that node: the text is parsed once, and
    nothing is built from a document that failed the screen.
    """
    return _parse_yaml(_read_capped(path), str(path))


def _parse_yaml(text: str, where: str) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """:func:`_read_yaml` on text already read."""
    if len(text.encode()) > MAX_PROFILE_BYTES:
        raise ProfileError(where, None, f"larger than {MAX_PROFILE_BYTES // 1024} KB; a profile is a few KB of YAML")
    try:
        _screen(text, where)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise ProfileError(where, _error_line(error), f"YAML syntax error: {_problem(error)}") from None
    if not isinstance(data, dict):
        raise ProfileError(where, 1, "a profile must be a YAML mapping with name, title, source, params")
    lines: dict[tuple[str, ...], int] = {}
    _collect_lines(node, (), lines, where)
    for key in data:
        if key not in _TOP_FIELDS:
            allowed = ", ".join(sorted(_TOP_FIELDS))
            raise ProfileError(where, lines.get((str(key),)), f"unknown field '{key}' (allowed: {allowed})")
    return data, lines


def _read_capped(path: Path) -> str:
    """The file's text, refusing anything larger than a profile could need before reading it all."""
    where = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PROFILE_BYTES + 1)
    except OSError as error:
        raise ProfileError(where, None, f"cannot read: {error.strerror}") from None
    if len(data) > MAX_PROFILE_BYTES:
        raise ProfileError(
            where,
            None,
            f"larger than {MAX_PROFILE_BYTES // 1024} KB; a profile is a few KB of YAML, refusing to parse it",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ProfileError(where, line, "not UTF-8 text") from None


def _screen(text: str, where: str) -> None:
    """Refuse, by the event stream alone, what must never be composed or constructed.

    Raises:
        ProfileError: an anchor or alias, nesting deeper than :data:`MAX_DEPTH`,
            or a scalar refused by :func:`_screen_scalar`, with its line.
        yaml.YAMLError: the text is not YAML.
    """
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, yaml.AliasEvent):
            raise ProfileError(where, line, f"YAML alias '*{event.anchor}': {_NO_ANCHORS}")
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise ProfileError(where, line, f"YAML anchor '&{event.anchor}': {_NO_ANCHORS}")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ProfileError(where, line, f"nested deeper than {MAX_DEPTH} levels; a profile is never that deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent):
            _screen_scalar(event, where, line)


_NO_ANCHORS = (
    "anchors and aliases are not allowed in a profile (a few of them can expand into gigabytes); write the value out"
)
_RESOLVER = yaml.resolver.Resolver()


def _screen_scalar(event: yaml.ScalarEvent, where: str, line: int) -> None:
    """Refuse a scalar that is too long, holds a control character, or is a number no kernel has."""
    value = event.value
    tag = event.tag if event.tag not in (None, "!") else _resolve(value, event.implicit)
    if tag in _INT_OR_FLOAT and len(value.replace("_", "")) > MAX_DIGITS + 4:
        raise ProfileError(
            where,
            line,
            f"a number written with {len(value)} characters; kernel numbers have at most {MAX_DIGITS} digits",
        )
    if len(value) > MAX_TEXT_CHARS:
        raise ProfileError(where, line, f"text of {len(value)} characters; at most {MAX_TEXT_CHARS} are accepted")
    bad = unsafe_char(value)
    if bad:
        raise ProfileError(
            where,
            line,
            f"{bad} in text; profile text must be one line of printable characters "
            "(write a long 'why' as a folded block: why: >-)",
        )


def _resolve(value: str, implicit: tuple[bool, bool]) -> str:
    """The tag YAML gives a plain scalar (int, float, bool, str...)."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call]
    return tag


def _error_line(error: yaml.YAMLError) -> int | None:
    mark = getattr(error, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


def _problem(error: yaml.YAMLError) -> str:
    return str(getattr(error, "problem", None) or error)


def _collect_lines(
    node: yaml.Node | None, prefix: tuple[str, ...], out: dict[tuple[str, ...], int], where: str
) -> None:
    """Every key's 1-based line, by its path; a key given twice is refused (the second would win unseen)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            line = key_node.start_mark.line + 1
            if path in out:
                raise ProfileError(where, line, f"'{path[-1]}' is given twice (first on line {out[path]})")
            out[path] = line
            _collect_lines(value_node, path, out, where)


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


def _name(
    raw: dict[str, Any], key: str, where: str, lines: dict[tuple[str, ...], int], *, required: bool = False
) -> str:
    """A profile name field: one short word, since it names files and lands in drop-ins and the journal."""
    name = _text(raw, key, where, lines, required=required)
    if name and not is_valid_name(name):
        raise ProfileError(
            where,
            lines.get((key,)),
            f"'{key}' must be one word of letters, digits and _ . + - (at most 64, starting with a letter "
            f"or digit), got '{name}'",
        )
    return name


def _param(key: Any, spec: Any, where: str, lines: dict[tuple[str, ...], int], origin: str) -> Param:
    key = str(key)
    line = lines.get(("params", key))
    if not is_valid_key(key):
        raise ProfileError(
            where,
            line,
            f"'{key}' is not a dotted sysctl name such as net.core.somaxconn: names of letters, digits and "
            "_ - / : @ +, each starting with a letter, digit or _, joined by dots",
        )
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
        if longest_number(str(item)) > MAX_DIGITS:
            raise ProfileError(
                where,
                line,
                f"{key}: a number of {longest_number(str(item))} digits; kernel numbers have at most {MAX_DIGITS}",
            )
        parts.extend(str(item).split())
    if not parts:
        raise ProfileError(where, line, f"{key}: value is empty")
    if any(ch in "\n\r\x00" for ch in str(value)):
        raise ProfileError(where, line, f"{key}: value must be on one line")
    return " ".join(parts)


@dataclass(frozen=True)
class ParamPair:
    """One key of two profiles side by side (``kumotui profile diff``); None where a profile lacks it."""

    key: str
    a: Param | None
    b: Param | None

    @property
    def same(self) -> bool:
        """Both profiles have the key, with the same rule and value (the reason may differ)."""
        return (
            self.a is not None
            and self.b is not None
            and self.a.rule is self.b.rule
            and " ".join(self.a.value.split()) == " ".join(self.b.value.split())
        )


def pair_params(a: Profile, b: Profile) -> list[ParamPair]:
    """Every key of either profile, in ``a``'s order and then ``b``'s new keys."""
    keys = [p.key for p in a.params] + [p.key for p in b.params if a.param(p.key) is None]
    return [ParamPair(key, a.param(key), b.param(key)) for key in keys]
