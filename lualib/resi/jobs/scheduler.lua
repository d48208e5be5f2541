--- resi.jobs.scheduler: the engine behind `resi jobs`. It keeps, per job, a
--- cursor (the last slot it has dealt with) and the next slot, sleeps on
--- ONE timer until the earliest next slot of any job, and on waking gives
--- every due slot exactly one recorded outcome in the store:
---
---   running -> succeeded | failed | timed_out | cancelled | interrupted
---   or, for a slot that does not run: skipped_overlap | missed | coalesced
---
--- The claim (a "running" row for (job, nominal time), a unique key) is
--- committed before the job function is called, so a slot never runs twice,
--- across restarts and kill -9 included; a claim that finds the row taken
--- does not run. An idle job's next slot is claimed CLAIM_AHEAD seconds
--- before its time (the claim's commit, an fsync, is then off the start's
--- path) and its run starts at the slot's time after a mark that does not
--- wait for the disk (attempt 0 -> 1: db:mark_started); a claimed slot
--- that does not start (paused, stopping, a clock jump, the job changed)
--- is released: its row is deleted, and the slot gets the outcome it would
--- have had. On start-up the running rows of a dead process become
--- "interrupted" (or are run again with on_interrupt = "rerun"); a dead
--- process's claim that never started is released instead, and the
--- slots that passed while the daemon was down follow the job's catch-up
--- policy (latest | all | none, with grace and max_catchup).
---
--- Everything time-related comes from an injectable clock {now=, monotonic=,
--- sleep=} so specs replay days of slots, DST changes and clock jumps in
--- milliseconds. The wall clock is watched against the monotonic one at
--- every wake-up and a jump is classified as cronie does (anchors B.4):
---   small forward (<= 5 min): late, the job's catch-up policy applies;
---   DST-sized forward (<= 3 h): wildcard jobs run once (the skipped slots
---     are coalesced), fixed-time jobs run each skipped slot once;
---   large forward (> 3 h): a clock correction, no backfill: skipped slots
---     are recorded "missed";
---   backward (any size): nothing repeats (a slot's identity is its nominal
---     time, which already has its outcome); jobs wait until the clock
---     passes the last slot they dealt with.
--- Each jump is logged and counted (observer.on_jump). DST in a job's zone
--- is not a jump (UTC does not move): resi.cron's rule places the slots.
--- The timer sleeps at most MAX_SLEEP (5 min) so that a jump while idle is
--- seen; that is the only wake-up without a due slot. The real clock sleeps
--- to a wall-clock time (a timerfd), so a step of the wall clock (settimeofday,
--- an NTP step) also wakes it at once.
---
--- Overlap (a slot due while the job runs): skip (recorded skipped_overlap),
--- buffer_one (one slot claimed and queued, later ones skipped), cancel_other
--- (the running run is cancelled, then this one starts), allow. Catch-up runs
--- of catchup = "all" queue one after another. A run's timeout cancels its
--- task (its HTTP transfers are aborted) and it ends timed_out; retry
--- attempts reuse the slot's claim, so the slot still has one outcome.
local task = require "resi.task"
local schedule = require "resi.jobs.schedule"
local MAX_CLAIM_AHEAD = require("resi.store.runs").MAX_CLAIM_AHEAD

local M = {}

