--- spec/support/repl_run.lua: runs `resi repl` for the REPL specs, on a
--- pseudo-terminal (spec/support/pty.lua) or with piped stdin, and gives a
--- describe block a scratch directory.
local pty = require "spec.support.pty"
local proc = require "spec.support.proc"
local files = require "spec.support.files"

local M = {}

--- Runs `resi repl ARGS` (or bare `resi` when args is false) on a pty with
--- env (a map, as pty.run takes it) and steps; pty.run's result.
---@param args string[]|false
---@param env table<string, string|false>
---@param steps table[]
---@param timeout? number seconds (10)
---@return table
function M.tty(args, env, steps, timeout)
  local argv = { proc.resi_path() }
  if args then
    argv[2] = "repl"
    for _, a in ipairs(args) do argv[#argv + 1] = a end
  end
  return pty.run { argv = argv, env = env, steps = steps, timeout = timeout or 10 }
end

--- Runs `resi repl ARGS` with stdin piped in; history is off unless env
--- (a list of "NAME=value") sets RESI_HISTORY. proc.resi's result.
---@param args string[]
---@param stdin string
---@param env? string[]
---@return table
function M.piped(args, stdin, env)
  local full = { "repl" }
  for _, a in ipairs(args) do full[#full + 1] = a end
  local e = { "RESI_HISTORY=" }
  for _, kv in ipairs(env or {}) do e[#e + 1] = kv end
  return proc.resi(full, { stdin = stdin, env = e })
end

--- A scratch directory for the enclosing describe block: made in its
--- setup, removed in its teardown. Returns a function giving its path.
---@param name string a prefix for the directory's name
---@return fun(): string
function M.scratch_dir(name)
  local busted, dir = require "busted", nil
  busted.setup(function() dir = files.dir(name) end)
  busted.teardown(function() files.remove_dir(dir) end)
  return function() return dir end
end

return M
