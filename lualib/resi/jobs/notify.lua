--- resi.jobs.notify: a job's `notify_on` option, run by the scheduler after
--- each recorded outcome.
---
---   jobs.every("5m", "rotate", rotate, { notify_on = { failure_after = 3, recovery = true } })
---
--- failure_after = N: one notification when a run fails (failed or
--- timed_out) and is the Nth failure in a row; later failures of the same
--- streak stay quiet. recovery = true: one notification when a run
--- succeeds after a streak that reached N. Other outcomes (cancelled,
--- skipped, missed ...) neither break nor extend a streak. The streak is
--- read from the store's run history, so it survives restarts and counts
--- `resi jobs run` too.
---
--- Where it goes: the job's `notify` option (a notifier, or a
--- notify.from_config table), else the file's jobs.notify(...), else the
--- scheduler's `notifier` option, else notify.from_env() (RESI_NOTIFY_*);
--- with none of them, nothing is sent. Sending runs in its own task, so a
--- slow receiver never delays the schedule; a failed notification is
--- logged and counted by resi.notify and changes no outcome.
local task = require "resi.task"

local M = {}

--- Outcomes that extend a failure streak, and the one that ends it.
M.FAILURES = { failed = true, timed_out = true }
M.SUCCESS = "succeeded"

--- Checks a notify_on value: nil when fine, else the rule it breaks.
---@param v any
---@return string|nil
function M.rule(v)
  if type(v) ~= "table" then return "a table {failure_after = N, recovery = true}" end
  for k in pairs(v) do
    if k ~= "failure_after" and k ~= "recovery" then
      return ("a table {failure_after = N, recovery = true} (unknown field %q)"):format(tostring(k))
    end
  end
  local n = v.failure_after
  if n ~= nil and (math.tointeger(n) == nil or n < 1) then return "a table whose failure_after is a whole number >= 1" end
  if v.recovery ~= nil and type(v.recovery) ~= "boolean" then return "a table whose recovery is true or false" end
  return nil
end

--- Checks a job's notify option: a notifier, or a config table for
--- notify.from_config (built now, so a bad target is a jobs-file error).
--- Returns the notifier, or nil and the problem.
---@param v any
---@return table|nil notifier
---@return string|nil problem
function M.notifier_option(v)
  if type(v) ~= "table" then return nil, "a notifier (resi.notify) or a notify.from_config table" end
  if type(v.send) == "function" then return v end
  local ok, n = pcall(require("resi.notify").from_config, v)
  if not ok then return nil, "a notify.from_config table: " .. tostring(n):gsub("^[^:]*:%d+: ", "") end
  if not n then return nil, "a notify.from_config table naming at least one target" end
  return n
end

-- The streaks around the newest row: failures in a row ending with it
-- (0 when it did not fail), and failures in a row just before it.
local function streaks(rows)
  local i, current = 1, 0
  if rows[1] and M.FAILURES[rows[1].status] then
    while rows[i] and (M.FAILURES[rows[i].status] or rows[i].status ~= M.SUCCESS) do
      if M.FAILURES[rows[i].status] then current = current + 1 end
      i = i + 1
    end
    return current, 0
  end
  local before = 0
  i = 2
  while rows[i] and rows[i].status ~= M.SUCCESS do
    if M.FAILURES[rows[i].status] then before = before + 1 end
    i = i + 1
  end
  return 0, before
end

-- The notifier for a job, or nil.
local function notifier_of(sched, def)
  if def.notify then return def.notify end
  if def.notify_default then return def.notify_default end
  if sched.notifier ~= nil then return sched.notifier or nil end
  local ok, n = pcall(require("resi.notify").from_env)
  sched.notifier = ok and n or false
  return sched.notifier or nil
end

-- The event for a failure streak that reached n.
local function failure_event(def, rec, outcome, err, n, node)
  local first = err and tostring(err):match("^[^\n]*") or outcome
  return { kind = "job_failed", severity = "error",
    title = ("job %s failed %d time%s in a row"):format(def.name, n, n == 1 and "" or "s"),
    text = first,
    fields = { job = def.name, run_id = rec.id, outcome = outcome, consecutive_failures = n, host = node } }
end

-- The event for a success after a streak of n failures.
local function recovery_event(def, rec, n, duration, node)
  return { kind = "job_recovered", severity = "success", title = ("job %s recovered"):format(def.name),
    text = ("succeeded after %d failed run%s"):format(n, n == 1 and "" or "s"),
    fields = { job = def.name, run_id = rec.id, failed_runs = n, duration = ("%.1fs"):format(duration or 0), host = node } }
end

--- Called by the scheduler once a run's outcome is recorded: sends the
--- notification notify_on asks for, in its own task. Returns that task
--- (or nil when nothing is sent).
---@param sched table the scheduler
---@param def table the job definition
---@param rec table the run record (rec.id)
---@param outcome string
---@param err any the failure, if any
---@param duration? number
---@return table|nil task
---@async
function M.after_run(sched, def, rec, outcome, err, duration)
  local on = def.notify_on
  if not on or not sched.store.history then return nil end
  local n = on.failure_after or 1
  local ok, rows = pcall(sched.store.history, sched.store, { job = def.name, limit = 4 * n + 20 })
  if not ok then
    sched.log.warn("notify_on: cannot read the run history", { job = def.name, error = tostring(rows) })
    return nil
  end
  local current, before = streaks(rows)
  local ev
  if current == n then
    ev = failure_event(def, rec, outcome, err, n, sched.node)
  elseif outcome == M.SUCCESS and on.recovery and before >= n then
    ev = recovery_event(def, rec, before, duration, sched.node)
  end
  if not ev then return nil end
  local notifier = notifier_of(sched, def)
  if not notifier then
    sched.log.warn("notify_on: no notification target (set the job's notify, jobs.notify or RESI_NOTIFY_*)",
      { job = def.name, event = ev.kind })
    return nil
  end
  return task.spawn(function() notifier:send(ev) end)
end

return M
