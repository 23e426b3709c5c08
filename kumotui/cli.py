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
from dataclasses import replace
from pathlib import Path

from kumotui import __version__, benchcli
from kumotui.apply import (
    ApplyFailed,
    Outcome,
    Plan,
    Target,
    apply_plan,
    make_plan,
    manual_steps,
    parse_sets,
    persist_file,
    rollback,
)
from kumotui.connect import connected
from kumotui.errors import KumotuiError
from kumotui.findings import Finding, evaluate, summary
from kumotui.locations import DEFAULT_SYSCTL_D, DEFAULT_SYSCTL_ROOT, DROP_IN_NAME
from kumotui.privilege import Privilege, detect_privilege, writer_for
from kumotui.profiles import DEFAULT_PROFILE, load_profile
from kumotui.settings import Settings
from kumotui.sysctl import SysctlTree
from kumotui.textfmt import STATUS_COLOUR, STATUS_ICON, table
from kumotui.values import Status, normalize

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
    benchcli.register(commands, lambda sub: _global_options(sub, suppress=True), settings_from)
    return parser


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


def cmd_check(args: argparse.Namespace) -> int:
    """``kumotui check``: judge every parameter of the profile, on each host."""
    settings = settings_from(args)
    profile = load_profile(settings.profile)
    with connected(settings) as hosts:
        checked = []
        for host in hosts:
            tree = SysctlTree(settings.sysctl_root, host)
            tree.require_readable()
            checked.append((host, tree.facts(), evaluate(profile, tree)))
    if args.json:
        documents = [
            {"profile": profile.name, "host": facts.as_dict(), "results": [f.as_json() for f in findings]}
            | ({"target": host.name} if settings.hosts else {})
            for host, facts, findings in checked
        ]
        print(json.dumps(documents[0] if len(documents) == 1 else documents, indent=2))
    else:
        print(f"Profile: {profile.name} ({profile.title})")
        for host, _facts, findings in checked:
            if settings.hosts:
                print(f"\nHost: {host.name}")
            print(findings_table(findings))
            print(summary(findings))
    return 0 if all(f.status is Status.OK for _h, _t, fs in checked for f in fs) else 1


def findings_table(findings: list[Finding]) -> str:
    """The check table: key, current, recommended, rule, status, proposed."""
    rows, colours = [], []
    for f in findings:
        status = f"{STATUS_ICON[f.status]} {f.status}"
        current = f.current if f.current is not None else f"({f.error})"
        proposed = f.proposed if f.needs_change and f.proposed is not None else "-"
        rows.append([f.key, current, f.recommended, str(f.rule), status, proposed])
        colours.append([None, None, None, None, STATUS_COLOUR[f.status], None])
    return table(["KEY", "CURRENT", "RECOMMENDED", "RULE", "STATUS", "PROPOSED"], rows, colours)


def confirm(question: str, assume_yes: bool) -> bool:
    """Ask on a terminal; refuse (not hang) when nobody can answer."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise KumotuiError(f"{question} needs confirmation: re-run with --yes (stdin is not a terminal)")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def print_plan(plan: Plan) -> None:
    """The diff, the drop-in as it will be written, and the warnings."""
    if plan.changes:
        print("Runtime changes:")
        for c in plan.changes:
            note = "  (--set)" if c.source == "--set" else ""
            print(f"  {c.key}: {normalize(c.before)} -> {c.after}{note}")
    else:
        print("Runtime changes: none (every value already passes).")
    if plan.dropin_after is not None:
        state = "unchanged" if not plan.dropin_changed else ("new file" if plan.dropin_before is None else "updated")
        print(f"\nDrop-in {plan.dropin} ({state}):")
        print("".join(f"  {line}\n" for line in plan.dropin_after.splitlines()), end="")
    for override in plan.overrides:
        print(f"warning: boot precedence: {override}")
    for warning in plan.warnings:
        print(f"warning: {warning}")


def cmd_apply(args: argparse.Namespace) -> int:
    """``kumotui apply``: plan every host, confirm once, then apply host by host.

    Every host is reached and every plan validated before the first write
    anywhere, so an unreachable host or a bad value changes nothing at all.
    """
    settings = settings_from(args)
    profile = load_profile(settings.profile)
    only = [k.strip() for k in args.only.split(",") if k.strip()] if args.only else None
    sets = parse_sets(args.sets)
    with connected(settings) as hosts:
        plans = []
        for host in hosts:
            target = Target.from_settings(settings, host)
            target.tree.require_readable()
            findings = evaluate(profile, target.tree)
            plan = make_plan(profile, findings, target, only=only, sets=sets, persist=not args.no_persist)
            plans.append((target, plan, detect_privilege(target)))
        for target, plan, _privilege in plans:
            if settings.hosts:
                print(f"== {target.host.name}")
            print_plan(plan)
        if all(plan.empty for _t, plan, _p in plans):
            print("\nNothing to do: the host already matches the plan.")
            return 0
        if args.dry_run:
            print("\nDry run: nothing was written.")
            return 0
        blocked = [(t, p) for t, p, privilege in plans if privilege is Privilege.READ_ONLY and not p.empty]
        if blocked:
            why = "--read-only was given" if settings.read_only else "not root, and `sudo -n` is not allowed"
            print(f"\nkumotui cannot write here ({why}). Run these commands yourself:\n")
            for target, plan in blocked:
                print((f"# On {target.host.name}\n" if settings.hosts else "") + manual_steps(plan, target), end="")
            return 2
        if any(plan.needs_confirmation for _t, plan, _p in plans) and not confirm(
            "Some --set values go below the profile's recommendation. Really lower them?", args.yes
        ):
            print("Nothing was changed.")
            return 1
        count = sum(len(plan.changes) for _t, plan, _p in plans)
        where = f" on {len(plans)} hosts" if len(plans) > 1 else ""
        if not confirm(f"Apply {count} change(s){where}?", args.yes):
            print("Nothing was changed.")
            return 1
        failed = 0
        for target, plan, privilege in plans:
            if settings.hosts:
                print(f"\n== {target.host.name}")
            try:
                outcome = apply_plan(plan, target, writer=writer_for(privilege, target.host))
            except ApplyFailed as failure:
                print_results(failure.outcome)
                print(f"kumotui: {target.host.name}: apply failed: {failure}", file=sys.stderr)
                failed += 1
                continue
            print_results(outcome)
            if outcome.results or outcome.dropin != "unchanged":
                print(
                    f"Journal entry {outcome.entry.id}. Undo with: kumotui rollback {outcome.entry.id}"
                    + (f" --host {target.host.name}" if settings.hosts else "")
                )
    return 1 if failed else 0


def print_results(outcome: Outcome) -> None:
    """Each key's verified result, then what happened to the drop-in."""
    print()
    for r in outcome.results:
        mark = "✔" if r.ok else "✖"
        detail = "verified" if r.ok else r.error
        print(f"{mark} {r.key} = {r.wanted}  ({detail})")
    if outcome.dropin != "untouched":
        print(f"Drop-in: {outcome.dropin}")
    for note in outcome.notes:
        print(note)


