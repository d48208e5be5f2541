-- scripts/rotate.lua end to end against resi sim: tokens pushed over 90%
-- by the sandbox's traffic, faults injected mid-rotation, crashes between
-- steps. Whatever happens, each rotated token gets exactly one replacement
-- and every created credential is written out.
local http = require "resi.http"
local json = require "resi.json"
local proc = require "spec.support.proc"

local GB = 1000000000
local SCRIPT = "scripts/rotate.lua"

describe("scripts/rotate.lua", function()
  local sim, admin, env, dir, up

  -- Runs the script with the sandbox's environment; returns the result.
  local function rotate(args)
    local argv = { proc.resi_path(), "run", SCRIPT, "--provider", "unknownproxies", "--state", dir .. "/state.json",
      "--out", dir .. "/proxies.txt", "--format", "url", "--manifest", dir .. "/manifest.json" }
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    return proc.run(argv, { env = env })
  end

  -- Arms a fault.
  local function fault(spec)
    spec.provider = "unknownproxies"
    assert.are.equal(201, assert(http.post(admin .. "/faults", { json = spec })).status)
  end

  -- Sets a token's usage.
  local function use(token, bytes)
    assert.are.equal(200, assert(http.post(admin .. "/usage", { json = { id = token, bytes = bytes } })).status)
  end

  -- Reads a file written by the script.
  local function read(name)
    local f = io.open(dir .. "/" .. name)
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
  end

  -- The account's tokens by id.
  local function tokens()
    local by = {}
    for _, t in ipairs(up:list_tokens()) do by[t.token] = t end
    return by
  end

  before_each(function()
    sim = assert(require("resi.sim").start { ports = { 0, 0, 0 }, seed = 31, traffic = false,
      accounts = { unknownproxies = { { username = "reseller", password = "pw-reseller-1" } },
        oxylabs = { { username = "mainox", password = "Main-Pass-123", user_id = "7d4c2b1a-0000-4000-a000-000000000001" } } } })
    admin = sim.urls.unknownproxies:gsub("/api/v1$", "") .. "/_sim"
    env = { "RESI_UNKNOWNPROXIES_URL=" .. sim.urls.unknownproxies, "UNKNOWNPROXIES_USERNAME=reseller",
      "UNKNOWNPROXIES_PASSWORD=pw-reseller-1", "OXYLABS_USERNAME=" }
    dir = proc.run({ "mktemp", "-d", "/tmp/resi-rotate.XXXXXX" }).stdout:gsub("%s+$", "")
    up = require("resi.providers.unknownproxies").new { username = "reseller", password = "pw-reseller-1",
      base_url = sim.urls.unknownproxies }
  end)

  after_each(function()
    sim:stop()
    proc.run { "rm", "-rf", dir }
  end)

  it("replaces tokens at 90% once, publishes, and deletes the old ones on a later run", function()
    local a = up:create_token { dataLimit = 10 * GB, durationHours = 720 }
    local b = up:create_token { dataLimit = 5 * GB }
    local c = up:create_token { dataLimit = 2 * GB }
    up:modify_token(a.token, { allowedPools = { "us-s" } })
    use(a.token, 9 * GB) -- 90%
    use(b.token, 4 * GB) -- 80%
    use(c.token, 2 * GB) -- 100%: expired
    local r = rotate { "--grace", "0" }
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("2 rotated, 0 retired, 0 failed", r.stdout)
    local state = json.decode(read("state.json"))
    local ra, rc = state.rotations["unknownproxies:" .. a.token], state.rotations["unknownproxies:" .. c.token]
    assert.are.equal("published", ra.phase)
    assert.is_nil(state.rotations["unknownproxies:" .. b.token])
    local all = tokens()
    local na, nc = all[ra.new_id], all[rc.new_id]
    assert.are.equal(10 * GB, na.dataLimit)
    assert.are.equal(720, na.durationHours)
    assert.are.same({ "us-s" }, { table.unpack(na.allowedPools) })
    assert.are.equal(2 * GB, nc.dataLimit)
    -- published: the replacements and b; not the tokens being retired
    local list = read("proxies.txt")
    assert.matches(na.username .. ":" .. na.password .. "@", list, 1, true)
    assert.matches(nc.username .. ":" .. nc.password .. "@", list, 1, true)
    assert.matches(b.username .. ":", list, 1, true)
    assert.is_nil(list:find(a.username .. ":", 1, true))
    local manifest = json.decode(read("manifest.json"))
    assert.are.equal(3, #manifest.credentials)
    -- the old ones still work until the next run
    assert.are.equal("active", all[a.token].status)
    r = rotate { "--grace", "0" }
    assert.matches("0 rotated, 2 retired, 0 failed", r.stdout)
    assert.are.equal("deleted", tokens()[a.token].status)
    assert.are.equal("expired", tokens()[c.token].status) -- expired tokens cannot be deleted
    r = rotate { "--grace", "0" }
    assert.matches("0 rotated, 0 retired, 0 failed", r.stdout)
    local count = 0
    for _ in pairs(tokens()) do count = count + 1 end
    assert.are.equal(5, count)
  end)

  it("keeps the old token through the grace period", function()
    local a = up:create_token { dataLimit = GB }
    use(a.token, GB - 1)
    rotate { "--grace", "60" }
    local r = rotate { "--grace", "60" }
    assert.matches("0 rotated, 0 retired", r.stdout)
    assert.are.equal("active", tokens()[a.token].status)
  end)

  it("changes nothing in a dry run", function()
    local a = up:create_token { dataLimit = GB }
    use(a.token, GB)
    local r = rotate { "--dry-run" }
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("would rotate: unknownproxies token " .. a.token, r.stdout, 1, true)
    assert.is_nil(read("state.json"))
    assert.is_nil(read("proxies.txt"))
    local n = 0
    for _ in pairs(tokens()) do n = n + 1 end
    assert.are.equal(1, n)
  end)

  it("ends with exactly one replacement per token through lost answers, 5xx, resets, garbage and 429 storms", function()
    local olds = {}
    for i = 1, 4 do
      local t = up:create_token { dataLimit = GB }
      use(t.token, GB)
      olds[i] = t.token
    end
    fault { route = "POST /resi/token/create", kind = "commit_lost" }
    fault { route = "POST /resi/token/create", kind = "error", status = 500 }
    fault { route = "POST /resi/token/create", kind = "reset" }
    fault { route = "GET /resi/tokens", kind = "malformed" }
    fault { route = "POST /resi/token/create", kind = "rate_limit", retry_after = 0, count = 5 }
    fault { route = "POST /resi/token/create", kind = "truncate" }
    fault { route = "POST /resi/token/create", kind = "latency", ms = 1500, after = true } -- a timeout after the commit
    local runs, r = 0, nil
    repeat
      runs = runs + 1
      r = rotate { "--grace", "60", "--timeout", "0.5" }
      if os.getenv("DEBUG_ROTATE") then io.stderr:write("RUN ", runs, "\n", r.stdout, r.stderr) end
    until r.status == 0 or runs == 6
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.is_true(runs >= 2) -- the 5xx stopped the first run
    local state = json.decode(read("state.json"))
    local all = tokens()
    local replacements = 0
    for _, t in pairs(all) do
      local is_old = false
      for _, o in ipairs(olds) do is_old = is_old or o == t.token end
      if not is_old then replacements = replacements + 1 end
    end
    assert.are.equal(4, replacements, r.stdout .. r.stderr)
    local list = read("proxies.txt")
    for _, o in ipairs(olds) do
      local rot = state.rotations["unknownproxies:" .. o]
      assert.are.equal("published", rot.phase)
      local new = all[rot.new_id]
      assert.matches(new.username .. ":" .. new.password .. "@", list, 1, true)
    end
  end)

  it("recovers when killed between recording its intent and hearing back", function()
    local a = up:create_token { dataLimit = GB }
    use(a.token, GB)
    -- the create commits, then the answer takes long; the process dies waiting
    fault { route = "POST /resi/token/create", kind = "latency", ms = 3000 }
    local argv = { proc.resi_path(), "run", SCRIPT, "--provider", "unknownproxies", "--state", dir .. "/state.json",
      "--out", dir .. "/proxies.txt", "--format", "url" }
    local killer = resi.spawn(function()
      resi.sleep(1.0)
      proc.run { "pkill", "-KILL", "-f", dir .. "/state.json" }
    end)
    local r = proc.run(argv, { env = env })
    killer:wait()
    assert.are.equal(9, r.signal)
    local state = json.decode(read("state.json"))
    assert.are.equal("intent", state.rotations["unknownproxies:" .. a.token].phase)
    -- the sandbox finishes the create it was holding
    local n = 0
    for _ = 1, 100 do
      n = 0
      for _ in pairs(tokens()) do n = n + 1 end
      if n == 2 then break end
      resi.sleep(0.1)
    end
    assert.are.equal(2, n)
    r = rotate { "--grace", "60" } -- the killed run's journal lock died with it
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("found the replacement an earlier run created", r.stderr, 1, true)
    n = 0
    for _ in pairs(tokens()) do n = n + 1 end
    assert.are.equal(2, n)
    state = json.decode(read("state.json"))
    local new = tokens()[state.rotations["unknownproxies:" .. a.token].new_id]
    assert.matches(new.username .. ":" .. new.password .. "@", read("proxies.txt"), 1, true)
  end)
  it("runs one at a time per journal: a second run exits 1 or, with --wait, waits its turn", function()
    local a = up:create_token { dataLimit = GB }
    use(a.token, GB)
    fault { route = "POST /resi/token/create", kind = "latency", ms = 800 } -- the first run holds the journal a while
    local first = resi.spawn(rotate, { "--grace", "60" })
    resi.sleep(0.3)
    local second = rotate { "--grace", "60" }
    assert.are.equal(1, second.status)
    assert.matches("state.json.lock is locked by another process: another run is using the journal", second.stderr, 1, true)
    assert.are.equal("", second.stdout) -- it did nothing
    local r = first:wait()
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("1 rotated", r.stdout, 1, true)
    local n = 0
    for _ in pairs(tokens()) do n = n + 1 end
    assert.are.equal(2, n)
    -- with --wait the second run starts when the first ends, and finds nothing left to do
    local b = up:create_token { dataLimit = GB }
    use(b.token, GB)
    fault { route = "POST /resi/token/create", kind = "latency", ms = 800 }
    first = resi.spawn(rotate, { "--grace", "60" })
    resi.sleep(0.3)
    second = rotate { "--grace", "60", "--wait", "20" }
    r = first:wait()
    assert.matches("1 rotated", r.stdout, 1, true)
    assert.are.equal(0, second.status, second.stderr)
    assert.matches("0 rotated", second.stdout, 1, true)
    n = 0
    for _ in pairs(tokens()) do n = n + 1 end
    assert.are.equal(4, n) -- a, b and one replacement each
  end)

  it("rotates Oxylabs sub-users too, publishing the password it chose", function()
    local oacct = sim.accounts.oxylabs[1]
    local oxy = require("resi.providers.oxylabs").new { username = oacct.username, password = oacct.password,
      base_url = sim.urls.oxylabs }
    local u = oxy:create_sub_user { username = "shop_1", password = "Abcdef1#ghijk", traffic_limit = 10, auto_disable = true }
    assert.are.equal(200, assert(http.post(admin .. "/usage", { json = { provider = "oxylabs", id = u.id, gb = 9.5 } })).status)
    local oenv = { "RESI_OXYLABS_URL=" .. sim.urls.oxylabs, "OXYLABS_USERNAME=" .. oacct.username,
      "OXYLABS_PASSWORD=" .. oacct.password, "UNKNOWNPROXIES_USERNAME=" }
    local argv = { proc.resi_path(), "run", SCRIPT, "--provider", "oxylabs", "--state", dir .. "/state.json",
      "--out", dir .. "/proxies.txt", "--grace", "0" }
    local r = proc.run(argv, { env = oenv })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("rotate: oxylabs token " .. u.id .. " (shop_1) at 95.0%", r.stdout, 1, true)
    local rot = json.decode(read("state.json")).rotations["oxylabs:" .. u.id]
    local new
    for _, s in ipairs(oxy:sub_users()) do if tostring(s.id) == rot.new_id then new = s end end
    assert.are.equal(10, new.traffic_limit)
    assert.is_true(new.auto_disable)
    local list = read("proxies.txt")
    assert.matches("pr.oxylabs.io:7777:customer-" .. new.username .. ":" .. rot.new_password, list, 1, true)
    r = proc.run(argv, { env = oenv })
    assert.matches("1 retired", r.stdout, 1, true)
    for _, s in ipairs(oxy:sub_users()) do assert.are_not.equal(u.id, s.id) end
  end)
  it("keeps up with live traffic: every token that crosses 90% gets one replacement, published", function()
    local made = {}
    for i = 1, 3 do made[i] = up:create_token { dataLimit = 10 * GB } end
    use(made[1].token, 8 * GB)
    use(made[2].token, 7 * GB)
    sim.world.config.traffic, sim.world.config.traffic_rate = true, 0.5
    sim.world.clock:set_speed(600) -- 10 simulated minutes a second: ~8% of a limit per second
    for _ = 1, 8 do
      local r = rotate { "--grace", "0", "--threshold", "0.9" }
      assert.are.equal(0, r.status, r.stderr)
      resi.sleep(0.4)
    end
    sim.world.config.traffic = false
    local state = json.decode(read("state.json"))
    local per_old, all = {}, tokens()
    for _, rot in pairs(state.rotations) do
      per_old[rot.old_id] = (per_old[rot.old_id] or 0) + 1
      assert.is_table(all[rot.new_id])
    end
    for _, t in ipairs(made) do
      if all[t.token].dataUsage >= 0.9 * all[t.token].dataLimit or all[t.token].status ~= "active" then
        assert.are.equal(1, per_old[t.token], "token " .. t.token .. " crossed 90% and needs exactly one replacement")
      end
    end
    assert.is_true((per_old[made[1].token] or 0) == 1) -- 80% at the start: it must have crossed
    local list = read("proxies.txt")
    for _, rot in pairs(state.rotations) do
      local new = all[rot.new_id]
      if new.status == "active" and not per_old[new.token] then
        assert.matches(new.username .. ":" .. new.password .. "@", list, 1, true)
      end
    end
  end)
end)
