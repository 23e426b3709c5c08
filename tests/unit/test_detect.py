"""Reading firewall rules for outbound port 25 (never sending anything)."""

from __future__ import annotations

from kumotui.onboarding.detect import iptables_blocks_port25, nft_blocks_port25

NFT_BLOCKED = """\
table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\tip daddr 127.0.0.0/8 accept
\t\ttcp dport { 25, 465 } counter packets 0 bytes 0 reject with tcp reset
\t}
}
"""

NFT_INPUT_ONLY = """\
table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\ttcp dport 25 drop
\t}
}
"""


def test_nft_rule_in_output_chain_blocks() -> None:
    assert nft_blocks_port25(NFT_BLOCKED) == "tcp dport { 25, 465 } counter packets 0 bytes 0 reject with tcp reset"
    assert nft_blocks_port25(NFT_BLOCKED.replace("{ 25, 465 }", "smtp")) is not None


def test_nft_rule_on_input_does_not_count() -> None:
    assert nft_blocks_port25(NFT_INPUT_ONLY) is None
    assert nft_blocks_port25(NFT_BLOCKED.replace("{ 25, 465 }", "2525")) is None


def test_iptables_save() -> None:
    rule = "-A OUTPUT -p tcp -m tcp --dport 25 -j REJECT --reject-with icmp-port-unreachable"
    saved = f"*filter\n:OUTPUT ACCEPT [0:0]\n{rule}\nCOMMIT\n"
    assert iptables_blocks_port25(saved) is not None
    assert iptables_blocks_port25(saved.replace("-A OUTPUT", "-A INPUT")) is None
    assert iptables_blocks_port25(saved.replace("--dport 25 ", "--dport 2525 ")) is None
    multi = "-A OUTPUT -p tcp -m multiport --dports 465,25,587 -j DROP\n"
    assert iptables_blocks_port25(multi) is not None


def test_a_local_mta_is_known_by_its_greeting_and_nothing_is_sent() -> None:
    """A listener on loopback greets like an MTA; the detection reads the banner and says QUIT only."""
    import socket
    import threading

    from kumotui.onboarding.detect import local_mta

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    got: list[bytes] = []

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"220 mx.test ESMTP Postfix (Debian/GNU)\r\n")
            got.append(conn.recv(100))

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        assert local_mta(server.getsockname()) == "mx.test ESMTP Postfix (Debian/GNU)"
    finally:
        thread.join(5)
        server.close()
    assert got == [b"QUIT\r\n"]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    address = closed.getsockname()
    closed.close()
    assert local_mta(address) is None  # nothing listens: no MTA
