"""The benchmark form's port-25 redirect: offered for a run through an MTA, asked with the exact rule, only y writes it.

Two halves, so no rule ever reaches this machine's own firewall:

- here, in this machine's network namespace: the checkbox appears only with
  "Through MTA", the dialog shows the rule the core is about to write and the
  trade-off, Enter does not confirm, ``n`` writes nothing and the run does not
  start (the core's ``add_redirect`` is replaced by one that fails the test);
- inside ``unshare --net`` (loopback only): the whole app under Pilot, ``y``
  writes the rule, the routing probe passes through it, every message is
  delivered through it, the rule is removed at the end, and the run's record
  and the runs view say it was redirected.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input

from kumotui.tuning.redirect import TRADE_OFF_SHORT, journal_path
from kumotui.ui.app import make_app
from kumotui.ui.modals.redirect import RedirectConfirmScreen
from kumotui.ui.screens.bench import BenchScreen
from tests.support.demo import DEMO_FACTS, make_demo_host
from tests.support.pilot import started
from tests.support.processes import free_port
from tests.support.relay import Relay
from tests.support.waits import settle, wait_for

REPO = Path(__file__).resolve().parents[2]


async def test_the_redirect_is_offered_asked_with_the_exact_rule_and_n_writes_nothing(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object) -> None:
        raise AssertionError("a firewall rule must never be written in this machine's own namespace")

    monkeypatch.setattr("kumotui.bench.run.add_redirect", never)
    settings = make_demo_host(demo_dir)
    port = free_port()
    app = make_app(settings, host_facts=DEMO_FACTS)
    with Relay(("127.0.0.1", port)) as relay:
        async with started(app) as pilot:
            await pilot.press("b")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, BenchScreen)
            row = screen.query_one("#redirect-row")
            assert not row.display  # no MTA under test: nothing to redirect
            screen.query_one("#through", Input).value = relay.address
            screen.query_one("#sink_listen", Input).value = f"127.0.0.1:{port}"
            await settle(pilot)
            assert row.display
            box = screen.query_one("#redirect_port25", Checkbox)
            assert "port 25" in str(box.label) and box.tooltip == TRADE_OFF_SHORT
            box.value = True
            await pilot.press("escape", "s")
            await wait_for(pilot, lambda: isinstance(app.screen, RedirectConfirmScreen), 30)
            dialog = app.screen
            assert isinstance(dialog, RedirectConfirmScreen)
            assert f"outbound TCP port 25 -> 127.0.0.1:{port}, except to 127.0.0.1" in dialog.question
            command = f"nft add rule inet kumotui output ip daddr '!=' 127.0.0.1 tcp dport 25 redirect to :{port}"
            if dialog.rule.tool == "nft":
                assert command in dialog.question
            assert TRADE_OFF_SHORT in dialog.question and "removed when the run ends" in dialog.question
            await pilot.press("enter")  # not an answer: a firewall change needs an explicit y
            await pilot.pause(0.3)  # (not settle: the run's worker waits for this dialog's answer)
            assert app.screen is dialog
            await pilot.press("n")
            await wait_for(pilot, lambda: screen.state == "failed", 30)
            assert "not confirmed, so nothing was written" in screen.error
            assert relay.accepted == 0  # not even the probe: the run stopped before it
            assert not journal_path(screen.state_dir).exists()
            # Without "Through MTA" the checkbox is hidden and ignored.
            screen.query_one("#through", Input).value = ""
            await settle(pilot)
            assert not row.display and not screen.redirect_wanted()


APP_SCRIPT = r"""
import asyncio, json, os, subprocess, sys
from pathlib import Path
sys.path.insert(0, os.getcwd())
os.chdir(sys.argv[1])
from textual.widgets import Checkbox, Input
from kumotui.bench.records import list_runs
from kumotui.ui.app import make_app
from kumotui.ui.modals.redirect import RedirectConfirmScreen
from kumotui.ui.render import render_run
from tests.support.demo import DEMO_FACTS, make_demo_host
from tests.support.pilot import started
from tests.support.relay import Relay
from tests.support.waits import settle, wait_for

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
def table():
    return subprocess.run(["nft", "list", "table", "inet", "kumotui"], capture_output=True).returncode == 0

async def main():
    app = make_app(make_demo_host(Path(".")), host_facts=DEMO_FACTS)
    out = {}
    # The MTA delivers "outbound" to 127.0.0.3:25, where nothing listens: only the rule reaches the sink.
    with Relay(("127.0.0.3", 25)) as relay:
        async with started(app, (80, 24)) as pilot:
            await pilot.press("b")
            await settle(pilot)
            screen = app.screen
            fields = {"through": relay.address, "sink_listen": "127.0.0.1:2999", "messages": "200",
                      "concurrency": "4"}
            for name, value in fields.items():
                screen.query_one(f"#{name}", Input).value = value
            await settle(pilot)
            screen.query_one("#redirect_port25", Checkbox).value = True
            await pilot.press("escape", "s")
            await wait_for(pilot, lambda: isinstance(app.screen, RedirectConfirmScreen), 60)
            out["question"] = app.screen.question
            out["table_while_asking"] = table()
            await pilot.press("y")
            await wait_for(pilot, lambda: screen.state in ("done", "failed"), 180)
            await settle(pilot)
            out["state"], out["error"] = screen.state, screen.error
            out["summary"] = str(screen.query_one("#bench-summary").render())
            state_dir = screen.state_dir
        out["relay_accepted"] = relay.accepted
    out["table_after"] = table()
    out["journal_after"] = (state_dir / "redirect.json").exists()
    record = list_runs(state_dir)[-1]
    out["redirect"] = record.redirect.as_json() if record.redirect else None
    out["delivery"] = record.delivery.as_json() if record.delivery else None
    out["runs_view"] = render_run(record).plain
    print(json.dumps(out))

asyncio.run(main())
"""


@pytest.mark.netns
def test_in_a_namespace_y_writes_the_rule_the_probe_proves_it_and_it_is_removed(demo_dir: Path) -> None:
    missing = [tool for tool in ("nft", "unshare") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"needs {' and '.join(missing)}")
        pytest.skip(f"needs {' and '.join(missing)}")
    done = subprocess.run(
        ["unshare", "--net", "--map-root-user", sys.executable, "-c", APP_SCRIPT, str(demo_dir)],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert "nft add rule inet kumotui output ip daddr '!=' 127.0.0.1 tcp dport 25 redirect to :2999" in out["question"]
    assert not out["table_while_asking"]  # shown before it is written
    assert out["state"] == "done", out["error"]
    delivery = out["delivery"]
    assert delivery["probe"]["arrived"] == delivery["probe"]["sent"] == 3
    assert delivery["injected"] == delivery["delivered"] == 200 and delivery["lost"] == 0
    assert out["relay_accepted"] == 203
    assert not out["table_after"] and not out["journal_after"]  # removed when the run ended
    redirect = out["redirect"]
    assert redirect["tool"] == "nftables" and redirect["removed"] and redirect["host"] == "local"
    assert "Redirect: on local: outbound TCP port 25 -> 127.0.0.1:2999" in out["summary"]
    assert "port 25 redirected on local: outbound TCP port 25 -> 127.0.0.1:2999" in out["runs_view"]
    assert "removed when the run ended" in out["runs_view"]
