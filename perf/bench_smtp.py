"""Measure kumotui's built-in SMTP sink and generator against Postfix's tools.

Why: the built-in pair is the default of the whole benchmark side, so it must
never be the bottleneck. This script runs, interleaved in one go (so drift in
the machine hits every contender alike), the built-in sink against Postfix's
smtp-sink (both driven by smtp-source with the same flags), the built-in
generator against smtp-source (both into smtp-sink), and the built-in pair
end to end, and prints the median of each, the spread (min-max) across
rounds, CPU-seconds per 1000 messages, peak sink RSS and the ratios against
the targets of issue 5.

What is timed, and why: the wall time of the whole driver process, from
spawn to exit, the same way for smtp-source and for the built-in generator.
A sink is started (and seen accepting) before its clock starts, so sink
start-up is never timed and both sinks meet the same driver. For the
generator comparisons this includes the interpreter start-up of the
built-in generator (about 0.13 s here, against runs of a second or more):
a cost a user pays too, so it is kept rather than subtracted, and it counts
against the built-in side only, so the ratios are conservative. smtp-source
reports no transfer time of its own, so timing "the transfer" alone could
not be applied identically to both sides.

Fairness: one discarded warm-up round first (page cache, CPU clocks); then
each round runs every pair once per case, in an order rotated every round;
each run gets a fresh sink on a fresh port. The loop each built-in engine
reports in its ``ready`` line is checked, so a run meant for uvloop that fell
back to plain asyncio is an error, not a slow figure. Ratios are given as the
ratio of medians and as the min-max of the per-round ratios.

Before/after a change to the sink: ``--baseline DIR`` adds pair ``Bb``, the
built-in sink imported from DIR (a tree holding another version's
``kumotui`` package, e.g. ``git archive main kumotui | tar -x -C DIR``), and
``--responses FILE`` adds pair ``Br``, this tree's sink answering from that
Smart Sink responses file; both run interleaved with ``B`` in the same rounds.

Usage: ``.venv/bin/python bench/bench_smtp.py [--rounds 5] [--warmup 1]
[--pairs A,B] [--cases 0] [--no-asyncio] [--baseline DIR] [--responses FILE]``. Postfix's tools come from
``.ci/cache/postfix`` (``bash .ci/setup --test`` puts them there) or
``$KUMOTUI_POSTFIX_DIR``. Everything stays on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
CASES = [(1000, 20000, 50), (100_000, 5000, 50), (100_000, 5000, 500)]
"""(body bytes, messages, concurrency) as the issue asks."""


@dataclass
class Run:
    """One measured run: wall time of the driver, CPU of both sides, sink peak RSS."""

    msgs_per_s: float
    driver_cpu: float
    sink_cpu: float
    sink_rss_mb: float
    ok: bool


def postfix_dir() -> Path:
    """Where Debian's postfix package was extracted (never installed as a service)."""
    root = Path(os.environ.get("KUMOTUI_POSTFIX_DIR", REPO / ".ci" / "cache" / "postfix"))
    if not (root / "usr/sbin/smtp-sink").exists():
        sys.exit(f"no smtp-sink under {root}: run `bash .ci/setup --test` or set KUMOTUI_POSTFIX_DIR")
    return root


def free_port() -> int:
    """A free loopback port (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Block until something accepts on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.recv(100)
                s.sendall(b"QUIT\r\n")
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def proc_cpu(pid: int) -> float:
    """utime+stime of a process and its children that were reaped, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12)) / ticks


def tree_cpu_rss(pid: int) -> tuple[float, float]:
    """CPU seconds and peak RSS (MB, summed) of a process and its live children."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    cpu = sum(proc_cpu(p) for p in pids)
    rss = 0.0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    rss += int(line.split()[1]) / 1024
        except OSError:
            pass
    return cpu, rss


def check_loop(line: bytes, uvloop: bool, who: str) -> None:
    """Refuse a run whose engine did not use the event loop the pair is meant to measure."""
    try:
        loop = json.loads(line).get("loop")
    except ValueError:
        loop = None
    wanted = "uvloop" if uvloop else "asyncio"
    if loop != wanted:
        raise RuntimeError(f"{who} runs on {loop!r}, not {wanted}: {line[:200]!r}")


def drain(stream: IO[bytes]) -> None:
    """Read a child's progress lines to the end so its pipe never fills."""
    for _ in stream:
        pass


