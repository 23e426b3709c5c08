"""Roles on hosts: which machine runs the generators, the sink and the MTA under test.

The CLI's ``bench --host A --host B --sink-host C`` and the benchmark form
place roles the same way, through :func:`open_roles`: every host is reached
(one SSH connection and agent each, however many roles it has) before
anything starts, and all are closed together. :func:`host_entries` then reads
each host's facts and the profile's kernel values there, for the run record
and for the per-host hints.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from kumotui.backends.process import LOG_LINES, Launcher
from kumotui.bench.records import HostEntry
from kumotui.errors import KumotuiError
from kumotui.hosts import Host
from kumotui.hosts.address import is_loopback, parse_address
from kumotui.hosts.connect import open_host
from kumotui.hosts.launch import launcher_for
from kumotui.settings import Settings
from kumotui.tuning.findings import parameter_values
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.sysctl import SysctlTree

LOCAL = "local"
"""This machine's name in roles and readings."""


@dataclass(frozen=True)
class Roles:
    """Where each role runs: host specs as typed (``[user@]host[:port]``), None for this machine."""

    generators: tuple[str | None, ...] = (None,)
    """One generator per entry; several entries share the run's totals."""
    sink: str | None = None
    """Where a started sink runs (``--local-sink`` / the form's sink host)."""
    mta: str | None = None
    """The MTA under test's host by name (``local`` for this machine), when kumotui reaches it: read (its
    counters, its queue, its kernel values), never started; None: not placed (see :func:`mta_host_of`)."""
    starts_sink: bool = True
    """Whether kumotui starts the sink (``--local-sink``); False when the run sends to a given ``--target``."""

    def check(self) -> Roles:
        """Refuse what cannot run: no generator, or one host named twice as a generator."""
        if not self.generators:
            raise KumotuiError("--host: at least one generator host")
        names = [spec or LOCAL for spec in self.generators]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise KumotuiError(
                f"--host {twice[0]}: named twice; one generator per host (use --workers for more processes there)"
            )
        return self

    def by_host(self) -> dict[str, tuple[str, ...]]:
        """Each host's name (``local`` for this machine) and its roles, generators first."""
        found: dict[str, list[str]] = {}
        for spec in self.generators:
            found.setdefault(spec or LOCAL, []).append("generator")
        if self.starts_sink:
            found.setdefault(self.sink or LOCAL, []).append("sink")
        if self.mta is not None:
            found.setdefault(self.mta, []).append("mta")
        return {name: tuple(roles) for name, roles in found.items()}


def mta_host_of(mta_host: str | None, through: str | None, generators: Sequence[str | None]) -> str | None:
    """Where the MTA under test runs: ``--mta-host`` when given; else, for ``--through`` a loopback address,
    the first generator's host (loopback there is that host); else unknown (None)."""
    if mta_host is not None:
        return mta_host
    if through is None:
        return None
    try:
        on_loopback = is_loopback(parse_address(through, 25)[0])
    except ValueError:
        return None
    return (generators[0] or LOCAL) if on_loopback and generators else None


def redirect_host(roles: Roles) -> str | None:
    """The host a ``--redirect-port25`` rule goes on: the first generator's, where ``--through 127.0.0.1``
    reaches the MTA under test (None: this machine).

    Raises:
        KumotuiError: the MTA under test is placed on another host.
    """
    first = roles.generators[0]
    if roles.mta is not None and roles.mta != (first or LOCAL):
        raise KumotuiError(
            f"--redirect-port25 with --mta-host {roles.mta}: the rule goes on the generator's host, where "
            "--through 127.0.0.1 reaches the MTA; run the generator there (--host) instead"
        )
    return first


@dataclass
class PlacedRoles:
    """Every host of a run, connected once, and the launchers that run jobs there."""

    roles: Roles
    hosts: dict[str, Host]
    """Open hosts by name (``local`` for this machine), in the order roles named them."""
    log_lines: int = LOG_LINES
    _launchers: dict[str, Launcher] = field(default_factory=dict)

    def host(self, spec: str | None) -> Host:
        """The open host a role's spec names."""
        return self.hosts[spec or LOCAL]

    def launcher(self, spec: str | None) -> Launcher:
        """The one launcher for a host (jobs of several roles there share it)."""
        name = spec or LOCAL
        if name not in self._launchers:
            self._launchers[name] = launcher_for(self.hosts[name], log_lines=self.log_lines)
        return self._launchers[name]

    def generator_launchers(self) -> list[Launcher]:
        """One launcher per generator host, in order (for :class:`~kumotui.bench.run.Benchmark`)."""
        return [self.launcher(spec) for spec in self.roles.generators]

    def sink_launcher(self) -> Launcher:
        """The launcher of the sink's host."""
        return self.launcher(self.roles.sink)

    def mta_host(self) -> Host | None:
        """The MTA under test's open host, when the run placed it."""
        return self.host(self.roles.mta) if self.roles.mta is not None else None

    def remote_generators(self) -> list[str]:
        """Generator hosts other than the sink's: they reach the sink over the network."""
        sink = self.roles.sink or LOCAL
        return [spec for spec in self.roles.generators if spec is not None and spec != sink]

    def close(self) -> None:
        """Close every host (its launchers remove what they shipped)."""
        for host in self.hosts.values():
            host.close()


def open_roles(roles: Roles, settings: Settings, *, log_lines: int = LOG_LINES) -> PlacedRoles:
    """Reach every host of ``roles`` (each once) before anything starts; on any failure close those opened.

    Raises:
        KumotuiError: a bad role list, or a host that cannot be reached (naming it).
    """
    roles.check()
    hosts: dict[str, Host] = {}
    try:
        for name in roles.by_host():
            hosts[name] = open_host(None if name == LOCAL else name, settings)
    except BaseException:
        for host in hosts.values():
            host.close()
        raise
    return PlacedRoles(roles, hosts, log_lines)


@contextmanager
def placed(roles: Roles, settings: Settings, *, log_lines: int = LOG_LINES) -> Iterator[PlacedRoles]:
    """:func:`open_roles` for a ``with`` block: every host closed at its end, whatever happens."""
    hosts = open_roles(roles, settings, log_lines=log_lines)
    try:
        yield hosts
    finally:
        hosts.close()


def check_listen(listen_host: str, placed_roles: PlacedRoles, *, flag: str = "--listen") -> None:
    """Refuse a sink told to listen on loopback when a generator runs on another host (it could not reach it)."""
    elsewhere = placed_roles.remote_generators()
    if elsewhere and is_loopback(listen_host):
        raise KumotuiError(
            f"{flag} {listen_host}: the generator on {elsewhere[0]} cannot reach a sink on loopback; "
            f"listen on 0.0.0.0 (or an address {elsewhere[0]} reaches), or leave {flag} out"
        )


def host_entries(
    settings: Settings, placed_roles: PlacedRoles, names: Sequence[str] | None = None
) -> tuple[HostEntry, ...]:
    """Each host's roles, facts and the profile's kernel values at start, read now (one agent round trip per key
    batch on a remote host). ``settings.sysctl_root`` applies to every host, as it does for ``check --host``."""
    profile = load_profile(settings.profile)
    by_host = placed_roles.roles.by_host()
    entries = []
    for name in names or list(by_host):
        tree = SysctlTree(settings.sysctl_root, placed_roles.hosts[name])
        entries.append(HostEntry(name, by_host[name], tree.facts(), parameter_values(profile, tree)))
    return tuple(entries)
