-- resi sim, UnknownProxies: every endpoint and documented rule through real
-- HTTP (resi.http and the curl command line), the token lifecycle under the
-- simulated clock and traffic generator.
local http = require "resi.http"
local json = require "resi.json"
local proc = require "spec.support.proc"

local GB = 1000000000

describe("resi sim: UnknownProxies", function()
  local sim, base, auth, acct

  -- An API call with the account's Basic credentials.
  local function call(method, path, body, headers)
    local res = assert(http.request { method = method, url = base .. path, json = body,
      headers = headers or { Authorization = auth } })
    return res, res:json()
  end

  -- Creates a token and returns it (asserting 200).
  local function create(fields)
    local res, t = call("POST", "/resi/token/create", fields)
    assert.are.equal(200, res.status, res.body)
    return t
  end

  -- Asserts a 400 naming the rule.
  local function rejects(method, path, body, pattern)
    local res, err = call(method, path, body)
    assert.are.equal(400, res.status, res.body)
    assert.are.equal("validation_error", err.error)
    assert.matches(pattern, err.message)
  end

  setup(function()
    sim = require("spec.support.sim").start { seed = 11, provider = "unknownproxies" }
    base = sim.urls.unknownproxies
    acct = sim.accounts.unknownproxies[1]
    auth = "Basic " .. require("resi.base64").encode(acct.username .. ":" .. acct.password)
  end)

  teardown(function() sim:stop() end)

  describe("create", function()
    it("returns the documented token object, active, with generated 8-character credentials", function()
      local t = create { dataLimit = 2 * GB }
      assert.are.equal("active", t.status)
      assert.are.equal("user", t.authType)
      assert.matches("^%w%w%w%w%w%w%w%w$", t.username)
      assert.matches("^%w%w%w%w%w%w%w%w$", t.password)
      assert.matches("^%w+$", t.token)
      assert.are.equal(2 * GB, t.dataLimit)
      assert.are.equal(0, t.dataUsage)
      assert.are.equal(0, t.durationHours)
      assert.is_true(json.is_array(t.allowedPools))
      assert.are.equal(0, #t.allowedPools)
      assert.are.equal(t.createdAt, t.updatedAt)
      assert.is_true(math.abs(t.createdAt - os.time()) < 5)
    end)

    it("writes allowedPools as [] and integers as digits on the wire", function()
      local res = call("POST", "/resi/token/create", { dataLimit = 100 * GB })
      assert.matches('"allowedPools":%[%]', res.body)
      assert.matches('"dataLimit":100000000000', res.body)
    end)

    it("keeps a chosen 8-character username and refuses it twice", function()
      local t = create { dataLimit = GB, username = "abcd1234" }
      assert.are.equal("abcd1234", t.username)
      local res, err = call("POST", "/resi/token/create", { dataLimit = GB, username = "abcd1234" })
      assert.are.equal(409, res.status)
      assert.are.equal("username_taken", err.error)
    end)

    it("requires dataLimit as whole gigabytes of at least 1 GB", function()
      rejects("POST", "/resi/token/create", {}, "dataLimit is required")
      rejects("POST", "/resi/token/create", { dataLimit = 0 }, "at least 1000000000")
      rejects("POST", "/resi/token/create", { dataLimit = 1000000 }, "at least 1000000000")
      rejects("POST", "/resi/token/create", { dataLimit = 1500000000 }, "multiple of 1000000000")
      rejects("POST", "/resi/token/create", { dataLimit = "5000000000" }, "integer number of bytes")
      rejects("POST", "/resi/token/create", { dataLimit = 1000000000.5 }, "integer number of bytes")
    end)

    it("requires a username of exactly 8 characters", function()
      rejects("POST", "/resi/token/create", { dataLimit = GB, username = "short7c" }, "username must be exactly 8")
      rejects("POST", "/resi/token/create", { dataLimit = GB, username = "ninechars" }, "username must be exactly 8")
      rejects("POST", "/resi/token/create", { dataLimit = GB, username = 12345678 }, "username must be exactly 8")
    end)

    it("requires durationHours 0..87600 and refuses a chosen password", function()
      rejects("POST", "/resi/token/create", { dataLimit = GB, durationHours = -1 }, "durationHours must be an integer from 0 to 87600")
      rejects("POST", "/resi/token/create", { dataLimit = GB, durationHours = 87601 }, "durationHours")
      rejects("POST", "/resi/token/create", { dataLimit = GB, durationHours = 1.5 }, "durationHours")
      assert.are.equal(87600, create { dataLimit = GB, durationHours = 87600 }.durationHours)
      rejects("POST", "/resi/token/create", { dataLimit = GB, password = "abcdefgh" }, "password cannot be specified")
    end)

    it("answers a body that is not a JSON object with 400", function()
      local res = assert(http.request { method = "POST", url = base .. "/resi/token/create",
        headers = { Authorization = auth, ["Content-Type"] = "application/json" }, body = "{nope" })
      assert.are.equal(400, res.status)
      assert.matches("not valid JSON", res:json().message)
      res = assert(http.request { method = "POST", url = base .. "/resi/token/create",
        headers = { Authorization = auth }, body = "[1,2]" })
      assert.are.equal(400, res.status)
    end)
  end)

  describe("auth and routing", function()
    it("answers 401 without or with wrong Basic credentials", function()
      local res, err = call("GET", "/resi/tokens", nil, {})
      assert.are.equal(401, res.status)
      assert.are.equal("unauthorized", err.error)
      assert.matches("^Basic", res.headers["www-authenticate"])
      res = call("GET", "/resi/tokens", nil, { Authorization = "Basic " .. "d3Jvbmc6d3Jvbmc=" })
      assert.are.equal(401, res.status)
    end)

    it("answers 404 for unknown paths and 405 for a wrong method", function()
      assert.are.equal(404, (call("GET", "/resi/nothing")).status)
      assert.are.equal(405, (call("PUT", "/resi/token", { token = "x" })).status)
    end)
  end)

  describe("modify", function()
    it("needs at least one field and an existing token", function()
      local t = create { dataLimit = GB }
      rejects("PATCH", "/resi/token", { token = t.token }, "at least one of")
      rejects("PATCH", "/resi/token", { dataLimit = 2 * GB }, "token is required")
      local res, err = call("PATCH", "/resi/token", { token = "doesnotexist", dataLimit = 2 * GB })
      assert.are.equal(404, res.status)
      assert.are.equal("token_not_found", err.error)
    end)

    it("changes the password (exactly 8 characters) and updatedAt", function()
      local t = create { dataLimit = GB }
      sim.world.clock:advance(10)
      local res, t2 = call("PATCH", "/resi/token", { token = t.token, password = "n3wPass8" })
      assert.are.equal(200, res.status)
      assert.are.equal("n3wPass8", t2.password)
      assert.is_true(t2.updatedAt >= t.updatedAt + 10)
      rejects("PATCH", "/resi/token", { token = t.token, password = "seven77" }, "password must be exactly 8")
      rejects("PATCH", "/resi/token", { token = t.token, password = "nine99999" }, "password must be exactly 8")
    end)

    it("raises dataLimit in whole gigabytes and never lowers it", function()
      local t = create { dataLimit = 5 * GB }
      local _, t2 = call("PATCH", "/resi/token", { token = t.token, dataLimit = 7 * GB })
      assert.are.equal(7 * GB, t2.dataLimit)
      rejects("PATCH", "/resi/token", { token = t.token, dataLimit = 6 * GB }, "cannot be decreased")
      rejects("PATCH", "/resi/token", { token = t.token, dataLimit = 7500000000 }, "multiple of 1000000000")
    end)

    it("checks allowedPools against the known pools and keeps [] for all pools", function()
      local t = create { dataLimit = GB }
      local _, t2 = call("PATCH", "/resi/token", { token = t.token, allowedPools = { "us-s", "us-r" } })
      assert.are.same({ "us-s", "us-r" }, { t2.allowedPools[1], t2.allowedPools[2] })
      rejects("PATCH", "/resi/token", { token = t.token, allowedPools = { "us-s", "mars-x" } }, 'unknown pool "mars%-x"')
      rejects("PATCH", "/resi/token", { token = t.token, allowedPools = "us-s" }, "must be an array")
      local res = call("PATCH", "/resi/token", { token = t.token, allowedPools = json.array() })
      assert.matches('"allowedPools":%[%]', res.body)
    end)

    it("counts durationHours from createdAt, so a later change can expire the token at once", function()
      local t = create { dataLimit = GB }
      sim.world.clock:advance(3 * 3600)
      local _, t2 = call("PATCH", "/resi/token", { token = t.token, durationHours = 2 })
      assert.are.equal("expired", t2.status)
      local _, t3 = call("PATCH", "/resi/token", { token = t.token, durationHours = 4 })
      assert.are.equal("active", t3.status)
      rejects("PATCH", "/resi/token", { token = t.token, durationHours = 87601 }, "durationHours")
    end)
  end)

  describe("lifecycle", function()
    it("expires a token when its data is used up, and raising the limit revives it", function()
      local t = create { dataLimit = GB }
      local status, v = sim:admin("POST", "/usage", { id = t.token, bytes = GB })
      assert.are.equal(200, status)
      assert.are.equal("expired", v.status)
      local _, got = call("GET", "/resi/token?token=" .. t.token)
      assert.are.equal("expired", got.status)
      assert.are.equal(GB, got.dataUsage)
      local _, t2 = call("PATCH", "/resi/token", { token = t.token, dataLimit = 2 * GB })
      assert.are.equal("active", t2.status)
    end)

    it("expires a token when its hours have passed on the simulated clock", function()
      local t = create { dataLimit = GB, durationHours = 1 }
      sim.world.clock:advance(3599)
      assert.are.equal("active", select(2, call("GET", "/resi/token?token=" .. t.token)).status)
      local status = sim:admin("POST", "/clock", { advance = 2 })
      assert.are.equal(200, status)
      assert.are.equal("expired", select(2, call("GET", "/resi/token?token=" .. t.token)).status)
    end)

    it("deletes only active tokens; a deleted token stays retrievable and cannot be modified", function()
      local t = create { dataLimit = GB }
      local res, body = call("DELETE", "/resi/token", { token = t.token })
      assert.are.equal(200, res.status)
      assert.are.same({ message = "success" }, body)
      local _, got = call("GET", "/resi/token?token=" .. t.token)
      assert.are.equal("deleted", got.status)
      local res2, err = call("DELETE", "/resi/token", { token = t.token })
      assert.are.equal(409, res2.status)
      assert.are.equal("token_not_active", err.error)
      local res3, err3 = call("PATCH", "/resi/token", { token = t.token, dataLimit = 2 * GB })
      assert.are.equal(409, res3.status)
      assert.are.equal("token_deleted", err3.error)
      local e = create { dataLimit = GB }
      sim:usage { id = e.token, bytes = GB }
      assert.are.equal(409, (call("DELETE", "/resi/token", { token = e.token })).status)
    end)

    it("lists the account's tokens and gives daily usage on request", function()
      local t = create { dataLimit = 10 * GB }
      sim:usage { id = t.token, add_bytes = 3 * GB }
      local _, got = call("GET", "/resi/token?token=" .. t.token .. "&usage=true")
      assert.are.equal(1, #got.usage)
      assert.are.equal(os.date("!%Y-%m-%d", math.floor(sim.world.clock:now())), got.usage[1].date)
      assert.are.equal(3 * GB, got.usage[1].usage)
      local _, plain = call("GET", "/resi/token?token=" .. t.token)
      assert.is_nil(plain.usage)
      local _, list = call("GET", "/resi/tokens")
      local found = false
      for _, x in ipairs(list.tokens) do if x.token == t.token then found = x.dataUsage == 3 * GB end end
      assert.is_true(found)
      assert.is_true(#list.tokens >= 4) -- the three seeded tokens and this one
    end)

    it("traffic carries active tokens past 90% and then to expired", function()
      local t = create { dataLimit = GB }
      sim.world.config.traffic = true
      sim.world.config.traffic_rate = 1 -- each token's limit per simulated hour (times its speed)
      sim.world.clock:set_speed(3600) -- an hour a second
      local seen_90, seen_expired = false, false
      for _ = 1, 60 do
        resi.sleep(0.05)
        local _, got = call("GET", "/resi/token?token=" .. t.token)
        if got.dataUsage >= 0.9 * got.dataLimit then seen_90 = true end
        if got.status == "expired" then
          seen_expired = true
          assert.are.equal(got.dataLimit, got.dataUsage)
          break
        end
      end
      sim.world.clock:set_speed(1)
      sim.world.config.traffic = false
      assert.is_true(seen_90)
      assert.is_true(seen_expired)
    end)
  end)

  describe("faults", function()
    -- Arms one fault on token creation.
    local function arm(spec)
      spec.route = spec.route or "POST /resi/token/create"
      return sim:fault(spec)
    end

    -- How many tokens the account has.
    local function count()
      return #select(2, call("GET", "/resi/tokens")).tokens
    end

    it("answers an injected 5xx without creating anything", function()
      local before = count()
      arm { kind = "error", status = 502 }
      assert.are.equal(502, (call("POST", "/resi/token/create", { dataLimit = GB })).status)
      assert.are.equal(before, count())
      assert.are.equal(200, (call("POST", "/resi/token/create", { dataLimit = GB })).status)
    end)

    it("resets the connection, truncates, garbles and rate-limits on request", function()
      arm { kind = "reset" }
      local res, _, code = http.request { method = "POST", url = base .. "/resi/token/create",
        json = { dataLimit = GB }, headers = { Authorization = auth } }
      assert.is_nil(res)
      assert.are.equal("reset", code)
      arm { kind = "truncate" }
      res, _, code = http.request { method = "POST", url = base .. "/resi/token/create",
        json = { dataLimit = GB }, headers = { Authorization = auth } }
      assert.is_nil(res)
      assert.are.equal("truncated", code)
      arm { kind = "malformed" }
      res = call("POST", "/resi/token/create", { dataLimit = GB })
      assert.are.equal(200, res.status)
      assert.is_nil((res:json()))
      arm { kind = "rate_limit", retry_after = 7 }
      res = call("POST", "/resi/token/create", { dataLimit = GB })
      assert.are.equal(429, res.status)
      assert.are.equal("7", res.headers["retry-after"])
    end)

    it("commits and then loses the response (commit_lost)", function()
      local before = count()
      arm { kind = "commit_lost" }
      local res, _, code = http.request { method = "POST", url = base .. "/resi/token/create",
        json = { dataLimit = GB }, headers = { Authorization = auth } }
      assert.is_nil(res)
      assert.are.equal("reset", code)
      assert.are.equal(before + 1, count())
    end)

    it("adds latency, fires count times, and lists and clears rules", function()
      arm { kind = "latency", ms = 150, route = "GET /resi/tokens", count = 2 }
      local t0 = resi.monotonic()
      call("GET", "/resi/tokens")
      assert.is_true(resi.monotonic() - t0 >= 0.14)
      local _, armed = sim:admin("GET", "/faults")
      assert.are.equal(1, #armed.faults)
      assert.are.equal(1, armed.faults[1].count)
      assert.are.equal(1, sim:clear_faults())
      local status, err = sim:admin("POST", "/faults", { kind = "explode" })
      assert.are.equal(400, status)
      assert.matches("kind must be one of", err.error.message)
    end)
  end)

  describe("from the curl command line", function()
    it("creates, retrieves and deletes a token", function()
      local userpass = acct.username .. ":" .. acct.password
      local r = proc.run { "curl", "-sS", "-X", "POST", base .. "/resi/token/create", "-u", userpass,
        "-H", "Content-Type: application/json", "-d", '{"dataLimit":3000000000,"durationHours":24}' }
      assert.are.equal(0, r.status, r.stderr)
      local t = json.decode(r.stdout)
      assert.are.equal(3 * GB, t.dataLimit)
      assert.are.equal(24, t.durationHours)
      r = proc.run { "curl", "-sS", "-u", userpass, base .. "/resi/token?token=" .. t.token .. "&usage=true" }
      assert.are.equal(t.token, json.decode(r.stdout).token)
      r = proc.run { "curl", "-sS", "-X", "DELETE", base .. "/resi/token", "-u", userpass,
        "-H", "Content-Type: application/json", "-d", json.encode { token = t.token } }
      assert.are.equal('{"message":"success"}', r.stdout)
      r = proc.run { "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", base .. "/resi/tokens" }
      assert.are.equal("401", r.stdout)
    end)
  end)
end)
