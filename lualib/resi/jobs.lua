--- resi.jobs: the jobs-file DSL. A jobs file is a Lua file that declares
--- jobs; `resi jobs FILE` loads it and runs them (resi.jobs.scheduler).
---
---   local jobs = require "resi.jobs"
---   jobs.every("5m", "ping", function(run) ... end, { timeout = 60 })
---   jobs.cron("0 6 * * *", "report", report, { tz = "Europe/Berlin" })
---   jobs.script("*/5 * * * *", "rotate", "scripts/rotate.lua", { "--threshold", "0.9" })
---
--- A job function gets `run`: run.id ("rotate@2026-03-29T01:00:00Z", the
--- same on every attempt and after a restart: use it to make provider
--- calls idempotent), run.nominal_at (the slot, epoch seconds), run.attempt
--- (1, 2 ... with retry) and run.missed (slots coalesced into this run).
---
--- Options (anchors-round2 §B.9 vocabulary):
---   tz            IANA zone of a cron schedule (default UTC)
---   overlap       "skip" (default) | "buffer_one" | "cancel_other" | "allow"
---   catchup       "latest" (default) | "all" | "none": slots that passed while
---                 the daemon was down or late; `grace` seconds is the start
---                 deadline (older slots are recorded missed; default none,
---                 60 s with "none"), `max_catchup` caps "all" (default 100)
---   jitter        seconds: a random start delay in [0, jitter] per slot
---   stable_offset seconds (or true: the job's period): a delay in [0, value)
---                 hashed from the job name and host, the same after restarts
---   timeout       seconds per attempt: the run's task is cancelled (its HTTP
---                 transfers aborted) and the run ends timed_out
---   retry         { attempts = N, backoff = seconds (doubled per retry) or fn(attempt) }
---   on_interrupt  "skip" (default: recorded interrupted) | "rerun" after a crash
---   paused        true: slots are recorded missed until `resi jobs resume`
---   notify_on     { failure_after = N, recovery = true }: notify after the Nth
---                 failure in a row, and on the success that ends such a streak
---                 (resi.jobs.notify)
---   notify        where those go: a resi.notify notifier or a notify.from_config
---                 table (default: jobs.notify(...) of the file, else RESI_NOTIFY_*)
--- A bad or unknown option or a duplicate name is an error naming the file,
--- the line and the option.
---
--- Time zones and DST (cronie's rule, applied by resi.cron): a cron job is a
--- *wildcard* job when its minute or hour field starts with `*` (`*/15 * * * *`,
--- `0 * * * *`), else *fixed-time* (`30 2 * * *`, `0,30 9-17 * * *`).
---   spring forward (Europe/Berlin, 2026-03-29, 02:00 -> 03:00):
---     `30 2 * * *` runs once, at 03:00 CEST ("moved: skipped hour");
---     `*/30 * * * *` runs at 01:30 CET then 03:00 CEST: 02:xx does not exist.
---   fall back (2026-10-25, 03:00 -> 02:00):
---     `30 2 * * *` runs once, at the first 02:30 (CEST) ("once: repeated hour");
---     `*/30 2 * * *` runs at 02:00 and 02:30 of both hours (real time).
--- `resi jobs explain FILE JOB --from 2026-03-28` prints these markers.
--- `every` jobs count real seconds from the epoch and never see DST.
local schedule = require "resi.jobs.schedule"

local M = {}

-- The declarations of the file being loaded ({defs=, names=}), nil outside jobs.load.
local collecting

-- Raises a declaration error at the jobs file's line.
local function fail(where, fmt, ...)
  error(("%s: %s"):format(where, fmt:format(...)), 0)
end

-- "file:line" of the jobs-file line that called jobs.every/cron/script
-- (level 3: call_site, the jobs.* function, its caller).
local function call_site()
  local info = debug.getinfo(3, "Sl")
  if not info then return "?" end
  local src = info.source:sub(1, 1) == "@" and info.source:sub(2) or info.short_src
  return ("%s:%d"):format(src, info.currentline or 0)
end

local ENUMS = {
  overlap = { skip = true, buffer_one = true, cancel_other = true, allow = true },
  catchup = { latest = true, all = true, none = true },
  on_interrupt = { skip = true, rerun = true },
}

-- A sorted, quoted list of an enum's values for messages.
local function choices(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = ("%q"):format(k) end
  table.sort(out)
  return table.concat(out, ", ")
end

-- Checks a number option: nil when fine, else the rule it breaks.
local function number_rule(v, min, strict, integer)
  if type(v) ~= "number" or v ~= v or v == math.huge then return "a finite number" end
  if integer and math.tointeger(v) == nil then return "a whole number" end
  if v < min or (strict and v == min) then return ("%s %s"):format(strict and ">" or ">=", min) end
  return nil
end

-- Validates `retry`; nil when fine, else the problem.
local function retry_rule(v)
  if type(v) ~= "table" then return "a table {attempts=, backoff=}" end
  for k in pairs(v) do
    if k ~= "attempts" and k ~= "backoff" then return ("unknown field %q (attempts, backoff)"):format(tostring(k)) end
  end
  if v.attempts ~= nil and number_rule(v.attempts, 1, false, true) then return "attempts: a whole number >= 1" end
  if v.backoff ~= nil and type(v.backoff) ~= "function" and number_rule(v.backoff, 0) then
    return "backoff: seconds >= 0 or a function(attempt)"
  end
  return nil
end

-- The rule each option follows: a function returning nil when the value is fine.
local RULES = {
  tz = function(v) return type(v) ~= "string" and "an IANA zone name such as \"Europe/Berlin\"" or nil end,
  overlap = function(v) return not ENUMS.overlap[v] and ("one of " .. choices(ENUMS.overlap)) or nil end,
  catchup = function(v) return not ENUMS.catchup[v] and ("one of " .. choices(ENUMS.catchup)) or nil end,
  on_interrupt = function(v) return not ENUMS.on_interrupt[v] and ("one of " .. choices(ENUMS.on_interrupt)) or nil end,
  grace = function(v) return number_rule(v, 0) and "seconds >= 0" or nil end,
  max_catchup = function(v) return number_rule(v, 1, false, true) and "a whole number >= 1" or nil end,
  jitter = function(v) return number_rule(v, 0) and "seconds >= 0" or nil end,
  stable_offset = function(v) return v ~= true and number_rule(v, 0) and "seconds >= 0 or true" or nil end,
  timeout = function(v) return number_rule(v, 0, true) and "seconds > 0" or nil end,
  retry = retry_rule,
  paused = function(v) return type(v) ~= "boolean" and "true or false" or nil end,
  description = function(v) return type(v) ~= "string" and "a string" or nil end,
  notify_on = function(v) return require("resi.jobs.notify").rule(v) end,
  notify = function(v)
    local _, problem = require("resi.jobs.notify").notifier_option(v)
    return problem
  end,
}
M.OPTIONS = RULES

-- Checks an options table; raises naming file:line and the option.
local function check_options(where, name, opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then fail(where, "job %q: options must be a table, got %s", name, type(opts)) end
  for k, v in pairs(opts) do
    local rule = RULES[k]
    if not rule then
      local known = {}
      for n in pairs(RULES) do known[#known + 1] = n end
      table.sort(known)
      fail(where, "job %q: unknown option %q (options: %s)", name, tostring(k), table.concat(known, ", "))
    end
    local problem = rule(v)
    if problem then fail(where, "job %q: option %s must be %s, got %s", name, k, problem, tostring(v)) end
  end
  return opts
end

-- The period of a schedule near now (for stable_offset = true), at most an hour.
local function period(sched)
  if sched.kind == "every" then return sched.interval end
  local a = sched:next(os.time())
  local b = a and sched:next(a)
  return b and math.min(b - a, 3600) or 60
end

-- Builds the schedule of a declaration: an interval (seconds, "5m") or a cron expression.
local function make_schedule(where, name, kind, spec, tz)
  if kind == "every" or (kind == "auto" and (type(spec) == "number" or not tostring(spec):find("[%s@]"))) then
    local secs, err = schedule.parse_interval(spec)
    if not secs then fail(where, "job %q: %s", name, err) end
    if tz then fail(where, "job %q: option tz applies to cron schedules only (an interval is real elapsed time)", name) end
    return schedule.every(secs)
  end
  local sched, err = schedule.cron(spec, tz)
  if not sched then fail(where, "job %q: schedule %q: %s", name, tostring(spec), err) end
  return sched
end

-- Records one declaration in the file being loaded.
local function declare(where, kind, spec, name, fn, opts, extra)
  if type(name) ~= "string" or not name:match("^[%w][%w_.:-]*$") then
    fail(where, "job name must be a string of letters, digits, _ . : - (got %s)", tostring(name))
  end
  opts = check_options(where, name, opts)
  if not collecting then fail(where, "job %q: declare jobs in a jobs file loaded by `resi jobs`", name) end
  if collecting.names[name] then
    fail(where, "job %q: duplicate job name (first declared at %s)", name, collecting.names[name])
  end
  local sched = make_schedule(where, name, kind, spec, opts.tz)
  local def = { name = name, kind = kind == "auto" and "script" or kind, schedule = sched, fn = fn, file = where }
  for k, v in pairs(opts) do def[k] = v end
  if def.notify then def.notify = require("resi.jobs.notify").notifier_option(def.notify) end
  if def.stable_offset == true then def.stable_offset = period(sched) end
  for k, v in pairs(extra or {}) do def[k] = v end
  collecting.names[name] = where
  collecting.defs[#collecting.defs + 1] = def
  return def
end

---@alias resi.jobs.overlap "skip"|"buffer_one"|"cancel_other"|"allow"
---@alias resi.jobs.catchup "latest"|"all"|"none"
---@alias resi.jobs.outcome "succeeded"|"failed"|"timed_out"|"cancelled"|"interrupted"|"skipped_overlap"|"missed"|"coalesced"

--- A job's options (the module's header says what each does).
---@class resi.jobs.options
---@field tz? string  IANA zone of a cron schedule (default UTC)
---@field overlap? resi.jobs.overlap
---@field catchup? resi.jobs.catchup
---@field grace? number  seconds: the start deadline of a late slot
---@field max_catchup? integer
---@field jitter? number  seconds
---@field stable_offset? number|true
---@field timeout? number  seconds per attempt
---@field retry? {attempts: integer, backoff?: number|fun(attempt: integer): number}
---@field on_interrupt? "skip"|"rerun"
---@field paused? boolean
---@field notify_on? {failure_after?: integer, recovery?: boolean}
---@field notify? table  a resi.notify notifier or a notify.from_config table

--- What a job function gets.
---@class resi.jobs.run
---@field id string  "rotate@2026-03-29T01:00:00Z": the same on every attempt and after a restart
---@field nominal_at integer  the slot, epoch seconds
---@field attempt integer  1, 2 ... with retry
---@field missed integer  slots coalesced into this run

--- A declared job (what jobs.load returns, one per jobs.every / cron / script).
---@class resi.jobs.Job: resi.jobs.options
---@field name string
---@field kind "every"|"cron"|"script"
---@field schedule table
---@field fn? fun(run: resi.jobs.run)
---@field file string  where it was declared (file:line)

--- Declares a job run every `interval` (seconds, or "90s", "5m", "1h30m", "1d").
---@param interval integer|string
---@param name string
---@param fn fun(run: resi.jobs.run)
---@param opts? resi.jobs.options
function M.every(interval, name, fn, opts)
  local where = call_site()
  if type(fn) ~= "function" then fail(where, "job %q: expected a function, got %s", tostring(name), type(fn)) end
  declare(where, "every", interval, name, fn, opts)
end

--- Declares a job run on a cron schedule (5 or 6 fields, see resi.cron).
---@param expr string
---@param name string
---@param fn fun(run: resi.jobs.run)
---@param opts? resi.jobs.options
function M.cron(expr, name, fn, opts)
  local where = call_site()
  if type(fn) ~= "function" then fail(where, "job %q: expected a function, got %s", tostring(name), type(fn)) end
  declare(where, "cron", expr, name, fn, opts)
end

-- The directory beside resi's Lua library that holds its scripts/ (the
-- source tree's, or PREFIX/share/resi/ once installed), or nil.
local function resi_home()
  local init = package.searchpath("resi", package.path)
  return init and init:match("^(.*)/lualib/resi/init%.lua$")
end

-- Finds a script path: as given (relative to the working directory), else
-- next to the jobs file, else among resi's own (`scripts/rotate.lua` works
-- from a systemd unit's state directory). Nil when none exists.
local function resolve(path, base_dir)
  local uv = require "luv"
  if uv.fs_stat(path) then return path end
  if path:sub(1, 1) == "/" then return nil end
  for _, dir in ipairs { base_dir or false, resi_home() or false } do
    local p = dir and (dir .. "/" .. path)
    if p and uv.fs_stat(p) then return p end
  end
  return nil
end

--- Declares a job that runs a resi script (such as scripts/rotate.lua) in
--- process, in its own task and environment, with resi.args = args. The
--- schedule is an interval or a cron expression. The run fails when the
--- script raises or sets a non-zero exit status.
---@param sched integer|string
---@param name string
---@param path string
---@param args? string[]
---@param opts? resi.jobs.options
function M.script(sched, name, path, args, opts)
  local where = call_site()
  if type(path) ~= "string" then fail(where, "job %q: script path must be a string, got %s", tostring(name), type(path)) end
  if args ~= nil and type(args) ~= "table" then
    fail(where, "job %q: script arguments must be a list of strings, got %s", tostring(name), type(args))
  end
  for i, a in ipairs(args or {}) do
    if type(a) ~= "string" and type(a) ~= "number" then fail(where, "job %q: script argument %d is a %s", name, i, type(a)) end
  end
  local found = resolve(path, collecting and collecting.dir)
  if not found then fail(where, "job %q: script %s not found", tostring(name), path) end
  local list = {}
  for i, a in ipairs(args or {}) do list[i] = tostring(a) end
  local runner = require("resi.jobs.script")
  declare(where, "auto", sched, name, runner.job(found, list), opts, { script = found, args = list })
end

--- Names where the file's jobs with notify_on send when they name no
--- `notify` of their own: a resi.notify notifier or a notify.from_config
--- table. Without it they use RESI_NOTIFY_* (notify.from_env).
---@param target table
function M.notify(target)
  local where = call_site()
  if not collecting then fail(where, "jobs.notify: call it in a jobs file loaded by `resi jobs`") end
  local n, problem = require("resi.jobs.notify").notifier_option(target)
  if not n then fail(where, "jobs.notify: expects %s", problem) end
  collecting.notify = n
end

--- Loads a jobs file. Returns the job definitions (in declaration order),
--- or nil and "file:line: message".
---@param path string
---@return resi.jobs.Job[]|nil defs
---@return string|nil err
function M.load(path)
  local chunk, err = loadfile(path, "t", setmetatable({}, { __index = _G }))
  if not chunk then return nil, err end
  local dir = path:match("^(.*)/[^/]*$") or "."
  local saved = collecting
  collecting = { defs = {}, names = {}, dir = dir }
  local ok, lerr = pcall(chunk)
  local defs = collecting.defs
  if collecting.notify then
    for _, d in ipairs(defs) do d.notify_default = collecting.notify end
  end
  collecting = saved
  if not ok then
    if type(lerr) ~= "string" then lerr = tostring(lerr) end
    return nil, lerr
  end
  if #defs == 0 then return nil, path .. ": declares no jobs (use jobs.every, jobs.cron or jobs.script)" end
  return defs
end

return M
