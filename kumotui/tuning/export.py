"""Exports: a host's plan (or a profile as such) as a sysctl.d drop-in, a TuneD profile or an Ansible playbook.

kumotui finds the right values on one host; a fleet applies them with its
own tools. An export is decided once (:func:`for_host`, :func:`for_profile`)
and then written in any format, so the three agree on every key and value:

- ``sysctl-d`` is the very text ``kumotui apply`` persists (the plan's
  drop-in, rendered by :func:`~kumotui.tuning.dropin.render_dropin`), so an
  export and an apply on the same host and second are byte-identical;
- ``tuned`` is a profile directory's ``tuned.conf``: ``[main]`` (a summary,
  an optional ``include=`` of a stock profile) and ``[sysctl]``, with TuneD's
  ``>`` and ``<`` for at-least and at-most where TuneD can compare (one
  number), and a comment where a rule has no TuneD spelling;
- ``ansible`` is a playbook of ``ansible.posix.sysctl`` tasks into the same
  drop-in path, plus the ``kumomta.service`` open-file drop-in from
  :mod:`kumotui.tuning.limits`.

Every format starts with who wrote it (kumotui's version), the profile, the
host and the date, and gives each value its reason as a comment. Keys and
values are the validated ones of the plan or profile and are checked again
by the drop-in renderer; every comment goes through
:func:`~kumotui.tuning.dropin.comment_text`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from kumotui import __version__
from kumotui.errors import KumotuiError
from kumotui.hosts.local import atomic_write
from kumotui.paths import DEFAULT_SYSCTL_D, DROP_IN_NAME
from kumotui.tuning.dropin import comment_text, dropin_values, render_dropin
from kumotui.tuning.findings import evaluate
from kumotui.tuning.limits import UNIT_DROPIN, recommended, unit_dropin_text
from kumotui.tuning.plan import make_plan, reasons
from kumotui.tuning.profiles import Profile
from kumotui.tuning.target import Target
from kumotui.tuning.values import Rule, parse_numbers

PROFILE_ONLY_HOST = "none: the profile as such (--profile-only), not resolved against a host"
"""The header's host line of a profile exported without a host."""
TUNED_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
"""What TuneD accepts in a profile name (its loader drops any other name)."""
DEFAULT_CONCURRENCY = 20000
"""Connections the open-file limit is sized for, as ``kumotui limits`` assumes (KumoMTA's docs)."""


class Format(enum.StrEnum):
    """What an export is written as."""

    SYSCTL_D = "sysctl-d"
    TUNED = "tuned"
    ANSIBLE = "ansible"

    def default_name(self, profile: str) -> str:
        """The file (a directory for TuneD) an export is written to when no name is given."""
        if self is Format.SYSCTL_D:
            return DROP_IN_NAME
        if self is Format.TUNED:
            return tuned_name(profile)
        return f"kumotui-{profile}.yml"


@dataclass(frozen=True)
class Value:
    """One key of an export: its value, the profile's rule for it (None: an exact value) and why."""

    key: str
    value: str
    rule: Rule | None
    why: str


@dataclass(frozen=True)
class Export:
    """An export decided: the header's facts and every value, in drop-in order."""

    profile: str
    host: str
    """The host's name, or :data:`PROFILE_ONLY_HOST`."""
    when: datetime
    values: tuple[Value, ...]
    dropin: str
    """The drop-in text: for a host, exactly what ``kumotui apply`` would persist."""
    include: str | None = None
    """A stock TuneD profile the TuneD export includes."""
    nofile: int = recommended(DEFAULT_CONCURRENCY)
    """The ``LimitNOFILE=`` of the Ansible export's ``kumomta.service`` drop-in."""

    @property
    def profile_only(self) -> bool:
        """Whether the values are the profile's targets rather than one host's plan."""
        return self.host == PROFILE_ONLY_HOST

    @property
    def keys(self) -> list[str]:
        """The keys every format sets, in order."""
        return [v.key for v in self.values]


def tuned_name(profile: str) -> str:
    """The TuneD profile (directory) name for a kumotui profile: ``kumotui-NAME``, in TuneD's characters."""
    return "kumotui-" + "".join(ch if ch in TUNED_NAME_CHARS else "-" for ch in profile)


def check_include(name: str | None) -> str | None:
    """A TuneD ``include=`` name, refused unless TuneD's loader would accept it (one name, no path).

    Raises:
        KumotuiError: naming the flag and what is valid.
    """
    if name is not None and (not name or len(name) > 64 or not set(name) <= TUNED_NAME_CHARS):
        raise KumotuiError(
            f"--include {name[:64]!r}: a TuneD profile name of letters, digits and _ . - "
            "(e.g. network-throughput, throughput-performance)"
        )
    return name


