--- resi.intent: durable intents, the exactly-once pattern for APIs that
--- have no idempotency keys. Record what you are about to do, with the
--- values you chose (a new username, a target limit), before doing it; a
--- later run that finds the intent unfinished looks for its effect before
--- acting again. Intents live in resi.store (by default
--- $XDG_STATE_HOME/resi/resi.db, or RESI_STORE), one namespace per workflow
--- and provider account, so runs from any directory, by cron or by
--- `resi jobs`, share them.
---
---   local intent = require "resi.intent"
---   local book = intent.open("topup", { account = acct })
---   local lock <close> = assert(book:lock())        -- one run at a time
---   local t, how = book:once("tok42:5GB", {
---     plan = function() return { limit = old + 5e9 } end,  -- recorded first
---     find = function(p) local n = acct:token(id).limit_bytes return n >= p.limit and n or nil end,
---     act  = function(p) return acct:set_limit(id, p.limit).limit_bytes end,
---   })                                              -- how: "done" | "found" | "acted"
---
--- A step that has several phases (rotation: created, ready, published,
--- retired) keeps them in the intent: book:begin, it:update{phase = ...},
--- it:finish(result). Every change is committed before the call returns.
--- it.idempotency_key is fixed when the intent is made: send it to an API
--- that takes one (ResiFactory's generate) and a repeat after a crash
--- replays instead of spending again.
local store = require "resi.store"
local fs = require "resi.fs"
local random = require "resi.random"

local M = {}

---@class resi.intent
---@field key string
---@field state "pending"|"done"|"abandoned"
---@field plan table           the values chosen before acting (and later phases' fields)
---@field result any           what finish recorded
---@field idempotency_key string  fixed at creation (a v4 UUID)
---@field resumed boolean      begin found it unfinished, made by an earlier run
---@field created_at number
---@field updated_at number
---@field note string|nil      abandon's reason
local Intent = {}
Intent.__index = Intent
Intent.__name = "resi.intent"

---@class resi.intent.book
---@field ns string  the store namespace ("intent/NAME/ACCOUNT")
---@field db resi.store.db
local Book = {}
Book.__index = Book
Book.__name = "resi.intent.book"

-- Raises a caller error naming the function and the argument.
local function bad(fn, msg) error(("resi.intent.%s: %s"):format(fn, msg), 3) end

-- The stored form of an intent (what survives the process).
local function record(it)
  return { key = it.key, state = it.state, plan = it.plan, result = it.result, idempotency_key = it.idempotency_key,
    created_at = it.created_at, updated_at = it.updated_at, note = it.note }
end

-- An intent object for a stored record.
local function wrap(book, rec, resumed)
  rec.book, rec.resumed = book, resumed or false
  rec.plan = rec.plan or {}
  return setmetatable(rec, Intent)
end

--- Opens the intents of one workflow (name) for one account (opts.account:
--- a resi.providers account, or its id as a string), in opts.store (an open
--- resi.store db, or a path; default the store's default). A book made with
--- a path closes its db when collected.
---@param name string
---@param opts? {account?: resi.providers.account|string, store?: resi.store.db|string}
---@return resi.intent.book
function M.open(name, opts)
  if type(name) ~= "string" or not name:match("^[%w_.-]+$") then
    bad("open", "name must be letters, digits, '_', '.' or '-' (the workflow's name)")
  end
  opts = opts or {}
  local account = opts.account
  if type(account) == "table" then account = account.id end
  if account ~= nil and type(account) ~= "string" then bad("open", "account must be an account or its id") end
  local db = opts.store
  if type(db) ~= "table" then db = store.open(db) end
  return setmetatable({ ns = "intent/" .. name .. (account and ("/" .. account) or ""), db = db }, Book)
end

--- The intent under key, or nil.
---@param key string
---@return resi.intent|nil
---@async
function Book:get(key)
  local rec = self.db:get(self.ns, key)
  return rec and wrap(self, rec)
end

--- Begins the intent under key with plan (the values chosen; committed
--- before this returns), or returns the one already there: unfinished
--- from an earlier run (it.resumed, its own plan kept, the plan given
--- ignored), or finished (it.state "done" or "abandoned").
---@param key string
---@param plan? table
---@return resi.intent
---@async
function Book:begin(key, plan)
  if type(key) ~= "string" or key == "" then bad("begin", "key must be a non-empty string") end
  -- one INSERT ... ON CONFLICT DO NOTHING: of two processes (or machines
  -- sharing a PostgreSQL store) beginning the same key, one makes it and
  -- the other resumes it, even without the lock
  local now = os.time()
  local it = wrap(self, { key = key, state = "pending", plan = plan or {}, idempotency_key = random.uuid(),
    created_at = now, updated_at = now })
  if self.db:add(self.ns, key, record(it)) then return it end
  local rec = self.db:get(self.ns, key)
  return wrap(self, rec, rec.state == "pending")
end

-- Stores the intent as it is now.
local function save(it)
  it.updated_at = os.time()
  it.book.db:set(it.book.ns, it.key, record(it))
end

--- Merges fields into the plan (a later phase's values) and commits.
---@param fields table
---@return resi.intent
function Intent:update(fields)
  for k, v in pairs(fields) do self.plan[k] = v end
  save(self)
  return self
end

--- Marks the intent done, keeping result (anything resi.json encodes).
---@param result? any
---@return resi.intent
function Intent:finish(result)
  self.state, self.result = "done", result
  save(self)
  return self
end

--- Gives the intent up (it will not be resumed), with the reason.
---@param note string
---@return resi.intent
function Intent:abandon(note)
  self.state, self.note = "abandoned", tostring(note)
  save(self)
  return self
end

--- Forgets the intent (a finished one that nothing needs any more).
---@async
function Intent:forget() self.book.db:delete(self.book.ns, self.key) end

function Intent:__tostring()
  return ("resi.intent %s (%s%s)"):format(self.key, self.state, self.resumed and ", resumed" or "")
end

--- Every intent of the book (state: only those in that state), in key order.
---@param state? "pending"|"done"|"abandoned"
---@return resi.intent[]
---@async
function Book:list(state)
  local out = {}
  for _, row in ipairs(self.db:list(self.ns)) do
    if state == nil or row.value.state == state then out[#out + 1] = wrap(self, row.value, row.value.state == "pending") end
  end
  return out
end

--- The unfinished intents: what an earlier run began and did not finish.
---@return resi.intent[]
function Book:pending() return self:list("pending") end

--- Runs one step exactly once across runs and crashes. steps.plan()
--- (optional) chooses the values, recorded before anything is done;
--- steps.act(plan, it) does it and returns the result; steps.find(plan,
--- it) (optional) looks for the effect of an act an earlier run may have
--- made, returning the result, or nil or false when it is not there.
--- Returns the result and how it came: "done" (finished before: the
--- recorded result), "abandoned" (given up before: its result, usually
--- nil), "found" (an earlier run did it; find saw it) or "acted". An act that raises leaves the intent
--- pending (the next run looks first), and the error goes on.
---@param key string
---@param steps {plan?: fun(): table, find?: fun(plan: table, it: resi.intent): any, act: fun(plan: table, it: resi.intent): any}
---@return any result
---@return "done"|"abandoned"|"found"|"acted" how
function Book:once(key, steps)
  if type(steps) ~= "table" or type(steps.act) ~= "function" then bad("once", "steps.act must be a function") end
  local it = self:get(key)
  if not it then it = self:begin(key, steps.plan and steps.plan() or {}) else it.resumed = true end
  -- finished before (or, without the lock, by another process just now)
  if it.state ~= "pending" then return it.result, it.state == "done" and "done" or "abandoned" end
  if it.resumed and steps.find then
    local found = steps.find(it.plan, it)
    if found ~= nil and found ~= false then
      it:finish(found)
      return found, "found"
    end
  end
  local result = steps.act(it.plan, it)
  it:finish(result)
  return result, "acted"
end

-- The lock file of a book: beside the store's file, one per namespace
-- (percent-encoded, so two namespaces never share a file name).
local function lock_path(book)
  local dir = book.db.path:match("^(.*)/[^/]*$") or "."
  local name = book.ns:gsub("[^%w._-]", function(c) return ("%%%02X"):format(c:byte()) end)
  return ("%s/%s.lock"):format(dir, name)
end

--- Takes the book's lock: one run at a time per workflow and account,
--- since two would act on the same intents. On SQLite a file lock beside
--- the store, released when the process ends, even killed. On a shared
--- PostgreSQL store a lease in the database (resi.store.lock: held while
--- renewed, taken over once expired; a holder that cannot renew cancels
--- the task that took the lock before the lease ends), so two machines
--- exclude each other too. Returns the lock (use it as a <close>
--- variable), or nil, message, "busy" when another run holds it after
--- opts.wait seconds (default 0). An in-memory store has no lock.
---@param opts? {wait?: number, lease?: number}
---@return resi.fs.lock|table|nil lock
---@return string|nil err
---@return string|nil code
function Book:lock(opts)
  if self.db.path == ":memory:" then return setmetatable({}, { __close = function() end }) end
  if self.db.shared then return require("resi.store.lock").take(self.db, self.ns, opts) end
  local path = lock_path(self)
  local lock, err, code = fs.lock(path, opts)
  if not lock and code == "busy" then
    return nil, ("another run holds %s (the %s intents)"):format(path, self.ns), "busy"
  end
  return lock, err, code
end

function Book:__tostring() return ("resi.intent.book %s (%s)"):format(self.ns, self.db.path) end

return M
