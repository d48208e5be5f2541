-- resi.providers.call, the one provider-call protocol, against resi sim's
-- faults: a create whose answer is lost is found, never made twice; a 5xx
-- on a create is not repeated; a 429 waits and retries; an Oxylabs 401
-- logs in again once and refills the path's user id; a limiter refusal is
-- its own error; a body is decoded once; Retry-After as an HTTP-date.
local json = require "resi.json"
local common = require "resi.providers.common"
local call = require "resi.providers.call"
local raises = require("spec.support.provider").raises

local GB = 1000000000

-- An HTTP-date `seconds` from now (RFC 9110 IMF-fixdate).
local function http_date(seconds)
  return os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + seconds)
end

-- A response-shaped table (status, headers, body, json()) for the
-- functions that read one.
local function response(status, body, headers)
  return { status = status, body = body, headers = headers or {}, json = function(self) return json.safe_decode(self.body) end }
end

-- How many active tokens of an UnknownProxies client have this username.
local function count_username(up, username)
  local n = 0
  for _, t in ipairs(up:list_tokens()) do
    if t.username == username and t.status ~= "deleted" then n = n + 1 end
  end
  return n
end

describe("resi.providers.call", function()
  local sim, up

  setup(function()
    sim = require("spec.support.sim").start { seed = 37 }
    up = sim:client("unknownproxies")
  end)
  teardown(function() sim:stop() end)
  after_each(function() sim:clear_faults() end)

  describe("creates", function()
    it("finds a create whose answer was lost (commit_lost) and does not create it twice", function()
      up:list_tokens()
      sim:fault { route = "POST /resi/token/create", kind = "commit_lost" }
      local before = sim:served() -- admin calls count too: measure after arming
      local t = up:create_token { dataLimit = GB, username = "lostcall" }
      assert.are.equal("lostcall", t.username)
      assert.are.equal(2, sim:served() - before) -- the create, then one lookup: no second create
      assert.are.equal(1, count_username(up, "lostcall"))
      -- at Oxylabs too
      local oxy = sim:client("oxylabs")
      local n = #oxy:sub_users()
      sim:fault { provider = "oxylabs", route = "POST /users/:u/sub-users", kind = "commit_lost" }
      local s = oxy:create_sub_user { username = "lost_call", password = "Abcdef1#ghijk" }
      assert.are.equal("lost_call", s.username)
      assert.are.equal(n + 1, #oxy:sub_users())
    end)

    it("returns what the lookup found, without a response", function()
      sim:fault { route = "POST /resi/token/create", kind = "commit_lost" }
      local body, res = up:call { method = "POST", path = "/resi/token/create",
        json = { dataLimit = GB, username = "lostraw1" },
        reconcile = function() return up:find_by_username("lostraw1") end }
      assert.are.equal("lostraw1", body.username)
      assert.is_nil(res)
    end)

    it("does not repeat a create the server answered with a 5xx", function()
      local before_n = #up:list_tokens()
      sim:fault { route = "POST /resi/token/create", kind = "error", status = 500, count = 0 }
      local before = sim:served()
      local err = raises(up.create_token, up, { dataLimit = GB, username = "fivexx01" })
      assert.are.equal("server", err.kind)
      assert.are.equal(500, err.status)
      assert.are.equal(2, sim:served() - before) -- one create and its lookup, never a second create
      assert.are.equal(before_n, #up:list_tokens())
    end)

    it("waits out a 429 and then sends the create again", function()
      sim:fault { route = "POST /resi/token/create", kind = "rate_limit", retry_after = 1 }
      local client = sim:client("unknownproxies")
      local before, t0 = sim:served(), resi.monotonic()
      local t = client:create_token { dataLimit = GB, username = "throt429" }
      assert.is_true(resi.monotonic() - t0 >= 0.9, "waited for Retry-After")
      assert.are.equal("throt429", t.username)
      assert.are.equal(2, sim:served() - before) -- the 429, then the create; no lookup (nothing was made)
      assert.are.equal(1, count_username(up, "throt429"))
      assert.are.equal(1, client:limiter_for("POST", "/resi/token/create"):stats().seen_429)
    end)
  end)

  describe("Oxylabs' JWT", function()
    it("logs in again once on a 401 for an expired JWT, and refills the path's user id", function()
      local oxy = sim:client("oxylabs")
      oxy:client_stats()
      local jwt, user_id = oxy.jwt, oxy.user_id
      sim:clock(3601) -- the sandbox's JWT expires; the client still thinks it is good
      oxy.user_id = "00000000-stale" -- what a path made with the old login would hold
      local before = sim:served("oxylabs")
      assert.is_number(oxy:client_stats().traffic)
      assert.are.equal(3, sim:served("oxylabs") - before) -- 401, POST /login, the call again
      assert.are_not.equal(jwt, oxy.jwt)
      assert.are.equal(user_id, oxy.user_id)
    end)

    it("logs in only once when the 401 persists, and raises it", function()
      local oxy = sim:client("oxylabs")
      oxy:client_stats()
      sim:fault { provider = "oxylabs", route = "GET /users/:u/client-stats", kind = "error", status = 401, count = 0 }
      local before = sim:served("oxylabs")
      local err = raises(oxy.client_stats, oxy)
      assert.are.equal("auth", err.kind)
      assert.are.equal(401, err.status)
      assert.are.equal(3, sim:served("oxylabs") - before) -- the call, one login, the call once more
    end)
  end)

  describe("the limiter", function()
    it("raises kind rate_limited with the limiter's reason when it will not let a call go", function()
      local client = sim:client("unknownproxies", { ratelimit = { limit = 1, window = 60, max_queue = 0 } })
      client:list_tokens()
      local before = sim:served()
      local err = raises(client.list_tokens, client)
      assert.are.equal("rate_limited", err.kind)
      assert.are.equal("queue_full", err.code)
      assert.are.equal("unknownproxies", err.provider)
      assert.matches("GET /resi/tokens was not sent", err.message, 1, true)
      assert.is_nil(err.status)
      assert.are.equal(0, sim:served() - before) -- nothing was sent
    end)

    it("hands back a call whose pause (an HTTP-date Retry-After) is too long, with retry_after", function()
      local client = sim:client("unknownproxies", { ratelimit = { retry_after_max = 2, on_long_wait = "return" } })
      sim:fault { route = "GET /resi/tokens", kind = "rate_limit", retry_after = http_date(30), count = 0 }
      local before = sim:served()
      local err = raises(client.list_tokens, client)
      assert.are.equal("rate_limited", err.kind)
      assert.are.equal("not_before", err.code)
      assert.is_true(err.retry_after >= 27 and err.retry_after <= 31, tostring(err.retry_after))
      assert.are.equal(1, sim:served() - before)
    end)
  end)

  describe("Retry-After", function()
    it("reads both forms in common.retry_after", function()
      local function res(v) return { headers = { ["retry-after"] = v } } end
      local d = common.retry_after(res(http_date(30)))
      assert.is_true(d >= 29 and d <= 30, tostring(d))
      assert.are.equal(0, common.retry_after(res(http_date(-60)))) -- a date in the past: now
      assert.are.equal(7, common.retry_after(res("7")))
      assert.is_nil(common.retry_after(res("soon")))
      assert.is_nil(common.retry_after(res(nil)))
      assert.is_nil(common.retry_after(nil))
    end)

    it("waits for an HTTP-date Retry-After, then retries", function()
      local client = sim:client("unknownproxies")
      sim:fault { route = "GET /resi/tokens", kind = "rate_limit", retry_after = http_date(2) }
      local t0 = resi.monotonic()
      assert.is_true(#client:list_tokens() >= 1)
      assert.is_true(resi.monotonic() - t0 >= 0.9, "waited for the date")
    end)

    it("puts an HTTP-date Retry-After on the error a 429 raises", function()
      local res = response(429, '{"error":"slow_down","message":"slow down"}', { ["retry-after"] = http_date(20) })
      local err = up:response_error(res, { method = "GET", path = "/resi/tokens" })
      assert.are.equal("rate_limited", err.kind)
      assert.is_true(err.retry_after >= 19 and err.retry_after <= 20, tostring(err.retry_after))
    end)
  end)

  describe("Response:json()", function()
    it("decodes a body once: the same table every time, and the call returns it", function()
      local body, res = up:call { method = "GET", path = "/resi/tokens", safe = true }
      assert.is_true(rawequal(res:json(), res:json()))
      assert.is_true(rawequal(body, res:json()))
      -- decodes counted on both ways in: resi.json, and the C decoder res:json() calls
      local core = require "resi.json_core"
      local real, real_core, n = json.safe_decode, core.decode, 0
      json.safe_decode = function(...)
        n = n + 1
        return real(...)
      end
      core.decode = function(...)
        n = n + 1
        return real_core(...)
      end
      local ok, err = pcall(up.list_tokens, up)
      json.safe_decode, core.decode = real, real_core
      assert.is_true(ok, tostring(err))
      assert.are.equal(1, n) -- one successful call, one decode
    end)
  end)

  it("tags outcomes: a safe 5xx is transient, an unsafe one unknown, a 401 auth only where it can be cured", function()
    local function res(status, body) return response(status, body or "{}") end
    local get, post = { method = "GET", safe = true }, { method = "POST" }
    assert.are.equal("ok", call.classify(up, get, res(200)))
    assert.are.equal("transient", call.classify(up, get, res(502)))
    assert.are.equal("unknown", call.classify(up, post, res(502)))
    assert.are.equal("failed", call.classify(up, post, res(400)))
    assert.are.equal("throttled", call.classify(up, post, res(429)))
    assert.are.equal("transient", call.classify(up, post, nil, "connect")) -- it never left
    assert.are.equal("unknown", call.classify(up, post, nil, "timeout"))
    assert.are.equal("transient", call.classify(up, get, res(200, "{bad")))
    assert.are.equal("unknown", call.classify(up, post, res(200, "{bad")))
    assert.are.equal("failed", call.classify(up, get, res(401))) -- UnknownProxies has nothing to refresh
    local oxy = sim:client("oxylabs")
    assert.are.equal("auth", call.classify(oxy, get, res(401)))
    assert.are.equal("failed", call.classify(oxy, { method = "GET", safe = true, refreshed = true }, res(401)))
  end)
end)
