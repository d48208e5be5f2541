--- resi.health: a daemon's probe and metrics listener, on resi.server.
---
---   local srv = assert(health.serve { port = 9464, registry = reg,
---     ready = function() return store_ok, "store not writable" end })
---
--- GET or HEAD:
---   /livez, /healthz  200 "ok": the loop answered (no dependency is checked,
---                     so an outage elsewhere never restarts the daemon)
---   /readyz           200 "ok", or 503 "not ready: <why>" when ready()
---                     returns false (or raises, or takes over ready_timeout)
---   /metrics          the registry in the Prometheus text format 0.0.4
--- `?verbose` on /livez and /readyz prints Kubernetes-style check lines
--- ("[+]ping ok"). Any other path is 404, another method 405. Status codes are
--- the answer; the bodies are for humans.
---
--- The listener binds loopback (127.0.0.1) unless told otherwise; any other
--- address is refused unless allow_remote = true, because /metrics tells
--- whoever asks which jobs run and when.
local server = require "resi.server"
local task = require "resi.task"
local metrics = require "resi.metrics"

local M = {}

--- Seconds a ready() check may take before /readyz answers 503.
M.default_ready_timeout = 5

--- Lines /metrics writes between letting the loop run (see registry:render).
M.yield_every = 2000

local TEXT = "text/plain; charset=utf-8"

--- Is host a loopback address (127.0.0.0/8, ::1) or "localhost"?
---@param host string
---@return boolean
function M.is_loopback(host)
  if host == "localhost" or host == "::1" then return true end
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  return tonumber(a) == 127 and tonumber(b) < 256 and tonumber(c) < 256 and tonumber(d) < 256
end

--- Splits a listen address: "9464" and ":9464" (loopback), "127.0.0.1:9464",
--- "localhost:9464", "[::1]:9464", "0.0.0.0:9464". Returns host, port or nil,
--- message.
---@param addr string
---@return string|nil host
---@return integer|string port_or_err
function M.parse_addr(addr)
  if type(addr) ~= "string" then return nil, "address must be a string" end
  local host, port = addr:match("^%[([%x:.]+)%]:(%d+)$")
  if not host then host, port = addr:match("^([^:%[%]]*):(%d+)$") end
  if not host then host, port = "", addr:match("^(%d+)$") end
  port = port and math.tointeger(tonumber(port))
  if not port or port > 65535 then
    return nil, ("bad address %q: expected PORT, HOST:PORT or [IPv6]:PORT"):format(addr)
  end
  if host == "" then host = "127.0.0.1" end
  return host, port
end

-- A plain-text response.
local function text(status, body, headers)
  local h = { ["Content-Type"] = TEXT, ["Cache-Control"] = "no-store" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return { status = status, headers = h, body = body }
end

-- Is ?verbose (with or without a value) in the request?
local function verbose(req) return req.query.verbose ~= nil end

-- /livez and /healthz: answering is the check.
local function livez(req, name)
  if verbose(req) then return text(200, "[+]ping ok\n" .. name .. " check passed\n") end
  return text(200, "ok\n")
end

-- Runs ready() within timeout seconds: true, or false and why.
local function check_ready(ready, timeout)
  local ok, done, good, why = pcall(task.timeout, timeout, function() return true, ready() end)
  if not ok then
    if task.is_cancelled(done) then error(done, 0) end
    return false, "ready check failed: " .. tostring(done)
  end
  if not done then return false, ("ready check took over %g s"):format(timeout) end
  if good then return true end
  return false, why ~= nil and tostring(why) or "not ready"
end

-- /readyz: 200 when ready() says so, 503 with the reason otherwise.
local function readyz(req, opts)
  local ok, why = true, nil
  if opts.ready then ok, why = check_ready(opts.ready, opts.ready_timeout or M.default_ready_timeout) end
  why = why and why:gsub("[\r\n]+", " ")
  if verbose(req) then
    if ok then return text(200, "[+]ready ok\nreadyz check passed\n") end
    return text(503, "[-]ready failed: " .. why .. "\nreadyz check failed\n")
  end
  if ok then return text(200, "ok\n") end
  return text(503, "not ready: " .. why .. "\n")
end

-- /metrics: the registry's text, or 500 when a collector failed.
local function metrics_page(opts)
  local ok, body = pcall(opts.registry.render, opts.registry, { yield_every = M.yield_every })
  if not ok then
    if task.is_cancelled(body) then error(body, 0) end
    require("resi.log").error("health: /metrics failed", { error = tostring(body) })
    return text(500, "metrics failed: " .. tostring(body):gsub("[\r\n]+", " ") .. "\n")
  end
  return { status = 200, headers = { ["Content-Type"] = metrics.CONTENT_TYPE, ["Cache-Control"] = "no-store" },
    body = body }
end

-- The request handler for opts.
local function handler_for(opts)
  local routes = {
    ["/livez"] = function(req) return livez(req, "livez") end,
    ["/healthz"] = function(req) return livez(req, "healthz") end,
    ["/readyz"] = function(req) return readyz(req, opts) end,
    ["/metrics"] = opts.registry and function() return metrics_page(opts) end or nil,
  }
  return function(req)
    local route = routes[req.path]
    if not route then return text(404, "not found\n") end
    if req.method ~= "GET" and req.method ~= "HEAD" then
      return text(405, "method not allowed\n", { Allow = "GET, HEAD" })
    end
    return route(req)
  end
end

-- Checks serve's options; raises on a programmer error.
local function check_options(opts)
  if type(opts) ~= "table" then error("resi.health.serve: expects a table of options", 3) end
  if opts.registry ~= nil and (type(opts.registry) ~= "table" or type(opts.registry.render) ~= "function") then
    error("resi.health.serve: registry must be a resi.metrics registry", 3)
  end
  if opts.ready ~= nil and type(opts.ready) ~= "function" then
    error("resi.health.serve: ready must be a function returning ok, why", 3)
  end
  local t = opts.ready_timeout
  if t ~= nil and not (type(t) == "number" and t > 0) then
    error("resi.health.serve: ready_timeout must be a positive number of seconds", 3)
  end
end

--- Starts the listener. Returns the resi.server (url, port, close()), or
--- nil, message, code: "remote" for a non-loopback host without
--- allow_remote = true, "address" for a host that is not an IP address or
--- localhost, else resi.server's code (EADDRINUSE, ...).
---@param opts {host?: string, port?: integer, registry?: resi.metrics.registry, ready?: fun(): (boolean, string?), ready_timeout?: number, allow_remote?: boolean}
---@return resi.server|nil srv
---@return string|nil err
---@return string|nil code
function M.serve(opts)
  check_options(opts)
  local host = opts.host or "127.0.0.1"
  if host == "localhost" then host = "127.0.0.1" end
  if not (host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true)) then
    return nil, ("health: host %q is not an IP address (or localhost)"):format(host), "address"
  end
  if not M.is_loopback(host) and opts.allow_remote ~= true then
    return nil, ("health: refusing to listen on %s: not a loopback address (the metrics name every job); "
      .. "pass allow_remote = true to expose it"):format(host), "remote"
  end
  return server.serve { host = host, port = opts.port or 0, handler = handler_for(opts),
    max_header = 8192, max_body = 1024 }
end

return M
