"""Transparent redirection: the MTA host's outbound port 25 sent to the sink, by a firewall rule kumotui owns.

Why: routing every message to the sink (``queue = sink``) measures maximum
throughput but funnels mail into a few queues; KumoMTA's guide redirects
outbound port 25 at the firewall instead, so the MTA uses its real routing
and shaping and the sink still gets everything. kumotui adds that rule in a
table of its own (nftables ``inet kumotui``; iptables' ``nat OUTPUT`` with a
``kumotui`` comment where the host has no ``nft``), never touching any other
rule, and journals it the way a sysctl change is journaled: the journal file
is written *before* the rule, removed only *after* the rule is gone, so a
crash in between leaves a journal that the next start (or ``kumotui redirect
remove``) finds and undoes.

Commands are argument lists run through the host (never shell text).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kumotui.errors import KumotuiError
from kumotui.hosts.address import parse_address

RunCommand = Callable[[list[str]], tuple[int, str]]
"""Runs an argument list on the MTA host: (exit status, stderr)."""
TABLE = "kumotui"
"""The nftables table (family ``inet``) that holds kumotui's rule and nothing else."""
JOURNAL_NAME = "redirect.json"
"""The journal of the rule in place, in the state dir of the host that has it."""
COMMENT = "kumotui redirect"


@dataclass(frozen=True)
class Redirect:
    """Outbound TCP port 25 to the sink at ``host:port``."""

    host: str
    port: int
    tool: str
    """``nft`` or ``iptables``: what wrote the rule, so the same tool removes it."""

    @property
    def local(self) -> bool:
        """The sink is on this host (a loopback address): a ``redirect``, not a ``dnat``."""
        return self.host.startswith("127.") or self.host == "::1"

    def add_commands(self) -> list[list[str]]:
        """The commands that add the rule (shown before they run)."""
        if self.tool == "nft":
            target = f"redirect to :{self.port}" if self.local else f"dnat ip to {self.host}:{self.port}"
            return [
                ["nft", "add", "table", "inet", TABLE],
                ["nft", "add", "chain", "inet", TABLE, "output", "{ type nat hook output priority -100; }"],
                [
                    "nft",
                    "add",
                    "rule",
                    "inet",
                    TABLE,
                    "output",
                    "tcp",
                    "dport",
                    "25",
                    *target.split(),
                    "comment",
                    f'"{COMMENT}"',
                ],
            ]
        return [["iptables", "-t", "nat", "-A", "OUTPUT", *self._iptables_rule()]]

    def remove_commands(self) -> list[list[str]]:
        """The commands that remove exactly what :meth:`add_commands` added."""
        if self.tool == "nft":
            return [["nft", "delete", "table", "inet", TABLE]]
        return [["iptables", "-t", "nat", "-D", "OUTPUT", *self._iptables_rule()]]

    def _iptables_rule(self) -> list[str]:
        target = (
            ["-j", "REDIRECT", "--to-ports", str(self.port)]
            if self.local
            else ["-j", "DNAT", "--to-destination", f"{self.host}:{self.port}"]
        )
        return ["-p", "tcp", "--dport", "25", "-m", "comment", "--comment", COMMENT, *target]

    def as_json(self) -> dict[str, object]:
        """The journal's shape."""
        return {"host": self.host, "port": self.port, "tool": self.tool}


def plan_redirect(sink: str, tool: str | None = None) -> Redirect:
    """The rule for a sink at ``sink`` (``HOST:PORT``), with the host's firewall tool.

    Raises:
        KumotuiError: no usable address, or neither nft nor iptables is installed.
    """
    try:
        host, port = parse_address(sink, 2026)
    except ValueError as error:
        raise KumotuiError(f"--redirect-to {sink!r}: {error}") from None
    chosen = tool or ("nft" if shutil.which("nft") else "iptables" if shutil.which("iptables") else None)
    if chosen is None:
        raise KumotuiError("redirection needs nftables (nft) or iptables on the MTA host; neither is installed")
    return Redirect(host.strip("[]"), port, chosen)


def journal_path(state_dir: Path) -> Path:
    """Where the rule in place is journaled."""
    return state_dir / JOURNAL_NAME


def leftover(state_dir: Path) -> Redirect | None:
    """A rule a run (or a crash) left in place, from its journal; None when there is none."""
    path = journal_path(state_dir)
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Redirect(str(data["host"]), int(data["port"]), str(data["tool"]))


def add_redirect(rule: Redirect, state_dir: Path, run: RunCommand) -> None:
    """Journal, then add the rule; a failure removes whatever was added and the journal.

    Raises:
        KumotuiError: a redirect is already in place, or the firewall refused (its reason quoted).
    """
    if leftover(state_dir) is not None:
        raise KumotuiError(
            f"a redirect is already in place ({journal_path(state_dir)}); remove it with `kumotui redirect remove`"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    journal_path(state_dir).write_text(json.dumps(rule.as_json()) + "\n", encoding="utf-8")
    for command in rule.add_commands():
        code, error = run(command)
        if code != 0:
            remove_redirect(state_dir, run, quiet=True)
            raise KumotuiError(f"{' '.join(command[:3])}: {error.strip() or f'exit status {code}'}")


def remove_redirect(state_dir: Path, run: RunCommand, *, quiet: bool = False) -> Redirect | None:
    """Remove the journaled rule, then its journal; the rule removed, or None when none was in place.

    Raises:
        KumotuiError: the firewall refused to remove it (the journal is kept, so it can be tried again).
    """
    rule = leftover(state_dir)
    if rule is None:
        return None
    for command in rule.remove_commands():
        code, error = run(command)
        if code != 0 and not quiet and "No such file" not in error and "does not exist" not in error:
            raise KumotuiError(f"{' '.join(command[:3])}: {error.strip() or f'exit status {code}'}")
    journal_path(state_dir).unlink(missing_ok=True)
    return rule
