"""The real ``sudo -n``, used by a throwaway unprivileged user, inside a private mount namespace.

Nothing on the machine changes: the user ``kumotuitest`` (uid 4242) exists
only in copies of ``/etc/passwd``, ``/etc/group`` and ``/etc/shadow``
bind-mounted over the real ones, its ``NOPASSWD`` rule only in a directory
bind-mounted over ``/etc/sudoers.d``, and sudo's own state dirs are tmpfs;
all of it vanishes with the namespace (``unshare --mount``). The user runs
kumotui's real :class:`~kumotui.tuning.privilege.SudoWriter` (with the
system ``python3``, no capabilities, no access to root's files) against
files root owns, where links were planted at the old writer's predictable
temp name and in a simulated tree.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.serial  # a mount namespace, sudo

UID = 4242
USER = "kumotuitest"
DECOY = "DECOY: owned by root, never to be written\n"
TEXT = "# drop-in\nvm.max_map_count = 768000\n"
REPO = Path(__file__).resolve().parents[2]

# Runs as root inside the namespace: put the throwaway user in place, then run USER_SCRIPT as it.
SETUP = """
import subprocess, sys
work, script = sys.argv[1], sys.argv[2]
for name in ("passwd", "group", "shadow"):
    subprocess.run(["mount", "--bind", f"{work}/etc/{name}", f"/etc/{name}"], check=True)
subprocess.run(["mount", "--bind", f"{work}/etc/sudoers.d", "/etc/sudoers.d"], check=True)
for state in ("/run/sudo", "/var/lib/sudo"):
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", state], check=True)
drop = ["setpriv", "--reuid", "4242", "--regid", "4242", "--clear-groups", "--inh-caps=-all"]
env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}
user = [*drop, "--", "/usr/bin/python3", "-I", "-c", script, work]
done = subprocess.run(user, env=env, capture_output=True, text=True)
sys.stdout.write(done.stdout)
sys.stderr.write(done.stderr)
sys.exit(done.returncode)
"""

# Runs as the unprivileged user: kumotui's real SudoWriter, a minimal host around subprocess.
USER_SCRIPT = """
import errno, json, os, subprocess, sys
sys.path.insert(0, REPO)
from pathlib import Path
from kumotui.hosts import Completed
from kumotui.tuning.privilege import SudoWriter

class ThisMachine:
    name = "local"
    def run(self, args, stdin=None):
        done = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=60)
        return Completed(done.returncode, done.stdout, done.stderr)

