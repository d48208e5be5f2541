--- resi.store.postgres: the store on PostgreSQL, for several daemons on
--- several machines sharing one database. `store.open("postgresql://...")`
--- returns a db with the same methods as a SQLite one (get, set, add,
--- delete, list, transaction, the run table, leases, close); the tables
--- and statements are the same (resi.store.pg_schema has the types).
---
--- The connection is resi.pg's reconnecting client (non-blocking libpq;
--- Debian's lua-sql-postgres and lua-dbi-postgresql block the loop for
--- every round trip, so they are not used). Every method waits for the
--- database and so must be called inside a task (a script's main chunk,
--- the REPL's entries, resi.task.spawn): called outside one it raises
--- "resi.store: ...: PostgreSQL store calls wait for the database: call
--- them inside a task". A statement that takes longer than opts.timeout
--- (default 10 s) is cancelled and raises code "timeout"; a lost
--- connection raises code "unavailable" (the next call reconnects, with
--- backoff; a write that failed that way may or may not have committed:
--- every write of the run table is idempotent, so callers retry).
---
--- Values are stored as bytea (any bytes); keys and namespaces are text
--- and must be valid UTF-8 here (SQLite takes any bytes). Errors are the
--- same objects as SQLite's {kind="store", code=, path=, message=}; path
--- is the URL without its password, which no message ever contains.
local task = require "resi.task"
local schema = require "resi.store.pg_schema"

local M = {}

local ERROR = { __name = "resi.store.error" }
ERROR.__tostring = function(e) return e.message end

--- The URL without its password (user:pass@ -> user@; password=... dropped).
---@param url string
---@return string
function M.redact(url)
  local out = url:gsub("^(%a+://[^:/@]*):[^@]*@", "%1@")
  out = out:gsub("([?&])password=[^&]*&?", "%1"):gsub("[?&]$", "")
  return out
end

-- A store error object for this db (never with the password: the
-- driver's messages are scrubbed and path is redacted).
local function store_error(path, code, text, sqlstate)
  return setmetatable({ kind = "store", code = code, path = path, sqlstate = sqlstate,
    message = ("resi.store: %s: %s"):format(path, tostring(text)) }, ERROR)
end

-- The store code for a driver failure code.
local function code_of(code)
  if code == "connection" then return "unavailable" end
  if code == "timeout" then return "timeout" end
  if code == "23505" then return "constraint" end
  if code == "40001" or code == "40P01" or code == "55P03" then return "busy" end
  return "postgres"
end

---@class resi.store.pgconn
local Conn = {}
Conn.__index = Conn

-- The connection a statement of the current task goes to: the open
-- transaction's when this task holds it, else the client.
local function target(self)
  local db = self.db
  if db.tx and db.owner == (task.current() or coroutine.running()) then return db.tx end
  return db.client
end

-- Runs one statement with the parameters (nil -> NULL); raises a store error.
local function query(self, sql, n, ...)
  local db = self.db
  if db.closed then error(store_error(db.path, "closed", "the database is closed"), 0) end
  if not task.current() then
    error(store_error(db.path, "notask", "PostgreSQL store calls wait for the database: call them inside a task"), 0)
  end
  local pg = require "resi.pg"
  local params = { n = n, ... }
  for i = 1, n do if params[i] == nil then params[i] = pg.null end end
  local res, msg, code = target(self):query(sql, params, { timeout = db.timeout })
  if res == nil then error(store_error(db.path, code_of(code), msg, code), 0) end
  return res
end

--- The first row of a statement, or nil.
---@async
---@param sql string
---@param ... any the statement's parameters
---@return table|nil row
function Conn:first(sql, ...) return query(self, sql, select("#", ...), ...)[1] end

--- Every row of a statement, as a plain array.
---@async
---@param sql string
---@param ... any the statement's parameters
---@return table[]
function Conn:rows(sql, ...)
  local res, out = query(self, sql, select("#", ...), ...), {}
  for i = 1, #res do out[i] = res[i] end
  return out
end

--- Runs a statement; returns how many rows it changed.
---@async
---@param sql string
---@param ... any the statement's parameters
---@return integer changed
function Conn:run(sql, ...) return query(self, sql, select("#", ...), ...).affected or 0 end

--- Runs one statement without parameters.
---@async
---@param sql string
function Conn:exec(sql) query(self, sql, 0) end

--- Is the store open (not closed; the connection itself may be down)?
function Conn:is_open() return not self.db.closed end

-- Hex text of bytes, as PostgreSQL's bytea input ("\x...").
local function to_bytea(s)
  return "\\x" .. s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
end

-- Bytes from bytea's hex output ("\x...").
local function from_bytea(v)
  if v:sub(1, 2) ~= "\\x" then return v end
  return (v:sub(3):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

-- pcall's results as a table with their count.
local function packed(ok, ...) return { n = select("#", ...) + 1, ok, ... } end

-- Makes the db class for PostgreSQL stores on top of the SQLite one's
-- methods (they only use self:_enter()'s first/rows/run).
local function class(DB)
  local PG = setmetatable({}, { __index = DB })
  PG.__index = PG
  PG.__close = function(self) self:close() end
  PG.__tostring = function(self)
    return ("resi.store.db (%s%s)"):format(self.path, self.closed and ", closed" or "")
  end
  function PG:_blob(text) return to_bytea(text) end
  function PG:_unblob(v) return from_bytea(v) end
  -- An ordinary, durable statement: PostgreSQL stores claim at the slot's
  -- time (lease mode), so no start marks are written on them.
  function PG:_first_unsynced(sql, ...) return self:_enter():first(sql, ...) end

  -- A transaction inside another of the same task: a savepoint.
  local function nested(self, fn, ...)
    self.conn:exec("SAVEPOINT resi_nested")
    self.depth = self.depth + 1
    local res = packed(pcall(fn, self, ...))
    self.depth = self.depth - 1
    if res[1] then
      self.conn:exec("RELEASE SAVEPOINT resi_nested")
      return table.unpack(res, 2, res.n)
    end
    if self.tx and self.tx:ok() then pcall(self.conn.exec, self.conn, "ROLLBACK TO SAVEPOINT resi_nested") end
    error(res[2], 0)
  end

  --- Runs fn(db, ...) in a transaction on one connection (BEGIN ...
  --- COMMIT): commits when fn returns and returns its results; rolls
  --- back and re-raises when fn raises. Nested calls are savepoints.
  --- Other tasks' calls on this db wait until it ends. Keep it short: a
  --- transaction holds the connection, and a lost connection fails it.
  function PG:transaction(fn, ...)
    if type(fn) ~= "function" then error("resi.store: db:transaction: expected a function, got " .. type(fn), 2) end
    self:_enter()
    if self.depth > 0 then return nested(self, fn, ...) end
    if not task.current() then
      error(store_error(self.path, "notask", "PostgreSQL store calls wait for the database: call them inside a task"), 0)
    end
    self.owner, self.depth = task.current(), 1
    local args = packed(true, ...)
    local res
    local ok, out, msg, code = pcall(self.client.transaction, self.client, function(c)
      self.tx = c
      res = packed(pcall(fn, self, table.unpack(args, 2, args.n)))
      self.tx = nil
      if not res[1] then error(res[2], 0) end
      return true
    end)
    self.tx, self.depth = nil, 0
    DB._release(self)
    if not ok then error(out, 0) end
    if out == nil then error(store_error(self.path, code_of(code), msg, code), 0) end
    return table.unpack(res, 2, res.n)
  end

  --- Closes the connection; a second call does nothing.
  function PG:close()
    if self.closed then return end
    self.closed = true
    self.client:close()
    self.depth = 0
    DB._release(self)
  end

  --- Is the store open?
  function PG:is_open() return not self.closed end
  return PG
end

local classes = setmetatable({}, { __mode = "k" })

-- Runs one statement on c (a client or a connection), raising a store error.
local function raw_query(path, c, timeout)
  return function(sql, params)
    local res, msg, code = c:query(sql, params or {}, { timeout = timeout })
    if res == nil then error(store_error(path, code_of(code), msg, code), 0) end
    return res
  end
end

--- Opens the PostgreSQL store at url (migrating its schema; refusing one
--- from a newer resi). opts.timeout: seconds a statement may take
--- (default 10); opts.connect_timeout (default 10). Must run in a task.
---@param url string
---@param opts? {timeout?: number, connect_timeout?: number}
---@param DB table  resi.store's db class
---@return resi.store.db
function M.open(url, opts, DB)
  opts = opts or {}
  local path = M.redact(url)
  if not task.current() then
    error(store_error(path, "notask", "PostgreSQL store calls wait for the database: open it inside a task"), 0)
  end
  local ok, pg = pcall(require, "resi.pg")
  if not ok then error(store_error(path, "unsupported", "the PostgreSQL driver is not available: " .. tostring(pg)), 0) end
  local client = pg.client(url, { timeout = opts.connect_timeout or 10 })
  local timeout = opts.timeout or 10
  local q = raw_query(path, client, timeout)
  local set_up, err = pcall(schema.apply, q, function(fn)
    local res, msg, code = client:transaction(function(c) fn(raw_query(path, c, timeout)) return true end)
    if res == nil then error(store_error(path, code_of(code), msg, code), 0) end
  end, function(code, text) error(store_error(path, code, text), 0) end)
  if not set_up then
    client:close()
    error(err, 0)
  end
  classes[DB] = classes[DB] or class(DB)
  local db = setmetatable({ path = path, client = client, depth = 0, owner = nil, waiters = {}, timeout = timeout,
    dialect = "postgres", shared = true }, classes[DB])
  db.conn = setmetatable({ db = db }, Conn)
  return db
end

--- The schema version this resi writes on PostgreSQL.
M.schema_version = schema.latest

return M
