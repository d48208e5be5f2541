-- Several `resi jobs` daemons on one real PostgreSQL (spec/support/postgres),
-- the same jobs file, 1-second slots: every slot gets exactly one outcome and
-- none runs twice while the spec kill -9s the owner of a running run,
-- freezes one (SIGSTOP) past its lease and resumes it, restarts PostgreSQL,
-- and runs one daemon with its clock 20 s ahead (faketime). Then the same
-- through PgBouncer in transaction pooling mode. RESI_PG_SLOTS sets how
-- many seconds of slots the long run covers (default 240).
local uv = require "luv"
local json = require "resi.json"
local store = require "resi.store"
local files = require "spec.support.files"
local proc = require "spec.support.proc"
local postgres = require "spec.support.postgres"
local daemon = require "spec.support.daemon"

local LEASE = 2
local FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
-- libfaketime preloaded into a sanitizer build hangs in ASan's start-up
-- (both intercept the clock), so the ASan run of the suite (make asan) runs
-- the third daemon with the real clock; make test covers the clock ahead.
local SANITIZED = proc.resi_path():find("build%-asan") ~= nil

local server = postgres.for_block()
local dir

-- A jobs file whose job `tick` runs every second, writes "START slot pid"
-- and "END slot pid" lines to log, and takes `seconds`.
local function tick_file(name, log, seconds, extra)
  return files.write(dir, name, ([[
local jobs = require "resi.jobs"
local uv = require "luv"
-- Appends one line to the side-effect log.
local function note(what, run)
  local f = assert(io.open(%q, "a"))
  f:write(what, " ", run.nominal_at, " ", uv.os_getpid(), "\n")
  f:close()
end
jobs.every(1, "tick", function(run)
  note("START", run)
  resi.sleep(%s)
  note("END", run)
end%s)
]]):format(log, tostring(seconds), extra or ""))
end

-- Every daemon the running case started: after_each kills what a failed
-- case left behind.
local started = {}

