"""``kumotui check`` and ``kumotui simulate`` end to end, in-process (``kumotui.cli.main``)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import Cli
from tests.support.trees import MODERN_KERNEL, make_tree

OK_ON_MODERN = {
    "fs.file-max",
    "kernel.shmmax",
    "kernel.shmmni",
    "net.core.somaxconn",
    "net.core.rmem_default",
    "net.core.wmem_default",
}


def test_check_json_on_modern_kernel_proposes_no_lowering(modern_tree: Path, cli: Cli) -> None:
    run = cli("check", "--sysctl-root", str(modern_tree), "--json")
    assert run.returncode == 1, run.stderr
    document = json.loads(run.stdout)
    assert document["profile"] == "kumomta"
    assert set(document["host"]) == {"hostname", "kernel", "cpus", "memory_bytes"}
    results = {r["key"]: r for r in document["results"]}
    assert len(results) == 12
    assert {k for k, r in results.items() if r["status"] == "ok"} == OK_ON_MODERN
    for key in OK_ON_MODERN:
        assert results[key]["proposed"] == results[key]["current"], key
    assert results["net.ipv4.ip_local_port_range"]["current"] == "32768\t60999"
    assert results["net.ipv4.ip_local_port_range"]["proposed"] == "5000 63001"
    assert results["net.ipv4.tcp_tw_reuse"] == {
        "key": "net.ipv4.tcp_tw_reuse",
        "current": "2",
        "recommended": "1",
        "rule": "exactly",
        "status": "differs",
        "proposed": "1",
    }
    assert results["vm.max_map_count"]["status"] == "below"
    assert results["kernel.shmmax"]["current"] == "18446744073692774399"


def test_check_on_compliant_tree_exits_zero(compliant_tree: Path, cli: Cli) -> None:
    run = cli("check", "--sysctl-root", str(compliant_tree))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "All 12 parameters pass." in run.stdout


def test_check_table_is_readable_and_has_summary(modern_tree: Path, cli: Cli) -> None:
    run = cli("--sysctl-root", str(modern_tree), "check")  # global flag before command
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert lines[1].split() == ["KEY", "CURRENT", "RECOMMENDED", "RULE", "STATUS", "PROPOSED"]
    assert "6 of 12 parameters need a change." in run.stdout
    port_row = next(line for line in lines if line.startswith("net.ipv4.ip_local_port_range"))
    assert "≠ differs" in port_row and "5000 63001" in port_row
    assert "\x1b[" not in run.stdout  # not a terminal: no colour


def test_missing_and_unreadable_parameters(tmp_path: Path, cli: Cli) -> None:
    values = dict(MODERN_KERNEL)
    del values["vm.nr_hugepages"]
    tree = make_tree(tmp_path / "t", values)
    run = cli("check", "--sysctl-root", str(tree), "--json")
    results = {r["key"]: r for r in json.loads(run.stdout)["results"]}
    assert results["vm.nr_hugepages"]["status"] == "missing"
    assert results["vm.nr_hugepages"]["current"] is None
    assert results["vm.nr_hugepages"]["proposed"] is None


def test_unreadable_parameter(modern_tree: Path, cli: Cli) -> None:
    # A symlink loop fails to open even for root (ELOOP), unlike a chmod 0 file.
    target = modern_tree / "vm" / "nr_hugepages"
    target.unlink()
    target.symlink_to("nr_hugepages")
    run = cli("check", "--sysctl-root", str(modern_tree), "--json")
    results = {r["key"]: r for r in json.loads(run.stdout)["results"]}
    assert results["vm.nr_hugepages"]["status"] == "unreadable"
    table = cli("check", "--sysctl-root", str(modern_tree))
    assert "Too many levels of symbolic links" in table.stdout or "ELOOP" in table.stdout


def test_bad_profile_exits_2_naming_the_file(tmp_path: Path, modern_tree: Path, cli: Cli) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\nparams:\n  net.core.somaxconn: {value: 1, rule: huge}\n")
    run = cli("check", "--profile", str(bad), "--sysctl-root", str(modern_tree))
    assert run.returncode == 2
    assert f"{bad}:3:" in run.stderr and "unknown rule 'huge'" in run.stderr
    assert "Traceback" not in run.stderr


def test_bad_input_exits_2_without_traceback(tmp_path: Path, cli: Cli) -> None:
    missing = cli("check", "--sysctl-root", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "--sysctl-root" in missing.stderr
    unknown = cli("check", "--frobnicate")
    assert unknown.returncode == 2 and "--frobnicate" in unknown.stderr
    for run in (missing, unknown):
        assert "Traceback" not in run.stderr


def test_extended_profile_by_name(modern_tree: Path, cli: Cli) -> None:
    run = cli("check", "--profile", "kumomta-extended", "--sysctl-root", str(modern_tree), "--json")
    document = json.loads(run.stdout)
    assert document["profile"] == "kumomta-extended"
    statuses = {r["key"]: r["status"] for r in document["results"]}
    assert statuses["net.core.netdev_max_backlog"] == "missing"  # not in the simulated tree


def test_real_proc_sys_read_only(cli: Cli) -> None:
    """The machine's real kernel is read (never written) and every key resolves."""
    before = {key: Path("/proc/sys", key.replace(".", "/")).read_text() for key in OK_ON_MODERN}
    run = cli("check", "--json")
    assert run.returncode in (0, 1), run.stderr
    results = json.loads(run.stdout)["results"]
    assert len(results) == 12
    for result in results:
        assert result["status"] in {"ok", "below", "above", "differs", "missing"}
        if result["status"] != "missing":
            real = Path("/proc/sys", result["key"].replace(".", "/")).read_text().rstrip("\n")
            assert result["current"] == real
    after = {key: Path("/proc/sys", key.replace(".", "/")).read_text() for key in OK_ON_MODERN}
    assert before == after


def test_simulate_writes_a_practice_host(tmp_path: Path, cli: Cli) -> None:
    run = cli("simulate", tmp_path / "sim")
    assert run.returncode == 0, run.stderr
    flags = run.stdout.splitlines()[-1].split()[2:]  # "kumotui check FLAGS..."
    check = cli("check", "--json", *flags)
    statuses = {r["key"]: r["status"] for r in json.loads(check.stdout)["results"]}
    assert statuses["fs.file-max"] == "ok" and statuses["vm.max_map_count"] == "below"
    again = cli("simulate", tmp_path / "sim")
    assert again.returncode == 2 and "not empty" in again.stderr
