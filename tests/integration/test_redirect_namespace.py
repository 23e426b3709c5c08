"""Transparent redirection for real, inside a private network namespace (``unshare --net``), loopback only.

The rule is journaled before it is written, mail to port 25 lands at the
sink through it (the routing probe's proof), and removing it takes the
table and the journal away; a journal left by a crash is found and undone.
This machine's own firewall is never touched: every nft call runs in the namespace.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.processes]

SCRIPT = r"""
import json, smtplib, subprocess, sys, time
from pathlib import Path
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
    rule = plan_redirect("127.0.0.1:2999", "nft")
    add_redirect(rule, state, run)
    out = {"journal_after_add": journal_path(state).exists(),
           "table": subprocess.run(["nft", "list", "table", "inet", "kumotui"], capture_output=True, text=True).stdout}
    with smtplib.SMTP("127.0.0.2", 25, timeout=5) as smtp:  # "outbound" port 25, redirected
        smtp.sendmail("a@kumotui.test", ["u@gmail.com.kumotui.test"], b"Subject: p\r\n\r\nprobe\r\n")
    time.sleep(0.5)
    # A crash: the journal is all that is left; the next start finds it and removes the rule.
    out["leftover"] = leftover(state).as_json()
    out["removed"] = remove_redirect(state, run).as_json()
    out["journal_after_remove"] = journal_path(state).exists()
    out["table_after_remove"] = run(["nft", "list", "table", "inet", "kumotui"])[0]
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


@pytest.mark.skipif(shutil.which("nft") is None or shutil.which("unshare") is None, reason="needs nft and unshare")
def test_redirect_is_written_proven_and_removed_in_a_namespace(tmp_path: Path) -> None:
    done = subprocess.run(
        ["unshare", "--net", "--map-root-user", sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["journal_after_add"] and "tcp dport 25 redirect to :2999" in out["table"]
    assert out["sink"] == {"gmail.com.kumotui.test": {"accepted": 1, "deferred": 0, "bounced": 0}}
    assert out["leftover"] == out["removed"] == {"host": "127.0.0.1", "port": 2999, "tool": "nft"}
    assert not out["journal_after_remove"] and out["table_after_remove"] != 0
    assert out["port25_after_remove"] == "refused"
