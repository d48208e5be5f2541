--- resi.store.lease: runs held under a lease, and named leases, as methods
--- of a resi.store db; the statements of several daemons sharing one
--- PostgreSQL store (they work on SQLite too, one text for both but the
--- clock expression).
---
--- Every time in these statements is the database's clock (`now` below:
--- clock_timestamp() on PostgreSQL, julianday('now') on SQLite), never the
--- caller's: a node whose clock runs ahead can neither claim a slot early
--- nor stretch a lease. A run claimed with a lease belongs to its owner (a
--- process id unique across machines, see M.owner_id) until lease_until;
--- the owner renews it (db:renew_runs), finishes it only while it holds it
--- (db:finish_owned), and any node turns an expired one into `interrupted`
--- (db:reap_expired): so a slot still has exactly one outcome when its
--- owner is killed, frozen or cut off from the database.
local uv = require "luv"

local M = {}

--- The database clock as epoch seconds, per dialect.
M.NOW = {
  sqlite = "((julianday('now') - 2440587.5) * 86400.0)",
  postgres = "extract(epoch FROM clock_timestamp())::float8",
}

--- How far before the database clock's second a slot may be claimed:
--- a node waking a little early (timer rounding) still claims on time.
M.EARLY = 0.5

-- The statements with {now} replaced by the dialect's clock.
local TEMPLATES = {
  clock = "SELECT {now} AS t",
  claim = "INSERT INTO runs (job, nominal_at, status, attempt, node, pid, started_at, missed, owner, lease_until) "
    .. "SELECT CAST($1 AS text), CAST($2 AS bigint), 'running', CAST($3 AS integer), CAST($4 AS text), "
    .. "CAST($5 AS integer), n.t, CAST($6 AS integer), CAST($7 AS text), n.t + CAST($8 AS double precision) "
    .. "FROM (SELECT {now} AS t) n WHERE CAST($2 AS bigint) <= n.t + " .. M.EARLY .. " AND (CAST($9 AS integer) = 0 "
    .. "OR NOT EXISTS (SELECT 1 FROM runs r WHERE r.job = CAST($1 AS text) AND r.status = 'running' "
    .. "AND r.lease_until >= n.t)) ON CONFLICT DO NOTHING RETURNING started_at, lease_until",
  -- PostgreSQL: the claim and, when it is refused, why, in one round trip
  -- (a data-modifying CTE, which SQLite lacks); the outer SELECT sees the
  -- statement's snapshot, so a slot a concurrent claim just won counts as
  -- neither early nor busy: "taken". Only EXISTS probes (an index lookup
  -- each), and the running runs are looked at only for an exclusive claim:
  -- counting them made every claim scan all running rows (bench/NOTES.md,
  -- "PostgreSQL claims")
  claim_why = "WITH n AS (SELECT {now} AS t), ins AS ({claim}) SELECT EXISTS (SELECT 1 FROM ins) AS won, n.t AS t, "
    .. "EXISTS (SELECT 1 FROM runs WHERE job = CAST($1 AS text) AND nominal_at = CAST($2 AS bigint)) AS taken, "
    .. "CASE WHEN CAST($9 AS integer) = 0 THEN false ELSE EXISTS (SELECT 1 FROM runs WHERE job = CAST($1 AS text) "
    .. "AND status = 'running' AND lease_until >= n.t) END AS busy FROM n",
  -- SQLite: why a claim was refused (a row: taken; else early, else overlap)
  why = "SELECT {now} AS t, (SELECT status FROM runs WHERE job = $1 AND nominal_at = $2) AS status",
  renew = "UPDATE runs SET lease_until = n.t + CAST($2 AS double precision) FROM (SELECT {now} AS t) n "
    .. "WHERE runs.owner = $1 AND runs.status = 'running' AND runs.lease_until >= n.t "
    .. "RETURNING runs.job, runs.nominal_at, runs.lease_until",
  finish = "UPDATE runs SET status = $3, finished_at = n.t, error = $4 FROM (SELECT {now} AS t) n "
    .. "WHERE runs.job = $1 AND runs.nominal_at = $2 AND runs.status = 'running' AND runs.owner = $5 "
    .. "AND runs.lease_until >= n.t RETURNING runs.finished_at",
  reap = "UPDATE runs SET status = 'interrupted', finished_at = n.t, "
    .. "error = 'lease expired: its owner ' || coalesce(runs.owner, '?') || ' stopped renewing it' "
    .. "FROM (SELECT {now} AS t) n WHERE runs.status = 'running' AND runs.lease_until < n.t "
    .. "RETURNING runs.job, runs.nominal_at, runs.owner, runs.node, runs.pid, runs.missed, runs.attempt",
  rerun = "UPDATE runs SET status = 'running', attempt = runs.attempt + 1, node = $3, pid = $4, owner = $5, "
    .. "started_at = n.t, lease_until = n.t + CAST($6 AS double precision), finished_at = NULL, error = NULL "
    .. "FROM (SELECT {now} AS t) n WHERE runs.job = $1 AND runs.nominal_at = $2 AND runs.status = 'interrupted' "
    .. "RETURNING runs.attempt",
  acquire = "INSERT INTO leases (name, owner, term, expires_at) "
    .. "SELECT CAST($1 AS text), CAST($2 AS text), 1, n.t + CAST($3 AS double precision) "
    .. "FROM (SELECT {now} AS t) n WHERE true ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
    .. "term = leases.term + 1, expires_at = excluded.expires_at "
    .. "WHERE leases.expires_at < excluded.expires_at - CAST($3 AS double precision) RETURNING term, expires_at",
  extend = "UPDATE leases SET expires_at = n.t + CAST($4 AS double precision) FROM (SELECT {now} AS t) n "
    .. "WHERE leases.name = $1 AND leases.owner = $2 AND leases.term = $3 AND leases.expires_at >= n.t "
    .. "RETURNING leases.expires_at",
  release = "DELETE FROM leases WHERE name = $1 AND owner = $2 AND term = $3",
  holder = "SELECT name, owner, term, expires_at FROM leases WHERE name = $1",
}

