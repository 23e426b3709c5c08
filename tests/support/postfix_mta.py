"""A real Postfix as the MTA under test: a throwaway instance that relays everything to a sink.

``bench --through HOST:PORT`` sends through an MTA instead of straight to a
sink; its tests need a real MTA in that place. This starts Debian's Postfix
(installed by ``.ci/setup --test``, never configured or started as the
system's instance) from a config dir of its own under the test's
``tmp_path``, listening on 127.0.0.1 only, relaying every message, whatever
the recipient domain, to ``[127.0.0.1]:<sink port>`` without a DNS lookup.

The config, the queue, the pid file and the log (``maillog_file``, no
syslog needed) live under ``tmp_path``, and ``/etc/postfix`` is only read.
One dir cannot: the master opens ``data_directory/master.lock`` as the
``postfix`` user, who may not enter pytest's 0700 root-owned temporary
dirs (the queue is fine: the daemons enter it as root, then drop
privileges and use relative paths). So the data dir is a fresh
``/tmp/kumotui-postfix-data-*``, removed when the instance stops.

Every ``postfix``/``postconf``/``postqueue`` call names the config dir
with ``-c``; as root that needs no ``alternate_config_directories`` entry
in the system's main.cf (which, with Debian's "No configuration", does not
even exist). Other users' ``postqueue -c`` fails on that missing file.

Stopping is by PID: ``postfix stop`` (which waits for the master and then
kills its process group), then SIGKILL for any process still in the master's
session, so no Postfix process of the test outlives it.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import free_port
from tests.support.waits import wait_until

POSTFIX = Path("/usr/sbin/postfix")
POSTQUEUE = Path("/usr/sbin/postqueue")
POSTCONF = Path("/usr/sbin/postconf")
MASTER = Path("/usr/lib/postfix/sbin/master")
POSTFIX_PROGRAMS = "/usr/lib/postfix/"
MAIL_OWNER = "postfix"
SETGID_GROUP = "postdrop"
MYHOSTNAME = "relay.kumotui.test"
"""Not the machine's name: Postfix refuses to relay to a server that greets with its own name (a mail loop)."""

COMMAND_TIMEOUT = 30.0
"""Seconds a ``postfix`` command may take (``stop`` alone waits up to 5 s for the master)."""

STOP_GRACE = 2.0
"""Seconds the master's children get to exit after it does (they take about 0.1 s) before SIGKILL."""

MASTER_CF_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
"""The services a relay-only Postfix needs, none chrooted (no copies of /etc in the queue dir), no local(8)."""


def missing() -> str | None:
    """Why a real Postfix cannot run here (None when it can): the package, its account, or root."""
    for path in (POSTFIX, POSTQUEUE, POSTCONF, MASTER):
        if not path.exists():
            return f"{path} not found: the postfix package is not installed (bash .ci/setup --test)"
    try:
        pwd.getpwnam(MAIL_OWNER)
        grp.getgrnam(SETGID_GROUP)
    except KeyError:
        return f"the {MAIL_OWNER} user or the {SETGID_GROUP} group is missing (reinstall the postfix package)"
    if os.geteuid() != 0:
        return "a Postfix instance of its own needs root (postfix -c DIR start)"
    return None


def require_postfix() -> None:
    """Skip the test when Postfix cannot run here; in CI (``$CI`` set), fail it instead: setup installs it."""
    reason = missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def bracketed(host_port: str) -> str:
    """``HOST:PORT`` as a Postfix nexthop in brackets (``[HOST]:PORT``): that host itself, no MX lookup."""
    host, _, port = host_port.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"relayhost {host_port!r}: expected HOST:PORT with a port from 1 to 65535")
    return f"[{host}]:{port}"


