-- The user-written workflows in examples/ (topup, month_end,
-- sticky_refresh) run as `resi run examples/X.lua` subprocesses against an
-- in-process resi sim, with their intents in a scratch $XDG_STATE_HOME:
-- run twice and from other working directories, the effect happens once;
-- killed with -9 while a provider call that has already committed waits
-- for its answer, the rerun neither repeats nor loses the effect. Every
-- assertion reads the sandbox (limits, statuses, request counts, batches).
local uv = require "luv"
local intent = require "resi.intent"
local wp = require "spec.support.workflow_proc"

local GB = 1000000000
local ROOT = uv.cwd()

describe("workflow examples", function()
  local sim, dir, env

  -- Starts the sandbox (opts for spec.support.sim.start) and a scratch
  -- directory; the subprocess environment has only the providers in names.
  local function setup(opts, names)
    sim = require("spec.support.sim").start(opts)
    dir = wp.scratch_dir()
    env = sim:env(names)
    for _, kv in ipairs({ "XDG_STATE_HOME=" .. dir .. "/state", "RESI_STORE=", "MONTHLY_BUDGET_BYTES=", "STICKY_FILE=" }) do
      env[#env + 1] = kv
    end
  end

  after_each(function()
    if sim then sim:stop() end
    if dir then wp.remove(dir) end
    sim, dir = nil, nil
  end)

  -- The argv of `resi run examples/NAME.lua ARGS...`.
  local function argv(name, args)
    local a = { "run", ROOT .. "/examples/" .. name .. ".lua" }
    for _, v in ipairs(args or {}) do a[#a + 1] = v end
    return a
  end

  -- Runs an example to its end from cwd (default the scratch directory,
  -- created when missing) and asserts it succeeded; the result.
  local function run(name, args, cwd)
    cwd = cwd or dir
    uv.fs_mkdir(cwd, 448)
    local r = wp.run(argv(name, args), { env = env, cwd = cwd })
    assert.are.equal(0, r.status, r.stderr)
    return r
  end

  -- Starts an example, waits until ready() sees its effect in the sandbox
  -- and kills it with -9; the result of the killed run.
  local function kill_when(name, args, ready)
    local p = wp.start(argv(name, args), { env = env, cwd = dir })
    local seen = wp.eventually(ready, 20)
    p:kill("sigkill")
    local r = p:wait()
    assert.is_true(seen, "the effect never appeared in the sandbox: " .. r.stderr)
    assert.are.equal(9, r.signal, "the run was not killed: " .. r.stdout .. r.stderr)
    return r
  end

  -- Counts the requests to a route of the harness's provider from now on
  -- (a latency fault of 0 ms armed until cleared); a function giving the count.
  local function counter(route)
    local rule = sim:fault { route = route, kind = "latency", ms = 0, count = 0 }
    return function()
      local _, doc = sim:admin("GET", "/faults")
      for _, f in ipairs(doc.faults) do
        if f.id == rule.id then return f.fired end
      end
      error("the counting fault on " .. route .. " is gone")
    end
  end

  -- Occurrences of a plain string in s.
  local count = require("spec.support.text").count

  describe("examples/topup.lua", function()
    local up

    -- Token limits by id, from the sandbox.
    local function limits()
      local out = {}
      for _, t in ipairs(up:tokens()) do out[t.id] = t.limit_bytes end
      return out
    end

    -- The ids of the tokens under 1 GB left (low) and of the others, by their seeded limit.
    local function low_and_high()
      local low, high = {}, {}
      for _, t in ipairs(up:tokens()) do
        if t.limit_bytes - t.used_bytes < GB then low[#low + 1] = t.id else high[#high + 1] = t.id end
      end
      table.sort(low)
      return low, high
    end

    before_each(function()
      setup({ seed = 41, provider = "unknownproxies", accounts = { unknownproxies = { {
        username = "reseller", password = "pw-reseller-1",
        tokens = { { dataLimit = 2 * GB, dataUsage = 1500000000 }, { dataLimit = 10 * GB, dataUsage = 9200000000 },
          { dataLimit = 5 * GB, dataUsage = 1 * GB } } } } } }, { "unknownproxies" })
      up = sim:account()
    end)

    it("raises each token under 1 GB left by 5 GB once: run twice and from two other directories", function()
      local before = limits()
      local low, high = low_and_high()
      assert.are.equal(2, #low)
      local patches = counter("PATCH /resi/token")
      local first = run("topup")
      assert.are.equal(2, count(first.stdout, "(acted)"), first.stdout)
      run("topup")
      run("topup", nil, dir .. "/a")
      run("topup", nil, dir .. "/b")
      local after = limits()
      for _, id in ipairs(low) do assert.are.equal(before[id] + 5 * GB, after[id], id) end
      for _, id in ipairs(high) do assert.are.equal(before[id], after[id], id) end
      assert.are.equal(2, patches())
    end)

    it("killed -9 after the first change committed: the rerun finds it and does the rest", function()
      local before = limits()
      local low = low_and_high()
      -- the first PATCH commits, then its answer waits; the run is killed waiting
      sim:fault { route = "PATCH /resi/token", kind = "latency", ms = 8000, after = true, count = 1 }
      local patches = counter("PATCH /resi/token")
      kill_when("topup", nil, function()
        local now = limits()
        return now[low[1]] ~= before[low[1]] or now[low[2]] ~= before[low[2]]
      end)
      local changed = 0
      for _, id in ipairs(low) do
        if limits()[id] ~= before[id] then changed = changed + 1 end
      end
      assert.are.equal(1, changed) -- killed mid-run: one done, one to do
      local r = run("topup", nil, dir .. "/elsewhere")
      assert.are.equal(1, count(r.stdout, "(found)"), r.stdout)
      assert.are.equal(1, count(r.stdout, "(acted)"), r.stdout)
      run("topup")
      local after = limits()
      for _, id in ipairs(low) do assert.are.equal(before[id] + 5 * GB, after[id], id) end
      assert.are.equal(1, patches()) -- after the killed run's: only the one it had not made
    end)

    it("a change the provider refused leaves the intent pending: the rerun looks, then makes it", function()
      local before = limits()
      local low = low_and_high()
      sim:fault { route = "PATCH /resi/token", kind = "error", status = 400, count = 1 } -- refused, nothing changed
      local failed = wp.run(argv("topup"), { env = env, cwd = dir })
      assert.are.equal(1, failed.status, failed.stdout)
      assert.same(before, limits())
      local pending = intent.open("topup", { account = up, store = dir .. "/state/resi/resi.db" }):pending()
      assert.are.equal(1, #pending)
      local r = run("topup")
      assert.are.equal(2, count(r.stdout, "(acted)"), r.stdout)
      local after = limits()
      for _, id in ipairs(low) do assert.are.equal(before[id] + 5 * GB, after[id], id) end
      assert.are.equal(before[pending[1].plan.id] + 5 * GB, pending[1].plan.limit)
    end)
    it("settles a pending top-up of a token deleted since, instead of failing on it every run", function()
      local low = low_and_high()
      local book = intent.open("topup", { account = up, store = dir .. "/state/resi/resi.db" })
      book:begin(low[1] .. ":1", { id = low[1], limit = 6 * GB })
      up:delete_token(low[1])
      local r = run("topup")
      assert.matches(low[1] .. ": limit 1000000000 -> gone (found)", r.stdout, 1, true)
      assert.are.equal("done", book:get(low[1] .. ":1").state)
      assert.are.equal(1, count(r.stdout, "(acted)"), r.stdout) -- the other low token
    end)
  end)

  describe("examples/month_end.lua", function()
    local oxy, ids

    -- Sub-user statuses by username, from the sandbox.
    local function statuses()
      local out = {}
      for _, s in ipairs(oxy:tokens()) do out[s.username] = s.status end
      return out
    end

    before_each(function()
      setup({ seed = 42, provider = "oxylabs", accounts = { oxylabs = { {
        username = "mainox", password = "Main-Pass-123", user_id = "7d4c2b1a-0000-4000-a000-000000000001",
        sub_users = { { username = "cust_a", traffic_limit = 5, traffic = 5.5 },
          { username = "cust_b", traffic_limit = 10, traffic = 2 },
          { username = "cust_c", traffic_limit = resi.json.null, traffic = 50 },
          { username = "cust_d", traffic_limit = 3, traffic = 3 } } } } } }, { "oxylabs" })
      oxy = sim:account()
      ids = {}
      for _, s in ipairs(oxy:tokens()) do ids[s.username] = s.id end
    end)

    it("disables the sub-users over their limit once a month: twice, by hand re-enabled, from two directories", function()
      local patches = counter("PATCH /users/:user_id/sub-users/:id")
      local first = run("month_end")
      assert.are.equal(2, count(first.stdout, "(acted)"), first.stdout)
      run("month_end")
      assert.are.same({ cust_a = "disabled", cust_b = "active", cust_c = "active", cust_d = "disabled" }, statuses())
      assert.are.equal(2, patches())
      -- the reseller lets cust_a go on this month: later runs leave it alone
      oxy.client:update_sub_user(ids.cust_a, { status = "active" })
      local r = run("month_end", nil, dir .. "/a")
      run("month_end", nil, dir .. "/b")
      assert.matches("(done)", r.stdout, 1, true)
      assert.are.same({ cust_a = "active", cust_b = "active", cust_c = "active", cust_d = "disabled" }, statuses())
      assert.are.equal(3, patches()) -- the two disables and the hand-made enable
    end)

    it("takes the budget from the argument or MONTHLY_BUDGET_BYTES, and refuses a bad one", function()
      run("month_end", { tostring(20 * GB) })
      assert.are.same({ cust_a = "active", cust_b = "active", cust_c = "disabled", cust_d = "active" }, statuses())
      env[#env + 1] = "MONTHLY_BUDGET_BYTES=" .. tostring(2 * GB)
      run("month_end")
      assert.are.same({ cust_a = "disabled", cust_b = "disabled", cust_c = "disabled", cust_d = "disabled" }, statuses())
      local bad = wp.run(argv("month_end", { "5GB" }), { env = env, cwd = dir })
      assert.are.equal(1, bad.status)
      assert.matches("budget must be a positive whole number of bytes", bad.stderr, 1, true)
    end)

    it("settles a pending disable of a sub-user deleted since", function()
      local book = intent.open("month_end", { account = oxy, store = dir .. "/state/resi/resi.db" })
      book:begin("2001-01:" .. ids.cust_b, { id = ids.cust_b, username = "cust_b", used = 1, budget = 1 })
      oxy:delete_token(ids.cust_b)
      local r = run("month_end")
      assert.matches("(cust_b): used 1 of 1 bytes: gone (found)", r.stdout, 1, true)
      assert.are.equal(0, #book:pending())
      assert.are.same({ cust_a = "disabled", cust_c = "active", cust_d = "disabled" }, statuses())
    end)

    it("killed -9 after the first disable committed: the rerun finds it and does the rest", function()
      sim:fault { route = "PATCH /users/:user_id/sub-users/:id", kind = "latency", ms = 8000, after = true, count = 1 }
      local patches = counter("PATCH /users/:user_id/sub-users/:id")
      kill_when("month_end", nil, function()
        local s = statuses()
        return s.cust_a == "disabled" or s.cust_d == "disabled"
      end)
      local s = statuses()
      assert.are_not.equal(s.cust_a, s.cust_d) -- killed mid-run: one done, one to do
      local r = run("month_end", nil, dir .. "/elsewhere")
      assert.are.equal(1, count(r.stdout, "(found)"), r.stdout)
      assert.are.equal(1, count(r.stdout, "(acted)"), r.stdout)
      run("month_end")
      assert.are.same({ cust_a = "disabled", cust_b = "active", cust_c = "active", cust_d = "disabled" }, statuses())
      assert.are.equal(1, patches())
    end)
  end)

  describe("examples/sticky_refresh.lua", function()
    local out

    -- The sandbox account's generate batches (each one charged) and request counts.
    local function rf()
      return sim:state().providers.resifactory.accounts[1]
    end

    -- The lines of a file, or nil when it does not exist.
    local function lines(path)
      local f = io.open(path)
      if not f then return nil end
      local t = {}
      for l in f:lines() do t[#t + 1] = l end
      f:close()
      return t
    end

    -- The workflow's intents, as the examples' store holds them.
    local function book()
      return intent.open("sticky_refresh", { account = sim:account(), store = dir .. "/state/resi/resi.db" })
    end

    before_each(function()
      setup({ seed = 43, provider = "resifactory" }, { "resifactory" })
      out = dir .. "/sticky.txt"
    end)

    it("generates once a day, however often it runs: twice and from two directories", function()
      local first = run("sticky_refresh", { out, "5" })
      assert.matches("(acted)", first.stdout, 1, true)
      local list = lines(out)
      assert.are.equal(5, #list)
      assert.matches("^http://user%-.+%-sesstime%-1440:.+@", list[1])
      assert.are.equal("600", ("%o"):format(uv.fs_stat(out).mode & 511))
      local again = run("sticky_refresh", { out, "5" })
      assert.matches("(done)", again.stdout, 1, true)
      run("sticky_refresh", { "sticky.txt", "5" }, dir .. "/a")
      run("sticky_refresh", { "sticky.txt", "5" }, dir .. "/b")
      local a = rf()
      assert.are.equal(1, #a.batches)
      assert.are.equal(1, a.requests.generate.ok)
      assert.are.same(list, lines(out))
      assert.are.equal(book():get(os.date("!%Y-%m-%d")).idempotency_key, a.batches[1].idempotency_key)
    end)

    it("killed -9 between the generate and the write: the rerun replays it (no second spend) and writes the list", function()
      -- the generate is charged, then its answer waits; the run is killed waiting
      sim:fault { route = "POST /proxies", kind = "latency", ms = 8000, after = true, count = 1 }
      kill_when("sticky_refresh", { out, "5" }, function() return #rf().batches == 1 end)
      assert.is_nil(lines(out))
      assert.are.equal("pending", book():get(os.date("!%Y-%m-%d")).state)
      local r = run("sticky_refresh", { out, "5" }, dir .. "/elsewhere")
      assert.matches("replayed: no second spend", r.stdout, 1, true)
      run("sticky_refresh", { out, "5" })
      local a = rf()
      assert.are.equal(1, #a.batches) -- one charged batch
      assert.are.equal(2, a.requests.generate.ok) -- the killed run's and the replay
      assert.are.equal(5, #lines(out))
      local it = book():get(os.date("!%Y-%m-%d"))
      assert.are.equal("done", it.state)
      assert.are.equal(it.idempotency_key, a.batches[1].idempotency_key)
    end)

    it("gives up a pending intent of an earlier day and generates today's", function()
      local old = book():begin("2001-02-03", { out = out, fields = { quantity = 5 } })
      run("sticky_refresh", { out, "5" })
      assert.are.equal("abandoned", book():get("2001-02-03").state)
      assert.are.equal(1, #rf().batches)
      assert.are_not.equal(old.idempotency_key, rf().batches[1].idempotency_key)
      assert.are.equal(5, #lines(out))
    end)
  end)
end)
