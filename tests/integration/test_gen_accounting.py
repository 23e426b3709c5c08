"""Every message the generator was asked to send is accounted for, whatever the server does.

sent + failed + unsent + unfinished = asked, for every stage of a transaction x
every kind of answer (421, 4xx, 5xx, hanging up, falling silent), with and
without PIPELINING, against a scripted server that counts what it really
accepted. A message the server never started (refused with 421 at MAIL, or at
the RSET that opens it) goes back to the budget and is sent again: it is never
lost and never called failed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.scripted import HANGUP, SILENT, Rule, scripted_server

ASKED = 20
ACTIONS = (421, 450, 550, HANGUP, SILENT)


def run_gen(port: int, *extra: str) -> dict[str, object]:
    """The real engine as a subprocess; its summary line."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kumotui.engines.smtp_gen",
            "--target",
            f"127.0.0.1:{port}",
            "--messages",
            str(ASKED),
            "--concurrency",
            "2",
            "--reply-timeout",
            "1",
            "--connect-retries",
            "2",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["type"] == "summary", done.stdout + done.stderr
    return lines[-1]


def expected_failed(stage: str, action: int | str) -> int:
    """How many messages this rule should make fail: none when the message never started."""
    if stage in ("banner", "ehlo", "quit"):
        return 0  # before any message, or after all of them
    if stage == "mail" and action in (421, HANGUP, SILENT):
        return 0  # the server took none of it: sent again on a new connection
    return 1


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
@pytest.mark.parametrize("action", ACTIONS, ids=str)
@pytest.mark.parametrize("stage", ["banner", "ehlo", "mail", "rcpt", "data", "dot", "quit"])
def test_every_stage_and_answer_keeps_the_count(stage: str, action: int | str, pipelining: bool) -> None:
    with scripted_server([Rule(stage, action, nth=3)], pipelining=pipelining) as server:
        summary = run_gen(server.port, *([] if pipelining else ["--no-pipelining"]))
        accepted = server.accepted
    sent, failed = summary["sent"], summary["failed"]
    unsent, unfinished = summary["unsent"], summary["unfinished"]
    assert sent + failed + unsent + unfinished == ASKED, summary
    assert sent == accepted, f"the generator says {sent} sent, the server accepted {accepted}"
    assert failed == expected_failed(stage, action), summary
    assert unsent == 0 and unfinished == 0, summary


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
@pytest.mark.parametrize("action", ACTIONS, ids=str)
def test_a_refused_rset_never_fails_the_message_it_opens(action: int | str, pipelining: bool) -> None:
    """RSET comes only after a failure: refuse the 3rd recipient, then answer the RSET badly."""
    rules = [Rule("rcpt", 550, nth=3), Rule("rset", action, nth=1)]
    with scripted_server(rules, pipelining=pipelining) as server:
        summary = run_gen(server.port, *([] if pipelining else ["--no-pipelining"]))
        accepted = server.accepted
    assert summary["sent"] + summary["failed"] + summary["unsent"] + summary["unfinished"] == ASKED
    assert summary["sent"] == accepted == ASKED - 1
    assert summary["failed"] == 1 and summary["failed_by"] == {"5xx": 1}, summary


def test_messages_in_flight_at_the_deadline_are_unfinished_not_lost() -> None:
    """A server that stops answering at the end of data: the deadline (plus grace) ends the run."""
    with scripted_server([Rule("dot", SILENT, nth=3, times=10_000)]) as server:
        summary = run_gen(server.port, "--duration", "1", "--reply-timeout", "30")
    assert summary["sent"] == 2 and summary["unfinished"] == 2, summary
    assert summary["sent"] + summary["failed"] + summary["unsent"] + summary["unfinished"] == ASKED


def test_a_silent_server_costs_the_reply_timeout_not_a_minute() -> None:
    """Every connection falls silent after its banner: the run ends within a few reply timeouts."""
    with scripted_server([Rule("ehlo", SILENT, nth=1, times=10_000)]) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "kumotui.engines.smtp_gen",
                "--target",
                f"127.0.0.1:{server.port}",
                "--messages",
                "5",
                "--concurrency",
                "1",
                "--reply-timeout",
                "0.5",
                "--connect-retries",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["sent"] == 0 and summary["unsent"] == 5, summary
    assert summary["elapsed"] < 5, f"{summary['elapsed']} s for a silent server"
