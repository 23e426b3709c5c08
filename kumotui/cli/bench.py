"""The benchmark side of the command line: ``sink``, ``bench``, ``runs``, ``report``.

Thin by design: flags become a :class:`~kumotui.benchmark.BenchPlan` and
jobs from :mod:`kumotui.jobs`; what is printed comes from the same
summaries and run records the app shows.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from kumotui.backends import BACKENDS, resolve_backend
from kumotui.backends.builtin import BuiltinSinkJob, EngineJob, sink_args
from kumotui.backends.job import Job
from kumotui.backends.kumomta.policy import routing_snippet
from kumotui.backends.lines import parse_size
from kumotui.backends.samples import Sample, mmh
from kumotui.bench.options import BenchOptions, check_sink_options
from kumotui.bench.records import list_runs, load_run
from kumotui.bench.report import format_runs_table, report_markdown
from kumotui.bench.run import Benchmark, BenchOutcome, BenchPlan
from kumotui.cli.output import _sink_line, _summary_json, format_outcome, outcome_json
from kumotui.errors import KumotuiError
from kumotui.hosts import Host
from kumotui.hosts.connect import open_host
from kumotui.hosts.launch import launcher_for
from kumotui.settings import Settings
from kumotui.tuning.findings import parameter_values
from kumotui.tuning.profiles import load_profile
from kumotui.tuning.sysctl import SysctlTree

AddOptions = Callable[[argparse.ArgumentParser], None]
SettingsFrom = Callable[[argparse.Namespace], Settings]
Handler = Callable[[argparse.Namespace, Settings], int]


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], add_globals: AddOptions, settings_from: SettingsFrom
) -> None:
    """Add ``sink``, ``bench``, ``runs`` and ``report`` to the command line."""

    def bind(handler: Handler) -> Callable[[argparse.Namespace], int]:
        return lambda args: handler(args, settings_from(args))

    _sink_parser(commands, add_globals, bind)
    _bench_parser(commands, add_globals, bind)
    runs = commands.add_parser(
        "runs", help="list saved benchmark runs", description="Saved runs, oldest first, from the state dir."
    )
    add_globals(runs)
    runs.add_argument("--json", action="store_true", help="print a JSON list of run records")
    runs.set_defaults(handler=bind(cmd_runs))
    report = commands.add_parser(
        "report",
        help="a Markdown report of one run, or two compared",
        description="Markdown: configuration, host, kernel parameters at start, results, and for two "
        "runs the differences (rates, latency, parameters that changed), with KumoMTA's published "
        "figures for scale.",
    )
    add_globals(report)
    report.add_argument("run", metavar="RUN", help="run id (or unique prefix); see `kumotui runs`")
    report.add_argument("other", metavar="RUN2", nargs="?", help="a second run to compare with the first")
    report.add_argument("--output", "-o", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    report.set_defaults(handler=bind(cmd_report))


def _sink_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_globals: AddOptions,
    bind: Callable[[Handler], Callable[[argparse.Namespace], int]],
) -> None:
    sink = commands.add_parser(
        "sink",
        help="run an SMTP sink that accepts and discards mail (JSON lines on stdout)",
        description="Accept mail and discard it, printing JSON lines (a progress line every 0.5 s for the "
        "built-in sink, every second for kumod or smtp-sink); on SIGTERM or Ctrl+C a final summary line, "
        "then exit 0. --backend kumomta runs kumod with a sink policy kumotui writes (ESMTP on 2026, "
        "HTTP on 8002, every message to the null queue).",
    )
    add_globals(sink)
    sink.add_argument(
        "--listen",
        default=None,
        metavar="ADDR:PORT",
        help="where to listen (default: 127.0.0.1:2026, KumoMTA's sink port)",
    )
    sink.add_argument(
        "--backend",
        default="auto",
        choices=["auto", *BACKENDS],
        help="auto: kumomta when kumod is installed, else builtin (default: auto)",
    )
    sink.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="built-in sink processes sharing the port with SO_REUSEPORT (default: 1)",
    )
    sink.add_argument(
        "--tempfail-percent",
        type=float,
        default=0.0,
        metavar="P",
        help="built-in: answer this share of messages with 451 at end of data",
    )
    sink.add_argument(
        "--permfail-percent",
        type=float,
        default=0.0,
        metavar="P",
        help="built-in: answer this share of messages with 554 at end of data",
    )
    sink.add_argument(
        "--max-message-size",
        default="50MiB",
        metavar="SIZE",
        help="built-in: largest message accepted (default: %(default)s)",
    )
    sink.add_argument(
        "--idle-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="built-in: close sessions silent this long (default: %(default)s)",
    )
    sink.add_argument(
        "--http-port",
        type=int,
        default=8002,
        metavar="PORT",
        help="kumomta: kumod's HTTP listener for liveness and /metrics (default: 8002)",
    )
    sink.add_argument(
        "--kumod-user",
        default="kumod",
        metavar="USER",
        help="kumomta: the account kumod drops to when started as root (default: kumod)",
    )
    sink.add_argument(
        "--print-routing",
        action="store_true",
        help="print the init.lua snippet that routes an MTA under test to this sink, and exit",
    )
    sink.set_defaults(handler=bind(cmd_sink))


def _bench_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_globals: AddOptions,
    bind: Callable[[Handler], Callable[[argparse.Namespace], int]],
) -> None:
    bench = commands.add_parser(
        "bench",
        help="send test mail to a sink and measure it",
        description="Run a traffic generator against --target, or against a sink it starts itself "
        "(--local-sink, on --sink-host if given) and stops afterwards. With --host the generator runs "
        "on that host over SSH. Each run is saved (see `kumotui runs`). Targets outside loopback and "
        "private ranges are refused unless --allow-remote-target.",
    )
    add_globals(bench)
    where = bench.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", metavar="HOST:PORT", help="the SMTP sink (or MTA under test) to send to")
    where.add_argument(
        "--local-sink", action="store_true", help="start a sink with the chosen backend and stop it afterwards"
    )
    bench.add_argument(
        "--backend",
        default="auto",
        choices=["auto", *BACKENDS],
        help="auto: kumomta when kumod and traffic-gen are installed, else builtin (default: auto)",
    )
    bench.add_argument("--sink-host", metavar="[USER@]HOST[:PORT]", help="start the --local-sink on this host over SSH")
    bench.add_argument(
        "--listen",
        metavar="ADDR:PORT",
        help="where a started sink listens (default: a free loopback port; kumomta: 2026)",
    )
    bench.add_argument(
        "--messages", type=int, metavar="N", help="messages to send; no deadline unless --duration is given too"
    )
    bench.add_argument(
        "--duration", type=float, metavar="S", help="seconds to send for (default 60 when --messages is not given)"
    )
    bench.add_argument(
        "--concurrency", type=int, default=50, metavar="C", help="connections, each sending many messages (default: 50)"
    )
    bench.add_argument(
        "--body-size", default="1KB", metavar="SIZE", help="message size: 1000, 1KB, 100KB, 1MiB (default: 1KB)"
    )
    bench.add_argument("--rate", type=float, metavar="R", help="at most R messages per second (built-in)")
    bench.add_argument("--workers", type=int, default=1, metavar="N", help="generator processes (built-in; default: 1)")
    bench.add_argument(
        "--sink-workers", type=int, default=1, metavar="N", help="processes of a started built-in sink (default: 1)"
    )
    bench.add_argument(
        "--tempfail-percent",
        type=float,
        default=0.0,
        metavar="P",
        help="a started built-in sink answers this share with 451",
    )
    bench.add_argument(
        "--permfail-percent",
        type=float,
        default=0.0,
        metavar="P",
        help="a started built-in sink answers this share with 554",
    )
    bench.add_argument(
        "--no-pipelining",
        action="store_true",
        help="one command per round trip even if the server offers PIPELINING (built-in)",
    )
    bench.add_argument(
        "--messages-per-connection",
        type=int,
        default=1000,
        metavar="N",
        help="reconnect after N messages (built-in; default: 1000; 0: never)",
    )
    bench.add_argument(
        "--connect-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="give up on an unreachable target after S seconds (default: 5)",
    )
    bench.add_argument(
        "--recipient", metavar="ADDR", help="one fixed recipient on a reserved domain instead of userN@example.com"
    )
    bench.add_argument(
        "--allow-remote-target", action="store_true", help="allow a target outside loopback and private ranges"
    )
    bench.add_argument(
        "--http-port",
        type=int,
        default=8002,
        metavar="PORT",
        help="kumomta: kumod's HTTP listener for liveness and /metrics (default: 8002)",
    )
    bench.add_argument(
        "--kumod-user",
        default="kumod",
        metavar="USER",
        help="kumomta: the account kumod drops to when started as root (default: kumod)",
    )
    bench.add_argument(
        "--json", action="store_true", help="print only the final summary, as one JSON object on the last line"
    )
    bench.set_defaults(handler=bind(cmd_bench))


# --- sink -------------------------------------------------------------------------------


def cmd_sink(args: argparse.Namespace, settings: Settings) -> int:
    """``kumotui sink``: run a sink until SIGTERM or Ctrl+C, printing JSON lines."""
    from kumotui.backends import kumomta

    listen = args.listen or f"127.0.0.1:{kumomta.SINK_PORT}"
    check_sink_options(listen, args.workers, args.tempfail_percent, args.permfail_percent, args.idle_timeout)
    if args.print_routing:
        host, _, port = listen.rpartition(":")
        print(
            routing_snippet(host.strip("[]") if host not in ("", "0.0.0.0", "::") else "127.0.0.1", int(port)),
            end="",
        )
        return 0
    if len(settings.hosts) > 1:
        raise KumotuiError("--host: sink runs on one host at a time")
    host = open_host(settings.hosts[0] if settings.hosts else None, settings)
    try:
        plan = BenchPlan(
            BenchOptions(target=None, local_sink=True),
            backend=args.backend,
            sink_listen=listen,
            tempfail_percent=args.tempfail_percent,
            permfail_percent=args.permfail_percent,
            kumod_user=args.kumod_user,
            sink_http_port=args.http_port,
        )
        bench = Benchmark(plan, sink_launcher=launcher_for(host))
        if bench.plan.backend == "builtin":
            extra = [
                "--max-message-size",
                str(parse_size(args.max_message_size, "--max-message-size")),
                "--idle-timeout",
                f"{args.idle_timeout:g}",
            ]
            engine_args = sink_args(
                listen, args.workers, tempfail_percent=args.tempfail_percent, permfail_percent=args.permfail_percent
            )
            builtin = BuiltinSinkJob(bench.sink_launcher, [*engine_args, *extra])
            builtin.echo = _echo  # the engine's own lines, as they come
            return _serve(builtin)
        return _serve(bench.make_sink())
    finally:
        host.close()


def _serve(job: Job) -> int:
    """Run a sink job in the foreground until a signal; print lines as it goes."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    echo = job.echo if isinstance(job, EngineJob) else None
    series: list[Sample] = []
    try:
        job.start().wait_ready()
        if echo is None:
            print(
                json.dumps(
                    {"type": "ready", "backend": job.backend, "port": getattr(job, "port", None), "pid": job.pid}
                ),
                flush=True,
            )
        try:
            while not job.finished:
                time.sleep(1.0)
                sample = job.reading()
                if sample is not None:
                    series.append(sample)
                    if echo is None:
                        print(json.dumps(_sink_line("progress", sample)), flush=True)
            raise KumotuiError(f"the sink stopped unexpectedly: {job.error or job.tail()}")
        except KeyboardInterrupt:
            pass
        job.stop()
        if echo is None:
            final = job.summary(series)
            line = {"type": "summary", "backend": job.backend} | (_summary_json(final) if final else {})
            print(json.dumps(line), flush=True)
        return 0
    finally:
        job.stop()
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _echo(line: str) -> None:
    """Print a line; if our reader went away (``| head``), stop like on SIGTERM."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        os.kill(os.getpid(), signal.SIGTERM)


# --- bench ------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """``kumotui bench``: run one benchmark, show progress, print and save the summary."""
    options = BenchOptions(
        target=args.target,
        local_sink=args.local_sink,
        messages=args.messages,
        duration=args.duration,
        concurrency=args.concurrency,
        body_size=parse_size(args.body_size),
        rate=args.rate,
        workers=args.workers,
        sink_workers=args.sink_workers,
        pipelining=not args.no_pipelining,
        per_connection=args.messages_per_connection,
        connect_timeout=args.connect_timeout,
        recipient=args.recipient,
        allow_remote_target=args.allow_remote_target,
    ).validate()
    if len(settings.hosts) > 1:
        raise KumotuiError("--host: bench runs its generator on one host; use --sink-host for the sink")
    if args.sink_host and not args.local_sink:
        raise KumotuiError("--sink-host needs --local-sink (kumotui starts the sink there)")
    plan = BenchPlan(
        options,
        backend=resolve_backend(args.backend),
        sink_listen=args.listen,
        tempfail_percent=args.tempfail_percent,
        permfail_percent=args.permfail_percent,
        kumod_user=args.kumod_user,
        sink_http_port=args.http_port,
        profile=settings.profile,
    )
    profile = load_profile(settings.profile)
    hosts: list[Host] = []
    try:
        gen_host = open_host(settings.hosts[0] if settings.hosts else None, settings)
        hosts.append(gen_host)
        plan = replace(plan, parameters=parameter_values(profile, SysctlTree(settings.sysctl_root, gen_host)))
        sink_host = open_host(args.sink_host, settings) if args.sink_host else None
        if sink_host is not None:
            hosts.append(sink_host)
        if args.sink_host and not args.listen and plan.backend == "builtin":
            plan = replace(plan, sink_listen="0.0.0.0:0")  # reachable from the generator's host
        bench = Benchmark(plan, sink_launcher=launcher_for(sink_host), generator_launcher=launcher_for(gen_host))
        outcome = _run(bench, gen_host, settings, live=not args.json and sys.stderr.isatty())
    finally:
        for host in hosts:
            host.close()
    if args.json:
        print(json.dumps(outcome_json(outcome)))
    else:
        print(format_outcome(outcome))
    if outcome.interrupted:
        return 130
    return 0 if outcome.generator is not None and outcome.generator.ok else 1


def _run(bench: Benchmark, host: Host, settings: Settings, *, live: bool) -> BenchOutcome:
    from kumotui.bench.run import run_and_record

    def show(samples: list[Sample]) -> None:
        gen = next((s for s in reversed(samples) if s.role == "generator"), None)
        if gen is not None:
            rate = gen.rate or 0.0
            p99 = (gen.latency_ms or {}).get("p99")
            sys.stderr.write(
                f"\r\x1b[K{gen.elapsed:6.1f}s  sent {gen.count:,}  failed {gen.failed:,}  "
                f"{rate:,.0f} msgs/s  {mmh(rate):.2f} MMH" + (f"  p99 {p99:.1f} ms" if p99 else "")
            )
            sys.stderr.flush()

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        outcome = run_and_record(bench, host.facts(), _state_dir(settings), show if live else None)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if live:
            sys.stderr.write("\r\x1b[K")
    return outcome


# --- runs and report --------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    """``kumotui runs``: the saved runs."""
    runs = list_runs(_state_dir(settings))
    if args.json:
        print(json.dumps([run.as_json() for run in runs], indent=2))
    else:
        print(format_runs_table(runs))
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """``kumotui report RUN [RUN2]``: Markdown for one run or a comparison."""
    state = _state_dir(settings)
    run = load_run(state, args.run)
    other = load_run(state, args.other) if args.other else None
    text = report_markdown(run, other)
    if args.output:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as error:
            raise KumotuiError(f"--output {args.output}: {error.strerror}") from None
        print(f"Wrote {args.output}")
    else:
        print(text, end="")
    return 0


def _state_dir(settings: Settings) -> Path:
    from kumotui.paths import default_state_dir

    return settings.state_dir or default_state_dir()
