--- spec/support/jobs_clock.lua: a replayable clock for resi.jobs.scheduler
--- specs. Wall and monotonic time only move when the spec says so:
--- clock:advance(s) moves both, waking the sleepers in order of their due
--- time and letting the woken tasks run before the next one; clock:jump(s)
--- moves the wall clock alone (NTP step, manual set, suspend/resume).
local task = require "resi.task"

local M = {}

-- Lets every ready task run (a few real loop turns).
local function settle()
  for _ = 1, 24 do task.sleep(0) end
end
M.settle = settle

--- A clock starting at wall time t0 (epoch seconds).
---@param t0 number
---@return table
function M.new(t0)
  local c = { wall = t0, mono = 1000, sleepers = {}, wakeups = 0 }

  function c.now() return c.wall end

  function c.monotonic() return c.mono end

  -- When the machine booted, on the wall clock (a day before t0 unless a spec sets c.boot).
  c.boot = t0 - 86400
  function c.boot_time() return c.boot end

  -- Suspends the calling task until the monotonic clock reaches now + s.
  function c.sleep(s)
    local t, token = task.prepare("fake clock sleep")
    local entry = { due = c.mono + math.max(0, s), t = t, token = token }
    c.sleepers[entry] = true
    task.suspend(t, function() c.sleepers[entry] = nil end)
  end

  -- The sleeper due first at or before `limit`, or nil.
  local function earliest(limit)
    local best
    for e in pairs(c.sleepers) do
      if e.due <= limit and (not best or e.due < best.due) then best = e end
    end
    return best
  end

  --- Moves both clocks forward by s seconds, waking sleepers on the way.
  function c.advance(s)
    settle()
    local target = c.mono + s
    while true do
      local e = earliest(target)
      if not e then break end
      c.wall = c.wall + (e.due - c.mono)
      c.mono = e.due
      c.sleepers[e] = nil
      c.wakeups = c.wakeups + 1
      task.wake(e.t, e.token)
      settle()
    end
    c.wall = c.wall + (target - c.mono)
    c.mono = target
    settle()
  end

  --- Moves the wall clock alone by s seconds (negative: backwards).
  function c.jump(s) c.wall = c.wall + s end

  --- How many tasks sleep on this clock.
  function c.sleeping()
    local n = 0
    for _ in pairs(c.sleepers) do n = n + 1 end
    return n
  end

  return c
end

return M
