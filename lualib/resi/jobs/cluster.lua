--- resi.jobs.cluster: what a `resi jobs` daemon does when it shares a
--- PostgreSQL store with others (resi.store.lease has the statements):
---
---   * the keeper task renews the leases of this process's running runs
---     every lease/3 seconds (one UPDATE for all of them) and fences its
---     own runs: a run whose lease was not renewed by its trust window
---     (last renewal sent + lease - margin, on the monotonic clock) or that
---     the database no longer gives back is cancelled through its task
---     (its HTTP calls abort) and its outcome is not recorded: the lease's
---     end makes it `interrupted`, by whichever node reaps it;
---   * it reaps, every second: any node marks the expired runs of any owner
---     interrupted (one UPDATE on the running rows' index, so each row
---     once) and re-runs those whose job says on_interrupt = "rerun";
---   * it measures the node-vs-database clock offset (logged when over a
---     second, exported) so that this node's scheduler fires on the
---     database's time; the claim itself checks the database clock;
---   * it registers this daemon (owner id, host, pid, jobs-file hash) in
---     the store and warns when a live daemon loads a different jobs file.
--- No leader is needed: slots are claimed by their unique row, and the
--- only chore (reaping) is an idempotent statement any node may run.
local task = require "resi.task"
local schedule = require "resi.jobs.schedule"

local M = {}

--- Default lease of a run, seconds.
M.LEASE = 15
--- Offset above which the node's clock is logged as off.
M.OFFSET_WARN = 1
--- Namespace of the daemons' registrations.
M.NODES = "jobs.nodes"

-- The loop's monotonic clock (not the injectable one: leases are real time).
local function mono() return require("resi.core").monotonic() end

-- FNV-1a 64-bit of a string, as 16 hex digits.
local function fnv64(s)
  local h = -3750763034362895579 -- 0xcbf29ce484222325
  for i = 1, #s do
    h = h ~ s:byte(i)
    h = h * 1099511628211
  end
  return ("%016x"):format(h)
end

--- The hash of a jobs file as daemons compare it: its text without
--- comment-only lines, blank lines and surrounding spaces, and each job's
--- name, schedule, zone and policies (so a reformatted file matches and a
--- changed schedule does not).
---@param text string  the file's contents
---@param defs table[]  its job definitions
---@return string
function M.jobs_hash(text, defs)
  local lines = {}
  for line in (text or ""):gmatch("[^\n]+") do
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" and not line:match("^%-%-") then lines[#lines + 1] = line end
  end
  local jobs = {}
  for _, d in ipairs(defs or {}) do
    jobs[#jobs + 1] = table.concat({ d.name, d.schedule.text, d.schedule.tz or "UTC", d.overlap or "skip",
      d.catchup or "latest", tostring(d.on_interrupt), tostring(d.timeout), tostring(d.jitter) }, "|")
  end
  table.sort(jobs)
  return fnv64(table.concat(lines, "\n") .. "\0" .. table.concat(jobs, "\n"))
end

local Keeper = {}
Keeper.__index = Keeper

--- A keeper for a scheduler in lease mode (sched.lease set).
---@param sched table  the scheduler
---@return table
function M.new(sched)
  local lease = sched.lease
  return setmetatable({ sched = sched, lease = lease, period = lease / 3, margin = math.max(0.5, lease / 5),
    reap_every = math.min(1, lease / 3), next_renew = 0, ok_until = 0, failures = 0, warned = {}, cycles = 0 },
    Keeper)
end

--- Has the lease state been confirmed recently enough to trust (for /readyz)?
---@return boolean
function Keeper:ready() return mono() < self.ok_until end

--- The trust window of a lease sent at `sent`.
---@param sent number  monotonic seconds
---@return number
function Keeper:trust(sent) return sent + self.lease - self.margin end

-- Calls fn(...) with the store, at most `seconds`; returns ok, results or
-- false, message. The keeper's own cancellation is re-raised, not turned
-- into a store failure: a keeper that went on would spawn store calls that
-- outlive it (and the store, once closed).
local function bounded(seconds, fn, ...)
  local r = table.pack(pcall(task.timeout, seconds, fn, ...))
  if not r[1] and task.is_cancelled(r[2]) and task.current().cancelled then error(r[2], 0) end
  if not r[1] then return false, tostring(r[2]) end
  if r[2] == nil and r[3] == "timeout" then return false, ("no answer from the store in %gs"):format(seconds) end
  return true, table.unpack(r, 2, r.n)
end

--- Measures the node-vs-database clock offset (node minus database, in
--- seconds) and sets the scheduler's correction. Returns it, or nil.
---@return number|nil
function Keeper:measure_offset()
  local s = self.sched
  local t0 = s.base_clock.now()
  local ok, db_now = bounded(self.period, s.store.db_clock, s.store)
  if not ok then return nil end
  local t1 = s.base_clock.now()
  local offset = (t0 + t1) / 2 - db_now
  local before = s.offset
  s.offset = offset
  s.obs.on_clock_offset(offset)
  if math.abs(offset) > M.OFFSET_WARN and (before == nil or math.abs(offset - before) > 0.5) then
    s.log.warn("this node's clock differs from the database's; scheduling on the database's clock",
      { offset_seconds = offset, node = s.owner })
  end
  return offset
