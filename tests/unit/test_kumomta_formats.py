"""The KumoMTA backend against KUMOMTA.md's formats: discovery, the sink policy,
kumod's stderr, Prometheus metrics and traffic-gen's output, from recorded bytes.

The stand-ins running for real are in ``tests/integration/test_kumomta.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kumotui.backends.kumomta.install import find_kumomta
from kumotui.backends.kumomta.kumod import KumodStderr, kumod_command
from kumotui.backends.kumomta.metrics import (
    KumodSinkSampler,
    check_liveness,
    fetch_metrics,
    parse_prometheus,
    sink_counters,
)
from kumotui.backends.kumomta.policy import lua_string, render_sink_policy, routing_snippet, write_sink_policy
from kumotui.backends.kumomta.traffic_gen import (
    TrafficGenOutput,
    generous_duration,
    parse_rust_duration,
    traffic_gen_command,
)
from kumotui.backends.lines import LineSplitter, parse_size
from kumotui.backends.samples import Sample, Summary
from kumotui.errors import KumotuiError
from tests.support.processes import free_port
from tests.support.standins import STANDINS, load_standin
from tests.support.streams import chunked

ESC = "\x1b"

# --- recorded transcripts, byte for byte as KUMOMTA.md describes them ---------

TRAFFIC_GEN_STDOUT = (
    b"\r\x1b[Kcurrent rate: 1,234 msgs/s, 74,040 msgs/minute, 4,442,400 msgs/hour (sent=1,240, clients=200)"
    b"\r\x1b[Kcurrent rate: 1,250 msgs/s, 75,000 msgs/minute, 4,500,000 msgs/hour (sent=2,490, clients=200)"
    b"\r\x1b[Kcurrent rate: 1,248 msgs/s, 74,880 msgs/minute, 4,492,800 msgs/hour (sent=3,738, clients=12)"
    b"\nAll clients finished\n"
    b"sent 4,000 messages, failed 0 over 3.204567891s.\n"
    + "transaction latency: avg=1.5ms min=523µs max=2.003s p50=1.2ms p75=1.8ms p90=2.5ms p95=3.1ms "
    "p99=9.75ms p99.9=81.234567891ms\n".encode()
    + b"overall rate: 1,248 msgs/s, 74,880 msgs/minute, 4,492,800 msgs/hour\n"
)
TRAFFIC_GEN_STDERR = b"Generated body of size 100.0 kB\n"

KUMOD_START = (
    f"{ESC}[2m2026-06-01T12:00:00.000001Z{ESC}[0m {ESC}[32m INFO{ESC}[0m {ESC}[2mkumod::smtp_server{ESC}[0m"
    f"{ESC}[2m:{ESC}[0m smtp listener on 0.0.0.0:2026\n"
    f"{ESC}[2m2026-06-01T12:00:00.000002Z{ESC}[0m {ESC}[32m INFO{ESC}[0m {ESC}[2mkumo_server_common{ESC}[0m"
    f"{ESC}[2m:{ESC}[0m http listener on 0.0.0.0:8002\n"
    f"{ESC}[2m2026-06-01T12:00:00.000003Z{ESC}[0m {ESC}[32m INFO{ESC}[0m {ESC}[2mkumod{ESC}[0m"
    f"{ESC}[2m:{ESC}[0m initialization complete\n"
).encode()
KUMOD_FAILED = (
    f"{ESC}[32m INFO{ESC}[0m kumod: initialization complete\n"
    f"{ESC}[31mERROR{ESC}[0m kumod: problem initializing: "
    "failed to bind listener: Address already in use (os error 98)\n"
).encode()

METRICS = """\
# HELP connection_count number of active connections
# TYPE connection_count gauge
connection_count{service="esmtp_listener"} 17
connection_count{service="smtp_client"} 3
# HELP total_messages_received total number of messages ever received by a service
# TYPE total_messages_received counter
total_messages_received{service="esmtp_listener"} 1.2345e+05
total_messages_received{service="http_listener"} 7
total_messages_delivered{service="smtp_client"} 0
memory_limit 1.2884901888e+10
weird{msg="a \\"quoted\\", {braced} value",service="x"} NaN 1717243200000
"""


def parse_traffic_gen(chunks: list[bytes], **kwargs: int) -> tuple[list[Sample], Summary]:
    parser = TrafficGenOutput(**kwargs)  # type: ignore[arg-type]
    parser.feed_stderr(TRAFFIC_GEN_STDERR)
    samples = [s for chunk in chunks for s in parser.feed_stdout(chunk, elapsed=1.0)]
    return samples, parser.finish()


# --- discovery ---------------------------------------------------------------


def test_find_kumomta_uses_the_prefix(kumo_prefix: Path) -> None:
    tools = find_kumomta()
    assert tools.kumod == kumo_prefix / "sbin" / "kumod"
    assert tools.traffic_gen == kumo_prefix / "sbin" / "traffic-gen"


def test_find_kumomta_says_what_and_where_when_missing(tmp_path: Path) -> None:
    (tmp_path / "sbin").mkdir()
    with pytest.raises(KumotuiError) as caught:
        find_kumomta(env={"KUMOMTA_PREFIX": str(tmp_path)})
    message = str(caught.value)
    assert "kumod or traffic-gen" in message and str(tmp_path / "sbin") in message
    if not Path("/opt/kumomta/sbin/kumod").exists():
        with pytest.raises(KumotuiError, match=r"in /opt/kumomta/sbin\."):
            find_kumomta(env={})


def test_find_kumomta_needs_only_what_the_caller_runs(tmp_path: Path) -> None:
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    (sbin / "kumod").symlink_to(STANDINS / "kumod")
    assert find_kumomta(env={"KUMOMTA_PREFIX": str(tmp_path)}, need=("kumod",)).sbin == sbin
    with pytest.raises(KumotuiError, match="traffic-gen"):
        find_kumomta(env={"KUMOMTA_PREFIX": str(tmp_path)})


# --- the sink policy and routing ------------------------------------------------


def test_policy_has_the_exact_listener_and_meta_lines(tmp_path: Path) -> None:
    text = render_sink_policy(tmp_path / "spool")
    lines = [line.strip() for line in text.splitlines()]
    assert "kumo.start_esmtp_listener {" in lines
    assert "listen = '0.0.0.0:2026'," in lines
    assert "relay_hosts = { '0.0.0.0/0' }," in lines
    assert "kumo.start_http_listener {" in lines
    assert "listen = '0.0.0.0:8002'," in lines
    assert "trusted_hosts = { '127.0.0.1', '::1' }," in lines
    assert "kumo.on('smtp_server_message_received', function(msg)" in lines
    assert lines.count("msg:set_meta('queue', 'null')") == 2  # SMTP and HTTP injection
    assert f"path = '{tmp_path / 'spool' / 'data'}'," in lines
    assert f"path = '{tmp_path / 'spool' / 'meta'}'," in lines
    assert not any(line.startswith("kumo.configure_local_logs") for line in lines)  # no log files
    assert "/tmp/kumo-sink" not in text and "/var/spool" not in text


def test_policy_ports_and_hosts_are_parameters(tmp_path: Path) -> None:
    text = render_sink_policy(tmp_path, port=2500, http_port=8100, listen_host="127.0.0.1", http_host="::1")
    assert "listen = '127.0.0.1:2500'," in text
    assert "listen = '[::1]:8100'," in text


def test_lua_strings_survive_awkward_paths() -> None:
    assert lua_string("/tmp/it's\\here\n") == "'/tmp/it\\'s\\\\here\\010'"


def test_write_sink_policy_creates_the_throwaway_spool(tmp_path: Path) -> None:
    policy = write_sink_policy(tmp_path / "sink", port=2600, http_port=8200)
    assert policy == tmp_path / "sink" / "sink.lua"
    assert (tmp_path / "sink" / "spool" / "data").is_dir()
    assert "listen = '0.0.0.0:2600'," in policy.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_write_sink_policy_hands_the_directory_to_kumods_user(public_tmp: Path, tmp_path: Path) -> None:
    import pwd

    nobody = pwd.getpwnam("nobody")
    policy = write_sink_policy(public_tmp, owner="nobody")
    assert policy.stat().st_uid == nobody.pw_uid
    assert (public_tmp / "spool" / "meta").stat().st_uid == nobody.pw_uid
    with pytest.raises(KumotuiError, match="no-such-user-kumotui"):
        write_sink_policy(public_tmp / "other", owner="no-such-user-kumotui")
    # pytest's own tmp dirs are 0700 root: kumod, once it dropped to nobody, could not get in.
    with pytest.raises(KumotuiError, match=r"'nobody', who cannot reach .* is not searchable"):
        write_sink_policy(tmp_path / "sink", owner="nobody")


def test_routing_snippet_queues_for_the_sink_and_lifts_prohibited_hosts() -> None:
    snippet = routing_snippet("10.0.0.5", 2026)
    assert "kumo.on('smtp_server_message_received', function(msg)" in snippet
    assert "msg:set_meta('queue', '[10.0.0.5]')" in snippet
    assert "smtp_port = 2026," in snippet
    assert "prohibited_hosts = {}," in snippet
    assert "kumo.on('get_egress_path_config'" in snippet
    assert "if routing_domain == '[10.0.0.5]' then" in snippet
    assert "msg:set_meta('queue', 'sink.example.net')" in routing_snippet("sink.example.net")
    assert "'[IPv6:::1]'" in routing_snippet("::1")


def test_kumod_command_adds_user_only_as_root() -> None:
    assert kumod_command("/k/kumod", "/p/sink.lua", as_root=False) == ["/k/kumod", "--policy", "/p/sink.lua"]
    assert kumod_command("/k/kumod", "/p/sink.lua", as_root=True)[-2:] == ["--user", "kumod"]
    assert kumod_command("/k/kumod", "/p/sink.lua", as_root=True, user="mta")[-1] == "mta"


# --- kumod's stderr ------------------------------------------------------------------


def test_kumod_readiness_lines_with_colour() -> None:
    reader = KumodStderr()
    events = reader.feed(KUMOD_START)
    assert [(e.kind, e.detail) for e in events] == [
        ("smtp_listener", "0.0.0.0:2026"),
        ("http_listener", "0.0.0.0:8002"),
        ("initialized", "initialization complete"),
    ]
    assert reader.initialized and reader.failure is None


@pytest.mark.parametrize("transcript", [KUMOD_START, KUMOD_FAILED])
def test_kumod_lines_split_at_every_offset(transcript: bytes) -> None:
    whole = KumodStderr().feed(transcript)
    for offset in range(len(transcript) + 1):
        reader = KumodStderr()
        events = reader.feed(transcript[:offset]) + reader.feed(transcript[offset:]) + reader.finish()
        assert events == whole


def test_a_failed_start_wins_over_initialization_complete() -> None:
    reader = KumodStderr()
    reader.feed(KUMOD_FAILED)
    assert reader.initialized
    assert reader.failure == "failed to bind listener: Address already in use (os error 98)"


def test_shutdown_line() -> None:
    reader = KumodStderr()
    reader.feed(b"\x1b[32m INFO\x1b[0m kumod: Shutdown completed OK!")
    assert not reader.shutdown_ok
    reader.finish()
    assert reader.shutdown_ok


# --- metrics -----------------------------------------------------------------------


def test_prometheus_text_is_parsed_robustly() -> None:
    samples = parse_prometheus(METRICS + "garbage line without value\n{}\n")
    by_key = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}
    assert by_key[("total_messages_received", (("service", "esmtp_listener"),))] == 123450
    assert by_key[("memory_limit", ())] == 1.2884901888e10
    weird = next(s for s in samples if s.name == "weird")
    assert weird.labels == {"msg": 'a "quoted", {braced} value', "service": "x"}
    assert len(samples) == 7


def test_sink_counters_pick_the_esmtp_listener_series() -> None:
    assert sink_counters(METRICS).received == 123450
    assert sink_counters(METRICS).connections == 17
    reordered = 'total_messages_received{listener="0.0.0.0:2026",service="esmtp_listener"} 5\n'
    reordered += 'total_messages_received{service="esmtp_listener",listener="[::]:2026"} 6\n'
    assert sink_counters(reordered).received == 11
    assert sink_counters(reordered).connections is None
    assert sink_counters("").received is None


def test_sink_sampler_turns_counters_into_rates() -> None:
    sampler = KumodSinkSampler(window=5.0)
    text = 'total_messages_received{service="esmtp_listener"} %d\nconnection_count{service="esmtp_listener"} 4\n'
    first = sampler.update(0.0, text % 0)
    assert first == Sample(role="sink", elapsed=0.0, count=0, connections=4, rate=None)
    assert sampler.update(1.0, text % 1000).rate == 1000
    assert sampler.update(2.0, text % 3000).rate == 1500
    assert sampler.update(3.0, "").count == 3000  # a reading without the counter keeps the last count


def test_liveness_of_nothing_is_not_ready() -> None:
    answer = check_liveness("127.0.0.1", free_port(), timeout=1)
    assert not answer.ready and answer.status is None
    with pytest.raises(KumotuiError, match="cannot read the metrics"):
        fetch_metrics("127.0.0.1", free_port(), timeout=1)


# --- traffic-gen -------------------------------------------------------------------


def test_traffic_gen_command_sizes_duration_for_the_count() -> None:
    command = traffic_gen_command("tg", target="127.0.0.1:2026", concurrency=200, messages=100_000)
    assert command == [
        "tg",
        "--target",
        "127.0.0.1:2026",
        "--concurrency",
        "200",
        "--message-count",
        "100000",
        "--duration",
        "10000",
    ]
    assert generous_duration(10) == 3600
    explicit = traffic_gen_command("tg", target="h:1", messages=5, duration=30, body_size="100KB", keep_going=True)
    assert explicit[-5:] == ["--duration", "30", "--body-size", "100KB", "--keep-going"]
    assert "--duration" not in traffic_gen_command("tg", target="h:1")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"concurrency": 0}, "--concurrency"), ({"messages": -1}, "--message-count"), ({"body_size": "big"}, "size")],
)
def test_traffic_gen_command_refuses_bad_values(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(KumotuiError, match=match):
        traffic_gen_command("tg", target="h:1", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("523µs", 523e-6),
        ("523μs", 523e-6),
        ("10us", 10e-6),
        ("1.5ms", 1.5e-3),
        ("2.003s", 2.003),
        ("81.234567891s", 81.234567891),
        ("100ns", 100e-9),
        ("0ns", 0.0),
        ("999.999999ms", 0.999999999),
        ("1000s", 1000.0),
    ],
)
def test_rust_durations(text: str, seconds: float) -> None:
    assert parse_rust_duration(text) == pytest.approx(seconds, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("text", ["1m 3s", "", "5 sec", "1.5", "-1s", "1.5 ks", "ms"])
def test_not_rust_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a Rust Duration"):
        parse_rust_duration(text)


def test_stand_in_durations_read_back_exactly() -> None:
    """The stand-in formats like Rust's Debug; every unit boundary reads back to the same nanoseconds."""
    fmt = load_standin("traffic-gen").rust_duration
    assert [fmt(n) for n in (0, 1, 999, 1000, 1500, 523_000, 1_500_000, 2_003_000_000, 81_234_567_891)] == [
        "0ns",
        "1ns",
        "999ns",
        "1µs",
        "1.5µs",
        "523µs",
        "1.5ms",
        "2.003s",
        "81.234567891s",
    ]
    for nanos in (7, 999_999, 1_000_001, 999_999_999, 1_000_000_001, 3_600_000_000_000, 12_345_678_912_345):
        assert round(parse_rust_duration(fmt(nanos)) * 1e9) == nanos


