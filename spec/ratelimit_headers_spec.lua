-- resi.ratelimit.headers: every form of Retry-After, RateLimit-* and the
-- IETF structured fields, with garbage ignored. Pure functions: the wall
-- clock is passed in.
local H = require "resi.ratelimit.headers"

local NOW = 1700000000 -- 2023-11-14T22:13:20Z

describe("ratelimit headers", function()
  it("reads the three HTTP-date forms as GMT", function()
    assert.equal(784111777, H.http_date("Sun, 06 Nov 1994 08:49:37 GMT"))
    assert.equal(784111777, H.http_date("Sunday, 06-Nov-94 08:49:37 GMT"))
    assert.equal(784111777, H.http_date("Sun Nov  6 08:49:37 1994"))
    assert.equal(NOW, H.http_date("Tue, 14 Nov 2023 22:13:20 GMT"))
    assert.equal(951782400, H.http_date("Tue, 29 Feb 2000 00:00:00 GMT"))
    for _, bad in ipairs { "Sun, 06 Nov 1994 08:49:37 PST", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
      "yesterday" } do
      assert.is_nil(H.http_date(bad), bad)
    end
  end)

  it("reads Retry-After in seconds and ignores negative and garbage values", function()
    assert.equal(120, H.retry_after("120", NOW))
    assert.equal(3, H.retry_after(" 3 ", NOW))
    assert.equal(0, H.retry_after("0", NOW))
    assert.equal(1.5, H.retry_after("1.5", NOW))
    local v, why = H.retry_after("-5", NOW)
    assert.is_nil(v); assert.equal("negative", why)
    v, why = H.retry_after("1m0s", NOW) -- GitHub once sent this
    assert.is_nil(v); assert.equal("garbage", why)
    v, why = H.retry_after("", NOW)
    assert.is_nil(v); assert.equal("garbage", why)
    assert.is_nil(H.retry_after(nil, NOW))
    v, why = H.retry_after(("9"):rep(400), NOW)
    assert.is_nil(v); assert.equal("garbage", why)
  end)

  it("reads Retry-After as an HTTP-date against the server's Date when there is one", function()
    assert.equal(30, H.retry_after("Tue, 14 Nov 2023 22:13:50 GMT", NOW))
    -- our clock is 100 s fast: the server's Date says it is 22:12:00 there
    assert.equal(110, H.retry_after("Tue, 14 Nov 2023 22:13:50 GMT", NOW, NOW - 80))
    -- in the past: no wait, not a negative one
    assert.equal(0, H.retry_after("Tue, 14 Nov 2023 22:00:00 GMT", NOW))
  end)

  it("tells a delta reset from an epoch one (seconds or milliseconds), or does as told", function()
    assert.equal(30, H.reset_seconds("30", nil, NOW))
    assert.equal(30, H.reset_seconds(tostring(NOW + 30), nil, NOW))
    assert.equal(30, H.reset_seconds(tostring((NOW + 30) * 1000), nil, NOW))
    assert.equal(0, H.reset_seconds(tostring(NOW - 30), nil, NOW))
    assert.equal(30, H.reset_seconds(tostring(NOW + 30), "epoch", NOW))
    assert.equal(25, H.reset_seconds(tostring(NOW + 30), "epoch", NOW, NOW + 5)) -- server clock ahead
    assert.equal(7, H.reset_seconds("7", "delta", NOW))
    assert.equal(10, H.reset_seconds("Tue, 14 Nov 2023 22:13:30 GMT", nil, NOW))
    assert.is_nil(H.reset_seconds("soon", nil, NOW))
  end)

  it("reads ResiFactory's documented headers (Reset is a Unix timestamp)", function()
    local info = H.parse({ ["ratelimit-limit"] = "20", ["ratelimit-remaining"] = "0",
      ["ratelimit-reset"] = tostring(NOW + 42) }, NOW, { reset_unit = "epoch" })
    assert.equal(20, info.limit)
    assert.equal(0, info.remaining)
    assert.equal(42, info.reset)
    assert.is_nil(info.retry_after)
    assert.is_nil(info.ignored)
  end)

  it("reads X-RateLimit-* and measures an epoch reset against the response's Date", function()
    local info = H.parse({ ["x-ratelimit-limit"] = "60", ["x-ratelimit-remaining"] = "59",
      ["x-ratelimit-reset"] = tostring(NOW + 60), date = "Tue, 14 Nov 2023 22:13:30 GMT" }, NOW)
    assert.equal(60, info.limit)
    assert.equal(59, info.remaining)
    assert.equal(50, info.reset) -- the server's clock is 10 s ahead of ours
    assert.equal(NOW + 10, info.date)
  end)

  it("reads the IETF RateLimit and RateLimit-Policy fields, the binding entry first", function()
    local info = H.parse({
      ["ratelimit-policy"] = '"burst";q=10;w=1, "day";q=1000;w=86400;qu="requests", "default";q=100;w=60',
      ["ratelimit"] = '"burst";r=9;t=1, "default";r=3;t=30, "day";r=500;t=3600',
    }, NOW)
    assert.equal(3, #info.policies)
    assert.same({ name = "burst", quota = 10, window = 1 }, info.policies[1])
    assert.equal("requests", info.policies[2].unit)
    -- a partition key is a byte sequence (:base64:) and does not upset the rest
    local ps = H.policies('"a";q=5;w=10;pk=:cHJvamVjdDE=:, "b";q=7;w=20')
    assert.equal(2, #ps)
    assert.equal("cHJvamVjdDE=", ps[1].partition)
    assert.same({ name = "b", quota = 7, window = 20 }, ps[2])
    assert.equal("default", info.policy)
    assert.equal(3, info.remaining)
    assert.equal(30, info.reset)
    assert.equal(100, info.limit)
    assert.equal(60, info.window)
  end)

  it("accepts tokens for names, the l= alias, and the older drafts' forms", function()
    local info = H.parse({ ["ratelimit-policy"] = "default;l=50;w=10", ["ratelimit"] = "default;r=0;t=4" }, NOW)
    assert.equal(50, info.limit); assert.equal(10, info.window)
    assert.equal(0, info.remaining); assert.equal(4, info.reset)
    -- draft-07 dictionary
    info = H.parse({ ["ratelimit"] = "limit=10, remaining=5, reset=3" }, NOW)
    assert.equal(10, info.limit); assert.equal(5, info.remaining); assert.equal(3, info.reset)
    -- drafts <= 06: separate fields, policy as quota;w=window
    info = H.parse({ ["ratelimit-limit"] = "10", ["ratelimit-remaining"] = "4", ["ratelimit-reset"] = "2",
      ["ratelimit-policy"] = "10;w=1, 50;w=60" }, NOW)
    assert.equal(10, info.limit); assert.equal(4, info.remaining); assert.equal(2, info.reset)
    assert.equal(1, info.window)
    assert.same({ quota = 50, window = 60 }, info.policies[2])
    -- draft <= 06 also put the policy into RateLimit-Limit itself
    info = H.parse({ ["ratelimit-limit"] = "100, 100;w=60" }, NOW)
    assert.equal(100, info.limit)
  end)

  it("ignores malformed fields and says which", function()
    local info = H.parse({ ["retry-after"] = "1m0s", ["ratelimit-remaining"] = "lots", ["ratelimit-limit"] = "20",
      ["ratelimit-policy"] = ";;;,,=", ["ratelimit"] = "===" }, NOW)
    assert.is_nil(info.retry_after)
    assert.is_nil(info.remaining)
    assert.equal(20, info.limit)
    assert.same({}, info.policies)
    assert.truthy(info.ignored["retry-after"]:find("garbage", 1, true))
    assert.truthy(info.ignored["ratelimit-remaining"])
    assert.truthy(info.ignored.ratelimit)
  end)

  it("never fails on random bytes in any field (ignores them instead)", function()
    local alphabet = { '"', ";", ",", "=", ":", " ", "\t", "\\", "-", ".", "?", "*", "q", "w", "r", "t", "l",
      "0", "1", "9", "a", "Z", "GMT", "Sun, ", "\0", "\255", "1e309", "99999999999999999999" }
    local rng = 12345
    local function rand(n) -- a small LCG: the same inputs on every run
      rng = (rng * 1103515245 + 12345) % 2147483648
      return rng % n + 1
    end
    local fields = { "retry-after", "ratelimit", "ratelimit-policy", "ratelimit-limit", "ratelimit-remaining",
      "ratelimit-reset", "x-ratelimit-reset", "date" }
    for _ = 1, 3000 do
      local h = {}
      for _, f in ipairs(fields) do
        if rand(2) == 1 then
          local parts = {}
          for k = 1, rand(12) do parts[k] = alphabet[rand(#alphabet)] end
          h[f] = table.concat(parts)
        end
      end
      local ok, info = pcall(H.parse, h, NOW, { reset_unit = "auto" })
      assert(ok, info)
      assert.is_table(info)
      for _, k in ipairs { "retry_after", "remaining", "reset", "limit" } do
        local v = info[k]
        assert(v == nil or (type(v) == "number" and v >= 0 and v == v), k .. " = " .. tostring(v))
      end
    end
  end)

  it("keeps both Retry-After and RateLimit values (observe lets Retry-After win)", function()
    local info = H.parse({ ["retry-after"] = "7", ["ratelimit-remaining"] = "0", ["ratelimit-reset"] = "30" }, NOW)
    assert.equal(7, info.retry_after)
    assert.equal(30, info.reset)
  end)
end)
