"""The fleet commands: ``export`` (a plan or profile for other tools), ``profile import`` and ``profile diff``.

Each is a parser (in :func:`register`) and a handler ``(args, settings) ->
ExitStatus`` that calls the core (:mod:`kumotui.tuning.export`,
:mod:`kumotui.tuning.importing`) and prints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kumotui.cli.exit_codes import ExitStatus
from kumotui.cli.options import add_command, add_global_options, whole
from kumotui.cli.tuning import only_keys
from kumotui.errors import KumotuiError
from kumotui.hosts.connect import connected
from kumotui.hosts.local import atomic_write
from kumotui.paths import DROP_IN_NAME
from kumotui.settings import Settings
from kumotui.text.escape import printable
from kumotui.text.table import table
from kumotui.tuning import export
from kumotui.tuning.export import Format
from kumotui.tuning.importing import import_files
from kumotui.tuning.plan import parse_sets
from kumotui.tuning.profiles import load_profile, pair_params
from kumotui.tuning.target import Target

if TYPE_CHECKING:
    from kumotui.cli.options import Commands


def register(commands: Commands) -> None:
    """Add ``export`` and ``profile`` to the command line."""
    exporting = add_command(
        commands,
        "export",
        help="write the plan (or the profile) as a sysctl.d drop-in, a TuneD profile or an Ansible playbook",
        description="Write what `kumotui apply` would persist on the host (never-lower rules resolved against "
        "its values, an existing drop-in's other keys kept) for the tools that apply it across a fleet: "
        f"sysctl-d is the very {DROP_IN_NAME} apply writes; tuned is a TuneD profile directory (tuned.conf); "
        "ansible is a playbook of ansible.posix.sysctl tasks plus the kumomta.service open-file drop-in. "
        "--profile-only writes the profile's own values, for hosts not yet seen. Nothing is changed on the host.",
        epilog="examples:\n  kumotui export --format sysctl-d\n"
        "  kumotui export --format ansible --host mta1 -o mta.yml\n"
        "  kumotui export --format tuned --profile-only --include network-throughput -o kumotui-kumomta",
        single_host=True,
    )
    exporting.add_argument("--format", required=True, choices=list(Format), help="what to write")
    exporting.add_argument(
        "--profile-only", action="store_true", help="the profile's own values, not resolved against a host"
    )
    exporting.add_argument(
        "--include", metavar="TUNED_PROFILE", help="tuned: a stock TuneD profile to include, e.g. network-throughput"
    )
    exporting.add_argument(
        "--concurrency",
        type=whole(1, 1 << 29),
        default=export.DEFAULT_CONCURRENCY,
        metavar="N",
        help="ansible: size kumomta.service's open-file limit for N connections, as `kumotui limits` "
        f"(default: {export.DEFAULT_CONCURRENCY})",
    )
    exporting.add_argument("--only", metavar="KEY,...", help="as apply: only these keys of the profile")
    exporting.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=[], dest="sets", help="as apply: this value too"
    )
    exporting.add_argument(
        "--output", "-o", type=Path, metavar="PATH", help="write to PATH (tuned: a directory) instead of stdout"
    )
    add_global_options(exporting, suppress=True)
    exporting.set_defaults(handler=cmd_export)

    profile = add_command(
        commands,
        "profile",
        help="import sysctl files as a profile; compare two profiles",
        description="Work with profiles: `profile import` turns sysctl.conf / sysctl.d files (or a TuneD "
        "profile's [sysctl]) into a profile; `profile diff` shows two profiles side by side.",
        epilog="examples:\n  kumotui profile import /etc/sysctl.d/*.conf --name ours -o ours.yaml\n"
        "  kumotui profile diff kumomta ours.yaml",
    )
    actions = profile.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    importing = actions.add_parser(
        "import",
        help="turn sysctl files (or a TuneD profile) into a profile",
        description="Read sysctl.conf-style files (or a TuneD tuned.conf's [sysctl]) in the order given, a later "
        "setting of a key winning as at boot, and print a profile with one `exactly` rule per key (TuneD's > and "
        "< become at-least and at-most) whose why names the file and line. Files are checked as profiles are: "
        "a bad key or value refuses the import with its file and line; patterns (*) are left out and listed.",
        epilog="examples:\n  kumotui profile import /etc/sysctl.conf /etc/sysctl.d/*.conf --name ours\n"
        "  kumotui profile import /etc/tuned/mta/tuned.conf -o ~/.config/kumotui/profiles/mta.yaml",
    )
    importing.add_argument("files", nargs="+", type=Path, metavar="FILE", help="sysctl files or a tuned.conf")
    importing.add_argument("--name", default="imported", help="the profile's name (default: imported)")
    importing.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the YAML to FILE, not stdout")
    importing.set_defaults(handler=cmd_profile_import)
    diff = actions.add_parser(
        "diff",
        help="two profiles side by side",
        description="Show every key of two profiles (names or YAML files) with each one's rule and value. "
        "Exit 0 when they set the same rules and values, 1 when they differ.",
        epilog="example:\n  kumotui profile diff kumomta kumomta-extended",
    )
    diff.add_argument("a", metavar="A", help="profile name or YAML file")
    diff.add_argument("b", metavar="B", help="profile name or YAML file")
    diff.set_defaults(handler=cmd_profile_diff)


def cmd_export(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui export``: the host's plan, or the profile as such, in the chosen format."""
    profile = load_profile(settings.profile)
    fmt = Format(args.format)
    if args.profile_only:
        if args.only or args.sets or settings.hosts:
            raise KumotuiError("--profile-only exports the profile as it is: it takes no --only, --set or --host")
        made = export.for_profile(profile, settings.clock(), include=args.include, concurrency=args.concurrency)
    else:
        only, sets = only_keys(args.only), parse_sets(args.sets)
        with connected(settings) as (host,):
            target = Target.from_settings(settings, host)
            target.tree.require_readable()
            made = export.for_host(
                profile, target, only=only, sets=sets, include=args.include, concurrency=args.concurrency
            )
    text = export.render(made, fmt)
    if args.output is None:
        sys.stdout.write(text)
        return ExitStatus.OK
    try:
        written = export.save(text, fmt, args.output)
    except OSError as error:
        raise KumotuiError(f"--output {printable(str(args.output), keep='')[:200]}: {error.strerror}") from None
    print(f"Wrote {written} ({len(made.values)} keys, {fmt})")
    return ExitStatus.OK


