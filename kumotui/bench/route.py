"""The routing probe: before a load goes through an MTA under test, prove that its mail reaches our sink.

An MTA that accepts mail delivers it where its configuration says, which
may be the internet. So before the first real message, a few stamped probe
messages go through the MTA, and the run starts only once the sink has seen
every one of them (within a deadline). If they do not arrive, the run is
refused with what to change: the routing snippet for KumoMTA (``init.lua``)
and the lines for Postfix (``relayhost``), with this sink's address. The
guided setup's "is my routing right?" check is the same probe.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from email.utils import formatdate

from kumotui.backends.kumomta.policy import routing_snippet
from kumotui.bench.delivery import Probe, Ranges, intersect, size_of
from kumotui.engines.smtp_common import PROBE_WORKER, WORKER_SHIFT, stamp_line
from kumotui.errors import KumotuiError
from kumotui.hosts.address import format_address, parse_address

PROBES = 3
"""Probe messages sent before the load."""
PROBE_TIMEOUT = 30.0
"""Seconds to wait for the probes at the sink (an MTA queues before it delivers)."""
PROBE_RECIPIENT = "250-probe@kumotui-probe.example.com"
"""Reserved (RFC 2606): if the MTA delivers it anywhere but our sink, it goes nowhere real. The ``250-``
local part makes a Smart Sink (``--responses``) accept it without a draw, as KumoMTA's does."""


def probe_ids(count: int = PROBES) -> list[int]:
    """The stamp ids of the probes: worker :data:`PROBE_WORKER`, sequences 1..count."""
    return [PROBE_WORKER << WORKER_SHIFT | n for n in range(1, count + 1)]


def probe_message(tag: str, ident: int) -> bytes:
    """One small probe message, its stamp first (as the generator's messages have it)."""
    head = (
        f"From: kumotui routing probe <probe@kumotui.example>\r\nTo: <{PROBE_RECIPIENT}>\r\n"
        f"Subject: kumotui routing probe\r\nDate: {formatdate(usegmt=True)}\r\n"
        f"Message-ID: <{ident:x}.{tag}.probe@kumotui.invalid>\r\n\r\n"
    )
    body = "This message checks that the MTA under test delivers to the kumotui sink.\r\n"
    return stamp_line(tag, ident, time.time_ns()) + head.encode("ascii") + body.encode("ascii")


def send_probes(through: str, tag: str, *, count: int = PROBES, timeout: float = 10.0) -> tuple[list[int], str]:
    """Send the probes to the MTA at ``through``; their ids and the MTA's greeting.

    Raises:
        KumotuiError: the MTA cannot be reached or refuses a probe (naming ``--through``).
    """
    host, port = parse_address(through, 25)
    ids = probe_ids(count)
    try:
        with smtplib.SMTP(timeout=timeout) as smtp:
            _, greeting = smtp.connect(host, port)
            banner = greeting.decode("utf-8", "replace")
            for ident in ids:
                smtp.sendmail("probe@kumotui.example", [PROBE_RECIPIENT], probe_message(tag, ident))
    except (TimeoutError, smtplib.SMTPException, OSError) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise KumotuiError(
            f"--through {format_address(host, port)}: the routing probe could not be sent ({reason}); "
            "nothing was sent to the MTA under test beyond it"
        ) from None
    return ids, banner


def await_probes(
    delivered: Callable[[], Ranges],
    ids: list[int],
    *,
    timeout: float = PROBE_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    stopped: Callable[[], bool] = lambda: False,
) -> tuple[int, float]:
    """Wait until the sink has seen every probe id, or ``timeout``; (how many arrived, seconds waited)."""
    wanted = [[ident, ident + 1] for ident in ids]
    started = clock()
    arrived = 0
    while True:
        arrived = size_of(intersect(wanted, delivered()))
        waited = clock() - started
        if arrived == len(ids) or waited >= timeout or stopped():
            return arrived, waited
        sleep(0.2)


def probe_route(
    through: str,
    sink_address: str,
    tag: str,
    delivered: Callable[[], Ranges],
    *,
    timeout: float = PROBE_TIMEOUT,
    stopped: Callable[[], bool] = lambda: False,
) -> Probe:
    """Send the probes through the MTA and wait for them at the sink.

    Raises:
        KumotuiError: a probe could not be sent, or not all arrived in time: the
            message says what to fix and gives the routing lines for this sink.
    """
    ids, banner = send_probes(through, tag)
    arrived, waited = await_probes(delivered, ids, timeout=timeout, stopped=stopped)
    probe = Probe(len(ids), arrived, waited, banner)
    if not probe.ok and not stopped():
        raise KumotuiError(
            f"--through {through}: the MTA accepted {len(ids)} routing probes but {arrived} reached the sink at "
            f"{sink_address} within {timeout:g} s, so the load was not started: the MTA may be delivering "
            f"somewhere else (perhaps the internet). Route its mail to the sink, then run again.\n\n"
            + routing_help(sink_address)
        )
    return probe


def routing_help(sink_address: str) -> str:
    """How to route an MTA under test to the sink at ``sink_address``: KumoMTA and Postfix."""
    host, port = parse_address(sink_address, 25)
    return (
        "KumoMTA (init.lua):\n\n"
        + routing_snippet(host, port)
        + "\nPostfix (main.cf; then `postfix reload`):\n\n"
        + f"relayhost = [{host.strip('[]')}]:{port}\n"
        + "# or only for the test domain, with transport_maps = hash:/etc/postfix/transport:\n"
        + f"#   example.com  smtp:[{host.strip('[]')}]:{port}\n"
    )
