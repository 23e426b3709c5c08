"""A hostile key against the real /proc/sys: a real file outside it is never read or written.

``kernel.//.//.//.etc.issue`` is ``/proc/sys/kernel/../../../etc/issue``
once procps swaps '.' and '/'. Inside a private mount namespace (``unshare
--mount``) a decoy file is bind-mounted over the real ``/etc/issue``, and
kumotui runs there against the default root, ``/proc/sys``: had the key
escaped, the decoy would be printed by ``check`` and overwritten by
``apply`` (the real file stays covered by the decoy either way). Nothing
outside the namespace ever sees the mount, and the real file's bytes are
compared before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.serial  # a mount namespace of its own

REAL = Path("/etc/issue")
ESCAPE = "kernel.//.//.//.etc.issue"
SECRET = "DECOY-OVER-ETC-ISSUE\n"

# Runs inside `unshare --mount --propagation private` as root.
DRIVER = """
import json, subprocess, sys
decoy, real, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
subprocess.run(["mount", "--bind", decoy, real], check=True)
out = {}
for name, args in steps.items():
    run = subprocess.run([sys.executable, "-m", "kumotui", *args], capture_output=True, text=True, timeout=60)
    out[name] = {"code": run.returncode, "out": run.stdout, "err": run.stderr, "seen": open(real).read()}
print(json.dumps(out))
"""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def mount_namespace() -> None:
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root: `unshare --mount` must work")
        pytest.skip("unshare --mount needs root")
    if not REAL.is_file():
        pytest.skip(f"{REAL} is not on this machine")


def test_hostile_key_never_reaches_a_real_file_through_proc_sys(tmp_path: Path, mount_namespace: None) -> None:
    decoy = tmp_path / "decoy"
    decoy.write_text(SECRET)
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(f"name: hostile\nparams:\n  '{ESCAPE}': {{value: pwned, rule: exactly, why: x}}\n")
    harmless = tmp_path / "harmless.yaml"  # already satisfied, so a plan holds only what --set adds
    harmless.write_text("name: harmless\nparams:\n  kernel.ostype: {value: Linux, rule: exactly, why: x}\n")
    where = ["--state-dir", str(tmp_path / "state"), "--sysctl-d", str(tmp_path / "sysctl.d")]
    steps = {
        "check": ["check", "--profile", str(hostile)],
        "apply_profile": ["apply", "--yes", "--no-persist", "--profile", str(hostile), *where],
        "apply_set": ["apply", "--yes", "--no-persist", "--profile", str(harmless), "--set", f"{ESCAPE}=pwned", *where],
    }
    real_before = digest(REAL)
    done = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            sys.executable,
            "-c",
            DRIVER,
            str(decoy),
            str(REAL),
            json.dumps(steps),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    for name, result in results.items():
        assert result["code"] == 2, (name, result)
        assert "DECOY-OVER" not in result["out"] + result["err"], (name, result)
        assert result["seen"] == SECRET, name  # the decoy, as the namespace sees /etc/issue, is intact
    assert "not a dotted sysctl name" in results["check"]["err"]
    assert f"--set '{ESCAPE}': not a sysctl name" in results["apply_set"]["err"]
    assert decoy.read_text() == SECRET
    assert digest(REAL) == real_before
    assert not (tmp_path / "state" / "journal").exists()
