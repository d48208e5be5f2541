--- resi.ratelimit.clock: where a limiter gets its time. The real clock is
--- resi's monotonic clock (intervals), wall clock (header dates) and
--- resi.sleep. A virtual clock lets specs run minutes of rate limiting in
--- milliseconds, exactly: time moves only when the spec calls advance().
local task = require "resi.task"
local core = require "resi.core"

local M = {}

--- The real clock.
M.real = { now = core.monotonic, wall = core.now, sleep = task.sleep }

---@class resi.ratelimit.virtual_clock
---@field t number  the current virtual time
local Virtual = {}
Virtual.__index = Virtual
Virtual.__name = "resi.ratelimit.virtual_clock"

--- A virtual clock starting at `start` seconds, with wall time `wall0 + t`.
---@param start? number
---@param wall0? number  epoch seconds at t = 0 (default 1.7e9)
---@return resi.ratelimit.virtual_clock
function M.virtual(start, wall0)
  local vc = setmetatable({ t = start or 0, wall0 = wall0 or 1700000000, sleepers = {}, seq = 0, turns = 6 }, Virtual)
  -- bound functions, so a clock can be passed as {now=, wall=, sleep=}
  vc.now = function() return vc.t end
  vc.wall = function() return vc.wall0 + vc.t end
  vc.sleep = function(s) return vc:_sleep(s) end
  return vc
end

-- Suspends the current task until the clock reaches now + s.
function Virtual:_sleep(s)
  if type(s) ~= "number" then error("virtual clock sleep: expected seconds", 2) end
  local t, token = task.prepare("virtual clock sleep")
  if s <= 0 then return end
  self.seq = self.seq + 1
  local entry = { at = self.t + s, seq = self.seq, task = t, token = token }
  self.sleepers[entry] = true
  task.suspend(t, function() self.sleepers[entry] = nil end)
end

-- The earliest sleeper due at or before `limit`, or nil.
function Virtual:_due(limit)
  local best
  for e in pairs(self.sleepers) do
    if e.at <= limit and (not best or e.at < best.at or (e.at == best.at and e.seq < best.seq)) then best = e end
  end
  return best
end

--- Lets woken tasks run (a few real loop turns, no time passes).
---@async
function Virtual:settle()
  for _ = 1, self.turns do task.sleep(0) end
end

--- Moves time forward by dt seconds, waking sleepers in time order and
--- letting each round of woken tasks run before the clock moves on.
---@param dt number
function Virtual:advance(dt)
  local target = self.t + (dt or 0)
  self:settle()
  while true do
    local e = self:_due(target)
    if not e then break end
    self.sleepers[e] = nil
    if e.at > self.t then self.t = e.at end
    task.wake(e.task, e.token)
    self:settle()
  end
  self.t = target
  self:settle()
end

--- Number of tasks sleeping on this clock.
---@return integer
function Virtual:pending()
  local n = 0
  for _ in pairs(self.sleepers) do n = n + 1 end
  return n
end

--- Normalizes a limiter's clock option: nil (real), a virtual clock or any
--- table with now/wall/sleep, or a function (now) with a separate sleep.
---@return function now
---@return function wall
---@return function sleep
---@param clock? resi.ratelimit.virtual_clock|{now: fun(): number, wall?: fun(): number, sleep?: fun(s: number)}|fun(): number
---@param sleep? fun(seconds: number)
---@param wall? fun(): number
function M.resolve(clock, sleep, wall)
  if clock == nil then return M.real.now, wall or M.real.wall, sleep or M.real.sleep end
  if type(clock) == "table" then
    return clock.now, wall or clock.wall or M.real.wall, sleep or clock.sleep or M.real.sleep
  end
  if type(clock) == "function" then return clock, wall or M.real.wall, sleep or M.real.sleep end
  error("resi.ratelimit: clock must be a function or a clock table", 3)
end

return M
