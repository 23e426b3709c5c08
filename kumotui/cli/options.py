"""Options the commands share, defined once: global options, argument types, and backend options.

Global options (``--profile``, ``--sysctl-root``, ``--host``...) are valid
before or after the command. Argument types (``type=``) refuse a bad value
while parsing, in argparse's own ``argument --flag: reason`` form, and exit 2.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from kumotui.backends import Backend
from kumotui.backends.lines import parse_size
from kumotui.bench.records import check_label
from kumotui.errors import KumotuiError
from kumotui.hosts.address import HostSpec
from kumotui.paths import DEFAULT_SYSCTL_D, DEFAULT_SYSCTL_ROOT
from kumotui.settings import DEFAULT_PROFILE, Settings

if TYPE_CHECKING:
    # argparse names no public type for what add_subparsers() returns.
    Commands: TypeAlias = "argparse._SubParsersAction[Parser]"


class Parser(argparse.ArgumentParser):
    """argparse's parser, minus one quirk: ``--flag=--`` is refused instead of becoming ``[]``.

    Python 3.11's argparse drops a ``--`` given as an option's value and then
    hands the option an empty list, unconverted by its ``type``; every path
    and number option would then receive a list. Its subparsers are this class too.
    """

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> object:
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument, got '--'")
        return super()._get_values(action, arg_strings)


class HelpFormatter(argparse.HelpFormatter):
    """Wraps prose to the terminal but keeps example lines (indented ones) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(
            indent + line
            if line.startswith("  ") or not line
            else textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
            for line in text.splitlines()
        )


def add_command(
    commands: Commands, name: str, *, help: str, description: str, epilog: str, single_host: bool = False
) -> argparse.ArgumentParser:
    """A command with the shared layout: examples in the epilog, kept on their own lines.

    ``single_host`` commands (journal, rollback, limits) refuse more than one ``--host``.
    """
    parser = commands.add_parser(name, help=help, description=description, epilog=epilog, formatter_class=HelpFormatter)
    parser.set_defaults(single_host=single_host)
    return parser


# --- argument types ------------------------------------------------------------------


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An ``int`` type within ``low``..``high`` (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low:,} to {high:,}" if high is not None else f"at least {low:,}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value:,}")
        return value

    return parse


def positive(unit: str) -> Callable[[str], float]:
    """A positive, finite number of ``unit`` (seconds, messages per second)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number of {unit}, got {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number of {unit}, got {text!r}")
        return value

    return parse


seconds = positive("seconds")
"""A positive duration in seconds."""
per_second = positive("messages per second")
"""A positive rate."""


def percent(text: str) -> float:
    """A share from 0 to 100."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be within 0-100, got {text!r}")
    return value


def size(text: str) -> int:
    """A size such as ``100000``, ``100KB`` or ``1MiB``, in the engines' own words when refused."""
    try:
        return parse_size(text, "size")
    except KumotuiError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"size {text!r}: ")) from None


PORT = whole(1, 65535)
"""A TCP port."""


def label(text: str) -> str:
    """A run label (:func:`kumotui.bench.records.check_label`)."""
    try:
        return check_label(text)
    except KumotuiError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("label ").removeprefix("label: ")) from None


def host(text: str) -> str:
    """``[user@]host[:port]`` for ``--host`` and ``--sink-host``, checked while parsing.

    A malformed host, or one that ssh would read as an option (``-F...``),
    is refused here with exit 2, before any screen opens or connection starts.
    Returns the canonical spelling, which parses back to the same host.
    """
    try:
        return str(HostSpec.parse(text))
    except KumotuiError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--host ")) from None


