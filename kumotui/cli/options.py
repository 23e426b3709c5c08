"""Options every command shares (``--profile``, ``--sysctl-root``, ``--host``...) and the settings they make."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from kumotui.errors import KumotuiError
from kumotui.paths import DEFAULT_SYSCTL_D, DEFAULT_SYSCTL_ROOT
from kumotui.settings import DEFAULT_PROFILE, Settings


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
        help="journal and run records (default: /var/lib/kumotui as root, else $XDG_STATE_HOME/kumotui)",
    )
    parser.add_argument(
        "--system-root",
        metavar="DIR",
        type=Path,
        default=default(Path("/")),
        help="look for run/sysctl.d, usr/lib/sysctl.d and etc/sysctl.conf under DIR for "
        "boot-precedence warnings (default: /)",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        default=default(False),
        help="never write: show the exact commands and file content to run by hand",
    )
    parser.add_argument(
        "--host",
        metavar="[USER@]HOST[:PORT]",
        action="append",
        default=default(None),
        help="work on a remote host over SSH (OpenSSH: your keys, agent and ~/.ssh/config apply); "
        "check and apply accept it more than once",
    )
    parser.add_argument(
        "--identity",
        metavar="FILE",
        type=Path,
        default=default(None),
        help="SSH private key for --host",
    )


def settings_from(args: argparse.Namespace, *, single_host: bool = False) -> Settings:
    """The shared settings from parsed flags, validating paths."""
    root: Path = args.sysctl_root
    hosts = tuple(args.host or ())
    if not hosts and not root.is_dir():
        raise KumotuiError(f"--sysctl-root {root}: no such directory")
    if single_host and len(hosts) > 1:
        raise KumotuiError(f"--host: {args.command} works on one host at a time, got {len(hosts)}")
    if args.identity is not None and not args.identity.is_file():
        raise KumotuiError(f"--identity {args.identity}: no such file")
    settings = Settings(
        profile=args.profile,
        sysctl_root=root,
        sysctl_d=args.sysctl_d,
        system_root=args.system_root,
        read_only=args.read_only,
        hosts=hosts,
        identity=args.identity,
    )
    if args.state_dir is not None:
        settings = replace(settings, state_dir=args.state_dir)
    return settings
