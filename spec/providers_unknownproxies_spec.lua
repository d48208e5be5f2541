-- resi.providers.unknownproxies against resi sim: every method, every
-- documented rule checked before a request is spent, error objects, and
-- creates that survive lost answers without making two tokens.
local GB = 1000000000

local raises = require("spec.support.provider").raises
local refuses_each = require("spec.support.provider").refuses_each

describe("resi.providers.unknownproxies", function()
  local sim, up

  setup(function()
    sim = require("spec.support.sim").start { seed = 21, provider = "unknownproxies" }
    up = sim:client()
  end)
  teardown(function() sim:stop() end)
  after_each(function() sim:clear_faults() end)

  it("creates, reads, lists, modifies and deletes a token", function()
    local t = up:create_token { dataLimit = 3 * GB, durationHours = 48 }
    assert.are.equal(3 * GB, t.dataLimit)
    assert.are.equal(48, t.durationHours)
    assert.are.equal(8, #t.username)
    assert.are.equal(t.token, up:get_token(t.token).token)
    local m = up:modify_token(t.token, { dataLimit = 5 * GB, allowedPools = { "us-s" } })
    assert.are.equal(5 * GB, m.dataLimit)
    assert.are.equal("us-s", m.allowedPools[1])
    local found = false
    for _, x in ipairs(up:list_tokens()) do found = found or x.token == t.token end
    assert.is_true(found)
    assert.are.equal("success", up:delete_token(t.token).message)
    assert.are.equal("deleted", up:get_token(t.token).status)
    assert.is_table(up:get_token(t.token, { usage = true }).usage)
  end)

  it("checks every documented rule before spending a request", function()
    local before = sim:served()
    local cases = {
      { "create_token", { {} }, "dataLimit", "is required" },
      { "create_token", { { dataLimit = 1000000 } }, "dataLimit", "at least 1000000000" },
      { "create_token", { { dataLimit = 1500000000 } }, "dataLimit", "multiple of 1000000000" },
      { "create_token", { { dataLimit = "1GB" } }, "dataLimit", "must be an integer" },
      { "create_token", { { dataLimit = GB, username = "seven77" } }, "username", "exactly 8 characters" },
      { "create_token", { { dataLimit = GB, durationHours = 87601 } }, "durationHours", "from 0 to 87600" },
      { "create_token", { { dataLimit = GB, durationHours = -1 } }, "durationHours", "from 0 to 87600" },
      { "create_token", { { dataLimit = GB, password = "abcdefgh" } }, "password", "is not a field of create_token" },
      { "modify_token", { "tok", {} }, "fields", "at least one of" },
      { "modify_token", { "tok", { password = "short" } }, "password", "exactly 8 characters" },
      { "modify_token", { "tok", { dataLimit = 2500000000 } }, "dataLimit", "multiple of 1000000000" },
      { "modify_token", { "tok", { allowedPools = "us-s" } }, "allowedPools", "list of pool ids" },
      { "modify_token", { "", { dataLimit = GB } }, "token", "is required" },
      { "delete_token", { nil }, "token", "is required" },
      { "get_token", { 42 }, "token", "is required" },
    }
    refuses_each(up, cases)
    assert.are.equal(before, sim:served())
  end)

  it("raises structured errors with the provider's code and message", function()
    local err = raises(up.get_token, up, "nosuchtoken1")
    assert.are.equal("not_found", err.kind)
    assert.are.equal(404, err.status)
    assert.are.equal("token_not_found", err.code)
    assert.matches("unknownproxies: not_found %(HTTP 404%) token_not_found: no token nosuchtoken1", tostring(err))
    local t = up:create_token { dataLimit = GB }
    -- lowering the limit is refused by the server (the client cannot know the old value)
    up:modify_token(t.token, { dataLimit = 3 * GB })
    err = raises(up.modify_token, up, t.token, { dataLimit = 2 * GB })
    assert.are.equal("validation", err.kind)
    assert.are.equal(400, err.status)
    assert.matches("cannot be decreased", err.message)
    local bad = sim:client("unknownproxies", { username = "nobody", password = "wrong" })
    err = raises(bad.list_tokens, bad)
    assert.are.equal("auth", err.kind)
  end)

  it("never shows the password when printed", function()
    local acct = sim.accounts.unknownproxies[1]
    local s = tostring(up)
    assert.matches(acct.username, s, 1, true)
    assert.is_nil(s:find(acct.password, 1, true))
    local err = raises(up.get_token, up, "nosuchtoken1")
    assert.is_nil(tostring(err):find(acct.password, 1, true))
  end)

  it("finds a token whose create answer was lost instead of creating a second", function()
    local before = #up:list_tokens()
    sim:fault { route = "POST /resi/token/create", kind = "commit_lost" }
    local t = up:create_token { dataLimit = GB, username = "lost0001" }
    assert.are.equal("lost0001", t.username)
    assert.are.equal(before + 1, #up:list_tokens())
    sim:fault { route = "POST /resi/token/create", kind = "truncate" }
    local t2 = up:create_token { dataLimit = GB }
    assert.are.equal(before + 2, #up:list_tokens())
    assert.are.equal("active", up:get_token(t2.token).status)
  end)

  it("tries a create again after a reset that did nothing, and after a 429", function()
    local before = #up:list_tokens()
    sim:fault { route = "POST /resi/token/create", kind = "reset" }
    up:create_token { dataLimit = GB }
    sim:fault { route = "POST /resi/token/create", kind = "rate_limit", retry_after = 0 }
    up:create_token { dataLimit = GB }
    assert.are.equal(before + 2, #up:list_tokens())
  end)

  it("does not repeat a create the server answered with a 5xx", function()
    local before = #up:list_tokens()
    sim:fault { route = "POST /resi/token/create", kind = "error", status = 500 }
    local err = raises(up.create_token, up, { dataLimit = GB })
    assert.are.equal("server", err.kind)
    assert.are.equal(before, #up:list_tokens())
  end)

  it("retries reads through resets, 5xx and garbled bodies", function()
    sim:fault { route = "GET /resi/tokens", kind = "reset" }
    sim:fault { route = "GET /resi/tokens", kind = "error", status = 502 }
    sim:fault { route = "GET /resi/tokens", kind = "malformed" }
    assert.is_true(#up:list_tokens() >= 3)
  end)

  it("names the create, not the lookup made for it, when a create fails in transport", function()
    local quick = { retry = { base = 0.01, cap = 0.02 } } -- retries without long backoffs
    -- a host that does not resolve: the create never left, so nothing is looked up
    local nowhere = sim:client("unknownproxies", { ratelimit = quick,
      base_url = "https://resi-spec-no-such-host.invalid/api/v1" })
    local err = raises(nowhere.create_token, nowhere, { dataLimit = GB })
    assert.are.equal("transport", err.kind)
    assert.matches("^POST /resi/token/create: ", err.message)
    assert.is_nil(err.message:find("/resi/tokens", 1, true), err.message)
    -- the create's answer is lost and the lookup fails too: the create is named, the lookup is context
    local lost = sim:client("unknownproxies", { ratelimit = quick })
    sim:fault { route = "POST /resi/token/create", kind = "commit_lost" }
    sim:fault { route = "GET /resi/tokens", kind = "error", status = 500, count = 0 }
    err = raises(lost.create_token, lost, { dataLimit = GB })
    assert.are.equal("transport", err.kind)
    assert.matches("^POST /resi/token/create: ", err.message)
    assert.matches("; looking for what it may have made failed too: unknownproxies: server (HTTP 500)", err.message, 1, true)
  end)

  it("treats a delete whose first answer was lost as done", function()
    local t = up:create_token { dataLimit = GB }
    sim:fault { route = "DELETE /resi/token", kind = "commit_lost" }
    local r = up:delete_token(t.token)
    assert.are.equal("success", r.message)
    assert.is_true(r.already)
    assert.are.equal("deleted", up:get_token(t.token).status)
  end)
  it("sends every call through the account's rate limiter, and a 429 pauses every task on the key", function()
    local limited = sim:client("unknownproxies", { ratelimit = { limit = 4, window = 0.5, concurrency = 4 } })
    local lim = limited:limiter_for("GET", "/resi/tokens")
    local t0 = resi.monotonic()
    local tasks = {}
    for i = 1, 8 do tasks[i] = resi.spawn(function() return #limited:list_tokens() end) end
    for _, t in ipairs(tasks) do assert.is_true(t:wait() >= 3) end
    assert.is_true(resi.monotonic() - t0 >= 0.45) -- 8 calls at 4 per 0.5 s need a second window
    local st = lim:stats()
    assert.are.equal(8, st.granted)
    assert.is_true(st.waits >= 1)
    assert.are.equal(0, st.in_flight)
    -- the server says slow down: both tasks wait out the same pause, then succeed
    sim:fault { route = "GET /resi/tokens", kind = "rate_limit", retry_after = 1 }
    t0 = resi.monotonic()
    local a = resi.spawn(function() return #limited:list_tokens() end)
    resi.sleep(0.05)
    local b = resi.spawn(function() return #limited:list_tokens() end)
    assert.is_true(a:wait() >= 3 and b:wait() >= 3)
    assert.is_true(resi.monotonic() - t0 >= 0.95)
    assert.are.equal(1, lim:stats().seen_429)
  end)
end)