local cache = {}

--- The lease statements of a dialect ("sqlite" or "postgres").
---@param dialect string
---@return table<string, string>
function M.statements(dialect)
  if cache[dialect] then return cache[dialect] end
  local now = assert(M.NOW[dialect], "resi.store.lease: unknown dialect")
  local out = {}
  for name, text in pairs(TEMPLATES) do out[name] = (text:gsub("{claim}", TEMPLATES.claim):gsub("{now}", now)) end
  cache[dialect] = out
  return out
end

local boot = nil

--- A process identity unique across machines and restarts:
--- "host:pid:random" (two daemons on one host, or a pid reused after a
--- restart, never share one).
---@return string
function M.owner_id()
  if boot == nil then
    boot = require("resi.random").hex(4)
  end
  return ("%s:%d:%s"):format(uv.os_gethostname(), uv.os_getpid(), boot)
end

-- Raises "resi.store: db:NAME: text" at the method's caller.
local function bad_arg(name, text)
  error(("resi.store: db:%s: %s"):format(name, text), 3)
end

-- Checks a lease length in seconds.
local function check_lease(name, lease)
  if type(lease) ~= "number" or lease <= 0 then bad_arg(name, "lease must be a positive number of seconds") end
end

-- The db methods installed by M.install.
---@class resi.store.db
local Lease = {}

-- The statements of the db's dialect.
local function sql(db) return M.statements(db.dialect or "sqlite") end

--- The database clock, epoch seconds (a float).
---@return number
---@async
function Lease:db_clock()
  return self:_enter():first(sql(self).clock).t
end

--- Claims a slot under a lease of r.lease seconds for r.owner, with the
--- database clock: refused when the slot has a row ("taken"), when its
--- time has not come on the database clock ("early", with `wait`: seconds
--- until it has), or with r.exclusive when another run of the job holds a
--- live lease ("overlap": skip holds across nodes). Returns true, or false
--- and the reason (and for "early" the seconds to wait).
---@param r {job: string, nominal_at: integer, owner: string, lease: number, node?: string, pid?: integer, attempt?: integer, missed?: integer, exclusive?: boolean}
---@return boolean
---@return string|nil
---@return number|nil
---@async
function Lease:claim_leased(r)
  if type(r) ~= "table" or type(r.job) ~= "string" or math.type(r.nominal_at) ~= "integer" then
    bad_arg("claim_leased", "expected {job = string, nominal_at = integer, owner =, lease =}")
  end
  if type(r.owner) ~= "string" then bad_arg("claim_leased", "owner must be a string") end
  check_lease("claim_leased", r.lease)
  local conn, s = self:_enter(), sql(self)
  local args = table.pack(r.job, r.nominal_at, r.attempt or 1, r.node or uv.os_gethostname(),
    r.pid or uv.os_getpid(), r.missed or 0, r.owner, r.lease, r.exclusive and 1 or 0)
  if self.dialect == "postgres" then
    local res = conn:first(s.claim_why, table.unpack(args, 1, args.n))
    if res.won then return true end
    if res.taken then return false, "taken" end
    if r.nominal_at > res.t + M.EARLY then return false, "early", r.nominal_at - res.t end
    if res.busy then return false, "overlap" end
    return false, "taken"
  end
  if conn:first(s.claim, table.unpack(args, 1, args.n)) then return true end
  local why = conn:first(s.why, r.job, r.nominal_at)
  if why.status ~= nil then return false, "taken" end
  if r.nominal_at > why.t + M.EARLY then return false, "early", r.nominal_at - why.t end
  return false, "overlap"
