"""check, apply, journal and rollback over a real SSH connection, the CLI in-process.

A real sshd runs on 127.0.0.1 (a free high port) with throwaway keys. The
"remote" host is this machine reached through SSH, so its tuning target is
a simulated tree (``sim_paths``); every read and write travels over the agent channel.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import Cli
from tests.support.sshd import Sshd
from tests.support.trees import host_flags, read_tree


@pytest.fixture
def remote(sim_paths: dict[str, Path]) -> dict[str, Path]:
    """Paths on the "remote" host (this machine, reached over SSH)."""
    return sim_paths


def flags(sshd: Sshd, remote: dict[str, Path]) -> list[str | Path]:
    return ["--host", sshd.spec, *host_flags(remote)]


def test_check_over_ssh(sshd: Sshd, remote: dict[str, Path], cli: Cli) -> None:
    run = cli("check", "--json", *flags(sshd, remote), env=sshd.env())
    assert run.returncode == 1, run.stderr
    document = json.loads(run.stdout)
    assert document["target"] == "kumotui-test"
    assert document["host"]["hostname"] == "mta-sim"  # from the remote tree's kernel.hostname
    statuses = {r["key"]: r["status"] for r in document["results"]}
    assert statuses["fs.file-max"] == "ok" and statuses["vm.max_map_count"] == "below"


def test_apply_and_rollback_over_ssh(sshd: Sshd, remote: dict[str, Path], cli: Cli) -> None:
    run = cli("apply", "--yes", *flags(sshd, remote), env=sshd.env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert read_tree(remote["tree"], "vm.max_map_count") == "768000"
    assert "vm.max_map_count = 768000" in (remote["sysctl_d"] / "90-kumomta.conf").read_text()
    entries = json.loads(cli("journal", "--json", *flags(sshd, remote), env=sshd.env()).stdout)
    assert [e["kind"] for e in entries] == ["apply"] and entries[0]["host"] == "mta-sim"
    undo = cli("rollback", "--yes", *flags(sshd, remote), env=sshd.env())
    assert undo.returncode == 0, undo.stderr
    assert read_tree(remote["tree"], "vm.max_map_count") == "65530"
    assert not (remote["sysctl_d"] / "90-kumomta.conf").exists()


def test_hostile_value_over_ssh_is_data(sshd: Sshd, remote: dict[str, Path], tmp_path: Path, cli: Cli) -> None:
    canary = tmp_path / "canary"
    run = cli("apply", "--yes", "--set", f"kernel.hostname=x; touch {canary}", *flags(sshd, remote), env=sshd.env())
    assert run.returncode == 2 and "refusing value" in run.stderr
    assert not canary.exists()


def test_several_hosts_at_once(sshd: Sshd, remote: dict[str, Path], tmp_path: Path, cli: Cli) -> None:
    """The same host twice under two names stands in for two machines."""
    args = ["check", "--json", "--host", sshd.spec, "--host", "127.0.0.1", "--sysctl-root", remote["tree"]]
    run = cli(*args, env=sshd.env())
    documents = json.loads(run.stdout)
    assert [d["target"] for d in documents] == ["kumotui-test", "127.0.0.1"]
    assert all(len(d["results"]) == 12 for d in documents)
    text = cli(*args[:1], *args[2:], env=sshd.env())
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
    sshd: Sshd, remote: dict[str, Path], host: str, message: str, cli: Cli
) -> None:
    run = cli("apply", "--yes", "--host", host, "--sysctl-root", remote["tree"], env=sshd.env())
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr.lower() and "Traceback" not in run.stderr
    assert read_tree(remote["tree"], "vm.max_map_count") == "65530"


def test_host_key_mismatch_is_refused(sshd: Sshd, remote: dict[str, Path], tmp_path: Path, cli: Cli) -> None:
    wrong = tmp_path / "ssh_config"
    other_known = tmp_path / "known_hosts"
    # Another server's key recorded for this address: what a man-in-the-middle looks like.
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    kind, key = (tmp_path / "other.pub").read_text().split()[:2]
    other_known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    wrong.write_text(sshd.ssh_config.read_text().replace(str(sshd.known_hosts), str(other_known)))
    run = cli("check", "--host", sshd.spec, "--sysctl-root", remote["tree"], env={"KUMOTUI_SSH_CONFIG": str(wrong)})
    assert run.returncode == 2
    assert "host key verification failed" in run.stderr and "Traceback" not in run.stderr


def test_remote_sysctl_root_unreadable(sshd: Sshd, tmp_path: Path, cli: Cli) -> None:
    run = cli("check", "--host", sshd.spec, "--sysctl-root", tmp_path / "no-such-tree", env=sshd.env())
    assert run.returncode == 2
    assert "kumotui-test" in run.stderr and "no-such-tree" in run.stderr


def test_remote_without_python3(sshd: Sshd, remote: dict[str, Path], cli: Cli) -> None:
    """A remote whose interpreter is not where kumotui is told to look."""
    env = {**sshd.env(), "KUMOTUI_REMOTE_PYTHON": "python3-not-installed"}
    run = cli("check", "--host", sshd.spec, "--sysctl-root", remote["tree"], env=env)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "has no python3-not-installed on its PATH" in run.stderr and "Traceback" not in run.stderr
