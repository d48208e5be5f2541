-- resi.providers, the uniform account model, against resi sim: the same
-- shapes at UnknownProxies and Oxylabs (deletions, token records), the
-- provider knowledge workflows use (acct.gateway shared with
-- proxylist.sticky, acct:new_credentials, acct:proxy_entry), stable
-- secret-free account ids, and accounts files checked whole.
local json = require "resi.json"
local providers = require "resi.providers"
local gateways = require "resi.providers.gateways"
local oxy_mod = require "resi.providers.oxylabs"
local proxylist = require "resi.proxylist"
local scratch = require("spec.support.files").scratch
local raises = require("spec.support.provider").raises

local GB = 1000000000

-- The fields a token record may have (resi.providers.token), and those it must.
local RECORD_FIELDS = { provider = true, id = true, username = true, password = true, status = true, used_bytes = true,
  limit_bytes = true, unlimited = true, expires_at = true, created_at = true, hours = true, raw = true }
local REQUIRED = { "provider", "id", "username", "status", "used_bytes", "unlimited", "raw" }

-- Asserts that r is a token record of provider with integer bytes.
local function assert_record(r, provider)
  for k in pairs(r) do assert.is_true(RECORD_FIELDS[k], "unexpected field " .. tostring(k)) end
  for _, k in ipairs(REQUIRED) do assert.is_not_nil(r[k], k) end
  assert.are.equal(provider, r.provider)
  assert.is_string(r.id)
  assert.is_string(r.username)
  assert.is_string(r.status)
  assert.is_boolean(r.unlimited)
  assert.are.equal("integer", math.type(r.used_bytes))
  if r.unlimited then assert.is_nil(r.limit_bytes) else assert.are.equal("integer", math.type(r.limit_bytes)) end
  if r.expires_at ~= nil then assert.are.equal("integer", math.type(r.expires_at)) end
  assert.is_table(r.raw)
end

-- Reads an accounts document (text) with providers.select_accounts: the
-- path and its two results.
local function select_text(text, names)
  local path = scratch(text)
  local specs, err = providers.select_accounts(path, names)
  os.remove(path)
  return path, specs, err
end

