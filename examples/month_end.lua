#!/usr/bin/env resi
-- examples/month_end.lua: disables the Oxylabs sub-users that have used
-- their monthly budget (this month's traffic at or over it), once a month.
--
--   resi run examples/month_end.lua [BUDGET_BYTES]
--
-- The budget, in bytes, applies to every sub-user; it comes from the
-- argument, else $MONTHLY_BUDGET_BYTES, else each sub-user's own
-- traffic_limit (sub-users without a limit are then left alone).
-- Credentials come from OXYLABS_USERNAME / OXYLABS_PASSWORD;
-- RESI_OXYLABS_URL points at `resi sim` (`resi sim --env-file sim.env`).
--
-- Crash-safe through resi.intent: each disable is an intent keyed by the
-- month and the sub-user ("YYYY-MM:ID", UTC), recorded before the change is
-- sent. A run killed at any point leaves it pending; the next run settles
-- it first (it finds the sub-user already disabled, or disables it). A
-- sub-user disabled this month and enabled again by hand stays enabled:
-- the intent is done until the next month. Intents live in
-- $XDG_STATE_HOME/resi/resi.db (or $RESI_STORE), shared by every run.
local intent = require "resi.intent"
local providers = require "resi.providers"

local given = resi.args[1] or os.getenv("MONTHLY_BUDGET_BYTES")
local budget = given and math.tointeger(tonumber(given))
if given and not (budget and budget > 0) then
  error(("budget must be a positive whole number of bytes, got %q"):format(given), 0)
end

local acct = providers.open("oxylabs")
local book = intent.open("month_end", { account = acct })
local lock <close> = assert(book:lock { wait = 60 }) -- luacheck: ignore lock (one run at a time, until exit)
local month = os.date("!%Y-%m")

-- The steps of one disable: look for an earlier run's first (the sub-user
-- disabled, or gone: nothing left to do), then disable.
local steps = {
  find = function(p)
    local ok, s = pcall(acct.token, acct, p.id)
    if not ok and type(s) == "table" and s.kind == "not_found" then return "gone" end
    return assert(ok and s, s).status == "disabled" and "disabled" or nil
  end,
  act = function(p) return acct:disable(p.id).status end,
}

-- Runs one disable exactly once and says how it went.
local function disable(key, plan)
  local status, how = book:once(key, { plan = function() return plan end, find = steps.find, act = steps.act })
  print(("%s (%s): used %d of %d bytes: %s (%s)"):format(plan.id, plan.username, plan.used, plan.budget, status, how))
end

for _, it in ipairs(book:pending()) do disable(it.key, it.plan) end -- what a killed run left, first
local subs = acct:tokens()
for _, s in ipairs(subs) do
  local limit = budget or s.limit_bytes
  if s.status == "active" and limit and limit > 0 and s.used_bytes >= limit then
    disable(month .. ":" .. s.id, { id = s.id, username = s.username, used = s.used_bytes, budget = limit })
  end
end
print(("%d sub-user(s) checked for %s"):format(#subs, month))
