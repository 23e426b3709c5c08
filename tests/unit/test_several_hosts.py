"""Runs across hosts, as pure core: shares, exact merges, host hints, per-host records and reports, raw counters."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from kumotui.backends import LoadRequest
from kumotui.backends.samples import LatencyHistogram, Sample, Summary
from kumotui.bench.hints import HintInputs, hints_by_host, host_hints
from kumotui.bench.hoststats import AgentSampler, HostStats
from kumotui.bench.placement import Roles
from kumotui.bench.records import HostEntry, RunConfig, RunRecord, new_run
from kumotui.bench.report import host_parameter_differences, hosts_that_differed, report_markdown
from kumotui.bench.senders import SenderResult, merged_summary, share
from kumotui.engines import smtp_common, smtp_gen
from kumotui.errors import KumotuiError
from kumotui.hosts import HostFacts
from kumotui.hosts.agent import host_counters, route_interface

FACTS = HostFacts("mx1", "6.8.0", 4, 8 << 30)


def histogram_of(latencies_us: list[int]) -> LatencyHistogram:
    counts: dict[int, int] = {}
    for us in latencies_us:
        counts[smtp_common.bucket_of(us)] = counts.get(smtp_common.bucket_of(us), 0) + 1
    return LatencyHistogram(counts, sum(latencies_us), float(max(latencies_us)))


def test_merged_histograms_give_the_percentiles_of_all_transactions_together() -> None:
    fast, slow = [1000 + i for i in range(900)], [50_000 + 10 * i for i in range(100)]
    merged = LatencyHistogram.merge([histogram_of(fast), histogram_of(slow)])
    assert merged.percentiles() == histogram_of(fast + slow).percentiles()
    assert merged.total == 1000 and merged.percentiles()["p99"] > 40  # the slow host shows; an average would hide it


def test_an_engine_line_gives_its_histogram() -> None:
    line = {
        "latency_histogram": {"buckets_per_octave": 8, "unit": "us", "counts": {"80": 3}, "sum_us": 3000},
        "latency_ms": {"max": 1.2},
    }
    assert LatencyHistogram.from_line(line) == LatencyHistogram({80: 3}, 3000, 1200.0)
    assert LatencyHistogram.from_line({"latency_ms": {"p50": 1.0}}) is None


def test_shares_add_up_exactly_and_take_distinct_worker_ranges() -> None:
    load = LoadRequest("127.0.0.1:25", concurrency=51, messages=20_001, rate=300.0, workers=4)
    parts = [share(load, 3, i) for i in range(3)]
    assert sum(p.messages or 0 for p in parts) == 20_001 and sum(p.concurrency for p in parts) == 51
    assert [p.worker_base for p in parts] == [0, 4, 8] and all(p.rate == 100.0 for p in parts)
    assert share(load, 1, 0) == load


def test_the_engine_refuses_worker_ranges_that_reach_the_probes() -> None:
    args = smtp_gen.build_parser().parse_args(
        ["--target", "127.0.0.1:25", "--worker-base", str(smtp_common.PROBE_WORKER - 1), "--workers", "2"]
    )
    with pytest.raises(smtp_common.StartError, match="--worker-base"):
        smtp_gen.config_from(args)


def summary(count: int, elapsed: float, ok: bool = True, reason: str = "") -> Summary:
    return Summary.build("generator", count=count, failed=0, elapsed=elapsed, ok=ok, reason=reason)


def test_a_merged_summary_adds_counts_and_fails_for_a_lost_host() -> None:
    a = SenderResult("gen-a", summary(1000, 2.0), 0, latency_histogram=histogram_of([2000] * 1000))
    b = SenderResult("gen-b", summary(3000, 4.0), 0, latency_histogram=histogram_of([8000] * 3000))
    merged = merged_summary([a, b])
    assert merged is not None and (merged.count, merged.elapsed, merged.msgs_per_s) == (4000, 4.0, 1000.0)
    assert merged.ok and merged.latency_p50_ms == pytest.approx(8.0, rel=0.05)
    lost = SenderResult("gen-b", None, error="the SSH connection was lost")
    broken = merged_summary([a, lost])
    assert broken is not None and broken.count == 1000 and not broken.ok
    assert broken.reason == "gen-b: the SSH connection was lost"


def stats(overflows: int = 0, time_wait: int = 0) -> HostStats:
    return HostStats(0.0, (10.0,), 1, 2, "lo", None, None, 1, time_wait, 10, 1000, overflows, overflows)


def test_host_hints_name_the_host_and_where_to_act() -> None:
    inputs = HintInputs(host=stats(40), host_at_start=stats(0), parameters={"net.core.somaxconn": "128"})
    (hint,) = host_hints("mx2", ("sink",), inputs)
    assert hint.title == "sink host mx2: Listen queue overflowed → net.core.somaxconn on mx2"
    assert (hint.id, hint.host, hint.param) == ("listen-overflow@mx2", "mx2", "net.core.somaxconn")
    ports = {"net.ipv4.ip_local_port_range": "32768 32867", "net.ipv4.tcp_tw_reuse": "0"}
    found = hints_by_host(
        [("gen-a", ("generator",), ports), ("mx2", ("sink",), {"net.core.somaxconn": "128"})],
        {"gen-a": stats(time_wait=95), "mx2": stats(40)},
        {"gen-a": stats(), "mx2": stats()},
    )
    assert [(h.id, h.host) for h in found] == [("time-wait@gen-a", "gen-a"), ("listen-overflow@mx2", "mx2")]


def test_roles_by_host_and_refusals() -> None:
    roles = Roles(generators=("gen-a", None), sink="mx2", mta="mx2")
    assert roles.by_host() == {"gen-a": ("generator",), "local": ("generator",), "mx2": ("sink", "mta")}
    assert Roles(generators=("a",), starts_sink=False).by_host() == {"a": ("generator",)}
    with pytest.raises(KumotuiError, match="--host a: named twice"):
        Roles(generators=("a", "a")).check()


def record(parameters: dict[str, dict[str, str]]) -> RunRecord:
    hosts = tuple(
        HostEntry(name, ("generator",), replace(FACTS, hostname=name), values) for name, values in parameters.items()
    )
    first = next(iter(parameters.values()))
    return replace(new_run(RunConfig("builtin", "127.0.0.1:25"), FACTS, first), hosts=hosts)


def test_records_keep_each_host_and_read_old_ones() -> None:
    run = replace(
        record({"gen-a": {"net.core.somaxconn": "4096"}, "mx2": {"net.core.somaxconn": "128"}}),
        generators=(SenderResult("gen-a", summary(10, 1.0), 0), SenderResult("gen-b", None, error="lost")),
        failure="the generator on gen-b ended without its summary",
    )
    again = RunRecord.from_json(json.loads(json.dumps(run.as_json())))
    assert again.hosts == run.hosts and again.failure == run.failure
    assert [(g.host, g.summary.count if g.summary else None, g.error) for g in again.generators] == [
        ("gen-a", 10, ""),
        ("gen-b", None, "lost"),
    ]
    assert again.status == "failed"
    old = run.as_json()
    for key in ("hosts", "generators", "failure"):
        del old[key]
    legacy = RunRecord.from_json(old)
    assert legacy.hosts == () and legacy.generators == ()
    assert [(e.name, e.parameters) for e in legacy.host_entries()] == [("mx1", {"net.core.somaxconn": "4096"})]


def test_a_report_says_which_hosts_parameters_differed() -> None:
    before = record({"gen-a": {"net.core.somaxconn": "4096"}, "mx2": {"net.core.somaxconn": "128"}})
    after = record({"gen-a": {"net.core.somaxconn": "4096"}, "mx2": {"net.core.somaxconn": "8192"}})
    assert host_parameter_differences(before, after) == [("mx2", "net.core.somaxconn", "128", "8192")]
    assert hosts_that_differed(before, after) == ["mx2"]
    text = report_markdown(before, after)
    assert "Hosts whose parameters differed: mx2." in text and "| mx2 | net.core.somaxconn | 128 | 8192 |" in text
    assert "## Hosts" in report_markdown(after) and "by host" in report_markdown(after)


def proc_tree(root: Path) -> Path:
    files = {
        "stat": "cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 5 0 5 40 0 0 0 0 0 0\nintr 1 2\n",
        "meminfo": "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    400 kB\n",
        "net/dev": "h1\nh2\n    lo: 111 1 0 0 0 0 0 0 222 2 0 0 0 0 0 0\n  eth0: 5 1 0 0 0 0 0 0 6 1 0 0 0 0 0 0\n",
        "net/sockstat": "TCP: inuse 7 orphan 0 tw 30 alloc 9 mem 1\n",
        "net/sockstat6": "TCP6: inuse 2\n",
        "net/snmp": "Tcp: RtoAlgorithm CurrEstab\nTcp: 1 42\n",
        "net/netstat": "TcpExt: ListenOverflows ListenDrops\nTcpExt: 3 4\n",
        "net/route": "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
        "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\n"
        "eth1\t0000000A\t00000000\t0001\t0\t0\t0\t0000FFFF\n",
        "sys/fs/file-nr": "500\t0\t9000\n",
        "4242/stat": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_raw_counters_from_a_proc_tree(tmp_path: Path) -> None:
    proc = proc_tree(tmp_path / "proc")
    counters = host_counters(str(proc), route_to="127.0.0.1")
    assert counters["cpu"] == [[10, 50], [10, 50]] and counters["interface"] == "lo"
    assert (counters["rx_bytes"], counters["tx_bytes"]) == (111, 222)
    assert (counters["memory_total"], counters["memory_available"]) == (1_024_000, 409_600)
    assert (counters["tcp_inuse"], counters["tcp_time_wait"], counters["tcp_established"]) == (9, 30, 42)
    assert (counters["open_files"], counters["open_files_max"]) == (500, 9000)
    assert (counters["listen_overflows"], counters["listen_drops"], counters["processes"]) == (3, 4, 1)
    assert route_interface(str(proc), "10.0.3.4") == "eth1" and route_interface(str(proc), "192.0.2.1") == "eth0"


def test_the_sampler_turns_counters_into_per_core_percentages_and_rates() -> None:
    sampler = AgentSampler("local", route_to="127.0.0.1")
    first, second = sampler.read(), sampler.read()
    assert first.stats is not None and second.stats is not None and second.bytes == 0
    assert all(0.0 <= core <= 100.0 for core in second.stats.cpu_per_core)
    assert second.stats.interface == "lo" and second.stats.rx_bytes_per_s is not None
    assert second.reader_pid is not None and second.nofile_hard


def test_a_sender_reading_merge_adds_counts_and_rates() -> None:
    from kumotui.bench.senders import merged_sample

    merged = merged_sample(
        [Sample("generator", 1.0, 100, 1, 5, 50.0), Sample("generator", 1.0, 300, 0, 7, None)],
        [histogram_of([1000] * 100), None],
        2.0,
    )
    assert (merged.count, merged.failed, merged.connections, merged.rate, merged.elapsed) == (400, 1, 12, 50.0, 2.0)
    assert merged.latency_ms is not None and merged.latency_ms["p50"] == pytest.approx(1.0, rel=0.05)
