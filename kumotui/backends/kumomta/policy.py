"""The sink policy kumotui writes for kumod, and the routing snippet for an MTA under test."""

from __future__ import annotations

import os
import pwd
import re
import stat
from pathlib import Path

from kumotui.backends.kumomta.install import POLICY_NAME, SINK_HTTP_PORT, SINK_PORT
from kumotui.backends.kumomta.lua import lua_string
from kumotui.backends.kumomta.smart import smart_lua
from kumotui.engines.smtp_responses import Responses
from kumotui.errors import KumotuiError

_POLICY = """\
-- kumod sink policy written by kumotui; rewritten on every run, do not edit.
-- Accepts mail from any client and throws it away: every message is put in
-- the 'null' queue, so nothing is spooled or delivered and clients still get
-- 250{smart_note}. Writes no log files. Spools live in a throwaway directory.
local kumo = require 'kumo'

kumo.on('init', function()
  -- Keep the accounting database with the throwaway spools, not in /var.
  kumo.configure_accounting_db_path({accounting})

  kumo.start_esmtp_listener {{
    listen = {smtp_listen},
    relay_hosts = {{ '0.0.0.0/0' }},
  }}

  kumo.start_http_listener {{
    listen = {http_listen},
    trusted_hosts = {{ '127.0.0.1', '::1' }},
  }}

  -- kumod requires the default spools even though the null queue never uses them.
  kumo.define_spool {{
    name = 'data',
    path = {data_spool},
  }}
  kumo.define_spool {{
    name = 'meta',
    path = {meta_spool},
  }}
  -- No kumo.configure_local_logs: a sink keeps no logs.
end)

{smart}kumo.on('smtp_server_message_received', function(msg)
{smart_call}  msg:set_meta('queue', 'null')
end)

kumo.on('http_message_generated', function(msg)
  msg:set_meta('queue', 'null')
end)
"""


_SMART_NOTE = (
    " (as a Smart Sink: a share per recipient domain gets the responses file's\n-- deferrals and bounces instead)"
)


