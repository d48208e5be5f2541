--- resi.ratelimit.rules: the rate algorithms, as plain state machines over an
--- explicit `now` (seconds on a monotonic clock). A limiter holds one or more
--- rules and a call goes ahead only when every rule allows its weight.
---
---   sliding: an exact rolling window (sliding log): at most `limit` units in
---     any `window` seconds. One entry per call in the window; an entry is
---     re-stamped when its call ends, so a window never starts before the
---     server can have seen the call (no 429 from network jitter).
---   gcra: a token bucket of `burst` units refilled at limit/window units per
---     second, stored as one "theoretical arrival time" (GCRA).
local M = {}

local huge = math.huge

---@class resi.ratelimit.rule
---@field kind "sliding"|"gcra"
---@field limit number
---@field window number
local Sliding = {}
Sliding.__index = Sliding

--- A sliding-log rule: at most `limit` units in any `window` seconds.
---@param limit number
---@param window number
---@return resi.ratelimit.rule
function M.sliding(limit, window)
  return setmetatable({ kind = "sliding", limit = limit, window = window, entries = {} }, Sliding)
end

-- Drops entries that have left the window; returns the weight still in it.
function Sliding:prune(now)
  local e, keep, used = self.entries, 0, 0
  local window = self.window
  for i = 1, #e do
    local x = e[i]
    if x.t + window > now and x.w > 0 then
      keep = keep + 1
      e[keep] = x
      used = used + x.w
    end
  end
  for i = #e, keep + 1, -1 do e[i] = nil end
  return used
end

--- Units used in the window that ends now.
---@param now number
---@return number
function Sliding:used(now) return self:prune(now) end

--- Seconds until `w` units fit (0: now; nil: never, w exceeds the limit).
---@param now number
---@param w number
---@return number|nil
function Sliding:delay(now, w)
  if w > self.limit then return nil end
  local used = self:prune(now)
  local need = used + w - self.limit
  if need <= 0 then return 0 end
  local e = {}
  for i, x in ipairs(self.entries) do e[i] = x end
  table.sort(e, function(a, b) return a.t < b.t end)
  local freed = 0
  for _, x in ipairs(e) do
    freed = freed + x.w
    if freed >= need then return x.t + self.window - now end
  end
  return huge -- unreachable while w <= limit
end

--- Records `w` units at `now`; returns the entry (for touch and refund).
---@param now number
---@param w number
---@return table entry
function Sliding:commit(now, w)
  local x = { t = now, w = w }
  self.entries[#self.entries + 1] = x
  return x
end

--- The call behind an entry ended at `now`: its window starts then at the latest.
---@param x table an entry from commit
---@param now number
function Sliding:touch(x, now) if now > x.t then x.t = now end end

--- Gives an entry's units back (a granted call that never ran).
---@param x table an entry from commit
function Sliding:refund(x) x.w = 0 end

--- Counts `n` units used by someone else (the server said fewer remain).
--- They leave the window `expire_in` seconds from now when the server said
--- when more quota comes (its reset), else a whole window from now.
---@param now number
---@param n number
---@param expire_in? number
function Sliding:phantom(now, n, expire_in)
  if n <= 0 then return end
  local t = now
  if expire_in and expire_in < self.window then t = now - self.window + expire_in end
  self:commit(t, n)
end

--- Changes the limit; what is in the window stays counted.
---@param limit number
function Sliding:set_limit(limit) self.limit = limit end

--- Is the rule back to its initial state (nothing in the window)?
---@param now number
---@return boolean
function Sliding:idle(now) return self:prune(now) == 0 end

--- When the oldest unit leaves the window (seconds from now), 0 when empty.
---@param now number
---@return number
function Sliding:reset_in(now)
  self:prune(now)
  local oldest = huge
  for _, x in ipairs(self.entries) do if x.t < oldest then oldest = x.t end end
  return oldest == huge and 0 or oldest + self.window - now
end

---@class resi.ratelimit.gcra: resi.ratelimit.rule
---@field burst number
local Gcra = {}
Gcra.__index = Gcra

--- A GCRA token bucket: `limit` units per `window` seconds, up to `burst` at once.
---@param limit number
---@param window number
---@param burst number|nil  default: limit
---@return resi.ratelimit.rule
function M.gcra(limit, window, burst)
  return setmetatable({ kind = "gcra", limit = limit, window = window, burst = burst or limit,
    tat = -huge }, Gcra)
end

-- Seconds of "debt" one unit adds.
function Gcra:interval() return self.window / self.limit end

--- Units taken and not yet refilled.
---@param now number
---@return number
function Gcra:used(now)
  local t = self.tat > now and self.tat or now
  return (t - now) / self:interval()
end

--- Seconds until `w` units fit (0: now; nil: never, w exceeds the burst).
---@param now number
---@param w number
---@return number|nil
function Gcra:delay(now, w)
  if w > self.burst then return nil end
  local T = self:interval()
  local tat = self.tat > now and self.tat or now
  local d = tat + w * T - self.burst * T - now
  return d > 1e-9 and d or 0
end

--- Takes `w` units at `now`; returns a handle for refund.
---@param now number
---@param w number
---@return table handle
function Gcra:commit(now, w)
  local T = self:interval()
  local tat = self.tat > now and self.tat or now
  self.tat = tat + w * T
  return { w = w }
end

--- A bucket has no per-call window to move.
function Gcra:touch() end

--- Gives units back.
---@param x table a handle from commit
function Gcra:refund(x)
  self.tat = self.tat - x.w * self:interval()
  x.w = 0
end

--- Counts `n` units used by someone else.
---@param now number
---@param n number
function Gcra:phantom(now, n) if n > 0 then self:commit(now, n) end end

--- Changes the rate, keeping the units currently taken.
---@param limit number
---@param now? number
function Gcra:set_limit(limit, now)
  local used = self:used(now or 0)
  if self.burst == self.limit then self.burst = limit end
  self.limit = limit
  if used > 0 then self.tat = (now or 0) + used * self:interval() end
end

--- Is the bucket full again (back to its initial state)?
---@param now number
---@return boolean
function Gcra:idle(now) return self.tat <= now end

--- Seconds until the bucket is full again.
---@param now number
---@return number
function Gcra:reset_in(now) return self.tat > now and self.tat - now or 0 end

--- Builds a rule from a spec {limit=, window=, algorithm=, burst=, rate=};
--- a bad spec raises a message without a position (the caller adds it).
---@param spec {limit?: number, window?: number, algorithm?: "sliding"|"gcra"|"bucket", burst?: number, rate?: number}
---@param where? string the prefix of error messages (default "resi.ratelimit")
---@return resi.ratelimit.rule
function M.from_spec(spec, where)
  where = where or "resi.ratelimit"
  local limit, window = spec.limit, spec.window
  if spec.rate then -- rate per second, burst units: a token bucket
    if type(spec.rate) ~= "number" or spec.rate <= 0 then error(where .. ": rate must be a positive number", 0) end
    local burst = spec.burst or 1
    return M.gcra(spec.rate * (spec.window or 1), spec.window or 1, burst)
  end
  if type(limit) ~= "number" or limit <= 0 then error(where .. ": limit must be a positive number", 0) end
  if type(window) ~= "number" or window <= 0 then error(where .. ": window must be a positive number of seconds", 0) end
  local algo = spec.algorithm or "sliding"
  if algo == "sliding" then return M.sliding(limit, window) end
  if algo == "gcra" or algo == "bucket" then return M.gcra(limit, window, spec.burst) end
  error(where .. ": algorithm must be \"sliding\" or \"gcra\" (got " .. tostring(algo) .. ")", 0)
end

return M