def test_traffic_gen_transcript() -> None:
    samples, summary = parse_traffic_gen([TRAFFIC_GEN_STDOUT])
    assert [(s.count, s.rate, s.connections) for s in samples] == [
        (1240, 1234, 200),
        (2490, 1250, 200),
        (3738, 1248, 12),
    ]
    assert samples[0].bytes == 1240 * 100_000  # from "Generated body of size 100.0 kB"
    assert summary.ok and summary.reason == ""
    assert (summary.count, summary.failed, summary.elapsed) == (4000, 0, pytest.approx(3.204567891))
    assert summary.msgs_per_s == 1248 and summary.mmh == pytest.approx(4.4928)
    assert summary.latency_p50_ms == pytest.approx(1.2)
    assert summary.latency_p90_ms == pytest.approx(2.5)
    assert summary.latency_p95_ms == pytest.approx(3.1)
    assert summary.latency_p99_ms == pytest.approx(9.75)
    assert summary.latency_max_ms == pytest.approx(2003)
    assert summary.mb_per_s == pytest.approx(4000 * 100_000 / 3.204567891 / 1e6)


def test_traffic_gen_output_in_chunks_of_every_size() -> None:
    reference = parse_traffic_gen([TRAFFIC_GEN_STDOUT])
    for size in range(1, len(TRAFFIC_GEN_STDOUT) + 1):
        assert parse_traffic_gen(chunked(TRAFFIC_GEN_STDOUT, size)) == reference, f"chunk size {size}"


