--- resi.ratelimit: rate-limit-aware scheduling. A limiter holds rate rules
--- (an exact rolling window, or a GCRA token bucket), an optional
--- concurrency limit, a waiting line with priorities, and what it has learned
--- from the server. Waiting suspends the task, never the loop.
---
---   local lim = ratelimit.new{limit = 20, window = 60}
---   local permit = lim:acquire()          -- waits for a slot
---   local res = http.post(url, opts)
---   lim:observe(res)                      -- Retry-After, RateLimit-* ...
---   permit:release()                      -- or `local p <close> = lim:acquire()`
---
---   local res, err = ratelimit.request(lim, {method = "GET", url = url})  -- all of it, with retries
---
--- Release every permit when its call has its answer: that frees a
--- concurrency slot and starts the call's window then (the server saw the
--- call no later than that), so network jitter can never turn an exactly
--- paced burst into a 429. An unreleased permit counts from acquire time.
---
--- Keyed limiters: ratelimit.group{...}:get(key) (created on demand, evicted
--- when idle). Hierarchies: ratelimit.new{..., parent = global}: a call takes
--- its weight from every limiter up the chain at once, or waits. Waiters
--- queue in the limiter they called (FIFO, priorities there); keys that wait
--- on a parent (its concurrency, window or pause) take turns when it allows
--- (round robin across keys, so a busy key cannot starve the others); a call
--- made on the parent itself may go ahead of a key's waiters.
--- Provider limits live with the providers (resi.providers.limits).
---
--- This file is the limiter core: options, rules and the chain, permits,
--- the waiting line and its dispatch, stats. Beside it: learn (observe,
--- pause: what the server's answers change), adaptive (AIMD for servers
--- that state no limits), headers (parsing), retry (lim:call's loop and
--- ratelimit.request), rules, queue, group, clock.
local task = require "resi.task"
local rules = require "resi.ratelimit.rules"
local headers = require "resi.ratelimit.headers"
local clock = require "resi.ratelimit.clock"
local queue = require "resi.ratelimit.queue"
local retry = require "resi.ratelimit.retry"
local group = require "resi.ratelimit.group"
local adaptive = require "resi.ratelimit.adaptive"
local learn = require "resi.ratelimit.learn"

local huge = math.huge
local wake = task.wake

local M = {}

M.headers = headers
M.rules = rules
M.retry = retry
M.adaptive = adaptive
M.backoff = retry.backoff
M.budget = retry.budget
--- A virtual clock for deterministic specs: ratelimit.new{clock = vc}.
M.virtual_clock = clock.virtual

-- resi.log, loaded on first use.
local logger
local function log() logger = logger or require "resi.log"; return logger end

---@class resi.ratelimit.limiter
---@field name string
local Limiter = {}
Limiter.__index = Limiter
Limiter.__name = "resi.ratelimit"
Limiter._is_limiter = true

---@class resi.ratelimit.permit
---@field weight number
---@field waited number  seconds spent waiting for it
---@field after_throttle? boolean  a retry of a call that was throttled (set by lim:call)
local Permit = {}
Permit.__index = Permit
Permit.__name = "resi.ratelimit.permit"

local ON_FULL = { reject = true, drop_oldest = true, drop_lowest = true, block = true }

-- Counter names for stats(); counters start at 0 without being stored.
local COUNTERS = { "granted", "waited", "waits", "max_wait", "rejected", "dropped", "cancelled",
  "timeouts", "handed_back", "seen_429", "seen_503", "retries", "retries_denied", "pauses", "capped",
  "episodes", "lowered", "raised" }
local ZERO = { __index = function() return 0 end }

-- Shared read-only stand-ins for per-limiter tables that most limiters
-- never need (a group may hold 100,000 limiters): replaced on first write.
local EMPTY_QUEUE = setmetatable({ n = 0 }, { __index = {
  head = function() return nil end, remove = function() return false end,
  counts = function() return {} end, oldest = function() return nil end, lowest = function() return nil end } })
local EMPTY = setmetatable({}, {
  __newindex = function() error("resi.ratelimit: internal: shared empty table written") end })

