-- A stand-in for kumod's `kumo` module (tests only): just enough of KumoMTA's documented policy API to
-- load kumotui's sink policy under a plain Lua 5.4 interpreter and call its event handlers.
-- kumo.on records each handler (kumod allows one per event); the init-time calls are recorded;
-- kumo.reject raises an error carrying the code and text, as kumod's does (docs/reference/kumo/reject.md).
-- Any other field is an error, so a policy that strays from this API fails here instead of in kumod.
local kumo = { handlers = {}, calls = {}, REJECT = {} }

function kumo.on(name, handler)
  if kumo.handlers[name] ~= nil then
    error('kumo.on: ' .. name .. ' defined twice')
  end
  kumo.handlers[name] = handler
end

local function recorded(name)
  return function(arg)
    kumo.calls[#kumo.calls + 1] = { name = name, arg = arg }
  end
end

kumo.configure_accounting_db_path = recorded 'configure_accounting_db_path'
kumo.start_esmtp_listener = recorded 'start_esmtp_listener'
kumo.start_http_listener = recorded 'start_http_listener'
kumo.define_spool = recorded 'define_spool'

function kumo.reject(code, message)
  if math.type(code) ~= 'integer' or type(message) ~= 'string' then
    error('kumo.reject(code, message): an integer code and a string, not ' .. type(code) .. ', ' .. type(message))
  end
  error(setmetatable({ code = code, message = message }, kumo.REJECT), 0)
end

return setmetatable(kumo, {
  __index = function(_, key)
    error('kumo.' .. tostring(key) .. ' is not in the test stub of the kumo module', 2)
  end,
})