class Sink:
    """A sink process (Postfix's or ours) on a fresh port."""

    def __init__(self, kind: str, concurrency: int, pf: Path, uvloop: bool = True, extra: Extra | None = None) -> None:
        self.port = free_port()
        env = dict(os.environ, LD_LIBRARY_PATH=str(pf / "usr/lib/postfix"))
        tree = REPO
        if extra is not None and extra.tree is not None:
            tree = extra.tree
            env["PYTHONPATH"] = str(tree)
        builtin = kind != "smtp-sink"
        if not builtin:
            argv = [str(pf / "usr/sbin/smtp-sink")]
            if os.geteuid() == 0:
                argv += ["-u", "nobody"]
            argv += ["-m", str(max(256, 2 * concurrency)), f"127.0.0.1:{self.port}", "4096"]
        else:
            argv = [PY, "-m", "kumotui.engines.smtp_sink", "--listen", f"127.0.0.1:{self.port}"]
            if not uvloop:
                argv.append("--no-uvloop")
            if extra is not None and extra.responses is not None:
                argv += ["--responses", str(extra.responses)]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE if builtin else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tree,
        )
        if builtin:
            assert self.proc.stdout is not None
            check_loop(self.proc.stdout.readline(), uvloop, "the built-in sink")
            threading.Thread(target=drain, args=(self.proc.stdout,), daemon=True).start()
        wait_port(self.port)
        self.cpu0, _ = tree_cpu_rss(self.proc.pid)

    def finish(self) -> tuple[float, float]:
        """CPU used since start of the run, peak RSS; then stop it by PID."""
        cpu, rss = tree_cpu_rss(self.proc.pid)
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return cpu - self.cpu0, rss


def drive(kind: str, port: int, size: int, count: int, conc: int, pf: Path, uvloop: bool) -> tuple[float, float, bool]:
    """Run a generator to completion; wall seconds, its CPU seconds, success."""
    env = dict(os.environ, LD_LIBRARY_PATH=str(pf / "usr/lib/postfix"))
    if kind == "smtp-source":
        argv = [str(pf / "usr/sbin/smtp-source"), "-d", "-s", str(conc), "-l", str(size),
                "-m", str(count), "-f", "bench@kumotui.example", "-t", "user@example.com",
                f"127.0.0.1:{port}"]  # fmt: skip
    else:
        argv = [PY, "-m", "kumotui.engines.smtp_gen", "--target", f"127.0.0.1:{port}",
                "--messages", str(count), "--concurrency", str(conc), "--body-size", str(size)]  # fmt: skip
        if not uvloop:
            argv.append("--no-uvloop")
    resource_children_delta()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    out, _ = proc.communicate()
    wall = time.perf_counter() - start
    cpu = resource_children_delta()  # the driver was just reaped; the sink is not yet
    ok = proc.returncode == 0
    if kind != "smtp-source":
        lines = [x for x in out.splitlines() if x.startswith(b"{")]
        check_loop(lines[0] if lines else b"", uvloop, "the built-in generator")
        ok = ok and bool(lines) and json.loads(lines[-1]).get("sent") == count
    return wall, cpu, ok


@dataclass(frozen=True)
class Extra:
    """What makes pairs ``Bb`` and ``Br`` differ from ``B``: another tree's sink, or a responses file."""

    tree: Path | None = None
    responses: Path | None = None


EXTRAS: dict[str, Extra] = {}
"""Filled from ``--baseline`` / ``--responses``."""

_last_children = [0.0]


