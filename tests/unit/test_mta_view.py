"""The MTA under test's own figures: KumoMTA's /metrics and Postfix's `postqueue -j`, parsed."""

from __future__ import annotations

from kumotui.bench.mta import MtaWatcher, kumomta_view, postfix_view, watcher_for
from kumotui.errors import KumotuiError
from kumotui.hosts.local import LocalHost

RELAYING_KUMOD = """\
# HELP connection_count number of active connections
# TYPE connection_count gauge
connection_count{service="esmtp_listener"} 48
connection_count{service="smtp_client:sink.example"} 7
connection_count{service="smtp_client:other"} 1
total_messages_received{service="esmtp_listener"} 120500
total_messages_delivered{service="smtp_client:sink.example"} 118000
total_messages_delivered{service="smtp_client:other"} 2
total_messages_transfail{service="smtp_client:sink.example"} 31
scheduled_count{queue="sink.example"} 1900
scheduled_count{queue="other"} 4
ready_count{service="smtp_client:sink.example"} 560
memory_limit 1.2884901888e+10
"""


def test_a_relaying_kumod_reads_as_connections_counters_and_queues() -> None:
    view = kumomta_view(RELAYING_KUMOD)
    assert (view.kind, view.connections_in, view.connections_out) == ("kumomta", 48, 8)
    assert (view.received, view.delivered, view.transient_failures) == (120500, 118002, 31)
    assert dict(view.queued) == {"scheduled": 1904, "ready": 560} and view.total_queued == 2464


def test_a_sink_kumod_publishes_no_outbound_figures() -> None:
    view = kumomta_view(
        'connection_count{service="esmtp_listener"} 3\ntotal_messages_received{service="esmtp_listener"} 9\n'
    )
    assert (view.connections_in, view.received, view.connections_out, view.delivered) == (3, 9, None, None)
    assert view.total_queued == 0


def test_postfix_queue_by_name_and_garbage_lines_skipped() -> None:
    text = '{"queue_name": "active", "queue_id": "A1"}\n{"queue_name": "deferred", "queue_id": "B2"}\n' * 3
    view = postfix_view(text + "not json\n[1, 2]\n\n")
    assert dict(view.queued) == {"active": 3, "deferred": 3} and view.kind == "postfix"


def test_watchers_follow_the_greeting_and_the_flags() -> None:
    host = LocalHost()
    assert watcher_for("127.0.0.1:2525", "mx ESMTP Exim", host) is None
    kumo = watcher_for("127.0.0.1:2525", "mx.example KumoMTA", host)
    assert isinstance(kumo, MtaWatcher) and kumo.describe == "KumoMTA /metrics at 127.0.0.1:8000"
    given = watcher_for("127.0.0.1:2525", "whatever", host, metrics="127.0.0.1:8123")
    assert given is not None and given.describe == "KumoMTA /metrics at 127.0.0.1:8123"
    postfix = watcher_for("127.0.0.1:2525", "mx ESMTP Postfix (Debian/GNU)", host, postfix_config="/tmp/pf")
    assert postfix is not None and postfix.describe == "Postfix queue (postqueue -c /tmp/pf -j)"


def test_a_failed_reading_is_a_view_with_the_reason() -> None:
    def broken() -> object:
        raise KumotuiError("cannot read the metrics at http://127.0.0.1:1/metrics: refused")

    view = MtaWatcher("x", broken).read()  # type: ignore[arg-type]
    assert view.error.startswith("cannot read the metrics") and view.total_queued == 0