# --- global options ------------------------------------------------------------------


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command shares, valid before or after the command.

    On a command's parser (``suppress``) they default to SUPPRESS, so a value
    given before the command is not reset by the command's default; they come
    last in its ``--help``, under their own title.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options (also accepted before the command)" if suppress else "global")
    group.add_argument(
        "--profile",
        metavar="NAME|PATH",
        default=default(DEFAULT_PROFILE),
        help=f"profile name or YAML file (default: {DEFAULT_PROFILE})",
    )
    group.add_argument(
        "--host",
        metavar="[USER@]HOST[:PORT]",
        action="append",
        type=host,
        default=default(None),
        help="work on a remote host over SSH (OpenSSH: your keys, agent and ~/.ssh/config apply)",
    )
    group.add_argument(
        "--identity", metavar="FILE", type=Path, default=default(None), help="SSH private key for --host"
    )
    group.add_argument(
        "--sysctl-root",
        metavar="DIR",
        type=Path,
        default=default(DEFAULT_SYSCTL_ROOT),
        help="read and write kernel parameters under DIR instead of /proc/sys",
    )
    group.add_argument(
        "--sysctl-d",
        metavar="DIR",
        type=Path,
        default=default(DEFAULT_SYSCTL_D),
        help="directory for the persistent drop-in (default: /etc/sysctl.d)",
    )
    group.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        default=default(None),
        help="journal and run records (default: /var/lib/kumotui as root, else $XDG_STATE_HOME/kumotui)",
    )
    group.add_argument(
        "--system-root",
        metavar="DIR",
        type=Path,
        default=default(Path("/")),
        help="look for run/sysctl.d, usr/lib/sysctl.d and etc/sysctl.conf under DIR for "
        "boot-precedence warnings (default: /)",
    )
    group.add_argument(
        "--read-only",
        action="store_true",
        default=default(False),
        help="never write: show the exact commands and file content to run by hand",
    )


def settings_from(args: argparse.Namespace, *, single_host: bool = False) -> Settings:
    """The shared settings from parsed flags, validating paths (defaults for a command without them)."""
    root: Path = getattr(args, "sysctl_root", DEFAULT_SYSCTL_ROOT)
    hosts = tuple(getattr(args, "host", None) or ())
    identity: Path | None = getattr(args, "identity", None)
    if not hosts and not root.is_dir():
        raise KumotuiError(f"--sysctl-root {root}: no such directory")
    if single_host and len(hosts) > 1:
        raise KumotuiError(f"--host: {args.command} works on one host at a time, got {len(hosts)}")
    if identity is not None and not identity.is_file():
        raise KumotuiError(f"--identity {identity}: no such file")
    settings = Settings(
        profile=getattr(args, "profile", DEFAULT_PROFILE),
        sysctl_root=root,
        sysctl_d=getattr(args, "sysctl_d", DEFAULT_SYSCTL_D),
        system_root=getattr(args, "system_root", Path("/")),
        read_only=getattr(args, "read_only", False),
        hosts=hosts,
        identity=identity,
    )
    state_dir = getattr(args, "state_dir", None)
    return replace(settings, state_dir=state_dir) if state_dir is not None else settings


# --- benchmark options shared by `sink` and `bench` ---------------------------------


def add_backend_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str) -> None:
    """``--backend auto|builtin|kumomta|postfix``."""
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", *Backend],
        help=f"auto: kumomta when {what} installed, else builtin (default: auto)",
    )


def add_sink_answer_options(group: argparse._ArgumentGroup, *, started: str = "") -> None:
    """How a (started) sink answers: share of 451/554 replies (built-in), kumod's HTTP port and user."""
    group.add_argument(
        "--tempfail-percent",
        type=percent,
        default=0.0,
        metavar="P",
        help=f"built-in: {started}answer this share of messages with 451 at end of data",
    )
    group.add_argument(
        "--permfail-percent",
        type=percent,
        default=0.0,
        metavar="P",
        help=f"built-in: {started}answer this share of messages with 554 at end of data",
    )
    group.add_argument(
        "--responses",
        metavar="FILE",
        help=f"built-in and kumomta: {started}answer as KumoMTA's Smart Sink, per recipient domain, from FILE in its "
        "responses.toml format ('providers': kumotui's file of the big providers' real replies)",
    )
    group.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="built-in: the seed of the sink's random answers, for repeatable runs",
    )
    group.add_argument(
        "--http-port",
        type=PORT,
        default=8002,
        metavar="PORT",
        help="kumomta: kumod's HTTP listener for liveness and /metrics (default: 8002)",
    )
    group.add_argument(
        "--kumod-user",
        default="kumod",
        metavar="USER",
        help="kumomta: the account kumod drops to when started as root (default: kumod)",
    )
