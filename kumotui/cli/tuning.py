"""The tuning commands: ``check``, ``apply``, ``journal``, ``rollback``, ``limits``, ``simulate``.

Each command is its parser (in :func:`register`) and one handler
``(args, settings) -> ExitStatus`` that parses nothing itself: it calls the
core and prints through :mod:`kumotui.cli.output`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kumotui.cli.exit_codes import ExitStatus
from kumotui.cli.options import add_command, add_global_options, whole
from kumotui.cli.output import (
    ask,
    confirm,
    findings_table,
    print_missing,
    print_plan,
    print_results,
    print_rollback_plan,
)
from kumotui.errors import KumotuiError
from kumotui.hosts import Host
from kumotui.hosts.connect import connected
from kumotui.paths import DEFAULT_SYSCTL_D, DEFAULT_SYSCTL_ROOT, DROP_IN_NAME
from kumotui.settings import Settings
from kumotui.text.table import table
from kumotui.tuning import limits, simulate
from kumotui.tuning.apply import ApplyFailed, DropinState, apply_plan, locked, persist_file, unit_dropin, verify_plan
from kumotui.tuning.findings import evaluate, summary
from kumotui.tuning.lock import holder_now
from kumotui.tuning.plan import Plan, make_plan, manual_steps, parse_sets
from kumotui.tuning.privilege import Privilege, detect_privilege, writer_for
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.redirect import TRADE_OFF, Redirect, firewall_runner, leftover, remove_redirect
from kumotui.tuning.rollback import Changed, Order, interruption_notices, journal_view, plan_rollback, rollback_all
from kumotui.tuning.simulate import flags_for
from kumotui.tuning.sysctl import SysctlTree
from kumotui.tuning.target import Target
from kumotui.tuning.values import Status

if TYPE_CHECKING:
    from kumotui.cli.options import Commands


def register(commands: Commands) -> None:
    """Add the tuning commands to the command line."""
    check = add_command(
        commands,
        "check",
        help="compare kernel parameters with a profile",
        description="Read the kernel parameters a profile names and judge each one. "
        "Exit 0 when all pass, 1 when any does not, 2 on bad input or an unreachable host. "
        "--host may be given more than once.",
        epilog="examples:\n  kumotui check\n  kumotui check --profile kumomta-extended --json --host mta1 --host mta2",
    )
    check.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_global_options(check, suppress=True)
    check.set_defaults(handler=cmd_check)

    apply = add_command(
        commands,
        "apply",
        help="apply a profile's changes now and persist them",
        description="Raise the parameters that are below the profile, write them at runtime, "
        f"read each back, and persist them to DIR/{DROP_IN_NAME} (--sysctl-d). "
        "Journaled; undo with `kumotui rollback`. Values already better than the "
        "profile are never lowered unless --set asks. --host may be given more than once.",
        epilog="examples:\n  kumotui apply --dry-run\n"
        "  kumotui apply --only net.core.somaxconn --set vm.max_map_count=1048576",
    )
    apply.add_argument("--only", metavar="KEY,...", help="apply only these keys of the profile (at least one)")
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
    add_global_options(apply, suppress=True)
    apply.set_defaults(handler=cmd_apply)

    journal = add_command(
        commands,
        "journal",
        help="list applied and rolled-back changes",
        description="List journal entries, oldest first.",
        epilog="examples:\n  kumotui journal\n  kumotui journal --json --host mta1",
        single_host=True,
    )
    journal.add_argument("--json", action="store_true", help="print a JSON list")
    add_global_options(journal, suppress=True)
    journal.set_defaults(handler=cmd_journal)

    undo = add_command(
        commands,
        "rollback",
        help="undo an apply (default: the latest)",
        description="Restore the runtime values and the drop-in's previous content (or remove "
        "a drop-in that did not exist before) for a journal entry, including an interrupted apply. "
        "Keys changed since the apply (by a later apply or by hand) are shown with their live value and "
        "need confirmation; an older entry with newer applies still in place needs --newest-first or --yes. "
        "With no ID, a port-25 redirect a benchmark left behind (bench --redirect-port25) is the newest change: "
        "it is removed first, alone.",
        epilog="examples:\n  kumotui rollback\n  kumotui rollback 20261201-212423 --yes\n"
        "  kumotui rollback 20261201-212423 --newest-first --keep-changed",
        single_host=True,
    )
    undo.add_argument("id", nargs="?", metavar="ID", help="journal entry id or unique prefix")
    undo.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="do not ask: restore keys changed since the apply too, and roll back ID alone even when newer "
        "applies are in place",
    )
    undo.add_argument(
        "--keep-changed",
        action="store_true",
        help="keep keys changed since the apply (runtime and drop-in) and restore the rest",
    )
    undo.add_argument(
        "--newest-first",
        action="store_true",
        help="first roll back newer applies that touch the same keys, newest first",
    )
    add_global_options(undo, suppress=True)
    undo.set_defaults(handler=cmd_rollback)

    redirect = add_command(
        commands,
        "redirect",
        help="show or remove the port-25 redirect a benchmark added (bench --redirect-port25)",
        description="`kumotui bench --redirect-port25` adds a firewall rule for its run that sends this host's "
        "outbound port 25 to the sink, journaled in the state dir, and removes it when the run ends. A crash "
        "can leave it behind (check, apply, bench and the app then say so): show it, or remove it (as "
        "`kumotui rollback` with no ID also does). " + TRADE_OFF,
        epilog="examples:\n  kumotui redirect show\n  kumotui redirect remove --yes",
        single_host=True,
    )
    redirect.add_argument("action", choices=["show", "remove"], help="show the rule in place, or remove it")
    redirect.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add_global_options(redirect, suppress=True)
    redirect.set_defaults(handler=cmd_redirect)

    limits_parser = add_command(
        commands,
        "limits",
        help="check open-file limits for a planned concurrency; fix kumomta.service",
        description="kumod and traffic-gen raise their soft open-file limit to the hard one, so the hard "
        "limit decides how many connections they can hold. Compare it with --concurrency; with --apply, "
        "write a systemd drop-in (LimitNOFILE=) for kumomta.service through the journal (undo: rollback).",
        epilog="examples:\n  kumotui limits\n  kumotui limits --concurrency 20000 --apply",
        single_host=True,
    )
    limits_parser.add_argument(
        "--concurrency",
        type=whole(1),
        default=20000,
        metavar="N",
        help="connections the benchmark or MTA will hold (default: 20000, KumoMTA's docs)",
    )
    limits_parser.add_argument("--user", default="kumod", help="the account that runs kumod (default: kumod)")
    limits_parser.add_argument("--apply", action="store_true", help="write the kumomta.service drop-in")
    limits_parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add_global_options(limits_parser, suppress=True)
    limits_parser.set_defaults(handler=cmd_limits)

    simulate = add_command(
        commands,
        "simulate",
        help="write a simulated host (a /proc/sys-like tree) to try kumotui on",
        description="Write DIR/proc/sys with a current Debian kernel's values, plus DIR/etc/sysctl.d and "
        "DIR/var/lib/kumotui, then print the flags that point kumotui at it. Nothing outside DIR is touched.",
        epilog="example:\n  kumotui simulate /tmp/mta-sim",
    )
    simulate.add_argument("dir", type=Path, metavar="DIR", help="where to write the simulated host")
    simulate.set_defaults(handler=cmd_simulate)


def cmd_check(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui check``: judge every parameter of the profile, on each host."""
    profile = load_profile(settings.profile)
    with connected(settings) as hosts:
        checked = []
        for host in hosts:
            tree = SysctlTree(settings.sysctl_root, host)
            tree.require_readable()
            warn_interrupted(settings, host)
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
    passed = all(f.status is Status.OK for _h, _t, fs in checked for f in fs)
    return ExitStatus.OK if passed else ExitStatus.NOT_OK


