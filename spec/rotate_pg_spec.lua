-- scripts/rotate.lua on two "machines" (two processes, two working
-- directories, their own output files) sharing one PostgreSQL store, against
-- resi sim with faults: the intents and the account's lock live in the
-- database, so however the runs interleave, crash or wait, each token gets
-- exactly one replacement.
local proc = require "spec.support.proc"
local files = require "spec.support.files"
local postgres = require "spec.support.postgres"
local daemon = require "spec.support.daemon"
local rotate_run = require "spec.support.rotate_run"

local GB = 1000000000

describe("scripts/rotate.lua on a shared PostgreSQL store", function()
  local server = postgres.for_block()
  local sim, env, dir, up, url

  before_each(function()
    url = server.fresh_url()
    sim = require("spec.support.sim").start { seed = 7, provider = "unknownproxies",
      accounts = { unknownproxies = { { username = "reseller", password = "pw-reseller-1" } } } }
    dir = files.dir("resi-rotate-pg")
    for _, m in ipairs({ "/a", "/b" }) do assert(resi.uv.fs_mkdir(dir .. m, 448)) end
    env = sim:env { "unknownproxies" }
    up = sim:client()
  end)

  after_each(function()
    sim:stop()
    files.remove_dir(dir)
  end)

  -- The argv of a run on machine m ("a" or "b").
  local function argv(m, extra)
    return rotate_run.args(url, dir .. "/" .. m, { "--grace", "60", table.unpack(extra or {}) })
  end

  -- Runs rotate on machine m; returns the result.
  local function rotate(m, extra)
    return proc.resi(argv(m, extra), { env = env, cwd = dir .. "/" .. m })
  end

  -- Tokens over 90%: their ids.
  local function full_tokens(n)
    local olds = {}
    for i = 1, n do
      local t = up:create_token { dataLimit = GB }
      sim:usage { id = t.token, bytes = GB }
      olds[i] = t.token
    end
    return olds
  end

  -- How many tokens are not among olds (the replacements made).
  local function replacements(olds)
    local n, old = 0, {}
    for _, o in ipairs(olds) do old[o] = true end
    for _, t in ipairs(up:list_tokens()) do if not old[t.token] then n = n + 1 end end
    return n
  end

  -- The rotate intents in the shared store, by old token id.
  local function rotations() return rotate_run.intents(url, "unknownproxies:reseller") end

  it("two machines at once, with faults, again and again: one replacement per token", function()
    local olds = full_tokens(4)
    sim:fault { route = "POST /resi/token/create", kind = "commit_lost" }
    sim:fault { route = "POST /resi/token/create", kind = "error", status = 500 }
    sim:fault { route = "POST /resi/token/create", kind = "reset" }
    sim:fault { route = "POST /resi/token/create", kind = "latency", ms = 600, count = 3 }
    local ok_a, ok_b, rounds = false, false, 0
    repeat
      rounds = rounds + 1
      local ra, rb = resi.all {
        function() return rotate("a", { "--timeout", "0.5", "--wait", "30" }) end,
        function() return rotate("b", { "--timeout", "0.5", "--wait", "30" }) end,
      }
      ok_a, ok_b = ra.status == 0, rb.status == 0
      assert.is_nil((ra.stdout .. ra.stderr .. rb.stdout .. rb.stderr):find(url:match("://[^:]+:([^@]+)@"), 1, true))
    until (ok_a and ok_b) or rounds == 6
    assert.is_true(ok_a and ok_b, "both machines end cleanly")
    assert.equal(4, replacements(olds))
    local rots = rotations()
    for _, o in ipairs(olds) do assert.equal("published", rots[o].plan.phase) end
  end)

  it("a kill -9 of the machine holding the lock: the other takes over once its lease ends, one replacement", function()
    local olds = full_tokens(2)
    sim:fault { route = "POST /resi/token/create", kind = "latency", ms = 4000, after = true }
    local a = daemon.start(argv("a", { "--timeout", "10" }), { env = env, cwd = dir .. "/a" })
    -- kill it once its intent is in the store and its create call is out
    assert.is_true(proc.eventually(function() return next(rotations()) ~= nil end, 15), a.stderr())
    resi.sleep(0.5)
    a.kill("sigkill")
    a.wait()
    local t0 = resi.uv.hrtime() / 1e9
    local b = rotate("b", { "--wait", "40" })
    local waited = resi.uv.hrtime() / 1e9 - t0
    assert.equal(0, b.status, b.stdout .. b.stderr)
    assert.is_true(waited < 20, ("took over after %.1f s"):format(waited))
    local r2 = rotate("b", {})
    assert.equal(0, r2.status, r2.stdout .. r2.stderr)
    assert.equal(2, replacements(olds))
  end)
end)
