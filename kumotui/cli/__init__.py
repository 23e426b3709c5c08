"""The ``kumotui`` command: the app with no command, scripted use with one.

Every command lives in :mod:`kumotui.cli.tuning` or :mod:`kumotui.cli.bench`
as a parser plus one handler ``(args, settings) -> ExitStatus``; this module
builds the parser from them and turns expected failures into one line on
stderr and the exit statuses of :class:`~kumotui.cli.exit_codes.ExitStatus`,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from kumotui import __version__
from kumotui.cli import bench, tuning
from kumotui.cli.exit_codes import ExitStatus
from kumotui.cli.options import HelpFormatter, add_global_options, settings_from
from kumotui.errors import KumotuiError
from kumotui.settings import Settings
from kumotui.tuning.profiles import load_profile

Handler = Callable[[argparse.Namespace, Settings], ExitStatus]
"""What every command is: parsed flags and the settings they make, in; an exit status, out."""


def build_parser() -> argparse.ArgumentParser:
    """The full command line, shared by :func:`main` and the docs."""
    parser = argparse.ArgumentParser(
        prog="kumotui",
        description="Tune a KumoMTA host's kernel and prove it with a live SMTP benchmark. "
        "With no command, opens the terminal app.",
        epilog="Exit status: 0 success (check: every parameter passes), 1 the answer is no (a check failed, "
        "a run was not ok, a confirmation was declined), 2 bad input or an unusable host, 130 interrupted.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kumotui {__version__}")
    add_global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    tuning.register(commands)
    bench.register(commands)
    setup = commands.add_parser(
        "setup",
        help="guided first-time setup in the app",
        description="Open the app on the guided path: detect this host, review and apply the profile, start a "
        "sink, run a first benchmark scaled to this machine, and read a summary with next steps. Every step can "
        "be skipped; the path resumes where it stopped. Plain `kumotui` opens it by itself on first run.",
    )
    add_global_options(setup, suppress=True)
    setup.set_defaults(handler=run_app, single_host=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kumotui`` console script."""
    args = build_parser().parse_args(argv)
    handler: Handler = getattr(args, "handler", run_app)
    try:
        settings = settings_from(args, single_host=getattr(args, "single_host", False))
        return int(handler(args, settings))
    except KumotuiError as error:
        print(f"kumotui: {error}", file=sys.stderr)
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        print("kumotui: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED


def run_app(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """Open the terminal app (``kumotui`` with no command, or ``kumotui setup``)."""
    from kumotui.ui.app import GuideMode, make_app  # deferred: scripted commands never load Textual

    load_profile(settings.profile)  # refuse a bad profile before the screen opens
    guided = GuideMode.ALWAYS if getattr(args, "command", None) == "setup" else GuideMode.FIRST_RUN
    make_app(settings, guided=guided).run()
    return ExitStatus.OK