end

--- Renews the lease of every running run of owner for lease seconds from
--- now (database clock). Returns the runs still held: {"job\0nominal_at" =
--- lease_until}; a run of owner missing from it is no longer its own.
---@param owner string
---@param lease number
---@return table<string, number>
---@async
function Lease:renew_runs(owner, lease)
  check_lease("renew_runs", lease)
  local held = {}
  for _, row in ipairs(self:_enter():rows(sql(self).renew, owner, lease)) do
    held[row.job .. "\0" .. row.nominal_at] = row.lease_until
  end
  return held
end

--- Ends owner's run with outcome while owner's lease on it holds; false
--- when it does not (expired, reaped, never claimed by owner).
---@param job string
---@param nominal_at integer
---@param outcome string
---@param owner string
---@param err? any
---@return boolean
---@async
function Lease:finish_owned(job, nominal_at, outcome, owner, err)
  if not require("resi.store.runs").RUN_OUTCOMES[outcome] then bad_arg("finish_owned", "unknown outcome " .. tostring(outcome)) end
  return self:_enter():first(sql(self).finish, job, nominal_at, outcome, err ~= nil and tostring(err) or nil, owner) ~= nil
end

--- Marks interrupted every running run whose lease has expired (any
--- owner's): one UPDATE, so of several nodes doing it at once each row is
--- marked by one. Returns the rows it marked.
---@return table[]
---@async
function Lease:reap_expired()
  local rows = self:_enter():rows(sql(self).reap)
  for _, row in ipairs(rows) do row.status = "interrupted" end
  return rows
end

--- Runs an interrupted slot again under a new lease (on_interrupt =
--- "rerun"); returns the new attempt, or nil when another node took it.
---@param r {job: string, nominal_at: integer, owner: string, lease: number, node?: string, pid?: integer}
---@return integer|nil
---@async
function Lease:rerun_leased(r)
  check_lease("rerun_leased", r.lease)
  local row = self:_enter():first(sql(self).rerun, r.job, r.nominal_at, r.node or uv.os_gethostname(),
    r.pid or uv.os_getpid(), r.owner, r.lease)
  return row and row.attempt
end

--- Takes the named lease for owner for `lease` seconds when it is free or
--- expired (or already owner's). Returns its term (a fence: +1 at every
--- change of holder) and expiry, or nil when another owner holds it.
---@param name string
---@param owner string
---@param lease number
---@return integer|nil term
---@return number|nil expires_at
---@async
function Lease:acquire_lease(name, owner, lease)
  check_lease("acquire_lease", lease)
  local row = self:_enter():first(sql(self).acquire, name, owner, lease)
  if row == nil then return nil end
  return row.term, row.expires_at
end

--- Extends a held lease (same owner and term, not expired); returns the
--- new expiry or nil when it is no longer held.
---@param name string
---@param owner string
---@param term integer
---@param lease number
---@return number|nil
---@async
function Lease:extend_lease(name, owner, term, lease)
  local row = self:_enter():first(sql(self).extend, name, owner, term, lease)
  return row and row.expires_at
end

--- Gives a held lease up (same owner and term).
---@param name string
---@param owner string
---@param term integer
---@async
function Lease:release_lease(name, owner, term)
  self:_enter():run(sql(self).release, name, owner, term)
end

--- The holder of a named lease {name=, owner=, term=, expires_at=}, or nil.
---@param name string
---@return table|nil
---@async
function Lease:lease_holder(name)
  return self:_enter():first(sql(self).holder, name)
end

--- Adds the lease methods to the db class.
---@param DB table
function M.install(DB)
  for name, fn in pairs(Lease) do DB[name] = fn end
end

return M
