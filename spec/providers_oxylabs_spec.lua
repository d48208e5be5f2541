-- resi.providers.oxylabs against resi sim: login and JWT renewal, every
-- method, every documented rule checked before a request is spent, and
-- the common account model over sub-users.
local json = require "resi.json"
local oxy_mod = require "resi.providers.oxylabs"
local providers = require "resi.providers"
local common = require "resi.providers.common"

local raises = require("spec.support.provider").raises
local refuses_each = require("spec.support.provider").refuses_each

describe("resi.providers.oxylabs", function()
  local sim, oxy, acct

  setup(function()
    sim = require("spec.support.sim").start { seed = 23, provider = "oxylabs" }
    acct = sim.accounts.oxylabs[1]
    oxy = sim:client()
  end)
  teardown(function() sim:stop() end)

  it("logs in on first use and manages a sub-user end to end", function()
    local u = oxy:create_sub_user { username = "alpha_1", password = "Abcdef1#ghijk", traffic_limit = 5, auto_disable = true }
    assert.are.equal(acct.user_id, oxy.user_id)
    assert.are.equal("alpha_1", u.username)
    assert.is_number(u.id)
    assert.are.equal(5, u.traffic_limit)
    local found = false
    for _, s in ipairs(oxy:sub_users()) do found = found or s.id == u.id end
    assert.is_true(found)
    local stats = oxy:sub_user_stats(u.id, { type = "month" })
    assert.are.equal(0, stats.traffic)
    local up = oxy:update_sub_user(u.id, { traffic_limit = json.null })
    assert.are.equal(json.null, up.traffic_limit)
    assert.are.equal("disabled", oxy:update_sub_user(u.id, { status = "disabled" }).status)
    assert.is_table(oxy:target_stats(u.id, os.date("!%Y-%m-%d", math.floor(sim.world.clock:now()))).results)
    assert.is_number(oxy:client_stats().traffic)
    assert.is_true(oxy:delete_sub_user(u.id))
    local ok, note = oxy:delete_sub_user(u.id) -- a repeated delete finds it gone
    assert.is_true(ok)
    assert.are.equal("already deleted", note)
  end)

  it("logs in again when the server says the JWT has expired", function()
    oxy:client_stats()
    local first = oxy.jwt
    sim:clock(3601)
    oxy:client_stats() -- 401, new login, same call again
    assert.are_not.equal(first, oxy.jwt)
  end)

  it("checks every documented rule before spending a request", function()
    oxy:client_stats() -- logged in
    local before = sim:served()
    local cases = {
      { "create_sub_user", { { password = "Abcdef1#ghijk" } }, "username", "letters, digits and underscore" },
      { "create_sub_user", { { username = "bad-name", password = "Abcdef1#ghijk" } }, "username", "letters, digits" },
      { "create_sub_user", { { username = "ok", password = "Short1#a" } }, "password", "12 to 64" },
      { "create_sub_user", { { username = "ok", password = "alllowercase1#" } }, "password", "uppercase" },
      { "create_sub_user", { { username = "ok", password = "NoDigitsHere#x" } }, "password", "a digit" },
      { "create_sub_user", { { username = "ok", password = "NoSpecial123ab" } }, "password", "one of # _ ~ + =" },
      { "create_sub_user", { { username = "ok", password = "Abcdef1#ghijk!" } }, "password", "only letters, digits" },
      { "create_sub_user", { { username = "ok", password = "Abcdef1#ghijk", traffic_limit = -1 } }, "traffic_limit", "0 (blocked)" },
      { "create_sub_user", { { username = "ok", password = "Abcdef1#ghijk", auto_disable = "yes" } }, "auto_disable", "true or false" },
      { "create_sub_user", { { username = "ok", password = "Abcdef1#ghijk", trafficLimit = 5 } }, "trafficLimit", "is not a field" },
      { "sub_user_stats", { 1, { type = "year" } }, "type", "24h, week, month" },
      { "sub_user_stats", { 1, { type = "custom", date_from = "2026-01-01" } }, "date_to", "custom" },
      { "update_sub_user", { 1, {} }, "fields", "at least one" },
      { "update_sub_user", { 1, { status = "paused" } }, "status", '"active" or "disabled"' },
      { "update_sub_user", { "x", { status = "active" } }, "id", "positive integer" },
      { "target_stats", { 1, "yesterday" }, "date", "YYYY-MM-DD" },
    }
    refuses_each(oxy, cases)
    assert.are.equal(before, sim:served())
  end)

  it("raises the server's errors as objects and never prints the password", function()
    local err = raises(oxy.sub_user_stats, oxy, 999999, { type = "24h" })
    assert.are.equal("not_found", err.kind)
    assert.are.equal(404, err.status)
    oxy:create_sub_user { username = "dup_name", password = "Abcdef1#ghijk" }
    err = raises(oxy.create_sub_user, oxy, { username = "dup_name", password = "Abcdef1#ghijk" })
    assert.are.equal("conflict", err.kind)
    assert.is_nil(tostring(oxy):find(acct.password, 1, true))
    local bad = sim:client("oxylabs", { password = "Pw-Xq9zzT" })
    err = raises(bad.client_stats, bad)
    assert.are.equal("forbidden", err.kind)
    assert.is_nil(tostring(err):find("Pw-Xq9zzT", 1, true))
  end)

  it("finds a sub-user whose create answer was lost", function()
    local n = #oxy:sub_users()
    sim:fault { route = "POST /users/:id/sub-users", kind = "commit_lost" }
    local u = oxy:create_sub_user { username = "lost_one", password = "Abcdef1#ghijk" }
    assert.are.equal("lost_one", u.username)
    assert.are.equal(n + 1, #oxy:sub_users())
  end)

  it("maps sub-users onto the common token model", function()
    local a = sim:account()
    local t = a:create_token { limit_bytes = 3000000000, username = "model_1" }
    assert.are.equal(3000000000, t.limit_bytes)
    assert.is_false(t.unlimited)
    assert.is_string(t.password)
    assert.is_true(oxy_mod.check_password(t.password) == t.password)
    local u = a:create_token { unlimited = true, username = "model_2" }
    assert.is_true(u.unlimited)
    assert.is_nil(u.limit_bytes)
    sim:usage { provider = "oxylabs", id = tonumber(t.id), gb = 2.7 }
    for _, r in ipairs(a:tokens()) do
      if r.id == t.id then
        assert.are.equal(2700000000, r.used_bytes)
        assert.are.equal(0.9, providers.used_share(r))
      end
    end
    assert.are.equal(5000000000, a:set_limit(t.id, 5000000000).limit_bytes)
    assert.are.equal("disabled", a:disable(t.id).status)
    assert.are.same({ id = t.id, deleted = true, already = false }, a:delete_token(t.id))
    local err = raises(a.balance, a)
    assert.are.equal("unsupported", err.kind)
  end)
end)
