"""Running the real ``kumotui`` command in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def kumotui(
    *args: str | Path,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    prefix: list[str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kumotui ARGS`` (optionally behind ``prefix``, e.g. unshare)."""
    command = [*(prefix or []), sys.executable, "-m", "kumotui", *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, input=stdin, env={**os.environ, **(env or {})}
    )
