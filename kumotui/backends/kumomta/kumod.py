"""kumod as a sink: its command line, its start-up lines on stderr, and the sink job.

Readiness is the liveness URL answering 200 (never "initialization
complete" alone: a failed start can print it too)."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kumotui.backends import SinkRequest
from kumotui.backends.job import Job
from kumotui.backends.kumomta.install import DEFAULT_KUMOD_USER, SINK_PORT
from kumotui.backends.kumomta.metrics import KumodSinkSampler, check_liveness, fetch_metrics
from kumotui.backends.kumomta.policy import write_sink_policy
from kumotui.backends.lines import LineSplitter, strip_ansi
from kumotui.backends.process import Launcher
from kumotui.backends.samples import Role, Sample, Summary, active_summary
from kumotui.engines import smtp_responses
from kumotui.engines.smtp_responses import Responses
from kumotui.errors import KumotuiError


def kumod_command(
    kumod: Path | str,
    policy: Path | str,
    *,
    as_root: bool | None = None,
    user: str = DEFAULT_KUMOD_USER,
) -> list[str]:
    """kumod's argument list for a sink.

    Args:
        kumod: the binary (``KumoTools.kumod``).
        policy: the file from :func:`write_sink_policy`.
        as_root: whether it will run as root (default: whether this process
            is root); kumod refuses to start as root without ``--user``.
        user: the account to drop to when root.
    """
    root = os.geteuid() == 0 if as_root is None else as_root
    command = [str(kumod), "--policy", str(policy)]
    if root:
        command += ["--user", user]
    return command


KumodEventKind = Literal["smtp_listener", "http_listener", "initialized", "failed", "shutdown"]


@dataclass(frozen=True)
class KumodEvent:
    """Something kumod's stderr said about its start or stop."""

    kind: KumodEventKind
    detail: str
    """The listener's address, the failure's text, or the whole line."""


_KUMOD_LINES: tuple[tuple[KumodEventKind, re.Pattern[str]], ...] = (
    ("failed", re.compile(r"problem initializing:\s*(.*?)\s*$")),
    ("smtp_listener", re.compile(r"smtp listener on (\S+)\s*$")),
    ("http_listener", re.compile(r"http listener on (\S+)\s*$")),
    ("initialized", re.compile(r"(initialization complete)\s*$")),
    ("shutdown", re.compile(r"(Shutdown completed OK!)")),
)


class KumodStderr:
    """Reads kumod's stderr for its readiness and failure lines.

    ``initialization complete`` can appear even after a failed start, so
    it is recorded but never trusted alone: readiness is the liveness
    endpoint (:func:`check_liveness`); a ``problem initializing:`` line, in
    any order, means the start failed.
    """

    def __init__(self) -> None:
        """Start with nothing seen."""
        self._lines = LineSplitter()
        self.smtp_listeners: list[str] = []
        self.http_listeners: list[str] = []
        self.initialized = False
        self.failure: str | None = None
        self.shutdown_ok = False

    def feed(self, data: bytes) -> list[KumodEvent]:
        """Events in the lines completed by ``data``."""
        return [event for line in self._lines.feed(data) if (event := self._line(line))]

    def finish(self) -> list[KumodEvent]:
        """Events in a last unterminated line, once the stream has closed."""
        return [event for line in self._lines.flush() if (event := self._line(line))]

    def _line(self, raw: str) -> KumodEvent | None:
        line = strip_ansi(raw)
        for kind, pattern in _KUMOD_LINES:
            match = pattern.search(line)
            if match:
                self._record(kind, match.group(1))
                return KumodEvent(kind, match.group(1))
        return None

    def _record(self, kind: KumodEventKind, detail: str) -> None:
        if kind == "failed":
            self.failure = self.failure or detail or "kumod did not say why"
        elif kind == "smtp_listener":
            self.smtp_listeners.append(detail)
        elif kind == "http_listener":
            self.http_listeners.append(detail)
        elif kind == "initialized":
            self.initialized = True
        else:
            self.shutdown_ok = True


def _responses(path: str | None) -> Responses | None:
    """The request's responses file, parsed for the policy (the same parser as the built-in sink's).

    Raises:
        KumotuiError: it cannot be read or is not a responses file (naming file, table, key).
    """
    if path is None:
        return None
    try:
        return smtp_responses.load(path)
    except smtp_responses.ResponsesError as error:
        raise KumotuiError(f"--responses {error}") from None


class KumodSinkJob(Job):
    """kumod running kumotui's sink policy.

    With a responses file (``request.responses``) the policy answers as a
    Smart Sink (:mod:`.smart`). Readiness is the liveness URL answering 200 (never "initialization
    complete" alone: a failed start can print it too); a ``problem
    initializing`` line fails the start with its text. Counters come from
    ``/metrics``, polled by :meth:`reading` (about once a second is enough).
    The policy and kumod's spools live in a private temporary directory the
    job removes when it stops, and its watchdog removes when kumod ends,
    however kumotui ended.
    """

    role: Role = "sink"
    backend = "kumomta"

    def __init__(
        self, launcher: Launcher, kumod: str | Path, request: SinkRequest, http_host: str = "127.0.0.1"
    ) -> None:
        self.port = request.port or SINK_PORT
        self._tempdir: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
            prefix="kumotui-sink-", ignore_cleanup_errors=True
        )
        owner = request.kumod_user if os.geteuid() == 0 else None  # the policy file is written here
        try:
            policy = write_sink_policy(
                Path(self._tempdir.name),
                port=self.port,
                http_port=request.http_port,
                listen_host=request.host,
                owner=owner,
                responses=_responses(request.responses),
            )
        except BaseException:
            self._remove_tempdir()
            raise
        argv = kumod_command(kumod, policy, as_root=launcher.is_root(), user=request.kumod_user)
        # The watchdog removes the directory even if kumotui is SIGKILLed; only a
        # local one (on a remote host the same path would name something else).
        here = None if launcher.remote else Path(self._tempdir.name)
        super().__init__(launcher, argv, name="kumod", remove_after=here)
        self.http = (http_host, request.http_port)
        self._stderr_parser = KumodStderr()
        self._sampler = KumodSinkSampler()
        self._latest: Sample | None = None

    def on_stderr(self, data: bytes) -> None:
        self._stderr_parser.feed(data)
        if self._stderr_parser.failure:
            self.fail(self._stderr_parser.failure)

    def poll_ready(self) -> None:
        if self._error is None and check_liveness(*self.http, timeout=0.5).ready:
            self.mark_ready()

    def ready_on_exit(self) -> bool:
        return False

    def reading(self) -> Sample | None:
        try:
            text = fetch_metrics(*self.http, timeout=1.0)
        except KumotuiError:
            return self._latest
        self._latest = self._sampler.update(self.elapsed(), text)
        return self._latest

    def summary(self, series: list[Sample]) -> Summary | None:
        return active_summary("sink", series) if series else None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop kumod, then remove its policy and spools."""
        super().stop(timeout)
        self._remove_tempdir()

    def _remove_tempdir(self) -> None:
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
