-- resi.jobs.scheduler on a replayed clock (spec/support/jobs_clock.lua) and
-- the in-memory store (resi.jobs.memstore, the run table's interface): every
-- outcome kind, overlap and catch-up policies, restarts mid-run, clock
-- jumps and DST through resi.cron. Hours of schedule replay in milliseconds.
local fakeclock = require "spec.support.jobs_clock"
local memstore = require "resi.jobs.memstore"
local scheduler = require "resi.jobs.scheduler"
local schedule = require "resi.jobs.schedule"
local task = require "resi.task"

local T0 = 1774000000 -- 2026-03-20T09:46:40Z, a multiple of 10 and 20 but not of 60
local MIN = 60

-- A job definition for the scheduler.
local function job(name, sched, fn, opts)
  local def = { name = name, schedule = sched, fn = fn or function() end }
  for k, v in pairs(opts or {}) do def[k] = v end
  return def
end

-- An every-N-seconds schedule.
local function every(n) return schedule.every(n) end

-- A scheduler on a fake clock and a store (new ones unless given).
local function harness(defs, o)
  o = o or {}
  local clock = o.clock or fakeclock.new(o.t0 or T0)
  local db = o.store or memstore.new()
  local logs = {}
  local log = {}
  for _, lvl in ipairs({ "debug", "info", "warn", "error" }) do
    log[lvl] = function(msg, fields) logs[#logs + 1] = { level = lvl, msg = msg, fields = fields } end
  end
  local s = scheduler.new{ jobs = defs, store = db, clock = clock, node = "n1", pid = o.pid or 100, log = log,
    pid_alive = o.pid_alive or function() return false end, observer = o.observer, max_sleep = o.max_sleep,
    claim_ahead = o.claim_ahead }
  return { s = s, clock = clock, db = db, logs = logs }
end

-- Stops a scheduler on the fake clock: the drain timeout passes on that clock.
local function halt(h, timeout)
  local t = task.spawn(function() return h.s:stop(timeout) end)
  h.clock.advance(timeout + 1)
  return t:wait()
end

-- The statuses of a job's rows, oldest slot first, as "offset:status" (offset from base).
local function outcomes(db, name, base)
  local rows = db:history{ job = name, limit = 100000 }
  local out = {}
  for i = #rows, 1, -1 do out[#out + 1] = (rows[i].nominal_at - base) .. ":" .. rows[i].status end
  return out
end

-- Asserts that every slot of sched in (a, b] has exactly one row.
local function assert_complete(db, name, sched, a, b)
  local t = sched:next(a)
  while t and t <= b do
    assert.is_not_nil(db:get_run(name, t), ("slot %s of %s has no row"):format(schedule.iso(t), name))
    t = sched:next(t)
  end
end

describe("jobs scheduler", function()
  it("runs each slot once, on time, with run.id, nominal_at, attempt and missed", function()
    local runs = {}
    local h = harness({ job("tick", every(10), function(run) runs[#runs + 1] = run end) })
    h.s:start()
    h.clock.advance(35)
    assert.equal(3, #runs)
    assert.equal("tick@" .. schedule.iso(T0 + 10), runs[1].id)
    assert.equal(T0 + 10, runs[1].nominal_at)
    assert.equal(1, runs[1].attempt)
    assert.equal(0, runs[1].missed)
    assert.same({ "10:succeeded", "20:succeeded", "30:succeeded" }, outcomes(h.db, "tick", T0))
    halt(h, 1)
  end)

  it("sleeps on one timer until the next due slot: no polling while idle", function()
    local h = harness({ job("a", every(3600)), job("b", every(7200)) }, { max_sleep = math.huge })
    h.s:start()
    fakeclock.settle()
    assert.equal(1, h.clock.sleeping())
    h.clock.advance(3 * 3600)
    -- two wake-ups per slot of a (3600): one claims it ahead, one starts it;
    -- b's slots coincide with a's
    assert.equal(6, h.clock.wakeups)
    -- claiming at the slot's time: one wake-up per slot
    local h0 = harness({ job("a", every(3600)), job("b", every(7200)) }, { max_sleep = math.huge, claim_ahead = 0 })
    h0.s:start()
    h0.clock.advance(3 * 3600)
    assert.equal(3, h0.clock.wakeups)
    -- with the default cap the timer also wakes every MAX_SLEEP to watch the wall clock
    local h2 = harness({ job("a", every(3600)) })
    h2.s:start()
    h2.clock.advance(3600)
    assert.is_true(h2.clock.wakeups <= 3600 // scheduler.MAX_SLEEP + 1)
    halt(h2, 1)
    halt(h, 1)
  end)

  it("records failed with the error and traceback and keeps running", function()
    local n = 0
    local h = harness({ job("bad", every(10), function()
      n = n + 1
      error("boom " .. n)
    end) })
    h.s:start()
    h.clock.advance(25)
    assert.same({ "10:failed", "20:failed" }, outcomes(h.db, "bad", T0))
    local row = h.db:get_run("bad", T0 + 10)
    assert.truthy(row.error:find("boom 1"))
    local err
    for _, l in ipairs(h.logs) do if l.msg == "run failed" then err = l.fields end end
    assert.truthy(err.traceback:find("traceback"))
    assert.equal("failed", err.outcome)
    halt(h, 1)
  end)

  it("times out a run: its task is cancelled and the slot ends timed_out", function()
    local reached_end = false
    local h
    h = harness({ job("slow", every(60), function()
      h.clock.sleep(100)
      reached_end = true
    end, { timeout = 5 }) })
    h.s:start()
    h.clock.advance(70)
    assert.same({ "20:timed_out" }, outcomes(h.db, "slow", T0))
    assert.is_false(reached_end)
    halt(h, 1)
  end)

  describe("overlap", function()
    -- A started harness with one job "j" every 10 s whose runs take d
    -- seconds of the fake clock (their slots, from T0, logged), under
    -- overlap policy `overlap` (nil: the default), after `advance` seconds;
    -- returns the harness and the log.
    local function overlapping(d, overlap, advance)
      local h, ran = nil, {}
      local function slow(run)
        ran[#ran + 1] = run.nominal_at - T0
        h.clock.sleep(d)
      end
      h = harness({ job("j", every(10), slow, { overlap = overlap }) })
      h.s:start()
      h.clock.advance(advance)
      return h, ran
    end

    it("skip (default): a slot due while the previous run runs is skipped_overlap", function()
      local h, ran = overlapping(25, nil, 60)
      assert.same({ 10, 40 }, ran)
      halt(h, 100)
      assert.same({ "10:succeeded", "20:skipped_overlap", "30:skipped_overlap", "40:succeeded", "50:skipped_overlap",
        "60:skipped_overlap" }, outcomes(h.db, "j", T0))
    end)

    it("buffer_one: one slot waits for the running one, later ones are skipped", function()
      local h, ran = overlapping(25, "buffer_one", 36)
      -- 10 runs 10..35; 20 is buffered and starts at 35; 30 is skipped
      assert.same({ 10, 20 }, ran)
      h.clock.advance(100)
      halt(h, 100)
      local o = outcomes(h.db, "j", T0)
      assert.equal("10:succeeded", o[1])
      assert.equal("20:succeeded", o[2])
      assert.equal("30:skipped_overlap", o[3])
    end)

    it("cancel_other: the running run is cancelled, then the new one starts", function()
      local h, ran = overlapping(15, "cancel_other", 31)
      assert.same({ 10, 20, 30 }, ran)
      halt(h, 100)
      assert.same({ "10:cancelled", "20:cancelled", "30:succeeded" }, outcomes(h.db, "j", T0))
      assert.equal("cancel_other", h.db:get_run("j", T0 + 10).error)
    end)

    it("allow: runs overlap", function()
      local h, ran = overlapping(25, "allow", 31)
      assert.same({ 10, 20, 30 }, ran)
      assert.equal(3, h.s:running())
      halt(h, 100)
      assert.same({ "10:succeeded", "20:succeeded", "30:succeeded" }, outcomes(h.db, "j", T0))
    end)
  end)

  describe("catch-up after downtime", function()
    -- Runs a job once, stops, lets `down` seconds pass, restarts with the same store.
    local function restart_after(def, down, extra_advance)
      local runs = {}
      def.fn = function(run) runs[#runs + 1] = run end
      local h = harness({ def })
      h.s:start()
      h.clock.advance(10)
      halt(h, 1)
      h.clock.advance(down)
      local h2 = harness({ def }, { clock = h.clock, store = h.db, pid = 200 })
      h2.s:start()
      h2.clock.advance(extra_advance or 1)
      halt(h2, 1)
      return runs, h2
    end

    it("latest (default): one run with run.missed, the rest recorded coalesced", function()
      local runs, h = restart_after(job("j", every(10)), 50)
      assert.equal(2, #runs)
      local last = runs[2]
      assert.equal(T0 + 60, last.nominal_at)
      assert.equal(4, last.missed)
      assert.same({ "10:succeeded", "20:coalesced", "30:coalesced", "40:coalesced", "50:coalesced", "60:succeeded" },
        outcomes(h.db, "j", T0))
      assert.equal(4, h.db:get_run("j", T0 + 60).missed)
    end)

    it("all: every missed slot runs, oldest first; max_catchup caps them (the rest missed)", function()
      local runs, h = restart_after(job("j", every(10), nil, { catchup = "all", max_catchup = 3 }), 50)
      local got = {}
      for _, r in ipairs(runs) do got[#got + 1] = r.nominal_at - T0 end
      assert.same({ 10, 40, 50, 60 }, got)
      assert.same({ "10:succeeded", "20:missed", "30:missed", "40:succeeded", "50:succeeded", "60:succeeded" },
        outcomes(h.db, "j", T0))
    end)

    it("none: missed slots are recorded missed and only an on-time slot runs", function()
      local runs, h = restart_after(job("j", every(10), nil, { catchup = "none", grace = 2 }), 55)
      assert.equal(1, #runs)
      assert.same({ "10:succeeded", "20:missed", "30:missed", "40:missed", "50:missed", "60:missed" },
        outcomes(h.db, "j", T0))
      -- the next slot is on time again
      local h2 = harness({ job("j", every(10), function(run) runs[#runs + 1] = run end, { catchup = "none" }) },
        { clock = h.clock, store = h.db, pid = 300 })
      h2.s:start()
      h2.clock.advance(10)
      halt(h2, 1)
      assert.equal(T0 + 70, runs[2].nominal_at)
    end)

    it("grace: slots older than the deadline are missed, the newest within it runs", function()
      local runs, h = restart_after(job("j", every(10), nil, { grace = 25 }), 50)
      assert.equal(2, #runs)
      assert.equal(2, runs[2].missed)
      assert.same({ "10:succeeded", "20:missed", "30:missed", "40:coalesced", "50:coalesced", "60:succeeded" },
        outcomes(h.db, "j", T0))
    end)

    it("a job new to the store starts from now: no backfill before it was first seen", function()
      local runs = {}
      local h = harness({ job("new", every(10), function(run) runs[#runs + 1] = run end) })
      h.s:start()
      h.clock.advance(5)
      assert.same({}, outcomes(h.db, "new", T0))
      h.clock.advance(10)
      assert.same({ "10:succeeded" }, outcomes(h.db, "new", T0))
      halt(h, 1)
    end)

    it("after very long downtime records the newest RECORD_LIMIT slots and counts the rest", function()
      local def = job("j", every(1))
      local h = harness({ def })
      h.s:start()
      h.clock.advance(2)
      halt(h, 1)
      h.clock.advance(5000)
      local skipped = {}
      local h2 = harness({ def }, { clock = h.clock, store = h.db, pid = 2,
        observer = { on_skip = function(_, reason, n) skipped[reason] = (skipped[reason] or 0) + (n or 1) end } })
      h2.s:start()
      h2.clock.advance(0.5)
      halt(h2, 1)
      assert.equal(scheduler.RECORD_LIMIT - 1, skipped.coalesced)
      assert.is_true(skipped.not_recorded > 3000)
      local rows = h.db:history{ job = "j", limit = 100000 }
      assert.is_true(#rows >= scheduler.RECORD_LIMIT)
    end)

    it("a crash before the first slot still accounts for the slots of the downtime", function()
      local def = job("j", every(10))
      local h = harness({ def })
      h.s:start()
      h.clock.advance(5) -- no slot yet; the daemon "dies" (never stopped)
      h.clock.advance(30)
      local h2 = harness({ def }, { clock = h.clock, store = h.db, pid = 200 })
      h.s.stopping = true
      h2.s:start()
      h2.clock.advance(1)
      halt(h2, 1)
      assert_complete(h.db, "j", def.schedule, T0, T0 + 35)
    end)
  end)

  describe("restart mid-run", function()
    it("a running row of a dead process becomes interrupted and its slot is not run again", function()
      local started = {}
      local h
      local def = job("j", every(10), function(run)
        started[#started + 1] = run.id
        h.clock.sleep(1000)
      end)
      h = harness({ def })
      h.s:start()
      h.clock.advance(12)
      assert.equal(1, #started)
      -- the process dies: its tasks never finish; a new one starts on the same store
      h.s.stopping = true
      local h2 = harness({ def }, { clock = h.clock, store = h.db, pid = 200 })
      h = h2
      local n = h2.s:start()
      assert.equal(1, n)
      assert.equal("interrupted", h2.db:get_run("j", T0 + 10).status)
      h2.clock.advance(10)
      assert.same({ "j@" .. schedule.iso(T0 + 10), "j@" .. schedule.iso(T0 + 20) }, started)
      halt(h2, 0)
    end)

    it("on_interrupt = rerun runs the interrupted slot again as attempt 2", function()
      local started = {}
      local h
      local def = job("j", every(60), function(run)
        started[#started + 1] = run
        if run.attempt == 1 then h.clock.sleep(1000) end
      end, { on_interrupt = "rerun" })
      h = harness({ def })
      h.s:start()
      h.clock.advance(25) -- slot T0+20 runs
      h.s.stopping = true
      local h2 = harness({ def }, { clock = h.clock, store = h.db, pid = 200 })
      h2.s:start()
      fakeclock.settle()
      assert.equal(2, #started)
      assert.equal(started[1].id, started[2].id)
      assert.equal(2, started[2].attempt)
      assert.equal("succeeded", h2.db:get_run("j", T0 + 20).status)
      halt(h2, 1)
    end)

    it("leaves running rows of live processes alone", function()
      local db = memstore.new()
      db:claim_run{ job = "j", nominal_at = T0 - 40, node = "n1", pid = 4242, started_at = T0 - 40 }
      local h = harness({ job("j", every(10)) }, { store = db, pid_alive = function(pid) return pid == 4242 end })
      assert.equal(0, h.s:start())
      assert.equal("running", db:get_run("j", T0 - 40).status)
      halt(h, 0)
    end)
  end)

  describe("retry", function()
    it("retries a failed attempt with backoff; one outcome for the slot", function()
      local h
      local attempts, times = {}, {}
      h = harness({ job("j", every(60), function(run)
        attempts[#attempts + 1] = run.attempt
        times[#times + 1] = h.clock.now()
        if run.attempt < 3 then error("flaky") end
      end, { retry = { attempts = 3, backoff = 2 } }) })
      h.s:start()
      h.clock.advance(50)
      assert.same({ 1, 2, 3 }, attempts)
      assert.equal(2, times[2] - times[1])
      assert.equal(4, times[3] - times[2])
      assert.same({ "20:succeeded" }, outcomes(h.db, "j", T0))
      halt(h, 1)
    end)

    it("ends failed when every attempt fails", function()
      local h = harness({ job("j", every(60), function() error("down") end, { retry = { attempts = 2, backoff = 1 } }) })
      h.s:start()
      h.clock.advance(50)
      assert.same({ "20:failed" }, outcomes(h.db, "j", T0))
      halt(h, 1)
    end)
  end)

  describe("stopping", function()
    it("drains running runs, cancels what is left after the timeout", function()
      local h
      h = harness({
        job("quick", every(60), function() h.clock.sleep(5) end),
        job("long", every(60), function() h.clock.sleep(500) end),
      })
      h.s:start()
      h.clock.advance(21)
      local stopper = task.spawn(function() return h.s:stop(30) end)
      h.clock.advance(40)
      assert.equal(1, stopper:wait())
      assert.same({ "20:succeeded" }, outcomes(h.db, "quick", T0))
      assert.same({ "20:cancelled" }, outcomes(h.db, "long", T0))
      assert.equal("shutdown", h.db:get_run("long", T0 + 20).error)
    end)
  end)

  describe("pause", function()
    it("records the slots of a paused job as missed, runs again once resumed", function()
      local n = 0
      local h = harness({ job("j", every(10), function() n = n + 1 end, { paused = true }) })
      h.s:start()
      h.clock.advance(25)
      assert.equal(0, n)
      h.db:set_paused("j", false)
      h.clock.advance(10)
      assert.equal(1, n)
      h.db:set_paused("j", true)
      h.clock.advance(10)
      assert.equal(1, n)
      assert.same({ "10:missed", "20:missed", "30:succeeded", "40:missed" }, outcomes(h.db, "j", T0))
      halt(h, 1)
    end)
  end)

  describe("reload", function()
    it("keeps a job's state by name, adds new jobs, drops removed ones", function()
      local a, b = 0, 0
      local h = harness({ job("a", every(10), function() a = a + 1 end), job("gone", every(10)) })
      h.s:start()
      h.clock.advance(15)
      h.s:set_jobs({ job("a", every(10), function() a = a + 100 end), job("b", every(10), function() b = b + 1 end) })
      h.clock.advance(10)
      assert.equal(101, a)
      assert.equal(1, b)
      assert.same({ "10:succeeded" }, outcomes(h.db, "gone", T0))
      assert.same({ "10:succeeded", "20:succeeded" }, outcomes(h.db, "a", T0))
      halt(h, 1)
    end)
  end)

  describe("jitter and stable_offset", function()
    it("starts late by a stable, per-host offset; the identity stays the nominal slot", function()
      local off = scheduler.stable_offset("j", "n1", 8)
      assert.equal(off, scheduler.stable_offset("j", "n1", 8))
      assert.is_true(off >= 0 and off < 8)
      assert.are_not.equal(off, scheduler.stable_offset("j", "n2", 8))
      local starts = {}
      local h
      h = harness({ job("j", every(10), function(run) starts[#starts + 1] = { run.nominal_at, h.clock.now() } end,
        { stable_offset = 8 }) })
      h.s:start()
      h.clock.advance(20)
      assert.equal(T0 + 10, starts[1][1])
      assert.near(T0 + 10 + off, starts[1][2], 1e-6)
      halt(h, 1)
    end)

    it("jitter delays each start by a random amount within the bound", function()
      local starts = {}
      local h
      h = harness({ job("j", every(10), function(run) starts[#starts + 1] = h.clock.now() - run.nominal_at end,
        { jitter = 3 }) })
      h.s:start()
      h.clock.advance(100)
      assert.is_true(#starts >= 8)
      for _, d in ipairs(starts) do assert.is_true(d >= 0 and d <= 3) end
      halt(h, 1)
    end)
  end)

  describe("wall-clock jumps (cronie's classification)", function()
    -- A fixed-time cron schedule in UTC (minute and hour restricted).
    local function cron(expr, tz) return assert(schedule.cron(expr, tz)) end

    -- A harness whose jobs append their nominal times (offset from T0) to `ran`.
    local function recording(defs_spec, ran)
      local defs = {}
      for _, d in ipairs(defs_spec) do
        defs[#defs + 1] = job(d[1], d[2], function(run)
          ran[#ran + 1] = d[1] .. "@" .. (run.nominal_at - T0) .. "/" .. run.missed
        end, d[3])
      end
      -- claiming at the slot's time: these cases replay that scheduler's wake-up times
      return harness(defs, { max_sleep = 60, claim_ahead = 0 })
    end

    -- The jumps the scheduler logged.
    local function jumps(h)
      local out = {}
      for _, l in ipairs(h.logs) do
        if l.msg == "wall clock jumped" then out[#out + 1] = l.fields.direction .. ":" .. l.fields.size end
      end
      return out
    end

    it("small forward (<= 5 min): late slots follow the job's catch-up policy", function()
      local ran = {}
      local h = recording({ { "w", every(10) } }, ran)
      h.s:start()
      h.clock.advance(15) -- runs 10
      h.clock.jump(120)
      h.clock.advance(60)
      assert.same({ "forward:small" }, jumps(h))
      assert.equal(1, h.s.jumps.forward)
      -- one run for the slots the jump passed over (latest), then on time again
      assert.equal("w@10/0", ran[1])
      assert.equal("w@140/12", ran[2])
      halt(h, 1)
      assert_complete(h.db, "w", every(10), T0, T0 + 190)
    end)

    it("DST-sized forward: a wildcard job runs once, a fixed-time job runs each skipped slot once", function()
      local ran = {}
      -- T0 is 2026-03-20T09:46:40Z; fixed: 10:15 and 10:45 UTC, inside the jump
      local h = recording({ { "w", every(600) }, { "f", cron("15,45 10 * * *"), { catchup = "none" } } }, ran)
      h.s:start()
      h.clock.advance(1)
      h.clock.jump(3600)
      h.clock.advance(300)
      assert.same({ "forward:medium" }, jumps(h))
      table.sort(ran)
      -- woken at T0+3660 (the timer's 60 s cap): w's six slots 200..3200 give one run
      assert.same({ "f@1700/0", "f@3500/0", "w@3200/5", "w@3800/0" }, ran)
      halt(h, 1)
      assert_complete(h.db, "w", every(600), T0, T0 + 3800)
      assert_complete(h.db, "f", cron("15,45 10 * * *"), T0, T0 + 3800)
    end)

    it("large forward (> 3 h): no backfill, the skipped slots are recorded missed", function()
      local ran = {}
      local h = recording({ { "w", every(600) }, { "f", cron("15 10-12 * * *") } }, ran)
      h.s:start()
      h.clock.advance(1)
      h.clock.jump(4 * 3600)
      h.clock.advance(300)
      assert.same({ "forward:large" }, jumps(h))
      -- nothing inside the jump runs; the first slot after it does
      assert.same({ "w@14600/0" }, ran)
      assert.equal("missed", h.db:get_run("w", T0 + 200).status)
      local rows = h.db:history{ job = "f", limit = 10 }
      assert.equal(3, #rows)
      for _, r in ipairs(rows) do assert.equal("missed", r.status) end
      h.clock.advance(600)
      assert.equal("w@15200/0", ran[2])
      assert.is_true(h.s.jumps.forward == 1)
      halt(h, 1)
      assert_complete(h.db, "w", every(600), T0, T0 + 15200)
    end)

    it("backward: no slot runs twice; jobs wait until the clock passes their last slot", function()
      local ran = {}
      local h = recording({ { "w", every(600) } }, ran)
      h.s:start()
      h.clock.advance(900) -- runs 200, 800
      h.clock.jump(-3600)
      h.clock.advance(1800)
      assert.same({ "w@200/0", "w@800/0" }, ran)
      assert.same({ "backward:medium" }, jumps(h))
      h.clock.advance(2400) -- the wall clock is back past T0+800
      assert.same({ "w@200/0", "w@800/0", "w@1400/0" }, ran)
      halt(h, 1)
      for _, r in ipairs(h.db:history{ job = "w" }) do assert.equal("succeeded", r.status) end
    end)

    it("suspend/resume looks like a forward jump and is classified the same way", function()
      local ran = {}
      local h = recording({ { "w", every(60) } }, ran)
      h.s:start()
      h.clock.advance(30)
      -- the machine sleeps 2 hours: the monotonic clock stands still, the wall clock moves
      h.clock.jump(7200)
      h.clock.advance(60)
      assert.same({ "forward:medium" }, jumps(h))
      assert.equal(2, #ran)
      assert.truthy(ran[2]:match("/120$"))
      halt(h, 1)
      assert_complete(h.db, "w", every(60), T0, T0 + 7260)
    end)
  end)

  describe("DST in the job's zone (resi.cron)", function()
    -- Replays `hours` of a cron job in a zone from start; returns the UTC ISO times it ran.
    local function replay(expr, tz, start, hours)
      local sched = assert(schedule.cron(expr, tz))
      local ran = {}
      local h = harness({ job("d", sched, function(run) ran[#ran + 1] = schedule.iso(run.nominal_at) end) },
        { t0 = start })
      h.s:start()
      h.clock.advance(hours * 3600)
      halt(h, 1)
      return ran, h
    end

    it("spring forward in Europe/Berlin: a fixed-time job in the skipped hour runs once, at 03:00 CEST", function()
      local start = schedule.parse_time("2026-03-28T12:00:00Z")
      local ran = replay("30 2 * * *", "Europe/Berlin", start, 48)
      assert.same({ "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z" }, ran)
    end)

    it("spring forward: a wildcard job's slots in the skipped hour do not exist", function()
      local start = schedule.parse_time("2026-03-29T00:00:00Z")
      local ran = replay("*/30 * * * *", "Europe/Berlin", start, 2)
      -- 01:00, 01:30 CET, then 03:00, 03:30 CEST: real time every 30 minutes
      assert.same({ "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:00:00Z" }, ran)
    end)

    it("fall back in Europe/Berlin: a fixed-time job runs once, at the first 02:30", function()
      local start = schedule.parse_time("2026-10-24T12:00:00Z")
      local ran = replay("30 2 * * *", "Europe/Berlin", start, 24)
      assert.same({ "2026-10-25T00:30:00Z" }, ran)
    end)

    it("fall back in America/New_York: a wildcard job fires in both 01:xx hours", function()
      local start = schedule.parse_time("2026-11-01T04:00:00Z") -- 00:00 EDT
      local ran = replay("*/30 1 * * *", "America/New_York", start, 4)
      assert.same({ "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z" }, ran)
    end)

    it("every slot across both changes of a year has exactly one outcome", function()
      local sched = assert(schedule.cron("0 */2 * * *", "Europe/Berlin"))
      local start = schedule.parse_time("2026-03-27T00:00:00Z")
      local h = harness({ job("y", sched) }, { t0 = start, max_sleep = 1e9 })
      h.s:start()
      h.clock.advance(3 * 86400)
      h.clock.advance(200 * 86400) -- the daemon sleeps through to October (one timer per slot)
      halt(h, 1)
      assert_complete(h.db, "y", sched, start, start + 203 * 86400)
    end)
  end)

  describe("claiming ahead (claim_ahead)", function()
    local S = T0 + 20 -- the first slot of every(60) after T0

    -- A memstore whose writes are logged as "time:method:offset" (offset from T0).
    local function logged_store(clock)
      local db, calls = memstore.new(), {}
      for _, m in ipairs({ "claim_run", "mark_started", "finish_run", "record_slot", "release_claim", "rerun" }) do
        local real = db[m]
        db[m] = function(self, a, b, ...)
          local nominal = type(a) == "table" and a.nominal_at or b
          calls[#calls + 1] = ("%g:%s:%d"):format(clock.now() - T0, m, nominal - T0)
          return real(self, a, b, ...)
        end
      end
      return db, calls
    end

    -- A counting job just after its first slot was claimed ahead; returns the
    -- harness, the count ({n =}) and the job's function (to redefine the job with).
    local function claimed_ahead()
      local ran = { n = 0 }
      local function count() ran.n = ran.n + 1 end
      local h = harness({ job("j", every(MIN), count) })
      h.s:start()
      h.clock.advance(19.7)
      assert.equal("running", h.db:get_run("j", S).status)
      return h, ran, count
    end

    it("commits an idle job's next claim before its time; at the slot only the start mark is written before the run",
      function()
        local clock = fakeclock.new(T0)
        local db, calls = logged_store(clock)
        local started = {}
        local h = harness({ job("j", every(MIN), function(run)
          started[#started + 1] = ("%g:%d"):format(clock.now() - T0, run.nominal_at - T0)
        end) }, { clock = clock, store = db })
        h.s:start()
        h.clock.advance(85)
        assert.same({ "20:20", "80:80" }, started)
        assert.same({ "19.5:claim_run:20", "20:mark_started:20", "20:finish_run:20",
          "79.5:claim_run:80", "80:mark_started:80", "80:finish_run:80" }, calls)
        local row = db:get_run("j", S)
        assert.equal("succeeded", row.status)
        assert.equal(S, row.started_at) -- the planned start, written with the claim
        assert.equal(1, row.attempt) -- claimed as attempt 0, marked 1 when it started
        halt(h, 1)
      end)

    it("a slot claimed ahead of a job paused before its time is recorded missed, not left running", function()
      local h, ran, count = claimed_ahead()
      h.db:set_paused("j", true)
      h.clock.advance(5)
      assert.equal(0, ran.n)
      assert.same({ "20:missed" }, outcomes(h.db, "j", T0))
      assert.equal("paused", h.db:get_run("j", S).error)
      halt(h, 1)
    end)

    it("stopping between the claim and the slot releases it; the next daemon runs the slot", function()
      local ran = {}
      local def = job("j", every(MIN), function() ran[#ran + 1] = "x" end)
      local h = harness({ def })
      h.s:start()
      h.clock.advance(19.7)
      local stopping = task.spawn(function() return h.s:stop(0) end)
      h.clock.advance(0)
      assert.equal(0, stopping:wait())
      assert.is_nil(h.db:get_run("j", S))
      local h2 = harness({ job("j", every(MIN), function() ran[#ran + 1] = "2" end) },
        { clock = h.clock, store = h.db, pid = 200 })
      h2.s:start()
      h2.clock.advance(1)
      assert.same({ "2" }, ran)
      assert.equal("succeeded", h.db:get_run("j", S).status)
      assert.equal(200, h.db:get_run("j", S).pid)
      halt(h2, 1)
    end)

    it("a daemon killed between the claim and the slot: back before or after the slot, the next daemon runs it; "
      .. "after a reboot the slot was interrupted", function()
      for _, case in ipairs({ { back_at = 19.8 }, { back_at = 21 }, { back_at = 21, reboot = true } }) do
        local n = 0
        local h = harness({ job("j", every(MIN), function() n = n + 1 end) })
        h.s:start()
        h.clock.advance(19.7)
        h.s.ticker:cancel() -- kill -9: the claim stays, the process is gone (pid_alive says so)
        assert.equal(0, h.db:get_run("j", S).attempt) -- claimed, not marked started
        if case.reboot then h.clock.boot = T0 + 19.9 end -- the unsynced start mark may have been lost
        h.clock.advance(case.back_at - 19.7)
        local h2 = harness({ job("j", every(MIN), function() n = n + 10 end) },
          { clock = h.clock, store = h.db, pid = 200 })
        h2.s:start()
        h2.clock.advance(2)
        local row = h.db:get_run("j", S)
        local released = false
        for _, l in ipairs(h2.logs) do released = released or l.msg:find("claim released", 1, true) ~= nil end
        assert.equal(not case.reboot, released)
        if case.reboot then
          assert.equal(0, n) -- not known not to have started, so not run twice
          assert.equal("interrupted", row.status)
        else
          assert.equal(10, n) -- released at recovery: at its time, or late by the catch-up policy
          assert.same({ "succeeded", 200, 1 }, { row.status, row.pid, row.attempt })
        end
        halt(h2, 1)
      end
    end)

    it("a run started by hand between the claim and the slot: with overlap skip the slot is skipped_overlap", function()
      local h
      h = harness({ job("j", every(MIN), function() h.clock.sleep(5) end) })
      h.s:start()
      h.clock.advance(19.7)
      local by_hand = task.spawn(function() return h.s:run_now("j") end)
      h.clock.advance(6)
      assert.equal("succeeded", by_hand:wait())
      assert.equal("skipped_overlap", h.db:get_run("j", S).status)
      halt(h, 1)
    end)

    it("a reload that changes the job's schedule releases its slot claimed ahead", function()
      local h, ran, count = claimed_ahead()
      h.s:set_jobs({ job("j", every(7 * MIN), count) })
      h.clock.advance(5)
      assert.equal(0, ran.n)
      assert.is_nil(h.db:get_run("j", S))
      halt(h, 1)
    end)
  end)

  describe("robustness", function()
    it("a store error in a tick, or while claiming ahead, is logged and the slot is handled on the retry", function()
      -- claiming at the slot's time the error is the tick's; claiming ahead, the claim is made again at its time
      -- and when the start mark of a slot claimed ahead fails, the retry marks it and runs it 5 s late
      for _, case in ipairs({ { ahead = 0, says = "tick failed" }, { says = "claiming a slot ahead failed" },
        { says = "tick failed", method = "mark_started" } }) do
        local db = memstore.new()
        local method = case.method or "claim_run"
        local real = db[method]
        local fails = 1
        db[method] = function(self, ...)
          if fails > 0 then
            fails = fails - 1
            error("database is locked")
          end
          return real(self, ...)
        end
        local n = 0
        local h = harness({ job("j", every(60), function() n = n + 1 end) }, { store = db, claim_ahead = case.ahead })
        h.s:start()
        h.clock.advance(30)
        assert.equal(1, n)
        assert.same({ "20:succeeded" }, outcomes(db, "j", T0))
        local logged = false
        for _, l in ipairs(h.logs) do if l.msg:find(case.says, 1, true) then logged = true end end
        assert.is_true(logged, case.says)
        halt(h, 1)
      end
    end)

    it("a job removed by a reload finishes its running run, and stop waits for it", function()
      local h
      h = harness({ job("old", every(60), function() h.clock.sleep(20) end) })
      h.s:start()
      h.clock.advance(21)
      h.s:set_jobs({ job("new", every(60)) })
      assert.equal(1, h.s:running())
      halt(h, 30)
      assert.same({ "20:succeeded" }, outcomes(h.db, "old", T0))
    end)

    it("records every outcome kind, each slot once", function()
      local h
      local kinds = {}
      h = harness({
        job("ok", every(60)),
        job("gap", every(60), nil, { catchup = "none" }),
        job("fail", every(60), function() error("x") end),
        job("slow", every(60), function() h.clock.sleep(100) end, { timeout = 10 }),
        job("busy", every(20), function() h.clock.sleep(30) end),
        job("long", every(60), function() h.clock.sleep(1000) end),
      })
      h.s:start()
      h.clock.advance(45)
      h.s.stopping = true -- a crash: "long" is left running
      local h2 = harness({ job("ok", every(60)), job("late", every(10), nil, {}),
        job("long", every(60), function() h.clock.sleep(1000) end) }, { clock = h.clock, store = h.db, pid = 2 })
      h2.s:start()
      h2.clock.advance(1)
      h2.clock.advance(45)
      local t = task.spawn(function() return h2.s:stop(1) end)
      h2.clock.advance(2)
      t:wait()
      for _, r in ipairs(h.db:history{ limit = 1000 }) do kinds[r.status] = true end
      -- coalesced needs downtime: restart "ok" after 3 minutes
      h2.clock.advance(180)
      local h3 = harness({ job("ok", every(60)), job("gap", every(60), nil, { catchup = "none" }) },
        { clock = h.clock, store = h.db, pid = 3 })
      h3.s:start()
      h3.clock.advance(1)
      halt(h3, 1)
      for _, r in ipairs(h.db:history{ limit = 1000 }) do kinds[r.status] = true end
      local missing = {}
      for _, k in ipairs({ "succeeded", "failed", "timed_out", "cancelled", "interrupted", "skipped_overlap",
        "coalesced", "missed" }) do
        if not kinds[k] then missing[#missing + 1] = k end
      end
      assert.same({}, missing)
    end)

    it("a 3-hour jump is DST-sized; a jump over 3 hours is a clock correction", function()
      for _, c in ipairs({ { 10800, "medium" }, { 10802, "large" } }) do
        local h = harness({ job("w", every(60)) }, { max_sleep = 30 })
        h.s:start()
        h.clock.advance(1)
        h.clock.jump(c[1])
        h.clock.advance(30)
        local size
        for _, l in ipairs(h.logs) do if l.msg == "wall clock jumped" then size = l.fields.size end end
        assert.equal(c[2], size)
        halt(h, 1)
      end
    end)
  end)

  describe("on the SQLite store (resi.store, :memory:)", function()
    local store = require "resi.store"

    it("catch-up, overlap, interrupt and rerun behave as on the in-memory store", function()
      local db = store.open(":memory:")
      local h
      local runs = {}
      local def = job("j", every(10), function(run)
        runs[#runs + 1] = run
        if run.nominal_at == T0 + 20 and run.attempt == 1 then h.clock.sleep(1000) end
      end, { on_interrupt = "rerun" })
      h = harness({ def }, { store = db })
      h.s:start()
      h.clock.advance(25) -- 10 runs, 20 hangs
      h.s.stopping = true -- crash
      h.clock.advance(40)
      local h2 = harness({ def }, { clock = h.clock, store = db, pid = 200 })
      h = h2
      assert.equal(1, h2.s:start())
      h2.clock.advance(1)
      halt(h2, 1)
      local o = outcomes(db, "j", T0)
      -- the rerun of 20 is running when the catch-up of 30..60 starts: 60 overlaps it (skip)
      assert.same({ "10:succeeded", "20:succeeded", "30:coalesced", "40:coalesced", "50:coalesced",
        "60:skipped_overlap" }, o)
      assert.equal(2, db:get_run("j", T0 + 20).attempt)
      h2 = harness({ def }, { clock = h.clock, store = db, pid = 300 })
      h2.s:start()
      h2.clock.advance(10)
      halt(h2, 1)
      assert.equal("succeeded", db:get_run("j", T0 + 70).status)
      db:close()
    end)

    it("pause through the store's job state", function()
      local db = store.open(":memory:")
      local n = 0
      local h = harness({ job("j", every(10), function() n = n + 1 end) }, { store = db })
      h.s:start()
      db:set_paused("j", true)
      h.clock.advance(25)
      db:set_paused("j", false)
      h.clock.advance(10)
      assert.equal(1, n)
      halt(h, 1)
      assert.same({ "10:missed", "20:missed", "30:succeeded" }, outcomes(db, "j", T0))
      db:close()
    end)
  end)

  describe("metrics (resi.jobs.metrics)", function()
    it("counts runs by outcome from 0, skips by reason, running, next run, clock jumps", function()
      local m = require("resi.jobs.metrics").new()
      local h
      local defs = { job("j", every(10), function() h.clock.sleep(25) end), job("idle", every(3600)) }
      h = harness(defs, { observer = m.observer, max_sleep = 30 })
      m.declare(defs)
      h.s:start()
      h.clock.advance(31)
      h.clock.jump(-600)
      h.clock.advance(30)
      local text = m.registry:render()
      local exposition = require "spec.support.exposition"
      assert(exposition.parse(text))
      assert.truthy(text:find('resi_job_runs_total{job="idle",outcome="failed"} 0\n', 1, true))
      assert.truthy(text:find('resi_job_runs_total{job="j",outcome="succeeded"} 1\n', 1, true))
      assert.truthy(text:find('resi_job_skipped_total{job="j",reason="overlap"} 2\n', 1, true), text)
      assert.truthy(text:find('resi_job_running{job="j"} 0\n', 1, true))
      assert.truthy(text:find('resi_job_next_run_timestamp_seconds{job="idle"} ' .. (T0 + 800) .. "\n", 1, true))
      assert.truthy(text:find('resi_scheduler_clock_jumps_total{direction="backward",size="medium"} 1\n', 1, true))
      assert.truthy(text:find('resi_job_start_delay_seconds_count{job="j"} 1\n', 1, true), text)
      halt(h, 60)
    end)
  end)
end)
