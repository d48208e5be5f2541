--- resi.rotate.journal: imports the JSON journal older rotate.lua runs kept
--- (rotate-state.json, {version, run, rotations = {"provider:id" = {...}}})
--- into resi.store's intents, once: the file is then renamed FILE.imported,
--- so a second import cannot happen and nothing is lost.
local fs = require "resi.fs"
local json = require "resi.json"
local intent = require "resi.intent"
local steps = require "resi.rotate.steps"

local M = {}

-- The fields of an old rotation that become its intent's plan.
local PLAN = { "old_id", "old_username", "share", "limit_bytes", "unlimited", "hours", "like", "new_username",
  "name_attempt", "new_password", "new_id", "published_run", "retire_after" }

-- Raises a user error naming the journal.
local function fail(path, msg) error({ user = true, message = ("journal %s: %s"):format(path, msg) }, 0) end

-- The one account of the run for a provider (an old journal names only
-- the provider), or a user error when there is none or several.
local function account_for(path, accts, provider)
  local found
  for _, a in ipairs(accts) do
    local name = a.acct and a.acct.name or a.spec.name
    if name == provider then
      if found then fail(path, "it names " .. provider .. " rotations but this run has several " .. provider
        .. " accounts: import it with one (--provider or an accounts file with one)") end
      found = a
    end
  end
  return found
end

--- Imports path's rotations into each account's "rotate" intents (the
--- accounts are opened as needed). A missing file does nothing; one that
--- is not a journal is a user error naming it.
---@param path string
---@param accts table[]  resi.rotate's account entries
---@param db resi.store.db
---@param say fun(line: string)
---@async
function M.import(path, accts, db, say)
  local text = fs.read(path)
  if not text then return end
  local st, err = json.safe_decode(text)
  if type(st) ~= "table" or type(st.rotations) ~= "table" then
    fail(path, "not a journal: " .. (err or "rotations must be an object"))
  end
  local n = 0
  for _, r in pairs(st.rotations) do
    local a = type(r) == "table" and account_for(path, accts, r.provider)
    if a then
      a.acct = a.acct or require("resi.providers").open(a.spec.name, a.opts)
      local plan = {}
      for _, k in ipairs(PLAN) do plan[k] = r[k] end
      plan.phase = r.phase == "retired" and "published" or r.phase
      local book = intent.open("rotate", { account = a.acct, store = db })
      local it = book:begin(tostring(r.old_id), plan)
      if r.phase == "retired" and it.state == "pending" then it:finish { note = r.note, new_id = r.new_id } end
      if r.new_id and r.new_password then db:set(steps.passwords_ns(a.acct), r.new_id, r.new_password) end
      -- the journal's run numbers go on, so "published in an earlier run" keeps its meaning
      local ns = steps.runs_ns(a.acct)
      db:set(ns, "run", math.max(math.tointeger(db:get(ns, "run")) or 0, math.tointeger(st.run) or 0))
      n = n + 1
    end
  end
  local ok, rerr = os.rename(path, path .. ".imported")
  if not ok then fail(path, "imported, but it cannot be renamed: " .. tostring(rerr)) end
  say(("imported %d rotations from %s into the store (the file is now %s.imported)"):format(n, path, path))
end

return M
