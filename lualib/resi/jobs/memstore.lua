--- resi.jobs.memstore: an in-memory store with the interface of resi.store's
--- run table (lualib/resi/store/runs.lua) and key-value methods, for the
--- scheduler's specs: replayed time needs no disk, and every call can be
--- counted. Rows are kept per (job, nominal_at) exactly as the SQL table's
--- primary key would: a second claim or record of the same slot is refused.
local never_started = require("resi.store.runs").never_started

local M = {}

local Store = {}
Store.__index = Store

--- A new, empty store.
---@return table db
function M.new()
  return setmetatable({ rows = {}, order = {}, kv = {}, path = ":memory:" }, Store)
end

-- The row key of a slot.
local function key(job, nominal_at) return job .. "\0" .. tostring(nominal_at) end

-- Inserts a row unless its slot has one; true when inserted.
local function insert(self, row)
  local k = key(row.job, row.nominal_at)
  if self.rows[k] then return false end
  self.rows[k] = row
  self.order[#self.order + 1] = row
  return true
end

--- Claims a slot (outcome "running"); true when this call claimed it.
---@param r {job: string, nominal_at: integer, node?: string, pid?: integer, started_at?: number, attempt?: integer}
---@return boolean
function Store:claim_run(r)
  return insert(self, { job = r.job, nominal_at = r.nominal_at, status = "running", node = r.node, pid = r.pid,
    started_at = r.started_at, attempt = r.attempt or 1, missed = r.missed or 0 })
end

--- Ends a running row with its outcome; true when a running row was ended.
---@param job string
---@param nominal_at integer
---@param outcome string
---@param fields? {error?: any, finished_at?: number}
---@return boolean
function Store:finish_run(job, nominal_at, outcome, fields)
  local row = self.rows[key(job, nominal_at)]
  if not row or row.status ~= "running" then return false end
  fields = fields or {}
  row.status, row.finished_at = outcome, fields.finished_at
  row.error = fields.error ~= nil and tostring(fields.error) or nil
  return true
end

--- Records a slot that did not run (skipped_overlap, missed, coalesced).
---@param job string
---@param nominal_at integer
---@param outcome string
---@param fields? {error?: any, missed?: integer, node?: string, at?: number}
---@return boolean
function Store:record_slot(job, nominal_at, outcome, fields)
  fields = fields or {}
  return insert(self, { job = job, nominal_at = nominal_at, status = outcome, attempt = 0, node = fields.node,
    finished_at = fields.at, error = fields.error ~= nil and tostring(fields.error) or nil, missed = fields.missed or 0 })
end

--- Moves a finished slot (default: interrupted) back to running with
--- attempt + 1; returns the new attempt, nil when it is not in that state.
---@param r {job: string, nominal_at: integer, from?: string, node?: string, pid?: integer, started_at?: number}
---@return integer|nil
function Store:rerun(r)
  local row = self.rows[key(r.job, r.nominal_at)]
  if not row or row.status ~= (r.from or "interrupted") then return nil end
  row.status, row.attempt, row.node, row.pid, row.started_at = "running", row.attempt + 1, r.node, r.pid, r.started_at
  row.finished_at, row.error = nil, nil
  return row.attempt
end

--- Deletes a slot's running row held by pid (a claim that has not started);
--- true when it did.
---@param job string
---@param nominal_at integer
---@param pid integer
---@return boolean
function Store:release_claim(job, nominal_at, pid)
  local k = key(job, nominal_at)
  local row = self.rows[k]
  if not row or row.status ~= "running" or row.pid ~= pid then return false end
  self.rows[k] = nil
  for i, r in ipairs(self.order) do
    if r == row then
      table.remove(self.order, i)
      break
    end
  end
  return true
end

--- Marks a slot claimed ahead (attempt 0) started: attempt 1; false when
--- pid holds no such claim.
---@param job string
---@param nominal_at integer
---@param pid integer
---@return boolean
function Store:mark_started(job, nominal_at, pid)
  local row = self.rows[key(job, nominal_at)]
  if not row or row.status ~= "running" or row.pid ~= pid or row.attempt ~= 0 then return false end
  row.attempt = 1
  return true
end

--- Marks interrupted the running rows of node (false: every node) that
--- alive(row) says are dead, and releases those that never started
--- (resi.store.runs.never_started); returns the marked ones and the released ones.
---@param node string|false
---@param alive fun(row: table): boolean
---@param now? number  epoch seconds (the scheduler's clock)
---@param boot? number  when the machine booted, on that clock
---@return table[] marked
---@return table[] released
function Store:interrupt_dead(node, alive, now, boot)
  local marked, released = {}, {}
  for _, row in ipairs(self:running_runs()) do
    local dead = (node == false or row.node == node) and not alive(row)
    if dead and now and never_started(row, now, boot) then
      if self:release_claim(row.job, row.nominal_at, row.pid) then released[#released + 1] = row end
    elseif dead then
      row.status, row.error = "interrupted", "its process ended before the run finished"
      marked[#marked + 1] = row
    end
  end
  return marked, released
end

--- A job's stored state {name=, paused=, updated_at=}.
---@param name string
---@return table
function Store:job_state(name)
  local s = self.kv["\0jobs"] and self.kv["\0jobs"][name]
  if not s then return { name = name, paused = false } end
  return { name = name, paused = s.paused, updated_at = s.updated_at }
end

--- Pauses (true) or resumes (false) a job.
---@param name string
---@param paused boolean
function Store:set_paused(name, paused)
  self.kv["\0jobs"] = self.kv["\0jobs"] or {}
  self.kv["\0jobs"][name] = { paused = paused, updated_at = 0 }
end

--- Every running row.
---@return table[]
function Store:running_runs()
  local out = {}
  for _, row in ipairs(self.order) do if row.status == "running" then out[#out + 1] = row end end
  return out
end

--- The row with the latest nominal time of a job, or nil.
---@param job string
---@return table|nil
function Store:last_run(job)
  local best
  for _, row in ipairs(self.order) do
    if row.job == job and (not best or row.nominal_at > best.nominal_at) then best = row end
  end
  return best
end

--- Rows newest (by nominal time) first, of one job or all.
---@param q? {job?: string, limit?: integer}
---@return table[]
function Store:history(q)
  q = q or {}
  local out = {}
  for _, row in ipairs(self.order) do if not q.job or row.job == q.job then out[#out + 1] = row end end
  table.sort(out, function(a, b)
    if a.nominal_at ~= b.nominal_at then return a.nominal_at > b.nominal_at end
    return a.job < b.job
  end)
  if q.limit and #out > q.limit then for i = #out, q.limit + 1, -1 do out[i] = nil end end
  return out
end

--- The row of one slot, or nil.
---@param job string
---@param nominal_at integer
---@return table|nil
function Store:get_run(job, nominal_at) return self.rows[key(job, nominal_at)] end

--- Key-value: the value of ns/key or nil.
---@param ns string
---@param k string
function Store:get(ns, k) return self.kv[ns] and self.kv[ns][k] end

--- Key-value: sets ns/key.
---@param ns string
---@param k string
---@param v any
function Store:set(ns, k, v)
  self.kv[ns] = self.kv[ns] or {}
  self.kv[ns][k] = v
end

--- Key-value: removes ns/key.
---@param ns string
---@param k string
function Store:delete(ns, k) if self.kv[ns] then self.kv[ns][k] = nil end end

--- Key-value: every key of ns with its value, sorted by key.
---@param ns string
---@return table[] {key=, value=}
function Store:list(ns)
  local out = {}
  for k, v in pairs(self.kv[ns] or {}) do out[#out + 1] = { key = k, value = v } end
  table.sort(out, function(a, b) return a.key < b.key end)
  return out
end

--- Runs fn(db) (no isolation is needed in one Lua state); returns its results.
---@param fn fun(db: table): any
function Store:transaction(fn) return fn(self) end

--- Nothing to close.
function Store:close() end

return M
