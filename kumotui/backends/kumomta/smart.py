"""The Smart Sink in kumod's policy: a responses file's tables embedded as Lua, and the rules that answer from them.

Why: KumoMTA's own Smart Sink (``examples/smart-sink-docker``) reads
``responses.toml`` with ``kumo.toml_load`` on the sink host. kumotui instead
parses the file once, where it runs, with the same checked parser as its
built-in sink (:mod:`kumotui.engines.smtp_responses`), and writes the result
into the policy as a Lua table (every string through :func:`.lua.lua_bytes`,
so a reply text can never end its literal and become code). So:

- both of kumotui's sinks answer from identical tables: the same shares,
  the same reply lines (kumotui's multi-line rendering, wrapped and with a
  repeated code dropped), the same forced local parts, the same domain
  matching (whole, then without trailing labels, so
  ``gmail.com.kumotui.test`` finds ``gmail.com``);
- a bad file is refused before kumod starts, naming file, table and key,
  instead of failing inside kumod on the first message;
- the policy is one self-contained file: nothing else to copy to a sink host.

The rules, as KumoMTA's Smart Sink applies them per message at
``smtp_server_message_received`` (the built-in sink applies the local-part
ones at ``RCPT``, with the same replies): a local part containing
``tempfail`` / ``permfail`` is refused 451 / 550; one starting ``450-`` is
refused 450; one starting ``250-`` is accepted without a draw; otherwise a
uniform roll in [0, 100) below ``bounce`` draws a bounce, below
``bounce + defer`` a deferral (one entry of the domain's list, or
``550 boing!`` / ``451 later!``), else the message is accepted and
discarded. kumod writes a reply text's lines as ``CODE-line`` ... ``CODE line``
(its ``write_response`` splits on line breaks), so each reply is embedded as
its lines joined by ``\\n``: the bytes on the wire are the built-in sink's.
"""

from __future__ import annotations

from kumotui.backends.kumomta.lua import LuaValue, lua_value
from kumotui.engines import smtp_sink
from kumotui.engines.smtp_responses import MAX_LOOKUPS, DomainRule, Responses

FORCED: dict[str, bytes] = {
    "tempfail": smtp_sink.R_TEMPFAIL_RCPT,
    "permfail": smtp_sink.R_PERMFAIL_RCPT,
    "450-": smtp_sink.R_DEFER_450_RCPT,
}
"""The replies a recipient's local part asks for: the built-in sink's own, so both sinks say the same."""


def reply_parts(reply: bytes) -> tuple[int, str]:
    """A rendered reply (``421-a\\r\\n421 b\\r\\n``) as kumod's ``kumo.reject`` takes it: code and lines."""
    lines = reply.decode("ascii").split("\r\n")[:-1]
    return int(lines[0][:3]), "\n".join(line[4:] for line in lines)


def _rule_table(rule: DomainRule) -> dict[str, LuaValue]:
    return {
        "bounce": rule.bounce,
        "defer": rule.defer,
        "bounces": [list(reply_parts(reply)) for reply in rule.bounces],
        "defers": [list(reply_parts(reply)) for reply in rule.defers],
    }


def smart_tables(responses: Responses) -> dict[str, LuaValue]:
    """A parsed responses file as the plain data the Lua rules read."""
    return {
        "source": responses.source,
        "default": _rule_table(responses.default),
        "rules": {name: _rule_table(rule) for name, rule in responses.rules.items()},
        "forced": {key: list(reply_parts(reply)) for key, reply in FORCED.items()},
    }


_RULES = """\
-- The Smart Sink's rules (kumotui/backends/kumomta/smart.py), the same as kumotui's built-in sink's.
local SMART_CACHE, SMART_CACHED = {{}}, 0

-- A recipient domain's rule: its own, else a parent's by trailing labels, else the default.
local function smart_rule(domain)
  domain = string.lower(domain or '')
  local cached = SMART_CACHE[domain]
  if cached ~= nil then
    return cached
  end
  local labels = {{}}
  for label in (string.gsub(domain, '%.+$', '') .. '.'):gmatch('([^.]*)%.') do
    labels[#labels + 1] = label
  end
  local rule = SMART.default
  for stop = #labels, 1, -1 do
    local found = SMART.rules[table.concat(labels, '.', 1, stop)]
    if found ~= nil then
      rule = found
      break
    end
  end
  if SMART_CACHED < {max_lookups} then
    SMART_CACHE[domain] = rule
    SMART_CACHED = SMART_CACHED + 1
  end
  return rule
end

-- One message's answer: nil to accept it, else the code and text for kumo.reject.
local function smart_reply(user, domain)
  local wants = string.lower(user or '')
  for _, key in ipairs {{ 'tempfail', 'permfail' }} do
    if string.find(wants, key, 1, true) then
      return SMART.forced[key][1], SMART.forced[key][2]
    end
  end
  if string.sub(wants, 1, 4) == '450-' then
    return SMART.forced['450-'][1], SMART.forced['450-'][2]
  end
  if string.sub(wants, 1, 4) == '250-' then
    return nil
  end
  local rule = smart_rule(domain)
  local roll = math.random() * 100
  local pick = nil
  if roll < rule.bounce then
    pick = rule.bounces
  elseif roll < rule.bounce + rule.defer then
    pick = rule.defers
  end
  if pick == nil then
    return nil
  end
  local reply = pick[math.random(#pick)]
  return reply[1], reply[2]
end

-- A batch's recipients come as a list on newer kumod: its first one answers, as in the built-in sink.
local function smart_answer(msg)
  local rcpt = msg:recipient()
  if type(rcpt) == 'table' and rcpt[1] ~= nil then
    rcpt = rcpt[1]
  end
  local code, text = smart_reply(rcpt.user, rcpt.domain)
  if code ~= nil then
    kumo.reject(code, text)
  end
end
"""


def smart_lua(responses: Responses) -> str:
    """The Lua that defines ``smart_answer(msg)``: the file's tables, then the rules that answer from them."""
    return (
        "-- The responses file's tables, parsed and checked by kumotui (SMART.source names the file).\n"
        f"local SMART = {lua_value(smart_tables(responses))}\n\n" + _RULES.format(max_lookups=MAX_LOOKUPS)
    )