def for_host(
    profile: Profile,
    target: Target,
    *,
    only: Iterable[str] | None = None,
    sets: dict[str, str] | None = None,
    excluded: Collection[str] = (),
    include: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> Export:
    """The plan ``kumotui apply`` would carry out on ``target``, as an export.

    The values are the drop-in's after the plan (the never-lower rules
    already resolved against the host's values, what an existing drop-in
    keeps), and the drop-in text is the plan's own. Nothing is written.

    Raises:
        ValidationError: a value of the plan is refused (as ``apply`` would).
    """
    plan = make_plan(profile, evaluate(profile, target.tree), target, only=only, sets=sets, excluded=excluded)
    host = target.tree.facts().hostname
    when = target.clock()
    text = plan.dropin_after
    if text is None:  # nothing to persist at all: an empty drop-in says so
        text = render_dropin({}, profile.name, when, host=host)
    values = dropin_values(text, plan.dropin)
    typed = {c.key for c in plan.changes if c.source == "--set"}
    why = reasons(profile, plan.changes, values)
    return Export(
        profile.name,
        host,
        when,
        tuple(_value(profile, key, value, why[key], exact=key in typed) for key, value in values.items()),
        text,
        check_include(include),
        recommended(concurrency),
    )


def for_profile(
    profile: Profile, when: datetime, *, include: str | None = None, concurrency: int = DEFAULT_CONCURRENCY
) -> Export:
    """A profile's own targets as an export, for hosts kumotui has not seen (``--profile-only``)."""
    values = {p.key: p.value for p in profile.params}
    why = reasons(profile, (), values)
    text = render_dropin(values, profile.name, when, host=PROFILE_ONLY_HOST, reasons=why)
    return Export(
        profile.name,
        PROFILE_ONLY_HOST,
        when,
        tuple(_value(profile, key, value, why[key]) for key, value in values.items()),
        text,
        check_include(include),
        recommended(concurrency),
    )


def _value(profile: Profile, key: str, value: str, why: str, *, exact: bool = False) -> Value:
    param = profile.param(key)
    return Value(key, value, None if exact or param is None else param.rule, why)


def render(export: Export, fmt: Format) -> str:
    """The export's text in ``fmt`` (for TuneD, the ``tuned.conf`` of the profile directory)."""
    if fmt is Format.SYSCTL_D:
        return export.dropin
    if fmt is Format.TUNED:
        return tuned_conf(export)
    return ansible_playbook(export)


def header(export: Export, what: str) -> list[str]:
    """The first comment lines of every export: who wrote it, from which profile, for which host, when."""
    return [
        f"# {what}, written by kumotui {__version__}",
        f"# Profile: {export.profile}",
        f"# Host: {comment_text(export.host)}",
        f"# Written: {export.when.isoformat(timespec='seconds')}",
    ]


# --- TuneD ---------------------------------------------------------------------------


def tuned_conf(export: Export) -> str:
    """A TuneD profile's ``tuned.conf``: ``[main]`` and ``[sysctl]``, each value after its reason."""
    name = tuned_name(export.profile)
    lines = [
        *header(export, "TuneD profile"),
        f"# Install: copy this directory to /etc/tuned/{name}/ and run `tuned-adm profile {name}`.",
        "",
        "[main]",
        f"summary=KumoMTA kernel tuning from kumotui profile {export.profile}",
        *([f"include={export.include}"] if export.include else []),
        "",
        "[sysctl]",
    ]
    for value in export.values:
        lines.append(f"# {comment_text(value.why)}")
        setting, limitation = tuned_setting(value, profile_only=export.profile_only)
        if limitation:
            lines.append(f"# {limitation}")
        lines.append(setting)
    return "\n".join(lines) + "\n"


def tuned_setting(value: Value, *, profile_only: bool) -> tuple[str, str | None]:
    """One ``[sysctl]`` line in TuneD's syntax, and a comment when the rule has no TuneD spelling.

    TuneD's sysctl plugin reads ``>N`` as "N unless the current value is
    higher" and ``<N`` as the reverse, but compares one integer only: a
    multi-number value with a prefix is written to the kernel as it stands,
    prefix and all. So the prefix goes on single numbers; other at-least,
    at-most and covers values are written as they are, and the comment says
    what that means. Multi-number values are quoted, as TuneD's own profiles
    write them. A key with a ``/`` (procps' spelling of a dot inside a name)
    means another path to TuneD, so it is left as a comment.
    """
    numbers = parse_numbers(value.value)
    text = f'"{value.value}"' if len(value.value.split()) > 1 else value.value
    if "/" in value.key:
        return f"# {value.key}={text}", "TuneD reads '/' in a key as a path separator, not a dot: set it elsewhere"
    single = numbers is not None and len(numbers) == 1
    if value.rule in (Rule.AT_LEAST, Rule.AT_MOST) and single:
        prefix = ">" if value.rule is Rule.AT_LEAST else "<"
        return f"{value.key}={prefix}{value.value}", None
    if value.rule is None or value.rule is Rule.EXACTLY:
        return f"{value.key}={text}", None
    return f"{value.key}={text}", _unexpressed(value.rule, "TuneD", profile_only=profile_only)


def _unexpressed(rule: Rule, tool: str, *, profile_only: bool) -> str:
    """The comment for a rule ``tool`` cannot state: the value is set as it stands."""
    kind = "a range" if rule is Rule.COVERS else f"{rule} for more than one number"
    resolved = "" if profile_only else ", resolved for this host"
    effect = "narrow" if rule is Rule.COVERS else ("lower" if rule is Rule.AT_LEAST else "raise")
    return (
        f"{tool} cannot say {kind}: this value is set as it stands{resolved}, "
        f"and would {effect} a host that has a {'wider' if rule is Rule.COVERS else 'better'} one"
    )


# --- Ansible -------------------------------------------------------------------------


def ansible_playbook(export: Export) -> str:
    """A playbook: one ``ansible.posix.sysctl`` task per value into the drop-in, and the nofile drop-in.

    ``kumotui_sysctl_file`` and ``kumotui_nofile_dropin`` (play variables,
    so ``-e`` overrides them) default to the paths ``kumotui apply`` and
    ``kumotui limits --apply`` write; ``kumotui_hosts`` picks the inventory
    group (default: all).
    """
    lines = [
        *header(export, "Ansible playbook"),
        "# Check first: ansible-playbook -i INVENTORY --check --diff THIS_FILE",
        "# Needs the ansible.posix collection (in the `ansible` package, or `ansible-galaxy collection install"
        " ansible.posix`).",
        f"- name: {_quoted(f'Kernel parameters for KumoMTA (kumotui profile {export.profile})')}",
        "  hosts: \"{{ kumotui_hosts | default('all') }}\"",
        "  become: true",
        "  vars:",
        f"    kumotui_sysctl_file: {_quoted(str(DEFAULT_SYSCTL_D / DROP_IN_NAME))}",
        f"    kumotui_nofile_dropin: {_quoted(str(UNIT_DROPIN))}",
        "  tasks:",
    ]
    for value in export.values:
        lines += _sysctl_task(value, profile_only=export.profile_only)
    lines += _nofile_tasks(export.nofile)
    lines += [
        "  handlers:",
        "    - name: kumotui daemon-reload",
        "      ansible.builtin.systemd_service:",
        "        daemon_reload: true",
    ]
    return "\n".join(lines) + "\n"


def _sysctl_task(value: Value, *, profile_only: bool) -> list[str]:
    lines = [f"    # {comment_text(value.why)}"]
    if value.rule not in (None, Rule.EXACTLY):
        lines.append(f"    # {_ansible_limitation(value.rule, profile_only=profile_only)}")
    return [
        *lines,
        f"    - name: {_quoted(f'{value.key} = {value.value}')}",
        "      ansible.posix.sysctl:",
        f"        name: {_quoted(value.key)}",
        f"        value: {_quoted(value.value)}",
        '        sysctl_file: "{{ kumotui_sysctl_file }}"',
        "        reload: true",
    ]


def _ansible_limitation(rule: Rule | None, *, profile_only: bool) -> str:
    if not profile_only:
        return f"{rule}: resolved against this host's value; ansible.posix.sysctl sets exact values"
    effect = {Rule.AT_LEAST: "lower", Rule.AT_MOST: "raise", Rule.COVERS: "narrow"}.get(rule or Rule.EXACTLY, "change")
    return (
        f"{rule}: ansible.posix.sysctl sets exact values, so this would {effect} a host that has better; "
        "export per host (without --profile-only) to resolve it"
    )


def _nofile_tasks(limit: int) -> list[str]:
    content = unit_dropin_text(limit)
    return [
        f"    # kumod raises its soft open-file limit to the hard one: LimitNOFILE={limit} (`kumotui limits`)",
        "    - name: kumomta.service drop-in directory",
        "      ansible.builtin.file:",
        '        path: "{{ kumotui_nofile_dropin | dirname }}"',
        "        state: directory",
        '        mode: "0755"',
        f"    - name: {_quoted(f'kumomta.service open-file limit (LimitNOFILE={limit})')}",
        "      ansible.builtin.copy:",
        '        dest: "{{ kumotui_nofile_dropin }}"',
        '        mode: "0644"',
        "        content: |",
        *(f"          {line}" for line in content.splitlines()),
        "      notify: kumotui daemon-reload",
    ]


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar: JSON's quoting is valid YAML, and kumotui's text never holds ``{{``."""
    return json.dumps(text, ensure_ascii=False)


# --- writing -------------------------------------------------------------------------


def save(text: str, fmt: Format, path: Path) -> Path:
    """Write an export where the user asked; returns the file written.

    A TuneD export is a profile directory: ``path`` is made if needed and
    ``tuned.conf`` written in it. Files are 0644 (other tools and hosts
    read them), written atomically, never through a symbolic link.

    Raises:
        RefusedPath: the file is a symbolic link.
        OSError: the directory or file cannot be written.
    """
    if fmt is Format.TUNED:
        path.mkdir(mode=0o755, parents=True, exist_ok=True)
        path = path / "tuned.conf"
    atomic_write(path, text, 0o644, private=False)
    return path
