"""The ``kumotui`` command: the app with no command, scripted use with one.

Every command lives in :mod:`kumotui.cli.tuning` or :mod:`kumotui.cli.bench`
as a parser plus one handler ``(args, settings) -> ExitStatus``; this module
builds the parser from them and turns expected failures into one line on
stderr and the exit statuses of :class:`~kumotui.cli.exit_codes.ExitStatus`,
never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence

from kumotui import __version__
from kumotui.cli import bench, fleet, tuning
from kumotui.cli.exit_codes import ExitStatus
from kumotui.cli.options import HelpFormatter, Parser, add_global_options, settings_from
from kumotui.errors import KumotuiError
from kumotui.settings import Settings
from kumotui.text.escape import printable
from kumotui.tuning.profiles import load_profile

Handler = Callable[[argparse.Namespace, Settings], ExitStatus]
"""What every command is: parsed flags and the settings they make, in; an exit status, out."""


def build_parser() -> argparse.ArgumentParser:
    """The full command line, shared by :func:`main` and the docs."""
    parser = Parser(
        prog="kumotui",
        description="Tune a KumoMTA host's kernel and prove it with a live SMTP benchmark. "
        "With no command, opens the terminal app.",
        epilog="Exit status: 0 success (check: every parameter passes), 1 the answer is no (a check failed, "
        "a run was not ok, a confirmation was declined), 2 bad input or an unusable host, 70 the app crashed (a bug), "
        "130 interrupted (Ctrl+C, SIGTERM), "
        "141 the reader of stdout went away (| head).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kumotui {__version__}")
    add_global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    tuning.register(commands)
    fleet.register(commands)
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
    """Entry point of the ``kumotui`` console script.

    Expected failures become one line on stderr and an exit status, never a
    traceback: bad input (exit 2, argparse's own errors included), Ctrl+C or
    SIGTERM (130), an operating-system error nobody expected (its file and
    reason, exit 2), and a reader that went away (``kumotui check | head -1``:
    quietly, with :attr:`~kumotui.cli.exit_codes.ExitStatus.BROKEN_PIPE`, as
    Python's documentation on SIGPIPE recommends).
    """
    try:
        args = build_parser().parse_args(argv)
        handler: Handler = getattr(args, "handler", run_app)
        settings = settings_from(args, single_host=getattr(args, "single_host", False))
        return int(handler(args, settings))
    except KumotuiError as error:
        return _fail(str(error))
    except KeyboardInterrupt:
        print("kumotui: interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return _reader_gone()
    except OSError as error:
        name = os.fsdecode(error.filename) if isinstance(error.filename, (str, bytes)) else None
        where = "" if name is None else f"{name if len(name) <= 200 else name[:200] + '…'}: "
        return _fail(f"{where}{error.strerror or error}")


def _fail(message: str) -> int:
    """One line on stderr (escaped: messages quote remote hosts and files), exit 2."""
    with contextlib.suppress(OSError):
        print(f"kumotui: {printable(message, keep=chr(9) + chr(10))}", file=sys.stderr)
    return ExitStatus.ERROR


def _reader_gone() -> int:
    """stdout's reader closed the pipe: stop quietly.

    Python would otherwise complain again when it flushes stdout at exit,
    so stdout is pointed at /dev/null first (Python's documented recipe).
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return ExitStatus.BROKEN_PIPE


def run_app(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """Open the terminal app (``kumotui`` with no command, or ``kumotui setup``).

    Refuses (exit 2) without a terminal to draw on and read keys from:
    Textual reads keys from stdin and draws on stderr, and on a stdin at end
    of file (``kumotui </dev/null``, cron, a pipe) it would spin forever.
    """
    load_profile(settings.profile)  # refuse a bad profile before the screen opens
    if not _is_terminal(sys.stdin) or not _is_terminal(sys.stderr):
        raise KumotuiError(
            "the app needs a terminal (stdin and stderr must be one); "
            "for scripts use a command such as `kumotui check` (see kumotui --help)"
        )
    from kumotui.ui.app import GuideMode, make_app  # deferred: scripted commands never load Textual

    guided = GuideMode.ALWAYS if getattr(args, "command", None) == "setup" else GuideMode.FIRST_RUN
    app = make_app(settings, guided=guided)
    app.run()
    # Textual shows a crash's traceback and sets a non-zero return code; scripts must see it too.
    return ExitStatus.OK if not app.return_code else ExitStatus.CRASHED


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # closed
        return False