def test_traffic_gen_output_split_at_every_offset() -> None:
    reference = parse_traffic_gen([TRAFFIC_GEN_STDOUT])
    data = TRAFFIC_GEN_STDOUT
    for offset in range(len(data) + 1):
        assert parse_traffic_gen([data[:offset], data[offset:]]) == reference, f"offset {offset}"


def test_a_progress_line_is_reported_before_the_next_redraw() -> None:
    parser = TrafficGenOutput()
    line = TRAFFIC_GEN_STDOUT.split(b"\r")[1]
    assert [s.count for s in parser.feed_stdout(b"\r" + line, 1.0)] == [1240]
    assert parser.feed_stdout(b"\r", 2.0) == []  # its terminator does not repeat it


def test_end_marker_on_the_progress_line_and_deadline_cut_short() -> None:
    data = TRAFFIC_GEN_STDOUT.replace(b"\nAll clients finished\n", b"Deadline reached, stopping\n")
    reference = parse_traffic_gen([data], expected_messages=100_000)
    samples, summary = reference
    assert len(samples) == 3
    assert not summary.ok
    assert summary.reason == "--duration ended the run after 4,000 of 100,000 messages"
    for size in (1, 2, 3, 7, 64):
        assert parse_traffic_gen(chunked(data, size), expected_messages=100_000) == reference


