"""check, apply, journal and rollback over a real SSH connection.

A real sshd runs on 127.0.0.1 (a free high port) with throwaway keys. The
"remote" host is this machine reached through SSH, so its tuning target is
a simulated tree; every read and write travels over the agent channel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import kumotui
from tests.sshd import Sshd
from tests.trees import MODERN_KERNEL, make_tree, read_tree


@pytest.fixture
def remote(tmp_path: Path) -> dict[str, Path]:
    """Paths on the "remote" host (this machine, reached over SSH)."""
    return {
        "tree": make_tree(tmp_path / "remote-proc-sys", MODERN_KERNEL),
        "sysctl_d": tmp_path / "remote-etc",
        "state": tmp_path / "remote-state",
        "system": tmp_path / "remote-root",
    }


def flags(sshd: Sshd, remote: dict[str, Path]) -> list[str | Path]:
    return [
        "--host",
        sshd.spec,
        "--sysctl-root",
        remote["tree"],
        "--sysctl-d",
        remote["sysctl_d"],
        "--state-dir",
        remote["state"],
        "--system-root",
        remote["system"],
    ]


def test_check_over_ssh(sshd: Sshd, remote: dict[str, Path]) -> None:
    run = kumotui("check", "--json", *flags(sshd, remote), env=sshd.env())
    assert run.returncode == 1, run.stderr
    document = json.loads(run.stdout)
    assert document["target"] == "kumotui-test"
    assert document["host"]["hostname"] == "mta-sim"  # from the remote tree's kernel.hostname
    statuses = {r["key"]: r["status"] for r in document["results"]}
    assert statuses["fs.file-max"] == "ok" and statuses["vm.max_map_count"] == "below"


def test_apply_and_rollback_over_ssh(sshd: Sshd, remote: dict[str, Path]) -> None:
    run = kumotui("apply", "--yes", *flags(sshd, remote), env=sshd.env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert read_tree(remote["tree"], "vm.max_map_count") == "768000"
    assert "vm.max_map_count = 768000" in (remote["sysctl_d"] / "90-kumomta.conf").read_text()
    entries = json.loads(kumotui("journal", "--json", *flags(sshd, remote), env=sshd.env()).stdout)
    assert [e["kind"] for e in entries] == ["apply"] and entries[0]["host"] == "mta-sim"
    undo = kumotui("rollback", "--yes", *flags(sshd, remote), env=sshd.env())
    assert undo.returncode == 0, undo.stderr
    assert read_tree(remote["tree"], "vm.max_map_count") == "65530"
    assert not (remote["sysctl_d"] / "90-kumomta.conf").exists()


def test_hostile_value_over_ssh_is_data(sshd: Sshd, remote: dict[str, Path], tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    run = kumotui("apply", "--yes", "--set", f"kernel.hostname=x; touch {canary}", *flags(sshd, remote), env=sshd.env())
    assert run.returncode == 2 and "refusing value" in run.stderr
    assert not canary.exists()


def test_several_hosts_at_once(sshd: Sshd, remote: dict[str, Path], tmp_path: Path) -> None:
    """The same host twice under two names stands in for two machines."""
    args = ["check", "--json", "--host", sshd.spec, "--host", "127.0.0.1", "--sysctl-root", remote["tree"]]
    run = kumotui(*args, env=sshd.env())
    documents = json.loads(run.stdout)
    assert [d["target"] for d in documents] == ["kumotui-test", "127.0.0.1"]
    assert all(len(d["results"]) == 12 for d in documents)
    text = kumotui(*args[:1], *args[2:], env=sshd.env())
    assert "Host: kumotui-test" in text.stdout and "Host: 127.0.0.1" in text.stdout


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.2", "connection refused"),
        ("nobody-here@kumotui-test", "authentication refused"),
        ("bad host!", "expected [user@]host[:port]"),
    ],
)
def test_connection_errors_exit_2_with_nothing_changed(
    sshd: Sshd, remote: dict[str, Path], host: str, message: str
) -> None:
    run = kumotui("apply", "--yes", "--host", host, "--sysctl-root", remote["tree"], env=sshd.env())
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr.lower() and "Traceback" not in run.stderr
    assert read_tree(remote["tree"], "vm.max_map_count") == "65530"


def test_host_key_mismatch_is_refused(sshd: Sshd, remote: dict[str, Path], tmp_path: Path) -> None:
    wrong = tmp_path / "ssh_config"
    other_known = tmp_path / "known_hosts"
    # Another server's key recorded for this address: what a man-in-the-middle looks like.
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    kind, key = (tmp_path / "other.pub").read_text().split()[:2]
    other_known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    wrong.write_text(sshd.ssh_config.read_text().replace(str(sshd.known_hosts), str(other_known)))
    run = kumotui("check", "--host", sshd.spec, "--sysctl-root", remote["tree"], env={"KUMOTUI_SSH_CONFIG": str(wrong)})
    assert run.returncode == 2
    assert "host key verification failed" in run.stderr and "Traceback" not in run.stderr


def test_remote_sysctl_root_unreadable(sshd: Sshd, tmp_path: Path) -> None:
    run = kumotui("check", "--host", sshd.spec, "--sysctl-root", tmp_path / "no-such-tree", env=sshd.env())
    assert run.returncode == 2
    assert "kumotui-test" in run.stderr and "no-such-tree" in run.stderr


def test_remote_without_python3(sshd: Sshd, remote: dict[str, Path]) -> None:
    """A remote whose interpreter is not where kumotui is told to look."""
    env = {**sshd.env(), "KUMOTUI_REMOTE_PYTHON": "python3-not-installed"}
    run = kumotui("check", "--host", sshd.spec, "--sysctl-root", remote["tree"], env=env)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "has no python3-not-installed on its PATH" in run.stderr and "Traceback" not in run.stderr
