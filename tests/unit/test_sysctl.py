"""Key/path mapping and reading values faithfully."""

from __future__ import annotations

from pathlib import Path

from kumotui.tuning.sysctl import SysctlTree, key_to_relpath
from tests.support.trees import make_tree


def test_procps_mapping_for_dotted_interface_names() -> None:
    assert key_to_relpath("net.core.somaxconn") == "net/core/somaxconn"
    assert key_to_relpath("net.ipv4.conf.eth0/100.rp_filter") == "net/ipv4/conf/eth0.100/rp_filter"


def test_vlan_key_reads_from_dotted_directory(tmp_path: Path) -> None:
    make_tree(tmp_path, {"net.ipv4.conf.eth0/100.rp_filter": "2"})
    assert (tmp_path / "net/ipv4/conf/eth0.100/rp_filter").read_text() == "2\n"
    assert SysctlTree(tmp_path).read("net.ipv4.conf.eth0/100.rp_filter").value == "2"


def test_reading_keeps_tabs_and_reports_missing(tmp_path: Path) -> None:
    tree = SysctlTree(make_tree(tmp_path, {"net.ipv4.ip_local_port_range": "32768\t60999"}))
    assert tree.read("net.ipv4.ip_local_port_range").value == "32768\t60999"
    missing = tree.read("net.core.nope")
    assert missing.value is None and missing.missing
    (tmp_path / "net" / "core" / "dir").mkdir(parents=True)
    assert tree.read("net.core.dir").missing
