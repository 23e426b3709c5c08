"""The Smart Sink and the realistic generator, real engines on loopback.

A responses file that defers 30% and bounces 20% for one domain and nothing
for another shows those shares for that domain only (within 4.5 standard
deviations of the binomial), and the counts still balance; forced local parts
get their codes; ``--header`` lines arrive in the messages; ``--domain a:3
--domain b:1`` splits 3:1; through a stand-in MTA that retries deferrals the
accounting says how many deferred messages were later delivered.
"""

from __future__ import annotations

import json
import math
import smtplib
from pathlib import Path

import pytest

from kumotui.engines.smtp_gen import PROVIDER_MIX
from tests.support.cli import Cli
from tests.support.processes import free_port
from tests.support.relay import Relay
from tests.support.smtp import finish, run_gen, sink

pytestmark = pytest.mark.processes

RESPONSES = """
[default]
bounce = 0
defer = 0

[domain."a.test"]
bounce = 20
defer = 30

[[defer."a.test"]]
code = 421
msg = "4.7.28 rate limited\\r\\n421-4.7.28 second line"

[[defer."a.test"]]
code = 451
msg = "4.3.0 try later"

[[bounce."a.test"]]
code = 550
msg = "5.1.1 no such user"

[domain."b.test"]
defer = 0
"""


def within_binomial(count: int, trials: int, share: float) -> bool:
    """``count`` of ``trials`` is within 4.5 standard deviations of ``share`` (false alarm about 1 in 150,000)."""
    sd = math.sqrt(trials * share * (1 - share))
    return abs(count - trials * share) <= 4.5 * sd + 1


@pytest.fixture
def responses(tmp_path: Path) -> Path:
    path = tmp_path / "responses.toml"
    path.write_text(RESPONSES)
    return path


def test_shares_per_domain_and_the_counts_balance(responses: Path) -> None:
    with sink("--responses", str(responses), "--seed", "7") as (job, port):
        gen = run_gen(port, "--messages", "4000", "--domain", "a.test:1", "--domain", "b.test:1")
        line = finish(job)
    assert line is not None
    domains = line["domains"]
    a, b = domains["a.test"], domains["b.test"]
    a_total = a["accepted"] + a["deferred"] + a["bounced"]
    assert a_total + b["accepted"] == 4000 and b["deferred"] == b["bounced"] == 0
    assert within_binomial(a["deferred"], a_total, 0.30), a
    assert within_binomial(a["bounced"], a_total, 0.20), a
    assert within_binomial(a_total, 4000, 0.5)  # the 1:1 mix
    # The generator's view and the sink's agree message for message.
    assert gen["sent"] == line["received"] == a["accepted"] + b["accepted"]
    assert gen["failed_by"] == {"4xx": a["deferred"], "5xx": a["bounced"]}
    assert gen["sent"] + gen["failed"] == 4000
    codes = line["domain_replies"]
    assert codes["a.test 421"] + codes["a.test 451"] == a["deferred"] and codes["a.test 550"] == a["bounced"]


def test_the_same_seed_draws_the_same_answers(responses: Path) -> None:
    results = []
    for _ in range(2):
        with sink("--responses", str(responses), "--seed", "11") as (job, port):
            run_gen(port, "--messages", "300", "--concurrency", "1", "--domain", "a.test")
            line = finish(job)
        assert line is not None
        results.append(line["domains"])
    assert results[0] == results[1]


