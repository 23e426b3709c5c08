"""The shipped profiles keep the README's promises on every key they ship.

kumotui never proposes taking capacity away: an ``at-least`` value is never
lowered, an ``at-most`` one never raised, a range only widened; a parameter
that selects a mode (``tcp_tw_reuse``) is switched and said so. And a
shipped profile passes kumotui's own checks: its proposals raise no
warning (the port range's parity) that would then contradict it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kumotui.tuning.catalog import info, mode_change
from kumotui.tuning.findings import evaluate
from kumotui.tuning.plan import make_plan
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.target import Target
from kumotui.tuning.validate import check_value
from kumotui.tuning.values import Rule, parse_numbers, takes_away
from kumotui.ui.render import render_preview
from tests.support.trees import MODERN_KERNEL, host_paths, make_tree

PROFILES = ["kumomta", "kumomta-extended"]

# Kernels as operators have them: a modern default, an older one, one already tuned higher.
KERNELS = {
    "modern": MODERN_KERNEL,
    "old": {**MODERN_KERNEL, "net.core.somaxconn": "128", "net.ipv4.tcp_tw_reuse": "0"},
    "higher": {
        **MODERN_KERNEL,
        "net.ipv4.ip_local_port_range": "1024\t65535",
        "net.core.somaxconn": "65535",
        "net.ipv4.tcp_tw_reuse": "2",
    },
}


@pytest.mark.parametrize("profile_name", PROFILES)
def test_every_numeric_exactly_key_is_a_mode_in_the_catalog(profile_name: str) -> None:
    profile = load_profile(profile_name)
    for param in profile.params:
        key = param.key
        if param.rule is Rule.EXACTLY and parse_numbers(param.value) is not None:
            facts = info(key)
            assert facts is not None and facts.modes, f"{key}: an exact number must be a mode with names"


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("profile_name", PROFILES)
def test_no_shipped_proposal_takes_away_or_warns(tmp_path: Path, profile_name: str, kernel: str) -> None:
    paths = host_paths(tmp_path, make_tree(tmp_path / "tree", KERNELS[kernel]))
    from kumotui.settings import Settings

    target = Target.from_settings(
        Settings(
            sysctl_root=paths["tree"],
            sysctl_d=paths["sysctl_d"],
            state_dir=paths["state"],
            system_root=paths["system"],
        )
    )
    profile = load_profile(profile_name)
    findings = evaluate(profile, target.tree)
    for finding in findings:
        if not finding.needs_change or finding.current is None or finding.proposed is None:
            continue
        param = profile.param(finding.key)
        assert param is not None
        if mode_change(finding.key, finding.current, finding.proposed) is None:
            assert not takes_away(param.rule, finding.current, finding.proposed), finding.key
        checked = check_value(finding.key, finding.proposed, target.tree, param, finding.current)
        assert checked.warnings == () and not checked.lowers_target, (finding.key, checked.warnings)
    plan = make_plan(profile, findings, target)
    preview = render_preview(plan, profile).plain
    assert "⚠" not in preview.split("Drop-in")[0].replace("⚠ At boot", ""), preview


def test_tw_reuse_two_to_one_is_described_as_a_change_of_mode(tmp_path: Path) -> None:
    assert mode_change("net.ipv4.tcp_tw_reuse", "2", "1") == "changes mode: loopback only → all"
    assert mode_change("net.ipv4.tcp_tw_reuse", "1", "1") is None
    assert mode_change("net.core.somaxconn", "4096", "1024") is None


def test_a_parity_warning_suggests_a_wider_range_never_a_narrower_one(tmp_path: Path) -> None:
    paths = host_paths(tmp_path, make_tree(tmp_path / "tree", MODERN_KERNEL))
    from kumotui.tuning.sysctl import SysctlTree

    tree = SysctlTree(paths["tree"])
    param = load_profile("kumomta").param("net.ipv4.ip_local_port_range")
    checked = check_value("net.ipv4.ip_local_port_range", "5000 63000", tree)  # KumoMTA's published pair
    assert "e.g. 5000 63001" in checked.warnings[0]
    suggested = check_value("net.ipv4.ip_local_port_range", "5000 63001", tree, param)
    assert suggested.warnings == () and not suggested.lowers_target
    top = check_value("net.ipv4.ip_local_port_range", "1025 65535", tree, param)  # no room above: widen below
    assert "e.g. 1024 65535" in top.warnings[0]
    edge = check_value("net.ipv4.ip_local_port_range", "1024 65534", tree, param)
    assert "e.g. 1024 65535" in edge.warnings[0]
