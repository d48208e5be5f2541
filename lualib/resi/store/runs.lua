--- resi.store.runs: the run table and the job state of `resi jobs`, as
--- methods of a resi.store db.
---
--- A run's identity is (job, nominal_at): the job's name and its slot in
--- UTC epoch seconds, the table's primary key and the only arbiter of "this
--- slot runs once". db:claim_run inserts the `running` row and commits it
--- before the job's first side effect; exactly one caller, in any process,
--- gets true for a slot. Every slot ends with one outcome: a claimed run is
--- finished once (succeeded, failed, timed_out, cancelled, interrupted), a
--- slot that does not run is recorded (skipped_overlap, missed, coalesced).
--- A slot claimed ahead of its time that does not start is released
--- (db:release_claim): it is as if it had never been claimed.
---
--- Every statement is a constant with `$N` parameters and no SQLite-only
--- syntax (INSERT ... ON CONFLICT DO NOTHING RETURNING, UPDATE ...
--- RETURNING, LIMIT), so the same text runs on PostgreSQL. Job state
--- (paused, next slot) is the `jobs` table; a job's last outcome is its
--- newest run row (db:last_run), not a copy.
local core = require "resi.core"
local uv = require "luv"

local M = {}

--- The outcomes of a claimed run (db:finish_run).
M.RUN_OUTCOMES = { succeeded = true, failed = true, timed_out = true, cancelled = true, interrupted = true }

--- The outcomes of a slot that did not run (db:record_slot).
M.SLOT_OUTCOMES = { skipped_overlap = true, missed = true, coalesced = true }

--- The statuses a run can be re-run from (db:rerun).
M.RERUN_FROM = { interrupted = true, failed = true, timed_out = true }

local COLS = "job, nominal_at, status, attempt, node, pid, started_at, finished_at, error, missed, owner, lease_until"

--- The statements, portable to PostgreSQL.
M.sql = {
  claim = "INSERT INTO runs (job, nominal_at, status, attempt, node, pid, started_at, missed) "
    .. "VALUES ($1, $2, 'running', $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING job",
  finish = "UPDATE runs SET status = $3, finished_at = $4, error = $5 "
    .. "WHERE job = $1 AND nominal_at = $2 AND status = 'running' RETURNING job",
  record = "INSERT INTO runs (job, nominal_at, status, attempt, node, finished_at, error, missed) "
    .. "VALUES ($1, $2, $3, 0, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING job",
  rerun = "UPDATE runs SET status = 'running', attempt = attempt + 1, node = $3, pid = $4, started_at = $5, "
    .. "finished_at = NULL, error = NULL WHERE job = $1 AND nominal_at = $2 AND status = $6 RETURNING attempt",
  started = "UPDATE runs SET attempt = 1 WHERE job = $1 AND nominal_at = $2 AND status = 'running' "
    .. "AND pid = $3 AND attempt = 0 RETURNING job",
  release = "DELETE FROM runs WHERE job = $1 AND nominal_at = $2 AND status = 'running' AND pid = $3 RETURNING job",
  interrupt = "UPDATE runs SET status = 'interrupted', finished_at = $3, error = $4 "
    .. "WHERE job = $1 AND nominal_at = $2 AND status = 'running' AND pid = $5 RETURNING job",
  running = "SELECT " .. COLS .. " FROM runs WHERE status = 'running' ORDER BY job, nominal_at",
  get = "SELECT " .. COLS .. " FROM runs WHERE job = $1 AND nominal_at = $2",
  last = "SELECT " .. COLS .. " FROM runs WHERE job = $1 ORDER BY nominal_at DESC LIMIT 1",
  last_with = "SELECT " .. COLS .. " FROM runs WHERE job = $1 AND status = $2 ORDER BY nominal_at DESC LIMIT 1",
  history_job = "SELECT " .. COLS .. " FROM runs WHERE job = $1 AND nominal_at >= $2 "
    .. "ORDER BY nominal_at DESC LIMIT $3",
  history_all = "SELECT " .. COLS .. " FROM runs WHERE nominal_at >= $1 ORDER BY nominal_at DESC, job LIMIT $2",
  prune = "DELETE FROM runs WHERE nominal_at < $1 AND status <> 'running'",
  job = "SELECT name, paused, next_at, updated_at FROM jobs WHERE name = $1",
  jobs = "SELECT name, paused, next_at, updated_at FROM jobs ORDER BY name",
  set_paused = "INSERT INTO jobs (name, paused, updated_at) VALUES ($1, $2, $3) "
    .. "ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at",
  set_next = "INSERT INTO jobs (name, next_at, updated_at) VALUES ($1, $2, $3) "
    .. "ON CONFLICT (name) DO UPDATE SET next_at = excluded.next_at, updated_at = excluded.updated_at",
}
local SQL = M.sql

