"""The benchmark screen's form as plain data: every field a string, checked into options."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from kumotui.backends import Backend, SinkRequest, resolve
from kumotui.backends.kumomta.install import SINK_PORT
from kumotui.backends.lines import parse_size
from kumotui.bench.live import DEFAULT_DURATION
from kumotui.bench.options import BenchOptions, check_sink, parse_listen, resolve_responses
from kumotui.bench.placement import LOCAL, Roles, mta_host_of
from kumotui.bench.records import check_label
from kumotui.errors import KumotuiError
from kumotui.hosts.address import HostSpec
from kumotui.hosts.local import atomic_write, require_private_dir
from kumotui.text.format import format_size

SINK_CHOICES: dict[str, str] = {"local": "start one", "target": "use a target"}
"""How the run gets its sink: started with the chosen backend, or an existing ``host:port``."""


FIELD_FLAGS: dict[str, str] = {
    "backend": "--backend",
    "target": "--target",
    "messages": "--messages",
    "duration": "--duration",
    "rate": "--rate",
    "concurrency": "--concurrency",
    "body_size": "--body-size",
    "workers": "--workers",
    "sink_workers": "--sink-workers",
    "through": "--through",
    "sink_listen": "--listen",
    "mta_metrics": "--mta-metrics",
    "label": "--label",
    "responses": "--responses",
    "generator_hosts": "--host",
    "sink_host": "--sink-host",
    "mta_host": "--mta-host",
    "redirect_port25": "--redirect-port25",
}
"""Each form field and the ``kumotui bench`` flag it stands for (errors name the flag)."""


def host_spec(text: str, flag: str) -> str | None:
    """One host as a role's spec: None for this machine (empty or ``local``), else ``[user@]host[:port]``
    written the way the connection names it (so readings and hints match the role)."""
    stripped = text.strip()
    if stripped in ("", LOCAL):
        return None
    try:
        return str(HostSpec.parse(stripped))
    except KumotuiError as error:
        raise KumotuiError(str(error).replace("--host", flag, 1)) from None


def _number(text: str, flag: str, *, whole: bool) -> float | None:
    """A form field as a number; empty means not given. Separators (``100,000``) are allowed."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned:
        return None
    try:
        value = int(cleaned) if whole else float(cleaned)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise KumotuiError(f"{flag} {text.strip()!r}: expected {kind}") from None
    if not math.isfinite(value):
        raise KumotuiError(f"{flag} {text.strip()!r}: expected a finite number")
    return value


