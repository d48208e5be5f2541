-- resi.store's run table: claims, outcomes once per slot, interrupted
-- runs, history and job state; two processes racing for the same slots.
local store = require "resi.store"
local runs = require "resi.store.runs"
local resi = require "resi"
local uv = require "luv"
local proc = require "spec.support.proc"
local files = require "spec.support.files"
local raised = require("spec.support.checks").raised

local OWN_PID = math.tointeger(uv.os_getpid())

describe("resi.store runs", function()
  local dir, path, db

  before_each(function()
    dir = files.dir("resi-runs")
    path = dir .. "/resi.db"
    db = store.open(path)
  end)
  after_each(function()
    db:close()
    files.remove_dir(dir)
  end)

  describe("claims", function()
    it("succeed once per slot: the second claim gets false", function()
      assert.is_true(db:claim_run { job = "rotate", nominal_at = 300 })
      assert.is_false(db:claim_run { job = "rotate", nominal_at = 300 })
      assert.is_false(db:claim_run { job = "rotate", nominal_at = 300, node = "elsewhere", pid = 1 })
      assert.is_true(db:claim_run { job = "rotate", nominal_at = 600 })
      assert.is_true(db:claim_run { job = "report", nominal_at = 300 })
      local run = db:get_run("rotate", 300)
      assert.equal("running", run.status)
      assert.equal(1, run.attempt)
      assert.equal(runs.node(), run.node)
      assert.equal(OWN_PID, run.pid)
      assert.is_true(math.abs(run.started_at - resi.now()) < 5)
      assert.equal(0, run.missed)
      assert.is_nil(run.finished_at)
    end)

    it("keep what the caller gave", function()
      assert.is_true(db:claim_run { job = "j", nominal_at = -60, node = "n1", pid = 4242, started_at = 12.5, missed = 3 })
      local run = db:get_run("j", -60)
      assert.same({ job = "j", nominal_at = -60, status = "running", attempt = 1, node = "n1", pid = 4242,
        started_at = 12.5, missed = 3 }, run)
    end)

    it("check their arguments", function()
      assert.matches("db:claim_run: nominal_at must be an integer", raised(function()
        db:claim_run { job = "j", nominal_at = 1.5 }
      end), 1, true)
      assert.matches("db:claim_run: job must be a non-empty string", raised(function()
        db:claim_run { job = "", nominal_at = 1 }
      end), 1, true)
      assert.matches("db:claim_run: expected a table", raised(function() db:claim_run("j") end), 1, true)
    end)
  end)

  describe("outcomes", function()
    it("finish a running run once", function()
      db:claim_run { job = "j", nominal_at = 60 }
      assert.is_true(db:finish_run("j", 60, "failed", { error = setmetatable({}, { __tostring = function() return "E!" end }),
        finished_at = 99.5 }))
      assert.is_false(db:finish_run("j", 60, "succeeded"))
      local run = db:get_run("j", 60)
      assert.equal("failed", run.status)
      assert.equal("E!", run.error)
      assert.equal(99.5, run.finished_at)
      assert.is_false(db:finish_run("j", 120, "succeeded")) -- never claimed
    end)

    it("accept only the run outcomes, naming them", function()
      db:claim_run { job = "j", nominal_at = 60 }
      for outcome in pairs(runs.RUN_OUTCOMES) do
        assert.is_true(db:claim_run { job = "o-" .. outcome, nominal_at = 1 })
        assert.is_true(db:finish_run("o-" .. outcome, 1, outcome))
        assert.equal(outcome, db:get_run("o-" .. outcome, 1).status)
      end
      local err = raised(function() db:finish_run("j", 60, "missed") end)
      assert.matches("outcome must be one of cancelled, failed, interrupted, succeeded, timed_out, got missed", err, 1, true)
      assert.equal("running", db:get_run("j", 60).status)
    end)

    it("record slots that did not run, once, and never over a claim", function()
      assert.is_true(db:record_slot("j", 60, "skipped_overlap", { error = "the 0 run is still running" }))
      assert.is_true(db:record_slot("j", 120, "missed"))
      assert.is_true(db:record_slot("j", 180, "coalesced"))
      assert.is_false(db:record_slot("j", 60, "missed"))
      assert.is_false(db:claim_run { job = "j", nominal_at = 120 }) -- a recorded slot is never run
      assert.is_true(db:claim_run { job = "j", nominal_at = 240, missed = 3 })
      assert.is_false(db:record_slot("j", 240, "missed")) -- nor a claimed one recorded
      local skipped = db:get_run("j", 60)
      assert.equal("skipped_overlap", skipped.status)
      assert.equal(0, skipped.attempt)
      assert.equal("the 0 run is still running", skipped.error)
      assert.is_not_nil(skipped.finished_at)
      assert.has_error(function() db:record_slot("j", 300, "succeeded") end)
    end)

    it("can be re-run from interrupted (or failed) with the next attempt", function()
      db:claim_run { job = "j", nominal_at = 60 }
      assert.is_nil(db:rerun { job = "j", nominal_at = 60 }) -- still running
      db:finish_run("j", 60, "interrupted")
      assert.equal(2, db:rerun { job = "j", nominal_at = 60, pid = 77, node = "n2" })
      assert.is_nil(db:rerun { job = "j", nominal_at = 60 }) -- taken: running again
      local run = db:get_run("j", 60)
      assert.same({ "running", 2, 77, "n2" }, { run.status, run.attempt, run.pid, run.node })
      assert.is_nil(run.finished_at)
      db:finish_run("j", 60, "failed", { error = "x" })
      assert.is_nil(db:rerun { job = "j", nominal_at = 60 }) -- from interrupted only, by default
      assert.equal(3, db:rerun { job = "j", nominal_at = 60, from = "failed" })
      assert.is_nil(db:get_run("j", 60).error)
      assert.has_error(function() db:rerun { job = "j", nominal_at = 60, from = "succeeded" } end)
    end)
  end)

  describe("interrupted runs", function()
    it("are found among the running ones and marked, once", function()
      db:claim_run { job = "a", nominal_at = 1, pid = 1000 }
      db:claim_run { job = "b", nominal_at = 1, pid = 1001 }
      db:claim_run { job = "b", nominal_at = 2, pid = 1002 }
      db:record_slot("c", 1, "missed")
      local running = db:running_runs()
      assert.same({ "a", "b", "b" }, { running[1].job, running[2].job, running[3].job })
      local seen = {}
      local marked = db:interrupt_dead(nil, function(run)
        seen[#seen + 1] = run.pid
        return run.pid == 1001
      end)
      assert.same({ 1000, 1001, 1002 }, seen)
      assert.same({ 1000, 1002 }, { marked[1].pid, marked[2].pid })
      assert.equal("interrupted", marked[1].status)
      assert.equal("interrupted", db:get_run("a", 1).status)
      assert.equal("running", db:get_run("b", 1).status)
      local again = db:interrupt_dead(nil, function() return false end)
      assert.same({ 1001 }, { again[1].pid, again[2] })
      assert.equal("interrupted", db:get_run("b", 1).status)
      assert.same({}, db:interrupt_dead(nil, function() return false end))
    end)

    it("of a claim made ahead whose process died before its start are released, not interrupted", function()
      local now = resi.now()
      db:claim_run { job = "ahead", nominal_at = 60, pid = 1000, started_at = now + 30 }
      db:claim_run { job = "late", nominal_at = 60, pid = 1000, started_at = now - 1 }
      db:claim_run { job = "live", nominal_at = 60, pid = 1001, started_at = now + 30 }
      local marked = db:interrupt_dead(nil, function(run) return run.pid == 1001 end)
      assert.same({ "late" }, { marked[1].job, marked[2] })
      assert.is_nil(db:get_run("ahead", 60))
      assert.equal("interrupted", db:get_run("late", 60).status)
      assert.equal("running", db:get_run("live", 60).status)
      -- the same with the caller's clock: at now + 40 the claim made ahead had started
      db:claim_run { job = "ahead", nominal_at = 60, pid = 1000, started_at = now + 30 }
      marked = db:interrupt_dead(nil, function(run) return run.pid == 1001 end, now + 40)
      assert.same({ "ahead" }, { marked[1].job, marked[2] })
    end)

    it("made ahead (attempt 0) are marked started once, by their pid, and survive a kill -9 of the marker", function()
      local now = resi.now()
      db:claim_run { job = "a", nominal_at = 60, pid = 1000, started_at = now, attempt = 0 }
      assert.is_false(db:mark_started("a", 60, 1001))
      assert.is_true(db:mark_started("a", 60, 1000))
      assert.is_false(db:mark_started("a", 60, 1000))
      assert.equal(1, db:get_run("a", 60).attempt)
      assert.is_false(db:mark_started("nothing", 60, 1000))
      assert.has_error(function() db:mark_started("a", "x", 1000) end)
      -- the mark does not wait for the disk, yet another process reads it at once,
      -- and one written by a process killed right after it is there
      db:claim_run { job = "b", nominal_at = 60, pid = 4242, started_at = now, attempt = 0 }
      local child = proc.resi({ "-e", ([[
        local db = require("resi.store").open(%q)
        assert(db:mark_started("b", 60, 4242))
        require("luv").kill(require("luv").os_getpid(), "sigkill")
      ]]):format(path) })
      assert.equal(9, child.signal, child.stderr)
      local other = store.open(path)
      assert.equal(1, other:get_run("b", 60).attempt)
      other:close()
    end)

    it("made ahead whose process died unmarked are released; marked, or from before a reboot, interrupted",
      function()
        local now = resi.now()
        local dead = function() return false end
        db:claim_run { job = "unmarked", nominal_at = 60, pid = 1000, started_at = now - 1, attempt = 0 }
        db:claim_run { job = "marked", nominal_at = 60, pid = 1000, started_at = now - 1, attempt = 0 }
        db:mark_started("marked", 60, 1000)
        -- claimed (started_at - claim_ahead) before this machine booted: its mark may have been lost
        db:claim_run { job = "old", nominal_at = 60, pid = 1000, started_at = 1000000, attempt = 0 }
        local marked = {}
        local rows, released = db:interrupt_dead(nil, dead, now)
        for _, run in ipairs(rows) do marked[#marked + 1] = run.job end
        table.sort(marked)
        assert.same({ "marked", "old" }, marked)
        assert.same({ "unmarked" }, { released[1].job, released[2] })
        assert.is_nil(db:get_run("unmarked", 60))
        -- the boot time is the caller's to give (the scheduler's clock)
        db:claim_run { job = "unmarked", nominal_at = 60, pid = 1000, started_at = now - 1, attempt = 0 }
        assert.same({ "unmarked" }, { db:interrupt_dead(nil, dead, now, now - 2)[1].job })
        assert.is_true(runs.never_started({ started_at = now - 1, attempt = 0 }, now, now - 86400))
        assert.is_false(runs.never_started({ started_at = now - 1, attempt = 1 }, now, now - 86400))
        assert.is_true(runs.never_started({ started_at = now + 1, attempt = 1 }, now, now - 86400))
      end)

    it("are released only while running under the pid that claimed them", function()
      db:claim_run { job = "a", nominal_at = 60, pid = 1000 }
      assert.is_false(db:release_claim("a", 60, 1001))
      assert.is_true(db:release_claim("a", 60, 1000))
      assert.is_nil(db:get_run("a", 60))
      assert.is_false(db:release_claim("a", 60, 1000))
      assert.is_true(db:claim_run { job = "a", nominal_at = 60, pid = 1002 })
      db:finish_run("a", 60, "succeeded")
      assert.is_false(db:release_claim("a", 60, 1002))
      assert.equal("succeeded", db:get_run("a", 60).status)
      assert.has_error(function() db:release_claim("a", "x", 1) end)
    end)

    it("of other nodes are left alone unless asked for", function()
      db:claim_run { job = "a", nominal_at = 1, node = "other-host", pid = 5 }
      assert.same({}, db:interrupt_dead(nil, function() return false end))
      assert.equal(1, #db:interrupt_dead(false, function() return false end))
    end)

    it("are told by process: dead pids, reused pids, and this process's own claims", function()
      local dead = proc.run({ "true" }).pid -- exited and reaped
      db:claim_run { job = "dead", nominal_at = 1, pid = dead }
      db:claim_run { job = "mine", nominal_at = 1 } -- this process, live
      -- an earlier process that had this pid (a container's PID 1 restarted)
      db.conn:run("INSERT INTO runs (job, nominal_at, status, node, pid, started_at) VALUES ($1, 1, 'running', $2, $3, 0)",
        "before", runs.node(), OWN_PID)
      -- a live process that started long after the run did: it reused the pid
      local sleeper, sleeper_pid
      sleeper, sleeper_pid = uv.spawn("sleep", { args = { "10" } }, function() sleeper:close() end)
      assert(sleeper, sleeper_pid)
      db:claim_run { job = "reused", nominal_at = 1, pid = sleeper_pid, started_at = resi.now() - 3600 }
      db:claim_run { job = "alive", nominal_at = 1, pid = sleeper_pid }
      local marked = {}
      for _, run in ipairs(db:interrupt_dead()) do marked[#marked + 1] = run.job end
      table.sort(marked)
      assert.same({ "before", "dead", "reused" }, marked)
      assert.equal("running", db:get_run("mine", 1).status)
      assert.equal("running", db:get_run("alive", 1).status)
      db:finish_run("mine", 1, "succeeded")
      assert.is_false(runs.process_alive { job = "mine", nominal_at = 1, pid = OWN_PID })
      sleeper:kill("sigterm")
    end)
  end)

  describe("history", function()
    before_each(function()
      for t = 60, 600, 60 do
        db:claim_run { job = "a", nominal_at = t }
        db:finish_run("a", t, t % 120 == 0 and "succeeded" or "failed")
      end
      db:record_slot("b", 90, "missed")
      db:claim_run { job = "b", nominal_at = 30 }
    end)

    it("gives the newest run, or the newest with a status", function()
      assert.equal(600, db:last_run("a").nominal_at)
      assert.equal("succeeded", db:last_run("a").status)
      assert.equal(540, db:last_run("a", "failed").nominal_at)
      assert.equal(90, db:last_run("b").nominal_at)
      assert.is_nil(db:last_run("none"))
      assert.is_nil(db:last_run("b", "succeeded"))
    end)

    it("lists runs newest first, by job, limit and since", function()
      local h = db:history { job = "a", limit = 3 }
      assert.same({ 600, 540, 480 }, { h[1].nominal_at, h[2].nominal_at, h[3].nominal_at })
      assert.equal(3, #h)
      assert.equal(10, #db:history { job = "a" })
      assert.equal(4, #db:history { job = "a", since = 420 })
      local all = db:history { limit = 4 }
      assert.same({ "a", "a", "a", "a" }, { all[1].job, all[2].job, all[3].job, all[4].job })
      assert.equal(12, #db:history())
      local oldest = db:history { since = math.mininteger, limit = 100 }
      assert.equal(30, oldest[#oldest].nominal_at)
      assert.has_error(function() db:history { limit = -1 } end)
    end)

    it("is pruned before a time, keeping running rows", function()
      assert.equal(6, db:prune_runs(330)) -- a@60..300, b@90; b@30 is running
      assert.equal(6, #db:history())
      assert.equal("running", db:get_run("b", 30).status)
    end)
  end)

  describe("job state", function()
    it("defaults for a job never seen, and keeps paused and next_at apart", function()
      assert.same({ name = "j", paused = false }, db:job_state("j"))
      db:set_paused("j", true)
      db:set_next_at("j", 1800)
      local s = db:job_state("j")
      assert.is_true(s.paused)
      assert.equal(1800, s.next_at)
      db:set_paused("j", false)
      assert.is_false(db:job_state("j").paused)
      assert.equal(1800, db:job_state("j").next_at)
      db:set_next_at("k", 60)
      local all = db:job_states()
      assert.same({ "j", "k" }, { all[1].name, all[2].name })
      assert.is_false(all[2].paused)
      -- another process sees a pause at once (resi jobs pause)
      local r = proc.resi { "-e", [[require("resi.store").open(resi.args[1]):set_paused("k", true)]], path }
      assert.equal(0, r.status, r.stderr)
      assert.is_true(db:job_state("k").paused)
    end)
  end)

  describe("statements", function()
    it("use $N parameters only, so they run unchanged on PostgreSQL", function()
      for name, sql in pairs(runs.sql) do
        assert.is_nil(sql:find("?", 1, true), name)
        local code = sql:gsub("'[^']*'", "''") -- literals hold no parameters
        local seen, max = {}, 0
        for n in code:gmatch("%$(%d+)") do
          n = math.tointeger(n)
          seen[n], max = true, math.max(max, n)
        end
        for n = 1, max do assert.is_true(seen[n], name .. " uses $" .. n) end
        assert.equal(select(2, sql:gsub("%$", "")), select(2, code:gsub("%$", "")), name)
        assert.is_nil(sql:upper():find("INSERT OR ", 1, true), name)
        assert.is_nil(sql:upper():find("REPLACE", 1, true), name)
      end
    end)
  end)

  describe("two processes", function()
    it("claiming the same 100 slots at once, in random orders, claim each exactly once in total", function()
      local go = dir .. "/go"
      local code = [[
        local uv = require "luv"
        local db = require("resi.store").open(resi.args[1])
        io.open(resi.args[1] .. ".ready-" .. resi.args[3], "w"):close()
        while not uv.fs_stat(resi.args[2]) do resi.sleep(0.001) end
        local order = {} -- each process its own random order: they collide all along
        for slot = 1, 100 do table.insert(order, math.random(#order + 1), slot) end
        local won = {}
        for _, slot in ipairs(order) do
          if db:claim_run { job = "race", nominal_at = slot, node = "p" .. resi.args[3] } then won[#won + 1] = slot end
          resi.sleep(0.001) -- let the other in: SQLite's busy wait backs off, a tight loop would win every lock
        end
        print(table.concat(won, " "))
      ]]
      local function racer(id)
        return function() return proc.resi { "-e", code, path, go, id } end
      end
      local starter = function()
        for _ = 1, 500 do
          if uv.fs_stat(path .. ".ready-1") and uv.fs_stat(path .. ".ready-2") then break end
          resi.sleep(0.005)
        end
        io.open(go, "w"):close()
      end
      local r1, r2 = resi.all { racer("1"), racer("2"), starter }
      assert.equal(0, r1.status, r1.stderr)
      assert.equal(0, r2.status, r2.stderr)
      local claimed = {}
      local total = 0
      for _, r in ipairs { r1, r2 } do
        for slot in r.stdout:gmatch("%d+") do
          slot = math.tointeger(slot)
          assert.is_nil(claimed[slot], "slot " .. slot .. " claimed twice")
          claimed[slot] = true
          total = total + 1
        end
      end
      assert.equal(100, total)
      local rows = db.conn:rows("SELECT nominal_at, node FROM runs WHERE job = 'race' ORDER BY nominal_at")
      assert.equal(100, #rows)
      for i, row in ipairs(rows) do assert.equal(i, row.nominal_at) end
    end)
  end)
end)
