--- resi.store.lock: a named lock held as a lease in the store (the leases
--- table, resi.store.lease), for exclusion across machines that share a
--- PostgreSQL store, where a file lock beside the database cannot reach.
---
--- take() inserts or takes over the lease (free or expired, on the
--- database clock) and starts a keeper task that extends it every
--- lease/3 seconds. A keeper that cannot extend it (the database is gone,
--- or the lease was taken after a freeze past its end) cancels the task
--- that took the lock, before the lease ends on its own clock (the trust
--- window: last extension sent + lease - margin): its HTTP calls abort,
--- so two holders never act at once. unlock() (or <close>) releases it.
local task = require "resi.task"
local lease_mod = require "resi.store.lease"

local M = {}

--- Seconds a lock's lease lasts without renewal.
M.LEASE = 15

local Lock = {}
Lock.__index = Lock
Lock.__name = "resi.store.lock"

-- The loop's monotonic clock, seconds.
local function mono() return require("resi.core").monotonic() end

-- Extends the lease once; true when still held.
local function extend(self)
  local sent = mono()
  local ok, expires = pcall(self.db.extend_lease, self.db, self.name, self.owner, self.term, self.lease)
  if ok and expires then
    self.trust_until = sent + self.lease - self.margin
    return true
  end
  self.error = ok and "the lease was taken over (it had expired)" or tostring(expires)
  return not ok and mono() < self.trust_until -- a failed round trip: keep trying inside the window
end

-- The keeper: extends until unlocked, the holder ends, or the lease is lost.
local function keep(self)
  while not self.released do
    local wait = math.min(self.lease / 3, math.max(0.05, self.trust_until - mono()))
    task.sleep(wait)
    if self.released then return end
    local st = self.holder:status()
    if st == "done" or st == "failed" or st == "cancelled" then return self:unlock() end
    if not extend(self) or mono() >= self.trust_until then
      self.lost = true
      io.stderr:write(("resi: lost the lock %s (%s): stopping its holder\n"):format(self.name, tostring(self.error)))
      self.holder:cancel()
      return
    end
  end
end

--- Takes the lock `name` in db for this process, waiting up to opts.wait
--- seconds (default 0) while another holds it; opts.lease: seconds
--- (default M.LEASE). Must run in a task. Returns the lock, or nil,
--- message, "busy".
---@param db resi.store.db
---@param name string
---@param opts? {wait?: number, lease?: number}
---@return table|nil lock
---@return string|nil err
---@return string|nil code
function M.take(db, name, opts)
  opts = opts or {}
  local holder = task.current()
  if not holder then error("resi.store.lock: take must run inside a task", 2) end
  local lease = opts.lease or M.LEASE
  local owner = lease_mod.owner_id()
  local deadline = mono() + (opts.wait or 0)
  while true do
    local sent = mono()
    local term = db:acquire_lease(name, owner, lease)
    if term then
      local self = setmetatable({ db = db, name = name, owner = owner, term = term, lease = lease,
        margin = math.max(0.5, lease / 5), trust_until = sent + lease - math.max(0.5, lease / 5), holder = holder }, Lock)
      self.keeper = task.spawn(keep, self)
      return self
    end
    if mono() >= deadline then
      local h = db:lease_holder(name)
      return nil, ("another run holds the lock %s (%s) in %s"):format(name, h and h.owner or "?", db.path), "busy"
    end
    task.sleep(math.min(0.5, math.max(0.01, deadline - mono())))
  end
end

--- Releases the lock (idempotent); the lease row is deleted when still ours.
function Lock:unlock()
  if self.released then return end
  self.released = true
  if self.keeper and self.keeper ~= task.current() then self.keeper:cancel() end
  if not self.lost then pcall(self.db.release_lease, self.db, self.name, self.owner, self.term) end
end

Lock.__close = Lock.unlock

function Lock:__tostring()
  return ("resi.store.lock %s (term %d%s)"):format(self.name, self.term, self.lost and ", lost" or "")
end

return M
