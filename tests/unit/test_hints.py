"""Hint rules on synthetic readings, and host readings from the real /proc."""

from __future__ import annotations

import socket
from dataclasses import replace

from kumotui.backends.samples import Sample
from kumotui.bench.hints import HintInputs, evaluate, port_range_width
from kumotui.bench.hoststats import HostSampler, HostStats, ProcessCpu, interface_for, process_cpu

HOST = HostStats(
    time=0.0,
    cpu_per_core=(10.0, 10.0),
    memory_used=1,
    memory_total=2,
    interface="lo",
    rx_bytes_per_s=0.0,
    tx_bytes_per_s=0.0,
    tcp_inuse=10,
    tcp_time_wait=0,
    open_files=100,
    open_files_max=100000,
    listen_overflows=5,
    listen_drops=5,
)
PARAMS = {"net.ipv4.ip_local_port_range": "32768 60999", "net.ipv4.tcp_tw_reuse": "2", "net.core.somaxconn": "4096"}


def ids(inputs: HintInputs) -> list[str]:
    return [hint.id for hint in evaluate(inputs)]


def test_quiet_run_gives_no_hint() -> None:
    gen = Sample("generator", 5.0, 1000, rate=200.0)
    sink = Sample("sink", 5.0, 1000, rate=200.0)
    assert evaluate(HintInputs(gen, sink, HOST, HOST, PARAMS, {}, ProcessCpu(30, 30))) == []


def test_time_wait_near_port_range_width() -> None:
    assert port_range_width(PARAMS) == 28232
    below = replace(HOST, tcp_time_wait=20000)
    assert ids(HintInputs(host=below, parameters=PARAMS)) == []
    near = replace(HOST, tcp_time_wait=23000)
    (hint,) = evaluate(HintInputs(host=near, parameters=PARAMS))
    assert hint.id == "time-wait" and hint.param == "net.ipv4.ip_local_port_range"
    assert "23,000" in hint.detail and "28,232" in hint.detail and "tcp_tw_reuse = 1 (now 2)" in hint.detail
    reuse_on = {**PARAMS, "net.ipv4.tcp_tw_reuse": "1"}
    (hint,) = evaluate(HintInputs(host=near, parameters=reuse_on))
    assert "tcp_tw_reuse" not in hint.detail


def test_eaddrnotavail_failures() -> None:
    failures = {"connect: Cannot assign requested address (os error 99)": 12, "554 rejected": 3}
    (hint,) = evaluate(HintInputs(failures=failures))
    assert hint.id == "ports-exhausted" and "12 connects" in hint.detail


def test_listen_overflows_grow_during_the_run() -> None:
    assert ids(HintInputs(host=HOST, host_at_start=HOST, parameters=PARAMS)) == []
    grown = replace(HOST, listen_overflows=105)
    (hint,) = evaluate(HintInputs(host=grown, host_at_start=HOST, parameters=PARAMS))
    assert hint.param == "net.core.somaxconn" and "100 connections" in hint.detail and "4096" in hint.detail


def test_open_files() -> None:
    (hint,) = evaluate(HintInputs(failures={"connect failed: Too many open files (os error 24)": 7}, nofile_limit=1024))
    assert hint.id == "open-files" and "hard limit 1,024" in hint.detail
    full = replace(HOST, open_files=95000)
    (hint,) = evaluate(HintInputs(host=full))
    assert hint.param == "fs.file-max" and "95,000" in hint.detail


def test_generator_pinned_suggests_workers() -> None:
    (hint,) = evaluate(HintInputs(generator_cpu=ProcessCpu(99, 99), generator_workers=1))
    assert hint.id == "generator-pinned" and "--workers" in hint.detail
    assert ids(HintInputs(generator_cpu=ProcessCpu(150, 75), generator_workers=2)) == []


def test_sink_slower_than_generator() -> None:
    gen = Sample("generator", 5.0, 50000, rate=10000.0)
    assert ids(HintInputs(gen, Sample("sink", 5.0, 49000, rate=9500.0))) == []
    (hint,) = evaluate(HintInputs(gen, Sample("sink", 5.0, 30000, rate=6000.0)))
    assert hint.id == "sink-slow" and "6,000" in hint.detail


def test_an_mta_queueing_not_delivering() -> None:
    gen = Sample("generator", 5.0, 4000, rate=800.0)
    sink = Sample("sink", 5.0, 900, rate=150.0)
    growing = (100, 400, 900, 1500, 2200, 3100)
    hint = next(h for h in evaluate(HintInputs(gen, sink, backlog=growing, through=True)) if h.id == "mta-backlog")
    assert "3,100 messages accepted and not yet at the sink" in hint.detail and "connection_limit" in hint.detail
    # Not growing at every reading, or the sink keeping up: no hint.
    assert "mta-backlog" not in ids(HintInputs(gen, sink, backlog=(100, 400, 300, 1500, 2200, 3100), through=True))
    assert "mta-backlog" not in ids(HintInputs(gen, replace(sink, rate=790.0), backlog=growing, through=True))


def test_an_mta_turning_connections_away_points_at_its_listener_and_somaxconn() -> None:
    failures = {"ECONNREFUSED": 40, "banner 421": 7, "5xx": 3}
    hint = next(h for h in evaluate(HintInputs(parameters=PARAMS, failures=failures, through=True)))
    assert hint.id == "mta-refusing" and hint.param == "net.core.somaxconn"
    assert hint.detail.startswith("47 connections to the MTA were refused")
    assert "max_connections" in hint.detail and "smtpd_client_connection_count_limit" in hint.detail
    assert "net.core.somaxconn (now 4096 here)" in hint.detail
    # Straight into a sink the same failures are not the MTA's.
    assert "mta-refusing" not in ids(HintInputs(parameters=PARAMS, failures=failures))
    assert "mta-refusing" not in ids(HintInputs(parameters=PARAMS, failures={"5xx": 3}, through=True))


def test_host_sampler_reads_real_counters() -> None:
    sampler = HostSampler(interface_for("127.0.0.1"))
    first = sampler.sample()
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()):
        second = sampler.sample()
    assert first.interface == "lo"
    assert second.tcp_inuse >= 1 and second.open_files > 0 and second.open_files_max > 0
    assert second.rx_bytes_per_s is not None and len(second.cpu_per_core) >= 1
    assert second.listen_overflows >= first.listen_overflows


def test_process_cpu_of_this_process() -> None:
    import os

    process_cpu(os.getpid())
    sum(i * i for i in range(200000))
    cpu = process_cpu(os.getpid())
    assert cpu is not None and cpu.total >= 0 and cpu.busiest >= 0
    assert process_cpu(2**22 + 12345) is None