def cmd_apply(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui apply``: plan every host, confirm once, then lock, check and apply host by host.

    Every host is reached and every plan validated before the first write
    anywhere, so an unreachable host or a bad value changes nothing at all.
    After the confirmation every host's lock is taken and every plan checked
    against the host again, so nothing changed meanwhile is overwritten.
    """
    profile = load_profile(settings.profile)
    only = only_keys(args.only)
    sets = parse_sets(args.sets)
    with connected(settings) as hosts:
        plans = []
        for host in hosts:
            target = Target.from_settings(settings, host)
            target.tree.require_readable()
            warn_interrupted(settings, host, target)
            findings = evaluate(profile, target.tree)
            plan = make_plan(profile, findings, target, only=only, sets=sets, persist=not args.no_persist)
            plans.append((target, plan, detect_privilege(target), findings))
        for target, plan, _privilege, findings in plans:
            if settings.hosts:
                print(f"== {target.host.name}")
            print_plan(plan)
            print_missing(findings, only)
        if all(plan.empty for _t, plan, _p, _f in plans):
            print("\nNothing to do: the host already matches the plan.")
            return ExitStatus.OK
        if args.dry_run:
            print("\nDry run: nothing was written.")
            return ExitStatus.OK
        blocked = [(t, p) for t, p, privilege, _f in plans if privilege is Privilege.READ_ONLY and not p.empty]
        if blocked:
            why = "--read-only was given" if settings.read_only else "not root, and `sudo -n` is not allowed"
            print(f"\nkumotui cannot write here ({why}). Run these commands yourself:\n")
            for target, plan in blocked:
                print((f"# On {target.host.name}\n" if settings.hosts else "") + manual_steps(plan, target), end="")
            return ExitStatus.ERROR
        if any(plan.needs_confirmation for _t, plan, _p, _f in plans) and not confirm(
            "Some --set values go below the profile's recommendation. Really lower them?", args.yes
        ):
            print("Nothing was changed.")
            return ExitStatus.NOT_OK
        count = sum(len(plan.changes) for _t, plan, _p, _f in plans)
        where = f" on {len(plans)} hosts" if len(plans) > 1 else ""
        if not confirm(f"Apply {count} change(s){where}?", args.yes):
            print("Nothing was changed.")
            return ExitStatus.NOT_OK
        todo = [(target, plan, privilege) for target, plan, privilege, _f in plans if not plan.empty]
        with contextlib.ExitStack() as held:
            for target, _plan, _privilege in todo:  # every host locked and re-checked before the first write
                held.enter_context(locked(target))
            for target, plan, _privilege in todo:
                verify_plan(plan, target)
            return _apply_each(todo, settings)
    return ExitStatus.OK


def _apply_each(todo: list[tuple[Target, Plan, Privilege]], settings: Settings) -> ExitStatus:
    """Apply each host's plan (locks held); a failure on one host is reported and the next goes on."""
    failed = 0
    for target, plan, privilege in todo:
        if settings.hosts:
            print(f"\n== {target.host.name}")
        try:
            outcome = apply_plan(plan, target, writer=writer_for(privilege, target.host))
        except ApplyFailed as failure:
            print_results(failure.outcome)
            print(f"kumotui: {target.host.name}: apply failed: {failure}", file=sys.stderr)
            failed += 1
            continue
        except KeyboardInterrupt as interrupt:
            for note in getattr(interrupt, "__notes__", []):
                print(note, file=sys.stderr)
            raise
        print_results(outcome)
        if outcome.results or outcome.dropin is not DropinState.UNCHANGED:
            print(
                f"Journal entry {outcome.entry.id}. Undo with: kumotui rollback {outcome.entry.id}"
                + undo_flags(settings, target.host)
            )
    return ExitStatus.NOT_OK if failed else ExitStatus.OK


def only_keys(text: str | None) -> list[str] | None:
    """``--only KEY,...``: None when not given; at least one key when given."""
    if text is None:
        return None
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if not keys:
        raise KumotuiError(f"--only {text!r}: names no key; give KEY[,KEY...], e.g. --only net.core.somaxconn")
    return keys


def undo_flags(settings: Settings, host: Host) -> str:
    """The flags a ``kumotui rollback`` needs to find this journal and these files again."""
    flags: list[str] = []
    if settings.hosts:
        flags += ["--host", host.name]
    if settings.sysctl_root != DEFAULT_SYSCTL_ROOT:
        flags += ["--sysctl-root", str(settings.sysctl_root)]
    if settings.sysctl_d != DEFAULT_SYSCTL_D:
        flags += ["--sysctl-d", str(settings.sysctl_d)]
    if settings.state_dir is not None:
        flags += ["--state-dir", str(settings.state_dir)]
    if settings.system_root != Path("/"):
        flags += ["--system-root", str(settings.system_root)]
    return "".join(f" {shlex.quote(flag)}" for flag in flags)


def warn_interrupted(settings: Settings, host: Host, target: Target | None = None) -> None:
    """One line on stderr per interrupted apply or rollback on ``host``, with the command that undoes it."""
    try:
        target = target or Target.from_settings(settings, host)
        notices = interruption_notices(target, undo_flags=undo_flags(settings, host))
    except KumotuiError as error:
        notices = [f"cannot read the journal: {error}"]
    for notice in notices:
        print(f"kumotui: warning: {notice}", file=sys.stderr)


def cmd_journal(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui journal``: list entries (of the one host given)."""
    with connected(settings) as (host,):
        journal = Target.from_settings(settings, host).journal
        entries = journal.entries()
        running = holder_now(host, journal.state_dir) is not None
    if args.json:
        print(json.dumps([e.as_json() for e in entries], indent=2))
        return ExitStatus.OK
    if not entries:
        print("The journal is empty.")
        return ExitStatus.OK
    rows = []
    for view in journal_view(entries, running=running):
        e = view.entry
        status = "interrupted" if view.interrupted and e.status == "pending" else str(e.status)
        status += f" (rolled back by {view.rolled_back_by})" if view.rolled_back_by else ""
        what = e.kind + (f" of {e.target}" if e.target else "")
        keys = e.keys[0] + (f" (+{len(e.keys) - 1})" if len(e.keys) > 1 else "") if e.keys else "-"
        rows.append([e.id, e.time, e.host, e.profile, what, keys, status])
    print(table(["ID", "TIME", "HOST", "PROFILE", "KIND", "KEYS", "STATUS"], rows))
    return ExitStatus.OK


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui rollback``: show what an entry's rollback restores, confirm what needs it, roll back.

    The entry is checked as data first (keys, values, the drop-in's path);
    keys changed since the apply show their live value; newer applies in the
    way are listed newest first. The rollback itself runs under the lock and
    refuses when the host moved since what was shown.
    """
    order = Order.NEWEST_FIRST if args.newest_first else Order.REFUSE
    with connected(settings) as (host,):
        target = Target.from_settings(settings, host)
        rule = leftover(host, target.journal.state_dir)
        if rule is not None and args.id is None and not rule.running():
            # The newest change on the host: undone first, alone (run rollback again for the newest apply).
            return remove_leftover_redirect(host, target.journal.state_dir, rule, yes=args.yes)
        privilege = detect_privilege(target)
        plans = plan_rollback(target, args.id, order=order)
        chosen = plans[-1].entry
        print_rollback_plan(plans)
        first = plans[0]
        if first.newer:
            ids = [*(e.id for e in first.newer), chosen.id]
            print("\nNewer applies touching the same keys are still in place. Roll back newest first:")
            print("".join(f"  kumotui rollback {i}{undo_flags(settings, host)}\n" for i in ids), end="")
            if not args.yes:
                raise KumotuiError(
                    f"{chosen.id} is not the newest apply of its keys: re-run with --newest-first to roll back "
                    f"{', '.join(ids)} in that order, or --yes to roll back {chosen.id} alone"
                )
            order = Order.ALONE
        changed = Changed.RESTORE
        if args.keep_changed:
            changed = Changed.KEEP
        elif any(p.changed or p.dropin_changed for p in plans) and not args.yes:
            answer = ask(
                "Some keys changed since the apply. Restore them too (y), keep them as they are (k), or stop (N)?",
                {"y": "yes", "k": "keep"},
                "re-run with --yes to restore them too, or --keep-changed to keep them",
            )
            if answer is None:
                print("Nothing was changed.")
                return ExitStatus.NOT_OK
            changed = Changed.RESTORE if answer == "yes" else Changed.KEEP
        elif not confirm(f"Roll back {chosen.id} on {host.name}?", args.yes):
            print("Nothing was changed.")
            return ExitStatus.NOT_OK
        try:
            outcomes = rollback_all(
                target,
                chosen.id,
                writer=writer_for(privilege, target.host),
                changed=changed,
                order=order,
                expected=plans,
            )
        except ApplyFailed as failure:
            print_results(failure.outcome)
            print(f"kumotui: rollback failed: {failure}", file=sys.stderr)
            return ExitStatus.NOT_OK
    for outcome in outcomes:
        print_results(outcome)
        print(f"Rolled back {outcome.entry.target} (journal entry {outcome.entry.id}).")
    return ExitStatus.OK


def cmd_redirect(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui redirect show|remove``: the port-25 redirect in place on the host, if any."""
    with connected(settings) as (host,):
        state_dir = Target.from_settings(settings, host).journal.state_dir
        rule = leftover(host, state_dir)
        if rule is None:
            print(f"No port-25 redirect of kumotui's is in place on {host.name}.")
            return ExitStatus.OK
        if args.action == "remove":
            return remove_leftover_redirect(host, state_dir, rule, yes=args.yes)
        whose = (
            f"in use by a running benchmark (pid {rule.pid})"
            if rule.running()
            else "left by a benchmark that did not end cleanly"
        )
        print(
            f"On {host.name}: {rule.describe()}, {whose}.\nRemoved with:\n{rule.shown(rule.remove_commands())}", end=""
        )
    return ExitStatus.OK


def remove_leftover_redirect(host: Host, state_dir: Path, rule: Redirect, *, yes: bool) -> ExitStatus:
    """Show the commands, confirm, remove the rule and then its journal (``redirect remove``, ``rollback``)."""
    if rule.running():
        raise KumotuiError(
            f"the port-25 redirect on {host.name} belongs to a running benchmark (pid {rule.pid}); "
            "it is removed when that run ends"
        )
    print(f"On {host.name}: {rule.describe()}. Removing it with:\n{rule.shown(rule.remove_commands())}", end="")
    if not confirm(f"Remove the port-25 redirect on {host.name}?", yes):
        print("Nothing was changed.")
        return ExitStatus.NOT_OK
    remove_redirect(host, state_dir, firewall_runner(host))
    print(f"Removed the port-25 redirect on {host.name}.")
    return ExitStatus.OK


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui simulate DIR``: a practice host."""
    settings = simulate.create(args.dir)
    flags = " ".join(flags_for(settings))
    print(f"Wrote a simulated host in {args.dir}. Try:\n  kumotui {flags}\n  kumotui check {flags}")
    return ExitStatus.OK


def cmd_limits(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui limits``: hard nofile limits against the planned concurrency."""
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
            enough = all(x.enough_for(args.concurrency) for x in found if x is not None)
            return ExitStatus.OK if enough else ExitStatus.NOT_OK
        path = unit_dropin(target)
        text = limits.unit_dropin_text(limits.recommended(args.concurrency))
        print(f"\n{path}:\n" + "".join(f"  {line}\n" for line in text.splitlines()), end="")
        if not confirm(f"Write {path}?", args.yes):
            print("Nothing was changed.")
            return ExitStatus.NOT_OK
        outcome = persist_file(target, path, text, "nofile")
        print_results(outcome)
        if outcome.dropin is not DropinState.UNCHANGED:
            print(
                f"Journal entry {outcome.entry.id}. Restart kumomta.service for kumod to get the new limit. "
                f"Undo with: kumotui rollback {outcome.entry.id}"
            )
    return ExitStatus.OK
