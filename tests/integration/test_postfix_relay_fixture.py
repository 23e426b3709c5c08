"""The real-Postfix relay fixture (:mod:`tests.support.postfix_mta`) against kumotui's own sink.

``bench --through`` will measure through an MTA; these prove the MTA its
tests will use: Postfix relays every domain to the sink, holds and retries
mail when the sink is unreachable, leaves no process behind, and writes
nothing outside the test's temporary dir.
"""

from __future__ import annotations

import os
import signal
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from kumotui.backends.builtin import BuiltinSinkJob
from tests.support.guard import Listing, listing
from tests.support.postfix_mta import PostfixRelay, session_members
from tests.support.processes import alive, free_port
from tests.support.smtp import sink
from tests.support.waits import wait_until

DOMAINS = ("example.com", "example.net", "mail.test", "host.invalid")
"""Reserved domains no one can resolve: the relay must not need to."""

SYSTEM_POSTFIX = (Path("/etc/postfix"), Path("/var/spool/postfix"), Path("/var/lib/postfix"))
"""The system instance's files, which the package installed and a test must not touch."""


def send(port: int, count: int, first: int = 1) -> None:
    """``count`` messages to the relay in one SMTP session, to user<N>@ each reserved domain in turn."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        for number in range(first, first + count):
            message = EmailMessage()
            message["From"] = "bench@example.org"
            message["To"] = f"user{number}@{DOMAINS[number % len(DOMAINS)]}"
            message["Subject"] = f"relay test {number}"
            message.set_content("through Postfix to the sink\n")
            client.send_message(message)


def received(job: BuiltinSinkJob) -> int:
    """Messages the sink accepted, from its latest JSON progress line."""
    return int((job.last or {}).get("received", 0))


def listens_on_loopback_only(port: int) -> bool:
    """Whether every listening socket on ``port`` is bound to 127.0.0.1 (and one is)."""
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                addresses.append(address)
    return addresses == ["0100007F"]


def deferrals(relay: PostfixRelay) -> int:
    """How many delivery attempts the relay has deferred so far, from its log."""
    return relay.maillog.read_text(errors="replace").count("status=deferred")


def system_files() -> dict[str, Listing | None]:
    """Everything under the system instance's dirs, with sizes and times."""
    return {str(path): listing(path) for path in SYSTEM_POSTFIX}


def test_relays_every_domain_then_holds_mail_for_a_dead_relayhost(
    postfix_mta: Callable[[int], PostfixRelay], tmp_path: Path
) -> None:
    before = system_files()
    with sink() as (job, sink_port):
        relay = postfix_mta(sink_port)
        master = relay.master_pid()
        assert master is not None and alive(master)
        assert listens_on_loopback_only(relay.port)

        send(relay.port, 20)
        assert wait_until(lambda: received(job) == 20, timeout=30), f"sink got {received(job)}\n{relay.log_tail()}"
        assert wait_until(lambda: relay.queue_size() == 0, timeout=10), relay.queued()

        relay.set_relayhost(f"127.0.0.1:{free_port()}")
        send(relay.port, 5, first=21)
        # Each of the five tried, refused, and tried again after the short backoff.
        assert wait_until(lambda: deferrals(relay) >= 10, timeout=20), relay.log_tail()
        held = relay.queued()
        assert len(held) == relay.queue_size() == 5
        assert all("Connection refused" in rcpt["delay_reason"] for msg in held for rcpt in msg["recipients"])
        assert received(job) == 20
        processes = relay.processes()
        assert master in processes and len(processes) > 1
        relay.stop()
    assert not [pid for pid in processes if alive(pid)]
    assert session_members(master) == []
    assert not relay.data_dir.exists()
    assert system_files() == before
    assert relay.maillog.is_relative_to(tmp_path) and "status=sent" in relay.maillog.read_text()


def test_stop_kills_what_outlived_its_master(postfix_mta: Callable[[int], PostfixRelay]) -> None:
    """A master killed outright, and a child that cannot exit on its own (stopped): stop() still leaves nothing."""
    relay = postfix_mta(free_port())
    master = relay.master_pid()
    assert master is not None
    children = [pid for pid in relay.processes() if pid != master]
    assert children, "a running Postfix has qmgr, pickup and postlogd"
    os.kill(children[0], signal.SIGSTOP)
    os.kill(master, signal.SIGKILL)
    assert wait_until(lambda: not alive(master))
    assert alive(children[0])
    relay.stop()
    assert not [pid for pid in children if alive(pid)]
    assert session_members(master) == []
