--- resi.store.pg_schema: the store's schema on PostgreSQL, one migration
--- per version, the same versions and tables as resi.store.migrations
--- (SQLite) in PostgreSQL's types: BLOB is bytea, REAL double precision,
--- INTEGER bigint where it holds epoch seconds, and kv.key is COLLATE "C"
--- so prefix scans follow byte order as on SQLite.
---
--- The version is the one row of resi_schema. apply() runs the missing
--- migrations in ONE transaction that first takes a transaction-scoped
--- advisory lock (pg_advisory_xact_lock: released at COMMIT, so it works
--- behind PgBouncer in transaction mode), so two daemons starting at once
--- migrate once; the lock only orders migrations, never runs. A database
--- whose version is newer than this resi's is refused before anything is
--- written.
local M = {}

--- The migrations: M.list[n] is the list of statements (one each: the
--- driver sends one statement per query) that bring the schema to version n.
---@type string[][]
M.list = {
  {
    [[CREATE TABLE kv (
  ns    text NOT NULL,
  key   text COLLATE "C" NOT NULL,
  value bytea NOT NULL,
  PRIMARY KEY (ns, key))]],
    [[CREATE TABLE runs (
  job         text    NOT NULL,
  nominal_at  bigint  NOT NULL,
  status      text    NOT NULL,
  attempt     integer NOT NULL DEFAULT 1,
  node        text,
  pid         integer,
  started_at  double precision,
  finished_at double precision,
  error       text,
  missed      integer NOT NULL DEFAULT 0,
  PRIMARY KEY (job, nominal_at))]],
    "CREATE INDEX runs_running ON runs (status) WHERE status = 'running'",
    "CREATE INDEX runs_nominal ON runs (nominal_at)",
    [[CREATE TABLE jobs (
  name       text PRIMARY KEY,
  paused     integer NOT NULL DEFAULT 0,
  next_at    bigint,
  updated_at double precision)]],
  },
  {
    "ALTER TABLE runs ADD COLUMN owner text",
    "ALTER TABLE runs ADD COLUMN lease_until double precision",
    [[CREATE TABLE leases (
  name       text PRIMARY KEY,
  owner      text NOT NULL,
  term       bigint NOT NULL,
  expires_at double precision NOT NULL)]],
  },
}

--- The schema version this resi writes.
M.latest = #M.list

-- The advisory lock key that orders migrations (any constant).
local LOCK_KEY = 0x72657369 -- "resi"

-- The database's schema version (0 when it has no resi tables yet).
local function version(q)
  local row = q("SELECT to_regclass('resi_schema') IS NOT NULL AS present")[1]
  if not row.present then return 0 end
  local v = q("SELECT version FROM resi_schema WHERE id = 1")[1]
  return v and v.version or 0
end

-- Refuses a database from a newer resi.
local function check_newer(now, fail)
  require("resi.store.migrations").refuse_newer(now, M.latest, fail, "use another database")
end

--- The database's version; refuses (through fail) a newer one. Reads only.
---@param q fun(sql: string, params?: table): table  runs one statement, raising on error
---@param fail fun(code: string, text: string)
---@return integer
function M.check(q, fail)
  local now = version(q)
  check_newer(now, fail)
  return now
end

--- Brings the database to M.latest. q runs one statement (raising);
--- transaction(fn) runs fn(q) in one transaction. Returns the version
--- the database had.
---@param q fun(sql: string, params?: table): table
---@param transaction fun(fn: fun(q: function))
---@param fail fun(code: string, text: string)
---@return integer
function M.apply(q, transaction, fail)
  local from = M.check(q, fail)
  if from == M.latest then return from end
  transaction(function(tq)
    tq("SELECT pg_advisory_xact_lock(" .. LOCK_KEY .. ")")
    tq("CREATE TABLE IF NOT EXISTS resi_schema (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)")
    tq("INSERT INTO resi_schema (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING")
    local now = version(tq) -- another daemon may have migrated meanwhile
    check_newer(now, fail)
    for target = now + 1, M.latest do
      for _, statement in ipairs(M.list[target]) do tq(statement) end
      tq("UPDATE resi_schema SET version = $1 WHERE id = 1", { target })
    end
  end)
  return from
end

return M
