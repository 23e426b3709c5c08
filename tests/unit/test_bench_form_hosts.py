"""The benchmark form's hosts (roles placed as ``bench --host``/``--sink-host`` place them) and the live
figures of a run on several hosts: one view per host, hints that name it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import cast

import pytest

from kumotui.backends.process import Launcher
from kumotui.backends.samples import Sample
from kumotui.bench.form import BenchForm, field_for_error, for_the_form
from kumotui.bench.hoststats import HostReading
from kumotui.bench.live import LiveWatch
from kumotui.bench.options import BenchOptions
from kumotui.bench.placement import Roles, redirect_host
from kumotui.bench.records import HostEntry
from kumotui.bench.run import Benchmark, BenchPlan
from kumotui.errors import KumotuiError
from kumotui.hosts import Completed, Host
from tests.support.demo import DEMO_FACTS, demo_host
from tests.unit.test_bench_figures import FakeBench


def test_hosts_fields_become_roles_as_the_cli_places_them() -> None:
    form = BenchForm(generator_hosts=" local, root@gen-a:2222 ,, gen-b ", sink_host="mx2")
    assert form.roles() == Roles(generators=(None, "root@gen-a:2222", "gen-b"), sink="mx2", starts_sink=True)
    assert BenchForm().roles() == Roles()
    assert BenchForm(sink_host="local").roles().sink is None
    # A sink on another host listens where the generators reach it, unless told otherwise.
    assert BenchForm(sink_host="mx2").sink_request().host == "0.0.0.0"
    assert BenchForm(sink_host="mx2", sink_listen="10.0.0.5:2525").sink_request().host == "10.0.0.5"
    assert BenchForm().sink_request().host == "127.0.0.1"


def test_the_mta_under_tests_host_is_placed_where_it_is_read() -> None:
    # Named: read there. Not named, Through MTA on loopback: the first generator's host (loopback there).
    assert BenchForm(through="127.0.0.1:25", mta_host="mx1").roles().mta == "mx1"
    assert BenchForm(through="127.0.0.1:25", generator_hosts="gen-a").roles().mta == "gen-a"
    assert BenchForm(through="127.0.0.1:25").roles().mta == "local"
    assert BenchForm(through="10.0.0.9:25").roles().mta is None  # somewhere kumotui does not reach
    assert BenchForm(through="10.0.0.9:25", mta_host="local").roles().mta == "local"
    assert BenchForm(through="127.0.0.1:25", mta_host="mx1").roles().by_host() == {
        "local": ("generator", "sink"),
        "mx1": ("mta",),
    }
    with pytest.raises(KumotuiError, match=r"^--mta-host: it names where the MTA under test runs"):
        BenchForm(mta_host="mx1").roles()
    with pytest.raises(KumotuiError, match=r"^--redirect-port25 with --mta-host mx1"):
        redirect_host(BenchForm(through="127.0.0.1:25", mta_host="mx1").roles())
    assert redirect_host(BenchForm(through="127.0.0.1:25", generator_hosts="gen-a").roles()) == "gen-a"


class Recording:
    """A host whose commands are recorded (and answered as an empty Postfix queue would be)."""

    name = "mx1"

    def __init__(self) -> None:
        self.ran: list[list[str]] = []

    def run(self, args: list[str], stdin: str | None = None, timeout: float = 10.0) -> Completed:
        self.ran.append(list(args))
        return Completed(0, "3.7.11\n" if args[0] == "postconf" else "", "")


def test_a_postfix_under_test_is_read_on_its_own_host() -> None:
    host = Recording()
    options = BenchOptions(None, True, messages=10, through="10.0.0.9:25", mta_postfix_config="/etc/postfix-b")
    bench = Benchmark(BenchPlan(options), mta_host=cast("Host", host))
    watcher = bench._mta_watcher("10.0.0.9:25", "220 mx1 ESMTP Postfix")
    assert watcher is not None
    view = watcher.read()
    assert view.kind == "postfix" and view.version == "3.7.11" and view.error == ""
    assert host.ran == [
        ["postqueue", "-c", "/etc/postfix-b", "-j"],
        ["postconf", "-c", "/etc/postfix-b", "-h", "mail_version"],
    ]
    # Nowhere to read it: an MTA on another machine kumotui was not told about.
    assert Benchmark(BenchPlan(options))._mta_watcher("10.0.0.9:25", "220 mx1 ESMTP Postfix") is None


@pytest.mark.parametrize(
    ("form", "start", "field", "label"),
    [
        (BenchForm(generator_hosts="gen-a, gen-a"), "--host gen-a: named twice", "generator_hosts", "Generators on"),
        (BenchForm(generator_hosts="-oProxyCommand=x"), "--host '-oProxyCommand=x'", "generator_hosts", None),
        (BenchForm(sink_host="bad host!"), "--sink-host 'bad host!': expected", "sink_host", "Sink on"),
        (BenchForm(sink="target", target="127.0.0.1:25", sink_host="mx2"), "--sink-host:", "sink_host", None),
        (
            BenchForm(backend="postfix", generator_hosts="a, b"),
            "--host: generators on 2 hosts",
            "generator_hosts",
            None,
        ),
    ],
)
def test_hosts_errors_name_their_field(form: BenchForm, start: str, field: str, label: str | None) -> None:
    with pytest.raises(KumotuiError) as error:
        form.options()
    message = str(error.value)
    assert message.startswith(start), message
    assert field_for_error(message) == field
    if label is not None:
        assert for_the_form(message).startswith(label)


def reading(host: str, tick: int, overflows: int = 0, pid: int = 100) -> HostReading:
    stats = replace(demo_host(tick), listen_overflows=overflows)
    return HostReading(host, stats, reader_pid=pid, nofile_hard=4096 + pid, seconds=0.002, bytes=500)


class Readers:
    """Fixed readings per tick, as a remote agent would send them."""

    def __init__(self, name: str, overflows: list[int]) -> None:
        self.name, self.overflows, self.tick = name, overflows, 0

    def read(self) -> HostReading:
        self.tick += 1
        return reading(self.name, self.tick, self.overflows[min(self.tick, len(self.overflows)) - 1], pid=7)


def test_each_host_has_its_view_and_its_hints_name_it() -> None:
    options = BenchOptions(None, True, messages=10_000)
    bench = FakeBench(options)
    params = {"net.core.somaxconn": "128", "net.ipv4.ip_local_port_range": "32768 60999"}
    entries = [
        HostEntry("local", ("generator",), DEMO_FACTS, params),
        HostEntry("mx2", ("sink",), DEMO_FACTS, {**params, "net.ipv4.ip_local_port_range": "60000 60099"}),
    ]
    built: list[dict[str, str]] = []

    def readers(peers: Mapping[str, str]) -> list[Readers]:
        built.append(dict(peers))
        return [Readers("local", [0, 0, 0]), Readers("mx2", [10, 10, 25])]

    watch = LiveWatch(options, params, hosts=entries, readers=readers, cpu_reader=lambda pid: None, nofile=1024)
    watch.tick(bench, [Sample("generator", 0.5, 0), Sample("sink", 0.5, 0)])
    watch.tick(bench, [Sample("generator", 1.0, 500, rate=500.0), Sample("sink", 1.0, 500, rate=500.0)])
    figures = watch.tick(bench, [Sample("generator", 1.5, 900, rate=800.0), Sample("sink", 1.5, 900, rate=800.0)])
    watch.close()
    assert built == [{"local": "127.0.0.1"}], "readers made once, each toward its host's peer"
    assert figures.named_hosts and [v.name for v in figures.hosts] == ["local", "mx2"]
    local, mx2 = figures.hosts
    assert (local.roles, local.sent, local.nofile, local.ports) == (("generator",), 900, 1024, 28232)
    assert (mx2.roles, mx2.sent, mx2.nofile, mx2.ports) == (("sink",), None, 4103, 100)
    assert (local.listen_overflows, mx2.listen_overflows) == (0, 15), "each host against its own first reading"
    assert mx2.reading.reader_pid == 7 and mx2.reading.bytes == 500
    by_id = {hint.id: hint for hint in figures.hints}
    overflow = by_id["listen-overflow@mx2"]
    assert overflow.host == "mx2" and overflow.param == "net.core.somaxconn"
    assert overflow.title == "sink host mx2: Listen queue overflowed → net.core.somaxconn on mx2"
    assert "listen-overflow@local" not in by_id
    # The demo's TIME_WAIT is past 80% of mx2's 100 ports, not of local's 28,232.
    assert "time-wait@mx2" in by_id and "time-wait@local" not in by_id


def test_one_local_host_reads_as_before() -> None:
    options = BenchOptions(None, True, messages=10_000)
    watch = LiveWatch(options, {"net.ipv4.ip_local_port_range": "60000 60099"}, cpu_reader=lambda pid: None)
    figures = watch.tick(FakeBench(options), [Sample("generator", 0.5, 0)])
    assert not figures.named_hosts and [v.name for v in figures.hosts] == ["local"]
    assert all(hint.host is None and "@" not in hint.id for hint in figures.hints)


class Remote(Launcher):
    """A launcher as an SSH host looks to the run: its name, the address we reach it at, ours as it sees us."""

    remote = True

    def __init__(self, name: str, address: str, home: str) -> None:
        super().__init__()
        self.name, self._address, self._home = name, address, home

    @property
    def address(self) -> str:
        return self._address

    @property
    def home_address(self) -> str:
        return self._home


def test_each_host_reads_the_interface_toward_its_peer() -> None:
    """A sink host's reading follows the interface toward the generators, not toward its own address
    (that would be loopback, and show none of the run's traffic)."""
    mx2 = Remote("mx2", "10.0.0.5", "10.0.0.1")
    bench = Benchmark(BenchPlan(BenchOptions(None, True, messages=10)), sink_launcher=mx2)
    bench.target = "10.0.0.5:2026"
    assert bench.peer_addresses() == {"local": "10.0.0.5", "mx2": "10.0.0.1"}
    gen = Remote("gen-a", "10.0.0.7", "10.0.0.1")
    bench = Benchmark(BenchPlan(BenchOptions("10.0.0.5:2026", False, messages=10)), generator_launchers=[gen])
    assert bench.peer_addresses() == {"gen-a": "10.0.0.5", "local": "10.0.0.7"}
    through = BenchOptions(None, True, messages=10, through="192.168.1.9:25")
    bench = Benchmark(BenchPlan(through), generator_launchers=[gen])
    assert bench.peer_addresses() == {"gen-a": "192.168.1.9", "local": "10.0.0.7"}
