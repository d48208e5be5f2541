--- resi.pg: a PostgreSQL client that never blocks the loop (libpq through
--- resi.pg_core, runtime/pg.c). Everything that waits must run in a task.
---
---   local pg = require "resi.pg"
---   local conn = assert(pg.connect("postgresql://app:secret@db.example:5432/app"))
---   local rows = assert(conn:query("SELECT id, name FROM t WHERE id = $1", { 42 }))
---
--- Parameters only (PQsendQueryParams, text form, unnamed statements): no
--- SQL is ever built from values, and no session state is kept, so it works
--- behind PgBouncer in transaction mode. Queries on one connection run one
--- at a time in call order; conn:transaction takes the connection for
--- itself. Failures are values: nil, message, code where code is the
--- SQLSTATE ("23505"), "connection" (the connection is gone: conn:ok() is
--- false) or "timeout". Messages and tostring never show the password.
local core = require "resi.pg_core"
local task = require "resi.task"
local fifo = require "resi.pg.fifo"
local uv = require "luv"
local resi_core = require "resi.core"

local M = {}

local raise = require("resi.caller_error")("resi.pg")
local pack, unpack = table.pack, table.unpack

--- The value that stands for SQL NULL in parameters.
M.null = core.null

--- Options resi adds unless the URL sets them: a dead server or network is
--- noticed in seconds (TCP keepalives, tcp_user_timeout), connects time out.
M.defaults = {
  keepalives = "1", keepalives_idle = "5", keepalives_interval = "2", keepalives_count = "3",
  tcp_user_timeout = "10000", connect_timeout = "10", application_name = "resi",
}

---@class resi.pg.result: table[]
---@field columns string[]   column names, in order
---@field affected integer|nil  rows affected or returned (PQcmdTuples), when the command reports it
---@field command string|nil    the command tag ("INSERT 0 1", "COMMIT", "ROLLBACK")

---@class resi.pg.conn
---@field server_version integer  e.g. 150008
local Conn = {}
Conn.__index = Conn
Conn.__name = "resi.pg.conn"

-- The password of each connection, for scrubbing messages (weak keys: never
-- a field of the object, so no dump of it shows the password).
local secrets = setmetatable({}, { __mode = "k" })

