"""What a host has, for guided setup: kernel, CPUs, RAM, KumoMTA, Postfix,
privilege, open-file limit, and whether outbound SMTP is blocked.

KumoMTA's advice for test boxes is to block outbound port 25 so a
misrouted benchmark can never reach a real mail server. kumotui only
*reads* the firewall rules (nftables, then iptables) to say whether that is
done; it never sends a packet to find out. The one connection it makes is
to this host's own port 25 on loopback, to read the greeting of an MTA
there (then QUIT, no mail), so the guide can offer to benchmark that MTA.
"""

from __future__ import annotations

import contextlib
import re
import socket
from dataclasses import dataclass

from kumotui.hosts import Host
from kumotui.text.escape import printable


@dataclass(frozen=True)
class Port25:
    """Whether outbound TCP port 25 is blocked, and how we know."""

    blocked: bool | None
    """True blocked, False open, None could not tell."""
    evidence: str

    @property
    def advice(self) -> str:
        """KumoMTA's advice in one sentence, when it applies."""
        if self.blocked:
            return "Outbound port 25 is blocked: a benchmark cannot reach a real mail server."
        return (
            "KumoMTA advises blocking outbound port 25 on test boxes, e.g. "
            "`nft add rule inet filter output tcp dport 25 reject` (kumotui only sends to loopback "
            "and private addresses, but an MTA under test follows MX records)."
        )


_NFT_RULE = re.compile(r"\bdport\s+(?:\{[^}]*\b(?:25|smtp)\b[^}]*\}|(?:25|smtp)\b).*\b(drop|reject)\b")
_IPT_RULE = re.compile(r"^-A\s+OUTPUT\b.*--dports?\s+(?:\S*,)?(?:25|smtp)(?:,\S*)?\b.*-j\s+(DROP|REJECT)\b", re.M)


def nft_blocks_port25(ruleset: str) -> str | None:
    """The nftables rule that drops or rejects outbound port 25, if any.

    Only chains hooked on ``output`` (or ``postrouting``) count: a rule on
    input filters mail *to* this host, not from it.
    """
    hooked_out = False
    for line in ruleset.splitlines():
        text = line.strip()
        if text.startswith("chain "):
            hooked_out = False
        if re.search(r"\bhook\s+(output|postrouting)\b", text):
            hooked_out = True
        if hooked_out and _NFT_RULE.search(text):
            return text
    return None


def iptables_blocks_port25(saved: str) -> str | None:
    """The ``iptables-save`` rule that drops or rejects outbound port 25, if any."""
    match = _IPT_RULE.search(saved)
    return match.group(0) if match else None


def outbound_port25(host: Host) -> Port25:
    """Read nftables, then iptables; never send anything."""
    nft = host.run(["nft", "list", "ruleset"])
    if nft.code == 0:
        rule = nft_blocks_port25(nft.stdout)
        if rule:
            return Port25(True, f"nftables: {rule}")
    ipt = host.run(["iptables-save"])
    if ipt.code == 0:
        rule = iptables_blocks_port25(ipt.stdout)
        if rule:
            return Port25(True, f"iptables: {rule}")
    if nft.code == 0 or ipt.code == 0:
        return Port25(False, "no rule in nftables or iptables drops outbound TCP port 25")
    return Port25(None, "could not read firewall rules (nft and iptables-save unavailable or not permitted)")


@dataclass(frozen=True)
class KumoMTAInstall:
    """An installed KumoMTA, if any."""

    sbin: str | None
    version: str | None


def kumomta_install(host: Host, sbin: str = "/opt/kumomta/sbin") -> KumoMTAInstall:
    """kumod's location and ``kumod --version``, when it is installed."""
    done = host.run([f"{sbin}/kumod", "--version"])
    if done.code != 0:
        return KumoMTAInstall(None, None)
    return KumoMTAInstall(sbin, done.stdout.strip() or done.stderr.strip() or "unknown version")


LOCAL_MTA = ("127.0.0.1", 25)
"""Where an MTA on this host listens: the guide offers to benchmark *it* (generator → MTA → sink)."""


def local_mta(address: tuple[str, int] = LOCAL_MTA, timeout: float = 1.0) -> str | None:
    """The greeting of an MTA listening on this host's port 25 (loopback only), or None.

    It connects, reads the banner and says QUIT: no mail is sent. Only for
    this machine: a remote host's port 25 is not probed from here.
    """
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            banner = sock.recv(512).decode("utf-8", "replace").strip()
            with contextlib.suppress(OSError):
                sock.sendall(b"QUIT\r\n")
    except OSError:
        return None
    return printable(banner.removeprefix("220").strip(" -")) if banner.startswith("220") else None
