"""A deterministic simulated host for screenshots and snapshot tests.

Screenshots and snapshots must not change with the machine or the clock:
the host facts are fixed, the tree is a modern kernel's values written
under relative paths (so ``etc/sysctl.d/90-kumomta.conf`` reads the same in
every run), and the drop-in's "Written:" stamp is frozen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

from textual.pilot import Pilot
from textual.worker import WorkerFailed

from kumotui import persist
from kumotui.hosts import HostFacts
from kumotui.settings import Settings
from kumotui.sysctl import key_to_relpath

DEMO_FACTS = HostFacts(hostname="mta-01", kernel="6.1.0-28-amd64", cpus=8, memory_bytes=16 * 2**30)
"""The header of every screenshot."""

DEMO_KERNEL = {
    "fs.file-max": "9223372036854775807",
    "kernel.shmmax": "18446744073692774399",
    "net.core.somaxconn": "4096",
    "net.core.rmem_default": "212992",
    "net.core.wmem_default": "212992",
    "net.core.rmem_max": "212992",
    "net.core.wmem_max": "212992",
    "net.ipv4.ip_local_port_range": "32768\t60999",
    "net.ipv4.tcp_tw_reuse": "2",
    "vm.max_map_count": "65530",
    "vm.nr_hugepages": "0",
    "kernel.shmmni": "4096",
    "net.ipv4.ip_unprivileged_port_start": "1024",
}
"""What a current Debian kernel under systemd reports for KumoMTA's twelve keys."""

DEMO_SYSCTL_CONF = """\
# /etc/sysctl.conf - left over from an Elasticsearch install on this host
vm.max_map_count = 262144
"""
"""A file procps reads last at boot: the preview must warn that it wins."""

FROZEN_TIME = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
"""The drop-in's "Written:" stamp in screenshots."""


def make_demo_host(base: Path, values: dict[str, str] | None = None, *, read_only: bool = False) -> Settings:
    """Write a simulated host under ``base`` and return settings relative to it.

    The caller must run with ``base`` as the working directory, so paths show
    as ``etc/sysctl.d/...`` rather than a temporary directory's name.
    """
    for key, value in (values or DEMO_KERNEL).items():
        path = base / "proc/sys" / key_to_relpath(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    (base / "etc/sysctl.d").mkdir(parents=True, exist_ok=True)
    (base / "etc/sysctl.conf").write_text(DEMO_SYSCTL_CONF)
    return Settings(
        sysctl_root=Path("proc/sys"),
        sysctl_d=Path("etc/sysctl.d"),
        state_dir=Path("var/lib/kumotui"),
        system_root=Path("."),
        read_only=read_only,
    )


@contextmanager
def frozen_clock() -> Iterator[None]:
    """Stamp drop-ins and journal entries with :data:`FROZEN_TIME`, so every run looks the same.

    The core takes the time itself; screenshots are the only place that must
    not see it move, so it is patched here rather than threaded through.
    """
    stamp = FROZEN_TIME.isoformat(timespec="seconds")
    entry_id = f"{FROZEN_TIME:%Y%m%d-%H%M%S}-demo"
    with (
        mock.patch("kumotui.apply.render_dropin", partial(persist.render_dropin, now=FROZEN_TIME)),
        mock.patch("kumotui.apply._now", lambda: stamp),
        mock.patch("kumotui.apply.new_id", lambda now: entry_id),
    ):
        yield


async def settle(pilot: Pilot[Any], rounds: int = 20) -> None:
    """Wait until no worker runs and every message they posted is handled.

    A worker's answer may start another worker (host read, then values), so
    one ``wait_for_complete`` is not always enough.
    """
    app = pilot.app
    quiet = 0
    for _ in range(rounds):
        # Expected failures are the app's to show; tests look at its notices.
        with suppress(WorkerFailed):
            await app.workers.wait_for_complete()
        await pilot.pause()
        quiet = quiet + 1 if not any(worker.is_running for worker in app.workers) else 0
        if quiet >= 3:  # a handled answer may still schedule a layout pass or a refit
            return