work = Path(sys.argv[1])
writer = SudoWriter(ThisMachine())
out = {"uid": os.getuid(), "euid": os.geteuid()}
out["caps"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapPrm", "CapEff"))]
try:
    Path(work, "sysctl.d", "probe").write_text("x")
    out["could_write_as_user"] = True
except PermissionError:
    out["could_write_as_user"] = False
def attempt(name, action):
    try:
        action()
        out[name] = "ok"
    except Exception as error:
        out[name] = type(error).__name__ + ": " + str(error)
# A link another user left at the old predictable temp name: must not redirect root's write.
attempt("dropin", lambda: writer.replace_file(work / "sysctl.d" / "90-kumomta.conf", TEXT, 0o644))
# A directory this user owns: root must not write there (the user could swap files under it).
os.symlink(work / "decoy", work / "mine" / ".90-kumomta.conf.kumotui-tmp")
attempt("user_dir", lambda: writer.replace_file(work / "mine" / "90-kumomta.conf", TEXT, 0o644))
# Kernel values, beneath a root-owned tree: a plain one, then one through a linked directory.
attempt("value", lambda: writer.write_value(work / "tree", "vm/max_map_count", "768000\\n"))
attempt("linked_value", lambda: writer.write_value(work / "tree", "net/core/somaxconn", "1\\n"))
print(json.dumps(out))
""".replace("REPO", repr(str(REPO))).replace("TEXT", repr(TEXT))


def prepare(work: Path) -> None:
    """Root-owned files and a user-owned dir under a traversable work dir, plus the namespace's /etc copies."""
    work.chmod(0o755)
    (work / "decoy").write_text(DECOY)
    (work / "sysctl.d").mkdir(mode=0o755)
    (work / "sysctl.d" / ".90-kumomta.conf.kumotui-tmp").symlink_to(work / "decoy")
    (work / "mine").mkdir(mode=0o755)
    os.chown(work / "mine", UID, UID)
    (work / "tree" / "vm").mkdir(parents=True)
    (work / "tree" / "vm" / "max_map_count").write_text("65530\n")
    (work / "tree" / "net").mkdir()
    (work / "outside").mkdir()
    (work / "outside" / "somaxconn").write_text(DECOY)
    (work / "tree" / "net" / "core").symlink_to(work / "outside")
    etc = work / "etc"
    etc.mkdir(mode=0o755)
    lines = {
        "passwd": f"{USER}:x:{UID}:{UID}::/nonexistent:/usr/sbin/nologin\n",
        "group": f"{USER}:x:{UID}:\n",
        "shadow": f"{USER}:*:19000:0:99999:7:::\n",
    }
    for name, line in lines.items():
        shutil.copy2(f"/etc/{name}", etc / name)
        with (etc / name).open("a") as handle:
            handle.write(line)
    (etc / "sudoers.d").mkdir(mode=0o755)
    rule = etc / "sudoers.d" / "kumotuitest"
    rule.write_text(f"{USER} ALL=(root) NOPASSWD: ALL\n")
    rule.chmod(0o440)


@pytest.fixture
def work() -> Iterator[Path]:
    """A work dir under /tmp the user can traverse (pytest's own are 0700 root)."""
    if os.geteuid() != 0 or not shutil.which("sudo") or not shutil.which("setpriv"):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with sudo and util-linux installed")
        pytest.skip("needs root, sudo and setpriv")
    path = Path(tempfile.mkdtemp(prefix="kumotui-sudo-test-", dir="/tmp"))
    try:
        prepare(path)
        yield path
    finally:
        shutil.rmtree(path)


def test_sudo_writes_as_root_where_kumotui_means_and_nowhere_else(work: Path) -> None:
    watched = {p: p.stat().st_mtime_ns for p in (Path("/etc/passwd"), Path("/etc/sudoers.d"), Path("/run/sudo"))}
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", sys.executable, "-c", SETUP, str(work), USER_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["uid"], result["euid"], result["could_write_as_user"]) == (UID, UID, False)
    assert result["caps"] == ["0000000000000000", "0000000000000000"]  # no capability left
    # The planted link at the old temp name was left alone; the drop-in is root's, 0644, exactly TEXT.
    assert result["dropin"] == "ok", result
    assert (work / "decoy").read_text() == DECOY
    dropin = work / "sysctl.d" / "90-kumomta.conf"
    assert dropin.read_text() == TEXT and not dropin.is_symlink()
    assert (dropin.stat().st_uid, stat.S_IMODE(dropin.stat().st_mode)) == (0, 0o644)
    # Root refuses a directory the user owns, naming it and the fix.
    assert f"{work / 'mine'} belongs to {USER}, not to root" in result["user_dir"], result
    assert not (work / "mine" / "90-kumomta.conf").exists()
    # Values go beneath the tree; the linked directory is refused with ELOOP.
    assert result["value"] == "ok" and (work / "tree" / "vm" / "max_map_count").read_text() == "768000\n"
    assert result["linked_value"].startswith("OSError: [Errno 40]"), result
    assert (work / "outside" / "somaxconn").read_text() == DECOY
    # Nothing outside the namespace changed.
    assert {p: p.stat().st_mtime_ns for p in watched} == watched
    assert "kumotuitest" not in Path("/etc/passwd").read_text()
