--- spec/support/notify_receivers.lua: real receivers on loopback for the
--- resi.notify specs: resi.server receivers that keep every request (Slack,
--- Discord, Telegram shapes are checked by the specs), Python servers
--- (notify_webhook.py, notify_smtp.py) run under Debian's python3, and
--- capturing resi.log into a string.
local server = require "resi.server"
local uv = require "luv"

local M = {}

--- Debian's python3 (which has python3-aiosmtpd), not a PATH shim.
M.PYTHON = uv.fs_stat("/usr/bin/python3") and "/usr/bin/python3" or "python3"

--- The repository root.
function M.root()
  local init = assert(package.searchpath("resi", package.path))
  return assert(init:match("^(.*)/lualib/resi/init%.lua$"))
end

--- A resi.server receiver: handler(req, n) answers the nth request (default
--- 200 "ok"); every request is kept in r.requests with r.times (monotonic).
---@param handler? fun(req: table, n: integer): table|nil
---@return table r {url=, requests=, times=, close=}
function M.http(handler)
  local r = { requests = {}, times = {} }
  r.srv = assert(server.serve { handler = function(req)
    local n = #r.requests + 1
    r.requests[n], r.times[n] = req, resi.monotonic()
    if handler then return handler(req, n) end
    return { status = 200, body = "ok" }
  end })
  r.url = r.srv.url
  function r.close() r.srv:close() end
  return r
end

--- Starts `python3 script args...` with a pipe on stdin (the server stops
--- when it closes) and waits for the port on its first stdout line.
---@param script string path under spec/support
---@param args string[]
---@return table p {port=, stop=fn, output=fn}
function M.python(script, args)
  local stdin, stdout, stderr = uv.new_pipe(), uv.new_pipe(), uv.new_pipe()
  local argv = { M.root() .. "/spec/support/" .. script }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  local p = { out = {}, err = {} }
  local handle, perr = uv.spawn(M.PYTHON, { args = argv, stdio = { stdin, stdout, stderr } }, function(code)
    p.exited = code
  end)
  assert(handle, perr)
  stderr:read_start(function(_, data) if data then p.err[#p.err + 1] = data end end)
  p.port = resi.await(function(done)
    local buf = ""
    stdout:read_start(function(_, data)
      if not data then return done(nil) end
      buf = buf .. data
      local line = buf:match("^(%d+)\n")
      if line and not p.port_seen then
        p.port_seen = true
        done(tonumber(line))
      end
    end)
  end)
  assert(p.port, "python receiver did not start: " .. table.concat(p.err))
  function p.stop()
    if stdin:is_closing() then return end
    stdin:shutdown(function() stdin:close() end)
    for _ = 1, 100 do
      if p.exited then break end
      resi.sleep(0.02)
    end
    if not p.exited then handle:kill("sigkill") end
    for _, pipe in ipairs { stdout, stderr } do if not pipe:is_closing() then pipe:close() end end
    if not handle:is_closing() then handle:close() end
  end
  function p.output() return table.concat(p.err) end
  return p
end

--- Runs fn with resi.log writing JSON lines (at debug level) to a temporary
--- file; returns the text logged and fn's first result.
---@param fn function
---@return string text, any result
function M.capture_log(fn)
  local log = require "resi.log"
  local path = os.tmpname()
  local f = assert(io.open(path, "w+"))
  local previous = log.configure { file = f, format = "json", level = "debug" }
  local ok, res = pcall(fn)
  log.configure(previous)
  f:seek("set")
  local text = f:read("a")
  f:close()
  os.remove(path)
  if not ok then error(res, 0) end
  return text, res
end

--- A temporary directory (removed by the caller with rm -r).
---@return string
function M.tmpdir()
  return assert(uv.fs_mkdtemp("/tmp/resi-notify.XXXXXX"))
end

--- Reads a whole file (resi.fs.read).
M.read = require("resi.fs").read

return M
