"""The kumomta sink's Smart Sink policy, run for real under Lua 5.4 with a stub of kumod's ``kumo`` module.

KumoMTA cannot be installed here: the policy kumotui writes (the very file
:func:`write_sink_policy` writes for kumod) is run by ``lua5.4`` with
``tests/support/lua/kumo.lua`` standing in for kumod's module, and its
``kumo.reject`` replies are put on the wire as kumod's ``write_response``
does (:func:`tests.support.lua_policy.kumod_wire`). One table of recipients
is answered by both of kumotui's sinks, the built-in one over real loopback
SMTP and this policy, and must get the same bytes: the same domain matching,
the same forced local parts, the same multi-line replies. Shares per domain
are within sampling error; hostile reply texts (quotes, backslashes, ``]]``,
line breaks, Lua code) come back byte for byte and never run.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest

from kumotui.backends.kumomta.lua import lua_bytes, lua_string
from kumotui.backends.kumomta.policy import render_sink_policy, write_sink_policy
from kumotui.engines import smtp_responses
from tests.support.cli import Cli
from tests.support.lua_policy import Outcome, kumod_wire, lua, run_policy
from tests.support.smtp import Client, sink

SHARES = """
[default]
bounce = 0
defer = 0

[domain."a.test"]
bounce = 20
defer = 30

[[bounce."a.test"]]
code = 550
msg = "5.1.1 no such user"

[[defer."a.test"]]
code = 421
msg = "4.7.28 rate limited\\r\\n421-4.7.28 second line"

[[defer."a.test"]]
code = 451
msg = "4.3.0 try later"
"""

SENTINEL = "SENTINEL_PATH"
"""Replaced by a path under the test's tmp dir: hostile texts try to create it from Lua."""

HOSTILE_MSGS = [
    '5.0.0 it\'s a "quote" and a \\ backslash \\\\ two',
    "5.0.0 ]] os.execute('touch SENTINEL_PATH') --[[",
    '5.0.0 ]==] ]=] [[ ]] --]] end) os.execute("touch SENTINEL_PATH")',
    "5.0.0 '); os.execute('touch SENTINEL_PATH') --",
    "5.0.0 \\'); os.execute('touch SENTINEL_PATH') --",
    "5.0.0 \\\\'; os.exit(7) local _ = '",
    "5.0.0 first line\r\n5.0.0 second, \\n not a break\n5.0.0 third\twith a tab",
    "5.0.0 100% %s %d %q %1 %% format bait",
    "5.0.0 d\u00e9j\u00e0 vu, \u2603, and \ufffd",
    "5.0.0 \\010\\013 escapes as text \\x41 \\u{41} \\z",
    "x" * 1000,
]
"""Reply texts that would break out of a Lua string literal if pasted in unescaped (none may run)."""

HOSTILE_DOMAIN = "h']] os.execute('touch SENTINEL_PATH') --[[.test"
"""A rule name that would break out of a Lua table key if pasted in unescaped."""


def responses_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "responses.toml"
    path.write_text(text, encoding="utf-8")
    return path


def policy_for(tmp_path: Path, responses: Path | None) -> Path:
    """The policy kumod would get, written by the same function the kumomta sink job uses."""
    loaded = smtp_responses.load(str(responses)) if responses is not None else None
    return write_sink_policy(tmp_path / "kumod", port=2026, http_port=8002, responses=loaded)


def within_binomial(count: int, trials: int, share: float) -> bool:
    """Within 4.5 binomial standard deviations (a false alarm about 1 in 150,000)."""
    return abs(count - trials * share) <= 4.5 * math.sqrt(trials * share * (1 - share)) + 1