describe("resi.providers account model", function()
  local sim, up, oxy

  setup(function()
    sim = require("spec.support.sim").start { seed = 31 }
    up = sim:account("unknownproxies")
    oxy = sim:account("oxylabs")
  end)
  teardown(function() sim:stop() end)

  describe("delete_token", function()
    it("returns {id, deleted, already} at UnknownProxies and Oxylabs, also for an already deleted token", function()
      for _, acct in ipairs { up, oxy } do
        local t = acct:create_token { limit_bytes = GB }
        assert.are.same({ id = t.id, deleted = true, already = false }, acct:delete_token(t.id), acct.name)
        assert.are.same({ id = t.id, deleted = true, already = true }, acct:delete_token(t.id), acct.name)
      end
    end)

    it("counts a delete whose answer was lost as done, with the same shape", function()
      for _, case in ipairs { { up, "DELETE /resi/token" }, { oxy, "DELETE /users/:u/sub-users/:id" } } do
        local acct = case[1]
        local t = acct:create_token { limit_bytes = GB }
        sim:fault { provider = acct.name, route = case[2], kind = "commit_lost" }
        local r = acct:delete_token(t.id)
        assert.are.same({ id = t.id, deleted = true, already = true }, r, acct.name)
        for _, left in ipairs(acct:tokens()) do assert.are_not.equal(t.id, left.id) end
      end
    end)
  end)

  it("gives token records the same fields with integer bytes at both providers", function()
    sim:usage { provider = "oxylabs", id = tonumber(oxy:tokens()[1].id), add_gb = 0.123456789 }
    local seen = {}
    for _, acct in ipairs { up, oxy } do
      local list = acct:tokens()
      assert.is_true(#list >= 3, acct.name)
      for _, r in ipairs(list) do
        assert_record(r, acct.name)
        seen[acct.name .. (r.unlimited and ":unlimited" or ":limited")] = true
      end
      local made = acct:create_token { limit_bytes = 2 * GB }
      assert_record(made, acct.name)
      assert.are.equal(2 * GB, made.limit_bytes)
      assert.are.equal(0, made.used_bytes)
      assert.is_false(made.unlimited)
      assert_record(acct:token(made.id), acct.name)
    end
    assert.are.same({ ["unknownproxies:limited"] = true, ["oxylabs:limited"] = true, ["oxylabs:unlimited"] = true }, seen)
    local u = oxy:create_token { unlimited = true }
    assert_record(u, "oxylabs")
    assert.is_true(u.unlimited)
    assert.are.equal(json.null, u.raw.traffic_limit)
  end)

  describe("acct.gateway", function()
    it("is each provider's gateway, from resi.providers.gateways", function()
      assert.are.same({ host = "tickets-us-s.reserve2.resi.unknownproxies.com", port = 14004 }, up.gateway)
      assert.are.same({ host = "pr.oxylabs.io", port = 7777 }, oxy.gateway)
      assert.are.same({ host = "premium.resifactory.net", port = 7777 }, sim:account("resifactory").gateway)
      assert.are.same(gateways.of("unknownproxies"), up.gateway)
      assert.are.same(gateways.oxylabs, oxy.gateway)
      assert.are.same(gateways.resifactory, sim:account("resifactory").gateway)
      local fr = sim:account("unknownproxies", { pool = "tickets-fr-s" })
      assert.are.same({ host = "tickets-fr-s.reserve2.resi.unknownproxies.com", port = 14018 }, fr.gateway)
      local own = sim:account("oxylabs", { gateway = "gw.example.net:8000" })
      assert.are.same({ host = "gw.example.net", port = 8000 }, own.gateway)
      own.gateway.port = 1 -- each account has its own copy
      assert.are.equal(7777, sim:account("oxylabs").gateway.port)
      assert.are.equal(7777, gateways.oxylabs.port)
    end)

    it("is where proxylist.sticky points, with the same proxy username", function()
      local t = up:tokens()[1]
      local list = proxylist.sticky { provider = "unknownproxies", username = t.username, password = t.password,
        pool = gateways.UNKNOWNPROXIES_POOL, sessions = 2 }
      local entry = assert(up:proxy_entry(t))
      for _, e in ipairs(list) do
        assert.are.equal(up.gateway.host, e.host)
        assert.are.equal(up.gateway.port, e.port)
        assert.are.equal(entry.user, e.user)
      end
      local fr = sim:account("unknownproxies", { pool = "tickets-fr-s" })
      list = proxylist.sticky { provider = "unknownproxies", username = t.username, password = t.password,
        pool = "tickets-fr-s", sessions = 1 }
      assert.are.same({ fr.gateway.host, fr.gateway.port }, { list[1].host, list[1].port })
      local s = oxy:create_token { limit_bytes = GB }
      list = proxylist.sticky { provider = "oxylabs", username = s.username, password = s.password, sessions = 1 }
      entry = assert(oxy:proxy_entry(s))
      assert.are.same({ oxy.gateway.host, oxy.gateway.port }, { list[1].host, list[1].port })
      assert.are.equal(entry.user .. "-sessid-", list[1].user:sub(1, #entry.user + 8))
    end)
  end)

  describe("acct:new_credentials", function()
    it("makes UnknownProxies credentials of 8 letters and digits that create and modify accept", function()
      local c = up:new_credentials()
      assert.matches("^%w%w%w%w%w%w%w%w$", c.username)
      assert.matches("^%w%w%w%w%w%w%w%w$", c.password)
      local client = up.client
      local t = client:create_token { dataLimit = GB, username = c.username }
      assert.are.equal(c.username, t.username)
      assert.are.equal(c.password, client:modify_token(t.token, { password = c.password }).password)
      local d = up:new_credentials()
      local r = up:create_token { limit_bytes = GB, username = d.username, password = d.password }
      assert.are.same({ d.username, d.password }, { r.username, r.password })
      assert.are.equal(d.password, up:token(r.id).password)
    end)

    it("makes Oxylabs credentials that create_sub_user accepts", function()
      for _ = 1, 3 do
        local c = oxy:new_credentials()
        assert.matches("^[%w_]+$", c.username)
        assert.are.equal(c.password, oxy_mod.check_password(c.password))
        local s = oxy.client:create_sub_user { username = c.username, password = c.password, traffic_limit = 1 }
        assert.are.equal(c.username, s.username)
      end
    end)

    it("derives a different username from each of 10,000 seeds (token ids and their retries)", function()
      for _, acct in ipairs { up, oxy } do
        local seen, distinct = {}, 0
        for i = 1, 10000 do
          local u = acct:new_credentials({ seed = ("%012d\0%d"):format(i * 7919, i % 3 + 1) }).username
          if not seen[u] then seen[u], distinct = true, distinct + 1 end
        end
        assert.are.equal(10000, distinct, acct.name)
      end
    end)

    it("derives usernames from the account and the seed; passwords never repeat", function()
      for _, acct in ipairs { up, oxy } do
        local a = acct:new_credentials { seed = "token-1" }
        assert.are.equal(a.username, acct:new_credentials({ seed = "token-1" }).username, acct.name)
        assert.are.equal(a.username, sim:account(acct.name):new_credentials({ seed = "token-1" }).username, acct.name)
        assert.are_not.equal(a.username, acct:new_credentials({ seed = "token-2" }).username, acct.name)
        assert.are_not.equal(a.username, acct:new_credentials().username, acct.name)
        local other = providers.open(acct.name, { username = "someone_else", password = "Xx1#xxxxxxxxxx",
          base_url = sim.urls[acct.name] })
        assert.are_not.equal(a.username, other:new_credentials({ seed = "token-1" }).username, acct.name)
        local passwords = {}
        for i = 1, 50 do
          local p = acct:new_credentials({ seed = "token-1" }).password
          assert.is_nil(passwords[p], acct.name .. " repeated a password at call " .. i)
          passwords[p] = true
        end
      end
    end)

    it("is unsupported where there are no proxy users (ResiFactory)", function()
      local err = raises(function() return sim:account("resifactory"):new_credentials() end)
      assert.are.equal("unsupported", err.kind)
    end)
  end)

  describe("acct:proxy_entry", function()
    it("writes Oxylabs' customer- username, and says why when the password is unknown", function()
      local s = oxy:create_token { limit_bytes = GB }
      assert.are.same({ scheme = "http", host = "pr.oxylabs.io", port = 7777, user = "customer-" .. s.username,
        pass = s.password }, oxy:proxy_entry(s))
      local listed
      for _, r in ipairs(oxy:tokens()) do if r.id == s.id then listed = r end end
      assert.is_nil(listed.password) -- sub_users never return passwords
      local entry, why = oxy:proxy_entry(listed)
      assert.is_nil(entry)
      assert.matches("password", why)
      assert.matches("Oxylabs never returns", why, 1, true)
    end)

    it("gives an UnknownProxies token's own username and password at the gateway", function()
      local t = up:tokens()[1]
      assert.are.same({ scheme = "http", host = up.gateway.host, port = up.gateway.port, user = t.username,
        pass = t.password }, up:proxy_entry(t))
      local entry, why = up:proxy_entry { username = t.username }
      assert.is_nil(entry)
      assert.is_string(why)
    end)
  end)

  it("has a stable id that never holds an API key", function()
    assert.are.equal("unknownproxies:" .. sim.accounts.unknownproxies[1].username, up.id)
    assert.are.equal("oxylabs:" .. sim.accounts.oxylabs[1].username, oxy.id)
    assert.are.equal(up.id, sim:account("unknownproxies").id)
    local key = sim.accounts.resifactory[1].api_key
    local rf = sim:account("resifactory")
    assert.are.equal(rf.id, sim:account("resifactory").id)
    assert.matches("^resifactory:key%-%x+$", rf.id)
    for _, s in ipairs { rf.id, rf.label, tostring(rf) } do
      assert.is_nil(s:find(key, 1, true), s)
      assert.is_nil(s:find(key:sub(9, 20), 1, true), s) -- nor a long part of it
    end
    local other = providers.open("resifactory", { api_key = key .. "x", base_url = sim.urls.resifactory })
    assert.are_not.equal(rf.id, other.id)
  end)

  describe("accounts files (providers.select_accounts)", function()
    it("names an unknown top-level key, an unknown field and a missing field with the file", function()
      local path, specs, err = select_text('{"unknownproxy": []}')
      assert.is_nil(specs)
      assert.truthy(err:find(path .. ": unknownproxy: unknown key", 1, true), err)
      path, specs, err = select_text('{"unknownproxies": [{"username": "a", "password": "b", "passwrd": "c"}]}')
      assert.is_nil(specs)
      assert.truthy(err:find(path .. ": unknownproxies[1].passwrd: unknown field", 1, true), err)
      path, specs, err = select_text('{"oxylabs": [{"username": "a"}]}')
      assert.is_nil(specs)
      assert.truthy(err:find(path .. ": oxylabs[1].password is required", 1, true), err)
      path, specs, err = select_text('{"resifactory": [{"apikey": "rf_live_Secret123"}]}')
      assert.is_nil(specs)
      assert.truthy(err:find(path .. ": resifactory[1].api_key is required", 1, true), err)
      assert.truthy(err:find(path .. ": resifactory[1].apikey: unknown field", 1, true), err)
      assert.is_nil(err:find("rf_live_Secret123", 1, true))
    end)

    it("refuses wrong types, naming what is wrong", function()
      local cases = {
        { '{"unknownproxies": [{"username": 5, "password": "b"}]}', "unknownproxies[1].username is required (a string)" },
        { '{"oxylabs": [{"username": "a", "password": ""}]}', "oxylabs[1].password is required (a string)" },
        { '{"unknownproxies": ["x"]}', "unknownproxies[1] must be an object" },
        { '{"unknownproxies": {"username": "a", "password": "b"}}', "unknownproxies must be an array of accounts" },
        { '{"oxylabs": "main"}', "oxylabs must be an array of accounts" },
        { "[]", "must be a JSON object" },
        { '{"oxylabs": [', "not JSON" },
      }
      for _, c in ipairs(cases) do
        local path, specs, err = select_text(c[1])
        assert.is_nil(specs, c[1])
        assert.truthy(err:find(path .. ": ", 1, true), err)
        assert.truthy(err:find(c[2], 1, true), err)
      end
    end)

    it("refuses an optional field of the wrong type or a bad gateway when the file is read, naming it", function()
      local cases = {
        { { gateway = 8000 }, "unknownproxies[1].gateway must be a non-empty string" },
        { { base_url = 5 }, "unknownproxies[1].base_url must be a non-empty string" },
        { { pool = 7 }, "unknownproxies[1].pool must be a non-empty string" },
        { { pool = "nope" }, 'unknownproxies[1].pool: pool "nope" is not a known unknownproxies pool' },
        { { gateway = "gw:99999" }, "unknownproxies[1].gateway: " },
      }
      for _, c in ipairs(cases) do
        local path, specs, err = select_text(json.encode { unknownproxies = { sim:credentials("unknownproxies", c[1]) } })
        assert.is_nil(specs, c[2])
        assert.truthy(err:find(path .. ": " .. c[2], 1, true), err)
      end
    end)

    it("accepts the model's gateway and pool fields and hands them to providers.open", function()
      local doc = { unknownproxies = { sim:credentials("unknownproxies", { pool = "tickets-fr-s" }),
        sim:credentials("unknownproxies", { gateway = "gw.example.net:8000" }) },
        oxylabs = { sim:credentials("oxylabs", { gateway = "oxy.example.net:9000" }) },
        resifactory = { sim:credentials("resifactory") } }
      local _, specs, err = select_text(json.encode(doc))
      assert.is_nil(err, err)
      assert.are.equal(4, #specs)
      local got = {}
      for i, s in ipairs(specs) do
        local acct = providers.open(s.name, s.opts)
        got[i] = { s.name, s.label, acct.gateway.host, acct.gateway.port }
      end
      local user = sim.accounts.unknownproxies[1].username
      assert.are.same({
        { "unknownproxies", user, "tickets-fr-s.reserve2.resi.unknownproxies.com", 14018 },
        { "unknownproxies", user, "gw.example.net", 8000 },
        { "oxylabs", sim.accounts.oxylabs[1].username, "oxy.example.net", 9000 },
        { "resifactory", "key " .. providers.mask(sim.accounts.resifactory[1].api_key), "premium.resifactory.net", 7777 },
      }, got)
      -- the accounts are usable: a file's account reads the sandbox
      assert.is_true(#providers.open(specs[1].name, specs[1].opts):tokens() >= 3)
      -- names keeps only those providers
      _, specs = select_text(json.encode(doc), { "oxylabs" })
      assert.are.equal(1, #specs)
      assert.are.equal("oxylabs", specs[1].name)
    end)

    it("errors on an unknown provider name", function()
      local _, specs, err = select_text('{"oxylabs": []}', { "oxylabs", "brightdata" })
      assert.is_nil(specs)
      assert.are.equal('unknown provider "brightdata" (known: unknownproxies, oxylabs, resifactory)', err)
      specs, err = providers.select_accounts(nil, { "unknownproxy" })
      assert.is_nil(specs)
      assert.matches('unknown provider "unknownproxy"', err, 1, true)
    end)
  end)
end)