@dataclass(frozen=True)
class BenchForm:
    """The benchmark screen's form as typed: every field a string, checked by :meth:`options`."""

    backend: str = "builtin"
    sink: str = "local"
    """A key of :data:`SINK_CHOICES`."""
    target: str = ""
    """``host:port`` of an existing sink, when ``sink`` is ``target``."""
    messages: str = "100000"
    duration: str = ""
    """Seconds; empty for no deadline (60 s when messages is empty too)."""
    rate: str = ""
    """At most this many messages per second; empty for as fast as possible."""
    concurrency: str = "50"
    body_size: str = "1KB"
    workers: str = "1"
    sink_workers: str = "1"
    """Processes of a started built-in sink."""
    label: str = ""
    """A note saved with the run (``before tuning``)."""
    through: str = ""
    """``HOST:PORT`` of the MTA under test, or empty to send straight to the sink (a calibration)."""
    mta_metrics: str = ""
    """``HOST:PORT`` of the MTA's (kumod's) HTTP listener for its /metrics; empty: found from its greeting."""
    sink_listen: str = ""
    """Where a started sink listens, ``ADDR:PORT``; empty: a free port, or 2026 for a run through an MTA
    (KumoMTA's sink port, where the MTA's routing points)."""
    responses: str = ""
    """A Smart Sink responses file for a started built-in or kumomta sink (``providers``: kumotui's own); empty:
    the sink accepts everything."""
    generator_hosts: str = ""
    """Where the generators run: hosts separated by commas (``local`` is this machine); empty: this machine.
    Several hosts share the run's totals (``bench --host A --host B``)."""
    sink_host: str = ""
    """Where a started sink runs (``--sink-host``); empty: this machine."""
    mta_host: str = ""
    """Where the MTA under test runs (``--mta-host``), read over SSH; empty: the first generator's host for a
    loopback Through MTA, else not read."""

    def roles(self) -> Roles:
        """Each role's host, checked as the CLI checks ``--host`` and ``--sink-host``; KumotuiError naming the flag."""
        parts = [part for part in self.generator_hosts.split(",") if part.strip()]
        generators = tuple(host_spec(part, "--host") for part in parts) or (None,)
        starts_sink = self.sink == "local"
        sink = host_spec(self.sink_host, "--sink-host")
        if sink is not None and not starts_sink:
            raise KumotuiError("--sink-host: kumotui starts the sink there; choose 'start one' as the sink")
        named = self.mta_host.strip()
        mta = (host_spec(named, "--mta-host") or LOCAL) if named else None  # "local" is a placement too
        if named and not self.through.strip():
            raise KumotuiError("--mta-host: it names where the MTA under test runs; fill in Through MTA too")
        through = self.through.strip() or None
        roles = Roles(
            generators=generators,
            sink=sink,
            starts_sink=starts_sink,
            mta=mta_host_of(mta, through, generators),
        ).check()
        if len(generators) > 1 and resolve(self.backend) is not Backend.BUILTIN:
            raise KumotuiError(
                f"--host: generators on {len(generators)} hosts need the builtin backend "
                "(its counters and latency histograms merge exactly)"
            )
        return roles

    def sink_request(self) -> SinkRequest:
        """The sink to start (when ``sink`` is ``local``): its workers; KumotuiError naming the flag."""
        workers = _number(self.sink_workers, "--sink-workers", whole=True)
        host, port = parse_listen(self.sink_listen.strip(), "--listen") if self.sink_listen.strip() else ("", None)
        if port is None and self.through.strip():
            host, port = "127.0.0.1", SINK_PORT
        remote = host_spec(self.sink_host, "--sink-host") is not None
        if remote and not self.sink_listen.strip() and resolve(self.backend) is Backend.BUILTIN:
            host = "0.0.0.0"  # a sink on another host is reached over the network (as ``bench --sink-host``)
        responses = resolve_responses(self.responses.strip() or None)
        request = SinkRequest(
            host=host or "127.0.0.1", port=port, workers=int(workers) if workers is not None else 1, responses=responses
        )
        backend = resolve(self.backend) if responses else "builtin"
        return check_sink(request, workers_flag="--sink-workers", backend=backend)

    def run_label(self) -> str:
        """The label, checked; KumotuiError naming the flag."""
        try:
            return check_label(self.label)
        except KumotuiError as error:
            raise KumotuiError(f"--label: {error}") from None

    def options(self) -> BenchOptions:
        """The validated request; KumotuiError naming the flag of the first bad field."""
        resolve(self.backend)
        if self.sink not in SINK_CHOICES:
            raise KumotuiError(f"sink {self.sink!r}: choose {' or '.join(SINK_CHOICES)}")
        local = self.sink == "local"
        target = None if local else self.target.strip()
        if target == "":
            raise KumotuiError("--target: give the HOST:PORT of a running sink, or start one")
        if self.through.strip() and not local:
            raise KumotuiError("--through: a run through an MTA counts at a sink kumotui starts: choose 'start one'")
        messages = _number(self.messages, "--messages", whole=True)
        concurrency = _number(self.concurrency, "--concurrency", whole=True)
        workers = _number(self.workers, "--workers", whole=True)
        self.sink_request()
        self.run_label()
        self.roles()
        return BenchOptions(
            target=target,
            local_sink=local,
            messages=int(messages) if messages is not None else None,
            duration=_number(self.duration, "--duration", whole=False),
            rate=_number(self.rate, "--rate", whole=False),
            concurrency=int(concurrency) if concurrency is not None else 50,
            body_size=parse_size(self.body_size.strip() or "1KB"),
            workers=int(workers) if workers is not None else 1,
            through=self.through.strip() or None,
            mta_metrics=self.mta_metrics.strip() or None,
        ).validate()

    def describe(self, options: BenchOptions, target: str = "") -> str:
        """The run in one line for the status bar: backend, sink, amount, size, connections."""
        where = target or options.target or ""
        sink = f"→ {where}" if where else "→ local sink"
        if options.through:
            sink = f"→ MTA {options.through} {sink}"
        if options.messages is not None and options.duration is not None:
            amount = f"{options.messages:,} msgs or {options.duration:g} s"
        elif options.messages is not None:
            amount = f"{options.messages:,} msgs"
        else:
            amount = f"{options.duration or DEFAULT_DURATION:g} s"
        parts = [f"{self.backend} {sink}", amount, format_size(options.body_size), f"{options.concurrency:,} conns"]
        if options.rate is not None:
            parts.append(f"≤{options.rate:,.0f}/s")
        if options.workers > 1:
            parts.append(f"{options.workers} workers")
        return " · ".join(parts)


