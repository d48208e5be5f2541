-- resi sim: the Oxylabs Public API v2 sandbox (resi.sim.oxylabs), over real
-- HTTP with resi.http and with the curl command line: login and JWT expiry,
-- sub-user CRUD and its validation rules, every stats type, target and client
-- stats, the traffic generator and the /_sim/ admin API.
local http = require "resi.http"
local json = require "resi.json"
local util = require "resi.sim.util"
local accounts_mod = require "resi.sim.accounts"
local proc = require "spec.support.proc"

local GB = 1000000000
-- Wednesday 18 March 2026, 12:30 UTC: a fixed simulated start (speed 0 keeps
-- it there until the admin API moves the clock).
local START = util.parse_date("2026-03-18 12") + 1800
local USER_ONE = "11111111-1111-4111-a111-111111111111"
local USER_TWO = "22222222-2222-4222-a222-222222222222"

-- Accounts with known credentials: two main users, seeded sub-users.
local function accounts(sub_users)
  return {
    oxylabs = {
      { username = "main_one", password = "OneSecret_123", user_id = USER_ONE, sub_users = sub_users or {
        { username = "seed_a", traffic_limit = 10, traffic = 2.5 },
        { username = "seed_b", traffic_limit = json.null, traffic = 1.5, lifetime = true },
      } },
      { username = "main_two", password = "TwoSecret_456", user_id = USER_TWO, sub_users = {
        { username = "other_a", traffic_limit = 5, traffic = 1 },
      } },
    },
    pools = accounts_mod.default_pools(),
  }
end

-- Starts a sandbox (spec.support.sim) at START with the clock held still and traffic off.
local function start(opts)
  opts = opts or {}
  return require("spec.support.sim").start { seed = 5, speed = 0, start = opts.start or START,
    accounts = opts.accounts or accounts(opts.sub_users), provider = "oxylabs" }
end

