"""A small store-and-forward SMTP relay: a stand-in MTA under test whose misbehaviour a test chooses.

It accepts mail (no PIPELINING, one command per reply), queues each
message, and a forwarding thread relays them to ``forward_to`` over one
SMTP connection, as an MTA's delivery agent would. A test can make it lose
chosen messages (``drop``), deliver some twice (``duplicate``), or deliver
nowhere at all (``forward_to=None``: the misrouted MTA the routing probe
must catch). A real Postfix is the real test (``postfix_mta``); this one
makes the rare cases happen on purpose.
"""

from __future__ import annotations

import contextlib
import queue
import smtplib
import socketserver
import threading
from collections.abc import Callable
from types import TracebackType


class _Handler(socketserver.StreamRequestHandler):
    server: Relay

    def handle(self) -> None:
        self.wfile.write(b"220 relay.test ESMTP stand-in relay\r\n")
        sender, rcpts, lines, in_data = "", [], [], False
        while True:
            raw = self.rfile.readline(1 << 20)
            if not raw:
                return
            if in_data:
                if raw in (b".\r\n", b".\n"):
                    in_data = False
                    self.server.accept(sender, rcpts, b"".join(lines))
                    self.wfile.write(b"250 2.0.0 queued\r\n")
                    lines = []
                else:
                    lines.append(raw[1:] if raw.startswith(b"..") else raw)
                continue
            verb = raw[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-relay.test\r\n250 8BITMIME\r\n")
            elif verb == b"MAIL":
                sender, rcpts = raw[10:].strip().decode().strip("<>").split(">")[0], []
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"RCPT":
                rcpts.append(raw[8:].strip().decode().strip("<>"))
                self.wfile.write(b"250 ok\r\n")
            elif verb == b"DATA":
                in_data = True
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


class Relay(socketserver.ThreadingTCPServer):
    """The relay on 127.0.0.1 (a free port); a context manager that stops it and its forwarder."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # socketserver's default of 5 drops SYNs from 50 clients connecting at once

    def __init__(
        self,
        forward_to: tuple[str, int] | None,
        *,
        drop: Callable[[bytes], bool] = lambda message: False,
        duplicate: Callable[[bytes], bool] = lambda message: False,
    ) -> None:
        """Relay to ``forward_to`` (None: accept and never deliver); a message is dropped when
        ``drop(message)``, delivered twice when ``duplicate(message)``."""
        super().__init__(("127.0.0.1", 0), _Handler)
        self.forward_to = forward_to
        self.drop = drop
        self.duplicate = duplicate
        self.accepted = 0
        self.delivered = 0
        self.deferred = 0
        """Deliveries the sink answered 4xx (queued again, as an MTA retries)."""
        self.bounced = 0
        """Messages the sink answered 5xx (given up)."""
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, list[str], bytes] | None] = queue.Queue()
        self._workers = [
            threading.Thread(target=self.serve_forever, daemon=True),
            threading.Thread(target=self._forward, daemon=True),
        ]

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.server_address[1]}"

    def accept(self, sender: str, rcpts: list[str], message: bytes) -> None:
        """One message accepted: queue it (or lose it, as the test asked)."""
        with self._lock:
            self.accepted += 1
        if self.forward_to is None or self.drop(message):
            return
        for _ in range(2 if self.duplicate(message) else 1):
            self._queue.put((sender, rcpts, message))

    def _forward(self) -> None:
        client: smtplib.SMTP | None = None
        while (item := self._queue.get()) is not None:
            if self.forward_to is None:
                continue
            if client is None:
                client = smtplib.SMTP(*self.forward_to, timeout=10)
            sender, rcpts, message = item
            try:
                client.sendmail(sender, rcpts, message)
            except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused, smtplib.SMTPServerDisconnected) as e:
                client = self._refused(client, item, e)
                continue
            with self._lock:
                self.delivered += 1
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()

    def _refused(
        self, client: smtplib.SMTP, item: tuple[str, list[str], bytes], error: Exception
    ) -> smtplib.SMTP | None:
        """A refusal, as an MTA takes it: 4xx (or a dropped session) queued again to retry, 5xx given up."""
        code = getattr(error, "smtp_code", 0)
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            code = min(c for c, _ in error.recipients.values())
        if isinstance(error, smtplib.SMTPServerDisconnected) or code < 500:
            with self._lock:
                self.deferred += 1
            self._queue.put(item)
        else:
            with self._lock:
                self.bounced += 1
        if code == 421 or isinstance(error, smtplib.SMTPServerDisconnected):
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.close()
            return None
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.rset()
        return client

    def __enter__(self) -> Relay:
        for thread in self._workers:
            thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._queue.put(None)
        self.shutdown()
        self.server_close()
        for thread in self._workers:
            thread.join(10)
