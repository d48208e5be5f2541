--- resi jobs: the jobs daemon and its subcommands.
---
---   resi jobs FILE [--store PATH|URL] [--metrics ADDR] [--stop-timeout S] [--lease S]
---   resi jobs check FILE
---   resi jobs list FILE [--json]
---   resi jobs explain FILE [JOB] [--next N] [--from TIME]
---   resi jobs run FILE NAME
---   resi jobs history FILE [JOB] [--limit N] [--json]
---   resi jobs pause|resume FILE NAME
---
--- The daemon runs until SIGTERM or SIGINT: it stops starting runs, waits
--- up to --stop-timeout seconds for the running ones, cancels the rest
--- (recorded cancelled) and exits 0. SIGHUP reloads FILE; a file with an
--- error keeps the old jobs and logs why. Under systemd (Type=notify) it
--- sends READY=1 once its state is recovered, WATCHDOG=1 at half of
--- $WATCHDOG_USEC, STOPPING=1 and EXTEND_TIMEOUT_USEC while draining.
local argparse = require "resi.argparse"
local task = require "resi.task"
local schedule = require "resi.jobs.schedule"

local help = [[
usage: resi jobs FILE [--store PATH|URL] [--metrics ADDR] [--stop-timeout S] [--lease S]
       resi jobs check FILE
       resi jobs list FILE [--json]
       resi jobs explain FILE [JOB] [--next N] [--from TIME]
       resi jobs run FILE NAME
       resi jobs history FILE [JOB] [--limit N] [--json]
       resi jobs pause FILE NAME | resi jobs resume FILE NAME

Runs the jobs FILE declares (jobs.every, jobs.cron, jobs.script) until
SIGTERM or SIGINT; every slot of every job ends with one outcome in the
store (succeeded, failed, timed_out, cancelled, interrupted,
skipped_overlap, missed, coalesced), so a restart neither loses nor
repeats a run. history shows a run under way as running, and an idle
job's next slot, claimed half a second before its time, as claimed.
SIGHUP reloads FILE (a broken file keeps the old jobs).

Options:
  --store PATH|URL    the SQLite store (default $RESI_STORE, else
                      $XDG_STATE_HOME/resi/resi.db or ~/.local/state/resi/resi.db),
                      or a postgresql://user@host/db URL: several daemons on
                      several machines then share it, each slot runs once (the
                      password from $RESI_STORE, PGPASSWORD or ~/.pgpass: the
                      command line is visible in ps); every subcommand takes it
  --lease S           PostgreSQL store: seconds a run's lease lasts without
                      renewal (default 15): a dead node's run is recorded
                      interrupted this long after it stopped renewing
  --metrics ADDR      serve /livez /readyz /healthz /metrics on ADDR
                      (PORT or HOST:PORT, loopback unless a host is given)
  --stop-timeout S    seconds to let running jobs finish on SIGTERM (default 30)
  --json              list, history: one JSON object per line
  --next N            explain: how many fire times (default 10)
  --from TIME         explain: start from TIME (ISO 8601, epoch seconds; default now)
  --limit N           history: how many rows (default 20)
  --list              the same as `resi jobs list FILE` (DESIGN §7's spelling)
  --once NAME         the same as `resi jobs run FILE NAME`

Exit status: 0 success; 1 a run failed (run) or the store cannot be used;
2 a usage error or a jobs file with an error (reported as file:line).
Logs go to stderr: text on a terminal, JSON lines otherwise.]]

local SPEC = {
  store = { type = "string" }, metrics = { type = "string" },
  ["stop-timeout"] = { type = "number", default = 30, min = 0 },
  lease = { type = "number", default = 15, min = 0.3 },
  json = { type = "flag" }, next = { type = "integer", default = 10, min = 1 },
  from = { type = "string" }, limit = { type = "integer", default = 20, min = 1 },
  list = { type = "flag" }, once = { type = "string" },
}

-- Exits with status `code` after printing "resi jobs: msg" on stderr.
local function die(code, msg)
  io.stderr:write("resi jobs: ", msg, "\n")
  io.stderr:flush()
  task.set_exit_status(code)
end

-- Loads FILE; returns the definitions or nil after reporting (exit status 2).
local function load_or_die(file)
  if not file then argparse.usage_error("missing FILE: the jobs file to load") end
  local defs, err = require("resi.jobs").load(file)
  if not defs then
    die(2, err)
    return nil
  end
  return defs
end

-- Opens the store, creating it; nil after reporting (exit status 1).
local function open_store(path)
  local ok, db = pcall(require("resi.store").open, path)
  if not ok then
    die(1, "store: " .. tostring(db))
    return nil
  end
  return db
end

-- The definition named `name`, or nil after reporting a usage error.
local function find(defs, name, file)
  if not name then argparse.usage_error("missing job NAME") end
  for _, d in ipairs(defs) do if d.name == name then return d end end
  local names = {}
  for _, d in ipairs(defs) do names[#names + 1] = d.name end
  argparse.usage_error(("%s declares no job %q (jobs: %s)"):format(file, name, table.concat(names, ", ")))
end

-- The node name runs are claimed under (this machine's host name).
local function node_name()
  return (require("luv").os_gethostname())
end

-- The process id.
local function own_pid()
  return math.tointeger(require("luv").os_getpid())
end

-- A value as JSON text (one line).
local function json_line(v)
  return require("resi.json").encode(v, { sort_keys = true })
end

-- An epoch time as ISO text, nil-safe.
local function iso(t) return t and schedule.iso(t) or nil end

---------------------------------------------------------------------------
-- check, list, explain

-- resi jobs check FILE: validates; exit 2 with file:line on error.
local function cmd_check(_, rest)
  local defs = load_or_die(rest[1])
  if not defs then return end
  for _, d in ipairs(defs) do
    io.stdout:write(("%s  %s%s  (%s)\n"):format(d.name, d.schedule.text,
      d.schedule.tz ~= "UTC" and (" " .. d.schedule.tz) or "", d.file))
  end
  io.stdout:write(("%s: %d job%s OK\n"):format(rest[1], #defs, #defs == 1 and "" or "s"))
end

-- The store when its file exists (list must not create one), else nil;
-- one that exists (or a URL) but cannot be opened is reported (exit
-- status 1) and the jobs are listed without it.
local function existing_store(path)
  local store = require "resi.store"
  path = path or store.default_path()
  if not store.is_url(path) and not require("resi.fs").exists(path) then return nil end
  return open_store(path)
end

-- The line of one job for `list`.
local function list_entry(d, db, now)
  local last = db and db:last_run(d.name)
  local paused = d.paused == true
  if db then
    local st = db:job_state(d.name)
    if st.updated_at or st.paused then paused = st.paused end
  end
  local nexts, t = {}, now
  for i = 1, 3 do
    t = d.schedule:next(t)
    if not t then break end
    nexts[i] = schedule.iso(t)
  end
  return { job = d.name, schedule = d.schedule.text, tz = d.schedule.tz or "UTC", kind = d.kind,
    rule = d.schedule.wildcard and "wildcard" or "fixed-time", overlap = d.overlap or "skip",
    catchup = d.catchup or "latest", paused = paused, last_outcome = last and last.status or nil,
    last_nominal_at = last and iso(last.nominal_at) or nil, next = nexts }
end

-- resi jobs list FILE [--json]: each job, its schedule, zone, last outcome, next 3 times.
local function cmd_list(o, rest)
  local defs = load_or_die(rest[1])
  if not defs then return end
  local db = existing_store(o.store)
  local now = os.time()
  for _, d in ipairs(defs) do
    local e = list_entry(d, db, now)
    if o.json then
      e.next = require("resi.json").array(e.next)
      io.stdout:write(json_line(e), "\n")
    else
      io.stdout:write(("%-20s %-18s %-16s %-10s last=%s%s next=%s\n"):format(e.job, e.schedule, e.tz, e.rule,
        e.last_outcome or "-", e.paused and " PAUSED" or "", table.concat(e.next, ",")))
    end
  end
  if db then db:close() end
end

-- resi jobs explain FILE [JOB] [--next N] [--from TIME]: fire times with DST markers.
local function cmd_explain(o, rest)
  local defs = load_or_die(rest[1])
  if not defs then return end
  local from = os.time()
  if o.from then
    local t, err = schedule.parse_time(o.from, from)
    if not t then argparse.usage_error("--from: " .. err) end
    from = t
  end
  local list = rest[2] and { find(defs, rest[2], rest[1]) } or defs
  for _, d in ipairs(list) do
    local s = d.schedule
    io.stdout:write(("%s: %s (%s; %s)\n"):format(d.name, s.text, s.tz or "UTC",
      s.wildcard and "wildcard job: follows real elapsed time" or "fixed-time job: once per wall-clock time"))
    for _, e in ipairs(s:explain(from, o.next)) do
      io.stdout:write(("  %s  %s\n"):format(schedule.iso(e.at), e.text))
    end
  end
end

---------------------------------------------------------------------------
-- run, history, pause, resume

-- resi jobs run FILE NAME: one run now, recorded; exit 1 unless it succeeded.
local function cmd_run(o, rest)
  local defs = load_or_die(rest[1])
  if not defs then return end
  local def = find(defs, rest[2], rest[1])
  local db = open_store(o.store)
  if not db then return end
  local sched = require("resi.jobs.scheduler").new{ jobs = { def }, store = db, node = node_name(), pid = own_pid(),
    log = require "resi.log", lease = db.shared and o.lease or nil }
  local outcome = sched:run_now(def.name)
  db:close()
  io.stdout:write(("%s: %s\n"):format(def.name, outcome or "already recorded for this second"))
  if outcome ~= "succeeded" then task.set_exit_status(1) end
end

-- A history row as printed/encoded. A running row with attempt 0 is a
-- slot claimed ahead whose run has not started: "claimed", and its
-- started_at is when it is due to.
local function history_entry(r)
  local outcome = r.status
  if outcome == "running" and r.attempt == 0 then outcome = "claimed" end
  return { job = r.job, nominal_at = iso(r.nominal_at), outcome = outcome, started_at = iso(r.started_at),
    finished_at = iso(r.finished_at), node = r.node, owner = r.owner, attempt = r.attempt, missed = r.missed,
    error = r.error,
    duration = r.started_at and r.finished_at and (r.finished_at - r.started_at) or nil }
end

-- The rows of the jobs asked for, newest first, at most limit.
local function history_rows(db, names, limit)
  local rows = {}
  for _, n in ipairs(names) do
    for _, r in ipairs(db:history{ job = n, limit = limit }) do rows[#rows + 1] = r end
  end
  table.sort(rows, function(a, b)
    if a.nominal_at ~= b.nominal_at then return a.nominal_at > b.nominal_at end
    return a.job < b.job
  end)
  for i = #rows, limit + 1, -1 do rows[i] = nil end
  return rows
end

-- resi jobs history FILE [JOB] [--limit N] [--json]: outcomes from the store.
local function cmd_history(o, rest)
  local defs = load_or_die(rest[1])
  if not defs then return end
  local names = {}
  if rest[2] then names[1] = find(defs, rest[2], rest[1]).name else
    for _, d in ipairs(defs) do names[#names + 1] = d.name end
  end
  local db = open_store(o.store)
  if not db then return end
  for _, r in ipairs(history_rows(db, names, o.limit)) do
    local e = history_entry(r)
    if o.json then
      io.stdout:write(json_line(e), "\n")
    else
      io.stdout:write(("%-20s %s  %-15s started=%s finished=%s node=%s%s\n"):format(e.job, e.nominal_at, e.outcome,
        e.started_at or "-", e.finished_at or "-", e.node or "-", e.error and ("  " .. e.error) or ""))
    end
  end
  db:close()
end

-- resi jobs pause|resume FILE NAME: sets the job's paused flag in the store.
local function cmd_pause(paused)
  return function(o, rest)
    local defs = load_or_die(rest[1])
    if not defs then return end
    local def = find(defs, rest[2], rest[1])
    local db = open_store(o.store)
    if not db then return end
    db:set_paused(def.name, paused)
    db:close()
    io.stdout:write(("%s: %s\n"):format(def.name, paused and "paused" or "resumed"))
  end
end

---------------------------------------------------------------------------
-- the daemon

-- Sends a systemd notification when run under systemd; errors are logged once.
local function notify(log, state)
  local ok, err = require("resi.core").sd_notify(state)
  if ok == nil then log.warn("sd_notify failed", { error = err, state = state }) end
  return ok
end

-- Starts the health/metrics listener; returns the server and metrics, or nil after reporting.
local function start_metrics(addr, db, loaded, lease_ready)
  local health = require "resi.health"
  local host, port = health.parse_addr(addr)
  if not host then
    argparse.usage_error("--metrics: " .. tostring(port))
  end
  local m = require("resi.jobs.metrics").new()
  local srv, err = health.serve{ host = host, port = port, registry = m.registry, ready = function()
    if not loaded() then return false, "jobs not loaded" end
    if db.shared then
      if lease_ready() then return true end
      return false, "the shared store has not confirmed this daemon's leases lately (database unreachable?)"
    end
    local ok, werr = pcall(db.set, db, "jobs.health", "probe", os.time())
    if not ok then return false, "store not writable: " .. tostring(werr) end
    return true
  end }
  if not srv then
    die(1, "--metrics " .. addr .. ": " .. tostring(err))
    return nil
  end
  return srv, m
end

-- Signals arrive on luv callbacks; the main task waits for them here
-- without polling: each handler queues its name and wakes the waiter.
local function signal_queue()
  local uv = require "luv"
  local q = { items = {}, handles = {} }
  for _, name in ipairs({ "sigterm", "sigint", "sighup" }) do
    local h = uv.new_signal()
    h:start(name, function()
      q.items[#q.items + 1] = name
      local done = q.done
      q.done = nil
      if done then done() end
    end)
    q.handles[#q.handles + 1] = h
  end
  -- The next signal's name, waiting for one when none is queued.
  function q.next()
    if #q.items == 0 then task.await(function(done) q.done = done end) end
    return table.remove(q.items, 1)
  end
  -- Stops and closes the signal handlers.
  function q.close()
    for _, h in ipairs(q.handles) do h:stop(); h:close() end
  end
  return q
end

-- Sends WATCHDOG=1 at half of $WATCHDOG_USEC (when systemd set it for us).
local function start_watchdog(log)
  local usec = tonumber(os.getenv("WATCHDOG_USEC") or "")
  local pid = tonumber(os.getenv("WATCHDOG_PID") or "")
  if not usec or usec <= 0 or (pid and pid ~= own_pid()) then return nil end
  return task.spawn(function()
    while true do
      notify(log, "WATCHDOG=1")
      task.sleep(usec / 2e6)
    end
  end)
end

-- Under systemd's LoadCredential=, each $CREDENTIALS_DIRECTORY/NAME file
-- becomes the variable NAME (resi.credentials), so scripts find them where
-- they always look. Returns the names exported (never the values).
local function load_credentials() return require("resi.credentials").export_directory() end

-- The hash other daemons on a shared store compare (resi.jobs.cluster).
local function jobs_hash(file, defs)
  local f = io.open(file, "rb")
  local text = f and f:read("a") or ""
  if f then f:close() end
  return require("resi.jobs.cluster").jobs_hash(text, defs)
end

-- Reloads FILE into the scheduler; a broken file keeps the old jobs.
local function reload(file, sched, log, m)
  local defs, err = require("resi.jobs").load(file)
  if not defs then
    log.error("reload failed; the old jobs keep running", { file = file, error = err })
    return false
  end
  sched:set_jobs(defs)
  if sched.keeper then
    sched.jobs_hash = jobs_hash(file, defs)
    sched.keeper:register()
  end
  if m then m.declare(defs, function(d) return sched:paused(sched.jobs[d.name]) end) end
  log.info("jobs reloaded", { file = file, jobs = #defs })
  return true
end

-- Drains on SIGTERM/SIGINT: stop starting runs, wait, cancel the rest. A
-- second SIGTERM/SIGINT while draining cancels the running jobs at once.
local function drain(sched, log, timeout, sig, signals)
  notify(log, "STOPPING=1")
  notify(log, ("EXTEND_TIMEOUT_USEC=%d"):format(math.floor((timeout + 5) * 1e6)))
  log.info("stopping: waiting for running jobs", { signal = sig, running = sched:running(), stop_timeout = timeout })
  local hurry = task.spawn(function()
    local again
    repeat again = signals.next() until again ~= "sighup"
    log.warn("second signal: cancelling the running jobs now", { signal = again })
    for _, rec in ipairs(sched:active_runs()) do sched:cancel_run(rec, "shutdown") end
  end)
  local cancelled = sched:stop(timeout)
  hurry:cancel()
  log.info("stopped", { cancelled = cancelled })
end

-- resi jobs FILE: the daemon.
local function cmd_daemon(o, rest)
  local file = rest[1]
  if #rest > 1 then argparse.usage_error(("unexpected argument %q"):format(rest[2])) end
  local credentials = load_credentials()
  local defs = load_or_die(file)
  if not defs then return end
  local db = open_store(o.store)
  if not db then return end
  -- one daemon per SQLite file; on a shared PostgreSQL store any number
  local lock, lerr, code = { unlock = function() end }, nil, nil
  if not db.shared then lock, lerr, code = require("resi.fs").lock(db.path .. ".daemon.lock") end
  if not lock then
    return die(1, code == "busy" and ("another resi jobs daemon uses the store " .. db.path) or tostring(lerr))
  end
  local log = require "resi.log"
  local loaded = false
  local srv, m, sched
  if o.metrics then
    srv, m = start_metrics(o.metrics, db, function() return loaded end,
      function() return sched and sched.keeper and sched.keeper:ready() end)
    if not srv then return end
  end
  sched = require("resi.jobs.scheduler").new{ jobs = defs, store = db, node = node_name(), pid = own_pid(),
    log = log, observer = m and m.observer, lease = db.shared and o.lease or nil,
    jobs_hash = db.shared and jobs_hash(file, defs) or nil, jobs_file = file }
  if m then m.declare(defs, function(d) return sched:paused(sched.jobs[d.name]) end) end
  local signals = signal_queue()
  local recovered = sched:start()
  loaded = true
  log.info("resi jobs started", { file = file, jobs = #defs, store = db.path, recovered = recovered,
    node = sched.owner, lease = sched.lease,
    metrics = srv and srv.url or nil, pid = own_pid(), credentials = #credentials > 0 and credentials or nil })
  notify(log, ("READY=1\nSTATUS=%d jobs from %s"):format(#defs, file))
  local watchdog = start_watchdog(log)
  local sig
  repeat
    sig = signals.next()
    if sig == "sighup" then reload(file, sched, log, m) end
  until sig ~= "sighup"
  drain(sched, log, o.stop_timeout, sig, signals)
  if watchdog then watchdog:cancel() end
  signals.close()
  if srv then srv:close() end
  db:close()
  lock:unlock()
end

local COMMANDS = {
  check = cmd_check, list = cmd_list, explain = cmd_explain, run = cmd_run, history = cmd_history,
  pause = cmd_pause(true), resume = cmd_pause(false),
}

-- Dispatches to a subcommand, or runs the daemon.
local function main(o, rest)
  local cmd = COMMANDS[rest[1]]
  if cmd and rest[2] then
    table.remove(rest, 1)
    return cmd(o, rest)
  end
  if not rest[1] then argparse.usage_error("missing FILE: the jobs file to run") end
  if o.list then return cmd_list(o, rest) end
  if o.once then return cmd_run(o, { rest[1], o.once }) end
  return cmd_daemon(o, rest)
end

--- Runs `resi jobs` with the command line's arguments.
---@param ... string
return function(...)
  argparse.run({ ... }, SPEC, help, main)
end
