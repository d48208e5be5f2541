--- spec/support/proc.lua: runs a command without blocking the loop and
--- returns its exit status and output (libuv's spawn through resi.uv).
local uv = require "luv"
local resi = require "resi"

local M = {}

-- Reads a pipe to the end; calls done(text) once.
local function collect(pipe, done)
  local chunks = {}
  pipe:read_start(function(err, data)
    if data then
      chunks[#chunks + 1] = data
    else
      pipe:read_stop()
      pipe:close()
      done(table.concat(chunks))
    end
  end)
end

--- Runs argv (argv[1] is the program) with opts.env (list "K=V", added to the
--- current environment), opts.stdin (a string), opts.cwd.
--- Returns {status=, signal=, stdout=, stderr=}.
---@param argv string[]
---@param opts? {env?: string[], stdin?: string, cwd?: string}
function M.run(argv, opts)
  opts = opts or {}
  local env = nil
  if opts.env then
    local vars = uv.os_environ()
    for _, kv in ipairs(opts.env) do
      local k, v = kv:match("^([^=]+)=(.*)$")
      vars[k] = v ~= "" and v or nil -- "NAME=" removes NAME
    end
    env = {}
    for k, v in pairs(vars) do env[#env + 1] = k .. "=" .. v end
  end
  return resi.await(function(done)
    local stdin, stdout, stderr = uv.new_pipe(), uv.new_pipe(), uv.new_pipe()
    local result, pending = {}, 3
    local function step()
      pending = pending - 1
      if pending == 0 then done(result) end
    end
    local args = {}
    for i = 2, #argv do args[#args + 1] = argv[i] end
    local handle, pid_or_err
    handle, pid_or_err = uv.spawn(argv[1], {
      args = args, env = env, cwd = opts.cwd, stdio = { stdin, stdout, stderr },
    }, function(code, signal)
      result.status, result.signal = code, signal
      handle:close()
      step()
    end)
    if not handle then error("cannot run " .. argv[1] .. ": " .. tostring(pid_or_err)) end
    result.pid = pid_or_err
    collect(stdout, function(s) result.stdout = s; step() end)
    collect(stderr, function(s) result.stderr = s; step() end)
    if opts.stdin then stdin:write(opts.stdin) end
    stdin:shutdown(function() stdin:close() end)
  end)
end

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
