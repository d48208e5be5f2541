-- resi.providers.resifactory against resi sim: every method, every
-- documented rule checked before a request is spent, Idempotency-Key on
-- generate, is_demo surfaced, formats parsed, and the documented rate limits
-- kept without a single 429 (the sandbox's window shortened to 2 s).
local rf_mod = require "resi.providers.resifactory"
local common = require "resi.providers.common"

local raises = require("spec.support.provider").raises

describe("resi.providers.resifactory", function()
  local sim, rf, key

  setup(function()
    sim = require("spec.support.sim").start { seed = 29, rate_window = 2, provider = "resifactory" }
    key = sim.accounts.resifactory[1].api_key
    rf = sim:client("resifactory", { ratelimit = { window = 2 } })
  end)
  teardown(function()
    sim:stop()
  end)

  it("reads identity, pools, balances and usage", function()
    local me = rf:me()
    assert.are.same({ "pools:read", "proxies:generate", "usage:read" }, (function()
      local s = { table.unpack(me.scopes) }
      table.sort(s)
      return s
    end)())
    assert.are.equal(key:sub(-4), me.key.last4)
    local pools = rf:pools()
    assert.are.equal("walmart_premium", pools.pools[1].id)
    assert.are.equal(pools, rf:pools()) -- cached
    assert.are.equal(25, rf:balance().balances.walmart_premium)
    assert.is_table(rf:usage { limit = 5 }.top_domains)
  end)

  it("generates in every format and returns both the raw answer and a parsed list", function()
    for _, fmt in ipairs({ "list", "json", "userpass" }) do
      local out = rf:generate { country = "us", quantity = 7, proxyType = "sticky", sessionDuration = 15, format = fmt }
      assert.are.equal(7, out.count)
      assert.are.equal(7, #out.list)
      assert.is_false(out.is_demo)
      assert.are.equal(fmt, out.raw.format)
      local e = out.list[1]
      assert.is_string(e.host)
      assert.is_true(math.type(e.port) == "integer")
      assert.matches("session", e.user)
      assert.is_string(e.pass)
    end
  end)

  it("checks every documented rule before spending a request", function()
    rf:pools()
    local before = sim:served()
    local cases = {
      { { quantity = 0 }, "quantity", "from 1 to 250000" },
      { { quantity = 250001 }, "quantity", "from 1 to 250000" },
      { { quantity = 2.5 }, "quantity", "integer" },
      { { country = "US" }, "country", "lower case" },
      { { country = "usa" }, "country", "alpha-2" },
      { { state = "CA" }, "state", 'only valid with country "us"' },
      { { country = "us", state = "California" }, "state", "abbreviation" },
      { { proxyType = "static" }, "proxyType", "rotating, sticky" },
      { { proxyType = "sticky", sessionDuration = 0 }, "sessionDuration", "from 1 to 1440" },
      { { proxyType = "sticky", sessionDuration = 1441 }, "sessionDuration", "from 1 to 1440" },
      { { sessionDuration = 30 }, "sessionDuration", "applies only to sticky" },
      { { format = "csv" }, "format", "list, json or userpass" },
      { { pool = "nope" }, "pool", "not among this key's pools" },
      { { quantity = 5, colour = "red" }, "colour", "is not a field of generate" },
    }
    for _, c in ipairs(cases) do
      local err = raises(rf.generate, rf, c[1])
      assert.are.equal("validation", err.kind)
      assert.are.equal(c[2], err.field)
      assert.matches(c[3], err.message, 1, true)
    end
    local err = raises(rf.usage, rf, { limit = 101 })
    assert.are.equal("limit", err.field)
    assert.are.equal(before, sim:served())
    err = raises(rf_mod.new, { api_key = "sk_live_x" })
    assert.are.equal("api_key", err.field)
  end)

  it("surfaces demo credentials: a warning, or an error with require_live", function()
    local out = rf:generate { pool = "retail_select", quantity = 2 } -- zero balance
    assert.is_true(out.is_demo)
    local strict = sim:client("resifactory", { require_live = true, ratelimit = { window = 2 } })
    local err = raises(strict.generate, strict, { pool = "retail_select", quantity = 2 })
    assert.are.equal("demo", err.kind)
  end)

  it("raises the documented error codes as objects and never prints the key", function()
    local bad = sim:client("resifactory", { api_key = "rf_live_revokedrevokedrevoked" })
    local err = raises(bad.me, bad)
    assert.are.equal("auth", err.kind)
    assert.are.equal("unauthorized", err.code)
    assert.is_string(err.request_id)
    assert.is_nil(tostring(rf):find(key, 1, true))
    assert.matches("rf_live_…" .. key:sub(-4), tostring(rf), 1, true)
  end)

  it("replays a generate whose answer was lost, with the same Idempotency-Key and no second batch", function()
    local function batches()
      return #sim:state().providers.resifactory.accounts[1].batches
    end
    local before = batches()
    sim:fault { route = "POST /proxies", kind = "commit_lost" }
    local out = rf:generate { country = "us", quantity = 3 }
    assert.are.equal(3, out.count)
    assert.are.equal(before + 1, batches())
  end)

  it("keeps 25 generate calls inside 20 per rolling window: no 429, every call served", function()
    resi.sleep(2.1) -- an empty window
    local t0 = resi.monotonic()
    local tasks = {}
    for i = 1, 25 do tasks[i] = resi.spawn(function() return rf:generate { quantity = 1 }.count end) end
    for _, t in ipairs(tasks) do assert.are.equal(1, t:wait()) end
    assert.is_true(resi.monotonic() - t0 >= 1.9) -- the 21st had to wait for the window
    local st = rf:limiter_for("POST", "/proxies"):stats()
    assert.are.equal(0, st.seen_429)
  end)
end)