-- Starts a daemon on file and url; env: extra variables.
local function start(file, url, env, extra)
  local args = { "jobs", file, "--store", url, "--lease", tostring(LEASE) }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  local d = daemon.start(args, { env = env, cwd = dir })
  started[#started + 1] = d
  return d
end

-- The side-effect log as {slot = {starts = {pid...}, ends = {pid...}}}.
local function side_effects(log)
  local out = {}
  local f = io.open(log)
  if not f then return out end
  for line in f:lines() do
    local what, slot, pid = line:match("^(%u+) (%d+) (%d+)$")
    slot, pid = tonumber(slot), tonumber(pid)
    out[slot] = out[slot] or { starts = {}, ends = {} }
    local list = what == "START" and out[slot].starts or out[slot].ends
    list[#list + 1] = pid
  end
  f:close()
  return out
end

-- Every row of the tick job, by slot.
local function run_rows(db)
  local out = {}
  for _, r in ipairs(db:history{ job = "tick", limit = 100000 }) do out[r.nominal_at] = r end
  return out
end

-- The running row of the tick job owned by one of the daemons in list
-- (waits up to 5 s for one); returns the row and that daemon.
local function running_owner(db, list)
  local found, who
  proc.eventually(function()
    for _, r in ipairs(db:running_runs()) do
      for _, d in ipairs(list) do
        if r.pid == d.pid and not d.done and not d.stopped then found, who = r, d return true end
      end
    end
    return false
  end, 5)
  return found, who
end

-- Kills (-9) the owner of a run in progress: it is frozen first and killed
-- only when the run has not reached its END line, so the run cannot finish
-- between being found and the kill (a slow machine, valgrind); when it had,
-- the owner goes on and another run is taken. Returns the run and daemon.
local function kill_running_owner(db, list, log)
  for _ = 1, 5 do
    local row, d = running_owner(db, list)
    if not row then return nil end
    d.kill("sigstop")
    local fx = side_effects(log)[row.nominal_at]
    if fx == nil or #fx.ends == 0 then
      d.kill("sigkill")
      d.wait()
      return row, d
    end
    d.kill("sigcont")
  end
end

-- Stops every daemon with SIGTERM (resuming frozen ones) and waits for them.
local function stop_all(list)
  for _, d in ipairs(list) do
    d.kill("sigcont")
    d.kill("sigterm")
  end
  for _, d in ipairs(list) do d.wait() end
end

-- Checks the invariants over the slots [from, to]: one outcome each, no
-- slot started twice, every success started once by its row's process,
-- no claim before its second on the database clock. Returns counts by status.
local function check_slots(db, log, from, to)
  local rows, fx = run_rows(db), side_effects(log)
  local counts = {}
  for t = from, to do
    local r = rows[t]
    assert(r, ("slot %d has no outcome"):format(t))
    assert(r.status ~= "running", ("slot %d is still running"):format(t))
    counts[r.status] = (counts[r.status] or 0) + 1
    local e = fx[t] or { starts = {}, ends = {} }
    assert(#e.starts <= 1, ("slot %d started %d times (pids %s)"):format(t, #e.starts, table.concat(e.starts, ",")))
    if r.status == "succeeded" then
      assert(#e.starts == 1 and e.starts[1] == r.pid, ("slot %d succeeded on %s but started by %s"):format(t,
        tostring(r.pid), table.concat(e.starts, ",")))
      assert(r.owner and r.owner:match(":" .. r.pid .. ":"), "the row names its owner process")
    end
    if r.started_at and r.attempt > 0 then
      assert(r.started_at >= t - 0.5, ("slot %d claimed %.3f s early on the database clock"):format(t, t - r.started_at))
    end
  end
  return counts, rows, fx
end

-- Starts PgBouncer in transaction pooling mode in front of the server;
-- returns its URL (same user and password) and a stop function.
local function pgbouncer()
  local bdir = files.dir("resi-pgbouncer")
  local port = require("spec.support.sockets").closed_port()
  files.write(bdir, "userlist.txt", ('"resi" "%s"\n'):format(server.password))
  files.write(bdir, "pgbouncer.ini", ([[
[databases]
* = host=127.0.0.1 port=%d
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %s/userlist.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 100
logfile = %s/pgbouncer.log
ignore_startup_parameters = extra_float_digits,options
]]):format(server.port, port, bdir, bdir))
  local argv = { "pgbouncer", bdir .. "/pgbouncer.ini" }
  if server.run_as then
    proc.run { "chown", "-R", server.run_as, bdir }
    argv = { "runuser", "-u", server.run_as, "--", "pgbouncer", bdir .. "/pgbouncer.ini" }
  end
  local handle, pid = uv.spawn(argv[1], { args = { table.unpack(argv, 2) } }, function() end)
  assert(handle, pid)
  assert(proc.eventually(function()
    local t = uv.new_tcp()
    local ok = false
    t:connect("127.0.0.1", port, function(err) ok = err == nil and "yes" or "no" end)
    proc.eventually(function() return ok ~= false end, 1)
    t:close()
    return ok == "yes"
  end, 10), "pgbouncer did not start")
  local url = ("postgresql://resi:%s@127.0.0.1:%d/postgres"):format(server.password, port)
  local text -- its log, read when it is stopped (a second stop returns it again)
  return url, function()
    if text then return text end
    local f = io.open(bdir .. "/pgbouncer.log")
    text = f and f:read("a") or ""
    if f then f:close() end
    uv.kill(pid, "sigterm")
    proc.eventually(function() return proc.run({ "kill", "-0", tostring(pid) }).status ~= 0 end, 5)
    files.remove_dir(bdir)
    return text
  end
end

setup(function() dir = files.dir("resi-jobs-pg") end)
teardown(function() if dir then files.remove_dir(dir) end end)

describe("resi jobs on a shared PostgreSQL store", function()
  after_each(function()
    for _, d in ipairs(started) do
      d.kill("sigcont")
      d.kill("sigkill")
      d.wait()
    end
    started = {}
  end)

  it("two daemons: each slot runs on one of them; ready, metrics, history name the node; a different file is warned about",
    function()
      local url = server.fresh_url()
      local log = dir .. "/two.log"
      local file = tick_file("two.lua", log, 0.2)
      local other = tick_file("other.lua", log, 0.2, ', { timeout = 30 }')
      local port = require("spec.support.sockets").closed_port()
      local a = start(file, url, nil, { "--metrics", "127.0.0.1:" .. port })
      local b = start(file, url)
      resi.sleep(6)
      local c = start(other, url)
      resi.sleep(3)
      local ready = proc.run({ "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:" .. port .. "/readyz" })
      -- a counts c at its next registration (every tenth lease renewal), so
      -- the scrape waits for it rather than for a fixed time
      local metrics
      proc.eventually(function()
        metrics = proc.run({ "curl", "-s", "http://127.0.0.1:" .. port .. "/metrics" }).stdout
        return metrics:find("resi_scheduler_jobs_file_mismatch 1", 1, true) ~= nil
      end, 20)
      c.kill("sigterm")
      c.wait()
      local hist = proc.resi({ "jobs", "history", file, "--json", "--limit", "3", "--store", url }, { cwd = dir })
      stop_all({ a, b })
      assert.equal("200", ready.stdout)
      assert.matches("resi_scheduler_db_clock_offset_seconds %-?[%d.e-]+", metrics)
      assert.matches("resi_scheduler_lease_renewal_failures_total 0", metrics, 1, true)
      assert.matches("resi_scheduler_jobs_file_mismatch 1", metrics, 1, true)
      assert.matches("loads a different jobs file", a.stderr() .. b.stderr() .. c.stderr(), 1, true)
      assert.matches('"msg":"run finished"[^\n]*"node":"[^"]+:%d+:%x+"', a.stderr() .. b.stderr()) -- logs name the node
      assert.equal(0, hist.status, hist.stderr)
      local line = json.decode(hist.stdout:match("[^\n]+"))
      assert.matches("^[^:]+:%d+:%x+$", line.owner)
      local pwd = url:match("://[^:]+:([^@]+)@")
      for _, d in ipairs({ a, b, c }) do assert.is_nil(d.stderr():find(pwd, 1, true)) end
      local db = store.open(url)
      local rows = run_rows(db)
      local first = math.huge
      for t in pairs(rows) do first = math.min(first, t) end
      local counts = check_slots(db, log, first + 1, first + 6)
      assert.is_true((counts.succeeded or 0) >= 5)
      db:close()
    end)

  it("resi jobs run FILE NAME on PostgreSQL exits 0 after a success, twice in a row, with no orphaned store task", function()
    local url = server.fresh_url()
    local file = tick_file("once.lua", dir .. "/once.log", 0)
    for i = 1, 2 do
      if i == 2 then resi.sleep(1) end -- the next second: a new slot
      local r = proc.resi({ "jobs", "run", file, "tick", "--store", url }, { cwd = "/" })
      assert.equal("tick: succeeded\n", r.stdout)
      assert.is_nil(r.stderr:find("error in task", 1, true), r.stderr)
      assert.equal(0, r.status, r.stderr)
    end
  end)

  it("list, history and the daemon with a wrong password: exit 1, the store named, the password never shown", function()
    local secret = "wrong-" .. require("resi.random").hex(6) .. "-S3cr3t"
    local url = server.fresh_url():gsub("://resi:[^@]+@", "://resi:" .. secret .. "@")
    local file = tick_file("badpw.lua", dir .. "/badpw.log", 0)
    for _, argv in ipairs({ { "jobs", "list", file, "--store", url }, { "jobs", "history", file, "--store", url },
      { "jobs", file, "--store", url } }) do
      local r = proc.resi(argv, { cwd = "/" })
      local what = table.concat(argv, " ", 1, 2)
      assert.equal(1, r.status, what .. ": " .. r.stderr)
      assert.matches("password authentication failed", r.stderr, 1, true)
      assert.matches("postgresql://resi@127.0.0.1:", r.stderr, 1, true)
      assert.is_nil((r.stdout .. r.stderr):find(secret, 1, true), what)
    end
  end)

  it("keeps one outcome per slot through kill -9, SIGSTOP past the lease, PostgreSQL restarts and a clock 20 s ahead",
    function()
      local slots = tonumber(os.getenv("RESI_PG_SLOTS")) or 240
      local url = server.fresh_url()
      local log = dir .. "/faults.log"
      local file = tick_file("faults.lua", log, 0.4)
      local fake = { "LD_PRELOAD=" .. FAKETIME_LIB, "FAKETIME=+20s", "FAKETIME_DONT_FAKE_MONOTONIC=1",
        "FAKETIME_NO_CACHE=1" }
      if SANITIZED then fake = nil end
      local list = { start(file, url), start(file, url), start(file, url, fake) }
      list[3].faked = fake ~= nil
      local db = store.open(url)
      local began = uv.hrtime() / 1e9
      local killed, frozen, restarts, cycle = {}, {}, 0, 0
      resi.sleep(4)
      -- Runs the faults in turn until the slots are up, and (a short
      -- RESI_PG_SLOTS) on until each has happened once, within a minute more.
      local function each_once() return #killed >= 1 and #frozen >= 1 and restarts >= 1 end
      while true do
        local elapsed = uv.hrtime() / 1e9 - began
        if elapsed >= slots - 8 and (each_once() or elapsed >= slots + 60) then break end
        cycle = cycle + 1
        local fault = cycle % 4
        if fault == 1 then
          local row, d = kill_running_owner(db, list, log)
          if row then
            killed[#killed + 1] = row.nominal_at
            local env = d.faked and fake or nil
            local n = start(file, url, env)
            n.faked = d.faked
            list[#list + 1] = n
          end
          resi.sleep(3)
        elseif fault == 2 then
          local row, d = running_owner(db, list)
          if row then
            d.kill("sigstop")
            d.stopped = true
            frozen[#frozen + 1] = { slot = row.nominal_at, pid = d.pid }
            resi.sleep(LEASE + 2)
            d.kill("sigcont")
            d.stopped = false
          end
          resi.sleep(3)
        elseif fault == 3 then
          server.restart()
          restarts = restarts + 1
          resi.sleep(6)
        else
          resi.sleep(5)
        end
      end
      resi.sleep(LEASE + 4) -- the last faults' leases expire and are reaped
      stop_all(list)
      local rows = run_rows(db)
      local first, last = math.huge, -math.huge
      for t in pairs(rows) do
        first, last = math.min(first, t), math.max(last, t)
      end
      local counts = check_slots(db, log, first + 1, last - 1)
      local total = 0
      for _, n in pairs(counts) do total = total + n end
      assert.is_true(total >= slots - 20, ("only %d slots covered"):format(total))
      local need = slots >= 60 and 2 or 1 -- a round of the four faults takes about 21 s
      assert.is_true(#killed >= need and #frozen >= need and restarts >= need,
        ("every fault happened %d times (killed %d, frozen %d, restarts %d)"):format(need, #killed, #frozen, restarts))
      for _, t in ipairs(killed) do assert.equal("interrupted", rows[t].status) end
      for _, f in ipairs(frozen) do
        assert.are_not.equal("succeeded", rows[f.slot].status, "a frozen owner finished a run it had lost")
      end
      local by_faked = 0
      for _, d in ipairs(list) do
        if d.faked then
          for _, r in pairs(rows) do if r.pid == d.pid and r.status == "succeeded" then by_faked = by_faked + 1 end end
        end
      end
      io.stderr:write(("\n[jobs_pg] %d slots: %s; killed %d, frozen %d, PostgreSQL restarts %d; faked-clock runs %d\n")
        :format(total, json.encode(counts), #killed, #frozen, restarts, by_faked))
      if fake then
        assert.is_true(by_faked > 0, "the daemon whose clock is 20 s ahead claimed no slot")
        assert.matches("clock differs from the database", list[3].stderr(), 1, true)
      end
      db:close()
    end)

  it("/readyz is 503 while PostgreSQL is down, and a run that cannot renew its lease is fenced before it ends",
    function()
      local url = server.fresh_url()
      local log = dir .. "/down.log"
      local file = tick_file("down.lua", log, 6)
      local port = require("spec.support.sockets").closed_port()
      local a = start(file, url, nil, { "--metrics", "127.0.0.1:" .. port })
      local base = "http://127.0.0.1:" .. port
      -- The HTTP status of a path of the daemon's listener.
      local function status(path)
        return proc.run({ "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base .. path }).stdout
      end
      assert.is_true(proc.eventually(function() return status("/readyz") == "200" end, 10))
      assert.is_true(proc.eventually(function() return next(side_effects(log)) ~= nil end, 5))
      local slot = next(side_effects(log))
      server.stop_fast()
      local down_at = uv.hrtime() / 1e9
      assert.is_true(proc.eventually(function() return status("/readyz") == "503" end, LEASE + 2))
      assert.is_true(uv.hrtime() / 1e9 - down_at <= LEASE + 1)
      resi.sleep(LEASE)
      local metrics = proc.run({ "curl", "-s", base .. "/metrics" }).stdout
      server.start()
      assert.is_true(proc.eventually(function() return status("/readyz") == "200" end, 15))
      resi.sleep(LEASE + 1)
      a.kill("sigterm")
      a.wait()
      local fx = side_effects(log)[slot]
      assert.equal(1, #fx.starts)
      assert.equal(0, #fx.ends, "the fenced run went on to its end")
      local failures = tonumber(metrics:match("resi_scheduler_lease_renewal_failures_total (%d+)"))
      assert.is_true(failures >= 1, metrics)
      assert.matches('resi_scheduler_runs_fenced_total{job="tick"} 1', metrics, 1, true)
      assert.matches("lease lost", a.stderr(), 1, true)
      local db = store.open(url)
      assert.equal("interrupted", db:get_run("tick", slot).status)
      db:close()
    end)

  it("works behind PgBouncer in transaction pooling mode: two daemons, a kill -9, one outcome per slot", function()
    local via, stop_bouncer = pgbouncer()
    finally(stop_bouncer) -- also when the case fails before its end
    local url = server.fresh_url(via)
    local log = dir .. "/bouncer.log"
    local file = tick_file("bouncer.lua", log, 0.4)
    local list = { start(file, url), start(file, url) }
    local db = store.open(url)
    resi.sleep(5)
    local row = kill_running_owner(db, list, log)
    assert.is_table(row, "a run is in progress")
    list[#list + 1] = start(file, url)
    resi.sleep(LEASE + 8)
    stop_all(list)
    local rows = run_rows(db)
    local first, last = math.huge, -math.huge
    for t in pairs(rows) do first, last = math.min(first, t), math.max(last, t) end
    local counts = check_slots(db, log, first + 1, last - 1)
    assert.equal("interrupted", rows[row.nominal_at].status)
    assert.is_true((counts.succeeded or 0) >= 8)
    db:close()
    local text = stop_bouncer()
    assert.matches("login attempt: db=db%d+ user=resi", text) -- the daemons went through PgBouncer
  end)
end)
