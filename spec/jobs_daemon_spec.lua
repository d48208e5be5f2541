-- `resi jobs` for real: daemons started as processes on a scratch store,
-- second-level (6-field) cron jobs, kill -9 at random moments and restarts
-- (every slot ends with exactly one outcome, none runs twice, interrupted
-- runs are marked), the SIGTERM drain, SIGHUP reloads with a broken file,
-- the store file's mode and `resi jobs check`'s file:line errors.
local uv = require "luv"
local proc = require "spec.support.proc"
local store = require "resi.store"
local schedule = require "resi.jobs.schedule"

-- A fresh scratch directory.
local function scratch_dir()
  local base = os.tmpname()
  os.remove(base)
  assert(uv.fs_mkdir(base, tonumber("700", 8)))
  return base
end

-- Writes text to path.
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

-- A scratch directory holding a jobs file with text; returns the
-- directory, the file's path and the store's path in it (db, default
-- "/resi.db", below the directory).
local function jobs_file(text, db)
  local dir = scratch_dir()
  local file = dir .. "/jobs.lua"
  write(file, text)
  return dir, file, dir .. (db or "/resi.db")
end

-- The lines of a file (empty when it does not exist).
local function lines(path)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  for l in f:lines() do out[#out + 1] = l end
  f:close()
  return out
end

-- Starts `resi jobs FILE --store DB ...` in the background; returns
-- {pid=, exited=fn -> bool, wait=fn -> code, signal, stderr=fn}.
local function start_daemon(file, db, extra, opts)
  local args = { "jobs", file, "--store", db }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  return require("spec.support.daemon").start(args, opts)
end

-- A scratch directory's jobs file declaring one job, `jobs.` .. decl (its
-- schedule and name, e.g. 'every("1h", "r"'), whose run appends "ID ATTEMPT"
-- to ran.txt then runs the code `after`; opts is the declaration's tail (e.g.
-- ', { on_interrupt = "rerun" }'). Returns the file's, the store's and
-- ran.txt's paths.
local function recording_job(decl, after, opts)
  local dir = scratch_dir()
  local file, out = dir .. "/jobs.lua", dir .. "/ran.txt"
  write(file, ([[
require("resi.jobs").%s, function(run)
  local f = assert(io.open(%q, "a"))
  f:write(run.id, " ", run.attempt, "\n")
  f:close()
  %s
end%s)
]]):format(decl, out, after, opts))
  return file, dir .. "/resi.db", out
end

-- Waits until fn() is true (polling every 50 ms), at most `limit` seconds.
local eventually = proc.eventually

-- The run rows of a job in a store file, oldest first.
local function rows(path, job)
  local db = store.open(path)
  local r = db:history{ job = job, limit = 1000000 }
  db:close()
  local out = {}
  for i = #r, 1, -1 do out[#out + 1] = r[i] end
  return out
end

-- Waits until a run of job has started: its oldest row's start has passed
-- (a slot is claimed, and its row written, ahead of its time).
local function started(path, job)
  return eventually(function()
    local ok, r = pcall(rows, path, job)
    return ok and #r > 0 and r[1].started_at <= resi.now()
  end)
end

