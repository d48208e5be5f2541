--- resi.ratelimit.group: keyed limiters, one per key (an API key, an
--- account, a host), created on demand and forgotten when idle. A least
--- recently used list makes eviction O(1) per call: every get looks at a
--- few of the stalest limiters and forgets those back in their initial
--- state (nothing in a window, queued, paused or, with a concurrency limit,
--- in flight), so memory stays flat however many keys pass through.
--- Built through resi.ratelimit.group(opts).
local huge = math.huge

local M = {}

---@class resi.ratelimit.group
local Group = {}
Group.__index = Group
Group.__name = "resi.ratelimit.group"

--- A new group. `config(opts)` checks the options once and gives the
--- configuration every key's limiter shares; `instance(cfg, name)` makes
--- one limiter (both from resi.ratelimit).
---@param opts table
---@param config fun(opts: table, level: integer): table
---@param instance fun(cfg: table, name: string): resi.ratelimit.limiter
---@return resi.ratelimit.group
function M.new(opts, config, instance)
  if type(opts) ~= "table" then error("resi.ratelimit.group: expects a table of options", 3) end
  local g = setmetatable({ map = {}, count = 0, evicted = 0, idle_after = opts.idle or 300,
    sweep = opts.sweep or 4, name = opts.name or "group", mask_keys = opts.mask_keys }, Group)
  g.cfg = config(opts, 3) -- one configuration (and one retry budget) for every key
  g.instance = instance
  g.cfg.group = g
  g.now = g.cfg.now
  return g
end

-- LRU list: most recently used at head.
local function unlink(g, l)
  if l._prev then l._prev._next = l._next else g.head = l._next end
  if l._next then l._next._prev = l._prev else g.tail = l._prev end
  l._prev, l._next = nil, nil
end

-- Puts a limiter at the front of the group's LRU list.
local function push_front(g, l)
  l._next = g.head
  if g.head then g.head._prev = l end
  g.head = l
  if not g.tail then g.tail = l end
end

-- Marks a limiter used now (moves it to the front).
local function touch(g, l)
  l._last = g.now()
  if g.head ~= l then
    unlink(g, l)
    push_front(g, l)
  end
end

-- A limiter of the group was used: it moves to the front (unless evicted).
function Group:_used(l)
  if self.map[l.group_key] == l then touch(self, l) end
end

--- The limiter for `key`, created when missing. Also forgets a few limiters
--- that have been idle for `idle` seconds.
---@param key any
---@return resi.ratelimit.limiter
function Group:get(key)
  local l = self.map[key]
  if l then
    touch(self, l)
  else
    local shown = self.mask_keys and require("resi.secret").mask(key) or tostring(key)
    l = self.instance(self.cfg, self.name .. ":" .. shown)
    l.group_key = key
    self.map[key] = l
    self.count = self.count + 1
    push_front(self, l)
    l._last = self.now()
  end
  self:evict(self.sweep)
  return l
end

--- Forgets up to `n` (default: all) least recently used limiters that are
--- idle and unused for the group's `idle` seconds. Returns how many.
---@param n? integer
---@return integer
function Group:evict(n)
  n = n or huge
  local now, done, looked = self.now(), 0, 0
  local l = self.tail
  while l and looked < n do
    looked = looked + 1
    if now - l._last < self.idle_after then break end
    local prev = l._prev
    if l:idle() then
      unlink(self, l)
      self.map[l.group_key] = nil
      self.count = self.count - 1
      self.evicted = self.evicted + 1
      done = done + 1
    else
      touch(self, l) -- busy: look again after another idle period
    end
    l = prev
  end
  return done
end

--- Number of live keys.
---@return integer
function Group:size() return self.count end

--- {keys=, evicted=} and, with a key, that key's limiter stats.
---@param key? any
---@return table
function Group:stats(key)
  if key ~= nil then
    local l = self.map[key]
    return l and l:stats() or nil
  end
  return { keys = self.count, evicted = self.evicted }
end

return M
