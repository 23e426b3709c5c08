"""Stand-in KumoMTA executables for tests.

``kumod`` and ``traffic-gen`` here reproduce KumoMTA's documented command
lines and output bytes (see each script's docstring); :func:`install_kumomta`
lays them out as ``<prefix>/sbin/{kumod,traffic-gen}`` for
``KUMOMTA_PREFIX``, and :func:`load_standin` imports one to test its helpers.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from kumotui.backends.kumomta.install import find_kumomta
from kumotui.backends.kumomta.kumod import kumod_command
from kumotui.backends.kumomta.metrics import check_liveness
from kumotui.backends.kumomta.policy import routing_snippet, write_sink_policy
from tests.support.processes import free_port, stop
from tests.support.waits import wait_until

STANDINS = Path(__file__).resolve().parent
KUMOMTA_TOOLS = ("kumod", "traffic-gen")


def install_kumomta(prefix: Path) -> Path:
    """Symlink the stand-ins into ``prefix/sbin``; returns the sbin directory."""
    sbin = prefix / "sbin"
    sbin.mkdir(parents=True, exist_ok=True)
    for name in KUMOMTA_TOOLS:
        (sbin / name).symlink_to(STANDINS / name)
    return sbin


def load_standin(name: str) -> ModuleType:
    """One stand-in script as a module (they have no ``.py`` suffix)."""
    loader = importlib.machinery.SourceFileLoader(f"standin_{name.replace('-', '_')}", str(STANDINS / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@dataclass
class RunningSink:
    """A stand-in kumod started for a test."""

    process: subprocess.Popen[bytes]
    port: int
    http_port: int
    policy: Path
    statuses: list[int | None]


def relay_policy(sink_policy: Path, sink_host: str, sink_port: int) -> Path:
    """An MTA under test's policy: kumotui's sink policy with its null queue swapped for kumotui's own
    ``routing_snippet`` to the sink, as an operator pastes it (the stand-in then runs in relay mode)."""
    text = sink_policy.read_text()
    null_queue = "kumo.on('smtp_server_message_received', function(msg)\n  msg:set_meta('queue', 'null')\nend)\n"
    assert null_queue in text
    sink_policy.write_text(text.replace(null_queue, routing_snippet(sink_host, sink_port)))
    return sink_policy


@contextmanager
def running_kumod_sink(policy_dir: Path, *, relay_to: tuple[str, int] | None = None) -> Iterator[RunningSink]:
    """The stand-in kumod (``KUMOMTA_PREFIX`` set) running kumotui's sink policy on free loopback ports,
    ready (liveness 200), stopped by PID afterwards. ``policy_dir`` must be reachable by kumod's user.
    ``relay_to``: an MTA under test instead, routing every message to that sink (:func:`relay_policy`)."""
    port, http_port = free_port(), free_port()
    policy = write_sink_policy(
        policy_dir,
        port=port,
        http_port=http_port,
        listen_host="127.0.0.1",
        http_host="127.0.0.1",
        owner="nobody" if os.geteuid() == 0 else None,
    )
    if relay_to is not None:
        relay_policy(policy, *relay_to)
    command = kumod_command(find_kumomta(need=("kumod",)).kumod, policy, user="nobody")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        statuses: list[int | None] = []

        def ready() -> bool:
            assert process.poll() is None, "the stand-in kumod exited"
            answer = check_liveness("127.0.0.1", http_port, timeout=1)
            statuses.append(answer.status)
            return answer.ready

        assert wait_until(ready, interval=0.05), statuses
        assert statuses[-1] == 200
        yield RunningSink(process, port, http_port, policy, statuses)
    finally:
        stop(process)
