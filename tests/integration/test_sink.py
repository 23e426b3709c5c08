"""The built-in sink against real clients on loopback: protocol edge cases,
hostile clients, interop with Python's smtplib and Postfix's smtp-source.

Its replies to every command shape, without a socket, are in ``tests/unit/test_engines.py``.
"""

from __future__ import annotations

import re
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.processes import alive, children, rss_kb
from tests.support.smtp import Client, engine, finish, postfix_cmd, sink
from tests.support.waits import wait_until

ENVELOPE = b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"


def test_banner_and_capabilities() -> None:
    with sink() as (_, port):
        c = Client(port)
        code, _ = c.reply()
        assert code == 220
        c.send(b"EHLO client.test\r\n")
        code, lines = c.reply()
        assert code == 250
        caps = {line.split(b" ")[0] for line in lines[1:]}
        assert {b"PIPELINING", b"8BITMIME", b"SIZE", b"ENHANCEDSTATUSCODES"} <= caps
        assert c.cmd("HELO client.test") == 250
        assert c.cmd("NOOP") == 250
        assert c.cmd("RSET") == 250
        assert c.cmd("QUIT") == 221
        assert c.closed()


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_terminator_split_across_reads(cut: int) -> None:
    """CRLF.CRLF found whatever the read boundaries: every split point, byte by byte."""
    term = b"\r\n.\r\n"
    with sink() as (job, port):
        c = Client(port)
        c.greet()
        c.send(ENVELOPE)
        assert [c.code() for _ in range(3)] == [250, 250, 354]
        # The pauses are the test: they make each piece arrive in a read of its own.
        c.send(b"Subject: split\r\n\r\nbody line")
        time.sleep(0.05)
        c.send(term[:cut])
        time.sleep(0.05)
        for byte in term[cut:]:
            c.send(bytes([byte]))
            time.sleep(0.02)
        assert c.code() == 250
        # the terminator ending right after DATA (an empty message) also counts
        c.send(ENVELOPE)
        assert [c.code() for _ in range(3)] == [250, 250, 354]
        c.send(b".\r\n")
        assert c.code() == 250
        assert c.cmd("QUIT") == 221
        summary = finish(job)
    assert summary is not None and summary["received"] == 2


def test_dot_stuffed_lines_are_not_the_end() -> None:
    with sink() as (job, port):
        c = Client(port)
        c.greet()
        c.send(ENVELOPE)
        assert [c.code() for _ in range(3)] == [250, 250, 354]
        c.send(b"..\r\n..hidden\r\n.\r.\r\n\r\n.. \r\n")
        c.send(b"x\r\n.\r\n")
        assert c.code() == 250
        c.send(b"NOOP\r\n")
        assert c.code() == 250
        summary = finish(job)
    assert summary is not None and summary["received"] == 1


def test_pipelined_commands_answered_in_order() -> None:
    with sink() as (job, port):
        c = Client(port)
        assert c.code() == 220
        # EHLO and a whole envelope in one write, then content plus the next
        # envelope in one write (RFC 2920 allows content first in a group).
        c.send(b"EHLO x.test\r\n" + ENVELOPE)
        assert [c.code() for _ in range(4)] == [250, 250, 250, 354]
        c.send(b"hello\r\n.\r\n" + ENVELOPE)
        assert [c.code() for _ in range(4)] == [250, 250, 250, 354]
        c.send(b"again\r\n.\r\nNOOP\r\nRSET\r\nQUIT\r\n")
        assert [c.code() for _ in range(4)] == [250, 250, 250, 221]
        assert c.closed()
        summary = finish(job)
    assert summary is not None and summary["received"] == 2


def test_bad_commands_get_5xx() -> None:
    with sink() as (_, port):
        c = Client(port)
        assert c.code() == 220
        assert c.cmd("MAIL FROM:<a@example.com>") == 503  # before EHLO
        assert c.cmd("EHLO") == 501  # no domain
        assert c.cmd("EHLO x.test") == 250
        assert c.cmd("FROB") == 500
        assert c.cmd("STARTTLS") == 502
        assert c.cmd("RCPT TO:<b@example.com>") == 503  # before MAIL
        assert c.cmd("DATA") == 503
        assert c.cmd("MAIL TO:<a@example.com>") == 501
        assert c.cmd("MAIL FROM:<a@example.com> FOO=BAR") == 555
        assert c.cmd("MAIL FROM:<a@example.com>") == 250
        assert c.cmd("MAIL FROM:<a@example.com>") == 503  # nested
        assert c.cmd("DATA") == 554  # no valid recipients
        assert c.cmd("\x00\xff garbage") == 500