def cmd_profile_import(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui profile import``: print (or write) the profile; what was left out goes to stderr."""
    result = import_files(args.files, args.name, settings.clock())
    for note in result.skipped:
        print(f"kumotui: note: {note}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(result.yaml)
        return ExitStatus.OK
    try:
        atomic_write(args.output, result.yaml, 0o644, private=False)
    except OSError as error:
        raise KumotuiError(f"--output {printable(str(args.output), keep='')[:200]}: {error.strerror}") from None
    print(f"Wrote {args.output} (profile {result.profile.name}, {len(result.profile.params)} keys)")
    return ExitStatus.OK


def cmd_profile_diff(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui profile diff A B``: every key, each side's rule and value; exit 1 when any differs."""
    a, b = load_profile(args.a), load_profile(args.b)
    pairs = pair_params(a, b)
    rows = []
    for pair in pairs:
        sides = [f"{p.rule} {p.value}" if p is not None else "-" for p in (pair.a, pair.b)]
        verdict = "=" if pair.same else ("only A" if pair.b is None else "only B" if pair.a is None else "≠")
        rows.append([pair.key, *sides, verdict])
    print(f"A: {a.name} ({a.path})\nB: {b.name} ({b.path})")
    print(table(["KEY", f"A: {a.name}", f"B: {b.name}", ""], rows))
    differ = sum(1 for pair in pairs if not pair.same)
    print(f"{differ} of {len(pairs)} keys differ." if differ else f"All {len(pairs)} keys are the same.")
    return ExitStatus.NOT_OK if differ else ExitStatus.OK
