-- examples/jobs.lua: a jobs file for `resi jobs` (see examples/resi-jobs.service).
--
--   resi jobs check examples/jobs.lua           validate (file:line on error)
--   resi jobs explain examples/jobs.lua --next 5 fire times, with DST markers
--   resi jobs examples/jobs.lua                 run until SIGTERM
--
-- Every slot of every job ends with one recorded outcome in the store, so a
-- restart (or kill -9) neither loses nor repeats a run; `resi jobs history
-- examples/jobs.lua` shows them. Credentials come from the environment
-- (UNKNOWNPROXIES_USERNAME/_PASSWORD, RF_API_KEY, or $CREDENTIALS_DIRECTORY
-- under systemd); RESI_*_URL points the providers at `resi sim` for a dry run.
local jobs = require "resi.jobs"
local log = require "resi.log"
local notify = require "resi.notify"

-- Where notifications go: every target configured through RESI_NOTIFY_*
-- (RESI_NOTIFY_SLACK_URL, RESI_NOTIFY_WEBHOOK_URL + _SECRET, ... see
-- README "Notifications"), or nowhere when none is. Jobs with notify_on
-- send there too; `resi notify test all` checks the targets.
local notifier = notify.from_env()

-- Token rotation every 5 minutes: scripts/rotate.lua runs in process, exactly
-- as `resi run scripts/rotate.lua --threshold 0.9 ...` would. A slow rotation
-- makes the next slot skip (overlap = "skip", the default) instead of piling
-- up; a run killed by a restart is marked interrupted and not repeated
-- (rotate.lua's intents in resi's store resume it on the next slot). Paths
-- are relative to the daemon's working directory. resi.rotate also sends
-- one event per run that changed something to the notifier of the
-- environment (RESI_NOTIFY_*), when one is configured.
jobs.script("*/5 * * * *", "rotate", "scripts/rotate.lua", {
  "--provider", "unknownproxies",
  "--threshold", "0.9",
  "--out", "proxies.txt", "--format", "url",
}, {
  timeout = 240,            -- cancel a stuck run (its HTTP transfers are aborted) before the next slot
  catchup = "latest",       -- after downtime: one run, with run.missed = slots it stands for
  grace = 600,              -- ... unless the latest slot is more than 10 minutes old
  notify_on = { failure_after = 3, recovery = true }, -- the 3rd failure in a row, and the run that fixes it
})

-- A daily usage report at 06:00 Berlin time. 06:00 exists every day, so DST
-- never moves it; a fixed-time job at 02:30 would run at 03:00 on the spring
-- day and once (the first 02:30) in autumn: `resi jobs explain` shows it.
jobs.script("0 6 * * *", "usage-report", "scripts/usage_report.lua", { "--format", "json" }, {
  tz = "Europe/Berlin",
  catchup = "latest",
  grace = 6 * 3600,         -- still worth sending until noon
  retry = { attempts = 3, backoff = 60 },
  stable_offset = 120,      -- spread hosts sharing an account over two minutes, the same every day
})

-- An hourly ResiFactory balance check, as a Lua function: pools under
-- RF_BALANCE_MIN_GB (default 2) are logged and notified, one event per
-- check naming every low pool (hourly while it stays low). run.id
-- ("rf-balance@2026-03-29T06:00:00Z") is the same on every attempt of a
-- slot; it is the event's id, so a receiver can drop a retried slot's
-- duplicate. A notification that fails is logged and counted, never a
-- failed run.
local MIN_GB = tonumber(os.getenv("RF_BALANCE_MIN_GB") or "") or 2
jobs.every("1h", "rf-balance", function(run)
  local rf = require("resi.providers.resifactory").new {}
  local res = rf:balance()
  local low = {}
  for pool, gb in pairs(res.balances or {}) do
    if type(gb) == "number" and gb < MIN_GB then
      log.warn("ResiFactory balance low", { pool = pool, gb = gb, run_id = run.id })
      low[#low + 1] = { name = pool, value = ("%.2f GB"):format(gb) }
    end
  end
  table.sort(low, function(a, b) return a.name < b.name end)
  if #low > 0 and notifier then
    notifier:send { id = run.id, kind = "low_balance", severity = "warning",
      title = ("ResiFactory balance under %g GB: %s"):format(MIN_GB, low[1].name .. (#low > 1 and (" and " .. (#low - 1) .. " more") or "")),
      text = "Top up before the pools run dry: a pool at zero gets demo credentials that do not work.",
      fields = low }
  end
end, { timeout = 60, jitter = 30, retry = { attempts = 2, backoff = 10 },
  notify_on = { failure_after = 3, recovery = true } })
