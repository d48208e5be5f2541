--- resi.process: runs a command without blocking the loop (libuv's spawn):
--- the task waits, every other task goes on. Used for post-publish hooks
--- such as `systemctl reload squid`.
---
---   local r = process.run("systemctl reload squid", { timeout = 30 })
---   if not r.ok then print(r.status, r.output) end
local uv = require "luv"
local task = require "resi.task"

local M = {}

--- The most output kept (its end), in bytes.
M.MAX_OUTPUT = 4096

---@class resi.process.result
---@field ok boolean  exit status 0 and no signal
---@field status integer  exit status (-1 when it could not start)
---@field signal integer  the signal that ended it, or 0
---@field output string  stdout and stderr together, the last MAX_OUTPUT bytes
---@field timed_out boolean

-- Collects a pipe's data, keeping the last MAX_OUTPUT bytes.
local function collector()
  local parts, size = {}, 0
  return function(data)
    if not data then return end
    parts[#parts + 1] = data
    size = size + #data
    if size > 2 * M.MAX_OUTPUT then
      local s = table.concat(parts):sub(-M.MAX_OUTPUT)
      parts, size = { s }, #s
    end
  end, function() return table.concat(parts):sub(-M.MAX_OUTPUT) end
end

--- Runs cmd with /bin/sh -c (stdin from /dev/null, stdout and stderr
--- captured together) and waits for it; opts.timeout (seconds, default
--- 60) kills it with SIGTERM. Never raises for the command's failure.
---@param cmd string
---@param opts? {timeout?: number}
---@return resi.process.result
function M.run(cmd, opts)
  if type(cmd) ~= "string" or cmd == "" then error("resi.process.run: cmd must be a non-empty string", 2) end
  local timeout = (opts and opts.timeout) or 60
  local pipes = { uv.new_pipe(false), uv.new_pipe(false) } -- stdout, stderr
  local add, text = collector()
  local handle, timer
  local code, signal, timed_out, spawn_err = task.await(function(finish)
    local fired = false
    local function done(...) -- once: the exit, or the timeout, whichever is first
      if fired then return end
      fired = true
      finish(...)
    end
    local pending, status, sig = 3, nil, nil -- the exit and both pipes' ends
    local function one()
      pending = pending - 1
      if pending == 0 then done(status, sig, false) end
    end
    local err
    handle, err = uv.spawn("/bin/sh", { args = { "-c", cmd }, stdio = { nil, pipes[1], pipes[2] } }, function(c, s)
      status, sig = c, s
      one()
    end)
    if not handle then
      done(-1, 0, false, err)
      return
    end
    for _, pipe in ipairs(pipes) do
      pipe:read_start(function(rerr, data)
        if rerr or not data then
          pipe:read_stop()
          one()
        else
          add(data)
        end
      end)
    end
    timer = uv.new_timer()
    timer:start(math.floor(timeout * 1000), 0, function()
      if handle and not handle:is_closing() then handle:kill("sigterm") end
      done(-1, 15, true)
    end)
  end)
  if timer then timer:stop(); timer:close() end
  if handle and not handle:is_closing() then handle:close() end
  for _, pipe in ipairs(pipes) do
    if not pipe:is_closing() then pipe:close() end
  end
  return { ok = code == 0 and signal == 0, status = code, signal = signal, output = spawn_err or text(),
    timed_out = timed_out == true }
end

return M
