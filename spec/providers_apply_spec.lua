-- acct:apply of the common account model against resi sim: a token's
-- parameters are made those create_token was asked for and checked,
-- changing only what differs (so repeating it costs nothing and changes
-- nothing), for UnknownProxies (allowedPools, which a create cannot set)
-- and Oxylabs (traffic_limit, auto_disable, lifetime).
local json = require "resi.json"

local GB = 1000000000

describe("resi.providers acct:apply", function()
  local sim, up, oxy

  setup(function()
    sim = require("spec.support.sim").start { seed = 27 }
    up = sim:account("unknownproxies")
    oxy = sim:account("oxylabs")
  end)
  teardown(function() sim:stop() end)

  it("gives an UnknownProxies token the pools it lacks, once", function()
    local t = up.client:create_token { dataLimit = 2 * GB, durationHours = 24 } -- every pool open
    local want = { limit_bytes = 2 * GB, hours = 24, like = { allowedPools = { "us-r", "us-s" } } }
    local r = up:apply(t.token, want)
    local pools = { table.unpack(r.raw.allowedPools) }
    table.sort(pools)
    assert.are.same({ "us-r", "us-s" }, pools)
    assert.are.same(pools, (function()
      local p = { table.unpack(up.client:get_token(t.token).allowedPools) }
      table.sort(p)
      return p
    end)())
    local before = sim:served("unknownproxies")
    want.like.allowedPools = { "us-s", "us-r" } -- the same set in another order
    up:apply(t.token, want, r)
    assert.are.equal(before, sim:served("unknownproxies")) -- nothing differs: no request
    up:apply(t.token, want)
    assert.are.equal(before + 1, sim:served("unknownproxies")) -- one read to compare, no change
    -- a limit it must reach is raised too; one it cannot (lower) is refused by the server
    r = up:apply(t.token, { limit_bytes = 3 * GB, like = { allowedPools = { "us-s" } } })
    assert.are.equal(3 * GB, r.limit_bytes)
    assert.are.same({ "us-s" }, { table.unpack(r.raw.allowedPools) })
    local ok, err = pcall(up.apply, up, t.token, { limit_bytes = GB })
    assert.is_false(ok)
    assert.are.equal("validation", err.kind)
  end)

  it("creates an UnknownProxies token with its pools applied", function()
    local r = up:create_token { limit_bytes = GB, like = { allowedPools = { "us-s" } } }
    assert.are.same({ "us-s" }, { table.unpack(up.client:get_token(r.id).allowedPools) })
  end)

  it("makes an Oxylabs sub-user's limit and flags those asked for", function()
    local s = oxy.client:create_sub_user { username = "apply_1", password = "Abcdef1#ghijk", traffic_limit = 10 }
    local want = { limit_bytes = 5 * GB, like = { auto_disable = true, lifetime = true } }
    local r = oxy:apply(s.id, want, { raw = { id = s.id } }) -- an answer without the fields: read from the list
    assert.are.equal(5 * GB, r.limit_bytes)
    assert.is_true(r.raw.auto_disable)
    assert.is_true(r.raw.lifetime)
    local before = sim:served("oxylabs")
    oxy:apply(s.id, want, r)
    assert.are.equal(before, sim:served("oxylabs"))
    r = oxy:apply(s.id, { unlimited = true })
    assert.is_true(r.unlimited)
    assert.are.equal(json.null, oxy:token(s.id).raw.traffic_limit)
  end)

  it("is unsupported where there are no tokens", function()
    local rf = sim:account("resifactory")
    local ok, err = pcall(rf.apply, rf, "x", {})
    assert.is_false(ok)
    assert.are.equal("unsupported", err.kind)
  end)
end)
