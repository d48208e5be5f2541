#!/usr/bin/env resi
-- examples/topup.lua: raises every UnknownProxies token that has under 1 GB
-- left (dataLimit - used < 1 GB) by 5 GB, once.
--
--   resi run examples/topup.lua
--
-- Credentials come from UNKNOWNPROXIES_USERNAME / UNKNOWNPROXIES_PASSWORD;
-- RESI_UNKNOWNPROXIES_URL points at `resi sim` for a try without spending:
--
--   resi sim --env-file sim.env &   # then: set -a; . ./sim.env; set +a
--
-- Crash-safe through resi.intent: each top-up is an intent keyed by the
-- token and its old limit ("TOKEN:LIMIT"), whose plan is the new limit as
-- an absolute value, recorded before the change is sent. A run killed at
-- any point (kill -9, a reboot) leaves the intent pending; the next run
-- settles it first (it finds the limit already raised, or raises it), so a
-- rerun neither tops a token up twice nor misses one. A token topped up is
-- topped up again only when its new limit runs low. Intents live in
-- $XDG_STATE_HOME/resi/resi.db (or $RESI_STORE), so runs from cron,
-- `resi jobs` or any directory share them; one run at a time (a lock).
local intent = require "resi.intent"
local providers = require "resi.providers"

local GB = 1000000000
local THRESHOLD, STEP = 1 * GB, 5 * GB

local acct = providers.open("unknownproxies")
local book = intent.open("topup", { account = acct })
local lock <close> = assert(book:lock { wait = 60 }) -- luacheck: ignore lock (one run at a time, until exit)

-- Looks for a top-up an earlier run made: the token's limit already at the
-- plan's (or the token gone: nothing left to do).
local function find(p)
  local ok, t = pcall(acct.token, acct, p.id)
  if not ok and type(t) == "table" and t.kind == "not_found" then return "gone" end
  if assert(ok and t, t).status == "deleted" then return "gone" end
  return t.limit_bytes >= p.limit and t.limit_bytes or nil
end

-- Sets the token's limit to the plan's (absolute: repeating it is harmless).
local function act(p) return acct:set_limit(p.id, p.limit).limit_bytes end

-- Runs one top-up exactly once and says how it went.
local function top_up(key, plan)
  local limit, how = book:once(key, { plan = function() return plan end, find = find, act = act })
  print(("%s: limit %d -> %s (%s)"):format(plan.id, plan.limit - STEP, tostring(limit), how))
end

for _, it in ipairs(book:pending()) do top_up(it.key, it.plan) end -- what a killed run left, first
local tokens = acct:tokens()
for _, t in ipairs(tokens) do
  if t.limit_bytes - t.used_bytes < THRESHOLD then
    top_up(("%s:%d"):format(t.id, t.limit_bytes), { id = t.id, limit = t.limit_bytes + STEP })
  end
end
print(("%d token(s) checked"):format(#tokens))
