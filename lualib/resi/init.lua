--- resi: the module scripts start from. Task functions come from resi.task;
--- the other modules (json, http, log, uv) load on first use, so a script
--- that does not use HTTP never loads libcurl.
local task = require "resi.task"
local core = require "resi.core"

---@class resi
---@field json resi.json  loaded on first use
---@field http resi.http  loaded on first use
---@field log resi.log  loaded on first use
---@field ratelimit resi.ratelimit  loaded on first use
---@field fs resi.fs  loaded on first use
---@field uv table  luv, bound to resi's loop (loaded on first use)
local M = {
  spawn = task.spawn,
  sleep = task.sleep,
  all = task.all,
  timeout = task.timeout,
  await = task.await,
  current = task.current,
  cancelled = task.cancelled,
  is_cancelled = task.is_cancelled,
  --- Wall-clock time in seconds since the epoch (with fractions).
  ---@return number
  now = core.now,
  --- Seconds on a clock that never goes back (for durations).
  ---@return number
  monotonic = core.monotonic,
  --- The script's arguments (after the script name); set by the host.
  ---@type string[]
  args = {},
  --- resi's version (RESI_VERSION in runtime/resi.h).
  ---@type string
  version = core.version,
}

-- Modules loaded on first access: resi.json, resi.http, resi.log, resi.uv, resi.ratelimit, resi.fs.
local lazy = {
  json = "resi.json", http = "resi.http", log = "resi.log", uv = "luv", ratelimit = "resi.ratelimit", fs = "resi.fs",
}

return setmetatable(M, {
  __index = function(t, k)
    local name = lazy[k]
    if name == nil then return nil end
    local mod = require(name)
    rawset(t, k, mod)
    return mod
  end,
})
