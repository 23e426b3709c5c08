"""Helpers the tests share: the CLI runner, processes and waits, sshd, SMTP, trees, the demo host, shots."""
