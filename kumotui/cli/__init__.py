"""The ``kumotui`` command: the TUI with no subcommand, scripted use with one.

Exit codes: 0 success (``check``: every parameter passes), 1 a check found
problems, 2 bad input or an environment that cannot be used. Expected
failures print one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from kumotui import __version__
from kumotui.cli import bench
from kumotui.cli.options import _global_options, settings_from
from kumotui.cli.tuning import cmd_apply, cmd_check, cmd_journal, cmd_limits, cmd_rollback, cmd_simulate
from kumotui.errors import KumotuiError
from kumotui.paths import DROP_IN_NAME
from kumotui.tuning.profiles import load_profile

Command = Callable[[argparse.Namespace], int]


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
    check.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    check.set_defaults(handler=cmd_check)

    apply = commands.add_parser(
        "apply",
        help="apply a profile's changes now and persist them",
        description="Raise the parameters that are below the profile, write them at runtime, "
        f"read each back, and persist them to DIR/{DROP_IN_NAME} (--sysctl-d). "
        "Journaled; undo with `kumotui rollback`. Values already better than the "
        "profile are never lowered unless --set asks.",
    )
    _global_options(apply, suppress=True)
    apply.add_argument("--only", metavar="KEY,...", help="apply only these keys of the profile")
    apply.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="sets",
        help="write this value (repeatable); may name any key",
    )
    apply.add_argument("--no-persist", action="store_true", help="change runtime values only")
    apply.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    apply.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    apply.set_defaults(handler=cmd_apply)

    journal = commands.add_parser(
        "journal",
        help="list applied and rolled-back changes",
        description="List journal entries, oldest first.",
    )
    _global_options(journal, suppress=True)
    journal.add_argument("--json", action="store_true", help="print a JSON list")
    journal.set_defaults(handler=cmd_journal)

    undo = commands.add_parser(
        "rollback",
        help="undo an apply (default: the latest)",
        description="Restore the runtime values and the drop-in's previous content (or remove "
        "a drop-in that did not exist before) for a journal entry.",
    )
    _global_options(undo, suppress=True)
    undo.add_argument("id", nargs="?", metavar="ID", help="journal entry id or unique prefix")
    undo.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    undo.set_defaults(handler=cmd_rollback)

    limits = commands.add_parser(
        "limits",
        help="check open-file limits for a planned concurrency; fix kumomta.service",
        description="kumod and traffic-gen raise their soft open-file limit to the hard one, so the hard "
        "limit decides how many connections they can hold. Compare it with --concurrency; with --apply, "
        "write a systemd drop-in (LimitNOFILE=) for kumomta.service through the journal (undo: rollback).",
    )
    _global_options(limits, suppress=True)
    limits.add_argument(
        "--concurrency",
        type=int,
        default=20000,
        metavar="N",
        help="connections the benchmark or MTA will hold (default: 20000, KumoMTA's docs)",
    )
    limits.add_argument("--user", default="kumod", help="the account that runs kumod (default: kumod)")
    limits.add_argument("--apply", action="store_true", help="write the kumomta.service drop-in")
    limits.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    limits.set_defaults(handler=cmd_limits)

    simulate = commands.add_parser(
        "simulate",
        help="write a simulated host (a /proc/sys-like tree) to try kumotui on",
        description="Write DIR/proc/sys with a current Debian kernel's values, plus DIR/etc/sysctl.d and "
        "DIR/var/lib/kumotui, then print the flags that point kumotui at it. Nothing outside DIR is touched.",
    )
    simulate.add_argument("dir", type=Path, metavar="DIR", help="where to write the simulated host")
    simulate.set_defaults(handler=cmd_simulate)

    setup = commands.add_parser(
        "setup",
        help="guided first-time setup in the app",
        description="Open the app on the guided path: detect this host, review and apply the profile, start a "
        "sink, run a first benchmark scaled to this machine, and read a summary with next steps. Every step can "
        "be skipped; the path resumes where it stopped. Plain `kumotui` opens it by itself on first run.",
    )
    _global_options(setup, suppress=True)
    setup.set_defaults(handler=run_app)
    bench.register(commands, lambda sub: _global_options(sub, suppress=True), settings_from)
    return parser


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
    guided = True if getattr(args, "command", None) == "setup" else None  # None: on first run only
    make_app(settings, guided=guided).run()
    return 0
