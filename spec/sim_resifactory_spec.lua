-- resi sim: the ResiFactory API (resifactory-api-v1.txt) over real HTTP with
-- resi.http, the curl command line, and the provider's own curl and Python
-- examples (only the URL and the key changed).
local http = require "resi.http"
local json = require "resi.json"
local task = require "resi.task"
local core = require "resi.core"
local proc = require "spec.support.proc"

local KEYS = {
  main = "rf_live_mainKEY0000000000001",
  gen_only = "rf_live_genONLY000000000002",
  read_only = "rf_live_readONLY00000000003",
  disabled = "rf_live_disABLED00000000004",
  revoked = "rf_live_revOKED000000000005",
  second = "rf_live_secOND0000000000006",
  no_scopes = "rf_live_noSCOPES00000000007",
  usage = "rf_live_usAGE000000000000008",
}

-- The accounts every sandbox in this file starts with.
local function accounts()
  return {
    resifactory = {
      { api_key = KEYS.main, username = "acme", key_name = "My scraper",
        balances = { walmart_premium = 25.0, retail_select = 0 } },
      { api_key = KEYS.gen_only, username = "genonly", scopes = { "proxies:generate" }, balances = { walmart_premium = 3.5 } },
      { api_key = KEYS.read_only, username = "reader", scopes = { "usage:read" }, balances = { walmart_premium = 1 } },
      { api_key = KEYS.disabled, username = "gone", disabled = true, balances = { walmart_premium = 1 } },
      { api_key = KEYS.revoked, username = "leaked", revoked = true, balances = { walmart_premium = 1 } },
      { api_key = KEYS.second, username = "second", balances = { walmart_premium = 2.25 } },
      { api_key = KEYS.no_scopes, username = "bare", scopes = {}, balances = { walmart_premium = 1 } },
      { api_key = KEYS.usage, username = "usage", balances = { walmart_premium = 7 } },
    },
    pools = require("resi.sim.accounts").default_pools(),
  }
end

-- Starts a sandbox (spec.support.sim) on these accounts; opts are merged into the defaults.
local function start(opts)
  local o = { seed = 5, accounts = accounts(), provider = "resifactory" }
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("spec.support.sim").start(o)
end

-- One API call: key (nil: no Authorization), json/body, headers, query.
local function call(sim, method, path, o)
  o = o or {}
  local headers = {}
  for k, v in pairs(o.headers or {}) do headers[k] = v end
  if o.key then headers.Authorization = "Bearer " .. o.key end
  local res, err = http.request { method = method, url = sim.urls.resifactory .. path, headers = headers,
    json = o.json, body = o.body, query = o.query }
  assert(res, err)
  return res
end

