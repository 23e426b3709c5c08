"""Remembered hosts in the user's settings file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumotui.errors import KumotuiError
from kumotui.hosts.remembered import config_path, forget_host, load_config, remember_host


def test_remember_and_forget_hosts(tmp_path: Path) -> None:
    assert config_path() == tmp_path / "config" / "config.yaml"  # KUMOTUI_CONFIG_DIR from conftest
    assert load_config().hosts == ()
    remember_host("root@mta1.example.net:2222")
    remember_host("sink.example.net")
    remember_host("root@mta1.example.net:2222")  # no duplicate
    assert load_config().hosts == ("root@mta1.example.net:2222", "sink.example.net")
    forget_host("sink.example.net")
    assert load_config().hosts == ("root@mta1.example.net:2222",)
    assert "# kumotui settings" in config_path().read_text()


def test_bad_host_and_bad_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KumotuiError, match="expected \\[user@\\]host\\[:port\\]"):
        remember_host("a b; rm -rf /")
    config_path().parent.mkdir(parents=True)
    config_path().write_text("hosts: [unclosed\n")
    with pytest.raises(KumotuiError, match=r"config\.yaml:2: YAML syntax error"):
        load_config()
    config_path().write_text("hosts: 5\n")
    with pytest.raises(KumotuiError, match="'hosts' must be a list"):
        load_config()
