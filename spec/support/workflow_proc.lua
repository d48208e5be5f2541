--- spec/support/workflow_proc.lua: a resi subprocess started in the
--- background, so a spec can watch the sandbox while it runs and kill it
--- (kill -9 by its own pid), plus scratch directories and polling.
---
---   local wp = require "spec.support.workflow_proc"
---   local p = wp.start({ "run", "examples/topup.lua" }, { env = sim:env(), cwd = dir })
---   assert(wp.eventually(function() return effect_seen() end))
---   p:kill("sigkill")
---   local r = p:wait()                  -- {status=, signal=, stdout=, stderr=}
local uv = require "luv"
local proc = require "spec.support.proc"
local files = require "spec.support.files"

local M = {}

---@class spec.workflow_proc
---@field pid integer
local P = {}
P.__index = P

-- The environment list for uv.spawn: the current one with opts.env's
-- "K=V" added ("K=" removes K), as spec.support.proc does.
local function environment(extra)
  local vars = uv.os_environ()
  for _, kv in ipairs(extra or {}) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    vars[k] = v ~= "" and v or nil
  end
  local env = {}
  for k, v in pairs(vars) do env[#env + 1] = k .. "=" .. v end
  return env
end

-- Reads a pipe into the list bufs until its end; calls done() then.
local function collect(pipe, bufs, done)
  pipe:read_start(function(_, data)
    if data then
      bufs[#bufs + 1] = data
    else
      pipe:read_stop()
      pipe:close()
      done()
    end
  end)
end

--- Starts the resi under test with args (opts.env: "K=V" list added to the
--- current environment; opts.cwd). Paths in args are the caller's: make
--- them absolute when cwd is given.
---@param args string[]
---@param opts? {env?: string[], cwd?: string}
---@return spec.workflow_proc
function M.start(args, opts)
  opts = opts or {}
  local p = setmetatable({ out = {}, err = {}, pending = 3 }, P)
  local stdout, stderr = uv.new_pipe(), uv.new_pipe()
  local function step()
    p.pending = p.pending - 1
    if p.pending == 0 and p.waiter then p.waiter() end
  end
  local handle, pid
  handle, pid = uv.spawn(proc.resi_path(), { args = args, env = environment(opts.env), cwd = opts.cwd,
    stdio = { nil, stdout, stderr } }, function(code, signal)
    p.status, p.signal = code, signal
    handle:close()
    step()
  end)
  assert(handle, "cannot start resi: " .. tostring(pid))
  p.pid = pid
  collect(stdout, p.out, step)
  collect(stderr, p.err, step)
  return p
end

--- Sends a signal ("sigkill", "sigterm") to the process.
---@param sig string
function P:kill(sig) uv.kill(self.pid, sig) end

--- Waits for the process to end and its output to be read; the result
--- {status, signal, stdout, stderr} as spec.support.proc.run gives it.
---@return {status: integer, signal: integer, stdout: string, stderr: string}
function P:wait()
  if self.pending > 0 then resi.await(function(done) self.waiter = done end) end
  return { status = self.status, signal = self.signal, stdout = table.concat(self.out), stderr = table.concat(self.err) }
end

--- Runs the resi under test to its end (as spec.support.proc.resi does,
--- with opts.cwd); the result as P:wait gives it.
---@param args string[]
---@param opts? {env?: string[], cwd?: string}
function M.run(args, opts) return M.start(args, opts):wait() end

--- Waits until fn() is true (spec.support.proc's).
M.eventually = proc.eventually

--- A new scratch directory (0700); the caller removes it (M.remove).
---@return string
function M.scratch_dir() return files.dir("resi-workflow") end

--- Removes a scratch directory and everything in it.
M.remove = files.remove_dir

return M
