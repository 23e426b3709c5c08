"""The port-25 redirect as data: the rules each tool gets, the journal, the checks before anything runs.

The rules are run for real only inside a network namespace
(``tests/integration/test_redirect_namespace.py``); here they are read.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kumotui.bench.options import BenchOptions
from kumotui.errors import KumotuiError
from kumotui.hosts.local import LocalHost
from kumotui.tuning.redirect import Redirect, journal_path, leftover, leftover_notice, plan_redirect
from tests.support.cli import Cli


def test_iptables_gets_one_commented_rule_that_spares_the_mta_and_removes_exactly_it() -> None:
    rule = plan_redirect("127.0.0.1:2026", "127.0.0.1", LocalHost(), "iptables")
    (add,) = rule.add_commands()
    (remove,) = rule.remove_commands()
    assert add[:5] == ["iptables", "-t", "nat", "-A", "OUTPUT"] and remove[:5] == [
        "iptables",
        "-t",
        "nat",
        "-D",
        "OUTPUT",
    ]
    assert add[5:] == remove[5:] == [
        "-p", "tcp", "!", "-d", "127.0.0.1", "--dport", "25", "-m", "comment", "--comment", "kumotui redirect",
        "-j", "REDIRECT", "--to-ports", "2026",
    ]  # fmt: skip


def test_a_sink_on_another_host_is_a_dnat_and_ipv6_uses_its_own_family() -> None:
    remote = plan_redirect("10.0.0.5:2026", None, LocalHost(), "nft")
    assert remote.add_commands()[-1][6:10] == ["tcp", "dport", "25", "dnat"]
    assert "10.0.0.5:2026" in remote.add_commands()[-1]
    six = plan_redirect("[::1]:2026", "::1", LocalHost(), "nft")
    assert six.add_commands()[-1][6:10] == ["ip6", "daddr", "!=", "::1"]
    assert six.remove_commands() == [["nft", "delete", "table", "inet", "kumotui"]]


def test_names_instead_of_addresses_are_refused_naming_the_flag() -> None:
    with pytest.raises(KumotuiError, match=r"--redirect-port25: 'sink\.example' is not an IP address"):
        plan_redirect("sink.example:2026", None, LocalHost(), "nft")


def test_the_journal_round_trips_and_a_broken_one_names_its_file(tmp_path: Path) -> None:
    host = LocalHost()
    assert leftover(host, tmp_path) is None
    rule = Redirect("127.0.0.1", 2026, "nft", "127.0.0.1", 0, "")
    journal_path(tmp_path).write_text(json.dumps(rule.as_json()))
    assert leftover(host, tmp_path) == rule
    journal_path(tmp_path).write_text("{not json")
    with pytest.raises(KumotuiError, match=r"redirect\.json: not a redirect journal"):
        leftover(host, tmp_path)


def test_a_live_runs_rule_is_in_use_and_a_dead_ones_is_a_leftover(tmp_path: Path) -> None:
    host = LocalHost()
    live = Redirect("127.0.0.1", 2026, "nft", None, os.getpid(), socket.gethostname())
    journal_path(tmp_path).write_text(json.dumps(live.as_json()))
    assert live.running() and leftover_notice(host, tmp_path) is None
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = Redirect("127.0.0.1", 2026, "nft", None, gone.pid, socket.gethostname())
    journal_path(tmp_path).write_text(json.dumps(dead.as_json()))
    notice = leftover_notice(host, tmp_path, " --state-dir X")
    assert notice is not None and notice.endswith("remove it with: kumotui redirect remove --state-dir X")


def test_bench_refuses_a_redirect_it_cannot_place(cli: Cli) -> None:
    done = cli("bench", "--local-sink", "--messages", "1", "--redirect-port25")
    assert done.returncode == 2 and "--redirect-port25 needs --through" in done.stderr
    with pytest.raises(KumotuiError, match="--through a loopback address"):
        BenchOptions(target=None, local_sink=True, through="10.1.2.3:25", redirect_port25=True).validate()


def test_redirect_show_and_remove_with_nothing_in_place(cli: Cli, tmp_path: Path) -> None:
    for action in ("show", "remove"):
        done = cli("redirect", action, "--state-dir", tmp_path)
        assert done.returncode == 0 and "No port-25 redirect of kumotui's is in place on local." in done.stdout