def _listen(host: str, port: int) -> str:
    """``host:port`` with an IPv6 host bracketed, as kumod's ``listen`` expects."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def render_sink_policy(
    spool_dir: Path,
    *,
    port: int = SINK_PORT,
    http_port: int = SINK_HTTP_PORT,
    listen_host: str = "0.0.0.0",
    http_host: str = "0.0.0.0",
    responses: Responses | None = None,
) -> str:
    """The sink policy's Lua text (for writing locally or over SSH).

    Args:
        spool_dir: a throwaway directory for kumod's spools and accounting database.
        port: the ESMTP port (KumoMTA's sink uses 2026).
        http_port: the HTTP port for liveness and ``/metrics`` (KumoMTA's sink uses 8002).
        listen_host: the address the ESMTP listener binds (all IPv4 addresses by default).
        http_host: the address the HTTP listener binds; only loopback is trusted
            for ``/metrics``, while liveness needs no trust.
        responses: a parsed Smart Sink responses file: the policy answers a
            share of messages with its deferrals and bounces per recipient
            domain (:mod:`.smart`); None accepts everything.
    """
    return _POLICY.format(
        smart_note=_SMART_NOTE if responses else "",
        smart=smart_lua(responses) + "\n" if responses else "",
        smart_call="  smart_answer(msg)\n" if responses else "",
        accounting=lua_string(str(spool_dir / "accounting.db")),
        smtp_listen=lua_string(_listen(listen_host, port)),
        http_listen=lua_string(_listen(http_host, http_port)),
        data_spool=lua_string(str(spool_dir / "data")),
        meta_spool=lua_string(str(spool_dir / "meta")),
    )


def write_sink_policy(
    directory: Path,
    *,
    port: int = SINK_PORT,
    http_port: int = SINK_HTTP_PORT,
    listen_host: str = "0.0.0.0",
    http_host: str = "0.0.0.0",
    owner: str | None = None,
    responses: Responses | None = None,
) -> Path:
    """Write ``sink.lua`` and its spool directory under ``directory``; returns the policy path.

    Args:
        directory: a temporary directory the caller owns and removes afterwards.
        port: see :func:`render_sink_policy`.
        http_port: see :func:`render_sink_policy`.
        listen_host: see :func:`render_sink_policy`.
        http_host: see :func:`render_sink_policy`.
        owner: the account kumod will drop to (``--user``) when started as
            root; the directory is handed to it so kumod can still read the
            policy and write its spools after dropping privileges.
        responses: see :func:`render_sink_policy`.

    Raises:
        KumotuiError: the owner does not exist or the files cannot be written.
    """
    spool = directory / "spool"
    try:
        for path in (directory, spool, spool / "data", spool / "meta"):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        policy = directory / POLICY_NAME
        policy.write_text(
            render_sink_policy(
                spool,
                port=port,
                http_port=http_port,
                listen_host=listen_host,
                http_host=http_host,
                responses=responses,
            ),
            encoding="utf-8",
        )
        if owner is not None:
            _give_to(owner, [directory, spool, spool / "data", spool / "meta", policy])
    except OSError as error:
        raise KumotuiError(f"cannot write the kumod sink policy in {directory}: {error.strerror}") from None
    return policy


def _give_to(owner: str, paths: list[Path]) -> None:
    """chown paths to a user (and its primary group), after checking the user can reach them."""
    try:
        account = pwd.getpwnam(owner)
    except KeyError:
        raise KumotuiError(f"user '{owner}' does not exist; create it or choose another kumod --user") from None
    blocked = _unsearchable_parent(paths[0], account.pw_uid, account.pw_gid)
    if blocked is not None:
        raise KumotuiError(
            f"kumod will run as '{owner}', who cannot reach {paths[0]}: {blocked} is not searchable by it "
            "(use a directory under /tmp, e.g. from tempfile.mkdtemp())"
        )
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)


def _unsearchable_parent(directory: Path, uid: int, gid: int) -> Path | None:
    """The first ancestor that user cannot enter, judged by owner, group and other bits."""
    for parent in directory.resolve().parents:
        info = parent.stat()
        if info.st_uid == uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid == gid:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return parent
    return None


def routing_snippet(sink_host: str, sink_port: int = SINK_PORT) -> str:
    """``init.lua`` text that routes an MTA under test to a kumotui sink.

    Every received message is queued for the sink (``set_meta('queue', ...)``,
    as KumoMTA's performance docs do), and the egress path to it uses the
    sink's port and lifts ``prohibited_hosts``, without which kumod refuses
    to deliver to loopback and private addresses (``550 5.4.4``).
    """
    domain = _routing_domain(sink_host)
    quoted = lua_string(domain)
    return f"""\
-- Route every message this MTA receives to the kumotui sink at {_listen(sink_host, sink_port)}.
-- For benchmarks only: no message reaches its real recipient.
kumo.on('smtp_server_message_received', function(msg)
  msg:set_meta('queue', {quoted})
end)

-- kumod refuses loopback and private destinations by default (prohibited_hosts,
-- "550 5.4.4"); allow them, and use the sink's port, on the path to the sink only.
-- get_egress_path_config may be defined only once: if your policy already has one
-- (or uses the shaping helper), add this branch to it instead.
kumo.on('get_egress_path_config', function(routing_domain, egress_source, site_name)
  if routing_domain == {quoted} then
    return kumo.make_egress_path {{
      smtp_port = {sink_port},
      prohibited_hosts = {{}},
    }}
  end
  return kumo.make_egress_path {{}}
end)
"""


def _routing_domain(host: str) -> str:
    """An IP literal must be bracketed to be routed to (``[10.0.0.5]``, ``[IPv6:::1]``)."""
    if ":" in host:
        return f"[IPv6:{host.strip('[]')}]"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", host):
        return f"[{host}]"
    return host
