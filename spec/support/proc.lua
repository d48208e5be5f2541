--- spec/support/proc.lua: runs a command without blocking the loop and
--- returns its exit status and output (libuv's spawn through resi.uv), or
--- starts it in the background (proc.start) to signal it and wait later.
local uv = require "luv"
local resi = require "resi"

local M = {}

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

--- The environment list for uv.spawn: the current one with extra's "K=V"
--- added ("K=" removes K); nil (the current one as it is) without extra.
---@param extra? string[]
---@return string[]?
function M.environment(extra)
  if not extra then return nil end
  local vars = uv.os_environ()
  for _, kv in ipairs(extra) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    vars[k] = v ~= "" and v or nil
  end
  local env = {}
  for k, v in pairs(vars) do env[#env + 1] = k .. "=" .. v end
  return env
end

---@class spec.proc
---@field pid integer
local P = {}
P.__index = P

--- Starts argv (argv[1] is the program) in the background with opts.env
--- (list "K=V", added to the current environment; "K=" removes K),
--- opts.stdin (a string, then end of input), opts.cwd; its output is read
--- as it comes. Raises when it cannot start.
---@param argv string[]
---@param opts? {env?: string[], stdin?: string, cwd?: string}
---@return spec.proc
function M.start(argv, opts)
  opts = opts or {}
  local p = setmetatable({ out = {}, err = {}, pending = 3 }, P)
  local stdin, stdout, stderr = uv.new_pipe(), uv.new_pipe(), uv.new_pipe()
  local function step()
    p.pending = p.pending - 1
    if p.pending == 0 and p.waiter then p.waiter() end
  end
  local handle, pid
  handle, pid = uv.spawn(argv[1], { args = { table.unpack(argv, 2) }, env = M.environment(opts.env), cwd = opts.cwd,
    stdio = { stdin, stdout, stderr } }, function(code, signal)
    p.status, p.signal = code, signal
    handle:close()
    step()
  end)
  if not handle then
    for _, pipe in ipairs { stdin, stdout, stderr } do pipe:close() end
    error("cannot run " .. argv[1] .. ": " .. tostring(pid))
  end
  p.pid = pid
  collect(stdout, p.out, step)
  collect(stderr, p.err, step)
  if opts.stdin then stdin:write(opts.stdin) end
  stdin:shutdown(function() stdin:close() end)
  return p
end

--- Sends a signal ("sigkill", "sigterm") to the process.
---@param sig string
function P:kill(sig) uv.kill(self.pid, sig) end

--- Waits for the process to end and its output to be read; the result
--- {status=, signal=, stdout=, stderr=, pid=}.
---@return {status: integer, signal: integer, stdout: string, stderr: string, pid: integer}
function P:wait()
  if self.pending > 0 then resi.await(function(done) self.waiter = done end) end
  return { status = self.status, signal = self.signal, stdout = table.concat(self.out),
    stderr = table.concat(self.err), pid = self.pid }
end

--- Runs argv to its end (opts as for proc.start); the result as P:wait
--- gives it: {status=, signal=, stdout=, stderr=, pid=}.
---@param argv string[]
---@param opts? {env?: string[], stdin?: string, cwd?: string}
function M.run(argv, opts) return M.start(argv, opts):wait() end

--- Runs ./resi with args from the repository root.
function M.resi(args, opts)
  local argv = { M.resi_path() }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return M.run(argv, opts)
end

--- Waits until fn() is true, polling every 50 ms, at most limit seconds
--- (default 10); true, or false on time-out.
---@param fn fun(): boolean
---@param limit? number
---@return boolean
function M.eventually(fn, limit)
  local deadline = uv.hrtime() / 1e9 + (limit or 10)
  while not fn() do
    if uv.hrtime() / 1e9 > deadline then return false end
    resi.sleep(0.05)
  end
  return true
end

--- The resi binary under test (the one running this suite).
function M.resi_path()
  return uv.exepath()
end

return M
