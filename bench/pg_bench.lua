-- bench/pg_bench.lua WORKDIR CLAIMS SLOTS LEASE: the shared-store numbers
-- for bench/sections/85-pg.sh, against a throw-away PostgreSQL on loopback
-- (spec/support/postgres.lua) and a SQLite file in WORKDIR. Prints
-- `key value...` lines:
--   claim_sqlite N median p99 mean max   (ms; bench/claim_commit.lua's db:claim_run on a file)
--   claim_pg N median p99 mean max       (the same program and statement on PostgreSQL)
--   lease_pg N median p99 mean max       (db:claim_leased: the database-clock claim with a lease)
--   slots3 SLOTS seconds per_second      (three processes claiming the same SLOTS slots at once)
--   failover next_late interrupted_after lease   (seconds; kill -9 of the owner of a running run)
local uv = require "luv"
local postgres = require "spec.support.postgres"
local proc = require "spec.support.proc"
local daemon = require "spec.support.daemon"
local store = require "resi.store"

local work, claims, slots, lease = resi.args[1], tonumber(resi.args[2]), tonumber(resi.args[3]), tonumber(resi.args[4])
local server = postgres.start()
local n_db = 0

-- A fresh database; its URL.
local function fresh()
  n_db = n_db + 1
  server.admin("CREATE DATABASE b" .. n_db)
  return (server.url:gsub("/postgres$", "/b" .. n_db))
end

-- Runs resi with args; its stdout, raising on failure.
local function run(args)
  local r = proc.resi(args)
  if r.status ~= 0 then error(table.concat(args, " ") .. ": " .. r.stderr, 0) end
  return (r.stdout:gsub("\n$", ""))
end

local ok, err = pcall(function()
  print("claim_sqlite " .. run({ "bench/claim_commit.lua", work .. "/claim.db", tostring(claims) }))
  print("claim_pg " .. run({ "bench/claim_commit.lua", fresh(), tostring(claims) }))
  -- one lease claim per slot, timed per call
  print("lease_pg " .. run({ "-e", [[
    local db = require("resi.store").open(resi.args[1])
    local n, me, base = math.tointeger(tonumber(resi.args[2])), require("resi.store.lease").owner_id(), os.time() - 1000000
    local ms = {}
    for i = 1, n do
      local t0 = resi.monotonic()
      assert(db:claim_leased { job = "bench", nominal_at = base + i, owner = me, lease = 15 })
      ms[i] = (resi.monotonic() - t0) * 1000
    end
    local sum = 0
    for _, v in ipairs(ms) do sum = sum + v end
    table.sort(ms)
    print(("%d %.4f %.4f %.4f %.4f"):format(n, ms[math.ceil(n / 2)], ms[math.ceil(n * 0.99)], sum / n, ms[n]))
  ]], fresh(), tostring(claims) }))
  -- three "daemons" claiming the same past slots as fast as each can
  local url = fresh()
  store.open(url):close()
  local code = [[
    local db = require("resi.store").open(resi.args[1])
    local n, base, me = math.tointeger(tonumber(resi.args[2])), math.tointeger(tonumber(resi.args[3])),
      require("resi.store.lease").owner_id()
    local won = 0
    for i = 1, n do
      if db:claim_leased { job = "s", nominal_at = base + i, owner = me, lease = 15 } then won = won + 1 end
    end
    print(won)
  ]]
  local base = os.time() - slots - 10
  local t0 = uv.hrtime()
  local res = { resi.all {
    function() return proc.resi({ "-e", code, url, tostring(slots), tostring(base) }) end,
    function() return proc.resi({ "-e", code, url, tostring(slots), tostring(base) }) end,
    function() return proc.resi({ "-e", code, url, tostring(slots), tostring(base) }) end,
  } }
  local secs = (uv.hrtime() - t0) / 1e9
  local won = 0
  for _, r in ipairs(res) do won = won + (tonumber(r.stdout) or error(r.stderr, 0)) end
  assert(won == slots, ("%d slots claimed of %d (base %d): %s"):format(won, slots, base, res[1].stdout .. res[1].stderr))
  print(("slots3 %d %.3f %.0f"):format(slots, secs, slots / secs))
  -- failover: two daemons, a 1-second job of 0.5 s (overlap = "allow": with
  -- the default skip, the dead node's run holds the job until its lease ends,
  -- since a frozen node cannot be told from a dead one); kill -9 the owner of a run
  url = fresh()
  local file = work .. "/failover.lua"
  local f = assert(io.open(file, "w"))
  f:write('local jobs = require "resi.jobs"\njobs.every(1, "tick", function() resi.sleep(0.5) end, { overlap = "allow" })\n')
  f:close()
  local args = { "jobs", file, "--store", url, "--lease", tostring(lease) }
  local list = { daemon.start(args), daemon.start(args) }
  local db = store.open(url)
  resi.sleep(4)
  local victim, row
  proc.eventually(function()
    for _, r in ipairs(db:running_runs()) do
      for _, d in ipairs(list) do if d.pid == r.pid then victim, row = d, r return true end end
    end
    return false
  end, 5)
  assert(victim, "no run in progress")
  victim.kill("sigkill")
  local killed_at = db:db_clock()
  victim.wait()
  local nxt
  proc.eventually(function()
    nxt = db:get_run("tick", row.nominal_at + 1)
    return nxt ~= nil and nxt.started_at ~= nil
  end, 5)
  local interrupted
  proc.eventually(function()
    local r = db:get_run("tick", row.nominal_at)
    if r.status == "interrupted" then interrupted = r.finished_at - killed_at return true end
    return false
  end, lease * 3)
  for _, d in ipairs(list) do d.kill("sigterm") end
  for _, d in ipairs(list) do d.wait() end
  db:close()
  print(("failover %.3f %s %g"):format(nxt.started_at - nxt.nominal_at, interrupted and ("%.3f"):format(interrupted) or "none", lease))
end)
server.stop()
if not ok then error(err, 0) end
