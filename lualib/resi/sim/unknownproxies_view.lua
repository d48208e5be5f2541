--- resi.sim.unknownproxies_view: the token object as the sandbox's
--- UnknownProxies API answers it, and a cache of its encoded JSON for the
--- token read (GET /resi/token), the answer clients poll most: a token is
--- read far more often than it changes, so its JSON is encoded once per
--- state of the token. Each read compares every field the answer shows
--- with the values it was encoded from, so a change made anywhere (usage,
--- expiry, modify, delete) is seen on the next read.
local json = require "resi.json"
local util = require "resi.sim.util"

local M = {}

--- The token fields the answer shows as they are; it adds authType and a
--- copy of allowedPools. view and the cache both read this list, so a
--- field added here is shown and compared alike.
M.FIELDS = { "token", "username", "password", "durationHours", "status", "createdAt", "updatedAt",
  "dataUsage", "dataLimit" }
local FIELDS = M.FIELDS

--- The token object as the API returns it; with_usage adds the daily usage
--- ({date, usage} by date).
---@param t table a token
---@param with_usage? boolean
---@return table
function M.view(t, with_usage)
  -- a copy of the pools: the answer never shares the token's own table
  local out = { authType = "user", allowedPools = json.array(util.copy(t.allowedPools)) }
  for i = 1, #FIELDS do
    local f = FIELDS[i]
    out[f] = t[f]
  end
  if with_usage then
    local days = {}
    for date, bytes in pairs(t.daily) do days[#days + 1] = { date = date, usage = bytes } end
    table.sort(days, function(a, b) return a.date < b.date end)
    out.usage = json.array(days)
  end
  return out
end

-- Are two field values the same for the answer? Equal, and not 0 against
-- -0.0 (equal in Lua, written differently in JSON).
local function same(a, b)
  return a == b and (a ~= 0 or 1 / a == 1 / b)
end

-- Does the cached entry c still show token t as it is now?
local function fresh(c, t)
  for i = 1, #FIELDS do
    local f = FIELDS[i]
    if not same(c[f], t[f]) then return false end
  end
  local pools, shown = t.allowedPools, c.pools -- a sequence of pool ids (checked on modify)
  if #pools ~= #shown then return false end
  for i = 1, #pools do
    if pools[i] ~= shown[i] then return false end
  end
  return true
end

---@class resi.sim.unknownproxies_view.cache
local Cache = {}
Cache.__index = Cache

--- An empty cache (weak-keyed by token: a token that is gone takes its
--- entry with it).
---@return resi.sim.unknownproxies_view.cache
function M.cache()
  return setmetatable({ entries = setmetatable({}, { __mode = "k" }) }, Cache)
end

--- Token t's answer (without usage) as JSON text: the cached text while
--- every field it shows is unchanged, else encoded now and remembered.
---@param t table
---@return string
function Cache:json(t)
  local c = self.entries[t]
  if c and fresh(c, t) then return c.text end
  local v = M.view(t)
  c = { text = json.encode(v), pools = table.move(t.allowedPools, 1, #t.allowedPools, 1, {}) }
  for i = 1, #FIELDS do
    local f = FIELDS[i]
    c[f] = t[f]
  end
  self.entries[t] = c
  return c.text
end

return M
