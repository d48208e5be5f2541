--- resi.server: an HTTP/1.1 server. Each request runs its handler in its own
--- task, so a handler may sleep, make HTTP calls or wait on a rate limiter
--- without holding up other connections.
---
---   local srv = server.serve{host = "127.0.0.1", port = 0, handler = function(req)
---     return {status = 200, json = {hello = req.query.name}}
---   end}
---
--- The request: {method, url, path, query (decoded table), raw_query, headers
--- (lower-case), body, remote, http_version, keep_alive, exchange}. The
--- response: {status = 200, headers = {}, body = "..." | json = value}. A
--- handler may instead answer through req.exchange itself (reset(),
--- send_raw(bytes)) and return nothing.
local core = require "resi.server_core"
local task = require "resi.task"

local M = {}

--- Default limits: request line + headers, and body.
M.default_max_header = 16 * 1024
M.default_max_body = 1024 * 1024

local find, sub = string.find, string.sub

-- Decodes %XX escapes and + in a query component. (Plain finds here and
-- below: a pattern costs several times more, on every request.)
local function unescape(s)
  if not find(s, "%", 1, true) and not find(s, "+", 1, true) then return s end -- nothing to decode: the usual case
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end
M.unescape = unescape

--- Parses a query string into a table; a repeated key gives a list of values.
---@param raw string
---@return table<string, string|string[]>
function M.parse_query(raw)
  local q, pos, n = {}, 1, #raw
  while pos <= n do
    local amp = find(raw, "&", pos, true) or n + 1
    if amp > pos then -- a pair (empty ones between && are skipped)
      local pair = sub(raw, pos, amp - 1)
      local eq = find(pair, "=", 1, true)
      local k, v = unescape(eq and sub(pair, 1, eq - 1) or pair), unescape(eq and sub(pair, eq + 1) or "")
      local old = q[k]
      if old == nil then
        q[k] = v
      elseif type(old) == "table" then
        old[#old + 1] = v
      else
        q[k] = { old, v }
      end
    end
    pos = amp + 1
  end
  return q
end

-- Writes a handler's failure to stderr (through resi.log).
local function log_failure(req, err)
  require("resi.log").error("request handler failed", { method = req.method, path = req.path, error = err })
end

-- Turns what a handler returned into status, headers, body.
local function normalize(res)
  if type(res) ~= "table" then
    return 500, { ["Content-Type"] = "application/json" }, '{"error":"handler returned no response"}'
  end
  local headers = {}
  if res.headers then for k, v in pairs(res.headers) do headers[k] = v end end
  local body = res.body
  if res.json ~= nil then
    body = require("resi.json").encode(res.json)
    local has_type = false
    for k in pairs(headers) do if k:lower() == "content-type" then has_type = true end end
    if not has_type then headers["Content-Type"] = "application/json" end
  end
  return math.tointeger(res.status) or 200, headers, body and tostring(body) or ""
end

-- Runs one request's handler in its task and answers it.
local function run_handler(handler, exchange, req)
  local url = req.url
  local hash = find(url, "#", 1, true)
  if hash then url = sub(url, 1, hash - 1) end
  local qmark = find(url, "?", 1, true)
  req.path, req.raw_query = unescape(qmark and sub(url, 1, qmark - 1) or url), qmark and sub(url, qmark + 1) or ""
  req.query = M.parse_query(req.raw_query)
  req.exchange = exchange
  local ok, res = xpcall(handler, debug.traceback, req)
  if not exchange:open() then return end -- the handler answered (reset, raw) or the client left
  if not ok then
    if task.is_cancelled(res) then return exchange:reset() end
    log_failure(req, res)
    return exchange:respond(500, { ["Content-Type"] = "application/json" }, '{"error":"internal server error"}',
      req.method == "HEAD")
  end
  local status, headers, body = normalize(res)
  exchange:respond(status, headers, body, req.method == "HEAD")
end

---@class resi.server
---@field host string
---@field port integer
---@field url string  "http://host:port"
local Server = {}
Server.__index = Server

--- Stops accepting; idle connections close now, requests in progress are
--- answered first.
function Server:close() self.listener:close() end

--- Counters: open connections, connections accepted, requests received.
---@return table
function Server:stats() return self.listener:stats() end

--- Starts serving. Returns the server, or nil, message, code when the
--- address cannot be bound.
---@param opts {host?: string, port?: integer, handler: fun(req: table): table, max_header?: integer, max_body?: integer}
---@return resi.server|nil srv
---@return string|nil err
---@return string|nil code
function M.serve(opts)
  if type(opts) ~= "table" then error("resi.server.serve: expects a table of options", 2) end
  local handler = opts.handler
  if type(handler) ~= "function" then error("resi.server.serve: handler must be a function", 2) end
  local host = opts.host or "127.0.0.1"
  local port = opts.port or 0
  if math.type(port) ~= "integer" or port < 0 or port > 65535 then
    error("resi.server.serve: port must be an integer 0..65535", 2)
  end
  local function dispatch(exchange, req)
    task.spawn(function()
      local ok, err = pcall(run_handler, handler, exchange, req)
      if not ok and exchange:open() then
        -- a failure outside the handler (logging, encoding): never leave the client hanging
        exchange:respond(500, { ["Content-Type"] = "application/json" }, '{"error":"internal server error"}',
          req.method == "HEAD")
        io.stderr:write("resi.server: ", tostring(err), "\n")
      end
    end)
  end
  local listener, err, code = core.listen(host, port, dispatch,
    opts.max_header or M.default_max_header, opts.max_body or M.default_max_body)
  if not listener then return nil, err, code end
  local bound_host, bound_port = listener:address()
  local shown = bound_host:find(":", 1, true) and "[" .. bound_host .. "]" or bound_host
  return setmetatable({ listener = listener, host = bound_host, port = bound_port,
    url = "http://" .. shown .. ":" .. bound_port }, Server)
end

return M
