--- resi.store.migrations: the store's schema, one migration per version.
---
--- The schema's version is SQLite's `PRAGMA user_version` (0 in a new or
--- empty file). Each migration is a fixed SQL script that ends by setting
--- user_version to its own number; apply() runs the missing ones in order,
--- each in its own BEGIN IMMEDIATE transaction, so a crash leaves the file
--- at the last complete version and two processes opening a new file at
--- once migrate it once (the second one sees the new version inside its own
--- transaction). A file whose version is newer than the last migration here
--- was written by a newer resi and is refused, never written to.
---
--- The run table's columns and statements are portable to PostgreSQL (see
--- resi.store.runs); these scripts are SQLite's. resi.store.pg_schema has
--- the same versions for PostgreSQL (kv.key `COLLATE "C"` for byte-order
--- prefix scans, BLOB as bytea, REAL as double precision, the version in a
--- table): keep the two lists in step.
local M = {}

--- The migrations, in order: M.list[n] brings the schema to version n.
---@type string[]
M.list = {
  [[
CREATE TABLE kv (
  ns    TEXT NOT NULL,          -- a namespace: one per module or script
  key   TEXT NOT NULL,
  value BLOB NOT NULL,          -- the value as resi.json text (integers exact)
  PRIMARY KEY (ns, key)
);
CREATE TABLE runs (
  job         TEXT    NOT NULL,
  nominal_at  INTEGER NOT NULL, -- the slot: UTC epoch seconds
  status      TEXT    NOT NULL, -- running | succeeded | failed | timed_out | cancelled
                                -- | interrupted | skipped_overlap | missed | coalesced
  attempt     INTEGER NOT NULL DEFAULT 1, -- 0 for a slot that never ran
  node        TEXT,             -- the host that claimed or recorded it
  pid         INTEGER,          -- the claiming process
  started_at  REAL,             -- epoch seconds
  finished_at REAL,
  error       TEXT,
  missed      INTEGER NOT NULL DEFAULT 0, -- slots coalesced into this run
  PRIMARY KEY (job, nominal_at)
);
CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
CREATE INDEX runs_nominal ON runs (nominal_at);
CREATE TABLE jobs (
  name       TEXT PRIMARY KEY,
  paused     INTEGER NOT NULL DEFAULT 0, -- 1 while paused (resi jobs pause)
  next_at    INTEGER,                    -- the next slot the daemon will run
  updated_at REAL
);
PRAGMA user_version = 1;
]],
  -- 2: leases (resi.store.lease): a run's owner process and how long its
  -- claim holds, and named leases (intent locks, leader chores)
  [[
ALTER TABLE runs ADD COLUMN owner TEXT;        -- the claiming process: host:pid:random
ALTER TABLE runs ADD COLUMN lease_until REAL;  -- database clock, epoch seconds; NULL: no lease
CREATE TABLE leases (
  name       TEXT PRIMARY KEY,
  owner      TEXT NOT NULL,
  term       INTEGER NOT NULL,                 -- +1 at every change of holder (a fence)
  expires_at REAL NOT NULL                     -- database clock, epoch seconds
);
PRAGMA user_version = 2;
]],
}

--- The schema version this resi writes.
M.latest = #M.list

-- The file's schema version.
local function version(conn)
  return conn:first("PRAGMA user_version").user_version
end

--- Refuses (through fail) a schema version newer than latest: a store
--- written by a newer resi (what: "open another file", "use another
--- database"). Shared with resi.store.pg_schema.
---@param now integer
---@param latest integer
---@param fail fun(code: string, text: string)
---@param what? string
function M.refuse_newer(now, latest, fail, what)
  if now > latest then
    fail("schema", ("schema version %d is newer than this resi supports (%d): it was written by a newer resi; "
      .. "upgrade resi or %s"):format(now, latest, what or "open another file"))
  end
end

-- Refuses a file from a newer resi.
local function check_newer(now, fail) M.refuse_newer(now, M.latest, fail) end

--- Refuses (through fail) a file whose schema is newer than this resi's;
--- returns the file's version. Reads only: call it before anything writes.
---@param conn table  a driver connection (resi.sqlite_core)
---@param fail fun(code: string, text: string)
---@return integer
function M.check(conn, fail)
  local now = version(conn)
  check_newer(now, fail)
  return now
end

--- Brings the database on conn to M.latest. fail(code, text) raises the
--- store's error for the file (it does not return).
---@param conn table  a driver connection (resi.sqlite_core)
---@param fail fun(code: string, text: string)
---@return integer from  the version the file had
function M.apply(conn, fail)
  local from = M.check(conn, fail)
  for target = from + 1, M.latest do
    conn:exec("BEGIN IMMEDIATE")
    local ok, err = pcall(function()
      local now = version(conn) -- another process may have migrated meanwhile
      if now < target then conn:exec(M.list[target]) end
      if version(conn) < target then fail("schema", "migration " .. target .. " did not set user_version") end
    end)
    if ok then ok, err = pcall(conn.exec, conn, "COMMIT") end
    if not ok then
      if conn:in_transaction() then conn:exec("ROLLBACK") end
      error(err, 0)
    end
  end
  M.check(conn, fail) -- a newer resi may have migrated it meanwhile
  return from
end

return M