describe("resi jobs daemon", function()
  it("survives 50 kill -9 at random moments: every slot has one outcome, none ran twice", function()
    local dir = scratch_dir()
    local file, db, out = dir .. "/jobs.lua", dir .. "/state/resi.db", dir .. "/ran.txt"
    write(file, ([[
local jobs = require "resi.jobs"
jobs.cron("* * * * * *", "tick", function(run)
  local f = assert(io.open(%q, "a"))
  f:write(run.id, "\n")
  f:close()
  resi.sleep(0.3)
end)
]]):format(out))
    math.randomseed(os.time())
    local kills = 0
    for i = 1, 50 do
      local d = start_daemon(file, db)
      resi.sleep(0.1 + math.random() * 0.6)
      d.kill("sigkill")
      local _, sig = d.wait()
      assert.equal(9, sig, d.stderr())
      kills = kills + 1
      -- every fifth time the daemon stays down a while: slots pass unseen (two
      -- or more besides the one it may have claimed ahead, which is released)
      if i % 5 == 0 then resi.sleep(2.2 + math.random()) end
    end
    -- a last, clean run settles what the kills left
    local d = start_daemon(file, db)
    resi.sleep(1.5)
    d.kill("sigterm")
    assert.equal(0, (d.wait()), d.stderr())
    assert.equal(50, kills)

    local r = rows(db, "tick")
    assert.is_true(#r > 20, "only " .. #r .. " rows")
    local by_slot, counts = {}, {}
    for _, row in ipairs(r) do
      assert.is_nil(by_slot[row.nominal_at], "two rows for one slot")
      by_slot[row.nominal_at] = row
      counts[row.status] = (counts[row.status] or 0) + 1
      assert.are_not.equal("running", row.status, "a run left running: " .. schedule.iso(row.nominal_at))
    end
    -- every second from the first slot to the last has exactly one outcome
    for t = r[1].nominal_at, r[#r].nominal_at do
      assert.is_not_nil(by_slot[t], "no outcome for slot " .. schedule.iso(t))
    end
    -- the job ran each slot at most once, and only claimed slots
    local seen = {}
    for _, id in ipairs(lines(out)) do
      assert.is_nil(seen[id], "ran twice: " .. id)
      seen[id] = true
      local t = assert(schedule.parse_time(id:match("@(.*)$")))
      local row = assert(by_slot[t], "ran without a claim: " .. id)
      assert.truthy(({ succeeded = true, interrupted = true, cancelled = true })[row.status], row.status)
    end
    for _, row in ipairs(r) do
      if row.status == "succeeded" then assert.is_true(seen["tick@" .. schedule.iso(row.nominal_at)]) end
    end
    assert.is_true((counts.interrupted or 0) > 0, "no run was interrupted by the kills")
    assert.is_true((counts.succeeded or 0) > 0)
    assert.is_true((counts.coalesced or 0) > 0, "no slot passed while the daemon was down")
  end)

  it("a daemon killed between a slot's claim ahead and its time: the next one releases the claim and runs the slot",
    function()
      local file, db, out = recording_job('cron("*/2 * * * * *", "t"', "", "")
      local d = start_daemon(file, db)
      local d2
      finally(function()
        for _, x in ipairs({ d, d2 }) do if not x.exited() then x.kill("sigkill") end end
      end)
      -- a slot claimed ahead: running, attempt 0, its time still a while off
      local armed
      assert.is_true(eventually(function()
        local ok, r = pcall(rows, db, "t")
        local last = ok and r[#r]
        if last and last.status == "running" and last.attempt == 0 and last.started_at - resi.now() > 0.15 then
          armed = last
        end
        return armed ~= nil
      end, 20), d.stderr())
      d.kill("sigkill")
      assert.equal(9, select(2, d.wait()))
      local row = rows(db, "t")[#rows(db, "t")]
      assert.same({ armed.nominal_at, "running", 0 }, { row.nominal_at, row.status, row.attempt })
      local h = proc.resi({ "jobs", "history", file, "t", "--json", "--limit", "1", "--store", db })
      local newest = require("resi.json").decode(h.stdout:match("[^\n]+"))
      assert.same({ schedule.iso(armed.nominal_at), "claimed" }, { newest.nominal_at, newest.outcome })
      resi.sleep(armed.started_at - resi.now() + 0.3) -- its time passes while no daemon runs
      d2 = start_daemon(file, db)
      local id = "t@" .. schedule.iso(armed.nominal_at)
      assert.is_true(eventually(function()
        for _, l in ipairs(lines(out)) do if l == id .. " 1" then return true end end
        return false
      end), d2.stderr())
      d2.kill("sigterm")
      assert.equal(0, (d2.wait()), d2.stderr())
      local db_ = store.open(db)
      local final = db_:get_run("t", armed.nominal_at)
      db_:close()
      assert.same({ "succeeded", 1 }, { final.status, final.attempt })
      local seen = 0
      for _, l in ipairs(lines(out)) do if l:find(id, 1, true) == 1 then seen = seen + 1 end end
      assert.equal(1, seen)
    end)

  it("reruns an interrupted slot after kill -9 when the job says on_interrupt = rerun", function()
    local file, db, out = recording_job('every("1h", "r"', "if run.attempt == 1 then resi.sleep(30) end",
      ', { on_interrupt = "rerun" }')
    -- a slot to interrupt: `resi jobs run` claims the current second and is killed mid-run
    local errpipe = uv.new_pipe()
    local handle, pid = uv.spawn(proc.resi_path(), { args = { "jobs", "run", file, "r", "--store", db },
      stdio = { nil, nil, errpipe } }, function() end)
    assert(handle, pid)
    assert.is_true(eventually(function() return #lines(out) == 1 end))
    uv.kill(pid, "sigkill")
    resi.sleep(0.2)
    handle:close()
    errpipe:close()
    local d2 = start_daemon(file, db)
    assert.is_true(eventually(function() return #lines(out) == 2 end), d2.stderr())
    d2.kill("sigterm")
    assert.equal(0, (d2.wait()))
    local l = lines(out)
    assert.equal(l[1]:gsub(" 1$", " 2"), l[2])
    local r = rows(db, "r")
    assert.equal(1, #r)
    assert.equal("succeeded", r[1].status)
    assert.equal(2, r[1].attempt)
  end)

  it("creates the store 0600 in a 0700 directory", function()
    local dir, file, db = jobs_file('require("resi.jobs").every(1, "a", function() end)\n', "/new/sub/resi.db")
    local d = start_daemon(file, db)
    assert.is_true(eventually(function() return uv.fs_stat(db) ~= nil end))
    resi.sleep(0.3)
    d.kill("sigterm")
    assert.equal(0, (d.wait()))
    assert.equal("600", ("%o"):format(uv.fs_stat(db).mode & 511))
    assert.equal("700", ("%o"):format(uv.fs_stat(dir .. "/new/sub").mode & 511))
  end)

  it("drains on SIGTERM: a run that finishes in time succeeds, one that does not is cancelled", function()
    local _, file, db = jobs_file([[
local jobs = require "resi.jobs"
jobs.every(1, "short", function() resi.sleep(1.5) end)
jobs.every(1, "long", function() resi.sleep(30) end)
]])
    local d = start_daemon(file, db, { "--stop-timeout", "2.5" })
    assert.is_true(started(db, "long"))
    resi.sleep(0.2)
    local t0 = uv.hrtime()
    d.kill("sigterm")
    assert.equal(0, (d.wait()), d.stderr())
    local took = (uv.hrtime() - t0) / 1e9
    assert.is_true(took >= 2 and took < 5, "drain took " .. took)
    local long = rows(db, "long")
    assert.equal("cancelled", long[1].status)
    local short = rows(db, "short")
    assert.equal("succeeded", short[1].status)
    for _, row in ipairs(short) do assert.are_not.equal("running", row.status) end
    assert.truthy(d.stderr():find('"msg":"stopping: waiting for running jobs"', 1, true))
  end)

  it("cancels at once on a second SIGTERM while draining", function()
    local _, file, db = jobs_file('require("resi.jobs").every(1, "long", function() resi.sleep(30) end)\n')
    local d = start_daemon(file, db, { "--stop-timeout", "20" })
    assert.is_true(started(db, "long"))
    local t0 = uv.hrtime()
    d.kill("sigterm")
    resi.sleep(0.3)
    d.kill("sigterm")
    assert.equal(0, (d.wait()), d.stderr())
    assert.is_true((uv.hrtime() - t0) / 1e9 < 3)
    assert.equal("cancelled", rows(db, "long")[1].status)
  end)

  it("reloads on SIGHUP; a broken file keeps the old jobs and says why", function()
    local _, file, db = jobs_file('require("resi.jobs").every(1, "a", function() end)\n')
    local d = start_daemon(file, db)
    assert.is_true(eventually(function()
      local ok, r = pcall(rows, db, "a")
      return ok and #r > 0
    end))
    write(file, 'local jobs = require("resi.jobs")\njobs.every(1, "a", function() end, { overlap = "sometimes" })\n')
    d.kill("sighup")
    assert.is_true(eventually(function() return d.stderr():find("reload failed", 1, true) ~= nil end))
    assert.truthy(d.stderr():find("jobs.lua:2:", 1, true))
    local before = #rows(db, "a")
    resi.sleep(1.5)
    assert.is_true(#rows(db, "a") > before, "the old job stopped")
    write(file, 'local jobs = require("resi.jobs")\njobs.every(1, "b", function() end)\n')
    d.kill("sighup")
    assert.is_true(eventually(function() return #rows(db, "b") > 0 end))
    d.kill("sigterm")
    assert.equal(0, (d.wait()))
  end)

  it("serves /metrics (strictly valid under load), /livez and /readyz with --metrics", function()
    local dir = scratch_dir()
    local file, db = dir .. "/jobs.lua", dir .. "/resi.db"
    local text = { 'local jobs = require("resi.jobs")' }
    for i = 1, 100 do
      text[#text + 1] = ('jobs.cron("* * * * * *", "m%d", function() resi.sleep(0.2) end)'):format(i)
    end
    write(file, table.concat(text, "\n") .. "\n")
    local port = 20000 + math.random(0, 20000)
    local d = start_daemon(file, db, { "--metrics", "127.0.0.1:" .. port })
    local http = require "resi.http"
    local exposition = require "spec.support.exposition"
    local url = ("http://127.0.0.1:%d"):format(port)
    local res
    assert.is_true(eventually(function()
      res = http.get(url .. "/metrics")
      return res and res.body:find('resi_job_runs_total{job="m1",outcome="succeeded"} [1-9]') ~= nil
    end), d.stderr())
    assert.truthy(res.body:find('resi_job_runs_total{job="m1",outcome="failed"} 0', 1, true))
    -- 5 rounds of 10 concurrent scrapes while 100 jobs run every second
    for _ = 1, 5 do
      local fetches = {}
      for i = 1, 10 do fetches[i] = function() return http.get(url .. "/metrics") end end
      for _, r in ipairs({ resi.all(fetches) }) do
        assert.equal(200, r.status)
        local ok, err = pcall(exposition.parse, r.body)
        assert.is_true(ok, err)
      end
      resi.sleep(0.2)
    end
    assert.equal(200, http.get(url .. "/livez").status)
    assert.equal(200, http.get(url .. "/readyz").status)
    d.kill("sigterm")
    assert.equal(0, (d.wait()), d.stderr())
  end)

  it("reports the provider limiters its jobs use on /metrics: one series per account, shared by its jobs", function()
    local sim = require("spec.support.sim").start { seed = 7, provider = "unknownproxies",
      accounts = { unknownproxies = { { username = "reseller", password = "pw-reseller-1" } } } }
    finally(function() sim:stop() end)
    -- two jobs on one account, each opening its own client every run
    local _, file, db = jobs_file([[
local jobs = require "resi.jobs"
for _, name in ipairs({ "a", "b" }) do
  jobs.every(1, name, function() require("resi.providers").open("unknownproxies"):tokens() end)
end
]])
    local port = 20000 + math.random(0, 20000)
    local d = start_daemon(file, db, { "--metrics", "127.0.0.1:" .. port }, { env = sim:env { "unknownproxies" } })
    finally(function() if not d.exited() then d.kill("sigkill") end end)
    local http = require "resi.http"
    local expo = require "spec.support.exposition"
    local label = { limiter = "unknownproxies:reseller:default" }
    -- the runs that succeeded before a scrape each made a call through the account's one limiter
    local function succeeded()
      local n = 0
      for _, job in ipairs({ "a", "b" }) do
        for _, r in ipairs(rows(db, job)) do if r.status == "succeeded" then n = n + 1 end end
      end
      return n
    end
    assert.is_true(eventually(function() return succeeded() >= 4 end, 15), d.stderr())
    local before = succeeded()
    local res = http.get(("http://127.0.0.1:%d/metrics"):format(port))
    assert.equal(200, res.status)
    local p = expo.parse(res.body)
    local granted = expo.value(p, "resi_ratelimit_granted_total", label)
    assert.is_true(granted ~= nil and granted >= before, ("granted %s after %d runs"):format(tostring(granted), before))
    assert.equal(0, expo.value(p, "resi_ratelimit_rejected_total", label))
    assert.equal(0, expo.value(p, "resi_ratelimit_queued", label))
    local series = 0
    for _, sample in ipairs(p.families.resi_ratelimit_granted_total.samples) do
      if sample.labels.limiter:find("^unknownproxies:") then series = series + 1 end
    end
    assert.equal(1, series) -- one account, one series
    d.kill("sigterm")
    assert.equal(0, (d.wait()), d.stderr())
    for _, r in ipairs(rows(db, "a")) do assert.are_not.equal("failed", r.status, r.error) end
  end)

  it("tells systemd READY=1 after recovery, WATCHDOG=1, STOPPING=1 and EXTEND_TIMEOUT_USEC", function()
    local dir, file, db = jobs_file('require("resi.jobs").every(1, "a", function() end)\n')
    local sock = dir .. "/notify.sock"
    local receiver = [=[
import os, signal, socket, subprocess, sys, time
sock, resi, file, db = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock)
env = dict(os.environ, NOTIFY_SOCKET=sock, WATCHDOG_USEC="400000", RESI_LOG_FORMAT="json")
p = subprocess.Popen([resi, "jobs", file, "--store", db, "--stop-timeout", "1"], env=env)
time.sleep(1.5)
p.send_signal(signal.SIGTERM)
rc = p.wait(10)
s.settimeout(0.2)
while True:
    try:
        print(s.recv(4096).decode().replace("\n", "|"))
    except socket.timeout:
        break
sys.exit(rc)
]=]
    local r = proc.run { "python3", "-c", receiver, sock, proc.resi_path(), file, db }
    assert.equal(0, r.status, r.stderr)
    local msgs = {}
    for l in r.stdout:gmatch("[^\n]+") do msgs[#msgs + 1] = l end
    assert.truthy(msgs[1]:find("^READY=1|STATUS="), msgs[1])
    local watchdogs, stopping, extend = 0, false, false
    for _, m in ipairs(msgs) do
      if m == "WATCHDOG=1" then watchdogs = watchdogs + 1 end
      if m == "STOPPING=1" then stopping = true end
      if m:match("^EXTEND_TIMEOUT_USEC=%d+$") then extend = true end
    end
    assert.is_true(watchdogs >= 3, r.stdout)
    assert.is_true(stopping, r.stdout)
    assert.is_true(extend, r.stdout)
  end)

  it("a run's timeout cancels its task: its HTTP transfer is aborted and the slot ends timed_out", function()
    local dir = scratch_dir()
    local file, db = dir .. "/jobs.lua", dir .. "/resi.db"
    -- a server that accepts and never answers; it notes when the client hangs up
    local server = uv.new_tcp()
    assert(server:bind("127.0.0.1", 0))
    local port = server:getsockname().port
    local accepted, closed = 0, 0
    server:listen(16, function()
      local c = uv.new_tcp()
      server:accept(c)
      accepted = accepted + 1
      c:read_start(function(_, data)
        if not data then
          closed = closed + 1
          c:close()
        end
      end)
    end)
    write(file, ([[
require("resi.jobs").cron("*/2 * * * * *", "hang", function()
  require("resi.http").get("http://127.0.0.1:%d/", { timeout = 60 })
end, { timeout = 0.5 })
]]):format(port))
    local d = start_daemon(file, db)
    assert.is_true(eventually(function()
      local ok, r = pcall(rows, db, "hang")
      return ok and #r > 0 and r[1].status ~= "running"
    end), d.stderr())
    assert.equal("timed_out", rows(db, "hang")[1].status)
    assert.is_true(eventually(function() return closed > 0 end, 3), "the transfer was not aborted")
    d.kill("sigterm")
    assert.equal(0, (d.wait()))
    server:close()
  end)

  it("resi jobs check reports a bad option, an unknown option and a duplicate name at file:line", function()
    local dir = scratch_dir()
    local file = dir .. "/jobs.lua"
    local cases = {
      { 'local jobs = require "resi.jobs"\n\njobs.every("5m", "a", function() end, { catchup = "sometimes" })\n',
        "jobs.lua:3:", "catchup" },
      { 'local jobs = require "resi.jobs"\njobs.every("5m", "a", function() end, { colour = "red" })\n',
        "jobs.lua:2:", "colour" },
      { 'local jobs = require "resi.jobs"\njobs.every(60, "a", function() end)\njobs.cron("* * * * *", "a", print)\n',
        "jobs.lua:3:", "duplicate" },
      { 'local jobs = require "resi.jobs"\njobs.cron("61 * * * *", "a", function() end)\n', "jobs.lua:2:", "minute" },
      { 'local jobs = require "resi.jobs"\njobs.every("5 parsecs", "a", function() end)\n', "jobs.lua:2:", "interval" },
    }
    for _, c in ipairs(cases) do
      write(file, c[1])
      local r = proc.resi({ "jobs", "check", file })
      assert.equal(2, r.status, r.stderr)
      assert.truthy(r.stderr:find(c[2], 1, true), r.stderr)
      assert.truthy(r.stderr:find(c[3], 1, true), r.stderr)
    end
    -- the daemon refuses to start with it
    local r = proc.resi({ "jobs", file, "--store", dir .. "/resi.db" })
    assert.equal(2, r.status)
  end)

  it("run, history --json, pause and resume work on the store", function()
    local dir = scratch_dir()
    local file, db = dir .. "/jobs.lua", dir .. "/resi.db"
    write(file, 'local jobs = require "resi.jobs"\njobs.every("1h", "once", function(run) print("ran " .. run.id) end)\n'
      .. 'jobs.every("1h", "bad", function() error("nope") end)\n')
    local r = proc.resi({ "jobs", "run", file, "once", "--store", db })
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:find("ran once@", 1, true))
    assert.truthy(r.stdout:find("once: succeeded", 1, true))
    r = proc.resi({ "jobs", "run", file, "bad", "--store", db })
    assert.equal(1, r.status)
    r = proc.resi({ "jobs", "history", file, "--json", "--store", db })
    assert.equal(0, r.status, r.stderr)
    local json = require "resi.json"
    local got = {}
    for l in r.stdout:gmatch("[^\n]+") do
      local e = json.decode(l)
      got[e.job] = e
      for _, k in ipairs({ "job", "nominal_at", "outcome", "started_at", "finished_at", "node" }) do
        assert.is_not_nil(e[k], k .. " missing in " .. l)
      end
    end
    assert.equal("succeeded", got.once.outcome)
    assert.equal("failed", got.bad.outcome)
    assert.equal(0, proc.resi({ "jobs", "pause", file, "once", "--store", db }).status)
    r = proc.resi({ "jobs", "list", file, "--json", "--store", db })
    for l in r.stdout:gmatch("[^\n]+") do
      local e = json.decode(l)
      if e.job == "once" then assert.is_true(e.paused) end
      assert.equal(3, #e.next)
    end
    assert.equal(0, proc.resi({ "jobs", "resume", file, "once", "--store", db }).status)
    r = proc.resi({ "jobs", "pause", file, "nosuch", "--store", db })
    assert.equal(2, r.status)
  end)
end)
