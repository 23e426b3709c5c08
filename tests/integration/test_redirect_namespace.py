"""Transparent redirection for real, inside a private network namespace (``unshare --net``), loopback only.

The rule is journaled before it is written, mail to port 25 lands at the
sink through it (the routing probe's proof), and removing it takes the
table and the journal away; a journal left by a crash is found and undone.
This machine's own firewall is never touched: every nft call runs in the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.processes]


@pytest.fixture(autouse=True)
def _needs_nft_and_unshare() -> None:
    """Skip without nft or unshare; in CI (``$CI`` set) fail instead: ``.ci/setup --test`` installs both."""
    missing = [tool for tool in ("nft", "unshare") if shutil.which(tool) is None]
    if missing:
        reason = f"needs {' and '.join(missing)} (apt install nftables util-linux)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


SCRIPT = r"""
import json, smtplib, subprocess, sys, time
from pathlib import Path
from kumotui.hosts.local import LocalHost
from kumotui.tuning.redirect import add_redirect, leftover, plan_redirect, remove_redirect, journal_path

state = Path(sys.argv[1])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
def run(argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.returncode, done.stderr
sink = subprocess.Popen([sys.executable, "-m", "kumotui.engines.smtp_sink", "--listen", "127.0.0.1:2999",
                         "--interval", "0.2", "--responses", "/dev/null"], stdout=subprocess.PIPE, text=True)
try:
    assert json.loads(sink.stdout.readline())["type"] == "ready"
    host = LocalHost()
    tool = sys.argv[2]
    rule = plan_redirect("127.0.0.1:2999", None, host, tool)
    add_redirect(rule, host, state, run)
    listing = ["nft", "list", "table", "inet", "kumotui"]
    if tool == "iptables":
        listing = ["iptables", "-t", "nat", "-S", "OUTPUT"]
    out = {"journal_after_add": journal_path(state).exists(),
           "table": subprocess.run(listing, capture_output=True, text=True).stdout}
    with smtplib.SMTP("127.0.0.2", 25, timeout=5) as smtp:  # "outbound" port 25, redirected
        smtp.sendmail("a@kumotui.test", ["u@gmail.com.kumotui.test"], b"Subject: p\r\n\r\nprobe\r\n")
    time.sleep(0.5)
    # A crash: the journal is all that is left; the next start finds it and removes the rule.
    out["leftover"] = leftover(host, state).as_json()
    out["removed"] = remove_redirect(host, state, run).as_json()
    out["journal_after_remove"] = journal_path(state).exists()
    out["table_after_remove"] = subprocess.run(listing, capture_output=True, text=True).stdout
    try:
        smtplib.SMTP("127.0.0.2", 25, timeout=2)
        out["port25_after_remove"] = "open"
    except OSError:
        out["port25_after_remove"] = "refused"
finally:
    sink.terminate()
    lines = sink.communicate(timeout=10)[0].splitlines()
out["sink"] = [json.loads(l) for l in lines if '"summary"' in l][-1]["domains"]
print(json.dumps(out))
"""


@pytest.mark.parametrize("tool", ["nft", "iptables"])
def test_redirect_is_written_proven_and_removed_in_a_namespace(tmp_path: Path, tool: str) -> None:
    if shutil.which(tool) is None:
        reason = f"needs {tool} (.ci/setup --test installs nftables and iptables)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    done = subprocess.run(
        ["unshare", "--net", "--map-root-user", sys.executable, "-c", SCRIPT, str(tmp_path), tool],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    written = {
        "nft": "tcp dport 25 redirect to :2999",
        "iptables": '-A OUTPUT -p tcp -m tcp --dport 25 -m comment --comment "kumotui redirect" '
        "-j REDIRECT --to-ports 2999",
    }[tool]
    assert out["journal_after_add"] and written in out["table"], out["table"]
    assert out["sink"] == {"gmail.com.kumotui.test": {"accepted": 1, "deferred": 0, "bounced": 0}}
    assert out["leftover"] == out["removed"]
    assert out["removed"]["host"] == "127.0.0.1" and out["removed"]["port"] == 2999 and out["removed"]["tool"] == tool
    assert not out["journal_after_remove"] and "kumotui" not in out["table_after_remove"]
    assert out["port25_after_remove"] == "refused"


CLI_SCRIPT = r"""
import json, os, signal, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, os.getcwd())
from tests.support.relay import Relay