def test_too_many_errors_closes_session() -> None:
    with sink() as (_, port):
        c = Client(port)
        assert c.code() == 220
        c.send(b"BAD\r\n" * 25)
        codes = []
        while True:
            try:
                codes.append(c.code())
            except ConnectionError:
                break
        assert codes[-1] == 421 and codes.count(500) == 20


def test_overlong_line_rejected_and_session_survives() -> None:
    with sink() as (_, port):
        c = Client(port)
        c.greet()
        c.send(b"NOOP " + b"x" * 5000 + b"\r\n")
        code, lines = c.reply()
        assert code == 500 and b"too long" in lines[0]
        assert c.cmd("NOOP") == 250


def test_endless_line_keeps_memory_bounded() -> None:
    """A client streaming a line with no CRLF cannot grow the sink."""
    with sink() as (job, port):
        assert job.pid is not None
        before = rss_kb(job.pid)
        c = Client(port)
        c.greet()
        chunk = b"A" * 65536
        for _ in range(800):  # 50 MiB without a line end
            c.send(chunk)
        c.send(b"\r\n")
        assert c.code() == 500
        assert c.cmd("NOOP") == 250
        assert rss_kb(job.pid) - before < 20_000


def test_client_that_never_reads_cannot_grow_the_write_buffer() -> None:
    """Pipelined commands whose replies are never read: reading pauses, memory stays flat."""
    with sink() as (job, port):
        assert job.pid is not None
        before = rss_kb(job.pid)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        payload = b"NOOP\r\n" * 50000
        sent = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # the hostile client: it pushes for 3 s, whatever happens
            try:
                sent += sock.send(payload)
            except BlockingIOError:
                time.sleep(0.01)  # the socket is full: try again, as such a client would
        assert sent < 200_000_000  # the sink stopped reading at some point
        assert rss_kb(job.pid) - before < 30_000
        sock.close()


def test_oversized_messages_rejected() -> None:
    with sink("--max-message-size", "10000") as (job, port):
        c = Client(port)
        c.greet()
        assert c.cmd("MAIL FROM:<a@example.com> SIZE=20000") == 552
        c.send(ENVELOPE)
        assert [c.code() for _ in range(3)] == [250, 250, 354]
        c.send(b"x" * 30000 + b"\r\n.\r\n")
        assert c.code() == 552
        c.send(ENVELOPE)
        assert [c.code() for _ in range(3)] == [250, 250, 354]
        c.send(b"small\r\n.\r\n")
        assert c.code() == 250
        summary = finish(job)
    assert summary is not None and summary["received"] == 1
    assert (summary["rejected_mail"], summary["rejected_data"]) == (1, 1)
    assert summary["refusals"] == {"mail 552": 1, "data 552": 1}


def test_idle_timeout_closes_with_421() -> None:
    with sink("--idle-timeout", "0.5") as (job, port):
        c = Client(port)
        c.greet()
        started = time.monotonic()
        assert c.code() == 421
        assert c.closed()
        assert time.monotonic() - started < 3
        summary = finish(job)
    assert summary is not None and summary["timeouts"] == 1


def test_abrupt_disconnects_do_not_hurt() -> None:
    with sink() as (job, port):
        for _ in range(20):
            c = Client(port)
            c.greet()
            c.send(ENVELOPE)
            assert [c.code() for _ in range(3)] == [250, 250, 354]
            c.send(b"half a message")
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.close()  # RST mid-DATA
        c = Client(port)
        c.greet()
        assert c.cmd("QUIT") == 221
        # The sink counts a session when it has seen it close; its progress lines say when.
        assert wait_until(lambda: {**(job.last or {})}.items() >= {("aborted", 20), ("connections", 0)}), job.last
        summary = finish(job)
    assert summary is not None
    assert summary["aborted"] == 20 and summary["received"] == 0 and summary["connections"] == 0


