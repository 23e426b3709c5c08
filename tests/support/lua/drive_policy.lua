-- Load a kumod sink policy with the stub `kumo` module and answer messages with it (tests only).
-- usage: lua5.4 drive_policy.lua STUB_DIR POLICY [SEED] < requests
-- Each request line: COUNT <tab> USER_HEX <tab> DOMAIN_HEX [<tab> more USER_HEX <tab> DOMAIN_HEX: a batch];
-- hex, so any byte can be sent. For each request it prints one line per distinct outcome:
--   INDEX <tab> CODE <tab> TEXT_HEX <tab> TIMES     (CODE 250 and empty text: accepted into the 'null' queue)
local stub_dir, policy, seed = arg[1], arg[2], arg[3]
package.path = stub_dir .. '/?.lua;' .. package.path
local kumo = require 'kumo'
dofile(policy)
kumo.handlers['init']()
if seed ~= nil then
  math.randomseed(tonumber(seed))
end
local received = kumo.handlers['smtp_server_message_received']

local function unhex(text)
  return (text:gsub('%x%x', function(pair) return string.char(tonumber(pair, 16)) end))
end
local function hex(text)
  return (text:gsub('.', function(char) return string.format('%02x', char:byte()) end))
end

local index = 0
for line in io.lines() do
  index = index + 1
  local fields = {}
  for field in (line .. '\t'):gmatch('([^\t]*)\t') do
    fields[#fields + 1] = field
  end
  local recipients = {}
  for at = 2, #fields - 1, 2 do
    recipients[#recipients + 1] = { user = unhex(fields[at]), domain = unhex(fields[at + 1]) }
  end
  local rcpt = #recipients == 1 and recipients[1] or recipients
  local tally, order = {}, {}
  for _ = 1, tonumber(fields[1]) do
    local queue = nil
    local msg = {}
    function msg:recipient() return rcpt end
    function msg:set_meta(key, value)
      if key == 'queue' then queue = value end
    end
    local ok, err = pcall(received, msg)
    local key
    if ok then
      key = (queue == 'null' and '250' or 'no-null-queue') .. '\t'
    elseif getmetatable(err) == kumo.REJECT then
      key = err.code .. '\t' .. hex(err.message)
    else
      error(err, 0)
    end
    if tally[key] == nil then order[#order + 1] = key end
    tally[key] = (tally[key] or 0) + 1
  end
  for _, key in ipairs(order) do
    print(index .. '\t' .. key .. '\t' .. tally[key])
  end
end
