"""A remote end that hangs, floods or lies: every step has a deadline and a clear error.

The "remote Python" kumotui starts its agent with is ``$KUMOTUI_REMOTE_PYTHON``;
here it is a script on the sshd fixture's host (this machine) that behaves
badly in one way each: never says hello, never answers, answers with an
endless line, with terminal escape codes instead of JSON, with the wrong
types, or with JSON nested too deep to parse. And two "SSH servers" on
loopback that accept and then say nothing, or say hello and then nothing.

Each run is ``kumotui check`` as a real process with a wall-clock limit: it
must end with exit 2 and one line naming the host, within its deadline plus
a little, never a traceback and never a raw escape code. (Before these
deadlines, a silent agent or server hung ``check`` forever and a garbled
reply ended in a traceback.)
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import kumotui
from tests.support.sshd import Sshd
from tests.support.trees import MODERN_KERNEL, make_tree

CONNECT_DEADLINE = 8.0  # ssh plus a Python start on a loaded 2-CPU CI box can take 4 s; the point is "bounded"
REPLY_DEADLINE = 2.0
SLACK = 6.0
"""Seconds allowed beyond a deadline: interpreter start, an SSH handshake, closing the channel."""

FAKE_PYTHON = """#!{python}
import json, sys, time
mode = {mode!r}
out = sys.stdout

def hello():
    out.write(json.dumps({{"ready": True}}) + "\\n")
    out.flush()

if mode == "silent":  # never says hello; exits when the channel closes
    sys.stdin.read()
    sys.exit()
hello()
for line in sys.stdin:
    if mode == "hang":  # reads every request, answers none
        continue
    if mode == "flood":  # one endless reply line
        chunk = "x" * 65536
        try:
            while True:
                out.write(chunk)
        except OSError:
            sys.exit()
    if mode == "garbage":
        out.write("\\x1b]0;owned\\x07\\x1b[2J not json\\n")
    if mode == "types":
        out.write(json.dumps({{"ok": True, "names": {{"a": 1}}, "results": 5}}) + "\\n")
    if mode == "deep":
        out.write("[" * 100000 + "\\n")
    if mode == "errno":
        out.write(json.dumps({{"ok": False, "errno": 10 ** 30, "error": "\\x1b[31mred"}}) + "\\n")
    out.flush()
"""

MODES = {
    "silent": ("no answer within", "starting the agent", CONNECT_DEADLINE),
    "hang": ("did not answer", "", REPLY_DEADLINE),
    "flood": ("larger than 4 MiB", "", REPLY_DEADLINE),
    "garbage": ("malformed (not JSON", "", REPLY_DEADLINE),
    "types": ("malformed", "", REPLY_DEADLINE),
    "deep": ("malformed (not JSON", "", REPLY_DEADLINE),
    "errno": ("malformed (the errno", "", REPLY_DEADLINE),
}


def fake_python(directory: Path, mode: str) -> Path:
    path = directory / f"python-{mode}"
    path.write_text(FAKE_PYTHON.format(python=sys.executable, mode=mode))
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("mode", list(MODES))
def test_hostile_agent_fails_in_time_naming_the_host(sshd: Sshd, tmp_path: Path, mode: str) -> None:
    expected, step, deadline = MODES[mode]
    tree = make_tree(tmp_path / "tree", MODERN_KERNEL)
    env = {
        **sshd.env(),
        "KUMOTUI_REMOTE_PYTHON": str(fake_python(tmp_path, mode)),
        "KUMOTUI_SSH_TIMEOUT": str(CONNECT_DEADLINE),
        "KUMOTUI_AGENT_TIMEOUT": str(REPLY_DEADLINE),
    }
    started = time.monotonic()
    run = kumotui("check", "--host", sshd.spec, "--sysctl-root", tree, env=env, timeout=60)
    took = time.monotonic() - started
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith(f"kumotui: {sshd.spec}: "), run.stderr
    assert expected in run.stderr and step in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "\x1b" not in run.stderr + run.stdout
    assert took < deadline + SLACK, f"{mode}: {took:.1f} s"


@pytest.fixture
def no_ssh_config(tmp_path: Path) -> dict[str, str]:
    """An empty ssh_config, so the user's own ~/.ssh/config plays no part."""
    config = tmp_path / "ssh_config"
    config.write_text("")
    return {"KUMOTUI_SSH_CONFIG": str(config), "KUMOTUI_SSH_TIMEOUT": str(CONNECT_DEADLINE)}


@pytest.fixture(params=["silent", "banner-then-silent"])
def mute_server(request: pytest.FixtureRequest) -> Iterator[int]:
    """A loopback port that accepts connections and then says nothing (or only an SSH banner)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            if request.param == "banner-then-silent":
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 then-nothing\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def test_mute_ssh_server_fails_in_time(mute_server: int, tree_flags: list[str], no_ssh_config: dict[str, str]) -> None:
    started = time.monotonic()
    run = kumotui("check", "--host", f"127.0.0.1:{mute_server}", *tree_flags, env=no_ssh_config, timeout=60)
    took = time.monotonic() - started
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.startswith(f"kumotui: 127.0.0.1:{mute_server}: no answer within {CONNECT_DEADLINE:g} s"), (
        run.stderr
    )
    assert "Traceback" not in run.stderr
    assert took < CONNECT_DEADLINE + SLACK, f"{took:.1f} s"


@pytest.fixture
def tree_flags(tmp_path: Path) -> list[str]:
    return ["--sysctl-root", str(make_tree(tmp_path / "tree", MODERN_KERNEL))]


def test_a_broken_channel_stays_closed(sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a late reply, the next request is refused at once (a late line would answer it)."""
    from kumotui.errors import KumotuiError
    from kumotui.hosts.address import HostSpec
    from kumotui.hosts.remote import RemoteHost

    monkeypatch.setenv("KUMOTUI_SSH_CONFIG", str(sshd.ssh_config))
    monkeypatch.setenv("KUMOTUI_REMOTE_PYTHON", str(fake_python(tmp_path, "hang")))
    host = RemoteHost(HostSpec.parse(sshd.spec), reply_timeout=1.0)
    try:
        started = time.monotonic()
        with pytest.raises(KumotuiError, match=r"did not answer 'facts' within 1 s"):
            host.facts()
        assert time.monotonic() - started < 1.0 + SLACK
        started = time.monotonic()
        with pytest.raises(KumotuiError, match=r"did not answer 'facts'"):
            host.read_text(Path("/etc/hostname"))
        assert time.monotonic() - started < 0.5
    finally:
        host.close()
