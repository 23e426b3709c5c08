"""A run from the benchmark form: its roles placed on hosts, every host reached and checked before anything starts.

The app's benchmark screen calls :func:`open_live_run` in its worker thread,
the way ``kumotui bench --host A --host B --sink-host C`` prepares a run:
the same :func:`~kumotui.bench.placement.open_roles` (every host reached
first, all closed if one fails), the same
:func:`~kumotui.bench.placement.check_listen`, the same per-host entries for
the record and the hints. The screen then only drives the run and shows its
figures; :meth:`LiveRun.close` leaves nothing open on any host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kumotui.bench.form import BenchForm
from kumotui.bench.live import LIVE_LOG_LINES, BenchSource, LiveWatch
from kumotui.bench.options import BenchOptions
from kumotui.bench.placement import PlacedRoles, check_listen, host_entries, open_roles, redirect_host
from kumotui.bench.run import Benchmark, RedirectSite, prepare_plan
from kumotui.hosts import HostFacts
from kumotui.settings import Settings
from kumotui.tuning.redirect import Redirect


@dataclass
class LiveRun:
    """A prepared run: its hosts (open), the benchmark (not started), its live figures and headline facts."""

    placed: PlacedRoles
    bench: Benchmark
    watch: LiveWatch
    facts: HostFacts

    def close(self) -> None:
        """Stop the readers and close every host (their launchers remove what they shipped)."""
        self.watch.close()
        self.placed.close()


def open_live_run(
    settings: Settings,
    form: BenchForm,
    options: BenchOptions,
    source: BenchSource,
    *,
    confirm_redirect: Callable[[Redirect, str], None] | None = None,
) -> LiveRun:
    """Reach every host the form names, check the placement, read each host's values, and build the run.

    With the port-25 redirect asked for, its rule goes on the first generator's host (where the MTA under
    test runs, as for ``bench --redirect-port25``), journaled in that host's state dir;
    ``confirm_redirect`` sees the exact rule before it is written and raises to refuse it.

    Blocks (SSH handshakes, reading kernel values over each agent); on any
    failure every host opened so far is closed again.

    Raises:
        KumotuiError: a bad field (naming its flag) or a host that cannot be reached (naming it).
    """
    roles = form.roles()
    sink = form.sink_request()
    rule_host = redirect_host(roles) if options.redirect_port25 else None  # refused before any host is reached
    placed = open_roles(roles, settings, log_lines=LIVE_LOG_LINES)
    try:
        if roles.starts_sink and form.sink_listen.strip() and not options.through:
            check_listen(sink.host, placed)
        entries = host_entries(settings, placed)
        plan, facts = prepare_plan(
            settings,
            placed.host(roles.generators[0]),
            options,
            backend=form.backend,
            sink=sink,
            label=form.run_label(),
            hosts=entries,
        )
        bench = source.benchmark(plan, placed)
        if options.redirect_port25:  # the CLI's path: journaled, proven by the probe, removed at the end
            announce = confirm_redirect or (lambda _rule, _on: None)
            bench.redirect_site = RedirectSite.on(placed.host(rule_host), settings, announce)
        watch = LiveWatch(
            options,
            plan.parameters,
            cpu_reader=source.cpu_reader,
            fd_reader=source.fd_reader,
            nofile=source.nofile(),
            hosts=entries,
            readers=lambda peers: source.readers(placed.hosts, peers),
        )
    except BaseException:
        placed.close()
        raise
    return LiveRun(placed, bench, watch, facts)