def resource_children_delta() -> float:
    """CPU of reaped children since the last call (subprocess reaps for us)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = r.ru_utime + r.ru_stime
    delta = total - _last_children[0]
    _last_children[0] = total
    return delta


PAIRS = {
    "A": ("smtp-source", "smtp-sink", True),
    "B": ("smtp-source", "builtin", True),
    "C": ("builtin", "smtp-sink", True),
    "D": ("builtin", "builtin", True),
    "B0": ("smtp-source", "builtin", False),
    "D0": ("builtin", "builtin", False),
    "Bb": ("smtp-source", "builtin", True),
    "Br": ("smtp-source", "builtin", True),
}
LABEL = {
    "A": "smtp-source -> smtp-sink",
    "B": "smtp-source -> builtin sink",
    "C": "builtin gen -> smtp-sink",
    "D": "builtin gen -> builtin sink",
    "B0": "smtp-source -> builtin sink (asyncio)",
    "D0": "builtin -> builtin (asyncio)",
    "Bb": "smtp-source -> builtin sink (--baseline)",
    "Br": "smtp-source -> builtin sink (--responses)",
}
CHECKS = [
    ("builtin sink / smtp-sink, 1KB c50", "B", "A", 0, 1.0),
    ("builtin sink / smtp-sink, 100KB c50", "B", "A", 1, 4.0),
    ("builtin sink / smtp-sink, 100KB c500", "B", "A", 2, 4.0),
    ("builtin gen / smtp-source, 1KB c50", "C", "A", 0, 1.0),
    ("builtin e2e / postfix e2e, 1KB c50", "D", "A", 0, 1.2),
]
"""(name, pair, baseline pair, case index, target ratio) from issue 5."""


def one(pair: str, case: tuple[int, int, int], pf: Path) -> Run:
    """Measure one pair on one case, with a fresh sink."""
    driver, sink_kind, uvloop = PAIRS[pair]
    size, count, conc = case
    sink = Sink(sink_kind, conc, pf, uvloop, EXTRAS.get(pair))
    wall, driver_cpu, ok = drive(driver, sink.port, size, count, conc, pf, uvloop)
    sink_cpu, rss = sink.finish()
    resource_children_delta()
    return Run(count / wall, float(driver_cpu), sink_cpu, rss, ok)


def describe(case: tuple[int, int, int]) -> str:
    """``1KB x 20000 c50``."""
    size, count, conc = case
    return f"{size // 1000}KB x {count} c{conc}"


Results = dict[tuple[str, int], list[Run]]


def report(results: Results, pairs: list[str], cases: list[int], rounds: int) -> None:
    """The table of medians and spreads, the ratios against the targets, uvloop's effect."""

    def med(pair: str, ci: int, attr: str = "msgs_per_s") -> float:
        return statistics.median(getattr(r, attr) for r in results[(pair, ci)])

    def ratio(a: str, b: str, ci: int) -> float:
        return med(a, ci) / med(b, ci)

    def per_round(a: str, b: str, ci: int) -> list[float]:
        return [x.msgs_per_s / y.msgs_per_s for x, y in zip(results[(a, ci)], results[(b, ci)], strict=True)]

    print(f"\nmedian of {rounds} interleaved rounds (after the warm-up); CPU-s per 1000 messages; peak sink RSS")
    print(f"{'pair':<38} {'case':<20} {'msgs/s':>9} {'min-max':>15} {'drv CPU':>8} {'sink CPU':>8} {'sink RSS':>9}")
    for ci in cases:
        case = CASES[ci]
        n = case[1] / 1000
        for pair in pairs:
            runs = results[(pair, ci)]
            failed = "" if all(r.ok for r in runs) else "  (a run FAILED)"
            low, high = min(r.msgs_per_s for r in runs), max(r.msgs_per_s for r in runs)
            print(
                f"{LABEL[pair]:<38} {describe(case):<20} {med(pair, ci):>9.0f} {f'{low:.0f}-{high:.0f}':>15} "
                f"{med(pair, ci, 'driver_cpu') / n:>8.3f} {med(pair, ci, 'sink_cpu') / n:>8.3f} "
                f"{med(pair, ci, 'sink_rss_mb'):>7.1f}MB{failed}"
            )
    print(f"\n{'ratio (msgs/s)':<40} {'medians':>9} {'per round':>13} {'target':>7}")
    for name, a, b, ci, target in CHECKS:
        if ci not in cases or a not in pairs or b not in pairs:
            continue
        value = ratio(a, b, ci)
        rounds_ = per_round(a, b, ci)
        spread = f"{min(rounds_):.2f}-{max(rounds_):.2f}"
        verdict = "met" if value >= target else "NOT MET"
        print(f"{name:<40} {value:>8.2f}x {spread:>13} {target:>6.1f}x  {verdict}")
    if 2 in cases and "B" in pairs:
        rss = med("B", 2, "sink_rss_mb")
        verdict = "met" if rss < 200 else "NOT MET"
        print(f"{'builtin sink peak RSS, 500 conns x 100KB':<40} {rss:>7.1f}MB {'':>13} {'<200':>6}MB  {verdict}")
    if {"B0", "B", "D", "D0"} <= set(pairs):
        print("\nuvloop vs plain asyncio (median msgs/s):")
        for ci in cases:
            print(
                f"  {describe(CASES[ci]):<20} sink {med('B', ci):.0f} vs {med('B0', ci):.0f} "
                f"({ratio('B', 'B0', ci):.2f}x); end to end {med('D', ci):.0f} vs {med('D0', ci):.0f} "
                f"({ratio('D', 'D0', ci):.2f}x)"
            )