-- The waiting line's options: max_queue (or high_water), on_full, aging.
local function queue_options(cfg, opts, level)
  cfg.max_queue = opts.max_queue or opts.high_water
  cfg.on_full = opts.on_full or "reject"
  if not ON_FULL[cfg.on_full] then
    error("resi.ratelimit.new: on_full must be reject, drop_oldest, drop_lowest or block", level + 1)
  end
  local aging = opts.aging
  if aging == nil then aging = 10 end
  cfg.aging = aging
end

-- The parent limiters (parent or parents), each checked to be a limiter.
local function parents_of(opts, level)
  local parents = {}
  local ps = opts.parents or (opts.parent and { opts.parent }) or {}
  for _, p in ipairs(ps) do
    if type(p) ~= "table" or not p._is_limiter then error("resi.ratelimit.new: parent must be a limiter", level + 1) end
    parents[#parents + 1] = p
  end
  return parents
end

-- The rate rule specs (rules, or limit/rate with their window, burst and
-- algorithm), checked now and built per limiter.
local function rule_specs(opts, level)
  local specs = {}
  -- a bad spec is the caller of ratelimit.new's error
  local function check(spec)
    local ok, err = pcall(rules.from_spec, spec, "resi.ratelimit.new")
    if not ok then error(err, level + 2) end
  end
  if opts.rules then
    for i, spec in ipairs(opts.rules) do
      check(spec)
      specs[i] = spec
    end
  elseif opts.limit or opts.rate then
    check(opts)
    specs[1] = { limit = opts.limit, window = opts.window, rate = opts.rate, burst = opts.burst,
      algorithm = opts.algorithm }
  end
  return specs
end

-- Checks and gathers the options every limiter of a kind shares (one table
-- per ratelimit.new, or one per ratelimit.group for all its keys). It is
-- the limiters' metatable: their own table holds only per-key state.
local function config(opts, level)
  level = (level or 1) + 1
  local cfg = {}
  cfg.now, cfg.wall, cfg.sleep = clock.resolve(opts.clock, opts.sleep, opts.wall)
  local c = opts.concurrency
  if c ~= nil and (math.type(c) ~= "integer" or c < 1) then
    error("resi.ratelimit.new: concurrency must be a positive integer", level)
  end
  cfg.concurrency = c
  queue_options(cfg, opts, level)
  learn.options(cfg, opts, level)
  cfg.retry_opts = opts.retry or {}
  cfg.retry_budget = opts.retry_budget or retry.budget(opts.retry_budget_opts)
  cfg.parents = parents_of(opts, level)
  cfg.rule_specs = rule_specs(opts, level)
  if #cfg.rule_specs == 0 and not c and #cfg.parents == 0 then
    error("resi.ratelimit.new: give limit and window, rate, rules or concurrency", level)
  end
  cfg.__index = cfg
  cfg.__name = Limiter.__name
  cfg.__tostring = Limiter.__tostring
  return setmetatable(cfg, Limiter)
end

-- A limiter with the shared configuration cfg.
local function instance(cfg, name)
  local self = setmetatable({ name = name, queue = EMPTY_QUEUE, blocked = EMPTY, children = EMPTY,
    st = setmetatable({}, ZERO), paused_until = -huge, in_flight = 0, consecutive_429 = 0 }, cfg)
  local rs = {}
  for i, spec in ipairs(cfg.rule_specs) do rs[i] = rules.from_spec(spec) end
  self.rules = rs
  self.adapt = adaptive.state(cfg, rs[1])
  -- the chain: this limiter and every ancestor, each once
  local chain = { self }
  if #cfg.parents > 0 then
    local seen = { [self] = true }
    for _, p in ipairs(cfg.parents) do
      for _, a in ipairs(p.chain) do
        if not seen[a] then
          seen[a] = true
          chain[#chain + 1] = a
        end
      end
    end
  end
  self.chain = chain
  return self
end

---@class resi.ratelimit.options
---@field name? string            shown in stats and logs
---@field limit? number            units per window (with window)
---@field window? number           seconds
---@field algorithm? "sliding"|"gcra"  exact rolling window (default) or token bucket
---@field burst? number            gcra / rate: units at once
---@field rate? number             units per second (a token bucket)
---@field rules? table[]           several {limit=, window=, algorithm=, burst=}
---@field concurrency? integer     calls in flight at most
---@field parent? resi.ratelimit.limiter
---@field parents? resi.ratelimit.limiter[]
---@field max_queue? integer       high-water mark of the waiting line
---@field on_full? "reject"|"drop_oldest"|"drop_lowest"|"block"
---@field aging? number|false      seconds per priority level gained while waiting (default 10)
---@field learn? boolean|"any"     adopt limits the server reports (default true)
---@field reset_unit? "auto"|"delta"|"epoch"|"epoch_ms"
---@field retry_after_max? number  cap on a server-imposed pause (default 120)
---@field on_long_wait? "sleep"|"return"
---@field default_pause? number    pause after a 429 that says nothing (default 1, doubles)
---@field adaptive? boolean        AIMD: halve once per 429 episode, step back up per success (resi.ratelimit.adaptive)
---@field adaptive_floor? number   adaptive: never below this share of the base limit (default 0.25)
---@field adaptive_step? number    adaptive: units a success adds back (default base / 20, at least 1)
---@field min_limit? number
---@field max_limit? number
---@field retry? table             defaults for lim:call (attempts, base, cap)
---@field retry_budget? resi.ratelimit.budget
---@field clock? resi.ratelimit.virtual_clock|fun(): number
---@field sleep? fun(seconds: number)
---@field wall? fun(): number      epoch seconds (for HTTP dates)

--- Creates a limiter. Rate: `limit` units per `window` seconds (sliding log
--- by default, `algorithm = "gcra"` for a token bucket with `burst`), or
--- `rate` per second with `burst`, or several `rules = {{limit=, window=}, ...}`.
--- `concurrency`: calls in flight at most. `parent`/`parents`: limiters the
--- weight is also taken from, all or nothing. Waiting line: `max_queue` (the
--- high-water mark) with `on_full` = "reject" | "drop_oldest" | "drop_lowest"
--- | "block", and `aging` seconds per priority level (default 10; false:
--- strict priority). Learning: `learn` (default true) adopts the limits the
--- server reports (a RateLimit-Limit without a window only lowers ours;
--- learn = "any" lets it raise ours too; false: never); `reset_unit` =
--- "auto" | "delta" | "epoch" | "epoch_ms"; `retry_after_max` (default
--- 120 s) caps a server-imposed pause and `on_long_wait` says what happens
--- above it: "sleep" (wait the cap) or "return" (acquire returns nil,
--- "not_before", epoch). `adaptive`: AIMD for servers that state no
--- limits: a 429 that says nothing about limits halves the limit once per
--- throttle episode (not per retry), never below `adaptive_floor` (0.25) of
--- the base nor `min_limit`; each success then adds `adaptive_step` back
--- until the base is reached, and quiet windows probe above it up to
--- `max_limit` (resi.ratelimit.adaptive). Time: `clock` (a virtual clock,
--- or a function) and `sleep`.
---@param opts resi.ratelimit.options
---@return resi.ratelimit.limiter
function M.new(opts)
  if type(opts) ~= "table" then error("resi.ratelimit.new: expects a table of options", 2) end
  return instance(config(opts, 2), opts.name and tostring(opts.name) or "ratelimit")
end

-- The primary rule (the first), used for learned limits without a window.
function Limiter:_primary() return self.rules[1] end

-- Wall-clock time at which a pause ends.
function Limiter:_pause_end_wall(now)
  return self.wall() + (self.paused_until - now)
end

-- With on_long_wait = "return": the epoch time before which no call may go,
-- when the pause is longer than retry_after_max; else nil.
function Limiter:_not_before(now)
  for _, l in ipairs(self.chain) do
    local ln = l.now()
    if l.on_long_wait == "return" and l.paused_until - ln > l.retry_after_max then
      return l:_pause_end_wall(ln)
    end
  end
  return nil
end

-- Seconds until `weight` fits every limiter of the chain, and the limiter
-- that decides it: 0 now, huge when a concurrency limit is full, nil when
-- the weight can never fit.
function Limiter:_check(weight)
  local d, who = 0, nil
  for _, l in ipairs(self.chain) do
    local now = l.now()
    if l.paused_until > now then
      local p = l.paused_until - now
      if p > d then d, who = p, l end
    end
    if l.concurrency and l.in_flight >= l.concurrency then return huge, l end
    for _, r in ipairs(l.rules) do
      local rd = r:delay(now, weight)
      if rd == nil then return nil, l end
      if rd > d then d, who = rd, l end
    end
  end
  return d, who
end

-- Takes `weight` from every limiter of the chain; returns the permit.
function Limiter:_commit(weight, waited)
  local p = setmetatable({ lim = self, weight = weight, waited = waited, entries = {} }, Permit)
  for _, l in ipairs(self.chain) do
    local now = l.now()
    l.in_flight = l.in_flight + 1
    for _, r in ipairs(l.rules) do p.entries[#p.entries + 1] = { r, r:commit(now, weight), l } end
    adaptive.probe(l, now)
    if l.group then l.group:_used(l) end
  end
  local st = self.st
  st.granted = st.granted + 1
  if waited > 0 then
    st.waits = st.waits + 1
    st.waited = st.waited + waited
    if waited > st.max_wait then st.max_wait = waited end
  end
  return p
end

--- Ends the call the permit was for: frees its concurrency slot and starts
--- its window at the latest now. `refund = true` gives the rate units back
--- too (the call never went out). Releasing twice does nothing.
---@param refund? boolean
function Permit:release(refund)
  if self.released then return end
  self.released = true
  for _, e in ipairs(self.entries) do
    local r, x, l = e[1], e[2], e[3]
    if refund then r:refund(x) else r:touch(x, l.now()) end
  end
  for _, l in ipairs(self.lim.chain) do
    l.in_flight = l.in_flight - 1
    if l.group then l.group:_used(l) end
  end
  for _, l in ipairs(self.lim.chain) do l:_wake_children() end
  self.lim:_dispatch()
end
-- `local p <close> = lim:acquire()`: released (not refunded) when the block
-- ends, also when it ends with an error.
function Permit:__close() self:release() end

-- Lets limiters that waited on this one (its concurrency, window or pause)
-- look again, in the order they started waiting. One that is served goes
-- behind those that were not, so keys sharing a parent take turns (round
-- robin): a busy key cannot starve the others.
function Limiter:_wake_children()
  local ch = self.children
  if #ch == 0 then return end
  self.children = EMPTY
  local served
  for _, child in ipairs(ch) do
    child.waits_on = nil
    local before = child.st.granted
    child:_dispatch()
    if child.st.granted > before then
      served = served or {}
      served[child] = true
    end
  end
  local now = self.children
  if served and #now > 1 then
    local order = {}
    for _, c in ipairs(now) do if not served[c] then order[#order + 1] = c end end
    for _, c in ipairs(now) do if served[c] then order[#order + 1] = c end end
    self.children = order
  end
  if self.queue.n > 0 then self:_dispatch() end
end

-- Hands a waiter its outcome and lets its task go on.
local function finish(w, ...)
  w.done = true
  wake(w.task, w.token, ...)
end

-- Takes a waiter out of the line and lets a blocked producer in.
function Limiter:_remove(w)
  if not self.queue:remove(w) then return false end
  if self.queue.n == 0 then
    self.queue = EMPTY_QUEUE -- an idle limiter keeps no queue
    if self.pump then -- nobody left to wake: no timer keeps the loop alive
      local pump = self.pump
      self.pump, self.pump_at = nil, nil
      pump:cancel()
    end
    if self.waits_on then self.waits_on:_forget_child(self) end
  end
  self:_admit()
  return true
end

-- Takes a limiter with nobody waiting any more out of this one's line of
-- waiting limiters; with the line empty, no timer is kept for it.
function Limiter:_forget_child(child)
  child.waits_on = nil
  local ch = self.children
  for i = #ch, 1, -1 do
    if ch[i] == child then
      table.remove(ch, i)
      break
    end
  end
  if #ch == 0 and self.child_pump then
    local pump = self.child_pump
    self.child_pump, self.child_pump_at = nil, nil
    pump:cancel()
  end
end

-- Lets the first producer held back by on_full = "block" try again when
-- the line is below its mark.
function Limiter:_admit()
  local b = self.blocked
  if #b > 0 and (not self.max_queue or self.queue.n < self.max_queue) then
    local p = table.remove(b, 1)
    p.woken = true
    wake(p.task, p.token)
  end
end

-- Starts (or moves earlier) a timer task, kept in self[slot] with its time
-- in self[at_slot], that calls self[method] when it fires.
local function arm(self, slot, at_slot, delay, method)
  local at = self.now() + delay
  local current = self[slot]
  if current and self[at_slot] <= at then return end
  if current then current:cancel() end
  self[at_slot] = at
  local pump
  pump = task.spawn(function()
    self.sleep(math.max(0, at - self.now()))
    if self[slot] == pump then self[slot], self[at_slot] = nil, nil end
    self[method](self)
  end)
  self[slot] = pump
end

-- Runs _dispatch when the head waiter's time comes.
function Limiter:_arm(delay) arm(self, "pump", "pump_at", delay, "_dispatch") end

-- Wakes the limiters waiting on this one's rules (a parent's window or
-- pause) when their time comes.
function Limiter:_arm_children(delay) arm(self, "child_pump", "child_pump_at", delay, "_wake_children") end

-- The answer to a call handed back while the server's pause is longer than
-- retry_after_max: nil, "not_before" and the epoch time to come back at.
local function handed_back(self, nb)
  self.st.handed_back = self.st.handed_back + 1
  return nil, "not_before", nb
end

-- The answer to a call whose weight can never fit the limit of `who`.
local function too_heavy(self, weight, who)
  self.st.rejected = self.st.rejected + 1
  return nil, "too_heavy", ("weight %s exceeds a limit of %s"):format(weight, who.name)
end

-- The answer to a call whose time in line is up (or was 0).
local function timed_out(self)
  self.st.timeouts = self.st.timeouts + 1
  return nil, "timeout"
end

-- Puts this limiter in the line of `who`, the parent that decides its head
-- waiter's wait (one line at a time), and, when the wait is a delay rather
-- than a full concurrency limit, arms the parent's timer for it.
local function wait_on(self, who, d)
  if self.waits_on ~= who then
    if self.waits_on then self.waits_on:_forget_child(self) end -- one line at a time
    if who.children == EMPTY then who.children = {} end
    who.children[#who.children + 1] = self
    self.waits_on = who
  end
  if d ~= huge then who:_arm_children(d) end
end

-- Answers the head waiter if the chain allows (a permit, a hand-back or
-- too_heavy) and returns true; else arranges to look again (its own timer
-- when its own rules decide the wait, a parent's line otherwise) and
-- returns false.
local function serve_head(self)
  local now = self.now()
  local w = self.queue:head(now)
  local nb = self:_not_before(now)
  if nb then
    self:_remove(w)
    finish(w, handed_back(self, nb))
    return true
  end
  local d, who = self:_check(w.weight)
  if d == 0 then
    self:_remove(w)
    w.permit = self:_commit(w.weight, now - w.enq)
    finish(w, w.permit)
  elseif d == nil then
    self:_remove(w)
    finish(w, too_heavy(self, w.weight, who))
  elseif d == huge or who ~= self then -- a parent decides: wait in its line
    wait_on(self, who, d)
    return false
  else
    self:_arm(d)
    return false
  end
  return true
end

-- Grants waiters from the head of the line while the chain allows, then
-- arranges to look again: its own timer when its own rules decide the wait,
-- otherwise a place in the line of the parent that decides it (woken when
-- the parent frees a slot or its window or pause ends). Called again while
-- it runs, it goes round once more instead of nesting.
function Limiter:_dispatch()
  if self.dispatching then
    self.again = true
    return
  end
  self.dispatching = true
  repeat
    self.again = false
    while self.queue.n > 0 and serve_head(self) do end
  until not self.again
  self.dispatching = false
end

-- acquire's arguments: (weight), (weight, opts) or (opts).
local function acquire_args(weight, opts)
  if type(weight) == "table" then weight, opts = weight.weight, weight end
  opts = opts or {}
  weight = weight or opts.weight or 1
  if type(weight) ~= "number" or weight <= 0 then
    error("resi.ratelimit: weight must be a positive number", 3)
  end
  if opts.priority ~= nil and type(opts.priority) ~= "number" then
    error("resi.ratelimit: priority must be a number (0 is the most important)", 3)
  end
  if opts.timeout ~= nil and type(opts.timeout) ~= "number" then
    error("resi.ratelimit: timeout must be a number of seconds", 3)
  end
  return weight, opts
end

-- Makes room in a full line by the on_full policy; returns nil when the
-- new waiter may queue, else the reason it may not.
function Limiter:_make_room(priority, now)
  local q = self.queue
  if not self.max_queue or q.n < self.max_queue then return nil end
  local policy = self.on_full
  if policy == "reject" then return "queue_full" end
  if policy == "block" then return "block" end
  local victim
  if policy == "drop_oldest" then
    victim = q:oldest()
  else
    victim = q:lowest(now)
    if victim and q:effective(victim, now) <= priority then return "queue_full" end
  end
  if not victim then return "queue_full" end
  self:_remove(victim)
  self.st.dropped = self.st.dropped + 1
  log().debug("ratelimit: waiter dropped (queue full)", { limiter = self.name, policy = policy, queued = q.n })
  finish(victim, nil, "dropped", "the queue passed its high-water mark (" .. policy .. ")")
  return nil
end

-- acquire, on_full = "block": suspends the producer (task t) until _admit
-- lets it try again, the line being below its mark. Cancelled, it leaves
-- the blocked line and passes on a turn it was given.
local function wait_below_mark(self, t, token)
  local entry = { task = t, token = token }
  if self.blocked == EMPTY then self.blocked = {} end
  self.blocked[#self.blocked + 1] = entry
  local ok, err = pcall(task.suspend, t, function()
    for i, e in ipairs(self.blocked) do if e == entry then table.remove(self.blocked, i) break end end
  end)
  if not ok then
    if entry.woken then self:_admit() end -- cancelled after being let in: pass the turn on
    error(err, 0)
  end
end

-- acquire: finds the caller a place in the line (on_full may drop another
-- waiter, or "block" wait for the line to shrink). Returns the task and
-- token to wait with, the reason it may not queue (nil: it may) and the
-- time it found room.
local function make_way(self, priority, now)
  local t, token = task.prepare("lim:acquire()")
  local full = self:_make_room(priority, now)
  while full == "block" do
    wait_below_mark(self, t, token)
    t, token = task.prepare("lim:acquire()")
    now = self.now()
    full = self:_make_room(priority, now)
  end
  return t, token, full, now
end

-- The answer to a call the full line refuses.
local function refused(self, reason)
  self.st.rejected = self.st.rejected + 1
  log().debug("ratelimit: call rejected (queue full)", { limiter = self.name, queued = self.queue.n })
  return nil, reason
end

-- acquire, with a timeout: a timer that takes waiter w out of the line
-- when its `seconds` in line are up.
local function time_limit(self, w, seconds)
  return task.spawn(function()
    self.sleep(seconds)
    if self:_remove(w) then
      finish(w, timed_out(self))
      self:_dispatch()
    end
  end)
end

-- acquire, cancelled in line: a permit granted but not yet taken goes
-- back whole (refunded, as the call never went out); the cancellation
-- then goes on.
local function cancelled_in_line(self, w, err)
  if w.permit then
    self.st.cancelled = self.st.cancelled + 1
    w.permit:release(true)
  end
  error(err, 0)
end

-- acquire: queues waiter w and suspends its task until the line answers
-- (a permit from _dispatch, or nil and a reason); a timeout, when given,
-- takes it out of the line. Cancelling the task takes it out too.
local function wait_in_line(self, w, timeout)
  if self.queue == EMPTY_QUEUE then self.queue = queue.new(self.aging) end
  self.queue:push(w)
  local timer = timeout and time_limit(self, w, timeout)
  self:_dispatch()
  local ok, a, b, c = pcall(task.suspend, w.task, function()
    if self:_remove(w) then
      self.st.cancelled = self.st.cancelled + 1
      self:_dispatch()
    end
  end)
  if timer then timer:cancel() end
  if not ok then cancelled_in_line(self, w, a) end
  if a and a.waited > 0 and log().enabled("debug") then
    log().debug("ratelimit: waited", { limiter = self.name, seconds = a.waited, queued = self.queue.n })
  end
  return a, b, c
end

--- Takes `weight` units (default 1) from the limiter and its parents, waiting
--- in line when they are not available. opts: weight, priority (0 most
--- important, default 5), timeout (seconds in line at most). Returns a permit,
--- or nil and a reason: "timeout", "queue_full", "dropped" (shed at the
--- high-water mark), "not_before" (the server asked for a pause longer than
--- retry_after_max; the third value is the epoch time to come back at) or
--- "too_heavy". Cancelling the task takes it out of the line.
---@param weight? number|table
---@param opts? {weight?: number, priority?: number, timeout?: number}
---@return resi.ratelimit.permit|nil permit
---@return string|nil reason
---@return any info
---@async
function Limiter:acquire(weight, opts)
  weight, opts = acquire_args(weight, opts)
  local priority = opts.priority or 5
  local now = self.now()
  local nb = self:_not_before(now)
  if nb then return handed_back(self, nb) end
  if self.queue.n == 0 and #self.blocked == 0 then -- nobody ahead: at once if the chain allows
    local d, who = self:_check(weight)
    if d == 0 then return self:_commit(weight, 0) end
    if d == nil then return too_heavy(self, weight, who) end
  end
  if opts.timeout and opts.timeout <= 0 then return timed_out(self) end
  local t, token, full
  t, token, full, now = make_way(self, priority, now)
  if full then return refused(self, full) end
  return wait_in_line(self, { task = t, token = token, weight = weight, priority = priority, enq = now }, opts.timeout)
end

--- Takes `weight` units now if they are free and nobody is waiting; never
--- waits. Returns a permit, or nil and the seconds until it might succeed
--- (math.huge while a concurrency limit is full).
---@param weight? number
---@return resi.ratelimit.permit|nil
---@return number|nil
function Limiter:try(weight)
  weight = acquire_args(weight)
  if self.queue.n > 0 or #self.blocked > 0 then
    local d = self:_check(weight)
    return nil, math.max(d or huge, 0)
  end
  local d = self:_check(weight)
  if d == 0 then return self:_commit(weight, 0) end
  return nil, d or huge
end

--- Ends a call: the same as permit:release().
---@param permit resi.ratelimit.permit
function Limiter:release(permit) permit:release() end

-- What the server's answers change (pauses, limits, use) is done in
-- resi.ratelimit.learn; lim:pause and lim:observe are its entry points.

--- Pauses every call of this limiter for `seconds` (a 429, a reset, or the
--- caller's own decision). Above retry_after_max the pause is capped
--- (on_long_wait = "sleep") or kept whole and calls are handed back with a
--- not-before time ("return"); either way a warning is logged.
---@param seconds number
---@param why? string
function Limiter:pause(seconds, why) return learn.pause(self, seconds, why) end

-- The local rule a server-reported window maps to (or the primary rule).
function Limiter:_rule_for(window)
  if window == nil then return self:_primary() end
  for _, r in ipairs(self.rules) do if math.abs(r.window - window) < 1e-9 then return r end end
  return nil
end

--- Learns from a response: a 429 (or a 503 with Retry-After) pauses the
--- whole limiter, shared by every task using it, for Retry-After (which wins
--- over any RateLimit field), else the RateLimit reset, else a growing
--- default; RateLimit-Limit / RateLimit-Policy limits are adopted (learn =
--- true) and a RateLimit-Remaining below what the limiter thinks is left is
--- counted as someone else's use. An adaptive limiter also adapts its limit
--- (resi.ratelimit.adaptive); `permit`, the one the call went out on, tells
--- it whether this was a retry of a call throttled already (lim:call passes
--- it and marks permit.after_throttle). Returns what was read from the headers.
---@param res {status: integer, headers: table<string,string>}|nil
---@param permit? resi.ratelimit.permit
---@return table|nil info
function Limiter:observe(res, permit) return learn.observe(self, res, permit) end

--- Counters and state: queued (and by priority), in_flight, granted, waits,
--- waited (seconds in total), max_wait, rejected, dropped, cancelled,
--- timeouts, handed_back, seen_429, seen_503, retries, retries_denied,
--- pauses, capped, episodes, lowered, raised (adaptive: 429 episodes, and
--- how often the limit went down and up), paused_for (seconds left), rules
--- ({limit, window, used, kind}), learned ({limit, remaining, reset, window,
--- retry_after}), retry_budget (tokens left) and, when adaptive, adaptive
--- ({base, floor, step, episode}).
---@return table
function Limiter:stats()
  local now = self.now()
  local out = {}
  for _, k in ipairs(COUNTERS) do out[k] = self.st[k] end
  out.name = self.name
  out.queued = self.queue.n
  out.queued_by_priority = self.queue:counts()
  out.blocked = #self.blocked
  out.in_flight = self.in_flight
  out.concurrency = self.concurrency
  out.paused_for = math.max(0, self.paused_until - now)
  out.rules = {}
  for i, r in ipairs(self.rules) do
    out.rules[i] = { kind = r.kind, limit = r.limit, window = r.window, used = r:used(now),
      learned_from = r.learned_from }
  end
  local l = {}
  for k, v in pairs(self.learned or {}) do l[k] = v end
  out.learned = l
  out.retry_budget = self.retry_budget.tokens
  out.adaptive = adaptive.stats(self, now)
  return out
end

--- Writes stats() to resi.log at debug level (and returns them).
---@return table
function Limiter:log_stats()
  local s = self:stats()
  log().debug("ratelimit: stats", s)
  return s
end

--- Is the limiter back to its initial state (so it may be forgotten)?
---@return boolean
function Limiter:idle()
  local now = self.now()
  if self.queue.n > 0 or #self.blocked > 0 or self.pump or self.child_pump then return false end
  if self.concurrency and self.in_flight > 0 then return false end
  if self.paused_until > now then return false end
  for _, r in ipairs(self.rules) do if not r:idle(now) then return false end end
  return true
end

--- Changes the limit of the primary rule (or of the rule with `window`) at
--- run time, keeping what is in the window. An adaptive limiter takes it
--- as its new base (what it recovers to after a 429 episode).
---@param limit number
---@param window? number
function Limiter:set_limit(limit, window)
  local r = self:_rule_for(window)
  if not r then error("resi.ratelimit: no rule with that window", 2) end
  r:set_limit(limit, self.now())
  adaptive.rebase(self, r, limit)
  self:_dispatch()
end

-- "resi.ratelimit NAME (queued N, in flight N)" for the REPL and logs.
function Limiter:__tostring()
  return ("resi.ratelimit %s (queued %d, in flight %d)"):format(self.name, self.queue.n, self.in_flight)
end

--- Runs fn through the limiter with retries. Each attempt acquires again
--- (retries spend the same budget as first attempts), calls fn(attempt),
--- observes a response-shaped result, and releases. opts: weight, priority,
--- timeout (in line), attempts (default 4), base (0.5 s), cap (30 s),
--- budget (default: the limiter's retry budget), rand, and
--- retryable(r1, r2, r3) -> "throttled" | "retry" | nil; the default retries
--- 429 and 503+Retry-After always, and other 5xx and transport failures only
--- when `method` (opts.method) is idempotent or `headers` carry an
--- Idempotency-Key. "throttled" waits only for the limiter's pause; "retry"
--- also sleeps a full-jitter backoff. Returns fn's last results, or nil and
--- acquire's reason when the limiter gave up.
---@param fn fun(attempt: integer): any
---@param opts? table
---@return any
---@async
function Limiter:call(fn, opts) return retry.call(self, fn, opts) end

--- Sends an HTTP request (resi.http.request options) through a limiter,
--- with lim:call's retries. policy: lim:call options, plus
--- idempotency_key = true to add a random Idempotency-Key to a POST/PATCH
--- (the same on every attempt), so it may be retried after a lost response.
--- Returns the response, or nil, message, code: a transport failure, or the
--- limiter's reason as code ("timeout", "queue_full", "dropped",
--- "not_before" with the epoch time to come back at as a fourth value).
---@param lim resi.ratelimit.limiter
---@param http_opts table
---@param policy? table
---@return table|nil res
---@return string|nil err
---@return any code
---@async
function M.request(lim, http_opts, policy)
  if type(lim) ~= "table" or not lim._is_limiter then
    error("resi.ratelimit.request: first argument must be a limiter", 2)
  end
  if type(http_opts) ~= "table" then error("resi.ratelimit.request: http options must be a table", 2) end
  return retry.request(lim, http_opts, policy)
end

--- Keyed limiters, one per key, created on demand with the same options
--- (plus `idle`: seconds unused after which a limiter back in its initial
--- state is forgotten, default 300; `mask_keys`: show keys masked in names;
--- `sweep`: stale limiters looked at per get, default 4). Memory stays flat
--- however many keys pass through. The keys share one configuration and one
--- retry budget (give `retry_budget` to choose it), so an outage of the
--- provider does not multiply traffic by the number of keys.
---@param opts resi.ratelimit.options|{idle?: number, mask_keys?: boolean, sweep?: integer}
---@return resi.ratelimit.group
function M.group(opts)
  local g = group.new(opts, config, instance) -- not a tail call: error levels count this frame
  return g
end

M.Limiter = Limiter
M.Permit = Permit

return M
