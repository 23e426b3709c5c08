"""The benchmark commands: ``sink``, ``bench``, ``runs``, ``report``.

Thin by design: flags become requests for the core (:class:`~kumotui.backends.SinkRequest`,
:class:`~kumotui.bench.options.BenchOptions`), runs go through
:func:`~kumotui.bench.run.prepare_plan` and :func:`~kumotui.bench.run.run_and_record`,
and what is printed comes from the same summaries and run records the app shows.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kumotui.backends import Backend, SinkRequest, resolve
from kumotui.backends.builtin import EngineJob
from kumotui.backends.job import Job
from kumotui.backends.kumomta.install import SINK_PORT
from kumotui.backends.kumomta.policy import routing_snippet
from kumotui.backends.samples import Sample, mmh
from kumotui.bench.options import BenchOptions, check_sink, domain_list, parse_listen, resolve_responses
from kumotui.bench.placement import Roles, check_listen, host_entries, mta_host_of, placed, redirect_host
from kumotui.bench.records import list_runs, load_run
from kumotui.bench.report import format_runs_table, report_markdown
from kumotui.bench.run import Benchmark, BenchOutcome, RedirectSite, prepare_plan, run_and_record
from kumotui.cli.exit_codes import ExitStatus
from kumotui.cli.options import (
    add_backend_option,
    add_command,
    add_global_options,
    add_sink_answer_options,
    host,
    label,
    per_second,
    seconds,
    size,
    whole,
)
from kumotui.cli.output import format_outcome, outcome_json, sink_line, summary_json
from kumotui.cli.tuning import warn_interrupted
from kumotui.engines.smtp_gen import DEFAULT_SUFFIX, MIXES
from kumotui.errors import KumotuiError
from kumotui.hosts import HostFacts
from kumotui.hosts.connect import open_host
from kumotui.hosts.launch import launcher_for
from kumotui.hosts.local import atomic_write
from kumotui.paths import default_state_dir
from kumotui.settings import Settings
from kumotui.text.escape import printable
from kumotui.text.format import format_mmh, format_ms, format_rate
from kumotui.tuning.redirect import TRADE_OFF, Redirect

if TYPE_CHECKING:
    from kumotui.cli.options import Commands


def register(commands: Commands) -> None:
    """Add ``sink``, ``bench``, ``runs`` and ``report`` to the command line."""
    _sink_parser(commands)
    _bench_parser(commands)
    runs = add_command(
        commands,
        "runs",
        help="list saved benchmark runs",
        description="Saved runs, oldest first, from the state dir.",
        epilog="examples:\n  kumotui runs\n  kumotui runs --json",
    )
    runs.add_argument("--json", action="store_true", help="print a JSON list of run records")
    add_global_options(runs, suppress=True)
    runs.set_defaults(handler=cmd_runs)
    report = add_command(
        commands,
        "report",
        help="a Markdown report of one run, or two compared",
        description="Markdown: configuration, host, kernel parameters at start, results, and for two "
        "runs the differences (rates, latency, parameters that changed), with KumoMTA's published "
        "figures for scale.",
        epilog="examples:\n  kumotui report 20261201-2126\n  kumotui report RUN_BEFORE RUN_AFTER -o before-after.md",
    )
    report.add_argument("run", metavar="RUN", help="run id (or unique prefix); see `kumotui runs`")
    report.add_argument("other", metavar="RUN2", nargs="?", help="a second run to compare with the first")
    report.add_argument("--output", "-o", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    add_global_options(report, suppress=True)
    report.set_defaults(handler=cmd_report)


def _sink_parser(commands: Commands) -> None:
    sink = add_command(
        commands,
        "sink",
        help="run an SMTP sink that accepts and discards mail (JSON lines on stdout)",
        description="Accept mail and discard it, printing JSON lines (a progress line every 0.5 s for the "
        "built-in sink, every second for kumod or smtp-sink); on SIGTERM or Ctrl+C a final summary line, "
        "then exit 0. --backend kumomta runs kumod with a sink policy kumotui writes (ESMTP on 2026, "
        "HTTP on 8002, every message to the null queue).",
        epilog="examples:\n  kumotui sink\n  kumotui sink --listen 0.0.0.0:2026 --workers 4\n"
        "  kumotui sink --listen 10.0.0.5:2026 --print-routing",
    )
    sink.add_argument(
        "--listen",
        default=None,
        metavar="ADDR:PORT",
        help=f"where to listen (default: 127.0.0.1:{SINK_PORT}, KumoMTA's sink port)",
    )
    add_backend_option(sink, "kumod is")
    sink.add_argument(
        "--metrics-listen",
        metavar="ADDR:PORT",
        help="built-in: also serve the counters over HTTP (/metrics in kumod's names), so `bench --through "
        "MTA --sink HOST:PORT --sink-metrics ADDR:PORT` can count what this sink receives",
    )
    sink.add_argument(
        "--print-routing",
        action="store_true",
        help="print the init.lua snippet that routes an MTA under test to this sink, and exit",
    )
    answers = sink.add_argument_group("how the sink answers")
    answers.add_argument(
        "--workers",
        type=whole(1, 256),
        default=1,
        metavar="N",
        help="built-in: processes sharing the port with SO_REUSEPORT (default: 1)",
    )
    add_sink_answer_options(answers)
    answers.add_argument(
        "--max-message-size",
        type=size,
        default="50MiB",
        metavar="SIZE",
        help="built-in: largest message accepted (default: %(default)s)",
    )
    answers.add_argument(
        "--idle-timeout",
        type=seconds,
        default=300.0,
        metavar="S",
        help="built-in: close sessions silent this long (default: %(default)s)",
    )
    add_global_options(sink, suppress=True)
    sink.set_defaults(handler=cmd_sink)


def _bench_parser(commands: Commands) -> None:
    bench = add_command(
        commands,
        "bench",
        help="send test mail to a sink and measure it",
        description="Run a traffic generator against --target, or against a sink it starts itself "
        "(--local-sink, on --sink-host if given) and stops afterwards. With --host the generator runs "
        "on that host over SSH. Each run is saved (see `kumotui runs`). Targets outside loopback and "
        "private ranges are refused unless --allow-remote-target.",
        epilog="examples:\n  kumotui bench --local-sink --messages 100000 --body-size 100KB\n"
        "  kumotui bench --target 10.0.0.5:2026 --duration 60 --concurrency 500 --json",
    )
    where = bench.add_argument_group("where")
    where.add_argument(
        "--through",
        metavar="HOST:PORT",
        help="the MTA under test: the generator sends to it, and the --local-sink counts what it relays "
        "(routing probe first, then per-message accounting and delivery latency)",
    )
    sink_or_target = where.add_mutually_exclusive_group(required=True)
    sink_or_target.add_argument("--target", metavar="HOST:PORT", help="the SMTP sink (or MTA under test) to send to")
    sink_or_target.add_argument(
        "--local-sink", action="store_true", help="start a sink with the chosen backend and stop it afterwards"
    )
    sink_or_target.add_argument(
        "--sink",
        metavar="HOST:PORT",
        help="with --through: a running sink the MTA delivers to, which kumotui counts from its /metrics but "
        "does not start (a kumod sink, or `kumotui sink --metrics-listen`); count-level accounting only",
    )
    where.add_argument(
        "--mta-host",
        metavar="[USER@]HOST[:PORT]",
        type=host,
        help="with --through: the MTA under test's host over SSH, to read its queue (postqueue), its kernel "
        "values and live counters, and tune it from hints (default: the first --host's for a loopback --through)",
    )
    where.add_argument(
        "--sink-metrics",
        metavar="HOST:PORT",
        help="where the --sink serves /metrics (default: its host, port 8002: kumod's sink policy)",
    )
    add_backend_option(where, "kumod and traffic-gen are")
    where.add_argument(
        "--sink-host", metavar="[USER@]HOST[:PORT]", type=host, help="start the --local-sink on this host over SSH"
    )
    where.add_argument(
        "--listen",
        metavar="ADDR:PORT",
        help="where a started sink listens (default: a free loopback port; with --through, kumomta and "
        "postfix: 2026, KumoMTA's sink port, where the MTA under test is told to deliver)",
    )
    load = bench.add_argument_group("load")
    load.add_argument(
        "--messages", type=whole(1), metavar="N", help="messages to send; no deadline unless --duration is given too"
    )
    load.add_argument(
        "--duration", type=seconds, metavar="S", help="seconds to send for (default 60 when --messages is not given)"
    )
    load.add_argument(
        "--concurrency",
        type=whole(1, 100000),
        default=50,
        metavar="C",
        help="connections, each sending many messages (default: 50)",
    )
    load.add_argument(
        "--body-size",
        type=size,
        default="1KB",
        metavar="SIZE",
        help="message size: 1000, 1KB, 100KB, 1MiB (default: 1KB)",
    )
    load.add_argument(
        "--connect-timeout",
        type=seconds,
        default=5.0,
        metavar="S",
        help="give up on an unreachable target after S seconds (default: 5)",
    )
    load.add_argument(
        "--probe-timeout",
        type=seconds,
        default=30.0,
        metavar="S",
        help="with --through: seconds the routing probes may take to reach the sink (default: 30)",
    )
    load.add_argument(
        "--drain-timeout",
        type=seconds,
        default=60.0,
        metavar="S",
        help="with --through: seconds to wait for the MTA to deliver its backlog after sending ends (default: 60)",
    )
    where.add_argument(
        "--redirect-port25",
        action="store_true",
        help="with --through to an MTA on this host (or --host): for the run, a firewall rule (nftables, else "
        "iptables; shown before it is written, journaled, removed when the run ends) sends the host's outbound "
        "port 25 to the sink, so the MTA routes with its real routing and shaping; the routing probe proves it "
        "before any load. " + TRADE_OFF + " A rule a crash left: `kumotui redirect remove` or `kumotui rollback`",
    )
    where.add_argument(
        "--mta-metrics",
        metavar="HOST:PORT",
        help="with --through: the MTA's (kumod's) HTTP listener, for its /metrics (default: port 8000 of "
        "--through's host when it greets as KumoMTA)",
    )
    where.add_argument(
        "--mta-postfix-config",
        metavar="DIR",
        help="with --through to a Postfix on this machine: its config directory, for `postqueue -c DIR -j`",
    )
    load.add_argument(
        "--reply-timeout",
        type=seconds,
        metavar="S",
        help="built-in: fail a session whose server has not answered within S seconds (default: 30)",
    )
    load.add_argument(
        "--allow-remote-target", action="store_true", help="allow a target outside loopback and private ranges"
    )
    where_to = bench.add_argument_group("recipients and headers (built-in generator and traffic-gen)")
    where_to.add_argument(
        "--domain",
        action="append",
        metavar="NAME[:WEIGHT]",
        help="a recipient domain, repeatable, with relative weights (gmail.com:67.4); default example.com",
    )
    where_to.add_argument(
        "--mix", choices=sorted(MIXES), help="providers: KumoMTA's guide's mailbox-provider mix (gmail-heavy)"
    )
    where_to.add_argument(
        "--domain-suffix",
        metavar="S",
        help=f"appended to every domain not reserved itself (default: {DEFAULT_SUFFIX}; '' needs --allow-real-domains)",
    )
    where_to.add_argument(
        "--allow-real-domains",
        action="store_true",
        help="allow recipient domains not reserved for testing: only with outbound mail redirected to a sink",
    )
    where_to.add_argument(
        "--header", action="append", metavar="'NAME: VALUE'", help="a header in every message (repeatable)"
    )
    builtin = bench.add_argument_group("built-in generator only")
    builtin.add_argument("--rate", type=per_second, metavar="R", help="at most R messages per second")
    builtin.add_argument(
        "--workers", type=whole(1, 256), default=1, metavar="N", help="generator processes (default: 1)"
    )
    builtin.add_argument(
        "--no-pipelining",
        action="store_true",
        help="one command per round trip even if the server offers PIPELINING",
    )
    builtin.add_argument(
        "--messages-per-connection",
        type=whole(0),
        default=1000,
        metavar="N",
        help="reconnect after N messages (default: 1000; 0: never)",
    )
    builtin.add_argument(
        "--recipient", metavar="ADDR", help="one fixed recipient on a reserved domain instead of userN@example.com"
    )
    started = bench.add_argument_group("a started sink (--local-sink)")
    started.add_argument(
        "--sink-workers",
        type=whole(1, 256),
        default=1,
        metavar="N",
        help="built-in: processes of the sink (default: 1)",
    )
    add_sink_answer_options(started)
    bench.add_argument(
        "--label", default="", metavar="TEXT", type=label, help="a note saved with the run, e.g. 'before tuning'"
    )
    bench.add_argument(
        "--json", action="store_true", help="print only the final summary, as one JSON object on the last line"
    )
    add_global_options(bench, suppress=True)
    bench.set_defaults(handler=cmd_bench)


# --- sink -------------------------------------------------------------------------------


def cmd_sink(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui sink``: run a sink until SIGTERM or Ctrl+C, printing JSON lines."""
    host_text, port = parse_listen(args.listen or f"127.0.0.1:{SINK_PORT}")
    backend = resolve(args.backend)
    request = check_sink(
        SinkRequest(
            host=host_text,
            port=port,
            workers=args.workers,
            max_message_size=args.max_message_size,
            idle_timeout=args.idle_timeout,
            metrics_listen=args.metrics_listen,
            **_answers(args),
        ),
        backend=backend,
    )
    if args.print_routing:
        reach = host_text if host_text not in ("0.0.0.0", "::") else "127.0.0.1"
        print(routing_snippet(reach, port), end="")
        return ExitStatus.OK
    if len(settings.hosts) > 1:
        raise KumotuiError("--host: sink runs on one host at a time")
    host = open_host(settings.hosts[0] if settings.hosts else None, settings)
    try:
        job = backend.impl.sink(launcher_for(host), request)
        if isinstance(job, EngineJob):
            job.echo = _echo  # the engine's own lines, as they come
        return _serve(job)
    finally:
        host.close()