state = sys.argv[1]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
def kumotui(*args, timeout=120):
    done = subprocess.run([sys.executable, "-m", "kumotui", *args, "--state-dir", state],
                          capture_output=True, text=True, timeout=timeout)
    return {"code": done.returncode, "out": done.stdout, "err": done.stderr}
def table():
    return subprocess.run(["nft", "list", "table", "inet", "kumotui"], capture_output=True, text=True).returncode == 0
out = {}
# The MTA under test delivers "outbound" to 127.0.0.3:25, where nothing listens: only the rule reaches the sink.
with Relay(("127.0.0.3", 25)) as relay:
    load = ["bench", "--through", relay.address, "--local-sink", "--listen", "127.0.0.1:2999", "--concurrency", "4",
            "--probe-timeout", "10", "--drain-timeout", "30", "--json"]
    out["run"] = kumotui(*load, "--messages", "300", "--redirect-port25")
    run_id = json.loads(out["run"]["out"].splitlines()[-1])["run"]
    out["report"] = kumotui("report", run_id)
    out["table_after_run"] = table()
    out["journal_after_run"] = Path(state, "redirect.json").exists()
    # A crash mid-run: kumotui killed after the probe passed, the rule and its journal stay behind.
    crashed = subprocess.Popen([sys.executable, "-m", "kumotui", *load, "--duration", "600", "--redirect-port25",
                                "--state-dir", state], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline, before = time.monotonic() + 60, relay.delivered
    while relay.delivered < before + 50 and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(crashed.pid, signal.SIGKILL)
    crashed.wait(10)
    out["table_after_crash"] = table()
    out["check"] = kumotui("check")
    out["show"] = kumotui("redirect", "show")
    out["rollback"] = kumotui("rollback", "--yes")
    out["table_after_rollback"] = table()
    out["journal_after_rollback"] = Path(state, "redirect.json").exists()
    out["show_after"] = kumotui("redirect", "show")
    # Without the rule the same run is refused by the probe: the rule was what routed the mail.
    time.sleep(1)
    out["without"] = kumotui(*load[:-1], "--messages", "10", "--probe-timeout", "3")
print(json.dumps(out))
"""


def test_bench_redirects_proves_and_removes_and_rollback_removes_what_a_crash_left(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = subprocess.run(
        ["unshare", "--net", "--map-root-user", sys.executable, "-c", CLI_SCRIPT, str(state)],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    run = out["run"]
    assert run["code"] == 0, run["err"]
    # Shown before it was written, then proven by the probe, then every message delivered through it.
    assert "outbound TCP port 25 -> 127.0.0.1:2999, except to 127.0.0.1 (nftables" in run["err"]
    assert "nft add rule inet kumotui output ip daddr '!=' 127.0.0.1 tcp dport 25 redirect to :2999" in run["err"]
    delivery = json.loads(run["out"].splitlines()[-1])["delivery"]
    assert delivery["probe"]["arrived"] == delivery["probe"]["sent"] == 3
    assert delivery["injected"] == delivery["delivered"] == 300 and delivery["lost"] == 0
    assert not out["table_after_run"] and not out["journal_after_run"]  # removed when the run ended
    # The record says the run was redirected, how, and that the rule went away; the report shows it.
    redirect = json.loads(run["out"].splitlines()[-1])["redirect"]
    assert redirect["tool"] == "nftables" and redirect["removed"] and redirect["error"] == ""
    assert redirect["rule"] == "outbound TCP port 25 -> 127.0.0.1:2999, except to 127.0.0.1 (nftables, 'kumotui' rule)"
    assert (
        "nft add rule inet kumotui output ip daddr '!=' 127.0.0.1 tcp dport 25 redirect to :2999"
        in (redirect["commands"][-1])
    )
    report = out["report"]["out"]
    assert "| redirect | on local: outbound TCP port 25 -> 127.0.0.1:2999" in report
    assert "removed when the run ended" in report and "    nft add table inet kumotui" in report
    # A crash left it: the next start says so and how to remove it; rollback removes it.
    assert out["table_after_crash"]
    assert "a port-25 redirect is still in place on local" in out["check"]["err"]
    assert f"remove it with: kumotui redirect remove --state-dir {state}" in out["check"]["err"]
    assert "left by a benchmark that did not end cleanly" in out["show"]["out"]
    assert "nft delete table inet kumotui" in out["show"]["out"]
    assert out["rollback"]["code"] == 0, out["rollback"]["err"]
    assert "Removed the port-25 redirect on local." in out["rollback"]["out"]
    assert not out["table_after_rollback"] and not out["journal_after_rollback"]
    assert "No port-25 redirect" in out["show_after"]["out"]
    assert out["without"]["code"] == 2 and "routing probes but 0 reached the sink" in out["without"]["err"]


SSH_SCRIPT = r"""
import json, os, subprocess, sys
from pathlib import Path
sys.path.insert(0, os.getcwd())
from tests.support.relay import Relay
from tests.support.sshd import alias_config, start_sshd

work, state = Path(sys.argv[1]), sys.argv[2]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
server = start_sshd(work / "sshd")  # in this namespace: what it runs, nft included, runs here too
env = dict(os.environ, KUMOTUI_SSH_CONFIG=str(alias_config(work / "ssh_config", {"mta-box": server})))
def table():
    return subprocess.run(["nft", "list", "table", "inet", "kumotui"], capture_output=True, text=True).returncode == 0
out = {"interfaces": Path("/proc/net/dev").read_text().count(":")}
try:
    with Relay(("127.0.0.3", 25)) as relay:  # the MTA on mta-box delivers "outbound" to port 25
        done = subprocess.run(
            [sys.executable, "-m", "kumotui", "bench", "--host", "mta-box", "--through", relay.address,
             "--local-sink", "--listen", "127.0.0.1:2999", "--messages", "200", "--concurrency", "4",
             "--probe-timeout", "10", "--drain-timeout", "30", "--redirect-port25", "--json", "--state-dir", state],
            capture_output=True, text=True, timeout=180, env=env)
        out["run"] = {"code": done.returncode, "out": done.stdout, "err": done.stderr}
        out["table_after_run"] = table()
finally:
    server.stop()
print(json.dumps(out))
"""


def test_the_redirect_goes_on_the_mta_host_over_ssh(tmp_path: Path) -> None:
    """The generator and the MTA on another host (an sshd inside the namespace): the rule is written there over
    SSH, the probe proves it, and it is removed there when the run ends."""
    if os.geteuid() != 0 or (shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists()):
        reason = "needs root (an sshd in a private network namespace) and openssh-server"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", SSH_SCRIPT, str(tmp_path), str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["interfaces"] == 1  # loopback only: a private namespace
    run = out["run"]
    assert run["code"] == 0, run["err"]
    assert "kumotui: On mta-box, for this run, outbound TCP port 25" in run["err"]
    assert "nft add table inet kumotui" in run["err"]
    result = json.loads(run["out"].splitlines()[-1])
    assert result["delivery"]["probe"]["arrived"] == 3
    assert result["delivery"]["injected"] == result["delivery"]["delivered"] == 200
    assert result["redirect"]["host"] == "mta-box" and result["redirect"]["removed"], result["redirect"]
    assert not out["table_after_run"]
