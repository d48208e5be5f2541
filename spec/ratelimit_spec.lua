-- resi.ratelimit: limiters, waiting, learning from responses, retries,
-- groups. Exact timing runs on a virtual clock (time moves only
-- when the spec says so); the HTTP specs use a scripted resi.server.
local ratelimit = require "resi.ratelimit"
local log = require "resi.log"
local checks = require "spec.support.checks"

-- Spawns fn in a task and records when (virtual time) it got its permit.
local function waiter(vc, lim, out, tag, opts)
  return resi.spawn(function()
    local p, why, info = lim:acquire(opts and opts.weight or 1, opts)
    out[#out + 1] = { tag = tag, t = vc.t, permit = p, why = why, info = info }
    if p and not (opts and opts.hold) then p:release() end
  end)
end

-- A limiter of one permit per 10 s on a virtual clock, with opts added to
-- those options and its permit already taken; returns the clock, the
-- limiter and an empty list for waiter() to write to.
local function busy(opts)
  local vc = ratelimit.virtual_clock()
  local o = { limit = 1, window = 10, clock = vc }
  for k, v in pairs(opts or {}) do o[k] = v end
  local lim = ratelimit.new(o)
  assert(lim:acquire())
  return vc, lim, {}
end

-- busy(opts) with waiters tagged 1, 2 and 3 arriving at time 0.
local function three_waiting(opts)
  local vc, lim, out = busy(opts)
  for i = 1, 3 do waiter(vc, lim, out, i) end
  vc:advance(0)
  return vc, lim, out
end

-- Tags in the order they were granted.
local function tags(out)
  local r = {}
  for i, o in ipairs(out) do r[i] = o.tag end
  return r
end

-- Captures resi.log lines (JSON) written while fn runs.
local function capture_log(fn)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  local previous = log.configure { file = f, format = "json", level = "debug" }
  local ok, err = pcall(fn)
  log.configure(previous) -- resi test's own capture, not stderr
  f:close()
  local text = assert(io.open(path)):read("a")
  os.remove(path)
  if not ok then error(err, 0) end
  return text
end

describe("ratelimit limiters", function()
  it("lets exactly `limit` calls through in any rolling window", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 3, window = 10, clock = vc }
    local out = {}
    for i = 1, 7 do waiter(vc, lim, out, i) end
    vc:advance(0)
    assert.same({ 1, 2, 3 }, tags(out))
    assert.equal(4, lim:stats().queued)
    vc:advance(9.999)
    assert.equal(3, #out)
    vc:advance(0.001)
    assert.same({ 1, 2, 3, 4, 5, 6 }, tags(out))
    for i = 4, 6 do assert.equal(10, out[i].t) end
    vc:advance(10)
    assert.equal(7, #out)
    assert.equal(20, out[7].t)
    local s = lim:stats()
    assert.equal(7, s.granted)
    assert.equal(4, s.waits)
    assert.equal(10 * 3 + 20, s.waited)
    assert.equal(20, s.max_wait)
  end)

  it("takes a plain clock function (and a sleep function) instead of a clock object", function()
    local T = 100
    local slept = {}
    local lim = ratelimit.new { limit = 1, window = 10, clock = function() return T end,
      sleep = function(s) slept[#slept + 1] = s; T = T + s end }
    assert.is_table(lim:try())
    assert.is_nil(lim:try())
    local p = lim:acquire() -- the pump "sleeps" by moving T
    assert.is_table(p)
    assert.same({ 10 }, slept)
    assert.equal(110, T)
  end)

  it("starts a call's window when the call ends, not when it started", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 1, window = 10, clock = vc }
    local p = assert(lim:acquire())
    vc:advance(2)
    p:release() -- the server may have seen the call as late as now
    local out = {}
    waiter(vc, lim, out, "next")
    vc:advance(9.5)
    assert.equal(0, #out)
    vc:advance(0.5)
    assert.equal(1, #out)
    assert.equal(12, out[1].t)
  end)

  it("names the bad option and the caller's line", function()
    local err_of = require("spec.support.checks").raised
    local e = err_of(function() ratelimit.new { limit = 0, window = 60 } end)
    assert.truthy(e:find("ratelimit_spec.lua:%d+: resi.ratelimit.new: limit must be a positive number"), e)
    e = err_of(function() ratelimit.group { limit = 5 } end)
    assert.truthy(e:find("ratelimit_spec.lua:%d+: resi.ratelimit.new: window must be a positive number"), e)
    e = err_of(function() ratelimit.new { concurrency = 1.5 } end)
    assert.truthy(e:find("ratelimit_spec.lua:%d+: resi.ratelimit.new: concurrency must be a positive integer"), e)
    e = err_of(function() ratelimit.new { limit = 1, window = 1, on_full = "panic" } end)
    assert.truthy(e:find("on_full must be reject, drop_oldest, drop_lowest or block", 1, true), e)
    e = err_of(function() ratelimit.new {} end)
    assert.truthy(e:find("give limit and window, rate, rules or concurrency", 1, true), e)
  end)

  it("charges weights and refuses a weight above the limit", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 10, window = 60, clock = vc }
    assert.is_table(lim:acquire(6))
    local out = {}
    waiter(vc, lim, out, "six", { weight = 6 })
    vc:advance(59)
    assert.equal(0, #out)
    vc:advance(1)
    assert.equal("six", out[1].tag)
    local p, why = lim:acquire(11)
    assert.is_nil(p)
    assert.equal("too_heavy", why)
    assert.has_error(function() lim:acquire(0) end, "resi.ratelimit: weight must be a positive number")
    assert.has_error(function() lim:acquire(1, { priority = "high" }) end,
      "resi.ratelimit: priority must be a number (0 is the most important)")
    assert.has_error(function() lim:acquire { timeout = "5s" } end, "resi.ratelimit: timeout must be a number of seconds")
  end)

  it("GCRA token bucket: a burst, then one call per interval", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 10, window = 10, burst = 2, algorithm = "gcra", clock = vc }
    local out = {}
    for i = 1, 5 do waiter(vc, lim, out, i) end
    vc:advance(0)
    assert.same({ 1, 2 }, tags(out))
    vc:advance(3)
    assert.equal(5, #out)
    assert.equal(1, out[3].t); assert.equal(2, out[4].t); assert.equal(3, out[5].t)
    -- rate= and burst= give the same bucket
    local b = ratelimit.new { rate = 5, burst = 1, clock = vc }
    assert.is_table(b:try())
    local p, delay = b:try()
    assert.is_nil(p)
    assert.near(0.2, delay, 1e-9)
  end)

  it("try() takes a free slot, never waits, and never jumps the line", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 1, window = 5, clock = vc }
    assert.is_table(lim:try())
    local p, delay = lim:try()
    assert.is_nil(p); assert.equal(5, delay)
    local out = {}
    waiter(vc, lim, out, "queued")
    vc:advance(5)
    assert.equal(1, #out)
    waiter(vc, lim, out, "queued2")
    vc:advance(0)
    vc.t = vc.t + 5 -- time passes without the pump running yet
    p = lim:try()
    assert.is_nil(p) -- someone is waiting: no barging
  end)

  it("limits concurrency and hands the slot to the next waiter on release", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { concurrency = 2, clock = vc }
    local a, b = assert(lim:acquire()), assert(lim:acquire())
    local out = {}
    waiter(vc, lim, out, "third")
    vc:advance(100)
    assert.equal(0, #out)
    assert.equal(2, lim:stats().in_flight)
    b:release()
    b:release() -- twice is harmless
    vc:advance(0)
    assert.equal(1, #out)
    a:release()
    assert.equal(0, lim:stats().in_flight)
    do
      local p <close> = assert(lim:acquire())
      assert.equal(1, lim:stats().in_flight)
    end
    assert.equal(0, lim:stats().in_flight)
    -- a block that fails still releases, and does not refund: the call may have gone out
    local rated = ratelimit.new { limit = 5, window = 10, concurrency = 1, clock = vc }
    pcall(function()
      local p <close> = assert(rated:acquire())
      error("the call failed after sending")
    end)
    assert.equal(0, rated:stats().in_flight)
    assert.equal(1, rated:stats().rules[1].used)
  end)
end)

describe("ratelimit waiting", function()
  it("suspends the task, not the loop", function()
    local lim = ratelimit.new { limit = 1, window = 0.2 }
    assert(lim:acquire())
    local ticks = 0
    local ticker = resi.spawn(function() for _ = 1, 3 do resi.sleep(0.01); ticks = ticks + 1 end end)
    local t0 = resi.monotonic()
    assert(lim:acquire())
    assert.is_true(resi.monotonic() - t0 >= 0.19)
    assert.is_true(ticks >= 1) -- the loop went on while we waited (3 unless the machine stalls)
    ticker:wait()
    assert.equal(3, ticks)
  end)

  it("is FIFO within a priority and serves more important priorities first", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 1, window = 1, clock = vc, aging = false }
    assert(lim:acquire())
    local out = {}
    waiter(vc, lim, out, "low1", { priority = 9 })
    waiter(vc, lim, out, "mid1", { priority = 5 })
    waiter(vc, lim, out, "low2", { priority = 9 })
    waiter(vc, lim, out, "high", { priority = 0 })
    waiter(vc, lim, out, "mid2", { priority = 5 })
    vc:advance(0)
    assert.same({ [0] = 1, [5] = 2, [9] = 2 }, lim:stats().queued_by_priority)
    vc:advance(5)
    assert.same({ "high", "mid1", "mid2", "low1", "low2" }, tags(out))
  end)

  it("ages priorities so a low priority is not starved by a stream of high ones", function()
    local function run(aging)
      local vc = ratelimit.virtual_clock()
      local lim = ratelimit.new { limit = 1, window = 1, clock = vc, aging = aging }
      assert(lim:acquire())
      local out = {}
      waiter(vc, lim, out, "low", { priority = 9 })
      vc:advance(0)
      for i = 1, 30 do -- a new important waiter every second
        waiter(vc, lim, out, "high" .. i, { priority = 0 })
        vc:advance(1)
      end
      for i, o in ipairs(out) do if o.tag == "low" then return i end end
      return nil
    end
    assert.is_nil(run(false)) -- strict priority: starved for all 30 s
    local pos = run(2) -- one level per 2 s waited: 9 levels in 18 s
    assert.is_number(pos)
    assert.is_true(pos <= 20, "low went at position " .. tostring(pos))
  end)

  it("gives a cancelled waiter's place back to the next one", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 1, window = 10, clock = vc }
    assert(lim:acquire())
    local out = {}
    local first = waiter(vc, lim, out, "first")
    waiter(vc, lim, out, "second")
    vc:advance(1)
    assert.is_true(first:cancel())
    local ok, err = pcall(first.wait, first)
    assert.is_false(ok)
    assert.is_true(resi.is_cancelled(err))
    assert.equal(1, lim:stats().queued)
    vc:advance(9)
    assert.same({ "second" }, tags(out))
    assert.equal(1, lim:stats().cancelled)
  end)

  it("refunds a permit granted to a task cancelled before it ran", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 2, window = 10, concurrency = 1, clock = vc }
    local p = assert(lim:acquire())
    local out = {}
    local t = waiter(vc, lim, out, "granted-then-cancelled")
    vc:advance(0)
    assert.equal(1, lim:stats().queued)
    p:release() -- grants the waiter (wakes it) ...
    assert.equal(2, lim:stats().rules[1].used)
    t:cancel() -- ... but it is cancelled before it resumes
    vc:advance(0)
    assert.equal(0, #out)
    local s = lim:stats()
    assert.equal(0, s.in_flight)
    assert.equal(1, s.rules[1].used) -- its unit came back
    assert.equal(1, s.cancelled)
    assert.is_table(lim:try())
  end)

  it("stops its timer when the last waiter leaves, so nothing keeps the loop alive", function()
    local lim = ratelimit.new { limit = 1, window = 3600 }
    assert(lim:acquire())
    local t = resi.spawn(function() return lim:acquire() end)
    resi.sleep(0)
    assert.is_table(lim.pump)
    local pump = lim.pump
    t:cancel()
    assert.is_nil(lim.pump)
    resi.sleep(0)
    assert.equal("cancelled", pump:status())
  end)

  it("times out a waiter and gives its place back", function()
    local vc, lim, out = busy()
    waiter(vc, lim, out, "impatient", { timeout = 3 })
    waiter(vc, lim, out, "patient")
    vc:advance(3)
    assert.equal(1, #out)
    assert.equal("impatient", out[1].tag)
    assert.is_nil(out[1].permit)
    assert.equal("timeout", out[1].why)
    assert.equal(3, out[1].t)
    vc:advance(7)
    assert.equal("patient", out[2].tag)
    assert.equal(10, out[2].t)
    assert.equal(1, lim:stats().timeouts)
    local p, why = lim:acquire(1, { timeout = 0 })
    assert.is_nil(p); assert.equal("timeout", why)
  end)

  it("rejects at the high-water mark by default", function()
    local _, lim, out = three_waiting { max_queue = 2 }
    assert.equal(1, #out)
    assert.equal(3, out[1].tag)
    assert.equal("queue_full", out[1].why)
    assert.equal(2, lim:stats().queued)
    assert.equal(1, lim:stats().rejected)
  end)

  it("drops the oldest waiter, or the least important, when asked to", function()
    local vc, lim, out = three_waiting { max_queue = 2, on_full = "drop_oldest" }
    assert.same({ 1 }, tags(out))
    assert.equal("dropped", out[1].why)
    vc:advance(20)
    assert.same({ 1, 2, 3 }, tags(out))

    vc, lim, out = busy { max_queue = 2, on_full = "drop_lowest", aging = false }
    waiter(vc, lim, out, "low", { priority = 9 })
    waiter(vc, lim, out, "mid", { priority = 5 })
    waiter(vc, lim, out, "high", { priority = 0 }) -- sheds "low"
    waiter(vc, lim, out, "low2", { priority = 9 }) -- least important itself: refused
    vc:advance(0)
    local why = {}
    for _, o in ipairs(out) do why[o.tag] = o.why end
    assert.same({ low = "dropped", low2 = "queue_full" }, why)
    vc:advance(20)
    assert.same({ "high", "mid" }, { out[3].tag, out[4].tag })
    assert.equal(1, lim:stats().dropped)
  end)

  it("blocks producers at the high-water mark until the line shrinks", function()
    local vc, lim, out = three_waiting { max_queue = 1, on_full = "block" }
    local s = lim:stats()
    assert.equal(1, s.queued)
    assert.equal(2, s.blocked)
    vc:advance(30)
    assert.same({ 1, 2, 3 }, tags(out))
    assert.equal(10, out[1].t); assert.equal(20, out[2].t); assert.equal(30, out[3].t)
    -- a producer let in but cancelled before it ran passes its turn on
    local full = ratelimit.new { concurrency = 1, clock = vc, max_queue = 1, on_full = "block" }
    local held = assert(full:acquire())
    out = {}
    waiter(vc, full, out, "queued", { hold = true })
    local second = waiter(vc, full, out, "blocked1")
    waiter(vc, full, out, "blocked2")
    vc:advance(0)
    assert.equal(2, full:stats().blocked)
    held:release() -- "queued" is granted, which lets "blocked1" in ...
    second:cancel() -- ... but it is cancelled before it runs
    vc:advance(0)
    assert.equal(1, full:stats().queued) -- "blocked2" got the turn
    assert.equal(0, full:stats().blocked)
  end)
end)

describe("ratelimit hierarchies and groups", function()
  it("takes a call's weight from the key and the global limit all or nothing", function()
    local vc = ratelimit.virtual_clock()
    local global = ratelimit.new { name = "global", limit = 3, window = 10, clock = vc }
    local a = ratelimit.new { name = "a", limit = 2, window = 10, clock = vc, parent = global }
    local b = ratelimit.new { name = "b", limit = 2, window = 10, clock = vc, parent = global }
    local out = {}
    waiter(vc, a, out, "a1"); waiter(vc, a, out, "a2")
    waiter(vc, b, out, "b1"); waiter(vc, b, out, "b2")
    vc:advance(0)
    assert.same({ "a1", "a2", "b1" }, tags(out))
    -- b2 waits for the global limit and has taken nothing from b meanwhile
    assert.equal(1, b:stats().rules[1].used)
    assert.equal(3, global:stats().rules[1].used)
    vc:advance(10)
    assert.equal("b2", out[4].tag)
    assert.equal(10, out[4].t)
  end)

  it("waits on a parent's concurrency and is woken when it frees", function()
    local vc = ratelimit.virtual_clock()
    local global = ratelimit.new { name = "global", concurrency = 1, clock = vc }
    local a = ratelimit.new { name = "a", limit = 10, window = 1, clock = vc, parent = global }
    local held = assert(global:acquire())
    local out = {}
    waiter(vc, a, out, "a")
    vc:advance(5)
    assert.equal(0, #out)
    assert.equal(0, a:stats().rules[1].used)
    held:release()
    vc:advance(0)
    assert.same({ "a" }, tags(out))
  end)

  it("lets keys waiting on a parent's concurrency take turns, so a busy key cannot starve the others", function()
    local vc = ratelimit.virtual_clock()
    local global = ratelimit.new { name = "global", concurrency = 1, clock = vc }
    local keys = {}
    for i, name in ipairs { "a", "b", "c" } do
      keys[i] = ratelimit.new { name = name, concurrency = 10, clock = vc, parent = global }
    end
    local held = assert(global:acquire())
    local out = {}
    for i, name in ipairs { "a", "b", "c" } do -- a's four calls queue before b's and c's
      for j = 1, 4 do waiter(vc, keys[i], out, name .. j, { hold = true }) end
    end
    vc:advance(0)
    assert.equal(0, #out)
    held:release()
    for _ = 1, 12 do -- each granted call runs one at a time (global concurrency 1)
      vc:advance(0)
      out[#out].permit:release()
    end
    vc:advance(0)
    assert.same({ "a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3", "a4", "b4", "c4" }, tags(out))
  end)

  it("lets keys waiting on a parent's window take turns too", function()
    local vc = ratelimit.virtual_clock()
    local global = ratelimit.new { name = "global", limit = 1, window = 1, clock = vc }
    local keys = {}
    for i, name in ipairs { "a", "b", "c" } do
      keys[i] = ratelimit.new { name = name, limit = 100, window = 1, clock = vc, parent = global }
    end
    local out = {}
    for i, name in ipairs { "a", "b", "c" } do
      for j = 1, 3 do waiter(vc, keys[i], out, name .. j) end
    end
    for _ = 1, 9 do vc:advance(1) end
    assert.same({ "a1", "a2", "b1", "c1", "a3", "b2", "c2", "b3", "c3" }, tags(out))
    for i = 2, 9 do assert.equal(i - 1, out[i].t, out[i].tag) end -- one a second, none lost
  end)

  it("keeps no timer for a key whose wait on a parent's window was given up", function()
    local vc = ratelimit.virtual_clock()
    local global = ratelimit.new { name = "global", limit = 1, window = 30, clock = vc }
    local key = ratelimit.new { name = "k", limit = 100, window = 1, clock = vc, parent = global }
    assert(key:acquire()):release()
    local t = waiter(vc, key, {}, "late")
    vc:advance(1)
    assert.is_table(global.child_pump) -- the parent will wake the key at 30 s
    t:cancel()
    vc:advance(0)
    assert.is_nil(global.child_pump) -- nobody waits: nothing keeps the process alive
    assert.equal(0, #global.children)
    -- the same as a script: it ends at once, not when the parent's window ends
    local t0 = resi.monotonic()
    local r = require("spec.support.proc").resi { "-e", [[
      local rl = require "resi.ratelimit"
      local key = rl.new { limit = 100, window = 1, parent = rl.new { limit = 1, window = 30 } }
      assert(key:acquire()):release()
      print(resi.timeout(0.1, function() return key:acquire() end))]] }
    assert.equal(0, r.status, r.stderr)
    assert.equal("nil\ttimeout\ttimeout\n", r.stdout)
    assert.truthy(resi.monotonic() - t0 < 10, "the process waited for the parent's 30 s window")
  end)

  it("creates keyed limiters on demand and keeps memory flat over 100,000 keys", function()
    local vc = ratelimit.virtual_clock()
    local g = ratelimit.group { limit = 2, window = 1, idle = 5, clock = vc }
    local a1 = g:get("alpha")
    assert.equal(a1, g:get("alpha"))
    assert.are_not.equal(a1, g:get("beta"))
    local mem = {}
    for batch = 1, 10 do
      for i = 1, 10000 do
        assert.is_table(g:get(batch * 100000 + i):try())
      end
      vc.t = vc.t + 10 -- every key of this batch is now idle
      collectgarbage("collect")
      mem[batch] = collectgarbage("count")
    end
    assert.is_true(g:size() <= 10000 + 8, "keys alive: " .. g:size())
    assert.is_true(g:stats().evicted >= 90000 - 8)
    assert.is_true(mem[10] < mem[2] * 1.25, ("memory grew from %.0f KiB to %.0f KiB"):format(mem[2], mem[10]))
  end)

  it("does not forget a key that is busy or has calls in its window", function()
    local vc = ratelimit.virtual_clock()
    local g = ratelimit.group { limit = 1, window = 100, idle = 5, clock = vc, concurrency = 1 }
    local busy = g:get("busy")
    local p = assert(busy:acquire())
    vc.t = 50
    g:evict()
    assert.equal(busy, g:get("busy")) -- in flight and in its window
    p:release()
    vc.t = 200
    assert.equal(1, g:evict())
    assert.equal(0, g:size())
  end)
end)

describe("ratelimit learning from responses", function()
  local function res(status, h) return { status = status, headers = h or {} } end

  it("pauses the whole key on a 429 with Retry-After, shared by every task", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 100, window = 1, clock = vc }
    local info = lim:observe(res(429, { ["retry-after"] = "5" }))
    assert.equal(5, info.retry_after)
    local out = {}
    for i = 1, 3 do waiter(vc, lim, out, i) end
    vc:advance(4.9)
    assert.equal(0, #out)
    vc:advance(0.1)
    assert.same({ 1, 2, 3 }, tags(out))
    checks.fields({ seen_429 = 1, pauses = 1, learned = { retry_after = 5 } }, lim:stats())
  end)

  it("reads the HTTP-date form and ignores negative or garbage Retry-After", function()
    local vc = ratelimit.virtual_clock(0, 1700000000)
    local lim = ratelimit.new { limit = 100, window = 1, clock = vc }
    lim:observe(res(503, { ["retry-after"] = "Tue, 14 Nov 2023 22:13:27 GMT" }))
    assert.equal(7, lim:stats().paused_for)
    assert.equal(1, lim:stats().seen_503)
    local fresh = ratelimit.new { limit = 100, window = 1, clock = vc, default_pause = 2 }
    fresh:observe(res(429, { ["retry-after"] = "-3" }))
    assert.equal(2, fresh:stats().paused_for) -- the default pause, not a negative one
    fresh = ratelimit.new { limit = 100, window = 1, clock = vc }
    fresh:observe(res(200, { ["retry-after"] = "garbage" }))
    assert.equal(0, fresh:stats().paused_for)
    fresh:observe(res(503)) -- a 503 without Retry-After is the retry layer's business
    assert.equal(0, fresh:stats().paused_for)
  end)

  it("grows the pause on repeated bare 429s", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 100, window = 1, clock = vc, default_pause = 1 }
    lim:observe(res(429)); assert.equal(1, lim:stats().paused_for)
    lim:observe(res(429)); assert.equal(2, lim:stats().paused_for)
    lim:observe(res(429)); assert.equal(4, lim:stats().paused_for)
    lim:observe(res(200)); vc.t = 10
    lim:observe(res(429)); assert.equal(1, lim:stats().paused_for)
  end)

  it("caps a long Retry-After visibly, or hands calls back with a not-before time", function()
    local vc = ratelimit.virtual_clock(0, 1700000000)
    local lim = ratelimit.new { limit = 100, window = 1, clock = vc, retry_after_max = 60 }
    local text = capture_log(function() lim:observe(res(429, { ["retry-after"] = "3600" })) end)
    assert.equal(60, lim:stats().paused_for)
    assert.equal(1, lim:stats().capped)
    assert.truthy(text:find("above retry_after_max", 1, true))
    assert.truthy(text:find('"asked":3600', 1, true))

    local back = ratelimit.new { limit = 1, window = 1, clock = vc, retry_after_max = 60, on_long_wait = "return" }
    assert(back:acquire())
    local out = {}
    waiter(vc, back, out, "queued-before") -- waits for the window
    vc:advance(0.5)
    assert.equal(0, #out)
    capture_log(function() back:observe(res(429, { ["retry-after"] = "3600" })) end)
    vc:advance(0)
    -- the waiter is handed back at once with the time to come back, not parked for an hour
    assert.equal(1, #out)
    assert.is_nil(out[1].permit)
    assert.equal("not_before", out[1].why)
    assert.equal(1700000000 + 0.5 + 3600, out[1].info)
    local p, why, nb = back:acquire()
    assert.is_nil(p)
    assert.equal("not_before", why)
    assert.equal(1700000000 + 0.5 + 3600, nb)
    assert.equal(2, back:stats().handed_back)
    vc.t = 3600.5
    assert.is_table(back:acquire())
  end)

  it("lets Retry-After win over RateLimit-Reset", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 20, window = 60, clock = vc }
    lim:observe(res(429, { ["retry-after"] = "3", ["ratelimit-limit"] = "20", ["ratelimit-remaining"] = "0",
      ["ratelimit-reset"] = "40" }))
    assert.equal(3, lim:stats().paused_for)
    assert.equal(0, lim:stats().rules[1].used) -- no phantom use added either
  end)

  it("pauses until the reset on a 429 with RateLimit-Remaining 0 and no Retry-After", function()
    local vc = ratelimit.virtual_clock(0, 1700000000)
    local lim = ratelimit.new { limit = 20, window = 60, clock = vc, reset_unit = "epoch" }
    lim:observe(res(429, { ["ratelimit-limit"] = "20", ["ratelimit-remaining"] = "0",
      ["ratelimit-reset"] = tostring(1700000000 + 17) }))
    assert.equal(17, lim:stats().paused_for)
  end)

  it("counts use the server reports beyond its own as someone else's", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 10, window = 60, clock = vc }
    local p = assert(lim:acquire())
    p:release()
    lim:observe(res(200, { ["ratelimit-limit"] = "10", ["ratelimit-remaining"] = "2", ["ratelimit-reset"] = "60" }))
    assert.equal(8, lim:stats().rules[1].used)
    assert(lim:try()); assert(lim:try())
    assert.is_nil(lim:try())
    -- someone else's use leaves when the server said more quota comes
    local other = ratelimit.new { limit = 10, window = 60, clock = vc }
    other:observe(res(200, { ["ratelimit-limit"] = "10", ["ratelimit-remaining"] = "0", ["ratelimit-reset"] = "5" }))
    local p2, delay = other:try()
    assert.is_nil(p2); assert.equal(5, delay)
    -- a server that reports more room than we think changes nothing
    lim:observe(res(200, { ["ratelimit-limit"] = "10", ["ratelimit-remaining"] = "9" }))
    assert.equal(10, lim:stats().rules[1].used)
  end)

  it("adopts the limit the server reports and learns new windows from RateLimit-Policy", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 100, window = 60, clock = vc }
    lim:observe(res(200, { ["ratelimit-limit"] = "30", ["ratelimit-remaining"] = "29" }))
    assert.equal(30, lim:stats().rules[1].limit)
    assert.equal(30, lim:stats().learned.limit)
    lim:observe(res(200, { ["ratelimit-policy"] = '"default";q=30;w=60, "burst";q=5;w=1',
      ["ratelimit"] = '"burst";r=4;t=1' }))
    local rules = lim:stats().rules
    assert.equal(2, #rules)
    assert.equal(5, rules[2].limit); assert.equal(1, rules[2].window)
    assert.equal("burst", rules[2].learned_from)
    -- a RateLimit-Limit without a window may be another window's: it only lowers ours ...
    lim:observe(res(200, { ["ratelimit-limit"] = "5000" }))
    assert.equal(30, lim:stats().rules[1].limit)
    -- ... unless learn = "any"
    local any = ratelimit.new { limit = 100, window = 60, clock = vc, learn = "any" }
    any:observe(res(200, { ["ratelimit-limit"] = "500" }))
    assert.equal(500, any:stats().rules[1].limit)
    -- learn = false: only pauses
    local fixed = ratelimit.new { limit = 100, window = 60, clock = vc, learn = false }
    fixed:observe(res(200, { ["ratelimit-limit"] = "30" }))
    assert.equal(100, fixed:stats().rules[1].limit)
  end)

  it("adaptive limiters halve once per 429 episode, step back per success, probe after quiet windows", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 8, window = 10, clock = vc, adaptive = true, max_limit = 9 }
    local function limit() return lim:stats().rules[1].limit end
    assert(lim:acquire())
    lim:observe(res(429))
    assert.equal(4, limit())
    lim:observe(res(429, { ["retry-after"] = "1" })) -- the same episode: paused again, not halved again
    assert.equal(4, limit())
    assert.equal(1, lim:stats().paused_for)
    lim:observe(res(200)) -- a success: one step (8 / 20 -> 1) back
    assert.equal(5, limit())
    vc.t = 9
    lim:observe(res(429)) -- still the episode (one window from the halving)
    assert.equal(5, limit())
    vc.t = 11
    lim:observe(res(429)) -- a new episode: halved, but never below a quarter of 8
    assert.equal(2, limit())
    assert.same({ base = 8, floor = 2, step = 1, episode = 10 }, lim:stats().adaptive)
    vc.t = 12
    for _ = 1, 10 do lim:observe(res(200)) end -- back to the base, not beyond
    assert.equal(8, limit())
    local s = lim:stats()
    assert.equal(2, s.episodes); assert.equal(2, s.lowered); assert.equal(7, s.raised)
    vc.t = 23 -- a quiet window since the last 429 and the last raise: probe one above the base
    assert(lim:acquire())
    assert.equal(9, limit())
    vc.t = 40
    assert(lim:acquire())
    assert.equal(9, limit()) -- max_limit
    lim:set_limit(6) -- the caller's limit is the new base
    assert.equal(6, lim:stats().adaptive.base)
  end)
end)

describe("ratelimit observability", function()
  it("reports per-key stats from Lua and logs them at debug level", function()
    local vc = ratelimit.virtual_clock()
    local g = ratelimit.group { name = "acct", limit = 2, window = 10, clock = vc }
    local lim = g:get("k1")
    assert(lim:acquire()); assert(lim:acquire())
    lim:observe { status = 429, headers = { ["retry-after"] = "4", ["ratelimit-limit"] = "2" } }
    local s = lim:stats()
    assert.equal("acct:k1", s.name)
    assert.equal(2, s.in_flight)
    assert.equal(1, s.seen_429)
    assert.equal(2, s.learned.limit)
    assert.equal(4, s.paused_for)
    assert.same({ kind = "sliding", limit = 2, window = 10, used = 2 }, s.rules[1])
    local text = capture_log(function() lim:log_stats() end)
    assert.truthy(text:find('"msg":"ratelimit: stats"', 1, true))
    assert.truthy(text:find('"seen_429":1', 1, true))
    assert.truthy(text:find('"name":"acct:k1"', 1, true))
    assert.equal(ratelimit, resi.ratelimit) -- also reachable from resi, loaded on first use
    assert.same({ keys = 1, evicted = 0 }, g:stats())
  end)
end)

describe("ratelimit retries", function()
  local function res(status, h) return { status = status, headers = h or {} } end

  it("computes full-jitter backoff under the cap", function()
    assert.equal(0, ratelimit.backoff(1, 0.5, 30, function() return 0 end))
    assert.equal(0.5 * 0.5, ratelimit.backoff(1, 0.5, 30, function() return 0.5 end))
    assert.equal(8 * 0.5, ratelimit.backoff(4, 1, 30, function() return 0.5 end))
    assert.equal(30 * 0.99, ratelimit.backoff(20, 1, 30, function() return 0.99 end))
  end)

  it("classifies by idempotency: POST is retried only when the server did not process it", function()
    local C = ratelimit.retry.classify
    assert.equal("throttled", C("POST", {}, res(429)))
    assert.equal("throttled", C("POST", {}, res(503, { ["retry-after"] = "1" })))
    assert.is_nil(C("POST", {}, res(503)))
    assert.is_nil(C("POST", {}, res(503, { ["retry-after"] = "soon" }))) -- garbage says nothing
    assert.is_nil(C("POST", {}, res(500)))
    assert.is_nil(C("POST", {}, nil, "timeout"))
    assert.equal("retry", C("POST", {}, nil, "connect"))
    assert.equal("retry", C("POST", { ["Idempotency-Key"] = "k1" }, res(500)))
    assert.equal("retry", C("POST", { "Idempotency-Key: k1" }, nil, "reset"))
    assert.equal("retry", C("GET", {}, res(502)))
    assert.equal("retry", C("DELETE", {}, nil, "timeout"))
    assert.is_nil(C("GET", {}, res(404)))
    assert.is_nil(C("GET", {}, res(200)))
  end)

  it("sends every retry through the limiter and waits the server's pause", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 10, window = 60, clock = vc }
    local answers = { res(429, { ["retry-after"] = "7" }), res(429, { ["retry-after"] = "7" }), res(201) }
    local times = {}
    local t = resi.spawn(function()
      return lim:call(function(attempt)
        times[attempt] = vc.t
        return answers[attempt]
      end, { method = "POST" })
    end)
    vc:advance(20)
    local r = t:wait()
    assert.equal(201, r.status)
    assert.same({ 0, 7, 14 }, times)
    local s = lim:stats()
    assert.equal(3, s.granted)
    assert.equal(2, s.retries)
    assert.equal(2, s.seen_429)
    assert.equal(3, s.rules[1].used)
  end)

  it("does not retry a POST that failed on the server without an Idempotency-Key", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 10, window = 60, clock = vc }
    local n = 0
    local r = lim:call(function() n = n + 1; return res(500) end, { method = "POST" })
    assert.equal(500, r.status); assert.equal(1, n)
    n = 0
    local t = resi.spawn(function()
      return lim:call(function() n = n + 1; return n < 3 and res(500) or res(201) end,
        { method = "POST", headers = { ["Idempotency-Key"] = "abc" }, rand = function() return 1 end, base = 1 })
    end)
    vc:advance(0.5)
    assert.equal(1, n)
    vc:advance(0.5) -- first backoff: 1 s
    assert.equal(2, n)
    vc:advance(2) -- second: 2 s
    assert.equal(201, t:wait().status)
    assert.equal(3, n)
  end)

  it("stops retrying when the retry budget is spent", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 100, window = 1, clock = vc,
      retry_budget = ratelimit.budget { capacity = 2, refill = 0.5 } }
    local n = 0
    local t = resi.spawn(function()
      return lim:call(function() n = n + 1; return res(503) end, { attempts = 10, rand = function() return 0 end })
    end)
    local text = capture_log(function() vc:advance(1) end)
    assert.truthy(text:find("retry budget exhausted", 1, true))
    assert.equal(503, t:wait().status)
    assert.equal(3, n) -- the first try and the two retries the budget had
    assert.equal(1, lim:stats().retries_denied)
    assert.equal(0, lim:stats().retry_budget)
    lim:call(function() return res(200) end)
    assert.equal(0.5, lim:stats().retry_budget)
  end)

  it("gives up after the last attempt and returns the last answer", function()
    local vc = ratelimit.virtual_clock()
    local lim = ratelimit.new { limit = 100, window = 1, clock = vc }
    local n = 0
    local t = resi.spawn(function()
      return lim:call(function() n = n + 1; return nil, "connection refused", "connect" end,
        { attempts = 3, rand = function() return 0 end })
    end)
    vc:advance(1)
    local r, msg, code = t:wait()
    assert.is_nil(r); assert.equal("connection refused", msg); assert.equal("connect", code)
    assert.equal(3, n)
  end)
end)
