-- resi sim, UnknownProxies: the token read (GET /resi/token) answers from a
-- cache of its encoded JSON (resi.sim.unknownproxies_view), so every way a
-- token changes is checked here with the cache warm: the read after the
-- change must show it, and equal the same token in the list (GET
-- /resi/tokens, built fresh every time). Also the pieces the read relies
-- on: the router's remembered static paths and the Basic-auth cache.
local http = require "resi.http"
local json = require "resi.json"
local token_view = require "resi.sim.unknownproxies_view"
local router = require "resi.sim.router"
local util = require "resi.sim.util"

local GB = 1000000000

describe("resi sim: UnknownProxies token read cache", function()
  local sim, base, auth

  -- An API call with the account's Basic credentials; the response and its decoded body.
  local function call(method, path, body)
    local res = assert(http.request { method = method, url = base .. path, json = body,
      headers = { Authorization = auth } })
    return res, res:json()
  end

  -- The token as the list shows it (never cached).
  local function listed(id)
    local res, list = call("GET", "/resi/tokens")
    assert.are.equal(200, res.status, res.body)
    for _, t in ipairs(list.tokens) do if t.token == id then return t end end
    error("token " .. id .. " not listed")
  end

  -- Reads a token twice (the second read comes from the cache) and checks
  -- both against the list; the decoded token.
  local function read(id)
    local res1, a = call("GET", "/resi/token?token=" .. id)
    local res2, b = call("GET", "/resi/token?token=" .. id)
    assert.are.equal(200, res1.status, res1.body)
    assert.are.equal(res1.body, res2.body)
    assert.are.equal("application/json", res2.headers["content-type"])
    assert.are.same(listed(id), b)
    return a
  end

  -- Creates a token (asserting 200) and warms its cache entry.
  local function create(fields)
    local res, t = call("POST", "/resi/token/create", fields)
    assert.are.equal(200, res.status, res.body)
    read(t.token)
    return t
  end

  setup(function()
    sim = require("spec.support.sim").start { seed = 23, provider = "unknownproxies" }
    base = sim.urls.unknownproxies
    local acct = sim.accounts.unknownproxies[1]
    auth = "Basic " .. require("resi.base64").encode(acct.username .. ":" .. acct.password)
  end)

  teardown(function() sim:stop() end)

  it("answers the same bytes as the view encoded now, over and over", function()
    local t = create { dataLimit = 3 * GB }
    local p = sim.world.providers.unknownproxies
    local want = json.encode(token_view.view(p.tokens[t.token]))
    for _ = 1, 5 do
      local res = call("GET", "/resi/token?token=" .. t.token)
      assert.are.same(json.decode(want), json.decode(res.body))
    end
    assert.are.equal(t.password, read(t.token).password)
  end)

  it("shows usage set through the admin API, and the expiry it brings", function()
    local t = create { dataLimit = GB }
    sim:usage { id = t.token, bytes = GB // 2 }
    assert.are.equal(GB // 2, read(t.token).dataUsage)
    sim:usage { id = t.token, bytes = GB }
    local got = read(t.token)
    assert.are.equal(GB, got.dataUsage)
    assert.are.equal("expired", got.status)
  end)

  it("shows expiry that only the clock brings", function()
    local t = create { dataLimit = GB, durationHours = 1 }
    assert.are.equal("active", read(t.token).status)
    sim:clock(3601)
    assert.are.equal("expired", read(t.token).status)
  end)

  it("shows every field a modify changes, allowedPools both ways", function()
    local t = create { dataLimit = GB }
    sim:clock(5)
    local res, m = call("PATCH", "/resi/token", { token = t.token, password = "Zz9Yy8Xx", dataLimit = 4 * GB,
      durationHours = 7, allowedPools = { "us-s", "gb-r" } })
    assert.are.equal(200, res.status, res.body)
    local got = read(t.token)
    assert.are.same(m, got)
    assert.are.equal("Zz9Yy8Xx", got.password)
    assert.are.equal(4 * GB, got.dataLimit)
    assert.are.equal(7, got.durationHours)
    assert.are.same({ "us-s", "gb-r" }, got.allowedPools)
    assert.is_true(got.updatedAt > got.createdAt)
    call("PATCH", "/resi/token", { token = t.token, allowedPools = { "us-s", "de-r" } })
    assert.are.same({ "us-s", "de-r" }, read(t.token).allowedPools)
    call("PATCH", "/resi/token", { token = t.token, allowedPools = json.array() })
    local cleared = call("GET", "/resi/token?token=" .. t.token)
    assert.matches('"allowedPools":%[%]', cleared.body)
  end)

  it("shows a delete, and the daily usage view is never the cached one", function()
    local t = create { dataLimit = 5 * GB }
    sim:usage { id = t.token, add_bytes = GB }
    local _, with = call("GET", "/resi/token?token=" .. t.token .. "&usage=true")
    assert.are.equal(GB, with.usage[1].usage)
    assert.is_nil(read(t.token).usage)
    assert.are.equal(200, (call("DELETE", "/resi/token", { token = t.token })).status)
    assert.are.equal("deleted", read(t.token).status)
  end)

  it("shows usage billed by the proxy gateway", function()
    local t = create { dataLimit = GB }
    local p = sim.world.providers.unknownproxies
    p:gateway_bill(p.tokens[t.token], 12345)
    assert.are.equal(12345, read(t.token).dataUsage)
  end)

  it("tells 0 from -0.0, which Lua finds equal and JSON writes differently", function()
    local cache = token_view.cache()
    local t = { token = "x", username = "u", password = "p", durationHours = 0, status = "active", createdAt = 1,
      updatedAt = 1, dataUsage = 0, dataLimit = GB, allowedPools = {} }
    assert.matches('"dataUsage":0[,}]', cache:json(t))
    t.dataUsage = -0.0
    assert.matches('"dataUsage":%-0%.0', cache:json(t))
  end)
end)

describe("resi.sim.router", function()
  -- A router with a handler per route that names it.
  local function routes(list)
    local r = router.new()
    for _, spec in ipairs(list) do r:add(spec[1], spec[2], function() return spec[1] .. " " .. spec[2] end) end
    return r
  end

  it("answers a static path the same the first time and once remembered, with fresh params", function()
    local r = routes { { "GET", "/resi/token" }, { "PATCH", "/resi/token" }, { "GET", "/resi/tokens" } }
    for _ = 1, 3 do
      local fn, params, name = r:find("GET", "/resi/token")
      assert.are.equal("GET /resi/token", fn())
      assert.are.equal("GET /resi/token", name)
      assert.are.same({}, params)
      params.x = 1 -- a handler may write into its params: the next request gets new ones
      assert.are.same({ nil, "method_not_allowed" }, { r:find("DELETE", "/resi/token") })
      assert.are.same({ nil, "not_found" }, { r:find("GET", "/resi/nothing") })
      assert.are.equal("GET /resi/token", select(3, r:find("HEAD", "/resi/token")))
    end
  end)

  it("picks the earlier of a HEAD and a GET route for HEAD, remembered or not", function()
    local r = routes { { "HEAD", "/a" }, { "GET", "/a" } }
    for _ = 1, 2 do assert.are.equal("HEAD /a", select(3, r:find("HEAD", "/a"))) end
    local r2 = routes { { "GET", "/a" }, { "HEAD", "/a" } }
    for _ = 1, 2 do assert.are.equal("GET /a", select(3, r2:find("HEAD", "/a"))) end
  end)

  it("captures params per request where a parameter route matches, never remembering them", function()
    local r = routes { { "GET", "/users/me" }, { "GET", "/users/:id" }, { "DELETE", "/users/:id" } }
    assert.are.same({ id = "7" }, select(2, r:find("GET", "/users/7")))
    assert.are.same({ id = "8" }, select(2, r:find("GET", "/users/8")))
    -- /users/me matches a parameter route too: the first route in order wins, each time
    for _ = 1, 2 do
      assert.are.equal("GET /users/me", select(3, r:find("GET", "/users/me")))
      local _, params, name = r:find("DELETE", "/users/me")
      assert.are.equal("DELETE /users/:id", name)
      assert.are.same({ id = "me" }, params)
    end
    assert.are.equal(0, r.nstatic)
  end)

  it("forgets what it remembered when a route is added, and remembers a bounded number of paths", function()
    local r = routes { { "GET", "/a" } }
    assert.are.same({ nil, "method_not_allowed" }, { r:find("POST", "/a") })
    r:add("POST", "/a", function() return "posted" end)
    assert.are.equal("posted", (r:find("POST", "/a"))())
    for i = 1, router.REMEMBER_MAX * 2 do assert.is_function((r:find("GET", ("/"):rep(i) .. "a"))) end
    assert.is_true(r.nstatic <= router.REMEMBER_MAX)
  end)
end)

describe("resi.sim.util.basic_auth", function()
  -- A request carrying an Authorization header.
  local function req(h) return { headers = { authorization = h } } end
  local b64 = require("resi.base64").encode

  it("decodes each header, the same the first time and after, and refuses what is not Basic", function()
    local secret = "s3cr:et-Pa55"
    for _ = 1, 2 do
      assert.are.same({ "alice", secret }, { util.basic_auth(req("Basic " .. b64("alice:" .. secret))) })
      assert.are.same({ "bob", "" }, { util.basic_auth(req("basic  " .. b64("bob:") .. " ")) })
      assert.is_nil(util.basic_auth(req("Basic " .. b64("no-colon"))))
      assert.is_nil(util.basic_auth(req("Basic !!!")))
      assert.is_nil(util.basic_auth(req("Bearer " .. b64("alice:" .. secret))))
      assert.is_nil(util.basic_auth(req(nil)))
    end
  end)

  it("keeps answering right past the cache's size", function()
    for round = 1, 2 do
      for i = 1, 200 do
        local user, pass = util.basic_auth(req("Basic " .. b64(("u%d:p%d"):format(i, i))))
        assert.are.equal("u" .. i, user, "round " .. round)
        assert.are.equal("p" .. i, pass)
      end
    end
  end)
end)
