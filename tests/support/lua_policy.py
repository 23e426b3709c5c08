"""kumod's sink policy run for real under a Lua 5.4 interpreter, with a stub of kumod's ``kumo`` module.

KumoMTA cannot be installed here, so the Lua kumotui generates is run by
Debian's ``lua5.4`` (kumod embeds Lua 5.4 too, through mlua) with
``tests/support/lua/kumo.lua`` standing in for the ``kumo`` module, and the
replies are written the way kumod's ``write_response`` writes them
(:func:`kumod_wire`). What this proves: the policy loads, its handlers
answer as intended, and its strings carry exactly the bytes given. What it
cannot: that a real kumod accepts every call (only the documented API is
stubbed, and any other ``kumo.*`` access fails the test).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

LUA_DIR = Path(__file__).resolve().parent / "lua"


def lua() -> str:
    """The Lua 5.4 interpreter; skipped without one (failed in CI: ``.ci/setup --test`` installs it)."""
    found = shutil.which("lua5.4")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("needs lua5.4 (apt install lua5.4)")
        pytest.skip("needs lua5.4 (apt install lua5.4)")
    return found


@dataclass(frozen=True)
class Outcome:
    """What the policy did with a message: accepted (250, no text) or ``kumo.reject(code, text)``."""

    code: int
    text: bytes


def run_policy(
    policy: Path, requests: Sequence[tuple[int, Sequence[tuple[bytes, bytes]]]], seed: int | None = None
) -> list[dict[Outcome, int]]:
    """Answer ``count`` messages per request (its recipients: (user, domain) bytes); outcomes per request."""
    lines = "".join(
        "\t".join([str(count), *(part.hex() for rcpt in rcpts for part in rcpt)]) + "\n" for count, rcpts in requests
    )
    argv = [lua(), str(LUA_DIR / "drive_policy.lua"), str(LUA_DIR), str(policy)]
    done = subprocess.run(
        [*argv, *([str(seed)] if seed is not None else [])], input=lines, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[Outcome, int]] = [{} for _ in requests]
    for line in done.stdout.splitlines():
        index, code, text, times = line.split("\t")
        assert code != "no-null-queue", "a message was accepted without being put in the 'null' queue"
        results[int(index) - 1][Outcome(int(code), bytes.fromhex(text))] = int(times)
    return results


def kumod_wire(outcome: Outcome) -> bytes:
    """The reply bytes kumod writes for ``kumo.reject(code, text)``.

    As kumod's ``write_response`` (crates/kumod/src/smtp_server.rs): Rust's
    ``str::lines()`` (split at ``\\n``, a trailing ``\\r`` dropped from each
    line, no empty last line), each line as ``CODE-line`` and the last as
    ``CODE line``, every one ended by CRLF.
    """
    lines = outcome.text.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [line.removesuffix(b"\r") for line in lines]
    code = str(outcome.code).encode()
    return b"".join(code + (b" " if at == len(lines) - 1 else b"-") + line + b"\r\n" for at, line in enumerate(lines))
