--- spec/support/daemon.lua: a `resi ARGS...` process in the background
--- (a jobs daemon, a script), with its stderr collected, for specs that
--- signal, kill, freeze and restart processes.
---
---   local d = daemon.start({ "jobs", file, "--store", url }, { env = { "FAKETIME=+20s" } })
---   d.pid; d.kill("sigstop"); d.exited(); d.wait() -> code, signal; d.stderr()
local uv = require "luv"
local proc = require "spec.support.proc"

local M = {}

--- Starts resi with args; opts.env: extra "K=V" entries (PATH and
--- RESI_LOG_FORMAT=json are always set), opts.cwd.
---@param args string[]
---@param opts? {env?: string[], cwd?: string}
---@return table
function M.start(args, opts)
  opts = opts or {}
  local env = { "RESI_LOG_FORMAT=json", "PATH=" .. os.getenv("PATH") }
  for _, e in ipairs(opts.env or {}) do env[#env + 1] = e end
  local errpipe = uv.new_pipe()
  local d = { err = {}, args = args, opts = opts }
  local handle, pid = uv.spawn(proc.resi_path(), { args = args, stdio = { nil, nil, errpipe }, env = env,
    cwd = opts.cwd }, function(code, signal)
    d.code, d.signal, d.done = code, signal, true
    if d.waiter then d.waiter() end
  end)
  assert(handle, pid)
  d.pid, d.handle = pid, handle
  errpipe:read_start(function(_, data)
    if data then d.err[#d.err + 1] = data else errpipe:close() end
  end)
  --- Has it exited?
  function d.exited() return d.done == true end
  --- Waits for the process to exit; returns code, signal.
  function d.wait()
    if not d.done then resi.await(function(done) d.waiter = done end) end
    if not handle:is_closing() then handle:close() end
    return d.code, d.signal
  end
  --- Everything it wrote to stderr so far.
  function d.stderr() return table.concat(d.err) end
  --- Sends a signal ("sigterm", "sigkill", "sigstop", "sigcont").
  function d.kill(sig) if not d.done then uv.kill(pid, sig) end end
  return d
end

return M