def test_smtplib_interop_exact_counts() -> None:
    """Python's smtplib (dot-stuffing, multiple recipients, RSET, refusals)."""
    body = "Subject: smtplib\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n"
    with sink() as (job, port):
        with smtplib.SMTP("127.0.0.1", port) as s:
            s.ehlo("smtplib.test")
            assert s.has_extn("pipelining") and s.has_extn("size")
            for _ in range(10):
                s.sendmail("a@example.com", ["b@example.com", "c@example.com"], body)
            refused = s.sendmail("a@example.com", ["ok@example.com", "permfail@example.com"], body)
            assert refused == {"permfail@example.com": (550, b"5.1.1 permfail requested by recipient")}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                s.sendmail("a@example.com", ["tempfail@example.com"], body)
            s.rset()
        summary = finish(job)
    assert summary is not None
    assert summary["received"] == 11
    assert (summary["rejected_mail"], summary["rejected_rcpt"], summary["rejected_data"]) == (0, 2, 0)
    assert summary["refusals"] == {"rcpt 550": 1, "rcpt 451": 1}


def test_random_backpressure_replies_at_end_of_data() -> None:
    with sink("--tempfail-percent", "100") as (_, port):
        c = Client(port)
        c.greet()
        c.send(ENVELOPE)
        assert [c.code() for _ in range(3)] == [250, 250, 354]
        c.send(b"x\r\n.\r\n")
        assert c.code() == 451
    with sink("--permfail-percent", "100") as (_, port):
        c = Client(port)
        c.greet()
        c.send(ENVELOPE)
        assert [c.code() for _ in range(3)] == [250, 250, 354]
        c.send(b"x\r\n.\r\n")
        assert c.code() == 554


def test_smtp_source_interop_exact_counts(postfix_root: Path) -> None:
    """Postfix's smtp-source, one message per session and many per session."""
    root = postfix_root
    with sink() as (job, port):
        for extra in ([], ["-d"]):
            argv, env = postfix_cmd(
                root, "smtp-source", *extra, "-s", "20", "-m", "1500", "-l", "3000",
                "-f", "a@example.com", "-t", "b@example.com", f"127.0.0.1:{port}",
            )  # fmt: skip
            done = subprocess.run(argv, env=env, capture_output=True, timeout=60)
            assert done.returncode == 0, done.stderr
        summary = finish(job)
    assert summary is not None and summary["received"] == 3000 and summary["refusals"] == {}


def test_workers_share_the_port_and_stop_cleanly(postfix_root: Path) -> None:
    root = postfix_root
    with sink("--workers", "2") as (job, port):
        assert job.pid is not None
        _engine, *kids = children(job.pid)  # the job's process is the watchdog; the engine is its child
        assert len(kids) == 2
        argv, env = postfix_cmd(
            root, "smtp-source", "-s", "40", "-m", "2000", "-t", "b@example.com", f"127.0.0.1:{port}"
        )
        assert subprocess.run(argv, env=env, capture_output=True, timeout=60).returncode == 0
        summary = finish(job)
    assert summary is not None and summary["received"] == 2000 and summary["workers"] == 2
    assert wait_until(lambda: not any(alive(k) for k in kids)), [k for k in kids if alive(k)]