def _serve(job: Job) -> ExitStatus:
    """Run a sink job in the foreground until a signal; print lines as it goes."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    echo = job.echo if isinstance(job, EngineJob) else None
    series: list[Sample] = []
    try:
        job.start().wait_ready()
        if echo is None:
            ready = {"type": "ready", "backend": job.backend, "port": job.port, "pid": job.pid}
            print(json.dumps(ready), flush=True)
        try:
            while not job.finished:
                time.sleep(1.0)
                sample = job.reading()
                if sample is not None:
                    series.append(sample)
                    if echo is None:
                        print(json.dumps(sink_line("progress", sample)), flush=True)
            raise KumotuiError(f"the sink stopped unexpectedly: {job.error or job.tail()}")
        except KeyboardInterrupt:
            pass
        job.stop()
        if echo is None:
            final = job.summary(series)
            line = {"type": "summary", "backend": job.backend} | (summary_json(final) if final else {})
            print(json.dumps(line), flush=True)
        return ExitStatus.OK
    finally:
        job.stop()
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _echo(line: str) -> None:
    """Print a line; if our reader went away (``| head``), stop like on SIGTERM."""
    try:
        print(printable(line), flush=True)  # an engine's line, maybe from another host
    except BrokenPipeError:
        os.kill(os.getpid(), signal.SIGTERM)


# --- bench ------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui bench``: run one benchmark, show progress, print and save the summary."""
    options = BenchOptions(
        target=args.target,
        local_sink=args.local_sink,
        messages=args.messages,
        duration=args.duration,
        concurrency=args.concurrency,
        body_size=args.body_size,
        rate=args.rate,
        workers=args.workers,
        pipelining=not args.no_pipelining,
        per_connection=args.messages_per_connection,
        connect_timeout=args.connect_timeout,
        reply_timeout=args.reply_timeout,
        through=args.through,
        probe_timeout=args.probe_timeout,
        drain_timeout=args.drain_timeout,
        mta_metrics=args.mta_metrics,
        mta_postfix_config=args.mta_postfix_config,
        sink=args.sink,
        sink_metrics=args.sink_metrics,
        redirect_port25=args.redirect_port25,
        recipient=args.recipient,
        allow_remote_target=args.allow_remote_target,
        domains=domain_list(args.domain or [], args.mix),
        domain_suffix=args.domain_suffix,
        headers=tuple(args.header or ()),
        allow_real_domains=args.allow_real_domains,
    ).validate()
    if args.through and not (args.local_sink or args.sink):
        raise KumotuiError("--through needs --local-sink or --sink: kumotui counts what the MTA relays at a sink")
    if args.responses and not args.local_sink:
        raise KumotuiError("--responses needs --local-sink: it sets how the sink kumotui starts answers")
    if args.sink_host and not args.local_sink:
        raise KumotuiError("--sink-host needs --local-sink (kumotui starts the sink there)")
    backend = resolve(args.backend)
    if args.mta_host and not args.through:
        raise KumotuiError("--mta-host needs --through: it names where the MTA under test runs")
    generators = tuple(settings.hosts) or (None,)
    roles = Roles(
        generators=generators,
        sink=args.sink_host,
        starts_sink=args.local_sink,
        mta=mta_host_of(args.mta_host, args.through, generators),
    ).check()
    rule_host = redirect_host(roles) if args.redirect_port25 else None
    if len(roles.generators) > 1 and backend is not Backend.BUILTIN:
        raise KumotuiError(
            f"--host given {len(roles.generators)} times: generators on several hosts need --backend builtin "
            "(its counters and latency histograms merge exactly)"
        )
    listen_host, listen_port = parse_listen(args.listen) if args.listen else ("127.0.0.1", None)
    if args.through and listen_port is None:
        listen_port = SINK_PORT  # where an MTA under test is told to deliver (KumoMTA's sink port)
    if args.sink_host and not args.listen and backend is Backend.BUILTIN:
        listen_host = "0.0.0.0"  # reachable from the generator's host
    sink = check_sink(
        SinkRequest(
            host=listen_host,
            port=listen_port,
            workers=args.sink_workers,
            **_answers(args),
        ),
        workers_flag="--sink-workers",
        backend=backend,
    )
    with placed(roles, settings) as hosts:  # every host reached before anything starts
        if args.local_sink and args.listen and not args.through:
            check_listen(listen_host, hosts)
        entries = host_entries(settings, hosts)
        first = hosts.host(roles.generators[0])
        plan, facts = prepare_plan(
            settings, first, options, backend=backend, sink=sink, label=args.label, hosts=entries
        )
        warn_interrupted(settings, first)
        site = RedirectSite.on(hosts.host(rule_host), settings, _announce) if args.redirect_port25 else None
        bench = Benchmark(
            plan,
            sink_launcher=hosts.sink_launcher(),
            generator_launchers=hosts.generator_launchers(),
            redirect_site=site,
            mta_host=hosts.mta_host(),
        )
        outcome = _run(bench, facts, settings, live=not args.json and sys.stderr.isatty())
        if bench.redirect_error:
            print(f"kumotui: warning: the port-25 redirect is still in place: {bench.redirect_error}", file=sys.stderr)
    if args.json:
        print(json.dumps(outcome_json(outcome)))
    else:
        print(format_outcome(outcome))
    if outcome.interrupted:
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK if outcome.record.ok else ExitStatus.NOT_OK


