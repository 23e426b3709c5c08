"""The tuning commands: ``check``, ``apply``, ``journal``, ``rollback``, ``limits``, ``simulate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kumotui.cli.options import settings_from
from kumotui.cli.output import confirm, findings_table, print_plan, print_results
from kumotui.errors import KumotuiError
from kumotui.hosts.connect import connected
from kumotui.text.table import table
from kumotui.tuning.apply import ApplyFailed, apply_plan, persist_file, rollback
from kumotui.tuning.findings import evaluate, summary
from kumotui.tuning.plan import make_plan, manual_steps, parse_sets
from kumotui.tuning.privilege import Privilege, detect_privilege, writer_for
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.sysctl import SysctlTree
from kumotui.tuning.target import Target
from kumotui.tuning.values import Status


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
    from kumotui.tuning.simulate import flags_for, make_simulated_host

    if args.dir.exists() and any(args.dir.iterdir()):
        raise KumotuiError(f"{args.dir}: not empty; choose a new directory")
    settings = make_simulated_host(args.dir.resolve())
    flags = " ".join(flags_for(settings))
    print(f"Wrote a simulated host in {args.dir}. Try:\n  kumotui {flags}\n  kumotui check {flags}")
    return 0


def cmd_limits(args: argparse.Namespace) -> int:
    """``kumotui limits``: hard nofile limits against the planned concurrency."""
    from kumotui.tuning import limits

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
