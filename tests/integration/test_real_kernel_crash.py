"""A killed apply on the real kernel, inside a new network namespace, is rolled back to the kernel's values.

Only per-namespace parameters are touched (those of
:mod:`tests.integration.test_real_kernel`): the namespace has its own
copies, and the test checks that the host's own values never changed. Each
run SIGKILLs a real ``kumotui apply`` (slowed at its write points by strace)
at a random moment, then ``kumotui rollback --yes`` must bring every value
back to what the fresh namespace's kernel had.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.test_real_kernel import NET_PROFILE, host_values
from tests.support.slow import WRITE_POINTS, slowed, strace_usable

pytestmark = [pytest.mark.netns, pytest.mark.serial]

KEYS = ["net.core.somaxconn", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse"]
RUNS = 12

# Runs inside `unshare --net`, so /proc/sys is this namespace's kernel.
DRIVER = """
import json, os, random, signal, subprocess, sys, time
from pathlib import Path
keys, flags, prefix = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
runs, journal = int(sys.argv[4]), Path(sys.argv[5])
def read():
    return {k: Path("/proc/sys", k.replace(".", "/")).read_text() for k in keys}
def entries():
    return sorted(journal.glob("*.json")) if journal.is_dir() else []
initial = read()
rng = random.Random()
results = []
for _ in range(runs):
    before = len(entries())
    apply = subprocess.Popen([*prefix, sys.executable, "-m", "kumotui", "apply", "--yes", *flags],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while apply.poll() is None and len(entries()) == before:
        time.sleep(0.001)
    time.sleep(rng.uniform(0.0, 0.4))
    try:
        os.killpg(apply.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    apply.wait()
    killed = read()
    status = json.loads(entries()[-1].read_text())["status"] if len(entries()) > before else "none"
    undo = subprocess.run([sys.executable, "-m", "kumotui", "rollback", "--yes", *flags],
                          capture_output=True, text=True)
    results.append({"status": status, "changed": sum(killed[k] != initial[k] for k in keys),
                    "code": undo.returncode, "err": undo.stderr[-400:], "after": read()})
print(json.dumps({"initial": initial, "runs": results}))
"""


def test_a_killed_apply_on_the_real_kernel_is_rolled_back_exactly(tmp_path: Path) -> None:
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --net needs root or user namespaces")
    if not strace_usable():
        pytest.skip("strace is not installed or ptrace is not allowed")
    profile = tmp_path / "netns.yaml"
    profile.write_text(NET_PROFILE)
    flags = ["--profile", str(profile)]
    for flag, name in (("--sysctl-d", "sysctl.d"), ("--state-dir", "state"), ("--system-root", "system")):
        flags += [flag, str(tmp_path / name)]
    prefix = slowed({**dict.fromkeys(WRITE_POINTS, 0.02), "write": 0.06, "fsync": 0.04})
    outside = host_values()
    run = subprocess.run(
        [
            "unshare",
            "--net",
            sys.executable,
            "-c",
            DRIVER,
            json.dumps(KEYS),
            json.dumps(flags),
            json.dumps(prefix),
            str(RUNS),
            str(tmp_path / "state" / "journal"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    hits: Counter[str] = Counter()
    for number, result in enumerate(report["runs"], start=1):
        point = f"{result['status']}, {result['changed']} of {len(KEYS)} values changed"
        hits[point] += 1
        if result["status"] == "none":
            assert result["code"] == 2 and "nothing to roll back" in result["err"], result
        else:
            assert result["code"] == 0, (number, result)
        assert result["after"] == report["initial"], (number, point, result)
    print(f"\nreal kernel (netns): {RUNS} applies SIGKILLed, every one rolled back exactly:")
    print("\n".join(f"  {count:3d}  {point}" for point, count in sorted(hits.items())))
    assert any(point.startswith("pending") for point in hits), hits
    assert host_values() == outside
