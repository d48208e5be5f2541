--- resi.pg.fifo: a lock that tasks take in the order they asked for it
--- (one query or transaction at a time on a PostgreSQL connection). The
--- lock is handed straight to the next waiter on release, so a task that
--- asked later can never overtake one that asked earlier. A waiter that is
--- cancelled leaves the queue; one cancelled after it was handed the lock
--- passes it on.
local task = require "resi.task"

local M = {}

local Fifo = {}
Fifo.__index = Fifo
Fifo.__name = "resi.pg.fifo"

--- A new, free lock.
---@return table
function M.new()
  return setmetatable({ holder = nil, head = 1, tail = 0, queue = {} }, Fifo)
end

-- Removes waiter w from the queue (it was cancelled while waiting).
local function remove(self, w)
  for i = self.head, self.tail do
    if self.queue[i] == w then
      self.queue[i] = false -- skipped by release
      return
    end
  end
end

--- Hands the lock to the next waiter, or frees it.
function Fifo:release()
  while self.head <= self.tail do
    local w = self.queue[self.head]
    self.queue[self.head] = nil
    self.head = self.head + 1
    if w then
      self.holder = w.task
      task.wake(w.task, w.token)
      return
    end
  end
  self.head, self.tail, self.holder = 1, 0, nil
end

--- Waits until the current task holds the lock. `what` names the caller in
--- the error raised outside a task.
---@async
---@param what string
function Fifo:acquire(what)
  local t, token = task.prepare(what)
  if self.holder == nil then
    self.holder = t
    return
  end
  local w = { task = t, token = token }
  self.tail = self.tail + 1
  self.queue[self.tail] = w
  local ok, err = pcall(task.suspend, t, function() remove(self, w) end)
  if not ok then
    if self.holder == t then self:release() end -- cancelled after it was handed over
    error(err, 0)
  end
end

--- Is the lock held by task t (default: the current task)?
---@param t? table
---@return boolean
function Fifo:held_by(t)
  t = t or task.current()
  return t ~= nil and self.holder == t
end

return M
