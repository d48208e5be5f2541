--- resi.store: state that survives restarts, in one SQLite file, or in a
--- PostgreSQL database shared by several machines (a `postgresql://` URL:
--- resi.store.postgres; the same methods, schema and statements). On
--- PostgreSQL every call waits for the database, so it must run inside a
--- task: called outside one (in a bare luv callback) it raises a store
--- error with code "notask" and does nothing. db.shared is true there.
---
--- `store.open(path?)` opens (creating when missing) the database; the
--- default is `$XDG_STATE_HOME/resi/resi.db`, or `~/.local/state/resi/resi.db`.
--- Directories it creates are 0700 and the file 0600: the store holds job
--- history and whatever scripts keep there, which may include account data.
---
--- The file is in WAL mode with `synchronous=FULL` for the whole connection:
--- every commit (a run's claim above all) is on disk before the call
--- returns, so a power cut cannot lose a claimed run and run it twice.
--- SQLite's calls block the event loop while they work; on a local file in
--- WAL mode a read takes microseconds and a commit one fsync (see
--- runtime/sqlite.c), so transactions are kept short: never make HTTP calls
--- inside db:transaction.
---
--- Values (db:set) are any value resi.json can encode, stored as its JSON
--- text: integers stay exact to 64 bits, strings keep every byte, arrays
--- stay arrays; a float with no fraction comes back as an integer (1.0 -> 1).
---
--- One db may be shared by the tasks of a process: while one task is inside
--- db:transaction, the statements of other tasks wait for it to end (so a
--- transaction must not wait on another task that uses the same db).
--- Errors from the database are raised as objects {kind="store", code=,
--- path=, message=} (code: "busy", "readonly", "corrupt", "notadb",
--- "cantopen", "full", "ioerr", "schema", "closed", ...) whose text names
--- the file.
local core = require "resi.sqlite_core"
local json = require "resi.json"
local task = require "resi.task"
local uv = require "luv"
local migrations = require "resi.store.migrations"

local M = {}

---@class resi.store.db
---@field path string  the database file
---@field conn table   the driver connection (resi.sqlite_core), for resi's own modules
local DB = {}
DB.__index = DB

--- The SQLite library's version.
M.sqlite_version = core.version

--- The schema version this resi writes.
M.schema_version = migrations.latest

-- Raises the store error for path.
local function fail(code, path, text)
  error(core.error(code, path, text), 0)
end

-- Raises "resi.store: db:NAME: ..." for a bad argument of a method, at
-- the method's caller (depth: helpers between the method and this).
local function bad_arg(name, text, depth)
  error(("resi.store: db:%s: %s"):format(name, text), 3 + (depth or 0))
end

-- Checks that v is a string argument of db:name.
local function check_string(name, what, v)
  if type(v) ~= "string" then bad_arg(name, ("%s must be a string, got %s"):format(what, type(v)), 1) end
end

--- Is name a PostgreSQL store (a `postgresql://` or `postgres://` URL)
--- rather than a SQLite file?
---@param name string
---@return boolean
function M.is_url(name)
  return type(name) == "string" and (name:match("^postgresql://") or name:match("^postgres://")) ~= nil
end

--- The default database path: $RESI_STORE when set and not empty, else
--- $XDG_STATE_HOME/resi/resi.db, or ~/.local/state/resi/resi.db when
--- XDG_STATE_HOME is unset, empty or not absolute (the XDG rule).
---@return string
function M.default_path()
  local env = os.getenv("RESI_STORE")
  if env ~= nil and env ~= "" then return env end
  local state = os.getenv("XDG_STATE_HOME")
  if state == nil or state:sub(1, 1) ~= "/" then
    local home = os.getenv("HOME")
    if home == nil or home == "" then
      error("resi.store: neither XDG_STATE_HOME nor HOME is set: pass a path to store.open", 2)
    end
    state = home .. "/.local/state"
  end
  return state .. "/resi/resi.db"
end

-- The directory part of path ("." for a bare name).
local function dirname(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir == nil then return "." end
  return dir == "" and "/" or dir
end

-- Creates dir and its missing parents, each 0700; raises naming path.
local function make_dirs(dir, path)
  local st = uv.fs_stat(dir)
  if st then
    if st.type ~= "directory" then fail("cantopen", path, dir .. " is not a directory") end
    return
  end
  if dir ~= "/" and dir ~= "." then make_dirs(dirname(dir), path) end
  local ok, err, code = uv.fs_mkdir(dir, 448) -- 0700
  if not ok and code ~= "EEXIST" then
    fail("cantopen", path, ("cannot create the directory %s: %s"):format(dir, tostring(err)))
  end
  if ok then uv.fs_chmod(dir, 448) end -- the umask may have removed bits
end

-- Switches the file to WAL mode; returns the journal mode it is in. On a
-- file still in rollback mode the switch upgrades the pragma's own read to
-- the exclusive lock, and SQLite answers an upgrade SQLITE_BUSY at once,
-- without its busy handler (two upgrading readers would deadlock), so when
-- another process opens a new file at the same moment this retries, with
-- sleeps like the busy handler's, for at most busy_ms (BEGIN IMMEDIATE,
-- which the migrations use, takes its lock first and does wait there).
local function enter_wal(conn, busy_ms)
  local deadline, delay = uv.hrtime() / 1e6 + busy_ms, 1
  while true do
    local ok, res = pcall(conn.first, conn, "PRAGMA journal_mode = WAL")
    if ok then return res.journal_mode end
    local left = deadline - uv.hrtime() / 1e6
    if type(res) ~= "table" or res.code ~= "busy" or left <= 0 then error(res, 0) end
    uv.sleep(math.max(1, math.floor(math.min(delay, left))))
    delay = math.min(delay * 2, 100)
  end
end

-- Puts the connection in WAL mode with full syncs and migrates the schema.
local function set_up(conn, path, busy_ms)
  local function failed(code, text) fail(code, path, text) end
  migrations.check(conn, failed) -- before anything writes to a newer resi's file
  local mode = enter_wal(conn, busy_ms)
  if mode ~= "wal" and mode ~= "memory" then
    fail("wal", path, "cannot switch to WAL mode (the journal mode stays " .. tostring(mode) .. ")")
  end
  conn:exec("PRAGMA synchronous = FULL")
  migrations.apply(conn, failed)
end

-- The first words of libpq's keyword form ("host=db password=..."): a
-- store path that starts with one is a connection string, not a file.
local LIBPQ_KEYWORDS = { host = true, hostaddr = true, port = true, dbname = true, user = true,
  password = true, passfile = true, service = true, sslmode = true, application_name = true }

--- Opens the store at path (default: M.default_path(), which honours
--- $RESI_STORE; a `postgresql://` URL opens resi.store.postgres), creating the file
--- (0600), its directories (0700) and the schema when missing. opts.busy_timeout:
--- seconds a write waits for another process's lock (default 5). Raises an
--- error naming the path when the file cannot be opened, is not a
--- database, or was written by a newer resi.
---@param path? string  a file path, or ":memory:"
---@param opts? {busy_timeout?: number}
---@return resi.store.db
---@async
function M.open(path, opts)
  if path ~= nil and type(path) ~= "string" then
    error("resi.store.open: path must be a string, got " .. type(path), 2)
  end
  path = path or M.default_path()
  opts = opts or {}
  if M.is_url(path) then return require("resi.store.postgres").open(path, opts, DB) end
  if LIBPQ_KEYWORDS[path:match("^%s*([%a_]+)%s*=")] then
    -- "host=db password=..." is libpq's keyword form: never a file name
    -- (which would hold the password), and never echoed
    error(core.error("misuse", "(a libpq keyword string)", "not a file path: give PostgreSQL as a "
      .. "postgresql://user@host:port/db URL (the password in RESI_STORE, PGPASSWORD or ~/.pgpass)"), 0)
  end
  if path ~= ":memory:" then make_dirs(dirname(path), path) end
  local busy = opts.busy_timeout and math.floor(opts.busy_timeout * 1000 + 0.5) or nil
  local conn, err, code = core.open(path, busy)
  if conn == nil then fail(code, path, err) end
  local ok, setup_err = pcall(set_up, conn, path, busy or core.default_busy_ms)
  if not ok then
    conn:close()
    error(setup_err, 0)
  end
  return setmetatable({ path = path, conn = conn, depth = 0, owner = nil, waiters = {}, dialect = "sqlite" }, DB)
end

-- The caller's identity for the transaction lock: its task, or its
-- coroutine outside tasks.
local function me()
  return task.current() or coroutine.running()
end

-- Wakes every task waiting for the transaction lock (each checks again).
local function release(self)
  self.owner = nil
  local waiters = self.waiters
  if #waiters == 0 then return end
  self.waiters = {}
  for _, done in ipairs(waiters) do done() end
end

DB._release = release -- for resi.store.postgres

--- The connection, once no other task holds a transaction open on it
--- (waits until then). For resi's store modules.
---@return table conn
function DB:_enter()
  if self.owner ~= nil then
    local who = me()
    while self.owner ~= nil and self.owner ~= who do
      task.await(function(done) self.waiters[#self.waiters + 1] = done end)
    end
  end
  return self.conn
end

-- pcall's results as a table with their count.
local function pack_pcall(ok, ...)
  return { n = select("#", ...) + 1, ok, ... }
end

-- Rolls back what can be rolled back after a failure (SQLite may have
-- rolled the whole transaction back itself).
local function roll_back(conn, sql)
  if conn:is_open() and conn:in_transaction() then pcall(conn.exec, conn, sql) end
end

-- A transaction inside another of the same task: a savepoint.
local function nested(self, conn, fn, ...)
  conn:exec("SAVEPOINT resi_nested")
  self.depth = self.depth + 1
  local res = pack_pcall(pcall(fn, self, ...))
  self.depth = self.depth - 1
  if res[1] then
    conn:exec("RELEASE resi_nested")
    return table.unpack(res, 2, res.n)
  end
  roll_back(conn, "ROLLBACK TO resi_nested; RELEASE resi_nested")
  error(res[2], 0)
end

--- Runs fn(db, ...) in a transaction (BEGIN IMMEDIATE: the write lock is
--- taken first, so it never fails half-way for a lock): commits when fn
--- returns and returns its results; rolls back when fn raises, and
--- re-raises the error. A call inside fn nests as a savepoint: its error
--- undoes only its own changes if the outer fn catches it.
---@param fn fun(db: resi.store.db, ...): ...
---@return any ...
---@param ... any passed to fn after db
---@async
function DB:transaction(fn, ...)
  if type(fn) ~= "function" then bad_arg("transaction", "expected a function, got " .. type(fn)) end
  local conn = self:_enter()
  if self.depth > 0 then return nested(self, conn, fn, ...) end
  conn:exec("BEGIN IMMEDIATE")
  self.owner, self.depth = me(), 1
  local res = pack_pcall(pcall(fn, self, ...))
  if res[1] then
    local ok, err = pcall(conn.exec, conn, "COMMIT")
    if not ok then res = { n = 2, false, err } end
  end
  if not res[1] then roll_back(conn, "ROLLBACK") end
  self.depth = 0
  release(self)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- conn:first(sql, ...) as its own commit that does not wait for the disk
--- (synchronous=OFF for this statement alone): the write survives the
--- process at once and a power cut from the next commit's fsync on. For
--- marks whose loss is detected (resi.store.runs' mark_started). Inside a
--- transaction it is an ordinary statement of it.
---@param sql string
---@return table|nil row
function DB:_first_unsynced(sql, ...)
  local conn = self:_enter()
  if self.depth > 0 then return conn:first(sql, ...) end
  conn:exec("PRAGMA synchronous = OFF")
  local ok, row = pcall(conn.first, conn, sql, ...)
  conn:exec("PRAGMA synchronous = FULL")
  if not ok then error(row, 0) end
  return row
end

--- The value stored under (ns, key), or nil.
---@param ns string
---@param key string
---@return any
---@async
function DB:get(ns, key)
  check_string("get", "ns", ns)
  check_string("get", "key", key)
  local row = self:_enter():first("SELECT value FROM kv WHERE ns = $1 AND key = $2", ns, key)
  if row == nil then return nil end
  return json.decode(self:_unblob(row.value))
end

--- A value's JSON text as the kv table's value parameter (a BLOB here;
--- resi.store.postgres overrides it for bytea).
---@param text string
function DB:_blob(text) return core.blob(text) end

--- The kv table's value column as JSON text.
---@param v string
function DB:_unblob(v) return v end

-- Checks ns, key and value for a method that writes; returns the value's JSON text.
local function encoded(name, ns, key, value)
  check_string(name, "ns", ns)
  check_string(name, "key", key)
  local ok, text = pcall(json.encode, value)
  if not ok then bad_arg(name, ("cannot store the value of %s/%s: %s"):format(ns, key, tostring(text)), 1) end
  return text
end

--- Stores value under (ns, key) unless the key is there already, in one
--- statement (INSERT ... ON CONFLICT DO NOTHING RETURNING: atomic across
--- processes and machines). Returns whether it stored it.
---@param ns string
---@param key string
---@param value any
---@return boolean
---@async
function DB:add(ns, key, value)
  if value == nil then bad_arg("add", "value must not be nil") end
  local text = encoded("add", ns, key, value)
  return self:_enter():first("INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) "
    .. "ON CONFLICT DO NOTHING RETURNING ns", ns, key, self:_blob(text)) ~= nil
end

--- Stores value under (ns, key), replacing what was there; nil deletes.
--- value: anything resi.json encodes (use resi.json.null for a stored null).
---@param ns string
---@param key string
---@param value any
---@async
function DB:set(ns, key, value)
  check_string("set", "ns", ns)
  check_string("set", "key", key)
  if value == nil then
    self:delete(ns, key)
    return
  end
  local text = encoded("set", ns, key, value)
  self:_enter():run("INSERT INTO kv (ns, key, value) VALUES ($1, $2, $3) "
    .. "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value", ns, key, self:_blob(text))
end

--- Deletes (ns, key); returns whether it was there.
---@param ns string
---@param key string
---@return boolean
---@async
function DB:delete(ns, key)
  check_string("delete", "ns", ns)
  check_string("delete", "key", key)
  return self:_enter():run("DELETE FROM kv WHERE ns = $1 AND key = $2", ns, key) > 0
end

-- The smallest string greater than every string that starts with prefix,
-- or nil when there is none (empty, or all bytes 0xff).
local function prefix_end(prefix)
  local p = prefix:gsub("\255+$", "")
  if p == "" then return nil end
  return p:sub(1, -2) .. string.char(p:byte(-1) + 1)
end

--- The entries of ns whose key starts with prefix (default: all), in
--- byte order of their keys: { {key=, value=}, ... }.
---@param ns string
---@param prefix? string
---@return {key: string, value: any}[]
---@async
function DB:list(ns, prefix)
  check_string("list", "ns", ns)
  prefix = prefix or ""
  check_string("list", "prefix", prefix)
  local conn, upper = self:_enter(), prefix_end(prefix)
  local rows
  if upper then
    rows = conn:rows("SELECT key, value FROM kv WHERE ns = $1 AND key >= $2 AND key < $3 ORDER BY key", ns, prefix, upper)
  else
    rows = conn:rows("SELECT key, value FROM kv WHERE ns = $1 AND key >= $2 ORDER BY key", ns, prefix)
  end
  for _, row in ipairs(rows) do row.value = json.decode(self:_unblob(row.value)) end
  return rows
end

--- Closes the database (a transaction still open is rolled back). Also
--- run by `local db <close> = store.open(...)`, and when db is collected.
--- A second call does nothing.
function DB:close()
  self.conn:close()
  self.depth = 0
  release(self)
end
DB.__close = DB.close

--- Is the database open?
---@return boolean
function DB:is_open()
  return self.conn:is_open()
end

function DB:__tostring()
  return ("resi.store.db (%s%s)"):format(self.path, self.conn:is_open() and "" or ", closed")
end

require("resi.store.runs").install(DB)
require("resi.store.lease").install(DB)

return M
