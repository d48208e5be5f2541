-- The jobs daemon's notify_on = {failure_after = N, recovery = true}
-- (resi.jobs.notify): in the scheduler with a replayed clock, and in a real
-- `resi jobs` daemon notifying a receiver configured through RESI_NOTIFY_*.
local jobs = require "resi.jobs"
local scheduler = require "resi.jobs.scheduler"
local memstore = require "resi.jobs.memstore"
local notify = require "resi.notify"
local json = require "resi.json"
local R = require "spec.support.notify_receivers"
local proc = require "spec.support.proc"
local files = require "spec.support.files"
local uv = require "luv"

-- Writes a jobs file into dir; its path.
local function jobs_file(dir, text) return files.write(dir, "jobs.lua", text) end

-- The title of every Slack message a receiver got, in order.
local function titles(r)
  local out = {}
  for i, req in ipairs(r.requests) do out[i] = json.decode(req.body).blocks[1].text.text end
  return out
end

describe("jobs notify_on", function()
  local dir

  before_each(function()
    dir = R.tmpdir()
    notify.reset()
  end)
  after_each(function() proc.run { "rm", "-r", dir } end)

  it("notifies on the Nth failure in a row (once) and on the recovery", function()
    local r = R.http()
    local state = { fail = true }
    package.loaded["spec.jobs_notify_state"] = state
    local path = jobs_file(dir, ([[
      local jobs = require "resi.jobs"
      local state = require "spec.jobs_notify_state"
      jobs.every("1m", "rotate", function() if state.fail then error("provider said no") end end, {
        notify_on = { failure_after = 3, recovery = true },
        notify = { slack = { url = %q } },
      })
      jobs.every("1m", "quiet", function() error("no notify_on") end, { notify = { slack = { url = %q } } })
    ]]):format(r.url .. "/services/jobs", r.url .. "/services/quiet"))
    local defs = assert(jobs.load(path))
    local now = 1774764000
    local clock = { now = function() return now end, monotonic = function() return now end, sleep = resi.sleep }
    local sched = scheduler.new { jobs = defs, store = memstore.new(), clock = clock, node = "node-a" }
    -- one run of `name`, then the notification it started (if any) has ended
    local function run(name)
      now = now + 60
      sched.notifying = nil
      local outcome = sched:run_now(name)
      if sched.notifying then sched.notifying:wait() end
      return outcome
    end
    local outcomes = {}
    for i = 1, 5 do outcomes[i] = run("rotate") end
    assert.same({ "failed", "failed", "failed", "failed", "failed" }, outcomes)
    assert.same({ "job rotate failed 3 times in a row" }, titles(r))
    local failed = json.decode(r.requests[1].body)
    assert.matches("provider said no", failed.blocks[2].text.text)
    assert.matches("error · job_failed", failed.blocks[#failed.blocks].elements[1].text)
    state.fail = false
    assert.equal("succeeded", run("rotate"))
    assert.equal("succeeded", run("rotate"))
    assert.same({ "job rotate failed 3 times in a row", "job rotate recovered" }, titles(r))
    assert.matches("succeeded after 5 failed runs", json.decode(r.requests[2].body).blocks[2].text.text)
    for _ = 1, 4 do assert.equal("failed", run("quiet")) end
    r.close()
    assert.equal(2, #r.requests) -- a job without notify_on never notifies
  end)

  it("rejects a bad notify_on or notify at the jobs file's line", function()
    local path = jobs_file(dir, [[
      local jobs = require "resi.jobs"
      jobs.every("1m", "a", function() end, { notify_on = { failure_after = 0 } })
    ]])
    local defs, err = jobs.load(path)
    assert.is_nil(defs)
    assert.matches("jobs.lua:2: job \"a\": option notify_on must be a table whose failure_after is a whole number >= 1", err)
    path = jobs_file(dir, [[
      local jobs = require "resi.jobs"
      jobs.every("1m", "a", function() end, { notify_on = { failures = 3 } })
    ]])
    assert.matches('unknown field "failures"', select(2, jobs.load(path)))
    path = jobs_file(dir, [[
      local jobs = require "resi.jobs"
      jobs.notify { slack = { url = "http://hooks.example.com/x" } }
      jobs.every("1m", "a", function() end, { notify_on = {} })
    ]])
    assert.matches("jobs.lua:2: jobs.notify: expects a notify.from_config table: .*must be https://", select(2, jobs.load(path)))
  end)

  it("a real daemon: three failures notify once, the fix notifies the recovery; the streak is read from the store", function()
    local r = R.http()
    local flag = dir .. "/fixed"
    local path = jobs_file(dir, ([[
      local jobs = require "resi.jobs"
      jobs.cron("* * * * * *", "flaky", function()
        if not require("luv").fs_stat(%q) then error("upstream down") end
      end, { notify_on = { failure_after = 3, recovery = true } })
    ]]):format(flag))
    local env = { "RESI_NOTIFY_SLACK_URL=" .. r.url .. "/services/daemon", "RESI_NOTIFY_WEBHOOK_URL=",
      "RESI_NOTIFY_DISCORD_URL=", "RESI_NOTIFY_TELEGRAM_TOKEN=", "RESI_NOTIFY_SMTP_URL=", "RESI_LOG_FORMAT=json" }
    -- the daemon in the background until SIGTERM
    local function start_daemon()
      local list = proc.environment(env)
      local d = { err = {} }
      local stderr = uv.new_pipe()
      d.handle = assert(uv.spawn(proc.resi_path(), { args = { "jobs", path, "--store", dir .. "/state.db" }, env = list,
        stdio = { nil, nil, stderr } }, function(code) d.code = code end))
      stderr:read_start(function(_, data) if data then d.err[#d.err + 1] = data else stderr:close() end end)
      function d.stop()
        d.handle:kill("sigterm")
        for _ = 1, 200 do if d.code then break end resi.sleep(0.05) end
        d.handle:close()
        return d.code
      end
      return d
    end
    -- waits until the receiver has n requests (at most `seconds`)
    local function wait_for(n, seconds)
      local t0 = resi.monotonic()
      while #r.requests < n and resi.monotonic() - t0 < seconds do resi.sleep(0.05) end
      return #r.requests
    end
    local d = start_daemon()
    assert.equal(1, wait_for(1, 8))
    local code = d.stop() -- a restart in the middle of the streak: it goes on from the store
    assert.equal(0, code, table.concat(d.err))
    d = start_daemon()
    resi.sleep(1.5)
    assert.equal(1, #r.requests) -- later failures of the same streak stay quiet
    assert(io.open(flag, "w")):close()
    assert.equal(2, wait_for(2, 8))
    resi.sleep(1.2)
    assert.equal(0, d.stop(), table.concat(d.err))
    r.close()
    assert.same({ "job flaky failed 3 times in a row", "job flaky recovered" }, titles(r))
    local history = proc.resi({ "jobs", "history", path, "--store", dir .. "/state.db", "--json", "--limit", "100" })
    local failed = 0
    for line in history.stdout:gmatch("[^\n]+") do
      if json.decode(line).outcome == "failed" then failed = failed + 1 end
    end
    assert.is_true(failed >= 4, ("%d failed runs"):format(failed))
  end)
end)
