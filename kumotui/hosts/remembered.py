"""The user's settings file: remembered hosts (and room for more).

``$KUMOTUI_CONFIG_DIR/config.yaml`` or ``$XDG_CONFIG_HOME/kumotui/config.yaml``.
Written atomically; a file kumotui cannot parse is reported with its path
and line instead of being overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kumotui.errors import KumotuiError
from kumotui.hosts.address import HostSpec
from kumotui.hosts.local import atomic_write, require_private_dir
from kumotui.paths import config_dir


def config_path() -> Path:
    """Where the settings file lives."""
    return config_dir() / "config.yaml"


@dataclass(frozen=True)
class UserConfig:
    """What kumotui remembers between sessions."""

    hosts: tuple[str, ...] = field(default_factory=tuple)
    """Remote hosts (``[user@]host[:port]``) offered by the app's host switcher."""


def load_config(path: Path | None = None) -> UserConfig:
    """The settings, or defaults when there is no file yet.

    Raises:
        KumotuiError: the file is malformed, or its directory could be changed
            by someone else (remembered hosts are where kumotui connects).
    """
    path = path or config_path()
    require_private_dir(path.parent)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UserConfig()
    except OSError as error:
        raise KumotuiError(f"{path}: cannot read: {error.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise KumotuiError(f"{where}: YAML syntax error: {getattr(error, 'problem', error)}") from None
    hosts = data.get("hosts", []) if isinstance(data, dict) else None
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise KumotuiError(f"{path}: 'hosts' must be a list of [user@]host[:port] strings")
    for index, host in enumerate(hosts):
        # Each one as strictly as --host: this file is data, and a host ssh would
        # read as an option (-F..., -oProxyCommand=...) must never reach it.
        try:
            HostSpec.parse(host)
        except KumotuiError as error:
            raise KumotuiError(f"{path}: hosts[{index}]: {str(error).removeprefix('--host ')}") from None
    return UserConfig(hosts=tuple(hosts))


def save_config(config: UserConfig, path: Path | None = None) -> None:
    """Write the settings atomically (temp file in the same directory, then rename)."""
    text = "# kumotui settings; edited by the app's host switcher.\n" + yaml.safe_dump(
        {"hosts": list(config.hosts)}, sort_keys=False
    )
    atomic_write(path or config_path(), text, mode=0o600)


def remember_host(spec: str, path: Path | None = None) -> UserConfig:
    """Add a host (validated) to the remembered list; returns the new settings."""
    canonical = str(HostSpec.parse(spec))
    config = load_config(path)
    if canonical not in config.hosts:
        config = UserConfig(hosts=(*config.hosts, canonical))
        save_config(config, path)
    return config


def forget_host(spec: str, path: Path | None = None) -> UserConfig:
    """Remove a host from the remembered list; returns the new settings."""
    config = load_config(path)
    if spec in config.hosts:
        config = UserConfig(hosts=tuple(h for h in config.hosts if h != spec))
        save_config(config, path)
    return config
