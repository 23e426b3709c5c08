"""The live panes of the benchmark screen: generator, sink, latency, host, hints, summary.

Each pane shows a :class:`~kumotui.benchlive.LiveFigures` and nothing else:
the numbers and their wording come from :mod:`kumotui.benchlive`, the panes
only choose colours and positions. The app shares the machine it measures
and often runs over a slow SSH link, so every line is a :class:`Readout`
that redraws only when its text or styling changed, and no pane lays the
screen out again on an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from kumotui.bench.hints import Hint
from kumotui.bench.live import HostView, LiveFigures
from kumotui.text.format import (
    format_bytes,
    format_bytes_rate,
    format_compact,
    format_count,
    format_eta,
    format_mmh,
    format_ms,
    format_rate,
    format_size,
)
from kumotui.ui.widgets.glyphs import cpu_bars, trend_arrow


class Readout(Static):
    """A line of live text that redraws only when it changed.

    Textual repaints a widget's whole region on ``update``; at 2-4 updates a
    second over SSH that is most of the bytes sent, so identical text (and
    styling) is not sent again. The layout is left alone: a readout's size
    is fixed by CSS, and a line too long for it ends in an ellipsis rather
    than wrapping (no per-word wrapping work on every update either).
    """

    DEFAULT_CSS = """
    Readout {
        height: 1;
        width: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(
        self,
        content: Content | str = "",
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """Create a readout showing ``content`` until the first :meth:`show`."""
        super().__init__(content, name=name, id=id, classes=classes, markup=False)
        self.shown = content.markup if isinstance(content, Content) else content
        """The markup on screen now, to skip redrawing the same text."""

    def show(self, content: Content) -> None:
        """Show ``content`` unless it is what is already shown."""
        markup = content.markup
        if markup != self.shown:
            self.shown = markup
            self.update(content, layout=False)


class Pane(Horizontal):
    """A labelled block: the name in a narrow left column, the readings beside it."""

    DEFAULT_CSS = """
    Pane {
        height: auto;
        & > .pane--label {
            width: 10;
            color: $text-muted;
            text-style: bold;
        }
        & > .pane--body {
            width: 1fr;
            height: auto;
        }
    }
    """

    LABEL = ""
    """The pane's name in the left column."""

    def compose(self) -> ComposeResult:
        """The label, then the body's lines."""
        yield Label(self.LABEL, classes="pane--label")
        with Vertical(classes="pane--body"):
            yield from self.compose_body()

    def compose_body(self) -> ComposeResult:
        """The readouts of this pane."""
        yield from ()

    def show(self, figures: LiveFigures) -> None:
        """Show one tick's figures."""

    def reset(self) -> None:
        """Forget the last run's figures (a new run is starting, or failed to)."""
        readouts = list(self.query(Readout))
        for index, readout in enumerate(readouts):
            readout.show(NOT_STARTED if index == 0 else Content(""))


NOT_STARTED = Content.from_markup("[$text-muted]not started[/]")


def _fmt(template: str, **values: object) -> Content:
    return Content.from_markup(template, **values)


class GeneratorPane(Pane):
    """Progress with ETA, sent and failed, the labelled rates (now, steady, whole run)."""

    LABEL = "Generator"
    DEFAULT_CSS = """
    GeneratorPane {
        #gen-progress-row { height: 1; }
        #gen-progress { width: 1fr; }
        #gen-progress Bar { width: 1fr; }
        #gen-eta { width: 14; padding-left: 1; }
        #gen-counts, #gen-rates { height: 1; }
    }
    """

    def compose_body(self) -> ComposeResult:
        """Counters row, progress row, rates row (the msgs/s chart is below the panes)."""
        yield Readout(NOT_STARTED, id="gen-counts")
        with Horizontal(id="gen-progress-row"):
            yield ProgressBar(total=1.0, show_eta=False, id="gen-progress")
            yield Readout("", id="gen-eta")
        yield Readout("", id="gen-rates")
        yield Readout("", id="gen-hosts")

    def on_mount(self) -> None:
        """The per-host line shows only for generators on several hosts."""
        self.query_one("#gen-hosts", Readout).display = False

    def reset(self) -> None:
        """Back to "not started": empty bar, no ETA, no rates."""
        super().reset()
        self.query_one("#gen-progress", ProgressBar).update(progress=0)
        self.query_one("#gen-hosts", Readout).display = False

    def show(self, figures: LiveFigures) -> None:
        """Move the bar, update the counters and rates."""
        bar = self.query_one("#gen-progress", ProgressBar)
        if bar.progress != round(figures.progress, 3):
            bar.update(progress=round(figures.progress, 3))
        eta = _fmt("ETA [b]$eta[/b]", eta=format_eta(figures.eta)) if figures.eta is not None else Content("")
        self.query_one("#gen-eta", Readout).show(eta)
        failed_style = "$text-error b" if figures.failed else "$text-muted"
        self.query_one("#gen-counts", Readout).show(
            _fmt(
                f"sent [b]$sent[/b] · [{failed_style}]failed $failed[/] · $conns conns",
                sent=format_count(figures.sent),
                failed=format_count(figures.failed),
                conns=format_count(figures.gen_connections),
            )
        )
        if figures.steady_rate is None:
            steady = _fmt("[$text-muted]steady after $w s[/]", w=f"{figures.warmup:g}")
        else:
            steady = _fmt(
                "steady [b]$rate[/b] = [$text-accent b]$mmh MMH[/]",
                rate=format_rate(figures.steady_rate),
                mmh=format_mmh(figures.steady_mmh),
            )
        self.query_one("#gen-rates", Readout).show(
            _fmt("msgs/s now $now · ", now=format_rate(figures.rate))
            + steady
            + _fmt(" · whole run $whole", whole=format_rate(figures.whole_rate))
        )
        senders = [view for view in figures.hosts if view.sent is not None]
        per_host = self.query_one("#gen-hosts", Readout)
        per_host.display = len(senders) > 1
        if len(senders) > 1:
            per_host.show(
                _fmt("per host: ")
                + Content(" · ").join(
                    _fmt(
                        "$host [b]$sent[/b] at $rate/s",
                        host=view.name,
                        sent=format_count(view.sent),
                        rate=format_rate(view.rate),
                    )
                    for view in senders
                )
                + _fmt(" · total [b]$rate[/b]/s", rate=format_rate(figures.rate))
            )


REFUSAL_WORDS = {
    "rejected_mail": "at MAIL",
    "rejected_rcpt": "rcpts",
    "rejected_data": "at data",
    "aborted": "aborted",
    "timeouts": "timeouts",
}
"""The sink's refusal counters as the pane names them: messages refused at MAIL, recipients
refused at RCPT, messages refused at (end of) data, transactions cut short, idle sessions closed."""


class SinkPane(Pane):
    """What the sink counted: received (its own count), its rate now, open connections, refusals by kind."""

    LABEL = "Sink"

    def compose_body(self) -> ComposeResult:
        """Through an MTA, the path first; then counts, then refusals."""
        yield Readout("", id="sink-path")
        yield Readout(NOT_STARTED, id="sink-line")
        yield Readout("", id="sink-refused")
        yield Readout("", id="sink-pushback")

    def reset(self) -> None:
        """Back to "not started" (the path and pushback lines hide until a run shows them)."""
        super().reset()
        self.query_one("#sink-path", Readout).display = False
        self.query_one("#sink-pushback", Readout).display = False
        self.query_one("#sink-line", Readout).show(NOT_STARTED)

    def on_mount(self) -> None:
        """The path line shows only for a run through an MTA, the pushback line only once a sink pushed back."""
        self.query_one("#sink-path", Readout).display = False
        self.query_one("#sink-pushback", Readout).display = False

    def show_path(self, figures: LiveFigures) -> None:
        """Through an MTA: injected → in the MTA → delivered, and end-to-end latency."""
        path = self.query_one("#sink-path", Readout)
        path.display = figures.delivered is not None
        if figures.delivered is None:
            return
        lat = figures.delivery_latency
        latency = (
            _fmt(
                " · end to end p50 $p50 · p99 [b]$p99[/b] ms",
                p50=format_ms(lat.get("p50")),
                p99=format_ms(lat.get("p99")),
            )
            if lat
            else Content("")
        )
        backlog_style = "$text-warning b" if figures.in_mta else "b"
        path.show(
            _fmt(
                f"injected [b]$sent[/b] → in the MTA [{backlog_style}]$backlog[/] → delivered [b]$delivered[/b]",
                sent=format_count(figures.sent),
                backlog=format_count(figures.in_mta),
                delivered=format_count(figures.delivered),
            )
            + latency
        )

    def show(self, figures: LiveFigures) -> None:
        """Received, rate, connections, refusals; or why there is no count of our own."""
        self.show_path(figures)
        line = self.query_one("#sink-line", Readout)
        if figures.received is None:
            line.show(_fmt("[$text-muted]$target counts for itself (not a sink of ours)[/]", target=figures.target))
            return
        approx = "≈" if figures.received_skewed else ""
        line.show(
            _fmt(
                "received [b]$approx$received[/b] · msgs/s now $rate · $conns open conns",
                approx=approx,
                received=format_count(figures.received),
                rate=format_rate(figures.sink_rate),
                conns=format_count(figures.sink_connections),
            )
        )
        refused = figures.sink_refused
        parts = " · ".join(f"{word} {format_count(refused.get(key, 0))}" for key, word in REFUSAL_WORDS.items())
        style = "$text-warning" if any(refused.values()) else "$text-muted"
        self.query_one("#sink-refused", Readout).show(_fmt(f"[{style}]refused: $parts[/]", parts=parts))
        pushback = self.query_one("#sink-pushback", Readout)
        pushback.display = bool(figures.pushback)
        pushback.show(_fmt("[$text-warning]$line[/]", line=figures.pushback))


class MtaPane(Pane):
    """The MTA under test's own figures (KumoMTA's /metrics, Postfix's queue); shown for runs through one."""

    LABEL = "MTA"

    def compose_body(self) -> ComposeResult:
        """One line."""
        yield Readout(NOT_STARTED, id="mta-line")

    def on_mount(self) -> None:
        """Hidden until a run through an MTA shows it."""
        self.display = False

    def reset(self) -> None:
        """Hidden again for the next run."""
        super().reset()
        self.display = False

    def show(self, figures: LiveFigures) -> None:
        """Connections, counters and queues, or why there are none."""
        self.display = figures.through is not None
        if not self.display:
            return
        line = self.query_one("#mta-line", Readout)
        view = figures.mta
        if view is None or view.error:
            reason = view.error if view is not None else figures.mta_source
            line.show(_fmt("[$text-muted]$reason[/]", reason=reason))
            return
        line.show(_fmt("$kind: $parts", kind=view.kind, parts=view.text()))


class LatencyPane(Pane):
    """Transaction latency percentiles and which way p99 is going (the latency chart is below the panes)."""

    LABEL = "Latency"

    def compose_body(self) -> ComposeResult:
        """One line of figures."""
        yield Readout(Content.from_markup("[$text-muted]–[/]"), id="latency-line")

    def show(self, figures: LiveFigures) -> None:
        """p50/p95/p99 since the start and which way p99 is going."""
        lat = figures.latency
        direction = figures.latency_trend
        arrow = f" {trend_arrow(direction)} {direction}" if direction else ""
        style = "$text-warning" if direction == "rising" else "$text-muted"
        self.query_one("#latency-line", Readout).show(
            _fmt(
                f"p50 $p50 · p95 $p95 · p99 [b]$p99[/b] ms[{style}]$arrow[/]",
                p50=format_ms(lat.get("p50")),
                p95=format_ms(lat.get("p95")),
                p99=format_ms(lat.get("p99")),
                arrow=arrow,
            )
        )


class HostPane(Pane):
    """One host of the run: who read it, CPU per core and memory, network and TCP, files and overflows.

    With one host on this machine it reads as it always did ("Host", three
    lines); when the run names its hosts, the label is the host's name and
    a first line says what runs there, who read the counters (the agent's
    pid on a remote host) and what the reading cost.
    """

    LABEL = "Host"
    DEFAULT_CSS = """
    HostPane {
        & Readout { height: 1; }
    }
    """

    def __init__(
        self,
        host: str = "local",
        *,
        named: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """A pane for ``host`` (as the run names it), labelled with its name when ``named``."""
        super().__init__(name=name, id=id, classes=classes)
        self.host = host
        if named:
            self.LABEL = host[:9]

    def compose_body(self) -> ComposeResult:
        """Four lines: who and what (when hosts are named); CPU and memory; network and TCP; files."""
        yield Readout("", classes="host-who")
        yield Readout(Content.from_markup("[$text-muted]not started[/]"), classes="host-cpu")
        yield Readout("", classes="host-net")
        yield Readout("", classes="host-files")

    def on_mount(self) -> None:
        """The first line shows only when the run names its hosts."""
        self.query_one(".host-who", Readout).display = False

    def reset(self) -> None:
        """Back to "not started" (a new run on the same hosts)."""
        for readout in self.query(Readout):
            readout.show(Content(""))
        self.query_one(".host-cpu", Readout).show(NOT_STARTED)

    def show(self, figures: LiveFigures) -> None:
        """This pane's host in one tick's figures."""
        view = next((v for v in figures.hosts if v.name == self.host), None)
        if view is not None:
            self.show_view(view, figures, named=figures.named_hosts)

    def show_view(self, view: HostView, figures: LiveFigures, *, named: bool, place: str = "") -> None:
        """One host's reading (``place``: "2/3" when the screen shows one pane at a time)."""
        who = self.query_one(".host-who", Readout)
        who.display = named
        if named:
            who.show(_who_line(view, place))
        host = view.reading.stats
        if host is None:
            if view.reading.error:
                self.query_one(".host-cpu", Readout).show(
                    _fmt("[$text-error b]no reading: $error[/]", error=view.reading.error)
                )
            return
        cores = host.cpu_per_core
        average = sum(cores) / len(cores) if cores else 0.0
        width = max(8, self.size.width - 40) if self.size.width else 32
        gen = ""
        if view.gen_cpu is not None:
            gen = f" · generator {view.gen_cpu.busiest:.0f}% of a core"
        self.query_one(".host-cpu", Readout).show(
            _fmt(
                "CPU [$text-accent]$bars[/] [b]$avg%[/b]$gen · mem $used/$total",
                bars=cpu_bars(cores, width),
                avg=f"{average:.0f}",
                gen=gen,
                used=format_bytes(host.memory_used),
                total=format_bytes(host.memory_total),
            )
        )
        tw_of = f"/{view.ports:,} ports" if view.ports else ""
        self.query_one(".host-net", Readout).show(
            _fmt(
                "$nic ↓$rx ↑$tx · TCP est $est · TIME_WAIT [b]$tw[/b]$of",
                nic=host.interface or "net",
                rx=format_bytes_rate(host.rx_bytes_per_s),
                tx=format_bytes_rate(host.tx_bytes_per_s),
                est=format_count(host.tcp_established),
                tw=format_count(host.tcp_time_wait),
                of=tw_of,
            )
        )
        overflow_style = "$text-error b" if view.listen_overflows else "$text-muted"
        if view.gen_fds is not None or not named:
            limit = _fmt(
                "generator fds $fds/$nofile", fds=format_count(view.gen_fds), nofile=format_compact(view.nofile)
            )
        else:
            limit = _fmt("nofile limit $nofile", nofile=format_compact(view.nofile))
        self.query_one(".host-files", Readout).show(
            _fmt("files $files/$max · ", files=format_count(host.open_files), max=format_compact(host.open_files_max))
            + limit
            + _fmt(f" · [{overflow_style}]listen overflows +$over[/]", over=format_count(view.listen_overflows))
        )


def _who_line(view: HostView, place: str) -> Content:
    """A named host's first line: name, roles, its generator's share now, who read it and at what cost."""
    reading = view.reading
    sender = ""
    if view.sent is not None:
        sender = f" · sent {format_count(view.sent)} at {format_rate(view.rate)}/s"
    reader = ""
    if reading.reader_pid is not None:
        cost = f"{format_ms(reading.seconds * 1000)} ms" + (f", {format_size(reading.bytes)}" if reading.bytes else "")
        reader = f" · read by pid {reading.reader_pid} ({cost})"
    shown = f" ({place}, n: next)" if place else ""
    return _fmt(
        "[b]$host[/b][$text-accent]$shown[/] [$text-muted]$roles[/]$sender[$text-muted]$reader[/]",
        host=view.name,
        roles=" + ".join(view.roles),
        sender=sender,
        reader=reader,
        shown=shown,
    )


class HostPanes(Vertical):
    """One :class:`HostPane` per host of the run, stacked; in a short terminal one at a time
    (the screen's ``n`` shows the next, and the stylesheet hides the others)."""

    DEFAULT_CSS = """
    HostPanes {
        height: auto;
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        """Start with one pane for this machine (what a run without other hosts shows)."""
        super().__init__(name=name, id=id, classes=classes)
        self.hosts: list[str] = ["local"]
        self.current = 0
        """The pane shown when only one is (its index in :attr:`hosts`)."""
        self.figures: LiveFigures | None = None

    def compose(self) -> ComposeResult:
        """This machine's pane until a run places its hosts."""
        yield HostPane("local", classes="-current")

    async def place(self, hosts: Sequence[str]) -> None:
        """One pane per host of the run starting now (kept when the hosts did not change)."""
        self.figures = None
        if list(hosts) == self.hosts:
            for pane in self.query(HostPane):
                pane.reset()
            return
        self.hosts, self.current = list(hosts), 0
        named = len(hosts) > 1 or hosts[0] != "local"
        await self.remove_children()
        await self.mount_all(
            [HostPane(host, named=named, classes="-current" if index == 0 else "") for index, host in enumerate(hosts)]
        )

    def show(self, figures: LiveFigures) -> None:
        """Every pane's host in this tick's figures."""
        self.figures = figures
        single = self.screen.has_class("-short") and len(self.hosts) > 1
        panes = list(self.query(HostPane))
        for index, pane in enumerate(panes):
            view = next((v for v in figures.hosts if v.name == pane.host), None)
            if view is not None:
                place = f"{index + 1}/{len(panes)}" if single else ""
                pane.show_view(view, figures, named=figures.named_hosts, place=place)

    def next_host(self) -> str:
        """Show the next host's pane (in a short terminal, where one shows at a time); its name."""
        panes = list(self.query(HostPane))
        self.current = (self.current + 1) % len(panes)
        for index, pane in enumerate(panes):
            pane.set_class(index == self.current, "-current")
        if self.figures is not None:
            self.show(self.figures)
        return panes[self.current].host


def hint_prompt(hint: Hint, active: bool) -> Content:
    """A hint as the list shows it: title and where to tune on the first line, the detail below."""
    icon = "⚠" if hint.severity == "warn" else "ℹ"
    style = ("$text-warning" if hint.severity == "warn" else "$text-accent") if active else "$text-muted"
    where = ""
    if hint.param and hint.host is None:  # a host's hint names its parameter, and where, in its title
        where = f" → {hint.param}"
    seen = "" if active else " (earlier in this run)"
    return Content.from_markup(
        f"[{style} b]$icon $title[/][$text-muted]$seen$where[/]\n[$text-muted]$detail[/]",
        icon=icon,
        title=hint.title,
        seen=seen,
        where=where,
        detail=hint.detail,
    )


class HintList(OptionList):
    """Symptoms this run showed, each tied to the parameter (or flag) that changes it.

    Options are keyed by hint id and updated in place; Enter on one asks the
    screen to jump to its parameter.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Tune", id="hint-tune", tooltip="Go to the highlighted hint's parameter"),
    ]

    DEFAULT_CSS = """
    HintList {
        height: auto;
        max-height: 8;
        border: none;
        padding: 0;
        background: $surface;
        &:focus { border: none; }
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        """Create an empty list."""
        super().__init__(name=name, id=id, classes=classes, compact=True)
        self.hints: dict[str, Hint] = {}
        self._prompts: dict[str, str] = {}

    def show_hints(self, hints: Sequence[Hint], active: frozenset[str]) -> None:
        """Add new hints and re-word changed ones; the highlight stays on the same hint."""
        order = [hint.id for hint in hints]
        known = [hint_id for hint_id in self.hints if hint_id in order]
        if known != order[: len(known)]:
            # A warning arrived after a note: rebuild in the new order (rare, at most once per rule).
            current = self.current
            self.reset()
            self.show_hints(hints, active)
            if current is not None and current.id in self.hints:
                self.highlighted = order.index(current.id)
            return
        for hint in hints:
            prompt = hint_prompt(hint, hint.id in active)
            markup = prompt.markup
            if hint.id not in self.hints:
                self.add_option(Option(prompt, id=hint.id))
            elif self._prompts.get(hint.id) != markup:
                self.replace_option_prompt(hint.id, prompt)
            self.hints[hint.id] = hint
            self._prompts[hint.id] = markup
        if self.highlighted is None and self.option_count:
            self.highlighted = 0
        self.display = bool(self.option_count)

    def reset(self) -> None:
        """Forget every hint (a new run starts)."""
        self.clear_options()
        self.hints.clear()
        self._prompts.clear()
        self.display = False

    @property
    def current(self) -> Hint | None:
        """The highlighted hint."""
        if self.highlighted is None or not self.option_count:
            return None
        option_id = self.get_option_at_index(self.highlighted).id
        return self.hints.get(option_id or "")
