"""A scripted SMTP server on loopback: answers like a real one, except where a rule says otherwise.

For the generator's accounting tests: every stage (banner, EHLO, MAIL, RCPT,
DATA, end of data, RSET, QUIT) can be made to answer a chosen code, hang up
without answering, or fall silent, on the Nth time that stage is reached
(counted across all connections), with or without PIPELINING advertised.
Messages accepted at end of data are counted, so a test can compare what the
generator says it sent with what a server really took.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

STAGES = ("banner", "ehlo", "mail", "rcpt", "data", "dot", "rset", "quit")
NORMAL = {
    "banner": b"220 scripted ESMTP\r\n",
    "mail": b"250 2.1.0 ok\r\n",
    "rcpt": b"250 2.1.5 ok\r\n",
    "data": b"354 go ahead\r\n",
    "dot": b"250 2.0.0 queued\r\n",
    "rset": b"250 2.0.0 reset\r\n",
    "quit": b"221 2.0.0 bye\r\n",
}
HANGUP = "hangup"
"""Close the connection instead of answering."""
SILENT = "silent"
"""Never answer, keep the connection open (until the server stops)."""


@dataclass
class Rule:
    """At ``stage``, the ``nth`` time (1-based, all connections together) and ``times`` times from
    there, answer ``action``: a reply code (``421``, ``450``, ``550``...), :data:`HANGUP` or :data:`SILENT`."""

    stage: str
    action: int | str
    nth: int = 1
    times: int = 1


@dataclass
class ScriptedServer:
    """The server's state, shared by its connection threads."""

    rules: list[Rule]
    pipelining: bool = True
    accepted: int = 0
    """Messages answered 250 at end of data."""
    seen: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAGES, 0))
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    def action(self, stage: str) -> int | str | None:
        """What a rule says for this occurrence of ``stage`` (None: answer normally)."""
        with self.lock:
            self.seen[stage] += 1
            n = self.seen[stage]
            for rule in self.rules:
                if rule.stage == stage and rule.nth <= n < rule.nth + rule.times:
                    return rule.action
        return None

    def answer(self, conn: socket.socket, stage: str, normal: bytes) -> bool:
        """Send the reply for ``stage``; False when the connection must end here."""
        action = self.action(stage)
        if action == HANGUP:
            return False
        if action == SILENT:
            self.stop.wait()
            return False
        if action is None:
            conn.sendall(normal)
            return stage != "quit"
        code = int(action)
        conn.sendall(f"{code} scripted reply\r\n".encode())
        return code != 421 and stage != "quit"

    def serve(self, conn: socket.socket) -> None:
        """One session: read lines (and message content), answer by the script."""
        with conn:
            conn.settimeout(30)
            reader = conn.makefile("rb")
            if not self.answer(conn, "banner", NORMAL["banner"]):
                return
            try:
                self._session(conn, reader)
            except (OSError, ValueError):
                return

    def _session(self, conn: socket.socket, reader: BinaryIO) -> None:
        in_data = False
        in_mail = False
        recipients = 0
        while not self.stop.is_set():
            line = reader.readline()
            if not line:
                return
            if in_data:
                if line == b".\r\n":
                    in_data = in_mail = False
                    recipients = 0
                    if not self._dot(conn):
                        return
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                action = self.action("ehlo")
                if action == HANGUP:
                    return
                if action == SILENT:
                    self.stop.wait()
                    return
                if action is not None:
                    conn.sendall(f"{int(action)} scripted reply\r\n".encode())
                    if int(action) == 421:
                        return
                    continue
                caps = [b"250-scripted", b"250-SIZE 100000000"] + ([b"250-PIPELINING"] if self.pipelining else [])
                conn.sendall(b"\r\n".join(caps) + b"\r\n250 8BITMIME\r\n")
            elif verb == b"HELO":
                conn.sendall(b"250 scripted\r\n")
            elif verb == b"MAIL":
                if in_mail:
                    conn.sendall(b"503 5.5.1 nested MAIL\r\n")
                    continue
                code = self.reply_code("mail")
                if code is None:
                    return
                in_mail = code < 300
                recipients = 0
                self.send_reply(conn, "mail", code)
                if code == 421:
                    return
            elif verb == b"RCPT":
                if not in_mail:
                    conn.sendall(b"503 5.5.1 need MAIL\r\n")
                    continue
                code = self.reply_code("rcpt")
                if code is None:
                    return
                recipients += code < 300
                self.send_reply(conn, "rcpt", code)
                if code == 421:
                    return
            elif verb in (b"RSET", b"QUIT"):
                in_mail, recipients = False, 0
                stage = verb.decode().lower()
                if not self.answer(conn, stage, NORMAL[stage]):
                    return
            elif verb == b"DATA":
                if not in_mail or not recipients:
                    in_mail = False
                    conn.sendall(b"554 5.5.1 no valid recipients\r\n")
                    continue
                action = self.action("data")
                if action == HANGUP:
                    return
                if action == SILENT:
                    self.stop.wait()
                    return
                if action is None:
                    conn.sendall(NORMAL["data"])
                    in_data = True
                else:
                    conn.sendall(f"{int(action)} scripted reply\r\n".encode())
                    if int(action) == 421:
                        return
            else:
                conn.sendall(b"502 not implemented\r\n")

    def reply_code(self, stage: str) -> int | None:
        """The code to answer ``stage`` with (250 normally), or None when the connection ends here."""
        action = self.action(stage)
        if action == HANGUP:
            return None
        if action == SILENT:
            self.stop.wait()
            return None
        return 250 if action is None else int(action)

    def send_reply(self, conn: socket.socket, stage: str, code: int) -> None:
        """The normal reply for ``stage``, or a scripted one with ``code``."""
        conn.sendall(NORMAL[stage] if code == 250 else f"{code} scripted reply\r\n".encode())

    def _dot(self, conn: socket.socket) -> bool:
        action = self.action("dot")
        if action == HANGUP:
            return False
        if action == SILENT:
            self.stop.wait()
            return False
        if action is None:
            with self.lock:
                self.accepted += 1
            conn.sendall(NORMAL["dot"])
            return True
        conn.sendall(f"{int(action)} scripted reply\r\n".encode())
        return int(action) != 421


@contextmanager
def scripted_server(rules: list[Rule], *, pipelining: bool = True) -> Iterator[ScriptedServer]:
    """Serve on a free loopback port until the block ends; every thread joined afterwards."""
    server = ScriptedServer(rules, pipelining)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    server.port = listener.getsockname()[1]
    threads: list[threading.Thread] = []

    def accept() -> None:
        while not server.stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=server.serve, args=(conn,), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        server.stop.set()
        acceptor.join(5)
        listener.close()
        for thread in threads:
            thread.join(5)