end

-- Fences a run of this process: cancels its task; its outcome is not
-- recorded (the lease's end makes it interrupted).
local function fence(s, rec, why)
  if rec.fenced then return end
  rec.fenced = why
  s.obs.on_fenced(rec.job)
  s.log.warn("lease lost: cancelling the run (its outcome is left to the lease's end)",
    { job = rec.job, run_id = rec.id, reason = why, node = s.owner })
  s:cancel_run(rec, "lease_lost")
end

--- Renews the leases of this process's runs and fences those it lost.
function Keeper:renew()
  local s = self.sched
  local sent = mono()
  local ok, held = bounded(self.period, s.store.renew_runs, s.store, s.owner, self.lease)
  local runs = s:active_runs()
  if ok then
    self.ok_until = self:trust(sent)
    for _, rec in ipairs(runs) do
      if held[rec.job .. "\0" .. rec.t] then
        rec.trust_until = self:trust(sent)
      elseif rec.claimed_at and rec.claimed_at < sent then
        fence(s, rec, "the store no longer gives this process the run's lease")
      end
    end
  else
    self.failures = self.failures + 1
    s.obs.on_lease_failure()
    s.log.warn("could not renew the runs' leases", { error = held, running = #runs, node = s.owner })
  end
  local now = mono()
  for _, rec in ipairs(runs) do
    if rec.trust_until and now >= rec.trust_until then fence(s, rec, "the lease could not be renewed in time") end
  end
  return ok
end

--- Marks interrupted the expired runs of every node; re-runs those whose
--- job asks for it. Returns how many it marked.
---@return integer
function Keeper:reap()
  local s = self.sched
  local ok, rows = bounded(self.period, s.store.reap_expired, s.store)
  if not ok then return 0 end
  for _, row in ipairs(rows) do
    s.obs.on_outcome(row.job, "interrupted")
    s.log.warn("run interrupted: its lease expired", { job = row.job, run_id = require("resi.jobs.scheduler").run_id(row.job, row.nominal_at),
      nominal = schedule.iso(row.nominal_at), outcome = "interrupted", owner = row.owner, node = s.owner })
    local st = s.jobs[row.job]
    if st and st.def.on_interrupt == "rerun" and not s.stopping then s:rerun(st, row) end
  end
  return #rows
end

--- Registers this daemon and warns about live daemons with another jobs file.
function Keeper:register()
  local s = self.sched
  if not s.jobs_hash then return end
  local ok, now = bounded(self.period, s.store.db_clock, s.store)
  if not ok then return end
  pcall(s.store.set, s.store, M.NODES, s.owner, { host = s.node, pid = s.pid, jobs_hash = s.jobs_hash,
    file = s.jobs_file, seen_at = now })
  local listed, nodes = pcall(s.store.list, s.store, M.NODES)
  if not listed then return end
  local others = 0
  for _, n in ipairs(nodes) do
    local v = n.value
    if n.key ~= s.owner and type(v) == "table" and (v.seen_at or 0) > now - 3 * self.lease then
      if v.jobs_hash ~= s.jobs_hash then
        others = others + 1
        local seen = n.key .. "\0" .. tostring(v.jobs_hash)
        if not self.warned[seen] then
          self.warned[seen] = true
          s.log.warn("another daemon on this store loads a different jobs file: slots are claimed by whoever "
            .. "computes them, so both files' jobs run", { other = n.key, other_file = v.file,
            other_hash = v.jobs_hash, file = s.jobs_file, hash = s.jobs_hash })
        end
      end
    end
  end
  s.obs.on_mismatch(others)
end

--- One cycle (every second at most): renew when due (every lease/3, or
--- at once after a failure), reap, and every tenth renewal the offset and
--- the registration. Returns false after a failed renewal.
function Keeper:cycle()
  local ok = true
  if mono() >= self.next_renew then
    ok = self:renew()
    self.next_renew = mono() + (ok and self.period or 0)
    if ok and self.cycles % 10 == 0 then
      self:measure_offset()
      self:register()
    end
    if ok then self.cycles = self.cycles + 1 end
  end
  if ok then self:reap() end
  return ok
end

-- The earliest trust window of the running runs (or math.huge).
local function earliest(s)
  local best = math.huge
  for _, rec in ipairs(s:active_runs()) do
    if rec.trust_until and rec.trust_until < best then best = rec.trust_until end
  end
  return best
end

--- The keeper task's body: cycles until the scheduler stops and its runs end.
---@async
function Keeper:loop()
  while true do
    self:cycle()
    if self.sched.stopping and #self.sched:active_runs() == 0 then return end
    local wait = math.max(0.01, math.min(self.reap_every, earliest(self.sched) - mono()))
    task.sleep(wait)
  end
end

--- Removes this daemon's registration (on a clean stop).
function Keeper:unregister()
  local s = self.sched
  if s.jobs_hash then bounded(self.period, s.store.delete, s.store, M.NODES, s.owner) end
end

return M
