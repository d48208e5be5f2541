--- resi.sim.resifactory_limits: ResiFactory's rate limits, an exact sliding
--- log per (caller, endpoint group) over a rolling window of real time
--- (resi.core.monotonic, not the simulated clock).
---
--- The window and limits are read from the world's config at every call, so
--- `POST /_sim/config` takes effect at once: `rate_window` (seconds, 60),
--- `generate_limit` (20), `read_limit` (120).
---
--- A refused request (429) is not recorded: it does not push the caller's
--- window further out, so Retry-After is exact. RateLimit-Reset is the Unix
--- time (rounded up) at which the oldest request still counted leaves the
--- window, i.e. when Remaining next goes up; on a 429 it is when a request
--- will be accepted again, matching Retry-After.
local core = require "resi.core"

local M = {}

---@class resi.sim.resifactory.limiter
---@field config table the world's config (read live)
---@field logs table<string, number[]> monotonic times of counted requests
local Limiter = {}
Limiter.__index = Limiter

--- A limiter reading its window and limits from `config`.
---@param config table
---@return resi.sim.resifactory.limiter
function M.new(config)
  return setmetatable({ config = config, logs = {} }, Limiter)
end

--- The limit of an endpoint group ("generate" or "reads").
---@param group string
---@return integer
function Limiter:limit_of(group)
  if group == "generate" then return math.tointeger(self.config.generate_limit) or 20 end
  return math.tointeger(self.config.read_limit) or 120
end

-- The log of one caller and group with entries older than the window dropped.
function Limiter:log(bucket, group, now)
  local id = bucket .. "\0" .. group
  local log = self.logs[id]
  if not log then
    log = {}
    self.logs[id] = log
  end
  local cut = now - (self.config.rate_window or 60)
  if log[1] and log[1] <= cut then
    local kept = {}
    for _, t in ipairs(log) do if t > cut then kept[#kept + 1] = t end end
    self.logs[id] = kept
    log = kept
  end
  return log
end

--- Checks one request of `bucket` (a caller id) in `group` and records it
--- when allowed. Returns {allowed, limit, remaining, reset (Unix seconds,
--- integer), retry_after (whole seconds >= 1, only when refused)}.
---@param bucket string
---@param group string
---@return {allowed: boolean, limit: integer, remaining: integer, reset: integer, retry_after: integer|nil}
function Limiter:take(bucket, group)
  local now, unix = core.monotonic(), core.now()
  local window = self.config.rate_window or 60
  local limit = self:limit_of(group)
  local log = self:log(bucket, group, now)
  if #log >= limit then
    -- the request that must leave before one more fits (limits can shrink at run time)
    local wait = log[#log - limit + 1] + window - now
    return { allowed = false, limit = limit, remaining = 0, reset = math.ceil(unix + wait),
      retry_after = math.max(1, math.ceil(wait)) }
  end
  log[#log + 1] = now
  return { allowed = true, limit = limit, remaining = limit - #log, reset = math.ceil(unix + log[1] + window - now) }
end

--- How many requests of `bucket` in `group` the window counts now.
---@param bucket string
---@param group string
---@return integer
function Limiter:used(bucket, group)
  return #self:log(bucket, group, core.monotonic())
end

return M