--- Seconds of wall-clock drift (against the monotonic clock) not treated as a jump.
M.JUMP_TOLERANCE = 1
--- Upper bound of a small forward jump (cronie: 5 minutes).
M.SMALL_JUMP = 300
--- Upper bound of a DST-sized jump (cronie: 3 hours).
M.LARGE_JUMP = 10800
--- The longest the timer sleeps, so that a wall-clock jump while idle is
--- noticed within this many seconds (a step of the wall clock also wakes the
--- real clock's timer at once).
M.MAX_SLEEP = 300
--- Slots recorded one by one in a single catch-up; older ones are counted and logged.
M.RECORD_LIMIT = 1000
--- How late the newest slot may start with catchup = "none" and no grace.
M.ON_TIME = 60
--- Default max_catchup for catchup = "all".
M.MAX_CATCHUP = 100
--- How long before its time an idle job's next slot is claimed, in seconds
--- (0: at its time). A commit's fsync shorter than this does not delay the start.
M.CLAIM_AHEAD = 0.5

local Scheduler = {}
Scheduler.__index = Scheduler

-- The default clock: the loop's real wall and monotonic clocks.
local function real_clock()
  local core = require "resi.core"
  return { now = core.now, monotonic = core.monotonic, sleep = task.sleep, sleep_until = task.sleep_until,
    boot_time = require("resi.fs_core").boot_time }
end

-- A logger that drops everything (when none is given).
local NOLOG = { debug = function() end, info = function() end, warn = function() end, error = function() end }

-- An observer with every hook a no-op; the daemon passes metrics hooks.
local function observer(o)
  o = o or {}
  local hooks = { "on_outcome", "on_skip", "on_next", "on_running", "on_jump", "on_start", "on_paused",
    "on_clock_offset", "on_lease_failure", "on_fenced", "on_mismatch" }
  for _, h in ipairs(hooks) do o[h] = o[h] or function() end end
  return o
end

-- FNV-1a 32-bit hash of a string (the stable offset's source).
local function fnv1a(s)
  local h = 2166136261
  for i = 1, #s do
    h = h ~ s:byte(i)
    h = (h * 16777619) & 0xffffffff
  end
  return h
end

--- The stable offset of a job on a host: a number in [0, range) seconds, a
--- hash of "name@host" (systemd's FixedRandomDelay), the same after restarts.
---@param name string
---@param host string
---@param range number
---@return number
function M.stable_offset(name, host, range)
  if not range or range <= 0 then return 0 end
  local ms = math.floor(range * 1000)
  if ms <= 0 then return 0 end
  return (fnv1a(name .. "@" .. host) % ms) / 1000
end

--- Creates a scheduler.
--- `notifier`: where jobs with notify_on send when they name no target
--- (default notify.from_env() on first use; false: nowhere).
--- `lease` (seconds): lease mode, for several daemons on one shared store
--- (resi.jobs.cluster): claims on the database clock under a lease that
--- this process renews, runs fenced when it cannot, expired runs of any
--- node reaped as interrupted; `owner` is this process's unique id,
--- `jobs_hash`/`jobs_file` what it tells other daemons it loaded.
--- `claim_ahead` (seconds, default CLAIM_AHEAD, at most resi.store.runs.MAX_CLAIM_AHEAD; 0: claim at the slot's time;
--- lease mode always claims at the slot's time, on the database's clock).
---@param o {jobs: table[], store: table, clock?: table, node?: string, pid?: integer, log?: table, observer?: table, random?: fun(): number, pid_alive?: fun(pid: integer): boolean, max_sleep?: number, notifier?: table|false, lease?: number, owner?: string, jobs_hash?: string, jobs_file?: string, claim_ahead?: number}
---@return table
function M.new(o)
  local self = setmetatable({
    store = assert(o.store, "scheduler: a store is required"),
    clock = o.clock or real_clock(),
    node = o.node or "localhost",
    pid = o.pid or 0,
    log = o.log or NOLOG,
    obs = observer(o.observer),
    random = o.random or math.random,
    pid_alive = o.pid_alive,
    max_sleep = o.max_sleep or M.MAX_SLEEP,
    claim_ahead = o.lease and 0 or o.claim_ahead or M.CLAIM_AHEAD,
    notifier = o.notifier,
    jobs = {}, order = {}, retired = {},
    jumps = { forward = 0, backward = 0 },
    stopping = false,
    lease = o.lease, owner = o.owner, jobs_hash = o.jobs_hash, jobs_file = o.jobs_file, offset = nil,
  }, Scheduler)
  if self.claim_ahead > MAX_CLAIM_AHEAD then
    error(("scheduler: claim_ahead must be at most %g seconds, got %g"):format(MAX_CLAIM_AHEAD, self.claim_ahead), 2)
  end
  if self.lease then
    -- lease mode schedules on the database's clock: now() minus the measured offset
    local base = self.clock
    self.base_clock = base
    self.clock = setmetatable({ now = function() return base.now() - (self.offset or 0) end }, { __index = base })
    self.owner = self.owner or require("resi.store.lease").owner_id()
    self.keeper = require("resi.jobs.cluster").new(self)
  end
  self:set_jobs(o.jobs or {})
  return self
end

-- The run id of a slot: "job@2026-03-29T01:00:00Z".
local function run_id(name, nominal) return name .. "@" .. schedule.iso(nominal) end
M.run_id = run_id

-- Fresh runtime state for a job definition.
local function new_state(def)
  return { def = def, name = def.name, active = {}, nactive = 0, queue = {} }
end

--- Replaces the job definitions; jobs keep their state (cursor, running
--- runs, buffered slot) by name. Jobs no longer defined stop being
--- scheduled (their running runs finish). Wakes the timer.
---@param defs table[]
function Scheduler:set_jobs(defs)
  local old = self.jobs
  for name, st in pairs(self.retired or {}) do old[name] = old[name] or st end
  self.jobs, self.order, self.retired = {}, {}, {}
  for _, def in ipairs(defs) do
    local st = old[def.name] or new_state(def)
    local changed = st.def.schedule.text ~= def.schedule.text or st.def.schedule.tz ~= def.schedule.tz
    st.def = def
    st.offset = M.stable_offset(def.name, self.node, def.stable_offset)
    self.jobs[def.name] = st
    self.order[#self.order + 1] = st
    if st.cursor and changed then
      self:release(st)
      self:advance(st, st.cursor)
    end
  end
  table.sort(self.order, function(a, b) return a.name < b.name end)
  self:retire(old)
  if self.started then
    for _, st in ipairs(self.order) do if not st.cursor then self:place(st) end end
    self:poke()
  end
end

--- Keeps the jobs no longer defined whose runs are still going (so stop()
--- waits for them); their queued slots end cancelled.
---@param old table<string, table>  the job states before the reload
function Scheduler:retire(old)
  for name, st in pairs(old) do
    if not self.jobs[name] then
      self:release(st)
      for _, q in ipairs(st.queue) do self:finish_unstarted(st, q.t, "job removed from the jobs file") end
      st.queue = {}
      if st.nactive > 0 then self.retired[name] = st end
    end
  end
end

--- The cursor a job starts from: its latest recorded slot, or the first
--- time this store saw it (kept in the store so slots are never lost between
--- a first start and the first record).
---@param st table  the job's state
---@async
function Scheduler:initial_cursor(st)
  local now = math.floor(self.clock.now())
  local last = self.store:last_run(st.name)
  local since = self.store:get("jobs.since", st.name)
  if since == nil then
    since = now
    self.store:set("jobs.since", st.name, since)
  end
  local cursor = last and math.max(last.nominal_at, since) or since
  return cursor
end

--- Sets a job's cursor to a fresh start (used for jobs new to this process).
---@param st table  the job's state
function Scheduler:place(st)
  self:advance(st, self:initial_cursor(st))
end

--- Moves a job's cursor to `cursor` and computes its next slot and fire time.
---@param st table  the job's state
---@param cursor integer  epoch seconds
function Scheduler:advance(st, cursor)
  st.cursor = cursor
  st.next = st.def.schedule:next(cursor)
  if st.next then
    local jitter = st.def.jitter and st.def.jitter > 0 and self.random() * st.def.jitter or 0
    st.fire = st.next + st.offset + jitter
  else
    st.fire = nil
  end
  self.obs.on_next(st.name, st.next)
end

--- Is the job paused? `resi jobs pause/resume` (the store's job state) wins
--- over the file's `paused` option once it has been used.
---@param st table  the job's state
---@async
function Scheduler:paused(st)
  local state = self.store:job_state(st.name)
  if state.updated_at ~= nil or state.paused then return state.paused == true end
  return st.def.paused == true
end

--- Recovery and start: running rows of dead processes become interrupted
--- (or run again), every job gets its cursor, and the timer task starts.
--- Returns the number of rows recovered.
---@return integer
---@async
function Scheduler:start()
  if self.keeper then self.keeper:measure_offset() end
  local n = self:recover()
  -- one transaction for every job's cursor: one commit, not one per job
  self.store:transaction(function()
    for _, st in ipairs(self.order) do if not st.cursor then self:place(st) end end
  end)
  self.last_wall, self.last_mono = self.clock.now(), self.clock.monotonic()
  self.started = true
  self.ticker = task.spawn(function() self:loop() end)
  if self.keeper then
    self.keeper:register()
    self.keeper_task = task.spawn(function() self.keeper:loop() end)
  end
  return n
end

--- The test of whether a running row's process is alive, for
--- db:interrupt_dead. With an injected pid_alive (specs), our own pid counts
--- as gone (a container restart reuses pid 1); otherwise nil: the store's
--- test (pid and process start time) decides.
---@return (fun(row: resi.store.run): boolean)|nil
function Scheduler:alive_test()
  if not self.pid_alive then return nil end
  return function(row)
    if row.pid == self.pid then return false end
    return self.pid_alive(row.pid)
  end
end

--- Settles the running rows left by dead processes of this node: each
--- becomes interrupted (a claim that never started is released), then is
--- run again when its job says on_interrupt = "rerun". Returns how many
--- became interrupted.
---@return integer
---@async
function Scheduler:recover()
  if self.keeper then
    self.keeper:renew() -- confirms the lease state (readiness) before the first claim
    return self.keeper:reap()
  end
  local marked, released = self.store:interrupt_dead(self.node, self:alive_test(), self.clock.now(),
    self.clock.boot_time and self.clock.boot_time())
  for _, row in ipairs(released or {}) do
    self.log.info("claim released: its process ended before the run started", { job = row.job,
      run_id = run_id(row.job, row.nominal_at), nominal = schedule.iso(row.nominal_at), pid = row.pid })
  end
  for _, row in ipairs(marked) do
    self.obs.on_outcome(row.job, "interrupted")
    self.log.warn("run interrupted", { job = row.job, run_id = run_id(row.job, row.nominal_at),
      nominal = schedule.iso(row.nominal_at), outcome = "interrupted", pid = row.pid })
    local st = self.jobs[row.job]
    if st and st.def.on_interrupt == "rerun" then self:rerun(st, row) end
  end
  return #marked
end

--- Runs an interrupted slot again (on_interrupt = "rerun"), as attempt + 1.
---@param st table  the job's state
---@param row table  a run row of the store
---@async
function Scheduler:rerun(st, row)
  local attempt
  if self.lease then
    attempt = self.store:rerun_leased{ job = row.job, nominal_at = row.nominal_at, node = self.node, pid = self.pid,
      owner = self.owner, lease = self.lease }
  else
    attempt = self.store:rerun{ job = row.job, nominal_at = row.nominal_at, node = self.node, pid = self.pid,
      started_at = self.clock.now() }
  end
  if not attempt then return end
  self.log.info("rerunning interrupted run", { job = row.job, run_id = run_id(row.job, row.nominal_at),
    attempt = attempt })
  self:launch(st, row.nominal_at, { missed = row.missed or 0, attempt = attempt, rerun = true })
end

--- Wakes the timer task (after a reload or stop): the current sleeper is
--- cancelled and a new one computes its own delay.
function Scheduler:poke()
  if not self.started or not self.ticker then return end
  if self.sleeping then
    self.ticker:cancel()
    self.sleeping = false
    if not self.stopping then self.ticker = task.spawn(function() self:loop() end) end
  end
end

--- The earliest fire time of any job (nil when none will fire).
---@return number|nil epoch seconds
function Scheduler:next_fire()
  local best
  for _, st in ipairs(self.order) do
    if st.fire and (not best or st.fire < best) then best = st.fire end
  end
  return best
end

--- How long the timer sleeps before its next step, claiming ahead the slots
--- due within claim_ahead (0 or less: tick now).
---@return number seconds
---@async
function Scheduler:delay()
  local due = self:next_fire()
  if not due then return self.max_sleep end
  local now = self.clock.now()
  local ahead = due - now
  if ahead <= 0 or self.claim_ahead <= 0 then return ahead end
  if ahead > self.claim_ahead then return ahead - self.claim_ahead end
  local ok, err = pcall(self.claim_upcoming, self, now)
  if not ok then
    if task.is_cancelled(err) then error(err, 0) end
    self.log.warn("claiming a slot ahead failed; it is claimed at its time", { error = tostring(err) })
  end
  return due - self.clock.now()
end

--- Sleeps `delay` seconds: to that wall-clock time when the clock can
--- (task.sleep_until: a timerfd, precise to the kernel's timer where libuv's
--- is late by up to ~2 ms, and woken early by a step of the wall clock), else
--- on the monotonic clock. In lease mode the target is on this machine's clock.
---@param delay number  seconds
---@async
function Scheduler:sleep_for(delay)
  local base = self.base_clock or self.clock
  if base.sleep_until then return base.sleep_until(base.now() + delay) end
  return self.clock.sleep(delay)
end

--- The timer task's body: sleeps until the next fire time (claiming
--- ahead), then ticks, until the scheduler stops or a newer timer task
--- replaces this one (Scheduler:poke).
---@async
function Scheduler:loop()
  while not self.stopping do
    local delay = self:delay()
    if delay > 0 then
      self.sleeping = true
      local ok, err = pcall(self.sleep_for, self, math.min(delay, self.max_sleep))
      self.sleeping = false
      if not ok then
        if task.is_cancelled(err) then return end
        error(err, 0)
      end
      if task.current() ~= self.ticker then return end
    end
    if self.stopping then return end
    local ok, err = xpcall(self.tick, debug.traceback, self)
    if not ok then
      -- a store error (disk full, busy past its timeout): every step is
      -- idempotent (claims and records refuse a slot that has a row), so
      -- the next tick redoes what this one could not
      self.log.error("scheduler tick failed; retrying in 5 s", { error = tostring(err) })
      if not pcall(self.clock.sleep, 5) then return end
    end
  end
end

--- Compares wall and monotonic progress since the last wake-up; returns a
--- jump {d=, from=, to=, size=, direction=} or nil.
---@param now number  epoch seconds
function Scheduler:observe_clock(now)
  local mono = self.clock.monotonic()
  local d = (now - self.last_wall) - (mono - self.last_mono)
  self.last_wall, self.last_mono = now, mono
  if math.abs(d) <= M.JUMP_TOLERANCE then return nil end
  local size = math.abs(d) <= M.SMALL_JUMP and "small" or math.abs(d) <= M.LARGE_JUMP and "medium" or "large"
  local jump = { d = d, from = now - d, to = now, size = size, direction = d > 0 and "forward" or "backward" }
  self.jumps[jump.direction] = self.jumps[jump.direction] + 1
  self.obs.on_jump(jump.direction, size)
  local what = d > 0 and (size == "large" and "no backfill: skipped slots are recorded missed"
      or size == "medium" and "wildcard jobs run once, fixed-time jobs run each skipped slot once"
      or "late: catch-up policies apply")
    or "no slot runs twice: jobs wait until the clock passes their last slot"
  self.log.warn("wall clock jumped", { seconds = d, direction = jump.direction, size = size,
    from = schedule.iso(jump.from), to = schedule.iso(now), handling = what })
  return jump
end

--- Claims ahead the next slot of every idle job due within claim_ahead of
--- now, as attempt 0; the slot then starts at its time after an unsynced
--- start mark instead of a durable commit (Scheduler:claim).
--- A slot whose claim finds a row is left to its tick.
---@param now number  epoch seconds
---@async
function Scheduler:claim_upcoming(now)
  for _, st in ipairs(self.order) do
    if st.fire and st.fire > now and st.fire - now <= self.claim_ahead
      and st.armed_tried ~= st.next and st.nactive == 0 and #st.queue == 0 and not self.stopping
      and not self:paused(st) then
      st.armed_tried = st.next -- tried once: a refused or failed claim is left to the slot's tick
      if self.store:claim_run{ job = st.name, nominal_at = st.next, node = self.node, pid = self.pid,
          started_at = st.fire, attempt = 0, missed = 0 } then
        st.armed = st.next
      end
    end
  end
end

--- Releases a job's slot claimed ahead that is not going to start: its row
--- is deleted, so the slot can get another outcome (or run after a restart).
---@param st table  the job's state
---@async
function Scheduler:release(st)
  local t = st.armed
  if not t then return end
  st.armed = nil
  self.store:release_claim(st.name, t, self.pid)
end

--- Handles every job whose fire time has come (called by the timer task).
function Scheduler:tick()
  local now = self.clock.now()
  local jump = self:observe_clock(now)
  for _, st in ipairs(self.order) do
    if st.fire and st.fire <= now then self:process(st, now, jump) end
  end
end

-- Decides, for a due slot, whether it runs, and how late it is.
local function lateness(st, t, now) return now - (t + st.offset) end

--- The job's catch-up policy over slots (oldest first): a list of actions
--- {t=, action="run"|"missed"|"coalesced", missed=n}.
---@param st table  the job's state
---@param slots integer[]  nominal times
---@param now number  epoch seconds
---@param acts table
---@param kind string
function Scheduler:policy(st, slots, now, acts, kind)
  local def = st.def
  local catchup = kind or def.catchup or "latest"
  local grace = def.grace
  if catchup == "none" and not grace then grace = M.ON_TIME end
  local live = {}
  for _, t in ipairs(slots) do
    if grace and kind == nil and lateness(st, t, now) > grace then
      acts[#acts + 1] = { t = t, action = "missed", reason = "missed_deadline" }
    else
      live[#live + 1] = t
    end
  end
  if #live == 0 then return end
  if catchup == "all" then
    local cap = def.max_catchup or M.MAX_CATCHUP
    for i, t in ipairs(live) do
      if kind == nil and #live - i >= cap then
        acts[#acts + 1] = { t = t, action = "missed", reason = "max_catchup" }
      else
        acts[#acts + 1] = { t = t, action = "run", missed = 0, queue = true }
      end
    end
    return
  end
  local outcome = catchup == "none" and "missed" or "coalesced"
  local reason = catchup == "none" and "catchup_none" or "coalesced"
  for i = 1, #live - 1 do acts[#acts + 1] = { t = live[i], action = outcome, reason = reason } end
  acts[#acts + 1] = { t = live[#live], action = "run", missed = catchup == "none" and 0 or #live - 1 }
end

--- The actions for a job's due slots, with a clock jump's window handled as
--- cronie does: large forward, the window's slots are missed (no backfill);
--- DST-sized forward, a wildcard job runs once for everything due (the rest
--- coalesced) and a fixed-time job runs each slot of the window once, one
--- after another.
---@param st table  the job's state
---@param slots integer[]  nominal times
---@param now number  epoch seconds
---@param jump string|nil  the clock jump, when one was seen
function Scheduler:plan(st, slots, now, jump)
  local acts = {}
  if not (jump and jump.direction == "forward" and jump.size ~= "small") then
    self:policy(st, slots, now, acts)
    return acts
  end
  if jump.size == "medium" and st.def.schedule.wildcard then
    self:policy(st, slots, now, acts, "latest")
    return acts
  end
  local before, inside = {}, {}
  for _, t in ipairs(slots) do
    if t + st.offset <= jump.from then before[#before + 1] = t else inside[#inside + 1] = t end
  end
  self:policy(st, before, now, acts)
  for _, t in ipairs(inside) do
    if jump.size == "large" then
      acts[#acts + 1] = { t = t, action = "missed", reason = "clock_jump" }
    else
      acts[#acts + 1] = { t = t, action = "run", missed = 0, queue = true }
    end
  end
  return acts
end

--- Gives a job's due slots their outcomes and starts the runs.
---@param st table  the job's state
---@param now number  epoch seconds
---@param jump string|nil  the clock jump, when one was seen
function Scheduler:process(st, now, jump)
  local slots, dropped = schedule.between(st.def.schedule, st.cursor, now - st.offset, M.RECORD_LIMIT)
  if dropped ~= 0 then
    -- a week of a 1-second job: the newest RECORD_LIMIT slots get rows, the
    -- older ones are counted here, in the log and in the metrics
    self.log.warn("too many slots passed to record one by one", { job = st.name, recorded = #slots,
      not_recorded = dropped, from = schedule.iso(st.cursor), to = schedule.iso(slots[1] or now) })
    self.obs.on_skip(st.name, "not_recorded", type(dropped) == "number" and dropped or 1)
  end
  if #slots == 0 then
    self:advance(st, st.cursor)
    return
  end
  local paused = self:paused(st)
  self.obs.on_paused(st.name, paused)
  local acts = paused and {} or self:plan(st, slots, now, jump)
  if paused then
    for _, t in ipairs(slots) do acts[#acts + 1] = { t = t, action = "missed", reason = "paused" } end
  end
  table.sort(acts, function(a, b) return a.t < b.t end)
  for _, a in ipairs(acts) do
    if a.action == "run" then self:dispatch(st, a.t, a) else self:record(st, a.t, a.action, a.reason) end
  end
  self:advance(st, slots[#slots])
end

--- Records a slot that does not run.
---@param st table  the job's state
---@param t integer  the slot's nominal time
---@param outcome string
---@param reason string|nil
---@async
function Scheduler:record(st, t, outcome, reason)
  if st.armed == t then self:release(st) end
  local ok = self.store:record_slot(st.name, t, outcome, { node = self.node, at = self.clock.now(), error = reason })
  if not ok then return end
  self.obs.on_skip(st.name, reason or outcome, 1)
  self.log.info("slot not run", { job = st.name, run_id = run_id(st.name, t), nominal = schedule.iso(t),
    outcome = outcome, reason = reason })
end

--- Applies the overlap policy to a slot that should run now. Catch-up runs
--- of catchup = "all" queue behind each other instead of overlapping.
---@param st table  the job's state
---@param t integer  the slot's nominal time
---@param info table
function Scheduler:dispatch(st, t, info)
  if self.stopping then return self:record(st, t, "missed", "stopping") end
  local overlap = st.def.overlap or "skip"
  local busy = st.nactive > 0 or #st.queue > 0
  if not busy or overlap == "allow" then
    info.exclusive = overlap == "skip" -- lease mode: no other node's run of the job may be running either
    return self:begin(st, t, info)
  end
  if info.queue then return self:enqueue(st, t, info) end
  if overlap == "skip" then return self:record(st, t, "skipped_overlap", "overlap") end
  if overlap == "buffer_one" then
    if #st.queue > 0 then return self:record(st, t, "skipped_overlap", "overlap") end
    return self:enqueue(st, t, info)
  end
  -- cancel_other: cancel what runs, start this one once they have ended
  local waits = {}
  for _, rec in pairs(st.active) do
    waits[#waits + 1] = rec.task
    self:cancel_run(rec, "cancel_other")
  end
  for _, q in ipairs(st.queue) do self:finish_unstarted(st, q.t, "cancel_other") end
  st.queue = {}
  info.wait_for = waits
  return self:begin(st, t, info)
end

--- Claims a slot now (so that a crash leaves it interrupted, never silent)
--- and queues it to start when the job's running runs end.
---@param st table  the job's state
---@param t integer  the slot's nominal time
---@param info table
function Scheduler:enqueue(st, t, info)
  if not self:claim(st, t, info) then return end
  st.queue[#st.queue + 1] = { t = t, info = info }
end

--- Ends a claimed slot that never started as cancelled.
---@param st table  the job's state
---@param t integer  the slot's nominal time
---@param why string
---@async
function Scheduler:finish_unstarted(st, t, why)
  if self.lease then
    self.store:finish_owned(st.name, t, "cancelled", self.owner, why)
  else
    self.store:finish_run(st.name, t, "cancelled", { finished_at = self.clock.now(), error = why })
  end
  self.obs.on_outcome(st.name, "cancelled")
  self.log.warn("queued run cancelled", { job = st.name, run_id = run_id(st.name, t), outcome = "cancelled",
    reason = why })
end

--- Commits the claim of a slot; false (and a log line) when it already has a row.
---@param st table  the job's state
---@param t integer  the slot's nominal time
---@param info table
---@async
function Scheduler:claim(st, t, info)
  if st.armed == t then -- claimed ahead (claim_upcoming): mark it started (a store error keeps it armed for the next tick)
    local ok = self.store:mark_started(st.name, t, self.pid)
    st.armed = nil
    if not ok then self.log.warn("slot claimed ahead lost its claim; not run", { job = st.name, run_id = run_id(st.name, t) }) end
    return ok
  end
  if self.lease then return self:claim_leased(st, t, info) end
  local ok = self.store:claim_run{ job = st.name, nominal_at = t, node = self.node, pid = self.pid,
    started_at = self.clock.now(), attempt = info.attempt or 1, missed = info.missed or 0 }
  if not ok then
    self.log.info("slot already recorded; not run again", { job = st.name, run_id = run_id(st.name, t) })
  end
  return ok
end

--- Lease mode's claim: on the database clock, under this process's lease;
--- a slot early on the database's clock is tried again when due (at most
--- three times), one refused for overlap (skip: another node runs the job)
--- is recorded skipped_overlap.
---@param st table  the job's state
---@param t integer  the slot's nominal time
---@param info table
---@async
function Scheduler:claim_leased(st, t, info)
  local core = require "resi.core"
  for _ = 1, 3 do
    local sent = core.monotonic()
    local ok, why, wait = self.store:claim_leased{ job = st.name, nominal_at = t, node = self.node, pid = self.pid,
      owner = self.owner, lease = self.lease, attempt = info.attempt or 1, missed = info.missed or 0,
      exclusive = info.exclusive }
    if ok then
      info.claimed_at = sent
      return true
    end
    if why == "overlap" then
      self:record(st, t, "skipped_overlap", "overlap (a run of the job holds a lease on another node)")
      return false
    end
    if why ~= "early" then break end
    self.log.info("slot not yet due on the database's clock; waiting", { job = st.name, run_id = run_id(st.name, t),
      seconds = wait })
    self.clock.sleep(math.min(wait, 5) + 0.01)
    if wait > 1 then self.keeper:measure_offset() end -- this node's clock moved since it was measured
  end
  self.log.info("slot already recorded; not run again", { job = st.name, run_id = run_id(st.name, t) })
  return false
end

--- Claims a slot and starts its run.
---@param st table  the job's state
---@param t integer  the slot's nominal time
---@param info table
function Scheduler:begin(st, t, info)
  if not self:claim(st, t, info) then return end
  self:launch(st, t, info)
end

--- Starts the task of a claimed run.
---@param st table  the job's state
---@param t integer  the slot's nominal time
---@param info table
function Scheduler:launch(st, t, info)
  local rec = { id = run_id(st.name, t), job = st.name, t = t, info = info, claimed_at = info.claimed_at }
  if self.keeper then
    rec.claimed_at = rec.claimed_at or require("resi.core").monotonic()
    rec.trust_until = self.keeper:trust(rec.claimed_at)
  end
  st.active[rec.id] = rec
  st.nactive = st.nactive + 1
  self.obs.on_running(st.name, st.nactive)
  rec.task = task.spawn(function() self:execute(st, rec) end)
  return rec
end

--- Cancels a running run; it ends "cancelled" (or "timed_out" when the reason is "timeout").
---@param rec table
---@param reason string
function Scheduler:cancel_run(rec, reason)
  if rec.cancel_reason then return end
  rec.cancel_reason = reason
  if rec.child then rec.child:cancel() end
  if rec.backoff then rec.backoff:cancel() end
end

-- Waits for a list of tasks to end, ignoring their errors.
local function wait_all(tasks)
  for _, t in ipairs(tasks or {}) do pcall(t.wait, t) end
end

--- One attempt: the job function in a child task, with the timeout. Returns
--- the outcome, and for a failure the error and its traceback.
---@param st table  the job's state
---@param rec table  the run record
---@param run table  the run object
---@async
function Scheduler:attempt(st, rec, run)
  local def = st.def
  local child = task.spawn(def.fn, run)
  rec.child = child
  if rec.cancel_reason then child:cancel() end
  local timer
  if def.timeout then
    timer = task.spawn(function()
      self.clock.sleep(def.timeout)
      rec.timed_out = true
      child:cancel()
    end)
  end
  local ok, err = pcall(child.wait, child)
  if timer then timer:cancel() end
  rec.child = nil
  if ok then return "succeeded" end
  if task.is_cancelled(err) then
    if rec.timed_out and not rec.cancel_reason then return "timed_out" end
    return "cancelled"
  end
  return "failed", err, child.trace or tostring(err)
end

-- The pause before retry `attempt` + 1: backoff seconds (a number, doubled
-- each time) or backoff(attempt).
local function backoff_delay(retry, attempt)
  local b = retry.backoff or 1
  if type(b) == "function" then return b(attempt) end
  return b * 2 ^ (attempt - 1)
end

--- Sleeps before a retry in a task that cancel_run can stop; false when cancelled.
---@param rec table  the run record
---@param seconds number
function Scheduler:pause_for_retry(rec, seconds)
  rec.backoff = task.spawn(self.clock.sleep, seconds)
  local ok = pcall(rec.backoff.wait, rec.backoff)
  rec.backoff = nil
  return ok and not rec.cancel_reason
end

--- The body of a run's task: attempts, outcome, record, log, then the buffered slot.
---@param st table  the job's state
---@param rec table  the run record
function Scheduler:execute(st, rec)
  wait_all(rec.info.wait_for)
  local def = st.def
  local started = self.clock.now()
  local run = { id = rec.id, job = st.name, nominal_at = rec.t, attempt = rec.info.attempt or 1,
    missed = rec.info.missed or 0, started_at = started }
  self.obs.on_start(st.name, started - rec.t)
  local first = run.attempt
  local last = first + (def.retry and def.retry.attempts or 1) - 1
  local outcome, err, trace
  for i = first, last do
    run.attempt = i
    outcome, err, trace = self:attempt(st, rec, run)
    if outcome == "succeeded" or rec.cancel_reason or i == last then break end
    self.log.warn("run attempt failed; retrying", { job = st.name, run_id = rec.id, attempt = i, outcome = outcome,
      error = err and tostring(err) })
    if not self:pause_for_retry(rec, backoff_delay(def.retry, i - first + 1)) then
      outcome = "cancelled"
      break
    end
  end
  self:finish(st, rec, run, outcome, err, trace)
end

--- Records a run's outcome, logs it and starts the buffered slot if any.
---@param st table  the job's state
---@param rec table  the run record
---@param run table  the run object
---@param outcome string
---@param err any
---@param trace string|nil
function Scheduler:finish(st, rec, run, outcome, err, trace)
  local now = self.clock.now()
  local duration = now - run.started_at
  local why = outcome == "failed" and tostring(err) or rec.cancel_reason or (outcome == "timed_out" and "timeout") or nil
  local saved, serr = self:save_outcome(rec, outcome, now, why)
  if not saved then
    -- the row stays running; the next start of the daemon marks it interrupted
    self.log.error("could not record a run's outcome", { job = st.name, run_id = rec.id, outcome = outcome,
      error = tostring(serr) })
  end
  st.active[rec.id] = nil
  st.nactive = st.nactive - 1
  st.last_outcome = outcome
  self.obs.on_running(st.name, st.nactive)
  self.obs.on_outcome(st.name, outcome, duration, now)
  local fields = { job = st.name, run_id = rec.id, nominal = schedule.iso(rec.t), started = schedule.iso(run.started_at),
    duration = duration, outcome = outcome, attempt = run.attempt, missed = run.missed,
    node = self.lease and self.owner or nil }
  if outcome == "failed" then
    fields.error, fields.traceback = tostring(err), trace
    self.log.error("run failed", fields)
  elseif outcome == "succeeded" then
    self.log.info("run finished", fields)
  else
    self.log.warn("run ended", fields)
  end
  if st.def.notify_on then -- the job's notify_on (resi.jobs.notify): a task of its own
    self.notifying = require("resi.jobs.notify").after_run(self, st.def, rec, outcome, err, duration)
  end
  self:start_buffered(st)
end

--- Records a run's outcome; returns ok, error. In lease mode only while
--- this process holds the run's lease (a fenced run, or one whose trust
--- window passed while the process was frozen, is left to the lease's end,
--- which records it interrupted).
---@param rec table  the run record
---@param outcome string
---@param now number
---@param why string|nil
function Scheduler:save_outcome(rec, outcome, now, why)
  if not self.lease then
    return pcall(self.store.finish_run, self.store, rec.job, rec.t, outcome, { finished_at = now, error = why })
  end
  local late = rec.trust_until and require("resi.core").monotonic() >= rec.trust_until
  if rec.fenced or late then
    return false, "lease lost (" .. tostring(rec.fenced or "trust window passed") .. "): the outcome is not recorded"
  end
  local ok, done = pcall(self.store.finish_owned, self.store, rec.job, rec.t, outcome, self.owner, why)
  if ok and not done then return false, "lease lost: the store no longer gives this process the run" end
  return ok, done
end

--- Starts the next queued slot of a job once nothing of it runs; when
--- stopping, the queued slots end cancelled.
---@param st table  the job's state
function Scheduler:start_buffered(st)
  if #st.queue == 0 or st.nactive > 0 then return end
  if self.stopping then
    for _, q in ipairs(st.queue) do self:finish_unstarted(st, q.t, "daemon stopping") end
    st.queue = {}
    return
  end
  local q = table.remove(st.queue, 1)
  self:launch(st, q.t, q.info)
end

--- Runs one job now, outside its schedule (resi jobs run): the slot is the
--- current second; waits for the run and returns its outcome (nil when the
--- slot was already recorded).
---@param name string
---@return string|nil outcome
---@async
function Scheduler:run_now(name)
  local st = self.jobs[name]
  if not st then error(("no job named %q"):format(name), 2) end
  local t = math.floor(self.clock.now())
  if self.keeper then self.keeper:measure_offset() end
  if not self:claim(st, t, { missed = 0 }) then return nil end
  local rec = self:launch(st, t, { missed = 0 })
  local keeper = self.keeper and task.spawn(function() self.keeper:loop() end)
  pcall(rec.task.wait, rec.task)
  if keeper then keeper:cancel() end
  local row = self.store.get_run and self.store:get_run(name, t)
  return row and row.status or st.last_outcome
end

--- How many runs are in progress.
---@return integer
function Scheduler:running()
  return #self:active_runs()
end

--- Every run in progress (of current and retired jobs), as the run records launch made.
---@return table[]
function Scheduler:active_runs()
  local out = {}
  for _, set in ipairs({ self.jobs, self.retired }) do
    for _, st in pairs(set) do for _, rec in pairs(st.active) do out[#out + 1] = rec end end
  end
  return out
end

--- Stops: no new runs; waits up to `timeout` seconds for the running ones,
--- then cancels the rest (recorded "cancelled"). Returns how many were cancelled.
---@param timeout number
---@return integer
---@async
function Scheduler:stop(timeout)
  self.stopping = true
  self:poke()
  if self.ticker then self.ticker:cancel() end
  for _, st in pairs(self.jobs) do self:release(st) end
  for _, st in pairs(self.jobs) do self:start_buffered(st) end
  local runs = self:active_runs()
  local cancelled = 0
  local killer = task.spawn(function()
    self.clock.sleep(timeout)
    for _, rec in ipairs(self:active_runs()) do
      cancelled = cancelled + 1
      self:cancel_run(rec, "shutdown")
    end
  end)
  for _, rec in ipairs(runs) do pcall(rec.task.wait, rec.task) end
  killer:cancel()
  if self.keeper_task then
    self.keeper_task:cancel()
    self.keeper:unregister()
  end
  return cancelled
end

--- The next `n` slots of a job after t.
---@param name string
---@param t number
---@param n integer
---@return integer[]
function Scheduler:upcoming(name, t, n)
  local out, sched = {}, self.jobs[name].def.schedule
  local x = t
  for _ = 1, n do
    x = sched:next(x)
    if not x then break end
    out[#out + 1] = x
  end
  return out
end

return M