-- Replaces every occurrence of the password in msg with "***".
local function scrub(msg, password)
  if password == nil or password == "" or type(msg) ~= "string" then return msg end
  local out, i = {}, 1
  while true do
    local s, e = msg:find(password, i, true)
    if not s then break end
    out[#out + 1] = msg:sub(i, s - 1) .. "***"
    i = e + 1
  end
  out[#out + 1] = msg:sub(i)
  return table.concat(out)
end

-- Splits a libpq comma list ("a,b") into its items.
local function split(s)
  local list = {}
  for item in (s .. ","):gmatch("([^,]*),") do list[#list + 1] = item end
  return list
end

-- Whether host is an IP address literal (nothing to resolve).
local function is_address(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

-- Waits for an operation started by start(t, token) (which returns what
-- on_cancel needs), at most seconds; returns its wake values, or nothing
-- at all when time ran out. stop(x) aborts it on cancel or timeout.
local function wait_for(what, seconds, start, stop)
  local t, token = task.prepare(what)
  local x = start(t, token)
  local timer = seconds and resi_core.timer(seconds * 1000, t, token)
  local r = pack(task.suspend(t, function()
    if timer then timer:stop() end
    if stop then stop(x) end
  end))
  if timer then timer:stop() end
  if r.n == 0 and stop then stop(x) end
  return r
end

-- Resolves host with libuv (thread pool) within seconds; returns a list of
-- addresses or nil, message.
local function resolve(host, seconds)
  local r = wait_for("resi.pg.connect", seconds, function(t, token)
    uv.getaddrinfo(host, nil, { socktype = "stream" }, function(err, res) task.wake(t, token, err, res) end)
  end)
  if r.n == 0 then return nil, ("resolving %q timed out"):format(host) end
  local err, res = r[1], r[2]
  if err or not res or #res == 0 then return nil, ("cannot resolve %q: %s"):format(host, tostring(err or "no address")) end
  local list, seen = {}, {}
  for _, a in ipairs(res) do
    if not seen[a.addr] then list[#list + 1], seen[a.addr] = a.addr, true end
  end
  return list
end

-- Fills in hostaddr for every named host (libpq then never resolves).
-- Returns true or nil, message.
local function add_addresses(opts, seconds)
  if opts.hostaddr or not opts.host or opts.host == "" then return true end
  local hosts, ports = split(opts.host), split(opts.port or "")
  if #ports ~= 1 and #ports ~= #hosts then return nil, "host and port lists differ in length" end
  local out_h, out_a, out_p = {}, {}, {}
  for i, h in ipairs(hosts) do
    local port = ports[#ports == 1 and 1 or i]
    if h:sub(1, 1) == "/" or h:sub(1, 1) == "@" then -- a unix socket directory: nothing to resolve
      out_h[#out_h + 1], out_a[#out_a + 1], out_p[#out_p + 1] = h, "", port
    else
      local addrs, err = { h }, nil
      if not is_address(h) then addrs, err = resolve(h, seconds) end
      if not addrs then return nil, err end
      for _, a in ipairs(addrs) do
        out_h[#out_h + 1], out_a[#out_a + 1], out_p[#out_p + 1] = h, a, port
      end
    end
  end
  opts.host, opts.hostaddr = table.concat(out_h, ","), table.concat(out_a, ",")
  if opts.port then opts.port = table.concat(out_p, ",") end
  return true
end

-- "user@host:port/db" for messages and tostring (never the password).
local function label(o)
  local host = o.host or "/var/run/postgresql"
  local user = o.user or (uv.os_get_passwd() or {}).username or "?" -- libpq's default: the OS user
  return ("%s@%s:%s/%s"):format(user, host, o.port or "5432", o.dbname or user)
end

-- A positive number of seconds from an option, or the default; raises
-- naming the field.
local function seconds_opt(field, v, default)
  if v == nil then return default end
  if type(v) ~= "number" or v ~= v or v <= 0 then raise(field .. " must be a positive number of seconds") end
  return v
end

--- Connects. url: `postgresql://user:pass@host:port/db?...` or a libpq
--- conninfo string. opts.timeout: seconds for the whole connect (default
--- the URL's connect_timeout, else 10). Returns the connection, or nil,
--- message, "connection" (the message names host:port, never the password).
---@async
---@param url string
---@param opts? {timeout?: number}
---@return resi.pg.conn|nil conn
---@return string|nil message
---@return string|nil code
function M.connect(url, opts)
  if type(url) ~= "string" then raise("connect: url must be a string, got " .. type(url)) end
  if opts ~= nil and type(opts) ~= "table" then raise("connect: opts must be a table") end
  opts = opts or {}
  local timeout = seconds_opt("connect: timeout", opts.timeout, nil)
  local parsed, perr = core.parse(url)
  if not parsed then return nil, "resi.pg: bad connection string: " .. perr, "connection" end
  local password = parsed.password
  for k, v in pairs(M.defaults) do
    if parsed[k] == nil then parsed[k] = v end
  end
  timeout = timeout or tonumber(parsed.connect_timeout) or 10
  if timeout <= 0 then timeout = 10 end -- libpq: 0 means no limit; resi always has one
  local where = label(parsed)
  local start = uv.hrtime()
  local ok, rerr = add_addresses(parsed, timeout)
  if not ok then return nil, scrub("resi.pg: " .. where .. ": " .. rerr, password), "connection" end
  local keys, values = {}, {}
  for k, v in pairs(parsed) do keys[#keys + 1], values[#values + 1] = k, v end
  local left = math.max(0.001, timeout - (uv.hrtime() - start) / 1e9)
  local h, err, code
  local r = wait_for("resi.pg.connect", left, function(t, token)
    h, err, code = core.connect(keys, values, t, token)
    if not h then task.wake(t, token, nil, err, code) end
    return h
  end, function(x) if x then x:close() end end)
  if r.n == 0 then
    return nil, ("resi.pg: %s: connect timed out after %gs"):format(where, timeout), "connection"
  end
  if not r[1] then
    if h then h:close() end
    return nil, scrub(("resi.pg: %s: %s"):format(where, r[2]), password), r[3]
  end
  local conn = setmetatable({ h = h, where = where, lock = fifo.new(), server_version = h:server_version() }, Conn)
  secrets[conn] = password
  return conn
end

--- Is the connection up (as far as is known without a round trip)?
---@return boolean
function Conn:ok() return self.h:ok() end

--- Closes the connection (idempotent); a query in flight fails with "connection".
function Conn:close() self.h:close() end

Conn.__close = Conn.close

function Conn:__tostring()
  return ("resi.pg.conn %s%s"):format(self.where, self.h:ok() and "" or " (closed)")
end

-- Sends one query and waits for its result (the caller holds the lock).
local function run(self, sql, params, n, timeout)
  local h = self.h
  local sent, bad, bad_code
  local r = wait_for("resi.pg: conn:query", timeout, function(t, token)
    sent, bad, bad_code = h:send(sql, params, n, t, token)
    if sent == nil then task.wake(t, token, nil, bad, bad_code) end
    if sent == false then task.wake(t, token, false) end
    return h
  end, function(x) x:close() end)
  if sent == false then raise("query: " .. bad) end
  if r.n == 0 then
    return nil, ("resi.pg: %s: query timed out after %gs (cancelled; the connection is closed)"):format(self.where, timeout), "timeout"
  end
  if r[1] == nil then return nil, scrub("resi.pg: " .. tostring(r[2]), secrets[self]), r[3] end
  return r[1]
end

-- Checks query's arguments; returns the parameter count and timeout.
local function check_query(sql, params, opts)
  if type(sql) ~= "string" then raise("query: sql must be a string, got " .. type(sql)) end
  if params ~= nil and type(params) ~= "table" then raise("query: params must be a table (a list), got " .. type(params)) end
  if opts ~= nil and type(opts) ~= "table" then raise("query: opts must be a table") end
  local n = 0
  if params then
    n = params.n or #params
    if math.type(n) ~= "integer" or n < 0 then raise("query: params.n must be a non-negative integer") end
  end
  return n, opts and seconds_opt("query: opts.timeout", opts.timeout, nil)
end

-- pcall's results with their count.
local function packed(ok, ...) return { n = select("#", ...) + 1, ok, ... } end

--- Runs one statement with parameters $1..$n (params: a list; pg.null or
--- params.n for NULLs). Waits its turn behind other tasks' queries on this
--- connection. opts.timeout: seconds, after which the query is cancelled
--- on the server, the connection closed and nil, message, "timeout" returned.
---@async
---@param sql string
---@param params? any[]
---@param opts? {timeout?: number}
---@return resi.pg.result|nil result
---@return string|nil message
---@return string|nil code
function Conn:query(sql, params, opts)
  local n, timeout = check_query(sql, params, opts)
  params = params or {}
  local lock = self.lock
  if lock:held_by() then return run(self, sql, params, n, timeout) end
  lock:acquire("resi.pg: conn:query")
  local r = packed(pcall(run, self, sql, params, n, timeout))
  lock:release()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

-- Ends a transaction after fn returned (r: packed pcall results).
local function finish_transaction(self, r)
  if not r[1] then
    -- a cancelled task cannot wait for a ROLLBACK: closing the connection
    -- makes the server roll back, and no other task inherits the transaction
    local rolled = false
    if self:ok() and not task.is_cancelled(r[2]) then
      local ok, res = pcall(run, self, "ROLLBACK", {}, 0)
      rolled = ok and res ~= nil
    end
    if not rolled then self:close() end
    error(r[2], 0)
  end
  local res, msg, code = run(self, "COMMIT", {}, 0)
  if not res then return nil, msg, code end
  if res.command == "ROLLBACK" then
    return nil, "resi.pg: the transaction was rolled back (a statement in it failed)", "25P02"
  end
  return unpack(r, 2, r.n)
end

-- BEGIN, fn, COMMIT (the caller holds the lock).
local function transact(self, fn, ...)
  local res, msg, code = run(self, "BEGIN", {}, 0)
  if not res then return nil, msg, code end -- fn is not run
  return finish_transaction(self, packed(pcall(fn, self, ...)))
end

--- Runs fn(conn, ...) inside BEGIN ... COMMIT, holding the connection (other
--- tasks' queries wait until it ends). An error in fn rolls back and is
--- re-raised; fn's results are returned after COMMIT. A failed BEGIN or
--- COMMIT returns nil, message, code (a COMMIT that PostgreSQL turned into
--- a rollback, because a statement failed, gives code "25P02").
---@async
---@param fn fun(conn: resi.pg.conn, ...): ...
---@param ... any passed to fn after the connection
---@return any ...
function Conn:transaction(fn, ...)
  if type(fn) ~= "function" then raise("transaction: fn must be a function, got " .. type(fn)) end
  local lock = self.lock
  if lock:held_by() then raise("transaction: this task already holds the connection (nested transaction)") end
  lock:acquire("resi.pg: conn:transaction")
  local r = packed(pcall(transact, self, fn, ...))
  lock:release()
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

--- A reconnecting handle (lualib/resi/pg/client.lua): the same query,
--- transaction, close and ok methods; connects on first use and after a
--- lost connection, with backoff.
---@param url string
---@param opts? {timeout?: number}
---@return table
function M.client(url, opts) return require("resi.pg.client").new(M, url, opts) end

--- "user@host:port/db" of a connection string, for messages (never the
--- password); "(bad connection string)" when libpq cannot parse it.
---@param url string
---@return string
function M.describe(url)
  local o = core.parse(url)
  return o and label(o) or "(bad connection string)"
end

return M