def cmd_journal(args: argparse.Namespace) -> int:
    """``kumotui journal``: list entries (of the one host given)."""
    settings = settings_from(args, single_host=True)
    with connected(settings) as (host,):
        entries = Target.from_settings(settings, host).journal.entries()
    if args.json:
        print(json.dumps([e.as_json() for e in entries], indent=2))
        return 0
    if not entries:
        print("The journal is empty.")
        return 0
    rows = []
    for e in entries:
        status = e.status + (f" (rolled back by {e.rolled_back_by})" if e.rolled_back_by else "")
        what = e.kind + (f" of {e.target}" if e.target else "")
        keys = e.keys[0] + (f" (+{len(e.keys) - 1})" if len(e.keys) > 1 else "") if e.keys else "-"
        rows.append([e.id, e.time, e.host, e.profile, what, keys, status])
    print(table(["ID", "TIME", "HOST", "PROFILE", "KIND", "KEYS", "STATUS"], rows))
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """``kumotui rollback``: undo an apply entry."""
    settings = settings_from(args, single_host=True)
    with connected(settings) as (host,):
        target = Target.from_settings(settings, host)
        privilege = detect_privilege(target)
        if not confirm("Roll back " + (args.id or "the latest apply") + f" on {host.name}?", args.yes):
            print("Nothing was changed.")
            return 1
        try:
            outcome = rollback(target, args.id, writer=writer_for(privilege, target.host))
        except ApplyFailed as failure:
            print_results(failure.outcome)
            print(f"kumotui: rollback failed: {failure}", file=sys.stderr)
            return 1
    print_results(outcome)
    print(f"\nRolled back {outcome.entry.target} (journal entry {outcome.entry.id}).")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """``kumotui simulate DIR``: a practice host."""
    from kumotui.simulate import flags_for, make_simulated_host

    if args.dir.exists() and any(args.dir.iterdir()):
        raise KumotuiError(f"{args.dir}: not empty; choose a new directory")
    settings = make_simulated_host(args.dir.resolve())
    flags = " ".join(flags_for(settings))
    print(f"Wrote a simulated host in {args.dir}. Try:\n  kumotui {flags}\n  kumotui check {flags}")
    return 0


def cmd_limits(args: argparse.Namespace) -> int:
    """``kumotui limits``: hard nofile limits against the planned concurrency."""
    from kumotui import limits

    if args.concurrency < 1:
        raise KumotuiError(f"--concurrency {args.concurrency}: must be at least 1")
    settings = settings_from(args, single_host=True)
    with connected(settings) as (host,):
        target = Target.from_settings(settings, host)
        found = [
            limits.current_account() if not settings.hosts else None,
            limits.unit_limit(host),
            limits.limits_d(host, args.user, settings.system_root / "etc"),
        ]
        rows = []
        for limit in filter(None, found):
            hard = "unlimited" if limit.hard is None else str(limit.hard)
            verdict = "✔ enough" if limit.enough_for(args.concurrency) else "▼ too low"
            rows.append([limit.who, hard, verdict, limit.source])
        print(
            f"Planned concurrency {args.concurrency} needs a hard open-file limit of at least "
            f"{limits.needed(args.concurrency)}."
        )
        print(table(["WHAT", "HARD NOFILE", "VERDICT", "FROM"], rows))
        unit = found[1]
        if not args.apply:
            if unit is not None and not unit.enough_for(args.concurrency):
                print(f"\nFix kumomta.service with: kumotui limits --concurrency {args.concurrency} --apply")
            return 0 if all(x.enough_for(args.concurrency) for x in found if x is not None) else 1
        path = settings.system_root / limits.UNIT_DROPIN.relative_to("/")
        text = limits.unit_dropin_text(limits.recommended(args.concurrency))
        print(f"\n{path}:\n" + "".join(f"  {line}\n" for line in text.splitlines()), end="")
        if not confirm(f"Write {path}?", args.yes):
            print("Nothing was changed.")
            return 1
        reload = ("systemctl", "daemon-reload") if settings.system_root == Path("/") else ()
        outcome = persist_file(target, path, text, "nofile", reload=reload)
        print_results(outcome)
        if outcome.dropin != "unchanged":
            print(
                f"Journal entry {outcome.entry.id}. Restart kumomta.service for kumod to get the new limit. "
                f"Undo with: kumotui rollback {outcome.entry.id}"
            )
    return 0


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
