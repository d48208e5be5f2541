-- The jobs-file DSL (resi.jobs): every, cron and script declarations, the
-- options and their errors (file:line and the option), intervals, and
-- jobs.script running a resi script in process with its own resi.args and
-- environment (scripts/rotate.lua unchanged, against resi sim).
local jobs = require "resi.jobs"
local schedule = require "resi.jobs.schedule"
local proc = require "spec.support.proc"
local files = require "spec.support.files"

-- Writes a jobs file; returns its path.
local function jobs_file(text) return files.scratch(text, ".lua") end

-- Loads a jobs file made from text; returns defs or nil, err.
local function load(text)
  local path = jobs_file(text)
  local defs, err = jobs.load(path)
  os.remove(path)
  return defs, err
end

-- The definitions of a loaded file by name.
local function by_name(defs)
  local out = {}
  for _, d in ipairs(defs) do out[d.name] = d end
  return out
end

local HEAD = 'local jobs = require "resi.jobs"\n'

describe("jobs DSL", function()
  describe("intervals", function()
    it("parses seconds and unit strings", function()
      assert.equal(300, schedule.parse_interval("5m"))
      assert.equal(5400, schedule.parse_interval("1h30m"))
      assert.equal(90, schedule.parse_interval("90s"))
      assert.equal(86400 + 7200, schedule.parse_interval("1d2h"))
      assert.equal(42, schedule.parse_interval(42))
      assert.equal("1h30m", schedule.format_interval(5400))
    end)

    it("rejects what is not an interval, saying why", function()
      for _, bad in ipairs({ 0, -5, 1.5, "", "5", "5 parsecs", "m5", "0s", true }) do
        local n, err = schedule.parse_interval(bad)
        assert.is_nil(n, tostring(bad))
        assert.is_string(err)
      end
    end)

    it("puts every-slots on the epoch lattice: the same after a restart", function()
      local s = schedule.every(300)
      assert.equal(1774000200, s:next(1774000000))
      assert.equal(1774000200, s:next(1774000199))
      assert.equal(1774000500, s:next(1774000200))
      assert.equal(1774000200, s:last(1774000499))
      assert.is_true(s:matches(1774000200))
      assert.equal(3, s:count(1774000000, 1774000900))
    end)
  end)

  describe("declarations", function()
    it("collects every, cron and script jobs with their options and file:line", function()
      local defs = assert(load(HEAD .. [[
jobs.every("5m", "ping", function() end, { timeout = 10, jitter = 2 })
jobs.cron("0 6 * * *", "report", function() end, { tz = "Europe/Berlin", catchup = "all", grace = 3600, max_catchup = 3 })
jobs.script("*/5 * * * *", "rotate", "scripts/rotate.lua", { "--threshold", 0.9 }, { overlap = "buffer_one",
  retry = { attempts = 3, backoff = 5 }, on_interrupt = "rerun", stable_offset = 30, paused = true })
jobs.script("10m", "report2", "scripts/usage_report.lua")
]]))
      assert.equal(4, #defs)
      local d = by_name(defs)
      assert.equal("every", d.ping.kind)
      assert.equal(300, d.ping.schedule.interval)
      assert.equal(10, d.ping.timeout)
      assert.truthy(d.ping.file:match(":2$"))
      assert.equal("cron", d.report.kind)
      assert.equal("Europe/Berlin", d.report.schedule.tz)
      assert.is_false(d.report.schedule.wildcard)
      assert.equal("all", d.report.catchup)
      assert.equal("script", d.rotate.kind)
      assert.same({ "--threshold", "0.9" }, d.rotate.args)
      assert.is_true(d.rotate.schedule.wildcard)
      assert.equal("buffer_one", d.rotate.overlap)
      assert.equal(3, d.rotate.retry.attempts)
      assert.is_true(d.rotate.paused)
      assert.equal("every", d.report2.schedule.kind)
    end)

    it("turns stable_offset = true into the job's period", function()
      local d = by_name(assert(load(HEAD .. 'jobs.every("5m", "a", function() end, { stable_offset = true })\n')))
      assert.equal(300, d.a.stable_offset)
    end)

    -- Each bad file: its text, the line the error must name and a word it must contain.
    local BAD = {
      { 'jobs.every("5m", "a", function() end, { overlap = "sometimes" })', 2, "overlap" },
      { 'jobs.every("5m", "a", function() end, { catchup = "first" })', 2, "catchup" },
      { 'jobs.every("5m", "a", function() end, { on_interrupt = "retry" })', 2, "on_interrupt" },
      { 'jobs.every("5m", "a", function() end, { grace = -1 })', 2, "grace" },
      { 'jobs.every("5m", "a", function() end, { max_catchup = 1.5 })', 2, "max_catchup" },
      { 'jobs.every("5m", "a", function() end, { jitter = "lots" })', 2, "jitter" },
      { 'jobs.every("5m", "a", function() end, { timeout = 0 })', 2, "timeout" },
      { 'jobs.every("5m", "a", function() end, { retry = { attempts = 0 } })', 2, "retry" },
      { 'jobs.every("5m", "a", function() end, { retry = { tries = 2 } })', 2, "tries" },
      { 'jobs.every("5m", "a", function() end, { paused = "yes" })', 2, "paused" },
      { 'jobs.every("5m", "a", function() end, { colour = "red" })', 2, "unknown option \"colour\"" },
      { 'jobs.every("5m", "a", function() end, { tz = "Europe/Berlin" })', 2, "tz applies to cron" },
      { 'jobs.cron("0 6 * * *", "a", function() end, { tz = "Mars/Olympus" })', 2, "Mars/Olympus" },
      { 'jobs.cron("61 * * * *", "a", function() end)', 2, "minute" },
      { 'jobs.every("5 parsecs", "a", function() end)', 2, "interval" },
      { 'jobs.every("5m", "a", "not a function")', 2, "function" },
      { 'jobs.every("5m", "bad name", function() end)', 2, "job name" },
      { 'jobs.every("5m", "a", function() end)\n\njobs.cron("* * * * *", "a", function() end)', 4, "duplicate" },
      { 'jobs.script("5m", "a", "no/such/script.lua")', 2, "not found" },
      { 'jobs.script("5m", "a", "scripts/rotate.lua", { {} })', 2, "argument 1" },
    }
    for _, c in ipairs(BAD) do
      it(("reports %s at file:line"):format(c[1]:sub(1, 70)), function()
        local defs, err = load(HEAD .. c[1] .. "\n")
        assert.is_nil(defs)
        assert.truthy(err:find(".lua:" .. c[2] .. ": ", 1, true), err)
        assert.truthy(err:find(c[3], 1, true), err)
      end)
    end

    it("reports a syntax error and a file without jobs", function()
      local _, err = load(HEAD .. "jobs.every(\n")
      assert.truthy(err:find(".lua:%d+:"))
      local _, err2 = load(HEAD)
      assert.truthy(err2:find("declares no jobs", 1, true))
    end)

    it("refuses declarations outside a jobs file", function()
      local ok, err = pcall(jobs.every, "5m", "a", function() end)
      assert.is_false(ok)
      assert.truthy(err:find("jobs file", 1, true))
    end)

    it("keeps a jobs file's globals out of the real global table", function()
      assert(load(HEAD .. 'leaked_global = 1\njobs.every(1, "a", function() end)\n'))
      assert.is_nil(rawget(_G, "leaked_global"))
    end)
  end)

  describe("jobs.script", function()
    it("finds a relative script beside the jobs file, then among resi's own scripts/", function()
      -- from another working directory, as a systemd unit runs it
      local path = jobs_file(HEAD .. 'jobs.script("5m", "report", "scripts/usage_report.lua")\n')
      local r = proc.run({ proc.resi_path(), "jobs", "check", path }, { cwd = "/" })
      os.remove(path)
      assert.are.equal(0, r.status, r.stderr)
      local _, err = load(HEAD .. 'jobs.script("5m", "x", "scripts/no_such_script.lua")\n')
      assert.truthy(err and err:find("script scripts/no_such_script.lua not found", 1, true), err)
    end)

    it("runs a script in process with its own resi.args, arg, globals and exit status", function()
      local script = jobs_file([[
local argparse = require "resi.argparse"
SCRIPT_GLOBAL = (SCRIPT_GLOBAL or 0) + 1
argparse.run(resi.args, { name = { type = "string" }, fail = { type = "flag" } }, "help", function(o)
  local f = assert(io.open(o.name, "a"))
  f:write(table.concat(resi.args, " "), "|", arg[0], "|", SCRIPT_GLOBAL, "|", resi.run.id, "\n")
  f:close()
  if o.fail then require("resi.task").set_exit_status(3) end
end)
]])
      local out = os.tmpname()
      local defs = assert(load(HEAD .. ([[
jobs.script(60, "ok", %q, { "--name", %q })
jobs.script(60, "fails", %q, { "--name", %q, "--fail" })
jobs.script(60, "usage", %q, { "--bogus" })
]]):format(script, out, script, out, script)))
      local d = by_name(defs)
      local run = { id = "ok@x", nominal_at = 0, attempt = 1, missed = 0 }
      d.ok.fn(run)
      d.ok.fn(run)
      assert.is_nil(rawget(_G, "SCRIPT_GLOBAL"))
      local ok, err = pcall(d.fails.fn, { id = "fails@x" })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("exited with status 3", 1, true))
      local ok2, err2 = pcall(d.usage.fn, { id = "usage@x" })
      assert.is_false(ok2)
      assert.truthy(tostring(err2):find("status 2", 1, true))
      local f = assert(io.open(out))
      local text = f:read("a")
      f:close()
      -- a fresh environment per run: the global counts 1 each time
      assert.equal(("--name %s|%s|1|ok@x\n"):format(out, script):rep(2) .. ("--name %s --fail|%s|1|fails@x\n"):format(out, script),
        text)
      os.remove(out)
      os.remove(script)
    end)

    it("forbids os.exit in a job's script", function()
      local script = jobs_file("os.exit(0)\n")
      local d = by_name(assert(load(HEAD .. ("jobs.script(60, 'x', %q)\n"):format(script))))
      local ok, err = pcall(d.x.fn, { id = "x@y" })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("os.exit", 1, true))
      os.remove(script)
    end)

    it("runs scripts/rotate.lua unchanged through `resi jobs run`, against resi sim", function()
      local sim = require("spec.support.sim").start { seed = 7, provider = "unknownproxies" }
      local up = sim:client()
      local GB = 1000000000
      local t = up:create_token { dataLimit = 10 * GB, durationHours = 720 }
      sim:usage { id = t.token, bytes = 9 * GB }
      local dir = files.dir("resi-jobs-dsl")
      local file = dir .. "/jobs.lua"
      local f = assert(io.open(file, "w"))
      f:write(HEAD .. ([[
jobs.script("*/5 * * * *", "rotate", "scripts/rotate.lua", { "--provider", "unknownproxies",
  "--store", %q, "--out", %q, "--format", "url" })
jobs.script("*/5 * * * *", "bad", "scripts/rotate.lua", { "--threshold", "5" })
]]):format(dir .. "/rotate.db", dir .. "/proxies.txt"))
      f:close()
      local env = sim:env { "unknownproxies" }
      local r = proc.resi({ "jobs", "run", file, "rotate", "--store", dir .. "/resi.db" }, { env = env })
      assert.equal(0, r.status, r.stderr .. r.stdout)
      assert.truthy(r.stdout:find("1 rotated", 1, true), r.stdout)
      assert.truthy(r.stdout:find("rotate: succeeded", 1, true), r.stdout)
      local pf = assert(io.open(dir .. "/proxies.txt"))
      assert.truthy(pf:read("a"):find("http://", 1, true))
      pf:close()
      local r2 = proc.resi({ "jobs", "run", file, "bad", "--store", dir .. "/resi.db" }, { env = env })
      assert.equal(1, r2.status)
      assert.truthy(r2.stdout:find("bad: failed", 1, true), r2.stdout)
      sim:stop()
      files.remove_dir(dir)
    end)
  end)

  describe("resi jobs explain", function()
    it("shows fire times with the DST markers of cronie's rule", function()
      local file = jobs_file(HEAD .. [[
jobs.cron("30 2 * * *", "nightly", function() end, { tz = "Europe/Berlin" })
jobs.cron("*/30 2 * * *", "halfhour", function() end, { tz = "Europe/Berlin" })
jobs.every("1h", "hourly", function() end)
]])
      local r = proc.resi({ "jobs", "explain", file, "nightly", "--from", "2026-03-28T12:00:00Z", "--next", "2" })
      assert.equal(0, r.status, r.stderr)
      assert.truthy(r.stdout:find("fixed-time job", 1, true))
      assert.truthy(r.stdout:find("2026-03-29T01:00:00Z  2026-03-29 03:00:00 +02:00 CEST  moved: skipped hour", 1, true),
        r.stdout)
      r = proc.resi({ "jobs", "explain", file, "nightly", "--from", "2026-10-24T12:00:00Z", "--next", "1" })
      assert.truthy(r.stdout:find("2026-10-25T00:30:00Z  2026-10-25 02:30:00 +02:00 CEST  once: repeated hour", 1, true),
        r.stdout)
      r = proc.resi({ "jobs", "explain", file, "halfhour", "--from", "2026-10-24T12:00:00Z", "--next", "4" })
      assert.truthy(r.stdout:find("wildcard job", 1, true))
      local _, twice = r.stdout:gsub("twice: repeated hour", "")
      assert.equal(4, twice)
      r = proc.resi({ "jobs", "explain", file, "--next", "1" })
      assert.equal(0, r.status)
      assert.truthy(r.stdout:find("hourly: every 1h (UTC", 1, true), r.stdout)
      r = proc.resi({ "jobs", "explain", file, "--from", "yesterday" })
      assert.equal(2, r.status)
      os.remove(file)
    end)
  end)
end)
