"""What the app itself costs while it watches a benchmark: CPU, terminal bytes, memory.

kumotui shares the machine it measures and often runs over a slow SSH link,
so its own UI process must stay small while a run goes. This script runs the
real ``kumotui`` command in a real pseudo-terminal (not Textual's headless
mode), drives it with keystrokes like an operator (``b``, fill the form, Enter)
to start a real built-in benchmark capped at a steady rate, then for the
measured period:

- counts every byte the app writes to the terminal, per second;
- samples the UI process's CPU time and RSS with psutil (the app's own
  threads included: job readers, the benchmark worker's host readings and
  hints; the sink and generator are separate processes and not counted);

and finally quits with ``q`` (``y`` to its question) and checks that no job process survived.

Run (a 1-minute check, or 10 minutes for the memory trend)::

    .venv/bin/python perf/ui_cost.py --size 120x36 --seconds 60
    .venv/bin/python perf/ui_cost.py --size 120x36 --seconds 600 --json cost.json

Budgets (issue 7): at most 10% of one core, at most 30 kB/s to the terminal
at 120x36, and RSS flat over a 10-minute run.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import shutil
import struct
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
KUMOTUI = REPO / ".venv" / "bin" / "kumotui"
CPU_BUDGET = 10.0
"""Percent of one core."""
BYTES_BUDGET = 30_000
"""Bytes per second written to the terminal."""


class Terminal:
    """The app on the slave side of a pty; this side reads and counts everything it writes."""

    def __init__(self, argv: list[str], columns: int, rows: int, env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: become the app
            os.execve(argv[0], argv, env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.total = 0
        self.lock = threading.Lock()
        self.tail = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.total += len(data)
                self.tail = (self.tail + data)[-20000:]

    @property
    def written(self) -> int:
        """Bytes the app wrote to the terminal so far."""
        with self.lock:
            return self.total

    def screen_text(self) -> str:
        """The last output, escape sequences stripped roughly (for waiting on words)."""
        with self.lock:
            raw = self.tail.decode("utf-8", "replace")
        out, skip = [], False
        for char in raw:
            if char == "\x1b":
                skip = True
                continue
            if skip:
                if char.isalpha() or char in "~@":
                    skip = False
                continue
            out.append(char)
        return "".join(out)

    def keys(self, *keys: str, pause: float = 0.25) -> None:
        """Type keys one at a time, as a person would."""
        for key in keys:
            os.write(self.fd, key.encode())
            time.sleep(pause)

    def wait_for(self, word: str, timeout: float = 20.0) -> None:
        """Until ``word`` appears in the output."""
        deadline = time.monotonic() + timeout
        while word not in self.screen_text():
            if time.monotonic() > deadline:
                raise SystemExit(f"the app never showed {word!r}")
            time.sleep(0.1)


TAB, ENTER, END, CLEAR_LEFT = "\t", "\r", "\x05", "\x15"
"""Tab, Enter, Ctrl+E (end of the field) and Ctrl+U (delete to its start), as a terminal sends them."""


def descendants(pid: int) -> list[int]:
    """PIDs of every process below ``pid``."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start the app, start a run through its form, measure, quit; the figures as a dict."""
    columns, rows = (int(n) for n in args.size.split("x"))
    state = Path(tempfile.mkdtemp(prefix="kumotui-cost-"))
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor", COLUMNS=str(columns), LINES=str(rows))
    env.pop("NO_COLOR", None)
    argv = [str(KUMOTUI), "--state-dir", str(state)]
    if args.sysctl_root:
        argv += ["--sysctl-root", args.sysctl_root]
    term = Terminal(argv, columns, rows, env)
    app = psutil.Process(term.pid)
    try:
        # The first screen (tuning, or the guided setup on a first run) offers b in its footer.
        term.wait_for("Bench", timeout=60)
        term.keys("b")
        term.wait_for("Backend")
        time.sleep(1.0)  # the screen's first layout (charts included) before any key
        # e: into the form (Backend); Tab past Sink, Generators on, MTA on and Sink on (Target is
        # disabled) to Messages, clear it (End, Ctrl+U: whatever the form remembered or selected);
        # Duration; Rate, each cleared first; Enter starts.
        clear = (END, CLEAR_LEFT)
        duration = str(args.seconds + args.warmup + 60)
        term.keys("e", *[TAB] * 5, *clear, TAB, *clear, *duration, TAB, *clear, *str(args.rate), ENTER)
        term.wait_for("● running")
        if args.log:
            term.keys("l")
        jobs = descendants(term.pid)
        time.sleep(args.warmup)

        samples: list[dict[str, float]] = []
        start_wall = time.monotonic()
        start_cpu = sum(app.cpu_times()[:2])
        start_bytes = term.written
        last_bytes, last_wall = start_bytes, start_wall
        per_second: list[float] = []
        next_sample = start_wall
        while (now := time.monotonic()) - start_wall < args.seconds:
            time.sleep(1.0)
            now = time.monotonic()
            written = term.written
            per_second.append((written - last_bytes) / (now - last_wall))
            last_bytes, last_wall = written, now
            if now >= next_sample:
                cpu = sum(app.cpu_times()[:2])
                samples.append({"t": now - start_wall, "cpu_s": cpu - start_cpu, "rss": app.memory_info().rss})
                next_sample += args.sample_every
        wall = time.monotonic() - start_wall
        cpu_total = sum(app.cpu_times()[:2]) - start_cpu
        bytes_total = term.written - start_bytes
        still_running = "running" in term.screen_text()

        term.keys("q")  # the app asks first while a run goes: "Quit while a benchmark runs?"
        term.wait_for("Quit while a benchmark runs")
        term.keys("y", pause=0.0)
        deadline = time.monotonic() + 30
        while app.is_running() and app.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        survivors = [pid for pid in jobs if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    finally:
        if app.is_running():
            app.kill()
        os.close(term.fd)
        shutil.rmtree(state, ignore_errors=True)  # the run records of a measurement are not kept

    rss = [s["rss"] for s in samples]
    half = len(rss) // 2
    slope = 0.0
    if len(samples) >= 2:
        # Least-squares slope of RSS over time, in MiB per minute.
        ts = [s["t"] for s in samples]
        mean_t, mean_r = sum(ts) / len(ts), sum(rss) / len(rss)
        den = sum((t - mean_t) ** 2 for t in ts)
        slope = sum((t - mean_t) * (r - mean_r) for t, r in zip(ts, rss, strict=True)) / den * 60 / 2**20
    return {
        "size": args.size,
        "rate": args.rate,
        "log_pane": args.log,
        "seconds": round(wall, 1),
        "cpu_percent_of_one_core": round(cpu_total / wall * 100, 2),
        "terminal_bytes_per_s": round(bytes_total / wall),
        "terminal_bytes_per_s_max_second": round(max(per_second, default=0.0)),
        "rss_mib_first": round(rss[0] / 2**20, 1) if rss else None,
        "rss_mib_last": round(rss[-1] / 2**20, 1) if rss else None,
        "rss_mib_max": round(max(rss) / 2**20, 1) if rss else None,
        "rss_mib_first_half_mean": round(sum(rss[:half]) / max(half, 1) / 2**20, 1) if rss else None,
        "rss_mib_second_half_mean": round(sum(rss[half:]) / max(len(rss) - half, 1) / 2**20, 1) if rss else None,
        "rss_slope_mib_per_min": round(slope, 3),
        "run_still_going_at_end": still_running,
        "job_pids": jobs,
        "jobs_left_after_quit": survivors,
        "rss_series_mib": [round(r / 2**20, 2) for r in rss],
    }


def main() -> int:
    """Measure, print the figures and the budgets; exit 1 when a budget is exceeded."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="120x36", help="terminal COLSxROWS (default 120x36)")
    parser.add_argument("--seconds", type=int, default=60, help="measured period (default 60; 600 for memory)")
    parser.add_argument("--warmup", type=int, default=10, help="seconds into the run before measuring")
    parser.add_argument("--rate", type=int, default=2000, help="the run's --rate cap in msgs/s (default 2000)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between CPU/RSS samples")
    parser.add_argument("--sysctl-root", help="pass --sysctl-root to the app (default: the real /proc/sys)")
    parser.add_argument("--log", action="store_true", help="show the job log pane too (not the default)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    result = measure(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    shown = {k: v for k, v in result.items() if k != "rss_series_mib"}
    print(json.dumps(shown, indent=1))
    failures = []
    if result["cpu_percent_of_one_core"] > CPU_BUDGET:
        failures.append(f"CPU {result['cpu_percent_of_one_core']}% > {CPU_BUDGET}%")
    if result["terminal_bytes_per_s"] > BYTES_BUDGET:
        failures.append(f"terminal {result['terminal_bytes_per_s']} B/s > {BYTES_BUDGET} B/s")
    if result["jobs_left_after_quit"]:
        failures.append(f"jobs left after quit: {result['jobs_left_after_quit']}")
    if not result["run_still_going_at_end"]:
        failures.append("the benchmark was not running for the whole measurement")
    for failure in failures:
        print(f"OVER BUDGET: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
