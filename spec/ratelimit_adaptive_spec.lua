-- resi.ratelimit's adaptive limits (resi.ratelimit.adaptive), the profile
-- UnknownProxies and Oxylabs use: 120 calls a minute, 4 at a time. A 429
-- episode (one window) halves the limit once, whatever the number of 429s
-- and however many calls they came on; a call's retries never halve it;
-- successes step it back to 120, and it never goes below 30. First on a virtual clock with scripted answers through
-- lim:call (exact), then through the real provider clients against resi sim
-- and its rate_limit fault. Assertions are on the limiter's stats; where
-- time matters it is virtual time, or a generous resi.timeout that a
-- regression (minutes of waiting) cannot meet.
local ratelimit = require "resi.ratelimit"
local limits = require "resi.providers.limits"

local GB = 1000000000

-- A fresh limiter of an undocumented-limit provider on a virtual clock.
local function profile_on(vc)
  return limits.limiter("unknownproxies", nil, { clock = vc })
end

-- The limit of a limiter's primary rule.
local function limit_of(lim) return lim:stats().rules[1].limit end

-- Runs one call through lim:call in a task: attempt n waits script[n].latency
-- virtual seconds (in flight), then answers script[n].status (429s say
-- Retry-After: 1). `seen`, when given, collects the limit at each attempt.
local function scripted(vc, lim, script, seen)
  return resi.spawn(function()
    return lim:call(function(attempt)
      if seen then seen[#seen + 1] = limit_of(lim) end
      local step = script[attempt]
      vc.sleep(step.latency or 0.1)
      local h = step.status == 429 and { ["retry-after"] = "1" } or {}
      return { status = step.status, headers = h }
    end, { method = "GET" })
  end)
end

-- A 429 answer without limit headers, then n OKs.
local function burst(n429)
  local s = {}
  for i = 1, n429 do s[i] = { status = 429 } end
  s[#s + 1] = { status = 200 }
  return s
end

describe("adaptive rate limits (virtual clock)", function()

  it("halves once for one call's burst of 429s, then steps back up on success", function()
    local vc = ratelimit.virtual_clock()
    local lim = profile_on(vc)
    local seen = {}
    local t = scripted(vc, lim, burst(3), seen)
    vc:advance(10)
    assert.equal(200, t:wait().status)
    assert.same({ 120, 60, 60, 60 }, seen) -- every retry went out at 60, not 30, 15, 7
    local s = lim:stats()
    assert.equal(3, s.seen_429); assert.equal(3, s.retries)
    assert.equal(1, s.episodes); assert.equal(1, s.lowered); assert.equal(1, s.raised)
    assert.equal(66, s.rules[1].limit) -- the success added 120 / 20 back
    assert.equal(120, s.adaptive.base); assert.equal(30, s.adaptive.floor); assert.equal(6, s.adaptive.step)
    assert.is_true(s.adaptive.episode > 50) -- one window from the halving
    for _ = 1, 20 do scripted(vc, lim, { { status = 200 } }) end
    vc:advance(5)
    s = lim:stats()
    assert.equal(120, s.rules[1].limit) -- back at the base and not beyond
    assert.equal(10, s.raised)
    assert.equal(1, s.lowered)
  end)

  it("halves once for a burst that hits several calls, those in flight too", function()
    local vc = ratelimit.virtual_clock()
    local lim = profile_on(vc)
    -- all four go out at t = 0, under the limit of 120
    local a = scripted(vc, lim, { { status = 429 }, { status = 429 }, { status = 200 } }) -- 429 at 0.1, 1.2; ok at 2.3
    local b = scripted(vc, lim, { { status = 200, latency = 0.5 } })   -- ok at 0.5: one step back
    local c = scripted(vc, lim, { { status = 429, latency = 1.5 }, { status = 200 } })
    local d = scripted(vc, lim, { { status = 429, latency = 3 }, { status = 200 } }) -- after a's success
    vc:advance(1)
    assert.equal(66, limit_of(lim))
    assert.is_true(lim:stats().adaptive.episode > 0)
    vc:advance(10)
    for _, t in ipairs({ a, b, c, d }) do assert.equal(200, t:wait().status) end
    local s = lim:stats()
    assert.equal(4, s.seen_429)
    assert.equal(1, s.episodes); assert.equal(1, s.lowered)
    assert.equal(4, s.raised) -- every success stepped back up, in the episode too
    assert.equal(60 + 4 * 6, s.rules[1].limit)
  end)

  it("never goes below a quarter of the base, whatever the episodes", function()
    local vc = ratelimit.virtual_clock()
    local lim = profile_on(vc)
    local seen = {}
    for _ = 1, 10 do -- each burst a window after the last: a new episode each time
      local t = scripted(vc, lim, burst(1), seen)
      vc:advance(61)
      assert.equal(200, t:wait().status)
    end
    local lowest = math.huge
    for _, l in ipairs(seen) do lowest = math.min(lowest, l) end
    assert.equal(30, lowest)
    assert.same({ 120, 60, 66, 33, 39, 30, 36, 30 }, { table.unpack(seen, 1, 8) })
    local s = lim:stats()
    assert.equal(10, s.episodes); assert.equal(10, s.lowered)
    assert.equal(36, s.rules[1].limit)
    -- a throttle storm with no success: 429s within a window of each other
    -- are one episode; a 429 after the episode (a window, or the pause if
    -- longer: bare 429s pause 1, 2, 4 ... 120 s) halves once more, down to the floor
    local storm = profile_on(vc)
    for i = 0, 3 do vc.t = 1000 + i * 19; storm:observe { status = 429, headers = {} } end
    assert.equal(60, limit_of(storm))
    assert.equal(1, storm:stats().episodes)
    for i = 1, 5 do vc.t = 1100 + i * 121; storm:observe { status = 429, headers = {} } end
    assert.equal(30, limit_of(storm))
    s = storm:stats()
    assert.equal(6, s.episodes); assert.equal(2, s.lowered)
    -- an explicit floor
    local custom = ratelimit.new { limit = 100, window = 60, adaptive = true, adaptive_floor = 0.5, clock = vc }
    for i = 1, 4 do vc.t = 2000 + i * 61; custom:observe { status = 429, headers = {} } end
    assert.equal(50, limit_of(custom))
    assert.has_error(function() ratelimit.new { limit = 1, window = 1, adaptive = true, adaptive_floor = 2 } end,
      "resi.ratelimit.new: adaptive_floor must be a share of the limit from 0 to 1")
  end)

  it("recovers towards a limit the server stated, and halves that one", function()
    local vc = ratelimit.virtual_clock()
    local lim = profile_on(vc)
    lim:observe { status = 200, headers = { ["ratelimit-limit"] = "200" } }
    assert.equal(200, limit_of(lim))
    local t = scripted(vc, lim, burst(2))
    vc:advance(10)
    t:wait()
    local s = lim:stats()
    assert.equal(200, s.adaptive.base); assert.equal(50, s.adaptive.floor); assert.equal(10, s.adaptive.step)
    assert.equal(110, s.rules[1].limit)
    -- a 429 that states the limit adopts it rather than halving
    lim:observe { status = 429, headers = { ["retry-after"] = "1", ["ratelimit-limit"] = "80" } }
    assert.equal(80, limit_of(lim))
    assert.equal(1, lim:stats().lowered)
    assert.equal(80, lim:stats().adaptive.base)
  end)

  it("finishes 30 deletes after a burst of 429s on a create in seconds, not minutes", function()
    local vc = ratelimit.virtual_clock()
    local lim = profile_on(vc)
    local done = 0
    -- n calls of `latency` virtual seconds from 4 tasks
    local function batch(n, latency)
      local tasks = {}
      for i = 1, 4 do
        tasks[i] = resi.spawn(function()
          for _ = i, n, 4 do
            assert(lim:call(function() vc.sleep(latency) return { status = 200, headers = {} } end, { method = "DELETE" }))
            done = done + 1
          end
        end)
      end
      return tasks
    end
    local creates = batch(30, 0.05) -- the creates that came first: 30 calls in the window
    vc:advance(2)
    for _, t in ipairs(creates) do t:wait() end
    done = 0
    local t0 = vc.t
    local created
    local create = resi.spawn(function() created = scripted(vc, lim, burst(3)):wait().status end) -- 3 pauses of 1 s
    local deletes = batch(30, 0.05)
    vc:advance(8) -- three pauses and 34 short calls fit in 8 s; a limit lowered to 15 a minute does not
    local s = lim:stats()
    if done < 30 or not created then -- a regression: do not leave tasks waiting on the virtual clock
      create:cancel()
      for _, t in ipairs(deletes) do t:cancel() end
    end
    assert.equal(30, done)
    assert.equal(200, created)
    assert.equal(3, s.seen_429); assert.equal(1, s.lowered)
    assert.equal(64, s.granted)
    assert.is_true(s.max_wait < 4, "a delete waited " .. s.max_wait .. " s")
    assert.is_true(s.rules[1].limit >= 60)
    -- the last call ended within the three pauses and a little, not after a window
    local last = 0
    for _, e in ipairs(lim.rules[1].entries) do last = math.max(last, e.t) end
    assert.is_true(last - t0 < 5, "the batch ended " .. (last - t0) .. " s after the burst")
  end)
end)

describe("adaptive rate limits against resi sim", function()
  local sim, up

  setup(function() sim = require("spec.support.sim").start { seed = 31 } end)
  teardown(function() sim:stop() end)
  -- clients of one account share its limiters; ratelimit = {} gives this
  -- one its own: a fresh 120/min per test
  before_each(function() up = sim:client("unknownproxies", { ratelimit = {} }) end)
  after_each(function() sim:clear_faults() end)

  it("UnknownProxies: a create answered 429 three times lowers the limit once", function()
    local lim = up:limiter_for("POST", "/resi/token/create")
    sim:fault { provider = "unknownproxies", route = "POST /resi/token/create", kind = "rate_limit",
      count = 3, retry_after = 0 }
    local t = up:create_token { dataLimit = GB }
    assert.is_string(t.token)
    local s = lim:stats()
    assert.equal(3, s.seen_429); assert.equal(3, s.retries)
    assert.equal(1, s.episodes); assert.equal(1, s.lowered)
    assert.equal(66, s.rules[1].limit) -- 120 halved once, plus one success's step
    for _ = 1, 9 do up:list_tokens() end
    s = lim:stats()
    assert.equal(120, s.rules[1].limit)
    assert.equal(10, s.raised)
    up:list_tokens()
    assert.equal(120, limit_of(lim)) -- recovery stops at the base
  end)

  it("UnknownProxies: repeated bursts stop at the floor of a quarter", function()
    local short = sim:client("unknownproxies", { ratelimit = { window = 0.5 } }) -- 120 per half second: an episode lasts half a second
    local lim = short:limiter_for("GET", "/resi/tokens")
    local after = {}
    for i = 1, 5 do
      if i > 1 then resi.sleep(0.6) end -- the next burst is a new episode
      sim:fault { provider = "unknownproxies", route = "GET /resi/tokens", kind = "rate_limit",
        count = 1, retry_after = 0 }
      short:list_tokens()
      after[i] = limit_of(lim)
    end
    assert.same({ 66, 39, 36, 36, 36 }, after) -- 60+6, 33+6, 30+6 (floor), 30+6, 30+6
    local s = lim:stats()
    assert.equal(5, s.lowered)
    assert.equal(30, s.adaptive.floor)
  end)

  it("UnknownProxies: deletes behind a 429 burst on a create wait only for the pauses", function()
    local tokens = {}
    for i = 1, 30 do tokens[i] = up:create_token { dataLimit = GB }.token end
    local lim = up:limiter_for("DELETE", "/resi/token")
    sim:fault { provider = "unknownproxies", route = "POST /resi/token/create", kind = "rate_limit",
      count = 3, retry_after = 1 }
    local done = 0
    -- before the fix this took minutes (the limit fell to 15 a minute with 30 calls in the window)
    local ok = resi.timeout(20, function()
      local create = resi.spawn(function() return up:create_token { dataLimit = GB } end)
      resi.sleep(0.05) -- the first 429 has paused the key
      local workers = {}
      for w = 1, 4 do
        workers[w] = resi.spawn(function()
          for i = w, 30, 4 do
            assert.equal("success", up:delete_token(tokens[i]).message)
            done = done + 1
          end
        end)
      end
      for _, t in ipairs(workers) do t:wait() end
      assert.is_string(create:wait().token)
      return true
    end)
    assert.is_true(ok)
    assert.equal(30, done)
    local s = lim:stats()
    assert.equal(3, s.seen_429); assert.equal(1, s.lowered)
    assert.equal(3, s.pauses) -- the pause still holds the whole key
    assert.is_true(s.waits >= 1)
    assert.is_true(s.max_wait < 4, "a call waited " .. s.max_wait .. " s")
    assert.is_true(s.rules[1].limit >= 60)
  end)

  it("Oxylabs: the same policy on its sub-user calls", function()
    local oxy = sim:client("oxylabs")
    oxy:sub_users() -- logs in
    local lim = oxy:limiter_for("GET", "/users/x/sub-users")
    sim:fault { provider = "oxylabs", route = "GET /users/:id/sub-users", kind = "rate_limit",
      count = 3, retry_after = 0 }
    assert.is_table(oxy:sub_users())
    local s = lim:stats()
    assert.equal(3, s.seen_429); assert.equal(1, s.lowered)
    assert.equal(66, s.rules[1].limit)
    assert.equal(120, s.adaptive.base); assert.equal(30, s.adaptive.floor); assert.equal(6, s.adaptive.step)
  end)
end)
