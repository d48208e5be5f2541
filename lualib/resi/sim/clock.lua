--- resi.sim.clock: the sandbox's simulated time. It runs `speed` simulated
--- seconds per real second from a start instant, and the admin API can move
--- it forward; token expiry, JWT lifetime and usage all read it.
local core = require "resi.core"

---@class resi.sim.clock
---@field speed number
local Clock = {}
Clock.__index = Clock

local M = {}

--- A clock starting at `start` (epoch seconds; default now) at `speed`.
---@param speed number|nil
---@param start number|nil
---@return resi.sim.clock
function M.new(speed, start)
  return setmetatable({ speed = speed or 1, base = start or core.now(), m0 = core.monotonic() }, Clock)
end

--- Simulated epoch seconds (float).
---@return number
function Clock:now()
  return self.base + (core.monotonic() - self.m0) * self.speed
end

--- Simulated epoch seconds, whole.
---@return integer
function Clock:time() return math.floor(self:now()) end

--- Moves simulated time forward by `seconds` (never back).
---@param seconds number
function Clock:advance(seconds)
  assert(type(seconds) == "number" and seconds >= 0, "advance: seconds must be a non-negative number")
  self.base = self.base + seconds
end

--- Changes the speed from now on, without a jump.
---@param speed number simulated seconds per real second
function Clock:set_speed(speed)
  assert(type(speed) == "number" and speed >= 0, "speed must be a non-negative number")
  self.base, self.m0, self.speed = self:now(), core.monotonic(), speed
end

return M