def send(port: int, rcpt: str) -> tuple[int, bytes]:
    """One message to ``rcpt``: the code and text of the refusal, or 250."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        try:
            client.sendmail("s@kumotui.test", [rcpt], b"Subject: t\r\n\r\nbody\r\n")
        except smtplib.SMTPRecipientsRefused as error:
            return error.recipients[rcpt]
        except smtplib.SMTPResponseException as error:
            return error.smtp_code, error.smtp_error
    return 250, b""


def test_local_parts_force_the_outcome(tmp_path: Path) -> None:
    always = tmp_path / "bounce-all.toml"
    always.write_text("[default]\nbounce = 100\ndefer = 0\n")
    with sink("--responses", str(always)) as (job, port):
        assert send(port, "tempfail@x.test")[0] // 100 == 4
        assert send(port, "permfail@x.test")[0] // 100 == 5
        assert send(port, "450-anything@x.test")[0] == 450
        assert send(port, "250-anything@x.test")[0] == 250  # accepted without a draw
        code, text = send(port, "user@x.test")
        assert (code, text) == (550, b"boing!")  # KumoMTA's fallback text
        line = finish(job)
    assert line is not None and line["received"] == 1


def test_multi_line_replies_keep_every_line(responses: Path) -> None:
    with sink("--responses", str(responses), "--seed", "3") as (_, port):
        seen = {send(port, "u@a.test") for _ in range(60)}
    assert (421, b"4.7.28 rate limited\n4.7.28 second line") in seen


def test_headers_arrive_and_domains_split_three_to_one() -> None:
    captured: list[bytes] = []
    relay = Relay(("127.0.0.1", free_port()), drop=lambda message: captured.append(message) is None)
    with relay:
        port = int(relay.address.rpartition(":")[2])
        run_gen(
            port, "--messages", "40", "--concurrency", "2", "--header", "X-Tenant: acme", "--header", "X-Campaign: c7"
        )
    assert len(captured) == 40
    assert all(b"\r\nX-Tenant: acme\r\n" in m and b"\r\nX-Campaign: c7\r\n" in m for m in captured)
    with sink("--responses", "/dev/null") as (job, port):
        run_gen(port, "--messages", "4000", "--domain", "a.test:3", "--domain", "b.test:1")
        line = finish(job)
    assert line is not None
    a, b = line["domains"]["a.test"]["accepted"], line["domains"]["b.test"]["accepted"]
    assert a + b == 4000 and within_binomial(a, 4000, 0.75), (a, b)


def test_a_mix_is_suffixed_into_reserved_names() -> None:
    with sink("--responses", "/dev/null") as (job, port):
        run_gen(port, "--messages", "2000", "--mix", "providers")
        line = finish(job)
    assert line is not None
    names = set(line["domains"])
    assert "gmail.com.kumotui.test" in names and all(name.endswith(".kumotui.test") for name in names)
    gmail = line["domains"]["gmail.com.kumotui.test"]["accepted"]
    assert within_binomial(gmail, 2000, 67.4 / sum(weight for _, weight in PROVIDER_MIX))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[default]\nbounce = 80\ndefer = 30\n", "[default]: bounce plus defer is 110, more than 100"),
        ('[[defer."x.test"]]\ncode = 250\nmsg = "ok"\n', '[[defer."x.test"]] entry 1: code 250 is not a 4xx'),
        ("[default]\nbounce = \n", "not valid TOML"),
        ("[defaults]\n", "unknown table 'defaults'"),
    ],
)
def test_a_bad_responses_file_is_one_clear_line(cli: Cli, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    done = cli("sink", "--listen", "127.0.0.1:0", "--responses", path)
    assert done.returncode == 2
    assert message in done.stderr and str(path) in done.stderr and "Traceback" not in done.stderr


def test_a_real_domain_needs_an_explicit_allowance(cli: Cli) -> None:
    done = cli("bench", "--local-sink", "--messages", "10", "--domain", "gmail.com", "--domain-suffix", "")
    assert done.returncode == 2 and "--allow-real-domains" in done.stderr


def test_deferrals_drain_through_an_mta_that_retries(cli: Cli, tmp_path: Path) -> None:
    responses = tmp_path / "r.toml"
    responses.write_text('[domain."example.com"]\ndefer = 30\nbounce = 10\n')
    port = free_port()
    with Relay(("127.0.0.1", port)) as relay:
        done = cli(
            "bench", "--through", relay.address, "--local-sink", "--listen", f"127.0.0.1:{port}",
            "--messages", "600", "--concurrency", "4", "--probe-timeout", "10", "--drain-timeout", "30",
            "--responses", responses, "--seed", "5", "--state-dir", tmp_path, "--json",
        )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    delivery = json.loads(done.stdout.splitlines()[-1])["delivery"]
    assert delivery["injected"] == 600 and delivery["lost"] == 0
    assert delivery["delivered"] + delivery["bounced"] == 600
    assert relay.deferred >= delivery["deferrals"] == delivery["deferrals"] > 0
    assert 0 < delivery["deferred_delivered"] <= delivery["deferred"]
    assert within_binomial(delivery["bounced"], 600, 0.1 / 0.7 * 1.0) or delivery["bounced"] > 0
    report = cli(
        "report", json.loads(cli("runs", "--json", "--state-dir", tmp_path).stdout)[0]["id"], "--state-dir", tmp_path
    )
    assert "later delivered by the MTA's retries" in report.stdout
    assert "Backpressure applied by the sink" in report.stdout and "example.com" in report.stdout


@pytest.mark.parametrize("command", ["sink", "bench"])
def test_responses_are_refused_where_the_sink_cannot_answer_from_them(cli: Cli, responses: Path, command: str) -> None:
    extra = ["--listen", "127.0.0.1:0"] if command == "sink" else ["--local-sink", "--messages", "10"]
    done = cli(command, *extra, "--backend", "postfix", "--responses", responses)
    assert done.returncode == 2, done.stderr
    assert "--responses: the postfix sink cannot answer from a responses file" in done.stderr
    assert "Traceback" not in done.stderr


def test_responses_need_a_sink_kumotui_starts(cli: Cli, responses: Path) -> None:
    done = cli("bench", "--target", "127.0.0.1:2525", "--messages", "10", "--responses", responses)
    assert done.returncode == 2 and "--responses needs --local-sink" in done.stderr
