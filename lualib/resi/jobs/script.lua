--- resi.jobs.script: runs a resi script (scripts/rotate.lua ...) inside the
--- jobs daemon, the way `resi run FILE ARGS...` would, without a process:
--- the run's task is the script's main task and the script gets its own
--- environment table, so its globals do not leak into the daemon or into
--- the next run. Inside it:
---   resi.args        the job's arguments (a fresh copy per run)
---   resi.run         the run object (run.id, run.nominal_at, ...)
---   arg              {[0]=path, ...args}, as for `resi FILE`
---   require          the real one, except that "resi", "resi.task" and
---                    "resi.argparse" give per-run versions whose
---                    set_exit_status records the script's exit status
---                    instead of the daemon's
---   os.exit          raises an error (a script cannot end the daemon)
--- A non-zero exit status or an error fails the run.
local M = {}

-- A table that reads through to `base` and holds its own fields.
local function overlay(base, fields)
  return setmetatable(fields, { __index = base })
end

-- The per-run module versions and the require that hands them out.
local function make_require(path, args, run, status)
  local resi = require "resi"
  local task = require "resi.task"
  local mods = {}
  local function script_require(name)
    local m = mods[name]
    if m ~= nil then return m end
    return require(name)
  end
  mods["resi.task"] = overlay(task, {
    set_exit_status = function(code)
      if status.code == 0 then status.code = math.tointeger(code) or 1 end
    end,
  })
  local rargs = {}
  for i, a in ipairs(args) do rargs[i] = a end
  mods["resi"] = overlay(resi, { args = rargs, run = run, script = path })
  local file = assert(package.searchpath("resi.argparse", package.path))
  local env = overlay(_G, { require = script_require })
  mods["resi.argparse"] = assert(loadfile(file, "t", env))()
  return script_require, mods
end

-- The script's global environment.
local function make_env(path, args, require_fn, mods)
  local env = overlay(_G, {})
  env._G = env
  env.require = require_fn
  env.resi = mods["resi"]
  local argv = { [0] = path }
  for i, a in ipairs(args) do argv[i] = a end
  env.arg = argv
  env.os = overlay(os, {
    exit = function(code)
      error(("%s called os.exit(%s) (not allowed in a job; the run fails)"):format(path, tostring(code)), 2)
    end,
  })
  return env
end

--- Runs the script once for `run`; raises when it fails or exits non-zero.
---@param path string
---@param args string[]
---@param run table
function M.run(path, args, run)
  local status = { code = 0 }
  local require_fn, mods = make_require(path, args, run, status)
  local env = make_env(path, args, require_fn, mods)
  local chunk, err = loadfile(path, "t", env)
  if not chunk then error(err, 0) end
  chunk(table.unpack(args))
  if status.code ~= 0 then
    error(("%s exited with status %d"):format(path, status.code), 0)
  end
end

--- The job function of a script job.
---@param path string
---@param args string[]
---@return fun(run: table)
function M.job(path, args)
  return function(run) return M.run(path, args, run) end
end

return M