def test_lua_literals_carry_every_byte_exactly() -> None:
    samples = [bytes(range(256)), b"]]", b"]=]]==]", b"\\", b"\\\\'", b"'", b'"', b"\r\n\x00\x1a\x7f\xff", b"\\0123"]
    chunk = "".join(f"io.write({lua_bytes(sample)}, '|')\n" for sample in samples)
    path = "/tmp/caf\u00e9 it's"
    chunk += f"io.write({lua_string(path)}, '|')\n"
    done = subprocess.run([lua(), "-"], input=chunk.encode(), capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"|".join([*samples, path.encode()]) + b"|"
    assert all(ord(char) < 128 for char in chunk)  # the policy file itself is plain ASCII


def test_shares_per_domain_within_sampling_error(tmp_path: Path) -> None:
    policy = policy_for(tmp_path, responses_file(tmp_path, SHARES))
    trials = 20000
    a, suffixed, b = run_policy(
        policy,
        [(trials, [(b"u", b"a.test")]), (trials, [(b"u", b"a.test.kumotui.test")]), (trials, [(b"u", b"b.test")])],
    )
    for answers in (a, suffixed):
        bounced = sum(times for outcome, times in answers.items() if outcome.code == 550)
        deferred = sum(times for outcome, times in answers.items() if outcome.code in (421, 451))
        assert sum(answers.values()) == trials
        assert within_binomial(bounced, trials, 0.20), answers
        assert within_binomial(deferred, trials, 0.30), answers
        assert set(answers) == {
            Outcome(250, b""),
            Outcome(550, b"5.1.1 no such user"),
            Outcome(421, b"4.7.28 rate limited\n4.7.28 second line"),
            Outcome(451, b"4.3.0 try later"),
        }
        # Both deferral entries are drawn about equally.
        assert within_binomial(answers[Outcome(421, b"4.7.28 rate limited\n4.7.28 second line")], deferred, 0.5)
    assert b == {Outcome(250, b""): trials}  # the default: nothing refused


AGREEMENT = """
[default]
bounce = 0
defer = 0

[domain."gmail.com"]
bounce = 100

[[bounce."gmail.com"]]
code = 550
msg = "5.7.1 [192.0.2.1] gmail says no - gsmtp"

[domain."yahoo.com"]
defer = 100

[[defer."yahoo.com"]]
code = 421
msg = "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred\\r\\n421-4.7.0 due to unexpected volume"

[domain."nolist.test"]
bounce = 100

[domain."deferonly.test"]
defer = 100

[domain."mail.example.net"]
bounce = 100
"""

AGREEMENT_TABLE: list[tuple[str, bytes]] = [
    ("u@gmail.com", b"550 5.7.1 [192.0.2.1] gmail says no - gsmtp\r\n"),
    ("u@GMAIL.COM.kumotui.test", b"550 5.7.1 [192.0.2.1] gmail says no - gsmtp\r\n"),  # case, then trailing labels
    ("u@gmail.com.a.b.c.kumotui.test", b"550 5.7.1 [192.0.2.1] gmail says no - gsmtp\r\n"),
    ("u@gmail.com.", b"550 5.7.1 [192.0.2.1] gmail says no - gsmtp\r\n"),  # a trailing dot
    ("u@mail.gmail.com", b"250"),  # leading labels are not removed: not gmail.com's rule
    ("u@gmail.co", b"250"),
    ("u@mail.example.net.kumotui.test", b"550 boing!\r\n"),  # a rule without a list: KumoMTA's fallback
    ("u@example.net", b"250"),  # a parent of a named domain is not that domain
    (
        "u@yahoo.com.kumotui.test",
        b"421-4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred\r\n421 4.7.0 due to unexpected volume\r\n",
    ),
    ("u@nolist.test", b"550 boing!\r\n"),
    ("u@deferonly.test", b"451 later!\r\n"),
    ("u@other.test", b"250"),
    ("tempfail@gmail.com", b"451 4.7.1 tempfail requested by recipient\r\n"),
    ("x-TempFail-y@other.test", b"451 4.7.1 tempfail requested by recipient\r\n"),
    ("permfail@other.test", b"550 5.1.1 permfail requested by recipient\r\n"),
    ("450-tempfail@other.test", b"451 4.7.1 tempfail requested by recipient\r\n"),  # tempfail is checked first
    ("450-later@other.test", b"450 4.2.0 450 requested by recipient (450- local part)\r\n"),
    ("250-fine@gmail.com", b"250"),  # accepted without a draw, though gmail.com bounces everything
    ("250-permfail@gmail.com", b"550 5.1.1 permfail requested by recipient\r\n"),
]
"""Recipient -> the reply both sinks must give (``250``: accepted)."""


def builtin_answer(port: int, rcpt: str) -> bytes:
    """The built-in sink's first refusal for one message to ``rcpt``, raw; ``250`` when it is accepted."""
    client = Client(port)
    try:
        client.greet()
        assert client.cmd("MAIL FROM:<s@kumotui.test>") == 250
        client.send(f"RCPT TO:<{rcpt}>\r\n".encode())
        reply = client.raw_reply()
        if reply.startswith(b"250"):
            assert client.cmd("DATA") == 354
            client.send(b"Subject: t\r\n\r\nbody\r\n.\r\n")
            reply = client.raw_reply()
        return b"250" if reply.startswith(b"250") else reply
    finally:
        client.close()


def lua_answers(policy: Path, rcpts: list[str]) -> list[bytes]:
    """The policy's answer per recipient as kumod writes it; ``250`` when it is accepted."""
    requests = [(1, [tuple(part.encode() for part in rcpt.rsplit("@", 1))]) for rcpt in rcpts]
    answers = []
    for outcomes in run_policy(policy, requests):  # type: ignore[arg-type]
        ((outcome, _),) = outcomes.items()
        answers.append(b"250" if outcome.code == 250 else kumod_wire(outcome))
    return answers


def test_both_sinks_give_the_same_bytes_for_one_table_of_recipients(tmp_path: Path) -> None:
    responses = responses_file(tmp_path, AGREEMENT)
    rcpts = [rcpt for rcpt, _ in AGREEMENT_TABLE]
    expected = [reply for _, reply in AGREEMENT_TABLE]
    with sink("--responses", str(responses)) as (_, port):
        builtin = [builtin_answer(port, rcpt) for rcpt in rcpts]
    assert builtin == expected
    assert lua_answers(policy_for(tmp_path, responses), rcpts) == expected


def hostile_responses(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    sentinel = tmp_path / "pwned"
    msgs = [msg.replace(SENTINEL, str(sentinel)) for msg in HOSTILE_MSGS]
    domain = HOSTILE_DOMAIN.replace(SENTINEL, str(sentinel))
    entries = "".join(
        f'[domain."h{at}.test"]\nbounce = 100\n\n[[bounce."h{at}.test"]]\ncode = 554\nmsg = {toml_string(msg)}\n\n'
        for at, msg in enumerate(msgs)
    )
    entries += f"[domain.{toml_string(domain)}]\ndefer = 100\n"
    return responses_file(tmp_path, entries), sentinel, msgs


def toml_string(text: str) -> str:
    """A TOML basic string for any text (the test's own writer, so the file holds exactly ``text``)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
    return '"' + escaped.replace("\t", "\\t") + '"'


def test_hostile_reply_texts_round_trip_byte_exact_and_never_run(tmp_path: Path) -> None:
    responses, sentinel, msgs = hostile_responses(tmp_path)
    policy = policy_for(tmp_path, responses)
    rcpts = [f"u@h{at}.test" for at in range(len(msgs))]
    expected = [smtp_responses.render(554, msg) for msg in msgs]  # the built-in sink's own rendering
    assert lua_answers(policy, rcpts) == expected
    with sink("--responses", str(responses)) as (_, port):
        assert [builtin_answer(port, rcpt) for rcpt in rcpts] == expected
    assert (
        expected[6] == b"554-5.0.0 first line\r\n554-5.0.0 second, \\n not a break\r\n554 5.0.0 third\twith a tab\r\n"
    )
    assert b"d?j? vu, ?, and ?" in expected[8]  # non-ASCII goes out as '?' (SMTP replies are ASCII), in both
    # The hostile rule name is a table key like any other: its domain gets its rule (451 later!).
    domain = HOSTILE_DOMAIN.replace(SENTINEL, str(sentinel)).encode()
    ((outcome, _),) = run_policy(policy, [(1, [(b"u", domain)])])[0].items()
    assert outcome == Outcome(451, b"later!")
    assert not sentinel.exists()


def test_a_batch_is_answered_for_its_first_recipient(tmp_path: Path) -> None:
    policy = policy_for(tmp_path, responses_file(tmp_path, AGREEMENT))
    first_bounces, first_accepted = run_policy(
        policy,
        [(5, [(b"u", b"gmail.com"), (b"v", b"other.test")]), (5, [(b"v", b"other.test"), (b"u", b"gmail.com")])],
    )
    assert first_bounces == {Outcome(550, b"5.7.1 [192.0.2.1] gmail says no - gsmtp"): 5}
    assert first_accepted == {Outcome(250, b""): 5}


def test_without_a_responses_file_the_policy_accepts_everything(tmp_path: Path) -> None:
    policy = policy_for(tmp_path, None)
    assert "smart_answer" not in policy.read_text()
    (answers,) = run_policy(policy, [(50, [(b"tempfail", b"gmail.com")])])
    assert answers == {Outcome(250, b""): 50}
    # The same listeners with and without one: the Smart Sink only adds the answers.
    plain = render_sink_policy(tmp_path / "s")
    smart = render_sink_policy(tmp_path / "s", responses=smtp_responses.load(str(responses_file(tmp_path, SHARES))))
    setup = plain.split("kumo.on('init'")[1].split("kumo.on('smtp_server_message_received'")[0]
    assert setup in smart


def test_an_empty_reply_text_is_refused_for_both_sinks(cli: Cli, tmp_path: Path) -> None:
    path = responses_file(tmp_path, '[[defer."x.test"]]\ncode = 451\nmsg = "  \\r\\n "\n')
    for backend in ("builtin", "kumomta"):
        done = cli("sink", "--listen", "127.0.0.1:0", "--backend", backend, "--responses", path)
        assert done.returncode == 2
        assert f'{path}: [[defer."x.test"]] entry 1: msg has no text' in done.stderr, done.stderr


@pytest.mark.parametrize("command", ["sink", "bench"])
def test_the_kumomta_sink_takes_a_responses_file(cli: Cli, tmp_path: Path, command: str) -> None:
    extra = ["--listen", "127.0.0.1:0"] if command == "sink" else ["--local-sink", "--messages", "10"]
    done = cli(command, *extra, "--backend", "kumomta", "--responses", responses_file(tmp_path, SHARES))
    # Accepted; what stops it here is only that KumoMTA is not installed on this machine.
    assert "--responses" not in done.stderr and "Traceback" not in done.stderr
    assert done.returncode == 2 and "kumod" in done.stderr