-- Asserts the documented error envelope with a code and status; returns the error.
local function assert_error(res, status, code)
  assert.equal(status, res.status, res.body)
  local doc = assert(res:json())
  assert.is_table(doc.error, res.body)
  assert.equal(code, doc.error.code)
  assert.is_string(doc.error.message)
  assert.truthy(#doc.error.message > 0)
  assert.matches("^req_%w+$", doc.error.request_id)
  assert.equal(doc.error.request_id, res.headers["x-request-id"])
  return doc.error
end

-- Asserts an invalid_request naming a field, in the message and in details.
local function assert_invalid(res, field)
  local err = assert_error(res, 400, "invalid_request")
  assert.truthy(err.message:find(field, 1, true), err.message)
  assert.equal(field, err.details[1].field)
  return err
end

-- The lines of a list/userpass answer.
local lines = require("spec.support.text").lines

-- Runs a shell script with loopback traffic kept away from any proxy.
local function sh(script)
  return proc.run({ "/bin/sh", "-c", script }, { env = { "NO_PROXY=*", "no_proxy=*", "HTTP_PROXY=", "http_proxy=" } })
end

describe("resi sim: ResiFactory", function()
  local sim

  setup(function()
    sim = start()
    -- functional tests make more calls than a minute allows; the limits have their own sandbox below
    local status = sim:admin("POST", "/config", { generate_limit = 100000, read_limit = 100000 })
    assert.equal(200, status)
  end)
  teardown(function() sim:stop() end)

  describe("authentication and the error envelope", function()
    it("answers 401 unauthorized without an Authorization header", function()
      local res = call(sim, "GET", "/me")
      assert_error(res, 401, "unauthorized")
      assert.truthy(res.headers["ratelimit-limit"])
      assert.truthy(res.headers["ratelimit-remaining"])
      assert.truthy(res.headers["ratelimit-reset"])
    end)

    it("answers 401 for malformed headers: no Bearer, wrong scheme, stray spaces, wrong prefix", function()
      for _, h in ipairs({ KEYS.main, "Token " .. KEYS.main, "bearer " .. KEYS.main, "Bearer  " .. KEYS.main,
        "Bearer " .. KEYS.main .. "x y", "Bearer sk_live_abcdefgh", "Bearer " }) do
        local res = call(sim, "GET", "/me", { headers = { Authorization = h } })
        assert_error(res, 401, "unauthorized")
      end
    end)

    it("answers 401 for an unknown key and for a revoked one, without echoing the key", function()
      local res = call(sim, "GET", "/me", { key = "rf_live_doesNotExist0000" })
      assert_error(res, 401, "unauthorized")
      assert.is_nil(res.body:find("doesNotExist", 1, true))
      res = call(sim, "GET", "/balance", { key = KEYS.revoked })
      local err = assert_error(res, 401, "unauthorized")
      assert.matches("revoked", err.message)
    end)

    it("revokes a key at once through the admin API, and restores it", function()
      assert.equal(200, call(sim, "GET", "/me", { key = KEYS.gen_only }).status)
      local status, view = sim:admin("POST", "/usage", { provider = "resifactory", api_key = KEYS.gen_only, revoked = true })
      assert.equal(200, status)
      assert.is_true(view.revoked)
      assert_error(call(sim, "GET", "/me", { key = KEYS.gen_only }), 401, "unauthorized")
      sim:usage { provider = "resifactory", api_key = KEYS.gen_only, revoked = false }
      assert.equal(200, call(sim, "GET", "/me", { key = KEYS.gen_only }).status)
    end)

    it("answers 403 account_disabled on every endpoint for a suspended account", function()
      assert_error(call(sim, "GET", "/me", { key = KEYS.disabled }), 403, "account_disabled")
      assert_error(call(sim, "GET", "/balance", { key = KEYS.disabled }), 403, "account_disabled")
      assert_error(call(sim, "POST", "/proxies", { key = KEYS.disabled, json = { quantity = 1 } }), 403, "account_disabled")
    end)

    it("answers 403 insufficient_scope naming the missing scope", function()
      local cases = {
        { KEYS.gen_only, "GET", "/balance", "usage:read" }, { KEYS.gen_only, "GET", "/usage", "usage:read" },
        { KEYS.gen_only, "GET", "/pools", "pools:read" }, { KEYS.read_only, "POST", "/proxies", "proxies:generate" },
        { KEYS.read_only, "GET", "/pools", "pools:read" }, { KEYS.no_scopes, "GET", "/balance", "usage:read" },
      }
      for _, c in ipairs(cases) do
        local err = assert_error(call(sim, c[2], c[3], { key = c[1], json = c[2] == "POST" and { quantity = 1 } or nil }),
          403, "insufficient_scope")
        assert.equal(("This key does not have the %s scope."):format(c[4]), err.message)
      end
      assert.equal(200, call(sim, "GET", "/balance", { key = KEYS.read_only }).status)
      assert.equal(200, call(sim, "POST", "/proxies", { key = KEYS.gen_only, json = { quantity = 1 } }).status)
    end)

    it("lets /me through with any valid key, whatever its scopes", function()
      for _, k in ipairs({ KEYS.gen_only, KEYS.read_only, KEYS.no_scopes }) do
        local res = call(sim, "GET", "/me", { key = k })
        assert.equal(200, res.status)
      end
      assert.same({}, call(sim, "GET", "/me", { key = KEYS.no_scopes }):json().scopes)
      assert.same({ "proxies:generate" }, call(sim, "GET", "/me", { key = KEYS.gen_only }):json().scopes)
    end)

    it("answers 404 not_found for unknown paths and 405 for a wrong method", function()
      assert_error(call(sim, "GET", "/nothing", { key = KEYS.main }), 404, "not_found")
      assert_error(call(sim, "GET", "/proxies", { key = KEYS.main }), 405, "method_not_allowed")
      assert_error(call(sim, "DELETE", "/balance", { key = KEYS.main }), 405, "method_not_allowed")
    end)

    it("answers 500 internal_error in the envelope when a handler fails, and for an injected 500", function()
      local p = sim.world.providers.resifactory
      p.balances_view = function() error("boom") end
      local ok, res = pcall(call, sim, "GET", "/balance", { key = KEYS.main })
      p.balances_view = nil
      assert(ok, res)
      assert_error(res, 500, "internal_error")
      assert.equal(200, call(sim, "GET", "/balance", { key = KEYS.main }).status)
      sim:fault { provider = "resifactory", kind = "error", status = 500, route = "GET /balance" } -- asserts the 201
      assert_error(call(sim, "GET", "/balance", { key = KEYS.main }), 500, "internal_error")
      assert.equal(200, call(sim, "GET", "/balance", { key = KEYS.main }).status)
    end)

    it("puts a fresh X-Request-Id and the RateLimit headers on every response", function()
      local seen = {}
      for _, res in ipairs({ call(sim, "GET", "/me", { key = KEYS.main }), call(sim, "GET", "/me", { key = KEYS.main }),
        call(sim, "POST", "/proxies", { key = KEYS.main, json = { quantity = 1 } }), call(sim, "GET", "/me") }) do
        local id = res.headers["x-request-id"]
        assert.matches("^req_%w+$", id)
        assert.is_nil(seen[id])
        seen[id] = true
        assert.matches("^%d+$", res.headers["ratelimit-limit"])
        assert.matches("^%d+$", res.headers["ratelimit-remaining"])
        assert.matches("^%d+$", res.headers["ratelimit-reset"])
        assert.is_nil(res.headers["retry-after"])
      end
    end)
  end)

  describe("POST /proxies", function()
    -- A successful generate call's decoded answer.
    local function generate(body, key)
      local res = call(sim, "POST", "/proxies", { key = key or KEYS.main, json = body })
      assert.equal(200, res.status, res.body)
      assert.equal("application/json", res.headers["content-type"])
      return assert(res:json()), res
    end

    -- The lines of the list or userpass answer to body, which must be n;
    -- returns them and the answer.
    local function generate_lines(body, n)
      local doc = generate(body)
      local ls = lines(doc.proxies)
      assert.equal(n, #ls)
      return ls, doc
    end

    it("uses the documented defaults: 5,000 rotating lines in list format from the default pool", function()
      local ls, doc = generate_lines(json.decode("{}"), 5000)
      assert.equal(5000, doc.count)
      assert.equal("list", doc.format)
      assert.equal("walmart_premium", doc.pool)
      assert.equal("rotating", doc.proxy_type)
      assert.is_false(doc.is_demo)
      assert.equal(json.null, doc.country)
      assert.equal("proxy.resifactory.net:8000:user-acme:" .. ls[1]:match("[^:]+$"), ls[1])
    end)

    it("accepts an empty body as all defaults", function()
      local res = call(sim, "POST", "/proxies", { key = KEYS.main, body = "" })
      assert.equal(200, res.status)
      assert.equal(5000, res:json().count)
    end)

    it("renders list as host:port:user:pass lines", function()
      local ls, doc = generate_lines({ country = "us", quantity = 10 }, 10)
      assert.equal(10, doc.count)
      assert.equal("us", doc.country)
      for _, l in ipairs(ls) do assert.matches("^proxy%.resifactory%.net:8000:user%-acme%-country%-us:%w+$", l) end
    end)

    it("renders json as an array of {host, port, username, password}", function()
      local doc = generate { country = "gb", quantity = 3, format = "json" }
      assert.equal("json", doc.format)
      assert.equal(3, #doc.proxies)
      for _, p in ipairs(doc.proxies) do
        assert.equal("proxy.resifactory.net", p.host)
        assert.equal(8000, p.port)
        assert.equal(math.type(p.port), "integer")
        assert.equal("user-acme-country-gb", p.username)
        assert.matches("^%w+$", p.password)
      end
    end)

    it("renders userpass as user:pass@host:port lines", function()
      local ls = generate_lines({ quantity = 4, format = "userpass", country = "de" }, 4)
      for _, l in ipairs(ls) do assert.matches("^user%-acme%-country%-de:%w+@proxy%.resifactory%.net:8000$", l) end
    end)

    it("gives sticky lines a unique session each, with the session lifetime", function()
      local doc = generate { country = "us", quantity = 100, proxyType = "sticky", sessionDuration = 30, format = "json" }
      local users = {}
      for _, p in ipairs(doc.proxies) do
        assert.matches("^user%-acme%-country%-us%-session%-%w+%-sesstime%-30$", p.username)
        assert.is_nil(users[p.username])
        users[p.username] = true
      end
      assert.equal("sticky", doc.proxy_type)
      local dflt = generate { quantity = 2, proxyType = "sticky" }
      assert.matches("%-sesstime%-30:", lines(dflt.proxies)[1]) -- the pool default
    end)

    it("accepts sessionDuration 1 and 1440 and rejects 0, 1441, 2.5 and a string for sticky types", function()
      assert.matches("%-sesstime%-1:", lines(generate { quantity = 1, proxyType = "sticky", sessionDuration = 1 }.proxies)[1])
      assert.matches("%-sesstime%-1440:", lines(generate { quantity = 1, proxyType = "sticky", sessionDuration = 1440 }.proxies)[1])
      for _, v in ipairs({ 0, 1441, 2.5, "30", -5 }) do
        assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { proxyType = "sticky", sessionDuration = v } }),
          "sessionDuration")
      end
    end)

    it("ignores sessionDuration, even an invalid one, for rotating types", function()
      local doc = generate { quantity = 2, proxyType = "rotating", sessionDuration = 99999 }
      assert.equal("rotating", doc.proxy_type)
      for _, l in ipairs(lines(doc.proxies)) do assert.is_nil(l:find("session", 1, true)) end
      doc = generate({ quantity = 2, pool = "retail_select", proxyType = "mobile_rotating", sessionDuration = 0 })
      assert.equal("mobile_rotating", doc.proxy_type)
    end)

    it("targets a US state only with country us", function()
      local doc = generate { country = "us", state = "CA", quantity = 2 }
      assert.equal("CA", doc.state)
      assert.matches("^proxy%.resifactory%.net:8000:user%-acme%-country%-us%-state%-ca:", lines(doc.proxies)[1])
      assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { state = "CA" } }), "state")
      assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { country = "gb", state = "CA" } }), "state")
      assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { country = "us", state = "ZZ" } }), "state")
      assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { country = "us", state = 5 } }), "state")
    end)

    it("wants country as a lowercase ISO 3166-1 alpha-2 code from the targeting list", function()
      for _, v in ipairs({ "US", "usa", "u", "zz", 1, true }) do
        assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { country = v } }), "country")
      end
      assert.equal("jp", generate({ country = "jp", quantity = 1 }).country)
    end)

    it("accepts quantity 1 and 250,000 and rejects 0, 250,001, fractions, strings and negatives", function()
      assert.equal(1, #lines(generate({ quantity = 1 }).proxies))
      for _, v in ipairs({ 0, 250001, 1.5, "10", -1, false }) do
        assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { quantity = v } }), "quantity")
      end
    end)

    it("produces 250,000 sticky lines with unique sessions, in list and json", function()
      local ls = generate_lines({ quantity = 250000, proxyType = "sticky", format = "list" }, 250000)
      local seen = {}
      for _, l in ipairs(ls) do
        local s = l:match("%-session%-(%w+)%-")
        assert(s and not seen[s], l)
        seen[s] = true
      end
      local doc = generate { quantity = 250000, format = "json", country = "us" }
      assert.equal(250000, #doc.proxies)
      assert.equal("user-acme-country-us", doc.proxies[250000].username)
    end)

    it("rejects an unknown proxyType and one the pool does not offer", function()
      assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { proxyType = "datacenter" } }), "proxyType")
      local err = assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main,
        json = { proxyType = "mobile_sticky", pool = "walmart_premium" } }), "proxyType")
      assert.matches("walmart_premium", err.message)
      assert.equal("mobile_sticky", generate({ quantity = 1, proxyType = "mobile_sticky", pool = "retail_select" }).proxy_type)
    end)

    it("rejects an unknown format", function()
      assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { format = "csv" } }), "format")
    end)

    it("answers 404 pool_not_available for an unknown pool and one the key cannot access", function()
      assert_error(call(sim, "POST", "/proxies", { key = KEYS.main, json = { pool = "nope" } }), 404, "pool_not_available")
      assert_error(call(sim, "POST", "/proxies", { key = KEYS.second, json = { pool = "retail_select" } }), 404,
        "pool_not_available")
      assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { pool = 7 } }), "pool")
    end)

    it("rejects a body that is not a JSON object", function()
      assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, body = "{nope",
        headers = { ["Content-Type"] = "application/json" } }), "body")
      assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.main, json = { 1, 2 } }), "body")
    end)

    it("treats JSON null fields as omitted", function()
      local res = call(sim, "POST", "/proxies", { key = KEYS.main, body = '{"quantity":2,"country":null,"format":null}' })
      assert.equal(200, res.status)
      assert.equal("list", res:json().format)
      assert.equal(2, res:json().count)
    end)

    it("returns non-working demo credentials and is_demo when the pool's balance is zero", function()
      local doc = generate { quantity = 3, pool = "retail_select", format = "json" }
      assert.is_true(doc.is_demo)
      assert.equal("retail_select", doc.pool)
      for _, p in ipairs(doc.proxies) do
        assert.equal("retail.resifactory.net", p.host)
        assert.matches("^demo%-acme", p.username)
        assert.equal("demo", p.password)
      end
      sim:usage { provider = "resifactory", api_key = KEYS.main, pool = "retail_select", balance = 5 } -- asserts the 200
      doc = generate { quantity = 1, pool = "retail_select", format = "json" }
      assert.is_false(doc.is_demo)
      assert.matches("^user%-acme", doc.proxies[1].username)
      assert.not_equal("demo", doc.proxies[1].password)
      sim:usage { provider = "resifactory", api_key = KEYS.main, pool = "retail_select", balance = 0 }
      assert.is_true(generate({ quantity = 1, pool = "retail_select" }).is_demo)
    end)
  end)

  describe("Idempotency-Key", function()
    -- The batches recorded for an account.
    local function batches(username)
      local st = sim:state()
      for _, a in ipairs(st.providers.resifactory.accounts) do
        if a.username == username then return a.batches, a end
      end
    end

    -- How many recorded batches carry an idempotency key.
    local function count_key(username, ikey)
      local n = 0
      for _, b in ipairs(batches(username)) do if b.idempotency_key == ikey then n = n + 1 end end
      return n
    end

    it("replays the same answer for the same key and body: identical credentials, one batch, no charge", function()
      local before = call(sim, "GET", "/balance", { key = KEYS.second }):json()
      local body = { quantity = 50, proxyType = "sticky", format = "json", country = "us" }
      local h = { ["Idempotency-Key"] = "order-1" }
      local a = call(sim, "POST", "/proxies", { key = KEYS.second, json = body, headers = h })
      local b = call(sim, "POST", "/proxies", { key = KEYS.second, json = body, headers = h })
      assert.equal(200, a.status)
      assert.equal(200, b.status)
      assert.equal(a.body, b.body)
      assert.equal(50, #b:json().proxies)
      assert.is_nil(a.headers["idempotent-replayed"])
      assert.equal("true", b.headers["idempotent-replayed"])
      assert.equal(a.headers["x-request-id"], b.headers["x-request-id"])
      assert.equal(1, count_key("second", "order-1"))
      assert.same(before, call(sim, "GET", "/balance", { key = KEYS.second }):json())
      -- without the key, the same body is a new batch with new sessions
      local c = call(sim, "POST", "/proxies", { key = KEYS.second, json = body })
      assert.not_equal(a:json().proxies[1].username, c:json().proxies[1].username)
    end)

    it("keeps only the latest MAX_BATCHES batches in its state", function()
      local rf = require "resi.sim.resifactory"
      local saved = rf.MAX_BATCHES
      rf.MAX_BATCHES = 3
      finally(function() rf.MAX_BATCHES = saved end)
      for i = 1, 5 do
        local h = { ["Idempotency-Key"] = "bounded-" .. i }
        assert.equal(200, call(sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = { quantity = 1 } }).status)
      end
      local kept = {}
      for i, b in ipairs(batches("second")) do kept[i] = b.idempotency_key end
      assert.same({ "bounded-3", "bounded-4", "bounded-5" }, kept)
    end)

    it("compares bodies as JSON: key order and spacing do not matter", function()
      local h = { ["Idempotency-Key"] = "order-2" }
      local a = call(sim, "POST", "/proxies", { key = KEYS.second, headers = h,
        body = '{"quantity":5,"proxyType":"sticky"}' })
      local b = call(sim, "POST", "/proxies", { key = KEYS.second, headers = h,
        body = '{ "proxyType" : "sticky", "quantity" : 5 }' })
      assert.equal(200, b.status)
      assert.equal(a.body, b.body)
      assert.equal(1, count_key("second", "order-2"))
    end)

    it("answers 422 idempotency_key_reuse for the same key with a different body", function()
      local h = { ["Idempotency-Key"] = "order-3" }
      assert.equal(200, call(sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = { quantity = 5 } }).status)
      assert_error(call(sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = { quantity = 6 } }), 422,
        "idempotency_key_reuse")
      assert.equal(1, count_key("second", "order-3"))
    end)

    it("answers 409 idempotency_in_progress while the first request is still running", function()
      sim.world.config.generate_delay = 0.4
      local h = { ["Idempotency-Key"] = "order-4" }
      local body = { quantity = 3, proxyType = "sticky" }
      local first = task.spawn(function() return call(sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = body }) end)
      task.sleep(0.15)
      local ok, second = pcall(call, sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = body })
      local a = first:wait()
      sim.world.config.generate_delay = nil
      assert(ok, second)
      assert_error(second, 409, "idempotency_in_progress")
      assert.equal(200, a.status)
      local c = call(sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = body })
      assert.equal(a.body, c.body)
      assert.equal(1, count_key("second", "order-4"))
    end)

    it("scopes keys to the API key: another account's same key is its own request", function()
      local h = { ["Idempotency-Key"] = "shared-key" }
      local body = { quantity = 2, proxyType = "sticky" }
      local a = call(sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = body })
      local b = call(sim, "POST", "/proxies", { key = KEYS.main, headers = h, json = body })
      assert.equal(200, b.status)
      assert.is_nil(b.headers["idempotent-replayed"])
      assert.not_equal(a.body, b.body)
    end)

    it("replays a stored validation error the same way", function()
      local h = { ["Idempotency-Key"] = "bad-1" }
      local a = call(sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = { quantity = 0 } })
      local b = call(sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = { quantity = 0 } })
      assert_invalid(a, "quantity")
      assert.equal(a.body, b.body)
      assert.equal("true", b.headers["idempotent-replayed"])
    end)

    it("forgets a key whose request failed with a 5xx, so the retry runs", function()
      local p = sim.world.providers.resifactory
      local h = { ["Idempotency-Key"] = "crash-1" }
      p.check_generate = function() error("boom") end
      local ok, a = pcall(call, sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = { quantity = 2 } })
      p.check_generate = nil
      assert(ok, a)
      assert_error(a, 500, "internal_error")
      local b = call(sim, "POST", "/proxies", { key = KEYS.second, headers = h, json = { quantity = 2 } })
      assert.equal(200, b.status)
      assert.is_nil(b.headers["idempotent-replayed"])
      assert.equal(1, count_key("second", "crash-1"))
    end)

    it("rejects an Idempotency-Key longer than 255 characters", function()
      assert_invalid(call(sim, "POST", "/proxies", { key = KEYS.second, headers = { ["Idempotency-Key"] = ("k"):rep(256) },
        json = { quantity = 1 } }), "Idempotency-Key")
    end)
  end)

  describe("reads", function()
    it("GET /balance lists the key's pools, rounded to four decimals", function()
      local res = call(sim, "GET", "/balance", { key = KEYS.usage })
      assert.equal(200, res.status)
      assert.same({ balances = { walmart_premium = 7 } }, res:json())
      sim:usage { provider = "resifactory", api_key = KEYS.usage, pool = "walmart_premium", balance = 12.53426 }
      assert.same({ balances = { walmart_premium = 12.5343 } }, call(sim, "GET", "/balance", { key = KEYS.usage }):json())
      -- granting a pool through the admin API makes it accessible
      sim:usage { provider = "resifactory", api_key = KEYS.usage, pool = "retail_select", balance = 6 }
      assert.same({ balances = { walmart_premium = 12.5343, retail_select = 6 } },
        call(sim, "GET", "/balance", { key = KEYS.usage }):json())
    end)

    it("GET /usage returns top domains by bytes, 25 by default, limit 1..100", function()
      for i = 1, 30 do
        sim:usage { provider = "resifactory", api_key = KEYS.usage, -- asserts the 200
          domain = ("shop%02d.example"):format(i), add_bytes = i * 1073741824, add_requests = i * 100 }
      end
      local doc = call(sim, "GET", "/usage", { key = KEYS.usage }):json()
      assert.equal(25, #doc.top_domains)
      assert.same({ domain = "shop30.example", bytes = 30 * 1073741824, requests = 3000 }, doc.top_domains[1])
      assert.equal("shop06.example", doc.top_domains[25].domain)
      assert.equal(math.type(doc.top_domains[1].bytes), "integer")
      local five = call(sim, "GET", "/usage", { key = KEYS.usage, query = { limit = "5" } }):json().top_domains
      assert.equal(5, #five)
      assert.equal("shop26.example", five[5].domain)
      assert.equal(30, #call(sim, "GET", "/usage", { key = KEYS.usage, query = { limit = "100" } }):json().top_domains)
      assert.equal(1, #call(sim, "GET", "/usage", { key = KEYS.usage, query = { limit = "1" } }):json().top_domains)
      for _, v in ipairs({ "0", "101", "abc", "1.5", "", "-1" }) do
        assert_invalid(call(sim, "GET", "/usage", { key = KEYS.usage, query = { limit = v } }), "limit")
      end
      assert.equal('{"top_domains":[]}', call(sim, "GET", "/usage", { key = KEYS.read_only }).body)
    end)

    it("GET /pools lists the key's pools and the targeting values", function()
      local doc = call(sim, "GET", "/pools", { key = KEYS.second }):json()
      assert.equal(1, #doc.pools)
      local p = doc.pools[1]
      assert.equal("walmart_premium", p.id)
      assert.equal("Premium", p.label)
      assert.equal("proxy.resifactory.net", p.host)
      assert.same({ "rotating", "sticky" }, p.proxy_types)
      assert.same({ min = 1, max = 1440 }, doc.targeting.session_minutes)
      assert.same({}, doc.targeting.carriers)
      assert.equal("us", doc.targeting.countries[1])
      for _, s in ipairs({ "CA", "TX", "NY", "FL", "WA" }) do
        assert.truthy(table.concat(doc.targeting.us_states, ","):find(s, 1, true))
      end
      local ids = {}
      for _, q in ipairs(call(sim, "GET", "/pools", { key = KEYS.main }):json().pools) do ids[#ids + 1] = q.id end
      assert.same({ "walmart_premium", "retail_select" }, ids)
    end)

    it("GET /me returns the identity and a summary of the key, never the key itself", function()
      local res = call(sim, "GET", "/me", { key = KEYS.main })
      local doc = res:json()
      assert.equal(math.type(doc.id), "integer")
      assert.equal("acme", doc.username)
      assert.same({ "proxies:generate", "usage:read", "pools:read" }, doc.scopes)
      assert.equal(25, doc.balances.walmart_premium)
      assert.equal("My scraper", doc.key.name)
      assert.equal("rf_live_", doc.key.prefix)
      assert.equal(KEYS.main:sub(-4), doc.key.last4)
      assert.is_nil(res.body:find(KEYS.main, 1, true))
    end)
  end)

  describe("admin", function()
    it("shows state with keys masked as rf_live_…last4", function()
      local status, st, res = sim:admin("GET", "/state")
      assert.equal(200, status)
      for _, k in pairs(KEYS) do assert.is_nil(res.body:find(k, 1, true)) end
      local keys = {}
      for _, a in ipairs(st.providers.resifactory.accounts) do keys[a.username] = a.key end
      assert.equal("rf_live_…" .. KEYS.main:sub(-4), keys.acme)
    end)

    it("rejects bad admin changes with a message naming the field", function()
      local status, doc = sim:admin("POST", "/usage", { provider = "resifactory", api_key = "rf_live_nobody", pool = "walmart_premium", balance = 1 })
      assert.equal(404, status)
      status, doc = sim:admin("POST", "/usage", { provider = "resifactory", api_key = KEYS.main, pool = "walmart_premium", balance = -1 })
      assert.equal(400, status)
      assert.matches("balance", doc.error.message)
      status, doc = sim:admin("POST", "/usage", { provider = "resifactory", api_key = KEYS.main, pool = "nope", balance = 1 })
      assert.equal(404, status)
      assert.equal("pool_not_available", doc.error.code)
      status = sim:admin("POST", "/usage", { provider = "resifactory", api_key = KEYS.main })
      assert.equal(400, status)
    end)
  end)

  describe("the curl command line", function()
    -- Splits curl -i output into status, lower-case headers and body.
    local function parse(out)
      local head, body = out:match("^(.-)\r\n\r\n(.*)$")
      local status = tonumber(head:match("^HTTP/%S+ (%d+)"))
      local headers = {}
      for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do headers[k:lower()] = v end
      return status, headers, body
    end

    it("generates proxies and gets the headers", function()
      local r = sh(("curl -sS -i -X POST %s/proxies -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' "
        .. [[-d '{"country":"us","quantity":3,"format":"userpass"}']]):format(sim.urls.resifactory, KEYS.main))
      assert.equal(0, r.status, r.stderr)
      local status, headers, body = parse(r.stdout)
      assert.equal(200, status)
      assert.matches("^req_", headers["x-request-id"])
      assert.matches("^%d+$", headers["ratelimit-remaining"])
      local doc = json.decode(body)
      assert.equal(3, #lines(doc.proxies))
      assert.equal("userpass", doc.format)
    end)

    it("gets the error envelope for 401, 403, 400 and 404", function()
      local base = sim.urls.resifactory
      local cases = {
        { ("curl -sS -i %s/me"):format(base), 401, "unauthorized" },
        { ("curl -sS -i %s/pools -H 'Authorization: Bearer %s'"):format(base, KEYS.gen_only), 403, "insufficient_scope" },
        { ("curl -sS -i '%s/usage?limit=0' -H 'Authorization: Bearer %s'"):format(base, KEYS.main), 400, "invalid_request" },
        { ("curl -sS -i -X POST %s/proxies -H 'Authorization: Bearer %s' -d '{\"pool\":\"x\"}'"):format(base, KEYS.main), 404,
          "pool_not_available" },
      }
      for _, c in ipairs(cases) do
        local r = sh(c[1])
        local status, headers, body = parse(r.stdout)
        assert.equal(c[2], status, c[1])
        local doc = json.decode(body)
        assert.equal(c[3], doc.error.code)
        assert.equal(headers["x-request-id"], doc.error.request_id)
      end
    end)
  end)

  describe("the reference page's examples, pointed at the sandbox", function()
    local API, BEARER = "https://resifactory.net/api/v1", "Bearer rf_live_YOUR_KEY"

    -- The document's GET example for PATH, in curl and python.
    local function get_example(path)
      return {
        curl = ('curl -X GET %s/%s \\\n-H "Authorization: %s"'):format(API, path, BEARER),
        python = ('import requests\nres = requests.get(\n"%s/%s",\nheaders={"Authorization": "%s"},\n)\nprint(res.json())')
          :format(API, path, BEARER),
      }
    end

    -- The document's POST /proxies example with BODY (compact JSON, no comma
    -- inside a value), in curl and python (which writes a field a line).
    local function post_example(body)
      local fields = body:sub(2, -2):gsub('":', '": '):gsub(",", ",\n")
      return {
        curl = ('curl -X POST %s/proxies \\\n-H "Authorization: %s" \\\n-H "Content-Type: application/json" \\\n'
          .. "-d '%s'"):format(API, BEARER, body),
        python = ('import requests\nres = requests.post(\n"%s/proxies",\nheaders={"Authorization": "%s"},\njson={\n%s\n},\n)\n'
          .. "print(res.json())"):format(API, BEARER, fields),
      }
    end

    -- The examples of resifactory-api-v1.txt, each as the document writes it.
    local EXAMPLES = {
      quickstart = post_example('{"country":"us","quantity":10}'),
      sticky = post_example('{"country":"us","quantity":100,"proxyType":"sticky","sessionDuration":30,"format":"json"}'),
      rotating = post_example('{"country":"us","quantity":50,"proxyType":"rotating","format":"json"}'),
      balance = get_example("balance"),
      usage = get_example("usage?limit=5"),
      pools = get_example("pools"),
      me = get_example("me"),
    }

    -- An example with only the URL and the key changed.
    local function point(code)
      local out = code:gsub("https://resifactory%.net/api/v1", function() return sim.urls.resifactory end)
      out = out:gsub("rf_live_YOUR_KEY", KEYS.usage)
      return out
    end

    -- Runs an example (curl or python) and returns its output as a value.
    local function run(name, lang)
      local code = point(EXAMPLES[name][lang])
      assert.is_nil(code:find("resifactory.net/api", 1, true))
      local r
      if lang == "curl" then r = sh(code)
      else r = proc.run({ "/usr/bin/python3", "-c", code }, { env = { "NO_PROXY=*", "no_proxy=*" } }) end
      assert.equal(0, r.status, r.stderr)
      if lang == "curl" then return assert(json.decode(r.stdout)) end
      -- print(res.json()) writes a Python literal: read it back as JSON
      local conv = proc.run({ "/usr/bin/python3", "-c", "import ast, json, sys; print(json.dumps(ast.literal_eval(sys.stdin.read())))" },
        { stdin = r.stdout })
      assert.equal(0, conv.status, conv.stderr)
      return assert(json.decode(conv.stdout))
    end

    for _, lang in ipairs({ "curl", "python" }) do
      it(lang .. ": quickstart, 10 US proxies in list format", function()
        local doc = run("quickstart", lang)
        assert.equal(10, doc.count)
        assert.equal("us", doc.country)
        assert.is_false(doc.is_demo)
        assert.equal("walmart_premium", doc.pool)
        assert.equal("list", doc.format)
        local ls = lines(doc.proxies)
        assert.equal(10, #ls)
        assert.matches("^proxy%.resifactory%.net:8000:user%-usage%-country%-us:%w+$", ls[1])
      end)

      it(lang .. ": 100 sticky US proxies for 30 minutes in json format", function()
        local doc = run("sticky", lang)
        assert.equal(100, doc.count)
        assert.equal("json", doc.format)
        assert.equal(100, #doc.proxies)
        local p = doc.proxies[1]
        assert.same({ "host", "password", "port", "username" }, (function()
          local ks = {}
          for k in pairs(p) do ks[#ks + 1] = k end
          table.sort(ks)
          return ks
        end)())
        assert.equal(8000, p.port)
        assert.matches("%-session%-%w+%-sesstime%-30$", p.username)
        assert.not_equal(doc.proxies[1].username, doc.proxies[2].username)
      end)

      it(lang .. ": 50 rotating US proxies in json format", function()
        local doc = run("rotating", lang)
        assert.equal(50, #doc.proxies)
        assert.equal("user-usage-country-us", doc.proxies[50].username)
        assert.equal("proxy.resifactory.net", doc.proxies[50].host)
      end)

      it(lang .. ": balance", function()
        local doc = run("balance", lang)
        assert.is_table(doc.balances)
        assert.is_number(doc.balances.walmart_premium)
      end)

      it(lang .. ": usage?limit=5", function()
        sim:usage { provider = "resifactory", api_key = KEYS.usage, domain = "walmart.com",
          add_bytes = 1073741824, add_requests = 45023 }
        local doc = run("usage", lang)
        assert.equal(5, #doc.top_domains)
        for _, d in ipairs(doc.top_domains) do
          assert.is_string(d.domain)
          assert.equal(math.type(d.bytes), "integer")
          assert.equal(math.type(d.requests), "integer")
        end
      end)

      it(lang .. ": pools", function()
        local doc = run("pools", lang)
        assert.equal("walmart_premium", doc.pools[1].id)
        assert.equal("proxy.resifactory.net", doc.pools[1].host)
        assert.is_table(doc.pools[1].proxy_types)
        assert.equal(1440, doc.targeting.session_minutes.max)
        assert.is_table(doc.targeting.countries)
      end)

      it(lang .. ": me", function()
        local doc = run("me", lang)
        assert.equal("usage", doc.username)
        assert.equal("rf_live_", doc.key.prefix)
        assert.equal(KEYS.usage:sub(-4), doc.key.last4)
        assert.equal(3, #doc.scopes)
      end)
    end
  end)
end)

describe("resi sim: ResiFactory rate limits (2-second window)", function()
  local sim
  setup(function() sim = start { rate_window = 2 } end)
  teardown(function() sim:stop() end)

  it("refuses the 21st generate call with 429, Retry-After and RateLimit headers; reads and other keys go on", function()
    for i = 1, 20 do
      local res = call(sim, "POST", "/proxies", { key = KEYS.main, json = { quantity = 1 } })
      assert.equal(200, res.status)
      assert.equal("20", res.headers["ratelimit-limit"])
      assert.equal(tostring(20 - i), res.headers["ratelimit-remaining"])
    end
    local res = call(sim, "POST", "/proxies", { key = KEYS.main, json = { quantity = 1 } })
    assert_error(res, 429, "rate_limited")
    local retry = tonumber(res.headers["retry-after"])
    assert.equal(math.type(math.tointeger(retry)), "integer")
    assert.is_true(retry >= 1 and retry <= 2, res.headers["retry-after"])
    assert.equal("0", res.headers["ratelimit-remaining"])
    assert.equal("20", res.headers["ratelimit-limit"])
    local reset = tonumber(res.headers["ratelimit-reset"])
    assert.is_true(math.abs(reset - (core.now() + retry)) <= 1.5, ("reset %s now %s"):format(reset, core.now()))
    -- reads have their own window
    local read = call(sim, "GET", "/balance", { key = KEYS.main })
    assert.equal(200, read.status)
    assert.equal("120", read.headers["ratelimit-limit"])
    assert.equal("119", read.headers["ratelimit-remaining"])
    -- another key has its own window
    local other = call(sim, "POST", "/proxies", { key = KEYS.second, json = { quantity = 1 } })
    assert.equal(200, other.status)
    assert.equal("19", other.headers["ratelimit-remaining"])
    -- a refused call does not count: after Retry-After the key may call again
    assert.equal(429, call(sim, "POST", "/proxies", { key = KEYS.main, json = { quantity = 1 } }).status)
    task.sleep(retry + 0.05)
    local again = call(sim, "POST", "/proxies", { key = KEYS.main, json = { quantity = 1 } })
    assert.equal(200, again.status)
  end)

  it("refuses the 121st read in a window and frees it when the window has passed", function()
    local t0 = core.monotonic()
    for i = 1, 120 do
      local res = call(sim, "GET", i % 2 == 0 and "/me" or "/pools", { key = KEYS.usage })
      assert.equal(200, res.status)
    end
    assert.is_true(core.monotonic() - t0 < 2, "120 reads took longer than the window")
    local res = call(sim, "GET", "/usage", { key = KEYS.usage })
    assert_error(res, 429, "rate_limited")
    assert.equal("120", res.headers["ratelimit-limit"])
    assert.equal(200, call(sim, "POST", "/proxies", { key = KEYS.usage, json = { quantity = 1 } }).status)
    task.sleep(2.05)
    res = call(sim, "GET", "/usage", { key = KEYS.usage })
    assert.equal(200, res.status)
    assert.equal("119", res.headers["ratelimit-remaining"])
  end)

  it("counts idempotent replays as calls", function()
    local h = { ["Idempotency-Key"] = "replayed" }
    for _ = 1, 20 do
      assert.equal(200, call(sim, "POST", "/proxies", { key = KEYS.gen_only, headers = h, json = { quantity = 1 } }).status)
    end
    assert_error(call(sim, "POST", "/proxies", { key = KEYS.gen_only, headers = h, json = { quantity = 1 } }), 429, "rate_limited")
  end)

  it("counts calls without a valid key per client address", function()
    for _ = 1, 20 do
      assert.equal(401, call(sim, "POST", "/proxies", { key = "rf_live_guess00000000", json = {} }).status)
    end
    assert_error(call(sim, "POST", "/proxies", { key = "rf_live_guess11111111", json = {} }), 429, "rate_limited")
    -- a valid key is not affected
    assert.equal(200, call(sim, "POST", "/proxies", { key = KEYS.second, json = { quantity = 1 } }).status)
  end)

  it("follows limits changed through POST /_sim/config", function()
    local status = sim:admin("POST", "/config", { generate_limit = 3 })
    assert.equal(200, status)
    for i = 1, 3 do
      local r = call(sim, "POST", "/proxies", { key = KEYS.disabled, json = {} })
      assert.equal("3", r.headers["ratelimit-limit"])
      assert.equal(tostring(3 - i), r.headers["ratelimit-remaining"])
    end
    assert.equal(429, call(sim, "POST", "/proxies", { key = KEYS.disabled, json = {} }).status)
    sim:admin("POST", "/config", { generate_limit = 20 })
  end)
end)

describe("resi sim: ResiFactory traffic", function()
  local sim
  setup(function() sim = start { traffic = false } end)
  teardown(function() sim:stop() end)

  it("spends the balance of pools in use and reports the bytes per domain", function()
    -- a live batch puts walmart_premium in use for "second" (2.25 GB); "usage" generates nothing
    assert.is_false(call(sim, "POST", "/proxies", { key = KEYS.second, json = { quantity = 1 } }):json().is_demo)
    sim:admin("POST", "/traffic", { enabled = true, rate = 0.5 })
    local status = sim:admin("POST", "/clock", { advance = 3600 })
    sim:admin("POST", "/traffic", { enabled = false })
    assert.equal(200, status)
    local bal = call(sim, "GET", "/balance", { key = KEYS.second }):json().balances.walmart_premium
    assert.is_true(math.abs(bal - 1.125) < 0.01, tostring(bal)) -- half of 2.25 GB in one simulated hour
    assert.equal(7, call(sim, "GET", "/balance", { key = KEYS.usage }):json().balances.walmart_premium)
    local top = call(sim, "GET", "/usage", { key = KEYS.second }):json().top_domains
    assert.equal("walmart.com", top[1].domain)
    local total = 0
    for _, d in ipairs(top) do total = total + d.bytes end
    assert.is_true(math.abs(total / 1073741824 - (2.25 - bal)) < 0.001, tostring(total))
    assert.is_true(top[1].requests > 0)
    assert.same({}, call(sim, "GET", "/usage", { key = KEYS.usage }):json().top_domains)
  end)

  it("stops at zero, after which generate answers demo credentials", function()
    sim:admin("POST", "/traffic", { enabled = true, rate = 0.5 })
    sim:clock(3 * 3600)
    sim:admin("POST", "/traffic", { enabled = false })
    assert.equal(0, call(sim, "GET", "/balance", { key = KEYS.second }):json().balances.walmart_premium)
    assert.is_true(call(sim, "POST", "/proxies", { key = KEYS.second, json = { quantity = 1 } }):json().is_demo)
  end)
end)
