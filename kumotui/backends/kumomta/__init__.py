"""The KumoMTA backend: where its tools are; kumod (:mod:`.kumod`, :mod:`.policy`,
:mod:`.metrics`) as a sink and traffic-gen (:mod:`.traffic_gen`) as the generator.

Everything here follows the facts in ``KUMOMTA.md`` (release line 2026.06):
where the binaries live, the sink policy, kumod's readiness lines and HTTP
endpoints, traffic-gen's flags and its exact output. KumoMTA cannot be
installed on kumotui's build machines, so tests drive stand-in executables
that reproduce those formats; keeping this module literal to the facts is
what keeps it honest against the real tools.

"""

from __future__ import annotations

from kumotui.backends import Backend, LoadRequest, SinkRequest
from kumotui.backends.job import Job
from kumotui.backends.kumomta.install import find_kumomta
from kumotui.backends.kumomta.kumod import KumodSinkJob
from kumotui.backends.kumomta.traffic_gen import TrafficGenJob, traffic_gen_command
from kumotui.backends.process import Launcher
from kumotui.engines import smtp_gen
from kumotui.errors import KumotuiError


class KumoMTABackend:
    """kumod with kumotui's sink policy, and traffic-gen, from ``$KUMOMTA_PREFIX/sbin`` or ``/opt/kumomta/sbin``."""

    name = Backend.KUMOMTA

    def missing(self) -> str | None:
        """Why KumoMTA's tools cannot be used here, or None when kumod and traffic-gen are installed."""
        try:
            find_kumomta()
        except KumotuiError as error:
            return str(error)
        return None

    def sink(self, launcher: Launcher, request: SinkRequest) -> Job:
        """kumod with a sink policy written for ``request`` (port 2026 unless asked otherwise)."""
        return KumodSinkJob(launcher, find_kumomta(need=("kumod",)).kumod, request)

    def generator(self, launcher: Launcher, request: LoadRequest) -> Job:
        """traffic-gen; a message count gets a generous ``--duration`` so it is not cut short at 60 s."""
        argv = traffic_gen_command(
            find_kumomta(need=("traffic-gen",)).traffic_gen,
            target=request.target,
            concurrency=request.concurrency,
            messages=request.messages,
            duration=int(request.duration) if request.duration else None,
            body_size=request.body_size,
            keep_going=request.keep_going,
            domains=final_domains(request),
            headers=request.headers,
        )
        return TrafficGenJob(launcher, argv, messages=request.messages, body_size=request.body_size)


def final_domains(request: LoadRequest) -> tuple[tuple[str, float], ...]:
    """The request's domains as the built-in generator would send to them (suffixed, checked), for traffic-gen.

    traffic-gen appends its own suffix to every domain, reserved or not; kumotui
    passes the finished names with ``--domain-suffix ''`` instead, so both
    generators send to the same recipients.

    Raises:
        KumotuiError: a domain is not reserved and real domains were not allowed.
    """
    if not request.domains:
        return ()
    suffix = smtp_gen.DEFAULT_SUFFIX if request.domain_suffix is None else request.domain_suffix
    try:
        return tuple(smtp_gen.destination_domains(list(request.domains), suffix, request.allow_real_domains))
    except smtp_gen.StartError as error:
        raise KumotuiError(str(error)) from None


BACKEND = KumoMTABackend()