def test_failures_are_judged_from_the_output() -> None:
    parser = TrafficGenOutput()
    parser.feed_stderr(
        b"Generated body of size 1.0 kB\n"
        + b"failed to connect to 127.0.0.1:2026: Connection refused (os error 111)\n" * 3
    )
    parser.feed_stdout(b"All clients finished\nsent 0 messages, failed 0 over 1.2ms.\n", 0.1)
    summary = parser.finish()
    assert not summary.ok
    assert summary.reason.startswith("no message was sent (e.g. failed to connect to 127.0.0.1:2026")
    assert summary.failures == {"failed to connect to 127.0.0.1:2026: Connection refused (os error 111)": 3}

    failed = TrafficGenOutput()
    failed.feed_stdout(b"All clients finished\nsent 90 messages, failed 10 over 1s.\n", 0.1)
    assert failed.finish().reason == "10 of 100 transactions failed"


def test_a_killed_traffic_gen_is_not_ok_and_keeps_its_last_count() -> None:
    parser = TrafficGenOutput()
    parser.feed_stdout(TRAFFIC_GEN_STDOUT.split(b"\n")[0], 2.5)
    summary = parser.finish(elapsed=3.0)
    assert not summary.ok and "before printing its summary" in summary.reason
    assert (summary.count, summary.elapsed) == (3738, 3.0)


def test_shared_helpers() -> None:
    lines = LineSplitter()
    assert lines.feed("a\r\nb€".encode()[:-1]) == ["a", ""]
    assert lines.feed("€".encode()[-1:] + b"\rc") == ["b€"]
    assert lines.flush() == ["c"]
    assert [parse_size(s) for s in ("100000", "100KB", "100 kB", "1MiB", "1.5k")] == [
        100000,
        100000,
        100000,
        1048576,
        1500,
    ]
    # the one size parser of the core is the generator engine's: same bounds, same words, the flag named
    with pytest.raises(KumotuiError, match=r"^--body-size 'ten': expected a size like 1000, 1KB"):
        parse_size("ten")
    with pytest.raises(KumotuiError, match=r"^--max-message-size '0': must be at least 1 byte"):
        parse_size("0", "--max-message-size")
    assert parse_size(2048) == 2048 and parse_size("1.001KB") == 1001
