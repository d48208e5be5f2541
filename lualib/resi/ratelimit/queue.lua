--- resi.ratelimit.queue: the waiting line of one limiter. FIFO within a
--- priority (0 is the most important); priorities age, so a waiter gains one
--- level per `aging` seconds waited and a low priority cannot starve.
--- Removal of a waiter in the middle (cancel, timeout) is O(1): it is marked
--- gone and skipped when it reaches the head of its level.
local M = {}

---@class resi.ratelimit.queue
local Queue = {}
Queue.__index = Queue

--- A new empty queue; aging in seconds per level (false: strict priority).
---@param aging number|false
---@return resi.ratelimit.queue
function M.new(aging)
  return setmetatable({ levels = {}, order = {}, n = 0, seq = 0, aging = aging }, Queue)
end

-- The deque of a priority level, created on first use (levels kept sorted).
function Queue:level(p)
  local l = self.levels[p]
  if not l then
    l = { first = 1, last = 0, p = p }
    self.levels[p] = l
    local o = self.order
    o[#o + 1] = p
    table.sort(o)
  end
  return l
end

--- Appends a waiter (a table; gets seq, priority, enq fields set by the caller).
---@param w table
function Queue:push(w)
  self.seq = self.seq + 1
  w.seq = self.seq
  local l = self:level(w.priority)
  l.last = l.last + 1
  l[l.last] = w
  w.queued = true
  self.n = self.n + 1
end

-- First live waiter of a level (drops gone ones from the front).
local function front(l)
  while l.first <= l.last do
    local w = l[l.first]
    if w.queued then return w end
    l[l.first] = nil
    l.first = l.first + 1
  end
  return nil
end

-- Last live waiter of a level.
local function back(l)
  while l.last >= l.first do
    local w = l[l.last]
    if w.queued then return w end
    l[l.last] = nil
    l.last = l.last - 1
  end
  return nil
end

-- A waiter's effective priority at `now` (lower goes first).
function Queue:effective(w, now)
  if not self.aging then return w.priority end
  return w.priority - (now - w.enq) / self.aging
end

-- The waiter at one end of the line at `now`. sign 1: among the first
-- live waiter of each level (ends = front), the smallest effective
-- priority, ties to the earliest arrival; sign -1: among the last ones
-- (ends = back), the largest, ties to the latest.
function Queue:pick(now, ends, sign)
  local best, be
  for _, p in ipairs(self.order) do
    local w = ends(self.levels[p])
    if w then
      local e = self:effective(w, now) * sign
      if not best or e < be or (e == be and w.seq * sign < best.seq * sign) then best, be = w, e end
    end
  end
  return best
end

--- The waiter that goes next at `now`, or nil.
---@param now number
---@return table|nil
function Queue:head(now)
  return self:pick(now, front, 1)
end

--- The oldest waiter (by arrival), or nil.
---@return table|nil
function Queue:oldest()
  local best
  for _, p in ipairs(self.order) do
    local w = front(self.levels[p])
    if w and (not best or w.seq < best.seq) then best = w end
  end
  return best
end

--- The least important waiter at `now` (the newest of the worst level), or nil.
---@param now number
---@return table|nil
function Queue:lowest(now)
  return self:pick(now, back, -1)
end

--- Takes a waiter out (wherever it is). Returns false if it was not queued.
---@param w table
---@return boolean
function Queue:remove(w)
  if not w.queued then return false end
  w.queued = false
  self.n = self.n - 1
  if self.n == 0 then -- reset so an idle queue holds no memory
    self.levels, self.order = {}, {}
  end
  return true
end

--- Waiters per priority level: {[p] = count}.
---@return table<integer, integer>
function Queue:counts()
  local out = {}
  for _, p in ipairs(self.order) do
    local l, c = self.levels[p], 0
    for i = l.first, l.last do if l[i] and l[i].queued then c = c + 1 end end
    if c > 0 then out[p] = c end
  end
  return out
end

return M
