-- resi.providers.limits: the providers' documented (or conservative)
-- limits, the endpoint group of a call, and the limiters the clients of
-- one account share.
local ratelimit = require "resi.ratelimit"
local limits = require "resi.providers.limits"

describe("resi.providers.limits", function()
  it("builds ResiFactory's documented limits per endpoint group", function()
    local gen = limits.limiter("resifactory", "generate")
    local s = gen:stats()
    assert.equal(20, s.rules[1].limit); assert.equal(60, s.rules[1].window); assert.equal("sliding", s.rules[1].kind)
    assert.equal("resifactory:generate", gen.name)
    assert.equal(120, limits.limiter("resifactory", "reads"):stats().rules[1].limit)
    assert.equal("generate", limits.group_of("resifactory", "POST", "/proxies"))
    assert.equal("reads", limits.group_of("resifactory", "GET", "/balance?x=1"))
    assert.equal("default", limits.group_of("oxylabs", "GET", "/users/x/sub-users"))
    local all = limits.build("resifactory")
    assert.equal(20, all.generate:stats().rules[1].limit)
    assert.equal(120, all.reads:stats().rules[1].limit)
    assert.are_not.equal(all.generate, limits.build("resifactory").generate) -- built anew each time
  end)

  it("lets a test shorten the window", function()
    local vc = ratelimit.virtual_clock()
    local gen = limits.limiter("resifactory", "generate", { window = 3, clock = vc })
    for _ = 1, 20 do assert(gen:try()) end
    assert.is_nil(gen:try())
    vc.t = 3
    assert.is_table(gen:try())
  end)

  it("starts conservative for providers without documented limits and adapts", function()
    local up = limits.limiter("unknownproxies")
    local s = up:stats()
    assert.equal(4, s.concurrency)
    assert.equal(120, s.rules[1].limit)
    up:observe { status = 200, headers = { ["ratelimit-limit"] = "100", ["ratelimit-remaining"] = "99" } }
    assert.equal(100, up:stats().rules[1].limit)
    assert.equal(120, limits.limiter("oxylabs"):stats().rules[1].limit)
    assert.has_error(function() limits.limiter("nope") end, "resi.providers.limits: unknown provider nope")
    assert.has_error(function() limits.limiter("resifactory", "writes") end,
      'resi.providers.limits: resifactory has no endpoint group "writes"')
  end)

  it("gives the clients of one account one set of limiters, for the process's life", function()
    local rf = require "resi.providers.resifactory"
    local key = "rf_live_abcdefghijklmnopqrstuvwxyz123456"
    local url = "http://127.0.0.1:9/api/v1"
    local a = rf.new { api_key = key, base_url = url }
    local b = rf.new { api_key = key, base_url = url }
    assert.equal(a:limiter_for("POST", "/proxies"), b:limiter_for("POST", "/proxies"))
    assert.equal(a.limiters.reads, a:limiter_for("GET", "/me"))
    -- another key, another API, or overrides: limiters of their own
    local other = rf.new { api_key = "rf_live_zyxwvutsrqponmlkjihgfedcba654321", base_url = url }
    local elsewhere = rf.new { api_key = key, base_url = "http://127.0.0.1:10/api/v1" }
    local own = rf.new { api_key = key, base_url = url, ratelimit = {} }
    for _, c in ipairs({ other, elsewhere, own }) do
      assert.are_not.equal(a.limiters.reads, c.limiters.reads)
    end
    assert.equal(a.limiters.reads, rf.new { api_key = key, base_url = url, limiters = a.limiters }.limiters.reads)
    -- named by the account, never by its key
    local name = a:limiter_for("POST", "/proxies").name
    assert.equal("resifactory:rf_live_…3456:generate", name)
    assert.falsy(name:find(key, 1, true))
    local listed = {}
    for _, lim in ipairs(limits.live()) do listed[lim] = true end
    assert.is_true(listed[a.limiters.reads] and listed[other.limiters.reads] and listed[elsewhere.limiters.generate])
    assert.is_nil(listed[own.limiters.reads]) -- a test's own set is nobody's account
    -- every set has a name of its own: the key against another API, another key that masks alike
    assert.equal("resifactory:rf_live_…3456#2:reads", elsewhere.limiters.reads.name)
    local twin = rf.new { api_key = "rf_live_0000000000000000000000003456", base_url = url }
    assert.equal("resifactory:rf_live_…3456#3:reads", twin.limiters.reads.name)
    assert.equal("resifactory:rf_live_…3456:reads", rf.new { api_key = key, base_url = url }.limiters.reads.name)
    -- what one client learned, the next client of the account starts from,
    -- even once the first is gone
    a.limiters.reads:observe { status = 200, headers = { ["ratelimit-limit"] = "60", ["ratelimit-remaining"] = "59" } }
    a, b = nil, nil -- luacheck: ignore (dropped for the collector)
    collectgarbage()
    assert.equal(60, rf.new { api_key = key, base_url = url }.limiters.reads:stats().rules[1].limit)
    assert.is_nil(ratelimit.profile) -- the generic limiter knows no providers
  end)
end)
