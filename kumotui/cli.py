"""The ``kumotui`` command: the TUI with no subcommand, scripted use with one.

Exit codes: 0 success (``check``: every parameter passes), 1 a check found
problems, 2 bad input or an environment that cannot be used. Expected
failures print one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kumotui import __version__
from kumotui.errors import KumotuiError
from kumotui.findings import evaluate, summary
from kumotui.locations import DEFAULT_SYSCTL_D, DEFAULT_SYSCTL_ROOT
from kumotui.profiles import DEFAULT_PROFILE, load_profile
from kumotui.settings import Settings
from kumotui.sysctl import SysctlTree
from kumotui.textfmt import STATUS_COLOUR, STATUS_ICON, table
from kumotui.values import Status

Command = Callable[[argparse.Namespace], int]


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options valid before or after the subcommand.

    Subparsers use SUPPRESS defaults so an option given before the
    subcommand is not reset by the subparser's default.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--profile",
        metavar="NAME|PATH",
        default=default(DEFAULT_PROFILE),
        help=f"profile name or YAML file (default: {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--sysctl-root",
        metavar="DIR",
        type=Path,
        default=default(DEFAULT_SYSCTL_ROOT),
        help="read and write kernel parameters under DIR instead of /proc/sys",
    )
    parser.add_argument(
        "--sysctl-d",
        metavar="DIR",
        type=Path,
        default=default(DEFAULT_SYSCTL_D),
        help="directory for the persistent drop-in (default: /etc/sysctl.d)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        default=default(None),
        help="journal and run records (default: /var/lib/kumotui as root, "
        "else $XDG_STATE_HOME/kumotui)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full command line, shared by ``main`` and the docs."""
    parser = argparse.ArgumentParser(
        prog="kumotui",
        description="Tune a KumoMTA host's kernel and prove it with a live SMTP benchmark. "
        "With no command, opens the terminal app.",
    )
    parser.add_argument("--version", action="version", version=f"kumotui {__version__}")
    _global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="compare kernel parameters with a profile",
        description="Read the kernel parameters a profile names and judge each one. "
        "Exit 0 when all pass, 1 when any does not, 2 on bad input.",
    )
    _global_options(check, suppress=True)
    check.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    check.set_defaults(handler=cmd_check)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """The shared settings from parsed flags, validating paths."""
    root: Path = args.sysctl_root
    if not root.is_dir():
        raise KumotuiError(f"--sysctl-root {root}: no such directory")
    values = {"profile": args.profile, "sysctl_root": root, "sysctl_d": args.sysctl_d}
    if args.state_dir is not None:
        values["state_dir"] = args.state_dir
    return Settings(**values)


def cmd_check(args: argparse.Namespace) -> int:
    """``kumotui check``: judge every parameter of the profile."""
    settings = settings_from(args)
    profile = load_profile(settings.profile)
    tree = SysctlTree(settings.sysctl_root)
    findings = evaluate(profile, tree)
    if args.json:
        document = {
            "profile": profile.name,
            "host": tree.facts().as_dict(),
            "results": [f.as_json() for f in findings],
        }
        print(json.dumps(document, indent=2))
    else:
        rows, colours = [], []
        for f in findings:
            status = f"{STATUS_ICON[f.status]} {f.status}"
            proposed = f.proposed if f.needs_change else "-"
            current = f.current if f.current is not None else f"({f.error})"
            rows.append([f.key, current, f.recommended, str(f.rule), status, proposed or "-"])
            colours.append([None, None, None, None, STATUS_COLOUR[f.status], None])
        print(f"Profile: {profile.name} ({profile.title})")
        print(table(["KEY", "CURRENT", "RECOMMENDED", "RULE", "STATUS", "PROPOSED"], rows, colours))
        print(summary(findings))
    return 0 if all(f.status is Status.OK for f in findings) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kumotui`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Command | None = getattr(args, "handler", None)
    try:
        if handler is None:
            return run_app(args)
        return handler(args)
    except KumotuiError as error:
        print(f"kumotui: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kumotui: interrupted", file=sys.stderr)
        return 130


def run_app(args: argparse.Namespace) -> int:
    """Open the terminal app."""
    from kumotui.ui.app import make_app  # deferred: scripted commands never load Textual

    settings = settings_from(args)
    load_profile(settings.profile)  # refuse a bad profile before the screen opens
    make_app(settings).run()
    return 0