def main_cf(root: Path, data_dir: Path, relayhost: str) -> dict[str, str]:
    """main.cf for a relay-only instance under ``root``: loopback in, everything out to ``relayhost``."""
    return {
        "compatibility_level": "3.6",
        "queue_directory": str(root / "queue"),
        "data_directory": str(data_dir),
        "maillog_file": str(root / "maillog"),
        "maillog_file_prefixes": str(root),
        "mail_owner": MAIL_OWNER,
        "setgid_group": SETGID_GROUP,
        "myhostname": MYHOSTNAME,
        "mydomain": "kumotui.test",
        "myorigin": "$myhostname",
        "smtpd_banner": "$myhostname ESMTP $mail_name (kumotui test relay)",  # says Postfix, as a stock one does
        # Nothing is local: every domain (example.com, *.test, *.invalid...) goes to the relayhost.
        "mydestination": "",
        "local_recipient_maps": "",
        "local_transport": "error:5.1.1 local delivery is disabled",
        "alias_maps": "",
        "alias_database": "",
        "relay_domains": "",
        "relayhost": relayhost,
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "smtpd_recipient_restrictions": "",
        # No DNS at all: the relayhost is bracketed, and host names come from /etc/hosts.
        "smtp_dns_support_level": "disabled",
        "smtp_host_lookup": "native",
        "smtpd_peername_lookup": "no",
        "smtp_tls_security_level": "none",
        "smtpd_tls_security_level": "none",
        # Room for a benchmark: big messages, ~100 concurrent clients, no per-client limits.
        "message_size_limit": str(50 * 1024 * 1024),
        "default_process_limit": "200",
        "smtpd_client_connection_count_limit": "0",
        "smtpd_client_connection_rate_limit": "0",
        "smtpd_client_message_rate_limit": "0",
        "smtpd_client_recipient_rate_limit": "0",
        "in_flow_delay": "0",
        "smtpd_error_sleep_time": "0",
        "initial_destination_concurrency": "10",
        "default_destination_concurrency_limit": "100",
        # A deferred message is tried again within seconds, not Postfix's default minutes.
        "queue_run_delay": "1s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        "smtp_connect_timeout": "5s",
    }


def master_cf(port: int) -> str:
    """master.cf: smtpd on 127.0.0.1:``port`` only, plus the relay-only services."""
    return f"127.0.0.1:{port} inet n - n - - smtpd\n{MASTER_CF_SERVICES}"


@dataclass
class PostfixRelay:
    """One running throwaway Postfix: where it listens, its files, and control of it by PID."""

    port: int
    root: Path
    data_dir: Path

    @property
    def config_dir(self) -> Path:
        """The dir given to every ``postfix -c``: main.cf and master.cf."""
        return self.root / "etc"

    @property
    def queue_dir(self) -> Path:
        """The instance's queue (``queue_directory``), with ``pid/master.pid``."""
        return self.root / "queue"

    @property
    def maillog(self) -> Path:
        """Postfix's own log (``maillog_file``): every delivery, deferral and fatal error."""
        return self.root / "maillog"

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``postfix -c DIR ARGS``; a failure raises with Postfix's output and the log's tail."""
        return self._run([str(POSTFIX), "-c", str(self.config_dir), *args])

    def postconf(self, setting: str) -> None:
        """Change one main.cf setting (``name=value``) with ``postconf -e``; the running instance needs a reload."""
        self._run([str(POSTCONF), "-c", str(self.config_dir), "-e", setting])
        settled(self.config_dir / "main.cf")

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
        if done.returncode != 0:
            output = f"{done.stdout}{done.stderr}".strip()
            raise RuntimeError(
                f"{' '.join(argv)} exited {done.returncode}: {output}\n--- maillog ---\n{self.log_tail()}"
            )
        return done

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the instance's log, for failure messages."""
        try:
            return "\n".join(self.maillog.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no maillog)"

    def master_pid(self) -> int | None:
        """The master's PID from its pid file (None before start, or when the file is gone)."""
        try:
            text = (self.queue_dir / "pid" / "master.pid").read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def processes(self) -> list[int]:
        """Every live process of this instance: the master and all it started (they share its session)."""
        master = self.master_pid()
        return [] if master is None else session_members(master)

    def queued(self) -> list[dict[str, Any]]:
        """The messages in the queue, one dict each, as ``postqueue -j`` gives them (needs the instance running)."""
        done = self._run([str(POSTQUEUE), "-c", str(self.config_dir), "-j"])
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def queue_size(self) -> int:
        """How many messages are in the queue (incoming, active, deferred, hold)."""
        return len(self.queued())

    def set_relayhost(self, host_port: str) -> None:
        """Send everything to ``HOST:PORT`` from now on (``relayhost`` plus a reload), e.g. a dead port."""
        self.postconf(f"relayhost={bracketed(host_port)}")
        self.postfix("reload")

    def stop(self) -> None:
        """Stop the instance, leaving none of its processes (SIGKILL by PID as the last resort); remove its data dir."""
        master = self.master_pid()
        if master is not None:
            end_session(master, [str(POSTFIX), "-c", str(self.config_dir), "stop"])
        shutil.rmtree(self.data_dir, ignore_errors=True)