def field_for_error(message: str) -> str | None:
    """The form field an error message is about (it starts with the field's flag), if any."""
    for name, flag in FIELD_FLAGS.items():
        if message.startswith(flag):
            return name
    return None


FIELD_LABELS: dict[str, str] = {
    "backend": "Backend",
    "sink": "Sink",
    "target": "Target",
    "messages": "Messages",
    "duration": "Duration s",
    "rate": "Rate/s",
    "concurrency": "Concurrency",
    "body_size": "Body size",
    "workers": "Workers",
    "sink_workers": "Sink workers",
    "through": "Through MTA",
    "sink_listen": "Sink at",
    "mta_metrics": "Metrics",
    "label": "Label",
    "responses": "Responses",
    "generator_hosts": "Generators on",
    "sink_host": "Sink on",
    "mta_host": "MTA on",
    "redirect_port25": "Redirect port 25",
}
"""Each form field's label on the benchmark screen, as errors there name it."""


def for_the_form(message: str) -> str:
    """A core error about flags (``--body-size '12XB': ...``) worded with the form's labels instead.

    The core's checks are the CLI's, so their messages name flags; on the
    screen the person typed into a field called "Body size", not a flag.
    Flags no field stands for (``--local-sink``) stay as they are.
    """
    labels = {FIELD_FLAGS[name]: label for name, label in FIELD_LABELS.items() if name in FIELD_FLAGS}
    return _FLAG.sub(lambda match: labels.get(match.group(0), match.group(0)), message)


_FLAG = re.compile(r"--[a-z][a-z-]*")


FORM_FILE = "bench-form.json"
"""The last form values that started a run, in the state dir (private, like every file there)."""
FORM_FIELD_LIMIT = 200
"""Characters a remembered field may have (longer: the file was not written by kumotui)."""


def form_path(state_dir: Path) -> Path:
    """Where the remembered form lives."""
    return state_dir / FORM_FILE


def save_form(state_dir: Path, form: BenchForm) -> None:
    """Remember ``form`` for the next time the screen opens (0600, written whole)."""
    require_private_dir(state_dir)
    atomic_write(form_path(state_dir), json.dumps(asdict(form), indent=1) + "\n", mode=0o600)


def load_form(state_dir: Path) -> tuple[BenchForm, str]:
    """The remembered form, or the defaults; and why the file was not used (empty when it was, or is absent).

    Every value is checked before it reaches a field: a known field name, a
    string, printable, not overlong, and a ``sink`` among the choices. The
    values are then checked again by :meth:`BenchForm.options` like typed ones.
    """
    path = form_path(state_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return BenchForm(), ""
    except (OSError, ValueError) as error:
        return BenchForm(), f"{path}: not read ({error}); the form shows the defaults"
    if not isinstance(data, dict):
        return BenchForm(), f"{path}: expected a JSON object; the form shows the defaults"
    known = {f.name for f in fields(BenchForm)}
    values: dict[str, str] = {}
    for key, value in data.items():
        if key not in known:
            return BenchForm(), f"{path}: unknown field {key!r}; the form shows the defaults"
        if not isinstance(value, str) or len(value) > FORM_FIELD_LIMIT or not value.isprintable():
            return BenchForm(), f"{path}: field {key!r} is not a short line of text; the form shows the defaults"
        values[key] = value
    if values.get("sink", "local") not in SINK_CHOICES:
        return BenchForm(), f"{path}: sink must be one of {', '.join(SINK_CHOICES)}; the form shows the defaults"
    return BenchForm(**values), ""
