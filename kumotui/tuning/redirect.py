"""Transparent redirection: the MTA host's outbound port 25 sent to the sink, by a firewall rule kumotui owns.

Why: routing every message to the sink (``queue = sink``) measures maximum
throughput but funnels mail into a few queues; KumoMTA's guide redirects
outbound port 25 at the firewall instead, so the MTA uses its real routing
and shaping and the sink still gets everything. kumotui adds that rule in a
table of its own (nftables ``inet kumotui``; iptables' ``nat OUTPUT`` with a
``kumotui`` comment where the host has no ``nft``), never touching any other
rule, and journals it the way a sysctl change is journaled: the journal file
is written *before* the rule, removed only *after* the rule is gone, so a
crash in between leaves a journal that the next start (``check``, ``apply``,
``bench``, the app) reports and ``kumotui redirect remove`` or ``kumotui
rollback`` undoes.

The MTA's own inbound address (``--through``) is left out of the rule, so the
generator's connections to an MTA listening on port 25 are not redirected too.
Commands are argument lists run through the host (never shell text), as root
or through ``sudo -n``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kumotui.errors import KumotuiError
from kumotui.hosts import Host
from kumotui.hosts.address import parse_address

RunCommand = Callable[[list[str]], tuple[int, str]]
"""Runs an argument list on the MTA host: (exit status, stderr)."""
TABLE = "kumotui"
"""The nftables table (family ``inet``) that holds kumotui's rule and nothing else."""
JOURNAL_NAME = "redirect.json"
"""The journal of the rule in place, in the state dir of the host that has it."""
COMMENT = "kumotui redirect"
TRADE_OFF = (
    "Routing every message to the sink (the MTA's queue set to the sink) measures maximum throughput, "
    "but funnels mail into a few queues; redirecting outbound port 25 lets the MTA use its real routing, "
    "so queue management and traffic shaping per destination show (KumoMTA's testing guide)."
)
"""The choice between the two, in the words the CLI help and the README use."""
TRADE_OFF_SHORT = (
    "Routing every message to the sink measures maximum throughput; redirecting port 25 keeps the MTA's\n"
    "real routing, so its queue management and shaping show too (KumoMTA's testing guide)."
)
"""The same choice in two lines, where the app offers the redirect."""


@dataclass(frozen=True)
class Redirect:
    """Outbound TCP port 25 to the sink at ``host:port``, except to ``keep`` (the MTA's own inbound address)."""

    host: str
    port: int
    tool: str
    """``nft`` or ``iptables``: what wrote the rule, so the same tool removes it."""
    keep: str | None = None
    """An address whose port 25 stays as it is: the MTA under test's own (the generator sends there)."""
    pid: int = 0
    """The kumotui process that added it (0: unknown), so a live run's rule is not called a leftover."""
    by: str = ""
    """The machine that process ran on."""

    @property
    def local(self) -> bool:
        """The sink is on the MTA's host (a loopback address): a ``redirect``, not a ``dnat``."""
        return ipaddress.ip_address(self.host).is_loopback

    def _keep_match(self, nft: bool) -> list[str]:
        if self.keep is None:
            return []
        if nft:
            family = "ip6" if ipaddress.ip_address(self.keep).version == 6 else "ip"
            return [family, "daddr", "!=", self.keep]
        return ["!", "-d", self.keep]

    def add_commands(self) -> list[list[str]]:
        """The commands that add the rule (shown before they run)."""
        if self.tool == "nft":
            version = ipaddress.ip_address(self.host).version
            family = "ip6" if version == 6 else "ip"
            sink = f"[{self.host}]:{self.port}" if version == 6 else f"{self.host}:{self.port}"
            target = ["redirect", "to", f":{self.port}"] if self.local else ["dnat", family, "to", sink]
            return [
                ["nft", "add", "table", "inet", TABLE],
                ["nft", "add", "chain", "inet", TABLE, "output", "{ type nat hook output priority -100; }"],
                ["nft", "add", "rule", "inet", TABLE, "output", *self._keep_match(True), "tcp", "dport", "25",
                 *target, "comment", f'"{COMMENT}"'],
            ]  # fmt: skip
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
        return ["-p", "tcp", *self._keep_match(False), "--dport", "25", "-m", "comment", "--comment", COMMENT, *target]

    def describe(self) -> str:
        """One line: what goes where, with which tool."""
        kept = f", except to {self.keep}" if self.keep else ""
        tool = "nftables" if self.tool == "nft" else "iptables"
        return f"outbound TCP port 25 -> {self.host}:{self.port}{kept} ({tool}, {TABLE!r} rule)"

    def plan_text(self, on: str = "") -> str:
        """What is about to be written on host ``on``, shown before it is (the CLI prints it, the app asks
        with it)."""
        where = f"On {on}, for this run" if on else "For this run"
        return (
            f"{where}, {self.describe()}; removed when the run ends (journaled first: after a crash, "
            "`kumotui redirect remove` or `kumotui rollback` removes it). Writing:\n" + self.shown(self.add_commands())
        )

    def shown(self, commands: list[list[str]]) -> str:
        """Commands as a user would type them, one per line (for plans and hand-run fixes)."""
        return "".join(f"  {shlex.join(command)}\n" for command in commands)

    def as_json(self) -> dict[str, object]:
        """The journal's shape."""
        return {"host": self.host, "port": self.port, "tool": self.tool, "keep": self.keep, "pid": self.pid,
                "by": self.by}  # fmt: skip

    def running(self) -> bool:
        """Whether the kumotui process that added the rule still runs (here): then it is in use, not left over."""
        if self.pid <= 0 or self.by != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def plan_redirect(sink: str, keep: str | None, host: Host, tool: str | None = None) -> Redirect:
    """The rule that sends ``host``'s outbound port 25 to ``sink`` (``HOST:PORT``), sparing ``keep``.

    Raises:
        KumotuiError: an address that is not an IP literal, or neither nft nor iptables on the host.
    """
    address, port = parse_address(sink, 2026)
    for given in (address, keep):
        try:
            ipaddress.ip_address((given or "127.0.0.1").strip("[]"))
        except ValueError:
            raise KumotuiError(
                f"--redirect-port25: {given!r} is not an IP address; the rule needs the sink's and the MTA's "
                "addresses (e.g. 127.0.0.1), not names"
            ) from None
    chosen = tool or _firewall_tool(host)
    return Redirect(address.strip("[]"), port, chosen, keep.strip("[]") if keep else None, os.getpid(),
                    socket.gethostname())  # fmt: skip