def end_session(master: int, stop_command: list[str]) -> None:
    """Run ``stop_command`` while the master lives, then SIGKILL whatever of its session is still alive."""
    if master in session_members(master):
        subprocess.run(stop_command, capture_output=True, timeout=COMMAND_TIMEOUT, check=False)
    if wait_until(lambda: not session_members(master), timeout=STOP_GRACE):
        return
    for pid in session_members(master):
        os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not session_members(master), timeout=5), (
        f"Postfix processes still alive after SIGKILL: {session_members(master)}"
    )


def session_members(session: int) -> list[int]:
    """Live Postfix processes (programs in ``/usr/lib/postfix``) whose session id is ``session``.

    The master calls setsid(), and every process it starts keeps that
    session, even once the master is gone; the program check keeps a
    reused PID's unrelated session out.
    """
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            program = os.readlink(entry / "exe")
        except OSError:
            continue
        # After the command: state, ppid, pgrp, session.
        if int(fields[3]) == session and fields[0] != "Z" and program.startswith(POSTFIX_PROGRAMS):
            found.append(int(entry.name))
    return found


def write_config(relay: PostfixRelay, relayhost: str) -> None:
    """The config dir (main.cf, master.cf), and the queue and data dirs."""
    relay.config_dir.mkdir(parents=True)
    settings = main_cf(relay.root, relay.data_dir, relayhost)
    (relay.config_dir / "main.cf").write_text("".join(f"{key} = {value}\n" for key, value in settings.items()))
    (relay.config_dir / "master.cf").write_text(master_cf(relay.port))
    for name in ("main.cf", "master.cf"):
        settled(relay.config_dir / name)
    relay.queue_dir.mkdir(mode=0o755)  # root's; `postfix start` makes its subdirs (postfix-files says how)
    shutil.chown(relay.data_dir, MAIL_OWNER)


SETTLED_AGE = 10.0
"""Seconds :func:`settled` dates a config file back: well past Postfix's "just changed" window."""


def settled(path: Path) -> None:
    """Date a config file we just wrote back a little, so Postfix reads it at once.

    Postfix re-reads a config file modified within the last second, every
    300 ms, until it stops changing (it might be mid-edit): ``postfix start``
    on a fresh main.cf took 2 s instead of 0.3 s, and so did a reload after
    ``postconf -e``.
    """
    past = path.stat().st_mtime - SETTLED_AGE
    os.utime(path, (past, past))


@contextmanager
def postfix_relay(sink_port: int, *, tmp_path: Path) -> Iterator[PostfixRelay]:
    """A running Postfix relaying everything to ``[127.0.0.1]:sink_port``; stopped, with all its processes, after.

    Skips (fails in CI) when Postfix cannot run here. ``tmp_path`` holds
    what it writes, under ``postfix-<port>``, but for its data dir (see the module's docstring).
    """
    require_postfix()
    port = free_port()
    relay = PostfixRelay(port, tmp_path / f"postfix-{port}", Path(tempfile.mkdtemp(prefix="kumotui-postfix-data-")))
    try:
        write_config(relay, bracketed(f"127.0.0.1:{sink_port}"))
        relay.postfix("start")
        yield relay
    finally:
        relay.stop()