local OWN_PID = math.tointeger(uv.os_getpid())

-- The runs this process claimed and has not finished: "job\0nominal_at" -> true.
local mine = {}

-- The key of a run in `mine`.
local function run_key(job, nominal_at)
  return job .. "\0" .. nominal_at
end

-- Raises "resi.store: db:NAME: text" for a bad argument of a method, at
-- the method's caller (depth: helpers between the method and this).
local function bad_arg(name, text, depth)
  error(("resi.store: db:%s: %s"):format(name, text), 3 + (depth or 0))
end

-- Checks a slot's identity: a non-empty job name and an integer time
-- (depth: how many helper calls below the method, default 1).
local function check_slot(name, job, nominal_at, depth)
  depth = depth or 1
  if type(job) ~= "string" or job == "" then bad_arg(name, "job must be a non-empty string, got " .. tostring(job), depth) end
  if math.type(nominal_at) ~= "integer" then
    bad_arg(name, "nominal_at must be an integer (UTC epoch seconds), got " .. tostring(nominal_at), depth)
  end
end

-- Checks that outcome is in the set allowed, naming them all when not
-- (depth as for check_slot).
local function check_outcome(name, outcome, allowed, depth)
  if allowed[outcome] then return end
  local names = {}
  for k in pairs(allowed) do names[#names + 1] = k end
  table.sort(names)
  bad_arg(name, ("outcome must be one of %s, got %s"):format(table.concat(names, ", "), tostring(outcome)), depth or 1)
end

-- Checks the arguments of a method that writes a slot's outcome: the slot,
-- and an outcome in the set allowed. Returns fields, or an empty table
-- when they are nil.
local function check_outcome_args(name, job, nominal_at, outcome, allowed, fields)
  check_slot(name, job, nominal_at, 2)
  check_outcome(name, outcome, allowed, 2)
  return fields or {}
end

-- An error value as text for the error column (nil stays nil).
local function error_text(err)
  if err == nil then return nil end
  return tostring(err)
end

--- This machine's name: the node of the runs this process claims.
---@return string
function M.node()
  return (uv.os_gethostname())
end

--- Is the process that claimed run alive? True for this process's own
--- unfinished claims; for another pid, true while a process has it that
--- started before the run did (a later process that reused the pid is not
--- the claimant). The default test of db:interrupt_dead.
---@param run table  a row of db:running_runs()
---@return boolean
function M.process_alive(run)
  local pid = run.pid
  if pid == OWN_PID then return mine[run_key(run.job, run.nominal_at)] == true end
  if math.type(pid) ~= "integer" or pid <= 0 then return false end
  return require("resi.fs").process_since(pid, run.started_at)
end

---@class resi.store.run
---@field job string
---@field nominal_at integer     the slot, UTC epoch seconds
---@field status string          running, or an outcome
---@field attempt integer        1 for the first run; 0 for a slot that never ran (or, running, claimed ahead and not started yet)
---@field node? string
---@field pid? integer
---@field started_at? number     epoch seconds
---@field finished_at? number
---@field error? string
---@field missed integer         slots coalesced into this run
---@field owner? string          the process holding its lease (resi.store.lease), host:pid:random
---@field lease_until? number    when that lease ends, database clock

-- The db methods installed by M.install.
---@class resi.store.db
local Runs = {}

--- Claims a slot: inserts its `running` row and commits it. Returns true
--- when this call claimed it, false when the slot already has a row (run,
--- running or recorded elsewhere). node defaults to this machine's name,
--- pid to this process, started_at to now, attempt to 1, missed to 0.
---@param r {job: string, nominal_at: integer, node?: string, pid?: integer, started_at?: number, attempt?: integer, missed?: integer}
---@return boolean
---@async
function Runs:claim_run(r)
  if type(r) ~= "table" then bad_arg("claim_run", "expected a table {job=, nominal_at=, ...}") end
  check_slot("claim_run", r.job, r.nominal_at)
  local row = self:_enter():first(SQL.claim, r.job, r.nominal_at, r.attempt or 1, r.node or M.node(),
    r.pid or OWN_PID, r.started_at or core.now(), r.missed or 0)
  if row and (r.pid == nil or r.pid == OWN_PID) then mine[run_key(r.job, r.nominal_at)] = true end
  return row ~= nil
end

--- Ends a running run with outcome (succeeded, failed, timed_out,
--- cancelled, interrupted); fields.error (text or an error value),
--- fields.finished_at (default now). Returns false when the run is not
--- `running` (never claimed, or already finished): a run ends once.
---@param job string
---@param nominal_at integer
---@param outcome string
---@param fields? {error?: any, finished_at?: number}
---@return boolean
---@async
function Runs:finish_run(job, nominal_at, outcome, fields)
  fields = check_outcome_args("finish_run", job, nominal_at, outcome, M.RUN_OUTCOMES, fields)
  local row = self:_enter():first(SQL.finish, job, nominal_at, outcome, fields.finished_at or core.now(),
    error_text(fields.error))
  mine[run_key(job, nominal_at)] = nil
  return row ~= nil
end

--- Records a slot that does not run, with outcome skipped_overlap, missed
--- or coalesced (fields.error: why, fields.missed, fields.node,
--- fields.at: default now). Returns false when the slot already has a row.
---@param job string
---@param nominal_at integer
---@param outcome string
---@param fields? {error?: any, missed?: integer, node?: string, at?: number}
---@return boolean
---@async
function Runs:record_slot(job, nominal_at, outcome, fields)
  fields = check_outcome_args("record_slot", job, nominal_at, outcome, M.SLOT_OUTCOMES, fields)
  local row = self:_enter():first(SQL.record, job, nominal_at, outcome, fields.node or M.node(),
    fields.at or core.now(), error_text(fields.error), fields.missed or 0)
  return row ~= nil
end

--- Runs a finished slot again (on_interrupt = "rerun", retries): moves it
--- from r.from (default "interrupted"; or failed, timed_out) back to
--- `running` with attempt + 1, and returns the new attempt; nil when the
--- run is not in that state (another process took it first).
---@param r {job: string, nominal_at: integer, from?: string, node?: string, pid?: integer, started_at?: number}
---@return integer|nil attempt
---@async
function Runs:rerun(r)
  if type(r) ~= "table" then bad_arg("rerun", "expected a table {job=, nominal_at=, ...}") end
  check_slot("rerun", r.job, r.nominal_at)
  local from = r.from or "interrupted"
  check_outcome("rerun", from, M.RERUN_FROM)
  local row = self:_enter():first(SQL.rerun, r.job, r.nominal_at, r.node or M.node(), r.pid or OWN_PID,
    r.started_at or core.now(), from)
  if row == nil then return nil end
  if r.pid == nil or r.pid == OWN_PID then mine[run_key(r.job, r.nominal_at)] = true end
  return row.attempt
end

--- Marks a slot claimed ahead (claimed with attempt 0) as started: attempt
--- becomes 1. Call it before the run's code does anything. Returns false
--- when pid holds no such claim. The commit does not wait for the disk (on
--- SQLite it survives the process but not a power cut), which keeps it off
--- the start's path; db:interrupt_dead trusts a missing mark only while the
--- machine has not restarted since the claim.
---@param job string
---@param nominal_at integer
---@param pid integer
---@return boolean
---@async
function Runs:mark_started(job, nominal_at, pid)
  check_slot("mark_started", job, nominal_at)
  return self:_first_unsynced(SQL.started, job, nominal_at, pid) ~= nil
end

--- Releases a claim that has not started: deletes the slot's `running` row
--- if pid still holds it. For a slot claimed ahead of its time (the
--- scheduler's claim_ahead) that is not going to start. Returns whether it did.
---@param job string
---@param nominal_at integer
---@param pid integer
---@return boolean
---@async
function Runs:release_claim(job, nominal_at, pid)
  check_slot("release_claim", job, nominal_at)
  local row = self:_enter():first(SQL.release, job, nominal_at, pid)
  mine[run_key(job, nominal_at)] = nil
  return row ~= nil
end

--- The longest a slot may be claimed ahead of its time (the scheduler's
--- claim_ahead is at most this): the bound db:interrupt_dead uses to tell
--- a claim made since the machine booted.
M.MAX_CLAIM_AHEAD = 5

--- Did a dead process's running row never start? True when its start
--- (started_at: the planned time of a slot claimed ahead) is still ahead
--- of now, or when it was claimed ahead and never marked started
--- (attempt 0) and the claim is from since this machine booted (before a
--- power cut the unsynced mark may be lost, so the row may have started).
---@param run resi.store.run
---@param now number  epoch seconds
---@param boot? number  epoch seconds this machine booted (default: asks the kernel)
---@return boolean
function M.never_started(run, now, boot)
  if run.started_at > now then return true end
  if run.attempt ~= 0 then return false end
  boot = boot or require("resi.fs_core").boot_time()
  return boot ~= nil and boot + require("resi.fs").START_SLACK < run.started_at - M.MAX_CLAIM_AHEAD
end

--- The run row of a slot, or nil.
---@param job string
---@param nominal_at integer
---@return resi.store.run|nil
---@async
function Runs:get_run(job, nominal_at)
  check_slot("get_run", job, nominal_at)
  return self:_enter():first(SQL.get, job, nominal_at)
end

--- The runs now `running`, by job and slot.
---@return resi.store.run[]
---@async
function Runs:running_runs()
  return self:_enter():rows(SQL.running)
end

--- Marks one running run (a row of db:running_runs) interrupted, if it is
--- still running under the same pid. Returns whether it did.
---@param run resi.store.run
---@param reason? string
---@return boolean
---@async
function Runs:mark_interrupted(run, reason)
  if type(run) ~= "table" then bad_arg("mark_interrupted", "expected a run row") end
  check_slot("mark_interrupted", run.job, run.nominal_at)
  local row = self:_enter():first(SQL.interrupt, run.job, run.nominal_at, core.now(),
    reason or "interrupted", run.pid)
  return row ~= nil
end

--- Marks interrupted the running runs of node (default: this machine;
--- false: every node) whose process is gone (alive(run) false; default
--- M.process_alive), in one transaction. A run that never started (a slot
--- claimed ahead whose process ended before it: M.never_started) is
--- released instead. Returns the runs it marked (for on_interrupt =
--- "rerun") and those it released. Call it at start-up, before claiming.
---@param node? string|false
---@param alive? fun(run: resi.store.run): boolean
---@param now? number  epoch seconds (default: now)
---@param boot? number  when this machine booted (default: asks the kernel)
---@return resi.store.run[] marked
---@return resi.store.run[] released
---@async
function Runs:interrupt_dead(node, alive, now, boot)
  if node == nil then node = M.node() end
  alive = alive or M.process_alive
  return self:transaction(function()
    local marked, released = {}, {}
    now = now or core.now()
    for _, run in ipairs(self:running_runs()) do
      local dead = (node == false or run.node == node) and not alive(run)
      if dead and M.never_started(run, now, boot) then
        if self:release_claim(run.job, run.nominal_at, run.pid) then released[#released + 1] = run end
      elseif dead and self:mark_interrupted(run, "its process ended before the run finished") then
        run.status = "interrupted"
        marked[#marked + 1] = run
      end
    end
    return marked, released
  end)
end

--- The job's newest run row (the latest slot, whatever its outcome), or
--- with status, its newest row with that status; nil when none.
---@param job string
---@param status? string
---@return resi.store.run|nil
---@async
function Runs:last_run(job, status)
  if type(job) ~= "string" then bad_arg("last_run", "job must be a string, got " .. type(job)) end
  if status ~= nil then return self:_enter():first(SQL.last_with, job, status) end
  return self:_enter():first(SQL.last, job)
end

--- Run rows, newest slot first: of q.job (default: every job), slots at or
--- after q.since, at most q.limit (default 100).
---@param q? {job?: string, limit?: integer, since?: integer}
---@return resi.store.run[]
---@async
function Runs:history(q)
  q = q or {}
  local limit, since = q.limit or 100, q.since or math.mininteger
  if math.type(limit) ~= "integer" or limit < 0 then bad_arg("history", "limit must be a non-negative integer") end
  if math.type(since) ~= "integer" then bad_arg("history", "since must be an integer (UTC epoch seconds)") end
  if q.job ~= nil then
    if type(q.job) ~= "string" then bad_arg("history", "job must be a string") end
    return self:_enter():rows(SQL.history_job, q.job, since, limit)
  end
  return self:_enter():rows(SQL.history_all, since, limit)
end

--- Deletes the finished run rows of slots before `before`; returns how many.
---@param before integer
---@return integer
---@async
function Runs:prune_runs(before)
  if math.type(before) ~= "integer" then bad_arg("prune_runs", "before must be an integer (UTC epoch seconds)") end
  return self:_enter():run(SQL.prune, before)
end

-- A jobs row as job state (paused as a boolean).
local function job_state(row, name)
  if row == nil then return { name = name, paused = false } end
  row.paused = row.paused ~= 0
  return row
end

--- A job's stored state: {name=, paused=, next_at=, updated_at=} (paused
--- false and no next_at for a job never seen).
---@param name string
---@return {name: string, paused: boolean, next_at?: integer, updated_at?: number}
---@async
function Runs:job_state(name)
  if type(name) ~= "string" then bad_arg("job_state", "name must be a string, got " .. type(name)) end
  return job_state(self:_enter():first(SQL.job, name), name)
end

--- Every stored job state, by name.
---@return {name: string, paused: boolean, next_at?: integer, updated_at?: number}[]
---@async
function Runs:job_states()
  local rows = self:_enter():rows(SQL.jobs)
  for i, row in ipairs(rows) do rows[i] = job_state(row) end
  return rows
end

--- Pauses (true) or resumes (false) a job; the daemon reads it before each claim.
---@param name string
---@param paused boolean
---@async
function Runs:set_paused(name, paused)
  if type(name) ~= "string" then bad_arg("set_paused", "name must be a string, got " .. type(name)) end
  self:_enter():run(SQL.set_paused, name, paused and 1 or 0, core.now())
end

--- Records the next slot the daemon will run for a job (for `resi jobs list`).
---@param name string
---@param next_at integer|nil
---@async
function Runs:set_next_at(name, next_at)
  if type(name) ~= "string" then bad_arg("set_next_at", "name must be a string, got " .. type(name)) end
  if next_at ~= nil and math.type(next_at) ~= "integer" then bad_arg("set_next_at", "next_at must be an integer") end
  self:_enter():run(SQL.set_next, name, next_at, core.now())
end

--- Adds the run-table methods to the db class.
---@param DB table
function M.install(DB)
  for name, fn in pairs(Runs) do DB[name] = fn end
end

return M