def _announce(rule: Redirect, on: str) -> None:
    """Show the rule and the host it goes on before it is written, as ``apply`` shows its plan."""
    print(f"kumotui: {rule.plan_text(on)}", end="", file=sys.stderr, flush=True)


def _run(bench: Benchmark, facts: HostFacts, settings: Settings, *, live: bool) -> BenchOutcome:
    def show(samples: list[Sample]) -> None:
        gen = next((s for s in reversed(samples) if s.role == "generator"), None)
        if gen is not None:
            rate = gen.rate or 0.0
            p99 = (gen.latency_ms or {}).get("p99")
            sys.stderr.write(
                f"\r\x1b[K{gen.elapsed:6.1f}s  sent {gen.count:,}  failed {gen.failed:,}  "
                f"{format_rate(rate)} msgs/s  {format_mmh(mmh(rate))} MMH"
                + (f"  p99 {format_ms(p99)} ms" if p99 else "")
            )
            sys.stderr.flush()

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        outcome = run_and_record(bench, facts, _state_dir(settings), show if live else None)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if live:
            sys.stderr.write("\r\x1b[K")
    return outcome


# --- runs and report --------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui runs``: the saved runs."""
    runs = list_runs(_state_dir(settings))
    if args.json:
        print(json.dumps([run.as_json() for run in runs], indent=2))
    else:
        print(format_runs_table(runs))
    return ExitStatus.OK


def cmd_report(args: argparse.Namespace, settings: Settings) -> ExitStatus:
    """``kumotui report RUN [RUN2]``: Markdown for one run or a comparison."""
    state = _state_dir(settings)
    run = load_run(state, args.run)
    other = load_run(state, args.other) if args.other else None
    text = report_markdown(run, other)
    if args.output:
        try:
            atomic_write(args.output, text, private=False)
        except OSError as error:
            raise KumotuiError(f"--output {args.output}: {error.strerror}") from None
        print(f"Wrote {args.output}")
    else:
        print(printable(text, keep="\t\n"), end="")  # host names and targets in it came from hosts
    return ExitStatus.OK


def _answers(args: argparse.Namespace) -> dict[str, Any]:
    """How a sink answers, from the flags ``sink`` and ``bench`` share (``add_sink_answer_options``)."""
    return {
        "tempfail_percent": args.tempfail_percent,
        "permfail_percent": args.permfail_percent,
        "responses": resolve_responses(args.responses),
        "seed": args.seed,
        "kumod_user": args.kumod_user,
        "http_port": args.http_port,
    }


def _state_dir(settings: Settings) -> Path:
    """The state dir the settings name, else this machine's default."""
    return settings.state_dir or default_state_dir()
