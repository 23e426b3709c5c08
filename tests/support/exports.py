"""Reading exports and ``apply --dry-run`` back in tests: which keys each one sets or changes."""

from __future__ import annotations

import configparser
from typing import Any

import yaml


def dry_run_changes(stdout: str) -> dict[str, str]:
    """``apply --dry-run``'s runtime changes (``  KEY: BEFORE -> AFTER`` under ``Runtime changes:``): key -> after."""
    changes: dict[str, str] = {}
    lines = stdout.splitlines()
    if "Runtime changes:" not in lines:
        return changes
    for line in lines[lines.index("Runtime changes:") + 1 :]:
        if not line.startswith("  "):
            break
        key, _, change = line.strip().partition(": ")
        changes[key] = change.rpartition(" -> ")[2]
    return changes


def tuned_sysctl(text: str) -> dict[str, str]:
    """The ``[sysctl]`` section of a tuned.conf, read as TuneD's own parser options read it."""
    parser = configparser.ConfigParser(delimiters=("=",), inline_comment_prefixes=("#",), strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return dict(parser["sysctl"])


def ansible_sysctl(text: str) -> dict[str, str]:
    """The playbook's ``ansible.posix.sysctl`` tasks: name -> value, in order."""
    (play,) = yaml.safe_load(text)
    tasks: list[dict[str, Any]] = play["tasks"]
    return {
        t["ansible.posix.sysctl"]["name"]: t["ansible.posix.sysctl"]["value"]
        for t in tasks
        if "ansible.posix.sysctl" in t
    }
