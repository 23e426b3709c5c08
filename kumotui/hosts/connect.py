"""Opening the hosts a command works on: this machine, or remote ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kumotui.hosts import Host
from kumotui.hosts.local import LocalHost
from kumotui.settings import Settings


def open_host(spec: str | None, settings: Settings) -> Host:
    """This machine for None, else an SSH connection (raises KumotuiError)."""
    if spec is None:
        return LocalHost()
    from kumotui.hosts.address import HostSpec
    from kumotui.hosts.remote import RemoteHost

    return RemoteHost(HostSpec.parse(spec, settings.identity))


@contextmanager
def connected(settings: Settings) -> Iterator[list[Host]]:
    """Every host the settings name, all connected before any work starts,
    and all closed afterwards, whatever happens."""
    hosts: list[Host] = []
    try:
        for spec in settings.hosts or (None,):
            hosts.append(open_host(spec, settings))
        yield hosts
    finally:
        for host in hosts:
            host.close()