-- Standard base64 (for Basic credentials).
local function b64(s)
  local out = util.base64url(s):gsub("-", "+"):gsub("_", "/")
  return out .. ("="):rep((4 - #out % 4) % 4)
end

-- Decodes one base64url JWT segment as JSON.
local function segment(s)
  s = s:gsub("-", "+"):gsub("_", "/")
  return json.decode(assert(util.base64_decode(s)))
end

-- POST /login with Basic credentials (or none).
local function login(base, user, pass)
  local headers = user and { Authorization = "Basic " .. b64(user .. ":" .. pass) } or nil
  return assert(http.post(base .. "/login", { headers = headers }))
end

-- An API client bound to one sandbox: logs in and sends Bearer requests.
local function client(sim, user, pass)
  local c = { base = sim.urls.oxylabs, root = (sim.urls.oxylabs:gsub("/v2$", "")) }
  -- Logs in; the login response.
  function c.login()
    local res = login(c.base, user, pass)
    if res.status == 200 then c.token, c.user_id = res:json().token, res:json().user_id end
    return res
  end
  -- A request to path (relative to /v2) with the current token.
  function c.call(method, path, opts)
    opts = opts or {}
    local headers = opts.headers or { Authorization = "Bearer " .. c.token }
    return assert(http.request { method = method, url = c.base .. path, headers = headers, json = opts.json,
      body = opts.body, query = opts.query })
  end
  -- A path under this user.
  function c.user(rest) return "/users/" .. c.user_id .. (rest or "") end
  -- The sub-user named username from the list (nil when absent).
  function c.find(username)
    for _, su in ipairs(c.call("GET", c.user("/sub-users")):json()) do
      if su.username == username then return su end
    end
  end
  -- Creates a sub-user and asserts 201; the SubUser.
  function c.create(fields)
    local res = c.call("POST", c.user("/sub-users"), { json = fields })
    assert.equal(201, res.status, res.body)
    return res:json()
  end
  return c
end

-- Starts a sandbox (opts as for start) with main_one logged in; the sandbox and its client.
local function start_logged_in(opts)
  local sim = start(opts)
  local c = client(sim, "main_one", "OneSecret_123")
  c.login()
  return sim, c
end

-- Asserts an error answer: the status and {"error": text} containing `needle`.
local function assert_error(res, status, needle)
  assert.equal(status, res.status, res.body)
  local doc = assert(res:json())
  assert.is_string(doc.error)
  local n = 0
  for _ in pairs(doc) do n = n + 1 end
  assert.equal(1, n, "only the documented {error} field: " .. res.body)
  if needle then assert.truthy(doc.error:find(needle, 1, true), ("%q not in %q"):format(needle, doc.error)) end
end

-- Sorted keys of a table.
local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local VALID_PASSWORD = "Abcdefgh12#x"
local SUBUSER_KEYS = { "auto_disable", "created_at", "id", "lifetime", "status", "traffic", "traffic_limit", "username" }

describe("resi sim: Oxylabs", function()
  describe("login and JWT", function()
    local sim, c

    setup(function()
      sim = start()
      c = client(sim, "main_one", "OneSecret_123")
    end)
    teardown(function() sim:stop() end)

    it("answers POST /login with user_id and a JWT that carries exp one hour ahead", function()
      local res = c.login()
      assert.equal(200, res.status)
      local doc = res:json()
      assert.same({ "token", "user_id" }, keys(doc))
      assert.equal(USER_ONE, doc.user_id)
      local h, p, s = doc.token:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
      assert.truthy(h, "three base64url segments: " .. doc.token)
      assert.equal(43, #s) -- 32 bytes, like an HS256 signature
      assert.same({ alg = "HS256", typ = "JWT" }, segment(h))
      local claims = segment(p)
      assert.equal(USER_ONE, claims.sub)
      assert.equal(START // 1, claims.iat)
      assert.equal(claims.iat + 3600, claims.exp)
    end)

    it("refuses wrong credentials with 403 and missing ones with 401", function()
      assert_error(login(c.base, "main_one", "wrong"), 403, "wrong username or password")
      assert_error(login(c.base, "nobody", "OneSecret_123"), 403, "wrong username or password")
      assert_error(login(c.base, "main_two", "OneSecret_123"), 403)
      local res = login(c.base)
      assert_error(res, 401, "Basic")
      assert.equal('Basic realm="oxylabs"', res.headers["www-authenticate"])
      assert.equal("unauthorized", res.headers["x-sim-error"])
      assert_error(assert(http.post(c.base .. "/login", { headers = { Authorization = "Bearer x.y.z" } })), 401)
    end)

    it("answers 401 without a token, with an unknown one and with a tampered one", function()
      c.login()
      local res = c.call("GET", c.user("/sub-users"), { headers = {} })
      assert_error(res, 401, "Bearer")
      assert.equal('Bearer realm="oxylabs"', res.headers["www-authenticate"])
      assert_error(c.call("GET", c.user("/sub-users"), { headers = { Authorization = "Bearer nonsense" } }), 401, "invalid token")
      local last = c.token:sub(-1) == "A" and "B" or "A"
      local tampered = c.token:sub(1, -2) .. last
      assert_error(c.call("GET", c.user("/sub-users"), { headers = { Authorization = "Bearer " .. tampered } }), 401, "invalid token")
      assert_error(c.call("GET", c.user("/client-stats"), { headers = { Authorization = "Basic " .. b64("main_one:OneSecret_123") } }), 401)
      assert.equal(200, c.call("GET", c.user("/sub-users")).status)
    end)

    it("expires the JWT after one simulated hour; logging in again works", function()
      c.login()
      local old = c.token
      local status, clock = sim:admin("POST", "/clock", { advance = 3599 })
      assert.equal(200, status)
      assert.equal(START + 3599, clock.now)
      assert.equal(200, c.call("GET", c.user("/sub-users")).status)
      sim:clock(2)
      local res = c.call("GET", c.user("/sub-users"))
      assert_error(res, 401, "expired")
      assert.equal("token_expired", res.headers["x-sim-error"])
      assert.equal(200, c.login().status)
      assert.are_not.equal(old, c.token)
      assert.equal(200, c.call("GET", c.user("/sub-users")).status)
      assert_error(c.call("GET", c.user("/sub-users"), { headers = { Authorization = "Bearer " .. old } }), 401, "expired")
      local claims = segment(c.token:match("^[^.]+%.([^.]+)"))
      assert.equal(START // 1 + 3601, claims.iat)
    end)

    it("keeps an older token valid until its own expiry after a new login", function()
      c.login()
      local first = c.token
      sim:clock(1800)
      c.login()
      assert.equal(200, c.call("GET", c.user("/sub-users"), { headers = { Authorization = "Bearer " .. first } }).status)
      sim:clock(1800)
      assert_error(c.call("GET", c.user("/sub-users"), { headers = { Authorization = "Bearer " .. first } }), 401, "expired")
      assert.equal(200, c.call("GET", c.user("/sub-users")).status)
    end)

    it("answers 405 to a wrong method and 404 to an unknown path, in the error envelope", function()
      assert_error(assert(http.get(c.base .. "/login")), 405, "GET is not allowed")
      assert_error(assert(http.get(c.base .. "/nowhere")), 404, "no such endpoint")
      c.login()
      assert_error(c.call("DELETE", c.user("/sub-users")), 405)
      assert_error(c.call("PUT", c.user("/sub-users/1")), 405)
      assert_error(c.call("GET", c.user("/sub-users/1/traffic")), 404)
      assert_error(assert(http.get(c.root .. "/v1/login")), 404, "no such path")
    end)
  end)

  describe("user ids", function()
    local sim, one, two

    setup(function()
      sim = start()
      one = client(sim, "main_one", "OneSecret_123")
      two = client(sim, "main_two", "TwoSecret_456")
      one.login()
      two.login()
    end)
    teardown(function() sim:stop() end)

    it("answers 403 on every route when the path's user_id is not the token's", function()
      local other_sub = two.find("other_a").id
      local routes = {
        { "GET", "/sub-users" }, { "POST", "/sub-users", { username = "x_user", password = VALID_PASSWORD } },
        { "GET", "/sub-users/" .. other_sub, nil, { type = "24h" } }, { "PATCH", "/sub-users/" .. other_sub, { lifetime = true } },
        { "DELETE", "/sub-users/" .. other_sub }, { "GET", "/sub-users/" .. other_sub .. "/target-stats", nil, { date = "2026-03-18" } },
        { "GET", "/client-stats" },
      }
      for _, foreign in ipairs { USER_TWO, "00000000-0000-0000-0000-000000000000", "12345" } do
        for _, r in ipairs(routes) do
          local res = one.call(r[1], "/users/" .. foreign .. r[2], { json = r[3], query = r[4] })
          assert_error(res, 403, "is not the user this token belongs to")
          assert.equal("forbidden", res.headers["x-sim-error"])
        end
      end
      -- nothing happened to main_two's sub-user
      local su = two.find("other_a")
      assert.is_false(su.lifetime)
      assert.is_nil(two.find("x_user"))
    end)

    it("answers 404 for another account's sub-user under one's own user_id", function()
      local other_sub = two.find("other_a").id
      assert_error(one.call("GET", one.user("/sub-users/" .. other_sub), { query = { type = "24h" } }), 404, "no sub-user with id " .. other_sub)
      assert_error(one.call("PATCH", one.user("/sub-users/" .. other_sub), { json = { lifetime = true } }), 404)
      assert_error(one.call("DELETE", one.user("/sub-users/" .. other_sub)), 404)
      assert_error(one.call("GET", one.user("/sub-users/" .. other_sub .. "/target-stats"), { query = { date = "2026-03-18" } }), 404)
      assert.equal(200, two.call("GET", two.user("/sub-users/" .. other_sub), { query = { type = "24h" } }).status)
    end)

    it("keeps each account's sub-users and client stats apart", function()
      local names = {}
      for _, su in ipairs(one.call("GET", one.user("/sub-users")):json()) do names[#names + 1] = su.username end
      assert.same({ "seed_a", "seed_b" }, names)
      local list = two.call("GET", two.user("/sub-users")):json()
      assert.equal(1, #list)
      assert.equal("other_a", list[1].username)
      assert.equal(4.0, one.call("GET", one.user("/client-stats")):json().traffic)
      assert.equal(1.0, two.call("GET", two.user("/client-stats")):json().traffic)
    end)
  end)

  describe("sub-users", function()
    local sim, c
    setup(function() sim, c = start_logged_in() end)
    teardown(function() sim:stop() end)

    it("lists the account's sub-users as SubUser objects without passwords", function()
      local res = c.call("GET", c.user("/sub-users"))
      assert.equal(200, res.status)
      assert.truthy(res.body:match("^%["), "a JSON array")
      local list = res:json()
      assert.equal(2, #list)
      for _, su in ipairs(list) do assert.same(SUBUSER_KEYS, keys(su)) end
      local a, b = list[1], list[2]
      assert.equal("seed_a", a.username)
      assert.equal(math.type(a.id), "integer")
      assert.equal("active", a.status)
      assert.equal(2.5, a.traffic)
      assert.equal(10, a.traffic_limit)
      assert.is_false(a.auto_disable)
      assert.is_false(a.lifetime)
      assert.equal("2026-02-16 12:30", a.created_at) -- seeds were created 30 days before the start
      assert.equal("seed_b", b.username)
      assert.equal(json.null, b.traffic_limit)
      assert.truthy(res.body:find('"traffic_limit":null', 1, true))
      assert.is_true(b.lifetime)
      assert.equal(1.5, b.traffic)
      assert.is_nil(res.body:find("password", 1, true))
    end)

    it("creates a sub-user: 201 with the SubUser, documented defaults, listed afterwards", function()
      local res = c.call("POST", c.user("/sub-users"), { json = { username = "fresh_user", password = VALID_PASSWORD } })
      assert.equal(201, res.status)
      local su = res:json()
      assert.same(SUBUSER_KEYS, keys(su))
      assert.equal(math.type(su.id), "integer")
      assert.equal("fresh_user", su.username)
      assert.equal("active", su.status)
      assert.equal(0, su.traffic)
      assert.equal(json.null, su.traffic_limit)
      assert.is_false(su.auto_disable)
      assert.is_false(su.lifetime)
      assert.equal("2026-03-18 12:30", su.created_at)
      assert.same(su, c.find("fresh_user"))
      local all = c.call("GET", c.user("/sub-users")):json()
      assert.equal("fresh_user", all[#all].username)
    end)

    it("creates with traffic_limit in GB (0 and fractions too), lifetime and auto_disable", function()
      local su = c.create { username = "Full_Options_9", password = VALID_PASSWORD, traffic_limit = 20, lifetime = true, auto_disable = true }
      assert.equal(20, su.traffic_limit)
      assert.is_true(su.lifetime)
      assert.is_true(su.auto_disable)
      assert.equal(0, c.create({ username = "blocked_one", password = VALID_PASSWORD, traffic_limit = 0 }).traffic_limit)
      assert.equal(0.5, c.create({ username = "half_gb", password = VALID_PASSWORD, traffic_limit = 0.5 }).traffic_limit)
      assert.equal(json.null, c.create({ username = "explicit_null", password = VALID_PASSWORD, traffic_limit = json.null }).traffic_limit)
      assert.is_false(c.create({ username = "no_flags", password = VALID_PASSWORD, lifetime = false, auto_disable = false }).lifetime)
      local ids = {}
      for _, s in ipairs(c.call("GET", c.user("/sub-users")):json()) do
        assert.is_nil(ids[s.id], "ids are unique")
        ids[s.id] = true
      end
    end)

    it("applies the username rule: letters, digits and underscores", function()
      for _, case in ipairs {
        { nil, "username is required" }, { "", "username is required" }, { 42, "username is required" },
        { "has-dash", "only letters, digits and underscores" }, { "has space", "only letters, digits and underscores" },
        { "dot.name", "only letters, digits and underscores" }, { "ünï", "only letters, digits and underscores" },
        { ("u"):rep(65), "at most 64 characters" },
      } do
        assert_error(c.call("POST", c.user("/sub-users"), { json = { username = case[1], password = VALID_PASSWORD } }), 400, case[2])
      end
      assert.equal("A_1", c.create({ username = "A_1", password = VALID_PASSWORD }).username)
      assert.equal(("u"):rep(64), c.create({ username = ("u"):rep(64), password = VALID_PASSWORD }).username)
    end)

    it("applies the password rule: 12-64 characters, lower, upper, digit and one of # _ ~ + =", function()
      local n = 0
      for _, case in ipairs {
        { nil, "password is required" }, { 123456789012, "password is required" },
        { "Abcdefgh1#x", "12 to 64 characters" }, { "Abcdefgh1#" .. ("x"):rep(55), "12 to 64 characters" },
        { "ABCDEFGH12#X", "a lowercase letter" }, { "abcdefgh12#x", "an uppercase letter" },
        { "Abcdefghij#x", "a digit" }, { "Abcdefgh12xx", "one of the special characters # _ ~ + =" },
        { "Abcdefgh12!x", "one of the special characters" }, { "Abcdefgh12@x", "one of the special characters" },
      } do
        n = n + 1
        assert_error(c.call("POST", c.user("/sub-users"), { json = { username = "pw_case_" .. n, password = case[1] } }), 400, case[2])
        assert.is_nil(c.find("pw_case_" .. n))
      end
      for i, special in ipairs { "#", "_", "~", "+", "=" } do
        c.create { username = "pw_ok_" .. i, password = "Abcdefgh12" .. special .. "x" }
      end
      c.create { username = "pw_max", password = "Abcdefgh1#" .. ("x"):rep(54) }
    end)

    it("validates traffic_limit, lifetime and auto_disable and refuses unknown fields", function()
      local function bad(extra, needle)
        local body = { username = "typed_user", password = VALID_PASSWORD }
        for k, v in pairs(extra) do body[k] = v end
        assert_error(c.call("POST", c.user("/sub-users"), { json = body }), 400, needle)
      end
      bad({ traffic_limit = -1 }, "traffic_limit must be null (unlimited), 0 (no traffic) or a positive number of GB")
      bad({ traffic_limit = "10" }, "traffic_limit")
      bad({ traffic_limit = true }, "traffic_limit")
      bad({ lifetime = "yes" }, "lifetime must be true or false")
      bad({ lifetime = json.null }, "lifetime must be true or false")
      bad({ auto_disable = 1 }, "auto_disable must be true or false")
      bad({ trafficLimit = 10000000000 }, "unknown field trafficLimit")
      bad({ status = "active" }, "unknown field status")
      assert.is_nil(c.find("typed_user"))
    end)

    it("refuses bodies that are not a JSON object", function()
      assert_error(c.call("POST", c.user("/sub-users"), { body = "{not json" }), 400, "not valid JSON")
      assert_error(c.call("POST", c.user("/sub-users"), { json = json.array { 1, 2 } }), 400, "must be a JSON object")
      assert_error(c.call("POST", c.user("/sub-users")), 400, "body is empty")
    end)

    it("answers 409 to a duplicate username (a sub-user's or a main user's); a deleted one's is free", function()
      local first = c.create { username = "dup_name", password = VALID_PASSWORD }
      local res = c.call("POST", c.user("/sub-users"), { json = { username = "dup_name", password = VALID_PASSWORD } })
      assert_error(res, 409, "username dup_name is already taken")
      assert.equal("username_taken", res.headers["x-sim-error"])
      assert_error(c.call("POST", c.user("/sub-users"), { json = { username = "other_a", password = VALID_PASSWORD } }), 409)
      assert_error(c.call("POST", c.user("/sub-users"), { json = { username = "main_two", password = VALID_PASSWORD } }), 409)
      assert.equal(204, c.call("DELETE", c.user("/sub-users/" .. first.id)).status)
      local again = c.create { username = "dup_name", password = VALID_PASSWORD }
      assert.are_not.equal(first.id, again.id)
    end)

    it("updates each field with PATCH and answers the SubUser", function()
      local su = c.create { username = "patch_me", password = VALID_PASSWORD, traffic_limit = 5 }
      local path = c.user("/sub-users/" .. su.id)
      local res = c.call("PATCH", path, { json = { traffic_limit = 7.5 } })
      assert.equal(200, res.status)
      assert.same(SUBUSER_KEYS, keys(res:json()))
      assert.equal(7.5, res:json().traffic_limit)
      assert.equal(json.null, c.call("PATCH", path, { json = { traffic_limit = json.null } }):json().traffic_limit)
      assert.equal(0, c.call("PATCH", path, { json = { traffic_limit = 0 } }):json().traffic_limit)
      assert.is_true(c.call("PATCH", path, { json = { lifetime = true } }):json().lifetime)
      assert.is_true(c.call("PATCH", path, { json = { auto_disable = true } }):json().auto_disable)
      assert.equal("disabled", c.call("PATCH", path, { json = { status = "disabled" } }):json().status)
      assert.equal("active", c.call("PATCH", path, { json = { status = "active" } }):json().status)
      res = c.call("PATCH", path, { json = { password = "Zyxwvuts98=q", lifetime = false, traffic_limit = 3, auto_disable = false } })
      assert.equal(200, res.status)
      local got = res:json()
      assert.same({ 3, false, false, "patch_me", su.id }, { got.traffic_limit, got.lifetime, got.auto_disable, got.username, got.id })
      assert.same(got, c.find("patch_me"))
      assert.is_nil(res.body:find("Zyxwvuts98", 1, true))
    end)

    it("validates PATCH bodies: rules, status values, username, unknown and no fields", function()
      local su = c.create { username = "patch_bad", password = VALID_PASSWORD, traffic_limit = 5 }
      local path = c.user("/sub-users/" .. su.id)
      for _, case in ipairs {
        { { password = "short1#A" }, "password must be 12 to 64 characters long" },
        { { password = "nouppercase1#" }, "an uppercase letter" },
        { { traffic_limit = -0.5 }, "traffic_limit must be" },
        { { lifetime = "no" }, "lifetime must be true or false" },
        { { auto_disable = "false" }, "auto_disable must be true or false" },
        { { status = "paused" }, 'status must be "active" or "disabled"' },
        { { status = "deleted" }, "status must be" },
        { { username = "renamed" }, "username cannot be changed" },
        { { traffic_limit = 9, foo = 1 }, "unknown field foo" },
        { {}, "at least one of auto_disable, lifetime, password, status, traffic_limit must be given" },
      } do
        assert_error(c.call("PATCH", path, { json = case[1] }), 400, case[2])
      end
      assert_error(c.call("PATCH", path, { body = "[" }), 400, "not valid JSON")
      local now = c.find("patch_bad")
      assert.same({ 5, "active", "patch_bad" }, { now.traffic_limit, now.status, now.username })
    end)

    it("disables at once when a PATCH puts an auto_disable sub-user at its limit, and refuses to activate it", function()
      local su = c.create { username = "near_limit", password = VALID_PASSWORD, traffic_limit = 10, auto_disable = true }
      local status, used = sim:admin("POST", "/usage", { provider = "oxylabs", id = su.id, gb = 4 })
      assert.equal(200, status)
      assert.equal(4, used.traffic)
      local path = c.user("/sub-users/" .. su.id)
      local res = c.call("PATCH", path, { json = { traffic_limit = 4 } })
      assert.equal(200, res.status)
      assert.equal("disabled", res:json().status)
      assert_error(c.call("PATCH", path, { json = { status = "active" } }), 400, "status cannot be active")
      assert.equal("disabled", c.find("near_limit").status)
      res = c.call("PATCH", path, { json = { status = "active", traffic_limit = 6 } })
      assert.equal(200, res.status)
      assert.same({ "active", 6 }, { res:json().status, res:json().traffic_limit })
      assert.equal("active", c.call("PATCH", path, { json = { traffic_limit = 4, auto_disable = false } }):json().status)
    end)

    it("deletes with 204 and no body; the sub-user is gone everywhere", function()
      local su = c.create { username = "delete_me", password = VALID_PASSWORD }
      local path = c.user("/sub-users/" .. su.id)
      local res = c.call("DELETE", path)
      assert.equal(204, res.status)
      assert.equal("", res.body)
      assert.is_nil(c.find("delete_me"))
      assert_error(c.call("GET", path, { query = { type = "24h" } }), 404, "no sub-user with id " .. su.id)
      assert_error(c.call("PATCH", path, { json = { lifetime = true } }), 404)
      assert_error(c.call("DELETE", path), 404)
      assert_error(c.call("GET", path .. "/target-stats", { query = { date = "2026-03-18" } }), 404)
    end)

    it("answers 404 to an unknown sub-user id and 400 to one that is not an integer", function()
      for _, m in ipairs { "GET", "PATCH", "DELETE" } do
        assert_error(c.call(m, c.user("/sub-users/999"), { json = m == "PATCH" and { lifetime = true } or nil, query = { type = "24h" } }), 404, "no sub-user with id 999")
        assert_error(c.call(m, c.user("/sub-users/abc"), { json = m == "PATCH" and { lifetime = true } or nil, query = { type = "24h" } }), 400, "subUserId must be an integer")
      end
      assert_error(c.call("GET", c.user("/sub-users/999/target-stats"), { query = { date = "2026-03-18" } }), 404)
    end)
  end)

  describe("statistics", function()
    local sim, c, su, life, path

    -- GET stats for the sub-user with a query.
    local function stats(query, id)
      return c.call("GET", c.user("/sub-users/" .. (id or su.id)), { query = query })
    end

    -- The results of a stats answer as {date = traffic}.
    local function by_date(doc)
      local out = {}
      for _, r in ipairs(doc.results) do out[r.date] = r.traffic end
      return out
    end

    setup(function()
      sim, c = start_logged_in()
      su = c.create { username = "stats_user", password = VALID_PASSWORD, traffic_limit = 50 }
      life = c.create { username = "life_user", password = VALID_PASSWORD, lifetime = true }
      path = c.user("/sub-users/" .. su.id)
      -- 18 Mar 12:30 1 GB on amazon.com; 15:30 0.5 GB (mixed); 20 Mar 15:30 2 GB on walmart.com
      sim:usage { provider = "oxylabs", id = su.id, add_bytes = GB, target = "amazon.com" }
      sim:usage { provider = "oxylabs", id = life.id, add_gb = 0.25 }
      sim:clock(3 * 3600)
      sim:usage { provider = "oxylabs", id = su.id, add_gb = 0.5 }
      sim:clock(2 * 86400)
      sim:usage { provider = "oxylabs", id = su.id, bytes = 3500000000, target = "walmart.com" }
      c.login() -- the first token has expired by now
    end)
    teardown(function() sim:stop() end)

    it("shows the current month's traffic on the SubUser", function()
      assert.equal(3.5, c.find("stats_user").traffic)
    end)

    it("type=24h: 24 hour buckets ending with the current hour", function()
      local res = stats { type = "24h" }
      assert.equal(200, res.status)
      local doc = res:json()
      assert.same({ "date_from", "date_to", "results", "traffic" }, keys(doc))
      assert.equal(2, doc.traffic)
      assert.equal(24, #doc.results)
      assert.equal("2026-03-19 16", doc.results[1].date)
      assert.same({ date = "2026-03-20 15", traffic = 2 }, doc.results[24])
      assert.equal("2026-03-19 16", doc.date_from)
      assert.equal("2026-03-20 15", doc.date_to)
      for i = 1, 23 do assert.equal(0, doc.results[i].traffic) end
    end)

    it("type=week: the last 7 days including today", function()
      local doc = stats({ type = "week" }):json()
      assert.equal(3.5, doc.traffic)
      assert.equal(7, #doc.results)
      assert.same({ "2026-03-14", "2026-03-20" }, { doc.results[1].date, doc.results[7].date })
      local d = by_date(doc)
      assert.same({ 1.5, 0, 2 }, { d["2026-03-18"], d["2026-03-19"], d["2026-03-20"] })
    end)

    it("type=month: the last 30 days; type=current_month: the 1st to today", function()
      local month = stats({ type = "month" }):json()
      assert.equal(3.5, month.traffic)
      assert.equal(30, #month.results)
      assert.same({ "2026-02-19", "2026-03-20" }, { month.date_from, month.date_to })
      local cur = stats({ type = "current_month" }):json()
      assert.equal(3.5, cur.traffic)
      assert.equal(20, #cur.results)
      assert.same({ "2026-03-01", "2026-03-20" }, { cur.date_from, cur.date_to })
    end)

    it("type=lifetime: only for lifetime sub-users, from the day of creation", function()
      assert_error(stats { type = "lifetime" }, 400, "type lifetime is only available for sub-users with lifetime = true")
      local doc = stats({ type = "lifetime" }, life.id):json()
      assert.equal(0.25, doc.traffic)
      assert.equal(3, #doc.results)
      assert.same({ date = "2026-03-18", traffic = 0.25 }, doc.results[1])
    end)

    it("type=custom: whole days, or hour buckets when a bound has an hour", function()
      local day = stats({ type = "custom", date_from = "2026-03-18", date_to = "2026-03-18" }):json()
      assert.equal(1.5, day.traffic)
      assert.same({ { date = "2026-03-18", traffic = 1.5 } }, day.results)
      local span = stats({ type = "custom", date_from = "2026-03-01", date_to = "2026-03-31" }):json()
      assert.same({ 3.5, 31 }, { span.traffic, #span.results })
      local hours = stats({ type = "custom", date_from = "2026-03-18 12", date_to = "2026-03-18 15" }):json()
      assert.equal(1.5, hours.traffic)
      assert.same({ { date = "2026-03-18 12", traffic = 1 }, { date = "2026-03-18 13", traffic = 0 },
        { date = "2026-03-18 14", traffic = 0 }, { date = "2026-03-18 15", traffic = 0.5 } }, hours.results)
      local mixed = stats({ type = "custom", date_from = "2026-03-18 14", date_to = "2026-03-18" }):json()
      assert.same({ 0.5, 10, "2026-03-18 23" }, { mixed.traffic, #mixed.results, mixed.date_to })
      local week = stats { type = "custom", date_from = "2026-03-13 15", date_to = "2026-03-20 15" }
      assert.equal(200, week.status)
      assert.same({ 3.5, 7 * 24 + 1 }, { week:json().traffic, #week:json().results })
      assert.equal(200, stats({ type = "24h", time_zone = "UTC" }).status)
    end)

    it("validates the stats query", function()
      for _, case in ipairs {
        { {}, "type is required" },
        { { type = "year" }, "type must be one of 24h, week, month, current_month, lifetime, custom" },
        { { type = { "24h", "week" } }, "type must be one of" },
        { { type = "custom", date_to = "2026-03-18" }, "date_from is required with type custom" },
        { { type = "custom", date_from = "2026-03-18" }, "date_to is required with type custom" },
        { { type = "custom", date_from = "2026/03/18", date_to = "2026-03-18" }, "date_from must be a date: YYYY-MM-DD or YYYY-MM-DD HH" },
        { { type = "custom", date_from = "2026-03-18", date_to = "2026-02-31" }, "date_to must be a date" },
        { { type = "custom", date_from = "2026-03-18 24", date_to = "2026-03-19" }, "date_from must be a date" },
        { { type = "custom", date_from = "2026-03-18", date_to = "2026-03-17" }, "date_to must not be before date_from" },
        { { type = "custom", date_from = "2026-03-18 10", date_to = "2026-03-18 09" }, "date_to must not be before date_from" },
        { { type = "custom", date_from = "2026-03-13 14", date_to = "2026-03-20 15" }, "limited to 7 days" },
        { { type = "24h", time_zone = "Europe/Vilnius" }, "time_zone" },
      } do
        assert_error(stats(case[1]), 400, case[2])
      end
    end)

    it("target-stats: per-domain traffic and requests for one date, consistent with the totals", function()
      local res = c.call("GET", path .. "/target-stats", { query = { date = "2026-03-18" } })
      assert.equal(200, res.status)
      local doc = res:json()
      assert.same({ "date", "requests", "results", "traffic" }, keys(doc))
      assert.equal("2026-03-18", doc.date)
      assert.equal(1.5, doc.traffic)
      assert.equal("amazon.com", doc.results[1].target)
      assert.is_true(doc.results[1].traffic > 1)
      assert.equal(5, #doc.results)
      local sum, reqs = 0, 0
      for i, r in ipairs(doc.results) do
        assert.same({ "requests", "target", "traffic" }, keys(r))
        if i > 1 then assert.is_true(r.traffic <= doc.results[i - 1].traffic) end
        sum, reqs = sum + r.traffic, reqs + r.requests
      end
      assert.near(1.5, sum, 1e-9)
      assert.equal(reqs, doc.requests)
      assert.is_true(doc.requests >= 1.5e9 / 150000)
      local day = c.call("GET", path .. "/target-stats", { query = { date = "2026-03-20" } }):json()
      assert.same({ date = "2026-03-20", traffic = 2, requests = 13334,
        results = { { target = "walmart.com", traffic = 2, requests = 13334 } } }, day)
      local empty = c.call("GET", path .. "/target-stats", { query = { date = "2026-03-19" } })
      assert.same({ 0, 0 }, { empty:json().traffic, empty:json().requests })
      assert.truthy(empty.body:find('"results":[]', 1, true))
    end)

    it("target-stats: date is required, YYYY-MM-DD, within the last 30 days", function()
      local function ts(q) return c.call("GET", path .. "/target-stats", { query = q }) end
      assert_error(ts {}, 400, "date is required")
      assert_error(ts { date = "20-03-2026" }, 400, "date must be YYYY-MM-DD")
      assert_error(ts { date = "2026-03-18 12" }, 400, "date must be YYYY-MM-DD")
      assert_error(ts { date = "2026-02-18" }, 400, "date must be within the last 30 days (2026-02-19 to 2026-03-20)")
      assert_error(ts { date = "2026-03-21" }, 400, "within the last 30 days")
      assert.equal(200, ts({ date = "2026-02-19" }).status)
      assert.equal(200, ts({ date = "2026-03-20" }).status)
    end)

    it("client-stats: the account's traffic this month, deleted sub-users included", function()
      local res = c.call("GET", c.user("/client-stats"))
      assert.equal(200, res.status)
      local doc = res:json()
      assert.same({ "date_from", "date_to", "traffic" }, keys(doc))
      -- seeds 2.5 + 1.5, stats_user 3.5, life_user 0.25
      assert.same({ 7.75, "2026-03-01", "2026-03-20" }, { doc.traffic, doc.date_from, doc.date_to })
      local list_sum = 0
      for _, s in ipairs(c.call("GET", c.user("/sub-users")):json()) do list_sum = list_sum + s.traffic end
      assert.near(doc.traffic, list_sum, 1e-9)
      local gone = c.create { username = "short_lived", password = VALID_PASSWORD }
      sim:usage { id = gone.id, gb = 1 }
      c.call("DELETE", c.user("/sub-users/" .. gone.id))
      assert.equal(8.75, c.call("GET", c.user("/client-stats")):json().traffic)
    end)

    it("starts a new period each month unless lifetime is on; history stays", function()
      sim:clock(12 * 86400) -- 1 April 15:30
      c.login()
      assert.equal(0, c.find("stats_user").traffic)
      assert.equal(0.25, c.find("life_user").traffic)
      local doc = c.call("GET", c.user("/client-stats")):json()
      assert.same({ 0, "2026-04-01", "2026-04-01" }, { doc.traffic, doc.date_from, doc.date_to })
      assert.equal(3.5, stats({ type = "month" }):json().traffic)
      assert.equal(0, stats({ type = "current_month" }):json().traffic)
      assert.equal(1.5, stats({ type = "custom", date_from = "2026-03-18", date_to = "2026-03-18" }):json().traffic)
    end)
  end)

  describe("traffic generator and /_sim/usage", function()
    local sim, c

    setup(function()
      sim = start { sub_users = {
        { username = "auto_off", traffic_limit = 1, auto_disable = true },
        { username = "capped", traffic_limit = 1 },
        { username = "blocked", traffic_limit = 0, auto_disable = true },
        { username = "open_ended", traffic_limit = json.null },
        { username = "switched_off", traffic_limit = 5, status = "disabled" },
        { username = "lifer", traffic_limit = 1, lifetime = true },
      } }
      c = client(sim, "main_one", "OneSecret_123")
    end)
    teardown(function() sim:stop() end)

    -- The current list as username -> SubUser.
    local function state()
      c.login()
      local out = {}
      for _, s in ipairs(c.call("GET", c.user("/sub-users")):json()) do out[s.username] = s end
      return out
    end

    it("uses nothing while the generator is off", function()
      sim:clock(7200)
      for _, s in pairs(state()) do assert.equal(0, s.traffic) end
    end)

    it("makes active sub-users cross 90%: auto_disable disables at the limit, otherwise traffic stops there", function()
      local status, doc = sim:admin("POST", "/traffic", { enabled = true, rate = 0.5 })
      assert.equal(200, status)
      assert.same({ enabled = true, rate = 0.5 }, doc)
      local seen_ninety = {}
      for _ = 1, 60 do
        sim:clock(360)
        local s = state()
        for _, name in ipairs { "auto_off", "capped" } do
          local t = s[name].traffic
          assert.is_true(t <= 1, name .. " never goes past its limit: " .. t)
          if t >= 0.9 and t < 1 then
            assert.equal("active", s[name].status)
            seen_ninety[name] = true
          end
        end
      end
      assert.is_true(seen_ninety.auto_off, "auto_off was seen between 90% and 100%")
      assert.is_true(seen_ninety.capped, "capped was seen between 90% and 100%")
      local s = state()
      assert.same({ 1, "disabled" }, { s.auto_off.traffic, s.auto_off.status })
      assert.same({ 1, "active" }, { s.capped.traffic, s.capped.status })
      assert.same({ 0, "active" }, { s.blocked.traffic, s.blocked.status })
      assert.same({ 0, "disabled" }, { s.switched_off.traffic, s.switched_off.status })
      assert.is_true(s.open_ended.traffic > 1, "unlimited sub-users keep using traffic")
    end)

    it("keeps hourly history and per-target stats that agree with the SubUser", function()
      local s = state()
      for _, name in ipairs { "open_ended", "capped", "auto_off" } do
        local doc = c.call("GET", c.user("/sub-users/" .. s[name].id), { query = { type = "current_month" } }):json()
        assert.near(s[name].traffic, doc.traffic, 1e-9)
        local hours = c.call("GET", c.user("/sub-users/" .. s[name].id),
          { query = { type = "custom", date_from = "2026-03-18 00", date_to = "2026-03-18 23" } }):json()
        assert.near(s[name].traffic, hours.traffic, 1e-9)
        local targets = c.call("GET", c.user("/sub-users/" .. s[name].id .. "/target-stats"), { query = { date = "2026-03-18" } }):json()
        assert.near(s[name].traffic, targets.traffic, 1e-9)
        assert.equal(5, #targets.results)
      end
      local open = c.call("GET", c.user("/sub-users/" .. s.open_ended.id), { query = { type = "24h" } }):json()
      local busy = 0
      for _, r in ipairs(open.results) do if r.traffic > 0 then busy = busy + 1 end end
      assert.is_true(busy >= 6, "traffic spread over the hours the clock moved through")
    end)

    it("stops when turned off, and re-enabling an auto-disabled sub-user needs more room", function()
      sim:admin("POST", "/traffic", { enabled = false })
      local before = state().open_ended.traffic
      sim:clock(3600)
      assert.equal(before, state().open_ended.traffic)
      local s = state()
      assert_error(c.call("PATCH", c.user("/sub-users/" .. s.auto_off.id), { json = { status = "active" } }), 400, "status cannot be active")
      local res = c.call("PATCH", c.user("/sub-users/" .. s.auto_off.id), { json = { status = "active", traffic_limit = 2 } })
      assert.equal("active", res:json().status)
    end)

    it("resets monthly usage in a new month (lifetime ones keep theirs); auto-disabled stay disabled", function()
      local s = state()
      c.call("PATCH", c.user("/sub-users/" .. s.auto_off.id), { json = { traffic_limit = 1 } })
      assert.equal("disabled", state().auto_off.status)
      sim:admin("POST", "/traffic", { enabled = true, rate = 0.5 })
      sim:clock(14 * 86400) -- into April
      s = state()
      sim:admin("POST", "/traffic", { enabled = false })
      assert.same({ 0, "disabled" }, { s.auto_off.traffic, s.auto_off.status })
      assert.same({ 1, "active" }, { s.capped.traffic, s.capped.status }) -- a fresh month, used up again
      assert.equal(1, s.lifer.traffic)
      local april = c.call("GET", c.user("/sub-users/" .. s.capped.id), { query = { type = "current_month" } }):json()
      assert.same({ 1, "2026-04-01" }, { april.traffic, april.date_from })
    end)

    it("sets usage through POST /_sim/usage (bytes, add_bytes, gb, add_gb) and crosses 90% on demand", function()
      local su = c.create { username = "manual", password = VALID_PASSWORD, traffic_limit = 10, auto_disable = true }
      local status, v = sim:admin("POST", "/usage", { provider = "oxylabs", id = su.id, gb = 9.1 })
      assert.equal(200, status)
      assert.same({ 9.1, "active" }, { v.traffic, v.status })
      v = sim:usage { id = su.id, add_bytes = 400000000 }
      assert.same({ 9.5, "active" }, { v.traffic, v.status })
      v = sim:usage { id = tostring(su.id), bytes = 9999999999 }
      assert.equal("active", v.status)
      v = sim:usage { id = su.id, add_gb = 0.000000001 }
      assert.same({ 10, "disabled" }, { v.traffic, v.status })
      assert.equal("disabled", state().manual.status)
    end)

    it("refuses bad /_sim/usage bodies with a message", function()
      local id = state().capped.id
      for _, case in ipairs {
        { { id = 1 }, 404, "no oxylabs sub-user 1" },
        { { id = id }, 400, "exactly one of bytes, add_bytes, gb, add_gb" },
        { { id = id, bytes = 5, add_bytes = 5 }, 400, "exactly one of" },
        { { id = id, bytes = 0 }, 400, "cannot lower usage" },
        { { id = id, add_bytes = -1 }, 400, "add_bytes must be a non-negative integer" },
        { { id = id, add_bytes = 1.5 }, 400, "add_bytes must be a non-negative integer" },
        { { id = id, add_gb = "1" }, 400, "add_gb must be a non-negative number" },
        { { id = id, add_gb = 1, target = "example.com" }, 400, "target must be one of walmart.com" },
      } do
        local status, doc = sim:admin("POST", "/usage", case[1])
        assert.equal(case[2], status)
        assert.truthy(doc.error.message:find(case[3], 1, true), doc.error.message)
      end
      assert.equal(1, state().capped.traffic)
    end)

    it("shows its state in GET /_sim/state", function()
      local ox = sim:state().providers.oxylabs
      assert.equal(2, #ox.accounts)
      local one = ox.accounts[1]
      assert.same({ "main_one", USER_ONE }, { one.username, one.user_id })
      local names = {}
      for _, s in ipairs(one.sub_users) do names[s.username] = s end
      assert.equal(1000000000, names.lifer.total_bytes)
      assert.equal(0, names.switched_off.total_bytes)
      assert.is_true(ox.live_tokens >= 1)
      assert.same({ "walmart.com", "target.com", "amazon.com", "bestbuy.com", "ebay.com" }, ox.targets)
    end)
  end)

  describe("seeded accounts", function()
    it("refuses a bad seeded sub-user, naming where it is", function()
      for _, case in ipairs {
        { { username = "bad-seed" }, "oxylabs[1].sub_users[1].username must contain only letters" },
        { { username = "ok_seed", traffic_limit = -2 }, "oxylabs[1].sub_users[1].traffic_limit must be" },
        { { username = "ok_seed", traffic = "lots" }, "oxylabs[1].sub_users[1].traffic must be a non-negative number" },
        { { username = "ok_seed", password = "weak" }, "oxylabs[1].sub_users[1].password must be 12 to 64" },
        { { username = "main_two" }, "oxylabs[1].sub_users[1].username main_two is already taken" },
      } do
        local sim, err = require("resi.sim").start { ports = { 0, 0, 0 }, seed = 5, traffic = false,
          accounts = accounts { case[1] } }
        assert.is_nil(sim)
        assert.truthy(err:find(case[2], 1, true), err)
      end
    end)

    it("takes seeded status, lifetime and traffic (disabled when auto_disable is over the limit)", function()
      local sim, c = start_logged_in { sub_users = {
        { username = "s_over", traffic_limit = 2, traffic = 2.5, auto_disable = true },
        { username = "s_off", traffic = 0.5, status = "disabled", lifetime = true, password = VALID_PASSWORD },
      } }
      local over, off = c.find("s_over"), c.find("s_off")
      sim:stop()
      assert.same({ "disabled", 2.5 }, { over.status, over.traffic })
      assert.same({ "disabled", 0.5, true, json.null }, { off.status, off.traffic, off.lifetime, off.traffic_limit })
    end)
  end)

  describe("faults", function()
    local sim, c
    setup(function() sim, c = start_logged_in() end)
    teardown(function() sim:stop() end)

    it("answers injected errors on the Oxylabs port in the Oxylabs envelope, then recovers", function()
      local status, rule = sim:admin("POST", "/faults", { provider = "oxylabs", route = "GET /users/*", kind = "error", status = 503 })
      assert.equal(201, status)
      assert.equal(1, rule.count)
      assert_error(c.call("GET", c.user("/sub-users")), 503, "injected fault: HTTP 503")
      assert.equal(200, c.call("GET", c.user("/sub-users")).status)
      sim:fault { provider = "oxylabs", route = "GET /users/*", kind = "rate_limit", retry_after = 7 }
      local res = c.call("GET", c.user("/client-stats"))
      assert_error(res, 429, "rate limited")
      assert.equal("7", res.headers["retry-after"])
      sim:fault { provider = "unknownproxies", route = "* /*", kind = "error" }
      assert.equal(200, c.call("GET", c.user("/client-stats")).status)
    end)
  end)

  describe("with the curl command line", function()
    local sim, acct, base

    -- Runs curl with args; returns the HTTP status, the body and the decoded JSON (nil if none).
    local function curl(args)
      local argv = { "curl", "-sS", "-w", "\n%{http_code}" }
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      local r = proc.run(argv)
      assert.equal(0, r.status, r.stderr)
      local body, code = r.stdout:match("^(.*)\n(%d%d%d)$")
      assert.truthy(code, r.stdout)
      return tonumber(code), body, body ~= "" and json.decode(body) or nil
    end

    -- The documented login example, pointed at the sandbox.
    local function curl_login()
      return curl { "-X", "POST", base .. "/login", "-H", "accept: application/json", "-u", acct.username .. ":" .. acct.password }
    end

    -- An authenticated curl call: method, path under /v2, extra args.
    local function call(token, method, path, extra)
      local args = { "-X", method, base .. path, "-H", "accept: application/json", "-H", "Authorization: Bearer " .. token }
      for _, a in ipairs(extra or {}) do args[#args + 1] = a end
      return curl(args)
    end

    setup(function()
      sim = require("spec.support.sim").start { seed = 5, provider = "oxylabs" }
      acct = sim.accounts.oxylabs[1]
      base = sim.urls.oxylabs
    end)
    teardown(function() sim:stop() end)

    it("runs the documented /login example and gets {user_id, token}", function()
      local status, _, doc = curl_login()
      assert.equal(200, status)
      assert.same({ "token", "user_id" }, keys(doc))
      assert.equal(acct.user_id, doc.user_id)
      assert.truthy(doc.user_id:match("^%x+%-%x+%-%x+%-%x+%-%x+$"))
      assert.truthy(doc.token:match("^[%w_-]+%.[%w_-]+%.[%w_-]+$"))
    end)

    it("runs the documented client-stats example and gets {traffic, date_from, date_to}", function()
      local _, _, login = curl_login()
      local status, _, doc = curl { "-X", "GET", base .. "/users/" .. login.user_id .. "/client-stats",
        "-H", "accept: application/json", "-H", "Authorization: Bearer " .. login.token }
      assert.equal(200, status)
      assert.same({ "date_from", "date_to", "traffic" }, keys(doc))
      assert.near(4.2 + 4.1 + 12.5, doc.traffic, 1e-9) -- the generated account's seeded sub-users
      local now = sim:state().clock.now
      assert.equal(os.date("!%Y-%m-01", math.floor(now)), doc.date_from)
      assert.equal(os.date("!%Y-%m-%d", math.floor(now)), doc.date_to)
    end)

    it("drives every endpoint: list, create, stats, update, target-stats, delete", function()
      local _, _, login = curl_login()
      local t, u = login.token, "/users/" .. login.user_id
      local status, body, list = call(t, "GET", u .. "/sub-users")
      assert.equal(200, status)
      assert.equal(3, #list)
      assert.same({ "team_alpha", "team_beta", "team_gamma" }, { list[1].username, list[2].username, list[3].username })
      assert.truthy(body:find('"traffic_limit":null', 1, true))
      local created
      status, _, created = call(t, "POST", u .. "/sub-users", { "-H", "Content-Type: application/json",
        "-d", '{"username":"curl_user","password":"Curl_Pass_123","traffic_limit":2,"auto_disable":true}' })
      assert.equal(201, status)
      assert.same({ "curl_user", 2, true, "active" }, { created.username, created.traffic_limit, created.auto_disable, created.status })
      local id = tostring(created.id)
      local stats
      status, _, stats = call(t, "GET", u .. "/sub-users/" .. id .. "?type=24h")
      assert.equal(200, status)
      assert.same({ 0, 24 }, { stats.traffic, #stats.results })
      status, _, stats = call(t, "GET", u .. "/sub-users/" .. list[1].id .. "?type=custom&date_from="
        .. os.date("!%Y-%m-01") .. "&date_to=" .. os.date("!%Y-%m-%d", os.time() + 86400))
      assert.equal(200, status)
      assert.near(4.2, stats.traffic, 1e-9)
      local patched
      status, _, patched = call(t, "PATCH", u .. "/sub-users/" .. id, { "-H", "Content-Type: application/json",
        "-d", '{"traffic_limit":null,"status":"disabled","lifetime":true}' })
      assert.equal(200, status)
      assert.same({ json.null, "disabled", true }, { patched.traffic_limit, patched.status, patched.lifetime })
      local targets
      status, _, targets = call(t, "GET", u .. "/sub-users/" .. list[2].id .. "/target-stats?date=" .. os.date("!%Y-%m-%d"))
      assert.equal(200, status)
      assert.same({ "date", "requests", "results", "traffic" }, keys(targets))
      assert.is_true(targets.traffic > 0)
      status, body = call(t, "DELETE", u .. "/sub-users/" .. id)
      assert.equal(204, status)
      assert.equal("", body)
      status = call(t, "GET", u .. "/sub-users/" .. id .. "?type=24h")
      assert.equal(404, status)
    end)

    it("gets each error code: 400, 401, 403, 404, 405, 409", function()
      local status, _, doc = curl { "-X", "POST", base .. "/login", "-u", acct.username .. ":nope" }
      assert.same({ 403, "wrong username or password" }, { status, doc.error })
      status, _, doc = curl { "-X", "POST", base .. "/login" }
      assert.equal(401, status)
      local _, _, login = curl_login()
      local t, u = login.token, "/users/" .. login.user_id
      status, _, doc = curl { base .. u .. "/sub-users" }
      assert.same({ 401 }, { status })
      assert.is_string(doc.error)
      status, _, doc = call(t, "GET", "/users/someone-else/client-stats")
      assert.same({ 403 }, { status })
      status, _, doc = call(t, "GET", u .. "/sub-users/1?type=24h")
      assert.same({ 404, "no sub-user with id 1" }, { status, doc.error })
      status, _, doc = call(t, "POST", u .. "/sub-users", { "-H", "Content-Type: application/json",
        "-d", '{"username":"bad-name","password":"Curl_Pass_123"}' })
      assert.same({ 400, "username must contain only letters, digits and underscores" }, { status, doc.error })
      status, _, doc = call(t, "POST", u .. "/sub-users", { "-H", "Content-Type: application/json",
        "-d", '{"username":"team_alpha","password":"Curl_Pass_123"}' })
      assert.same({ 409, "username team_alpha is already taken" }, { status, doc.error })
      status = call(t, "PUT", u .. "/client-stats")
      assert.equal(405, status)
    end)

    it("applies every documented validation rule (400 naming the field)", function()
      local _, _, login = curl_login()
      local t, u = login.token, "/users/" .. login.user_id
      local _, _, list = call(t, "GET", u .. "/sub-users")
      local id = tostring(list[1].id)
      local create = {
        { '{"password":"Curl_Pass_123"}', "username is required" },
        { '{"username":"a.b","password":"Curl_Pass_123"}', "username must contain only letters, digits and underscores" },
        { '{"username":"v_user"}', "password is required" },
        { '{"username":"v_user","password":"Cu_Pass_123"}', "password must be 12 to 64 characters long" },
        { '{"username":"v_user","password":"CURL_PASS_123"}', "password must contain a lowercase letter" },
        { '{"username":"v_user","password":"curl_pass_123"}', "password must contain an uppercase letter" },
        { '{"username":"v_user","password":"Curl_Pass_abc"}', "password must contain a digit" },
        { '{"username":"v_user","password":"CurlxPassx123"}', "password must contain one of the special characters # _ ~ + =" },
        { '{"username":"v_user","password":"Curl_Pass_123","traffic_limit":-1}', "traffic_limit must be null (unlimited), 0 (no traffic) or a positive number of GB" },
        { '{"username":"v_user","password":"Curl_Pass_123","lifetime":"true"}', "lifetime must be true or false" },
        { '{"username":"v_user","password":"Curl_Pass_123","auto_disable":0}', "auto_disable must be true or false" },
        { '{"username":"v_user","password":"Curl_Pass_123","trafficLimit":5}', "unknown field trafficLimit" },
      }
      for _, case in ipairs(create) do
        local status, _, doc = call(t, "POST", u .. "/sub-users", { "-H", "Content-Type: application/json", "-d", case[1] })
        assert.same({ 400, case[2] }, { status, doc.error:sub(1, #case[2]) })
      end
      local patch = {
        { '{"status":"paused"}', 'status must be "active" or "disabled"' },
        { '{"password":"short_A1"}', "password must be 12 to 64 characters long" },
        { '{"username":"renamed"}', "username cannot be changed" },
        { "{}", "at least one of" },
      }
      for _, case in ipairs(patch) do
        local status, _, doc = call(t, "PATCH", u .. "/sub-users/" .. id, { "-H", "Content-Type: application/json", "-d", case[1] })
        assert.same({ 400, case[2] }, { status, doc.error:sub(1, #case[2]) })
      end
      local queries = {
        { "/sub-users/" .. id, "type is required" },
        { "/sub-users/" .. id .. "?type=yearly", "type must be one of" },
        { "/sub-users/" .. id .. "?type=custom&date_to=2026-01-02", "date_from is required with type custom" },
        { "/sub-users/" .. id .. "?type=custom&date_from=2026-01-01%2000&date_to=2026-01-09%2000", "hour-granular custom ranges are limited to 7 days" },
        { "/sub-users/" .. id .. "/target-stats", "date is required" },
        { "/sub-users/" .. id .. "/target-stats?date=2000-01-01", "date must be within the last 30 days" },
      }
      for _, case in ipairs(queries) do
        local status, _, doc = call(t, "GET", u .. case[1])
        assert.same({ 400, case[2] }, { status, doc.error:sub(1, #case[2]) })
      end
      local _, _, after = call(t, "GET", u .. "/sub-users")
      assert.equal(3, #after)
      assert.same(list[1], after[1])
    end)

    it("answers 401 once the token's hour is over, and a new login works", function()
      local _, _, login = curl_login()
      local u = "/users/" .. login.user_id
      assert.equal(200, (call(login.token, "GET", u .. "/client-stats")))
      local status = curl { "-X", "POST", sim:admin_url() .. "/clock", "-H", "Content-Type: application/json", "-d", '{"advance": 3601}' }
      assert.equal(200, status)
      local doc
      status, _, doc = call(login.token, "GET", u .. "/client-stats")
      assert.same({ 401, "token expired; POST /v2/login again" }, { status, doc.error })
      local _, _, again = curl_login()
      assert.equal(200, (call(again.token, "GET", u .. "/client-stats")))
    end)
  end)

  it("keeps per-target days only as far back as target stats can ask (memory stays bounded)", function()
    local sim = require("spec.support.sim").start { seed = 5, traffic = true, speed = 0, start = START, accounts = accounts(),
      provider = "oxylabs" }
    finally(function() sim:stop() end)
    local c = client(sim, "main_one", "OneSecret_123")
    assert.equal(200, c.login().status)
    sim:clock(60 * 86400) -- two months of traffic, an hour bucket at a time
    local days = 0
    for _, su in pairs(sim.world.providers.oxylabs.sub_users) do
      local n = 0
      for _ in pairs(su.targets) do n = n + 1 end
      days = math.max(days, n)
    end
    assert.truthy(days >= 30 and days <= 32, "days of target stats kept: " .. days)
    assert.equal(200, c.login().status) -- the JWT expired with the hours
    local open
    for _, su in ipairs(c.call("GET", c.user("/sub-users")):json()) do
      if su.username == "seed_b" then open = su end
    end
    local today = util.date(START + 60 * 86400)
    local month_ago = util.date(START + 30 * 86400 + 86400) -- the oldest date target stats accept
    for _, date in ipairs { today, month_ago } do
      local res = c.call("GET", c.user("/sub-users/" .. open.id .. "/target-stats"), { query = { date = date } })
      assert.equal(200, res.status, res.body)
      assert.equal(5, #res:json().results, date)
    end
  end)
end)