def test_stdin_eof_stops_the_sink(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*engine("smtp_sink"), "--listen", "127.0.0.1:0", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert '"ready"' in proc.stdout.readline()
        proc.stdin.close()
        assert proc.wait(10) == 0
        assert '"summary"' in proc.stdout.read().strip().splitlines()[-1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([*engine("smtp_sink"), "--listen", f"127.0.0.1:{port}"], capture_output=True, text=True)
    assert done.returncode == 2
    assert re.search(r"already in use", done.stdout) and "Traceback" not in done.stderr


def test_endless_message_is_cut_off() -> None:
    """DATA that never ends and is far over the limit: 552 and the session closes."""
    with sink("--max-message-size", "10000") as (job, port):
        c = Client(port)
        c.greet()
        c.send(ENVELOPE)
        assert [c.code() for _ in range(3)] == [250, 250, 354]
        try:
            for _ in range(100):
                c.send(b"y" * 4096)
        except OSError:
            pass  # the sink may already have closed
        assert c.code() == 552
        assert c.closed()
        summary = finish(job)
    assert summary is not None and summary["rejected_data"] == 1 and summary["received"] == 0
    assert summary["refusals"] == {"data 552": 1}


# --- sizes as RFC 1870 counts them, and giving up in order ------------------------------


def message_of(size: int, *, dotted_lines: int = 0) -> bytes:
    """Exactly ``size`` bytes of message (CRLF lines), the first ``dotted_lines`` lines starting with a dot."""
    lines = [b"." + b"d" * 6 + b"\r\n" for _ in range(dotted_lines)]
    rest = size - sum(len(line) for line in lines)
    lines.append(b"x" * (rest - 2) + b"\r\n")
    message = b"".join(lines)
    assert len(message) == size
    return message


def stuff(message: bytes) -> bytes:
    """Dot-stuffing as a client does it: a line starting with a dot gets another."""
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in message.split(b"\r\n"))


@pytest.mark.parametrize("dotted", [0, 1, 50])
def test_a_message_of_exactly_the_advertised_size_is_accepted(dotted: int) -> None:
    """The limit counts the message: not the final '.' line, not the dots added by stuffing."""
    limit = 10_000
    with sink("--max-message-size", str(limit)) as (job, port):
        c = Client(port)
        c.greet()
        assert c.cmd(f"MAIL FROM:<a@example.com> SIZE={limit}") == 250
        assert c.cmd("RCPT TO:<b@example.com>") == 250
        assert c.cmd("DATA") == 354
        c.send(stuff(message_of(limit, dotted_lines=dotted)) + b".\r\n")
        assert c.code() == 250
        c.send(ENVELOPE)
        assert [c.code() for _ in range(3)] == [250, 250, 354]
        c.send(stuff(message_of(limit + 1, dotted_lines=dotted)) + b".\r\n")
        assert c.code() == 552
        summary = finish(job)
    assert summary is not None and summary["received"] == 1 and summary["refusals"] == {"data 552": 1}


def test_replies_due_before_giving_up_on_a_message_are_all_sent_in_order() -> None:
    """Pipelined commands, then content far over the limit in the same write: every reply, then the 552."""
    with sink("--max-message-size", "1000") as (_, port):
        c = Client(port)
        c.greet()
        c.send(b"NOOP\r\nNOOP\r\n" + ENVELOPE + b"y" * 200_000)
        codes = [c.code() for _ in range(6)]
        assert codes == [250, 250, 250, 250, 354, 552]
        assert c.closed()


@pytest.mark.parametrize("digits", [21, 5000])
def test_a_size_with_absurd_digits_is_a_syntax_error(digits: int) -> None:
    """Past Python's 4300-digit int() limit too (a long enough line allowed), never a traceback."""
    with sink("--max-line-length", "10000") as (job, port):
        c = Client(port)
        c.greet()
        assert c.cmd("MAIL FROM:<a@example.com> SIZE=" + "9" * digits) == 501
        assert c.cmd("MAIL FROM:<a@example.com> SIZE=1000") == 250  # the session goes on
        summary = finish(job)
    assert summary is not None and summary["refusals"] == {"mail 501": 1}


# --- a slow client cannot stretch the idle deadline ----------------------------------


@pytest.mark.parametrize("state", ["command", "data"])
def test_one_byte_a_second_does_not_hold_a_session(state: str) -> None:
    """The deadline is per command (or per chunk of content), not reset by every byte."""
    with sink("--idle-timeout", "1.5") as (job, port):
        c = Client(port)
        c.greet()
        if state == "data":
            c.send(ENVELOPE)
            assert [c.code() for _ in range(3)] == [250, 250, 354]
        started = time.monotonic()
        c.sock.settimeout(0.1)
        closed_at = None
        while time.monotonic() - started < 8:
            try:
                c.sock.send(b"a")
                data = c.sock.recv(4096)  # the 421, or the close
            except TimeoutError:
                time.sleep(0.9)  # the trickle is the test: one byte a second
                continue
            except OSError:
                data = b""
            if not data or data.startswith(b"421"):
                closed_at = time.monotonic()
                break
        assert closed_at is not None, "the trickling client was never cut off"
        assert closed_at - started < 5
        summary = finish(job)
    assert summary is not None and summary["timeouts"] == 1
