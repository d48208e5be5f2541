#!/usr/bin/env resi
-- examples/sticky_refresh.lua: a fresh ResiFactory sticky list each day,
-- written to a file (atomically, mode 0600): one generate per UTC day,
-- however often it runs (hourly from cron is fine).
--
--   resi run examples/sticky_refresh.lua [FILE] [QUANTITY]
--
-- FILE defaults to $STICKY_FILE, else sticky.txt (made absolute at the
-- first run of the day); QUANTITY to 100 sessions of 24 hours. The key
-- comes from RF_API_KEY; RESI_RESIFACTORY_URL points at `resi sim`
-- (`resi sim --env-file sim.env`).
--
-- Crash-safe through resi.intent: the day's generate is an intent keyed by
-- the UTC date, and its Idempotency-Key is the intent's, fixed when the
-- intent was recorded. A run killed between the generate and the write
-- leaves the intent pending; the next run sends the same request with the
-- same key, ResiFactory replays the first answer (no second spend) and the
-- list is written. A pending intent of an earlier day is given up.
-- Intents live in $XDG_STATE_HOME/resi/resi.db (or $RESI_STORE).
local fs = require "resi.fs"
local intent = require "resi.intent"
local providers = require "resi.providers"

local out = resi.args[1] or os.getenv("STICKY_FILE") or "sticky.txt"
if out:sub(1, 1) ~= "/" then out = resi.uv.cwd() .. "/" .. out end
local quantity = math.tointeger(tonumber(resi.args[2] or "100"))
if not quantity then error("QUANTITY must be a whole number, got " .. tostring(resi.args[2]), 0) end

local acct = providers.open("resifactory")
local book = intent.open("sticky_refresh", { account = acct })
local lock <close> = assert(book:lock { wait = 60 }) -- luacheck: ignore lock (one run at a time, until exit)
local day = os.date("!%Y-%m-%d")
for _, it in ipairs(book:pending()) do
  if it.key ~= day then it:abandon("a later day (" .. day .. ") has its own list") end
end

local result, how = book:once(day, {
  -- recorded first: the request's fields and the file (a replay needs the same body)
  plan = function()
    return { out = out, fields = { proxyType = "sticky", sessionDuration = 1440, quantity = quantity, format = "list" } }
  end,
  act = function(p, it)
    local res = acct:generate(p.fields, { idempotency_key = it.idempotency_key })
    fs.write_atomic(p.out, res.list:format("url"), 384) -- 0600: the list holds passwords
    return { out = p.out, count = #res.list, replayed = res.replayed }
  end,
})
print(("%s: %d sticky sessions in %s (%s%s)"):format(day, result.count, result.out, how,
  result.replayed and ", replayed: no second spend" or ""))
