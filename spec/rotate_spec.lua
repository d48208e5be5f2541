-- scripts/rotate.lua (a command line over resi.rotate) end to end against
-- resi sim: tokens pushed over 90% by the sandbox's traffic, faults
-- injected mid-rotation, crashes between steps, runs from several
-- directories. Whatever happens, each rotated token gets exactly one
-- replacement and every created credential is written out. What a run
-- recorded is read from its store (resi.intent's "rotate" book).
local json = require "resi.json"
local proc = require "spec.support.proc"
local files = require "spec.support.files"
local rotate_run = require "spec.support.rotate_run"

local GB = 1000000000
local SCRIPT = rotate_run.SCRIPT

describe("scripts/rotate.lua", function()
  local sim, env, dir, up

  -- Runs the script with the sandbox's environment; returns the result.
  local function rotate(args, opts)
    return proc.resi(rotate_run.args(dir .. "/store.db", dir, args), { env = env, cwd = opts and opts.cwd })
  end

  -- The rotations a store holds for an account, by old token id: each
  -- intent's plan, with state, and phase "retired" once finished.
  local function rotations(account, path)
    local out = {}
    for key, it in pairs(rotate_run.intents(path or (dir .. "/store.db"), account or "unknownproxies:reseller")) do
      local p = it.plan
      p.state = it.state
      if it.state == "done" then p.phase = "retired" end
      out[key] = p
    end
    return out
  end

  -- Sets a token's usage.
  local function use(token, bytes) sim:usage { id = token, bytes = bytes } end

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
    sim = require("spec.support.sim").start { seed = 31, provider = "unknownproxies",
      accounts = { unknownproxies = { { username = "reseller", password = "pw-reseller-1" } },
        oxylabs = { { username = "mainox", password = "Main-Pass-123", user_id = "7d4c2b1a-0000-4000-a000-000000000001" } } } }
    dir = files.dir("resi-rotate")
    env = sim:env { "unknownproxies" }
    env[#env + 1] = "XDG_STATE_HOME=" .. dir .. "/state" -- never the user's own store
    up = sim:client()
  end)

  after_each(function()
    sim:stop()
    files.remove_dir(dir)
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
    local rots = rotations()
    local ra, rc = rots[a.token], rots[c.token]
    assert.are.equal("published", ra.phase)
    assert.is_nil(rots[b.token])
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
    -- finished rotations stay in the store (30 days by default) ...
    rots = rotations()
    assert.are.same({ "retired", "retired" }, { rots[a.token].phase, rots[c.token].phase })
    -- ... and then go, unless the old token is still listed (c: expired, not
    -- deletable): its record stops it being rotated again
    r = rotate { "--grace", "0", "--keep-days", "0" }
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("0 rotated, 0 retired, 0 failed", r.stdout)
    rots = rotations()
    assert.is_nil(rots[a.token])
    assert.are.equal("retired", rots[c.token].phase)
    assert.are.equal(rc.new_id, rots[c.token].new_id)
    r = rotate { "--grace", "0", "--keep-days", "0" }
    assert.matches("0 rotated, 0 retired, 0 failed", r.stdout)
    count = 0
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
    assert.matches("would rotate: unknownproxies:reseller token " .. a.token, r.stdout, 1, true)
    assert.are.same({}, rotations())
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
    sim:fault { route = "POST /resi/token/create", kind = "commit_lost" }
    sim:fault { route = "POST /resi/token/create", kind = "error", status = 500 }
    sim:fault { route = "POST /resi/token/create", kind = "reset" }
    sim:fault { route = "GET /resi/tokens", kind = "malformed" }
    sim:fault { route = "POST /resi/token/create", kind = "rate_limit", retry_after = 0, count = 5 }
    sim:fault { route = "POST /resi/token/create", kind = "truncate" }
    sim:fault { route = "POST /resi/token/create", kind = "latency", ms = 1500, after = true } -- a timeout after the commit
    local runs, r = 0, nil
    repeat
      runs = runs + 1
      r = rotate { "--grace", "60", "--timeout", "0.5" }
      if os.getenv("DEBUG_ROTATE") then io.stderr:write("RUN ", runs, "\n", r.stdout, r.stderr) end
    until r.status == 0 or runs == 6
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.is_true(runs >= 2) -- the 5xx stopped the first run
    local rots = rotations()
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
      local rot = rots[o]
      assert.are.equal("published", rot.phase)
      local new = all[rot.new_id]
      assert.matches(new.username .. ":" .. new.password .. "@", list, 1, true)
    end
  end)

  it("recovers when killed between recording its intent and hearing back", function()
    local a = up:create_token { dataLimit = GB }
    use(a.token, GB)
    -- the create commits, then the answer takes long; the process dies waiting
    sim:fault { route = "POST /resi/token/create", kind = "latency", ms = 3000 }
    local killer = resi.spawn(function()
      resi.sleep(1.0)
      proc.run { "pkill", "-KILL", "-f", dir .. "/store.db" }
    end)
    local r = rotate { "--grace", "60" }
    killer:wait()
    assert.are.equal(9, r.signal)
    assert.are.equal("intent", rotations()[a.token].phase)
    -- the sandbox finishes the create it was holding
    local n = 0
    for _ = 1, 100 do
      n = 0
      for _ in pairs(tokens()) do n = n + 1 end
      if n == 2 then break end
      resi.sleep(0.1)
    end
    assert.are.equal(2, n)
    r = rotate { "--grace", "60" } -- the killed run's lock died with it
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("found the replacement an earlier run created", r.stderr, 1, true)
    n = 0
    for _ in pairs(tokens()) do n = n + 1 end
    assert.are.equal(2, n)
    local new = tokens()[rotations()[a.token].new_id]
    assert.matches(new.username .. ":" .. new.password .. "@", read("proxies.txt"), 1, true)
  end)
  it("runs one at a time per account: a second run exits 1 or, with --wait, waits its turn", function()
    local a = up:create_token { dataLimit = GB }
    use(a.token, GB)
    sim:fault { route = "POST /resi/token/create", kind = "latency", ms = 800 } -- the first run holds the journal a while
    local first = resi.spawn(rotate, { "--grace", "60" })
    resi.sleep(0.3)
    local second = rotate { "--grace", "60" }
    assert.are.equal(1, second.status)
    assert.matches("another run holds", second.stderr, 1, true)
    assert.matches("--wait SECONDS", second.stderr, 1, true)
    assert.are.equal("0 rotated, 0 retired, 1 failed\n", second.stdout) -- it did nothing, and published nothing
    local r = first:wait()
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("1 rotated", r.stdout, 1, true)
    local n = 0
    for _ in pairs(tokens()) do n = n + 1 end
    assert.are.equal(2, n)
    -- with --wait the second run starts when the first ends, and finds nothing left to do
    local b = up:create_token { dataLimit = GB }
    use(b.token, GB)
    sim:fault { route = "POST /resi/token/create", kind = "latency", ms = 800 }
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

  -- The usernames a run's output names as replacements, in order.
  local function replacements_named(out)
    local names = {}
    for u in out:gmatch("%-> replacement (%S+)") do names[#names + 1] = u end
    return names
  end

  it("names in a dry run the usernames the real run then creates", function()
    local olds = {}
    for i = 1, 3 do
      olds[i] = up:create_token { dataLimit = GB }
      use(olds[i].token, GB)
    end
    local dry = rotate { "--dry-run" }
    assert.are.equal(0, dry.status, dry.stderr)
    local named = replacements_named(dry.stdout)
    assert.are.equal(3, #named, dry.stdout)
    local again = rotate { "--dry-run" }
    assert.are.same(named, replacements_named(again.stdout)) -- a dry run is repeatable
    local r = rotate { "--grace", "60" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.same(named, replacements_named(r.stdout))
    local rots, by_name = rotations(), {}
    for _, t in pairs(tokens()) do by_name[t.username] = t end
    for _, o in ipairs(olds) do
      local rot = rots[o.token]
      assert.is_true(by_name[rot.new_username] ~= nil and by_name[rot.new_username].token == rot.new_id)
    end
    for _, u in ipairs(named) do assert.is_table(by_name[u], u) end
  end)

  it("publishes a replacement only once its allowedPools are those of the token it replaces", function()
    local a = up:create_token { dataLimit = 2 * GB }
    up:modify_token(a.token, { allowedPools = { "us-s", "us-r" } })
    local b = up:create_token { dataLimit = GB }
    use(a.token, 2 * GB)
    -- the create commits but its answer is lost; every PATCH of the pools fails, in two runs
    sim:fault { route = "POST /resi/token/create", kind = "commit_lost" }
    sim:fault { route = "PATCH /resi/token", kind = "error", status = 503, count = 2 * 4 }
    for run = 1, 2 do
      local r = rotate { "--grace", "60" }
      assert.are.equal(1, r.status, r.stdout .. r.stderr)
      local rot = rotations()[a.token]
      -- "created" already in run 1 when libcurl replayed the create on a fresh connection (a 409, then found)
      assert.is_true(rot.phase == "created" or (run == 1 and rot.phase == "intent"), rot.phase)
      local new
      for _, t in pairs(tokens()) do if t.username == rot.new_username then new = t end end
      assert.is_table(new) -- made, but with every pool open
      assert.are.same({}, { table.unpack(new.allowedPools) })
      local list = read("proxies.txt")
      assert.is_true(list == nil or not list:find(new.username, 1, true), list)
    end
    local r = rotate { "--grace", "60" }
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    local rot = rotations()[a.token]
    assert.are.equal("published", rot.phase)
    local new = tokens()[rot.new_id]
    local pools = { table.unpack(new.allowedPools) }
    table.sort(pools)
    assert.are.same({ "us-r", "us-s" }, pools)
    local list = read("proxies.txt")
    assert.matches(new.username .. ":" .. new.password .. "@", list, 1, true)
    assert.matches(b.username .. ":", list, 1, true)
  end)

  it("applies the pools of a replacement whose create answered garbage (found by its username)", function()
    local a = up:create_token { dataLimit = GB }
    up:modify_token(a.token, { allowedPools = { "us-s" } })
    use(a.token, GB)
    sim:fault { route = "POST /resi/token/create", kind = "malformed" } -- committed, then not JSON
    local r = rotate { "--grace", "60" }
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    local rot = rotations()[a.token]
    assert.are.equal("published", rot.phase)
    assert.are.same({ "us-s" }, { table.unpack(tokens()[rot.new_id].allowedPools) })
    local n = 0
    for _ in pairs(tokens()) do n = n + 1 end
    assert.are.equal(2, n) -- looked up, not made twice
  end)

  it("imports an old JSON journal once, finishing what it left (pools first), and renames it", function()
    local b = up:create_token { dataLimit = GB }
    up:modify_token(b.token, { allowedPools = { "us-r" } })
    local nb = up:create_token { dataLimit = GB } -- the replacement an older run made, pools not applied yet
    local old = { version = 1, run = 7, rotations = { ["unknownproxies:" .. b.token] = { provider = "unknownproxies",
      old_id = b.token, old_username = b.username, phase = "created", new_id = nb.token, new_username = nb.username,
      limit_bytes = GB, hours = 0, like = { allowedPools = { "us-r" } } } } }
    files.write(dir, "rotate-state.json", json.encode(old))
    local r = rotate({ "--grace", "60" }, { cwd = dir }) -- ./rotate-state.json is found without --state
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("imported 1 rotations from rotate-state.json", r.stdout, 1, true)
    assert.are.same({ "us-r" }, { table.unpack(tokens()[nb.token].allowedPools) })
    assert.are.equal("published", rotations()[b.token].phase)
    assert.are.equal(8, rotations()[b.token].published_run) -- the journal's run numbers go on
    assert.matches(nb.username .. ":", read("proxies.txt"), 1, true)
    assert.is_nil(read("proxies.txt"):find(b.username .. ":", 1, true))
    assert.is_nil(read("rotate-state.json"))
    assert.is_string(read("rotate-state.json.imported"))
    r = rotate({ "--grace", "60" }, { cwd = dir })
    assert.are.equal(0, r.status, r.stderr)
    assert.is_nil(r.stdout:find("imported", 1, true))
    local n = 0
    for _ in pairs(tokens()) do n = n + 1 end
    assert.are.equal(2, n)
  end)

  -- Asserts that a run failed with one line on stderr that has every
  -- fragment in it, and did nothing at the provider.
  local function says_one_line(r, status, ...)
    assert.are.equal(status, r.status, r.stdout .. r.stderr)
    assert.are.equal(1, select(2, r.stderr:gsub("\n", "")), r.stderr)
    for _, frag in ipairs({ ... }) do assert.matches(frag, r.stderr, 1, true) end
    assert.is_nil(r.stderr:find("traceback", 1, true), r.stderr)
    assert.is_nil(r.stderr:find("another run", 1, true), r.stderr)
  end

  it("says in one line which file cannot be used, before any API call", function()
    local a = up:create_token { dataLimit = GB }
    use(a.token, GB)
    local before = sim:served()
    local base = { proc.resi_path(), "run", SCRIPT, "--provider", "unknownproxies" }
    -- Runs the script with extra arguments.
    local function run(...)
      local argv = { table.unpack(base) }
      for _, x in ipairs({ ... }) do argv[#argv + 1] = x end
      return proc.run(argv, { env = env })
    end
    files.write(dir, "afile", "x")
    says_one_line(run("--store", dir .. "/afile/s.db"), 1, "rotate.lua: --store: ", dir .. "/afile is not a directory")
    says_one_line(run("--store", dir .. "/s.db", "--out", "/nonexistent/dir/p.txt"), 1,
      "rotate.lua: --out /nonexistent/dir/p.txt: directory /nonexistent/dir does not exist")
    says_one_line(run("--store", dir .. "/s.db", "--manifest", dir .. "/none/m.json", "--dry-run"), 1,
      "rotate.lua: --manifest " .. dir .. "/none/m.json: directory " .. dir .. "/none does not exist")
    says_one_line(run("--store", dir .. "/s.db", "--out", dir), 1, "rotate.lua: --out " .. dir .. ": it is a directory")
    files.write(dir, "bad.json", "{bad")
    says_one_line(run("--store", dir .. "/s.db", "--state", dir .. "/bad.json"), 1,
      "rotate.lua: journal " .. dir .. "/bad.json: not a journal: ")
    -- a lock file that cannot be opened is not "another run"
    assert.are.equal(0, proc.run({ "mkdir", dir .. "/intent%2Frotate%2Funknownproxies%3Areseller.lock" }).status)
    says_one_line(run("--store", dir .. "/s.db"), 1, "rotate.lua: cannot open " .. dir
      .. "/intent%2Frotate%2Funknownproxies%3Areseller.lock: Is a directory")
    assert.are.equal(before, sim:served())
    local usage = run("--threshold", "2")
    assert.are.equal(2, usage.status)
    assert.matches("^%-%-threshold must be in %(0, 1%]\n", usage.stderr)
    assert.is_nil(read("proxies.txt"))
  end)

  it("removes the temp files (with passwords) that killed runs left, even when it publishes nothing", function()
    local dead = proc.run({ "true" }).pid -- exited: like a run killed with kill -9
    local mine = resi.uv.os_getpid() -- alive: not a dead writer's
    local names = { ("proxies.txt.tmp-%d-1a2b3c4d"):format(dead), ("proxies.txt.tmp-%d-00000001"):format(dead),
      ("manifest.json.tmp-%d-0000abcd"):format(dead), ("proxies.txt.tmp-%d-00000002"):format(mine) }
    for _, n in ipairs(names) do files.write(dir, n, "http://u:Secr3t@h:1\n") end
    sim:fault { route = "GET /resi/tokens", kind = "error", status = 400 } -- the run fails: nothing is published
    local r = rotate { "--grace", "60" }
    assert.are.equal(1, r.status, r.stdout .. r.stderr)
    assert.is_nil(read("proxies.txt"))
    for i, n in ipairs(names) do
      if i < 4 then assert.is_nil(read(n), n) else assert.is_string(read(n), n) end
    end
  end)

  it("rotates Oxylabs sub-users too, publishing the password it chose", function()
    local oxy = sim:client("oxylabs")
    local u = oxy:create_sub_user { username = "shop_1", password = "Abcdef1#ghijk", traffic_limit = 10, auto_disable = true }
    sim:usage { provider = "oxylabs", id = u.id, gb = 9.5 }
    local oenv = sim:env { "oxylabs" }
    oenv[#oenv + 1] = "XDG_STATE_HOME=" .. dir .. "/state"
    local argv = { proc.resi_path(), "run", SCRIPT, "--provider", "oxylabs", "--out", dir .. "/proxies.txt", "--grace", "0" }
    local r = proc.run(argv, { env = oenv })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("rotate: oxylabs:mainox token " .. u.id .. " (shop_1) at 95.0%", r.stdout, 1, true)
    local rot = rotations("oxylabs:mainox", dir .. "/state/resi/resi.db")[tostring(u.id)]
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
    local rots = rotations()
    local per_old, all = {}, tokens()
    for _, rot in pairs(rots) do
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
    for _, rot in pairs(rots) do
      local new = all[rot.new_id]
      if new.status == "active" and not per_old[new.token] then
        assert.matches(new.username .. ":" .. new.password .. "@", list, 1, true)
      end
    end
  end)
  -- Every token over the threshold has exactly one live replacement, and
  -- every credential the sandbox holds (active) is in the manifest.
  local function converged(olds)
    local all, rots = tokens(), rotations()
    for _, o in ipairs(olds) do
      local rot = rots[o]
      assert.is_table(rot, "no rotation for " .. o)
      assert.are.equal("active", all[rot.new_id].status)
      local n = 0
      for _, r2 in pairs(rots) do if r2.old_id == o then n = n + 1 end end
      assert.are.equal(1, n)
    end
    local replacements = 0
    for id in pairs(all) do
      local is_old = false
      for _, o in ipairs(olds) do is_old = is_old or o == id end
      if not is_old then replacements = replacements + 1 end
    end
    assert.are.equal(#olds, replacements)
    local listed = {}
    for _, c in ipairs(json.decode(read("manifest.json")).credentials) do listed[c.id] = c end
    for id, t in pairs(all) do
      local retiring = rots[id] ~= nil
      if t.status == "active" and not retiring then
        assert.is_table(listed[id], "active token " .. id .. " missing from the manifest")
        assert.are.equal(t.password, listed[id].password)
      end
    end
  end

  it("gives one replacement when run from three working directories with the default store", function()
    local a = up:create_token { dataLimit = GB }
    use(a.token, GB)
    for _, sub in ipairs({ "one", "two", "three" }) do
      assert.are.equal(0, proc.run({ "mkdir", "-p", dir .. "/" .. sub }).status)
      local r = proc.run({ proc.resi_path(), "run", SCRIPT, "--provider", "unknownproxies", "--grace", "60",
        "--manifest", dir .. "/manifest.json" }, { env = env, cwd = dir .. "/" .. sub })
      assert.are.equal(0, r.status, r.stderr)
      assert.matches((sub == "one" and "1" or "0") .. " rotated", r.stdout, 1, true)
    end
    assert.is_string(read("state/resi/resi.db")) -- $XDG_STATE_HOME/resi/resi.db, whatever the directory
    local n = 0
    for _ in pairs(tokens()) do n = n + 1 end
    assert.are.equal(2, n)
  end)

  for _, case in ipairs({
    { what = "create", route = "POST /resi/token/create" },
    { what = "publish", exec = "sleep 5" }, -- the files are written, the rotations not yet marked published
    { what = "retire", route = "DELETE /resi/token" },
  }) do
    it("converges after a kill -9 during " .. case.what .. " with the sandbox's faults armed", function()
      local olds = {}
      for i = 1, 3 do
        local t = up:create_token { dataLimit = GB }
        use(t.token, 950000000) -- over 90% and still active (a used-up token expires and cannot be deleted)
        olds[i] = t.token
      end
      if case.what == "retire" then
        assert.are.equal(0, rotate({ "--grace", "0" }).status) -- published; the next run retires
      end
      sim:fault { route = "POST /resi/token/create", kind = "reset" }
      sim:fault { route = "GET /resi/tokens", kind = "error", status = 502 }
      if case.route then sim:fault { route = case.route, kind = "latency", ms = 4000 } end
      local killer = resi.spawn(function()
        resi.sleep(1.5)
        proc.run { "pkill", "-KILL", "-f", dir .. "/store.db" }
      end)
      local r = rotate { "--grace", "0", case.exec and "--exec" or nil, case.exec }
      killer:wait()
      assert.are.equal(9, r.signal, r.stdout .. r.stderr)
      resi.sleep(3) -- the sandbox finishes what it was holding
      sim:clear_faults()
      for _ = 1, 3 do
        r = rotate { "--grace", "0" }
        assert.are.equal(0, r.status, r.stdout .. r.stderr)
      end
      converged(olds)
      for _, o in ipairs(olds) do assert.are.equal("deleted", tokens()[o].status) end
    end)
  end

  it("counts live Oxylabs sub-users without a known password apart, names them, and --adopt gives them one", function()
    local oxy = sim:client("oxylabs")
    oxy:create_sub_user { username = "team_alpha", password = "Abcdef1#ghijk", traffic_limit = 10 }
    oxy:create_sub_user { username = "team_gamma", password = "Abcdef1#ghijk", traffic_limit = 10 }
    local oenv = sim:env { "oxylabs" }
    oenv[#oenv + 1] = "XDG_STATE_HOME=" .. dir .. "/state"
    local argv = { proc.resi_path(), "run", SCRIPT, "--out", dir .. "/proxies.txt", "--manifest", dir .. "/manifest.json" }
    local r = proc.run(argv, { env = oenv })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("published: 2 live, 0 published, 2 without a known password: team_alpha, team_gamma", r.stdout, 1, true)
    assert.are.equal("", read("proxies.txt"))
    local m = json.decode(read("manifest.json")).credentials
    assert.are.equal(2, #m)
    assert.is_false(m[1].published)
    assert.matches("never returns", m[1].reason, 1, true)
    argv[#argv + 1] = "--adopt"
    r = proc.run(argv, { env = oenv })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("published: 2 live, 2 published", r.stdout, 1, true)
    assert.matches("old one stops working", r.stderr, 1, true)
    local list = read("proxies.txt")
    for _, c in ipairs(json.decode(read("manifest.json")).credentials) do
      assert.is_true(c.published)
      assert.matches("customer-" .. c.username:gsub("^customer%-", "") .. ":" .. c.password, list, 1, true)
      assert.is_nil(c.password:find("Abcdef1#ghijk", 1, true)) -- a new password
    end
    -- the adopted passwords are the ones the sandbox now holds for those sub-users
    local held = {}
    for _, su in pairs(sim.world.providers.oxylabs.sub_users) do held[su.username] = su.password end
    for _, c in ipairs(json.decode(read("manifest.json")).credentials) do
      assert.are.equal(held[c.username:gsub("^customer%-", "")], c.password)
    end
    r = proc.run(argv, { env = oenv }) -- a second --adopt changes nothing
    assert.matches("published: 2 live, 2 published to ", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("without a known password", 1, true))
  end)

  it("says when there is nothing to publish to, and runs --exec only once the files are in place", function()
    local a = up:create_token { dataLimit = GB }
    use(a.token, GB)
    local r = proc.run({ proc.resi_path(), "run", SCRIPT, "--provider", "unknownproxies", "--store", dir .. "/store.db" },
      { env = env })
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("not published: no --out, --manifest or --exec given (1 live, 0 published)", r.stdout, 1, true)
    assert.are.equal("ready", rotations()[a.token].phase) -- made and checked, but not published
    local check = ("test -s %s/proxies.txt && test -s %s/manifest.json && echo seen > %s/exec.out"):format(dir, dir, dir)
    r = rotate { "--exec", check }
    assert.are.equal(0, r.status, r.stderr)
    assert.matches("ran: test -s", r.stdout, 1, true)
    assert.are.equal("seen\n", read("exec.out"))
    assert.are.equal("published", rotations()[a.token].phase)
    r = rotate { "--exec", "echo reload failed >&2; exit 3" }
    assert.are.equal(1, r.status)
    assert.matches("--exec failed (exit status 3): reload failed", r.stdout, 1, true)
    assert.matches("0 rotated, 0 retired, 1 failed", r.stdout, 1, true)
  end)

  it("runs from a jobs file as rotate.run{...}, its summary deciding the job's outcome", function()
    local a = up:create_token { dataLimit = GB }
    use(a.token, GB)
    files.write(dir, "jobs.lua", ([[
local jobs = require "resi.jobs"
local rotate = require "resi.rotate"
jobs.every("5m", "rotate", function()
  local s = rotate.run { threshold = 0.9, providers = { "unknownproxies" }, manifest = %q, store = %q }
  if not s.ok then error(s.message) end
end)
]]):format(dir .. "/manifest.json", dir .. "/store.db"))
    local r = proc.run({ proc.resi_path(), "jobs", "run", dir .. "/jobs.lua", "rotate", "--store", dir .. "/jobs.db" },
      { env = env })
    assert.are.equal(0, r.status, r.stdout .. r.stderr)
    local rot = rotations()[a.token]
    assert.are.equal("published", rot.phase)
    local listed = json.decode(read("manifest.json")).credentials
    assert.are.equal(1, #listed) -- the replacement; the old token is being retired
    assert.are.equal(rot.new_id, listed[1].id)
  end)
  it("sends one event per run that changed something to the notifier, not one per token, and no passwords", function()
    local receivers = require "spec.support.notify_receivers"
    local rcv = receivers.http()
    for _ = 1, 2 do
      local t = up:create_token { dataLimit = GB }
      use(t.token, GB)
    end
    local n = require("resi.notify").new("webhook", { url = rcv.url .. "/hook", secret = "s3cret-hook-key-0001" })
    local said = {}
    local function run()
      return require("resi.rotate").run { accounts = { sim:account() }, store = dir .. "/store.db", notify = n,
        manifest = dir .. "/manifest.json", grace = 60, say = function(line) said[#said + 1] = line end }
    end
    local s = run()
    assert.is_true(s.ok, s.message)
    assert.are.equal(2, s.rotated)
    n:flush(5)
    assert.are.equal(1, #rcv.requests)
    local body = rcv.requests[1].body
    local ev = json.decode(body)
    assert.matches("2 rotated, 0 retired, 0 failed", json.encode(ev), 1, true)
    for _, t in pairs(tokens()) do assert.is_nil(body:find(t.password, 1, true), "a password in the event") end
    s = run() -- nothing changes: nothing is sent
    n:flush(5)
    assert.are.equal(0, s.rotated)
    assert.are.equal(1, #rcv.requests)
    rcv.close()
  end)
end)
