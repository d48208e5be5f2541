-- resi.ratelimit against a scripted resi.server that sends each header form:
-- Retry-After in seconds and as an HTTP-date, RateLimit-Limit/Remaining/Reset
-- as a delta and as an epoch, the IETF RateLimit / RateLimit-Policy fields,
-- 429 and 503; and an endpoint that enforces a rolling window the way
-- ResiFactory documents it. Real clock: bounds here are generous lower
-- bounds or wide ranges, never tight timings.
local server = require "resi.server"
local http = require "resi.http"
local ratelimit = require "resi.ratelimit"
local log = require "resi.log"
local checks = require "spec.support.checks"

local function http_date(epoch) return os.date("!%a, %d %b %Y %H:%M:%S GMT", math.floor(epoch)) end

describe("ratelimit against a scripted server", function()
  local srv
  local windows = {} -- per key: arrival times of accepted calls
  local counts = {}  -- per key: {ok=, rejected=}
  local seen_keys = {}
  local flaky = 0

  -- A rolling-window limiter as ResiFactory documents it: `limit` per
  -- `window` seconds per key; RateLimit-Limit/-Remaining/-Reset (a Unix
  -- timestamp) on every answer, 429 with Retry-After (seconds) over the limit.
  local function enforce(req, limit, window)
    local key = req.query.key or "default"
    local now = resi.now()
    local w = windows[key] or {}
    windows[key] = w
    while w[1] and w[1] + window <= now do table.remove(w, 1) end
    local c = counts[key] or { ok = 0, rejected = 0 }
    counts[key] = c
    local h = { ["RateLimit-Limit"] = tostring(limit) }
    if #w >= limit then
      c.rejected = c.rejected + 1
      local wait = w[1] + window - now
      h["Retry-After"] = tostring(math.max(1, math.ceil(wait)))
      h["RateLimit-Remaining"] = "0"
      h["RateLimit-Reset"] = tostring(math.ceil(w[1] + window))
      return { status = 429, headers = h, json = { error = { code = "rate_limited", message = "slow down" } } }
    end
    w[#w + 1] = now
    c.ok = c.ok + 1
    h["RateLimit-Remaining"] = tostring(limit - #w)
    h["RateLimit-Reset"] = tostring(math.ceil(w[1] + window))
    return { status = req.method == "POST" and 201 or 200, headers = h, json = { ok = true } }
  end

  setup(function()
    srv = assert(server.serve { handler = function(req)
      local now = resi.now()
      local p = req.path
      if p == "/ra-seconds" then return { status = 429, headers = { ["Retry-After"] = "2" } } end
      if p == "/ra-date" then
        return { status = 429, headers = { ["Retry-After"] = http_date(now + 3), Date = http_date(now) } }
      end
      if p == "/ra-negative" then return { status = 429, headers = { ["Retry-After"] = "-1" } } end
      if p == "/rl-delta" then
        return { headers = { ["RateLimit-Limit"] = "10", ["RateLimit-Remaining"] = "4", ["RateLimit-Reset"] = "20" } }
      end
      if p == "/rl-epoch" then
        return { headers = { ["RateLimit-Limit"] = "10", ["RateLimit-Remaining"] = "0",
          ["RateLimit-Reset"] = tostring(math.floor(now) + 30), Date = http_date(now) } }
      end
      if p == "/ietf" then
        return { headers = { ["RateLimit-Policy"] = '"default";q=10;w=60, "burst";q=3;w=1',
          ["RateLimit"] = '"default";r=7;t=40, "burst";r=0;t=1' } }
      end
      if p == "/503-ra" then return { status = 503, headers = { ["Retry-After"] = "2" } } end
      if p == "/503" then return { status = 503 } end
      if p == "/both" then
        return { status = 429, headers = { ["Retry-After"] = "2", ["RateLimit-Limit"] = "10",
          ["RateLimit-Remaining"] = "0", ["RateLimit-Reset"] = "40" } }
      end
      if p == "/enforce" then
        return enforce(req, tonumber(req.query.limit), tonumber(req.query.window))
      end
      if p == "/flaky" then
        flaky = flaky + 1
        seen_keys[#seen_keys + 1] = req.headers["idempotency-key"] or false
        return { status = flaky == 1 and 500 or 201 }
      end
      return { status = 404 }
    end })
  end)
  teardown(function() srv:close() end)

  -- A fresh limiter, a GET of path, and what observe read.
  local function observe(path, opts)
    local lim = ratelimit.new(opts or { limit = 100, window = 60 })
    local res = assert(http.get(srv.url .. path))
    return lim, lim:observe(res), res
  end

  it("pauses for Retry-After in seconds", function()
    local lim, info = observe("/ra-seconds")
    assert.equal(2, info.retry_after)
    local s = lim:stats()
    assert.equal(1, s.seen_429)
    assert.is_true(s.paused_for > 1 and s.paused_for <= 2, "paused_for " .. s.paused_for)
  end)

  it("pauses for Retry-After as an HTTP-date, measured against the server's Date", function()
    local lim, info = observe("/ra-date")
    assert.equal(3, info.retry_after)
    local s = lim:stats()
    assert.is_true(s.paused_for > 2 and s.paused_for <= 3, "paused_for " .. s.paused_for)
  end)

  it("ignores a negative Retry-After and falls back to the default pause", function()
    local lim, info = observe("/ra-negative", { limit = 100, window = 60, default_pause = 0.5 })
    assert.is_nil(info.retry_after)
    assert.truthy(info.ignored["retry-after"])
    assert.is_true(lim:stats().paused_for <= 0.5)
  end)

  it("reads RateLimit-* with a delta reset and counts the server's extra use", function()
    local lim, info = observe("/rl-delta", { limit = 10, window = 60 })
    assert.equal(10, info.limit); assert.equal(4, info.remaining); assert.equal(20, info.reset)
    assert.equal(6, lim:stats().rules[1].used)
  end)

  it("reads RateLimit-* with an epoch reset and learns the server's limit", function()
    local lim, info = observe("/rl-epoch", { limit = 50, window = 60 })
    assert.equal(10, info.limit)
    assert.is_true(info.reset >= 29 and info.reset <= 30, "reset " .. tostring(info.reset))
    local s = lim:stats()
    assert.equal(10, s.rules[1].limit)
    assert.equal(10, s.rules[1].used) -- remaining 0: the whole window is used
    assert.is_nil(lim:try())
  end)

  it("reads the IETF fields and adds the burst window it did not know", function()
    local lim, info = observe("/ietf", { limit = 10, window = 60 })
    assert.equal("burst", info.policy)
    assert.equal(0, info.remaining)
    assert.equal(1, info.window)
    local rules = lim:stats().rules
    assert.equal(2, #rules)
    assert.equal(3, rules[2].limit)
    assert.equal(3, rules[2].used)
  end)

  it("pauses on a 503 with Retry-After but not on a bare 503", function()
    local lim = observe("/503-ra")
    assert.is_true(lim:stats().paused_for > 1)
    lim = observe("/503")
    assert.equal(0, lim:stats().paused_for)
    assert.equal(1, lim:stats().seen_503)
  end)

  it("lets Retry-After win when RateLimit fields come with it", function()
    local lim = observe("/both", { limit = 10, window = 60 })
    local s = lim:stats()
    assert.is_true(s.paused_for > 1 and s.paused_for <= 2, "paused_for " .. s.paused_for)
  end)

  it("sends a burst at exactly the allowed rate: no 429 from a rolling-window server", function()
    local lim = ratelimit.new { limit = 5, window = 0.5 }
    local url = srv.url .. "/enforce?key=burst&limit=5&window=0.5"
    local t0 = resi.monotonic()
    local tasks = {}
    for i = 1, 15 do
      tasks[i] = resi.spawn(function()
        return ratelimit.request(lim, { method = "POST", url = url }, { idempotency_key = true })
      end)
    end
    for i = 1, 15 do
      local res = tasks[i]:wait()
      assert.equal(201, res.status)
    end
    assert.same({ ok = 15, rejected = 0 }, counts.burst)
    assert.is_true(resi.monotonic() - t0 >= 1.0) -- three windows' worth, never faster
    checks.fields({ seen_429 = 0, granted = 15, learned = { limit = 5 } }, lim:stats())
  end)

  it("starts a call's window at its response, so a slow send cannot cause a 429", function()
    local lim = ratelimit.new { limit = 5, window = 0.5 }
    local url = srv.url .. "/enforce?key=slow&limit=5&window=0.5"
    local tasks = {}
    for i = 1, 10 do
      tasks[i] = resi.spawn(function()
        return lim:call(function()
          if i <= 5 then resi.sleep(0.15) end -- the first burst leaves late
          return http.post(url)
        end, { method = "POST", attempts = 1 })
      end)
    end
    for i = 1, 10 do assert.equal(201, tasks[i]:wait().status) end
    assert.same({ ok = 10, rejected = 0 }, counts.slow)
  end)

  it("recovers from a server stricter than configured: pauses the key, learns, completes", function()
    local lim = ratelimit.new { limit = 50, window = 0.5, retry_budget = ratelimit.budget { capacity = 20 } }
    local url = srv.url .. "/enforce?key=strict&limit=3&window=0.5"
    local tasks = {}
    for i = 1, 8 do
      tasks[i] = resi.spawn(function()
        return ratelimit.request(lim, { method = "POST", url = url }, { idempotency_key = true, attempts = 6 })
      end)
    end
    for i = 1, 8 do assert.equal(201, tasks[i]:wait().status) end
    assert.equal(8, counts.strict.ok)
    local s = lim:stats()
    assert.equal(3, s.rules[1].limit)
    assert.equal(counts.strict.rejected, s.seen_429)
    assert.equal(s.seen_429, s.retries)
  end)

  it("retries a POST after a 500 only with an Idempotency-Key, the same key every time", function()
    local lim = ratelimit.new { limit = 100, window = 1 }
    flaky = 0
    local res = ratelimit.request(lim, { method = "POST", url = srv.url .. "/flaky" })
    assert.equal(500, res.status)
    assert.equal(1, flaky)
    flaky, seen_keys = 0, {}
    res = ratelimit.request(lim, { method = "POST", url = srv.url .. "/flaky" },
      { idempotency_key = true, base = 0.01 })
    assert.equal(201, res.status)
    assert.equal(2, flaky)
    assert.is_string(seen_keys[1])
    assert.equal(seen_keys[1], seen_keys[2])
  end)

  it("returns the limiter's reason when it gives up before sending", function()
    local lim = ratelimit.new { limit = 100, window = 1, retry_after_max = 1, on_long_wait = "return" }
    local old = log.enabled("warn")
    log.configure { level = "error" }
    lim:pause(60, "test")
    log.configure { level = "info" }
    assert.is_true(old)
    local res, msg, code, nb = ratelimit.request(lim, { url = srv.url .. "/ra-seconds" })
    assert.is_nil(res)
    assert.equal("ratelimit: not_before", msg)
    assert.equal("not_before", code)
    assert.is_true(nb > resi.now() + 50)
  end)
end)