def _firewall_tool(host: Host) -> str:
    """``nft`` where the host has it, else ``iptables``.

    Raises:
        KumotuiError: it has neither.
    """
    for tool in ("nft", "iptables"):
        found = host.run(["sh", "-c", 'command -v "$1"', "sh", tool])
        if found.code == 0 and found.stdout.strip():
            return tool
    raise KumotuiError(f"--redirect-port25: {host.name} has neither nftables (nft) nor iptables; install nftables")


def firewall_runner(host: Host) -> RunCommand:
    """Run firewall commands on ``host``: as root directly, else through ``sudo -n``.

    Raises:
        KumotuiError: neither is possible (naming what to do instead).
    """
    prefix: list[str] = []
    if not host.is_root():
        if host.run(["sudo", "-n", "true"]).code != 0:
            raise KumotuiError(
                f"redirect on {host.name}: changing the firewall needs root, and `sudo -n` is not allowed; "
                "run kumotui as root (or with sudo rights)"
            )
        prefix = ["sudo", "-n", "--"]

    def run(argv: list[str]) -> tuple[int, str]:
        done = host.run([*prefix, *argv])
        return done.code, done.stderr

    return run


def journal_path(state_dir: Path) -> Path:
    """Where the rule in place is journaled."""
    return state_dir / JOURNAL_NAME


def leftover(host: Host, state_dir: Path) -> Redirect | None:
    """The rule in place (a run's, or one a crash left), from its journal; None when there is none.

    Raises:
        KumotuiError: the journal cannot be read (naming the file).
    """
    path = journal_path(state_dir)
    try:
        text = host.read_text(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise KumotuiError(f"{path}: cannot read it: {error.strerror}") from None
    try:
        data = json.loads(text)
        return Redirect(str(data["host"]), int(data["port"]), str(data["tool"]), data.get("keep"),
                        int(data.get("pid", 0)), str(data.get("by", "")))  # fmt: skip
    except (ValueError, KeyError, TypeError) as error:
        raise KumotuiError(
            f"{path}: not a redirect journal ({error}); remove the rule by hand, then the file"
        ) from None


def leftover_notice(host: Host, state_dir: Path, undo_flags: str = "") -> str | None:
    """What the next start must say about a rule nobody is using, with the command that removes it."""
    rule = leftover(host, state_dir)
    if rule is None or rule.running():
        return None
    return (
        f"a port-25 redirect is still in place on {host.name} ({rule.describe()}), left by a benchmark that "
        f"did not end cleanly; remove it with: kumotui redirect remove{undo_flags}"
    )


def add_redirect(rule: Redirect, host: Host, state_dir: Path, run: RunCommand) -> None:
    """Journal, then add the rule; a failure removes whatever was added and the journal.

    Raises:
        KumotuiError: a redirect is already in place, or the firewall refused (its reason quoted).
    """
    if leftover(host, state_dir) is not None:
        raise KumotuiError(
            f"--redirect-port25: a redirect is already in place ({journal_path(state_dir)}); "
            "remove it with `kumotui redirect remove`"
        )
    host.replace_file(journal_path(state_dir), json.dumps(rule.as_json()) + "\n")
    for command in rule.add_commands():
        code, error = run(command)
        if code != 0:
            remove_redirect(host, state_dir, run, quiet=True)
            raise KumotuiError(f"--redirect-port25: {shlex.join(command[:3])}: {error.strip() or f'exit {code}'}")


def remove_redirect(host: Host, state_dir: Path, run: RunCommand, *, quiet: bool = False) -> Redirect | None:
    """Remove the journaled rule, then its journal; the rule removed, or None when none was in place.

    A rule that is already gone (removed by hand) counts as removed.

    Raises:
        KumotuiError: the firewall refused to remove it (the journal is kept, so it can be tried again).
    """
    rule = leftover(host, state_dir)
    if rule is None:
        return None
    for command in rule.remove_commands():
        code, error = run(command)
        gone = "No such file" in error or "does not exist" in error or "Bad rule" in error
        if code != 0 and not quiet and not gone:
            raise KumotuiError(
                f"{shlex.join(command)}: {error.strip() or f'exit {code}'}; the journal "
                f"{journal_path(state_dir)} is kept so `kumotui redirect remove` can try again"
            )
    host.remove_file(journal_path(state_dir))
    return rule