def main() -> int:
    """Warm-up, interleaved rounds, medians and spreads, ratios against the issue's targets."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="measured rounds (default %(default)s)")
    ap.add_argument("--warmup", type=int, default=1, help="rounds run first and discarded (default %(default)s)")
    ap.add_argument("--no-asyncio", action="store_true", help="skip the plain-asyncio runs")
    ap.add_argument("--pairs", help=f"comma-separated subset of {','.join(PAIRS)} (A, the baseline, is always run)")
    ap.add_argument("--cases", help=f"comma-separated case indexes, 0-{len(CASES) - 1} (default: all)")
    ap.add_argument("--baseline", type=Path, metavar="DIR", help="add pair Bb: the built-in sink from DIR's kumotui")
    ap.add_argument("--responses", type=Path, metavar="FILE", help="add pair Br: the sink with --responses FILE")
    args = ap.parse_args()
    pf = postfix_dir()
    pairs = [p for p in PAIRS if not (args.no_asyncio and p.endswith("0")) and p not in ("Bb", "Br")]
    if args.baseline:
        EXTRAS["Bb"] = Extra(tree=args.baseline.resolve())
        pairs.append("Bb")
    if args.responses:
        EXTRAS["Br"] = Extra(responses=args.responses.resolve())
        pairs.append("Br")
    if args.pairs:
        wanted = {"A", *args.pairs.split(","), *EXTRAS}
        if unknown := wanted - set(PAIRS):
            ap.error(f"unknown pairs: {', '.join(sorted(unknown))}")
        pairs = [p for p in PAIRS if p in wanted]
    cases = [int(c) for c in args.cases.split(",")] if args.cases else list(range(len(CASES)))
    results: Results = {}
    for rnd in range(args.warmup + args.rounds):
        warm = rnd < args.warmup
        for ci in cases:
            case = CASES[ci]
            order = pairs[rnd % len(pairs) :] + pairs[: rnd % len(pairs)]
            for pair in order:
                run = one(pair, case, pf)
                if not warm:
                    results.setdefault((pair, ci), []).append(run)
                mark = "" if run.ok else "  FAILED"
                label = "warm-up" if warm else f"round {rnd - args.warmup + 1}"
                print(f"{label:<8} {LABEL[pair]:<38} {describe(case):<20} {run.msgs_per_s:9.0f} msgs/s{mark}",
                      file=sys.stderr, flush=True)  # fmt: skip
    report(results, pairs, cases, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
