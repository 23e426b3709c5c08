"""Apply and roll back against the real kernel, inside a new network namespace.

Only per-namespace parameters are touched (net.core.somaxconn,
net.ipv4.ip_local_port_range, net.ipv4.tcp_tw_reuse, net.ipv4.tcp_syn_retries):
the namespace gets its own copies, so the host's values never change, and
the test checks that they did not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.serial]  # serial: a namespace of its own, kept apart from the rest

NET_KEYS = ["net.core.somaxconn", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_syn_retries"]

NET_PROFILE = """\
name: netns-test
title: Per-namespace parameters only
source: kumotui tests
params:
  net.core.somaxconn: {value: 8192, rule: at-least, why: test}
  net.ipv4.ip_local_port_range: {value: "5000 63001", rule: covers, why: test}
  net.ipv4.tcp_tw_reuse: {value: 1, rule: exactly, why: test}
"""

# Runs inside `unshare --net`: every kumotui call and every read below sees
# the namespace's own kernel values.
DRIVER = """
import json, subprocess, sys
from pathlib import Path
keys, flags = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def read():
    return {k: Path("/proc/sys", k.replace(".", "/")).read_text().strip() for k in keys}
def kumotui(*args):
    run = subprocess.run([sys.executable, "-m", "kumotui", *args, *flags], capture_output=True, text=True)
    return {"code": run.returncode, "out": run.stdout, "err": run.stderr}
steps = {"initial": read()}
# A real kernel rejection mid-plan: tcp_syn_retries accepts 1..127 (EINVAL above).
steps["rejected"] = kumotui("apply", "--yes", "--set", "net.ipv4.tcp_syn_retries=200")
steps["after_rejected"] = read()
steps["applied"] = kumotui("apply", "--yes")
steps["after_apply"] = read()
steps["check"] = kumotui("check", "--json")
steps["rolled_back"] = kumotui("rollback", "--yes")
steps["after_rollback"] = read()
print(json.dumps(steps))
"""


def host_values() -> dict[str, str]:
    """This (outer) namespace's values, which must never change."""
    return {k: Path("/proc/sys", k.replace(".", "/")).read_text().strip() for k in NET_KEYS}


def unshare_available() -> bool:
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.fixture
def netns_ready() -> None:
    if not unshare_available():
        if os.environ.get("CI"):
            pytest.fail("CI must run the real-kernel tests: `unshare --net` failed (CI runs as root)")
        pytest.skip("unshare --net needs root or user namespaces")


def test_apply_and_rollback_in_a_network_namespace(tmp_path: Path, netns_ready: None) -> None:
    profile = tmp_path / "netns.yaml"
    profile.write_text(NET_PROFILE)
    flags = [
        "--profile",
        str(profile),
        "--sysctl-d",
        str(tmp_path / "sysctl.d"),
        "--state-dir",
        str(tmp_path / "state"),
        "--system-root",
        str(tmp_path / "system"),
    ]
    outside_before = host_values()
    run = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", DRIVER, json.dumps(NET_KEYS), json.dumps(flags)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    steps = json.loads(run.stdout)
    initial = steps["initial"]
    assert initial["net.ipv4.tcp_tw_reuse"] == "2"  # a fresh namespace starts at kernel defaults

    rejected = steps["rejected"]
    assert rejected["code"] == 1, rejected
    assert "net.ipv4.tcp_syn_retries = 200" in rejected["err"]
    assert "EINVAL" in rejected["err"] and "Restored the previous values" in rejected["err"]
    assert steps["after_rejected"] == initial

    assert steps["applied"]["code"] == 0, steps["applied"]
    after = steps["after_apply"]
    assert after["net.core.somaxconn"] == "8192"
    assert after["net.ipv4.ip_local_port_range"].split() == ["5000", "63001"]
    assert after["net.ipv4.tcp_tw_reuse"] == "1"
    assert after["net.ipv4.tcp_syn_retries"] == initial["net.ipv4.tcp_syn_retries"]
    assert steps["check"]["code"] == 0
    assert f"Drop-in {tmp_path / 'sysctl.d' / '90-kumomta.conf'}: written" in steps["applied"]["out"]

    assert steps["rolled_back"]["code"] == 0, steps["rolled_back"]
    assert steps["after_rollback"] == initial
    assert not (tmp_path / "sysctl.d" / "90-kumomta.conf").exists()
    journal = sorted((tmp_path / "state" / "journal").glob("*.json"))
    statuses = [json.loads(p.read_text())["status"] for p in journal]
    assert statuses == ["restored", "applied", "applied"]

    assert host_values() == outside_before
