-- resi sim as a command and its admin API: the command-line contract
-- (DESIGN.md §6), accounts files, the simulated clock and configuration.
local http = require "resi.http"
local json = require "resi.json"
local proc = require "spec.support.proc"
local uv = require "luv"

local RESI = proc.resi_path()

-- Starts `resi sim ARGS`, reads stdout until `lines` lines arrived; returns
-- the lines and a function that sends SIGTERM and returns the exit status.
local function start_sim(args, lines)
  return resi.await(function(done)
    local out = uv.new_pipe()
    local buf, got, exit_cb = "", false, nil
    local status
    local handle
    handle = uv.spawn(RESI, { args = { "sim", table.unpack(args) }, stdio = { nil, out, 2 } }, function(code)
      status = code
      handle:close()
      if exit_cb then exit_cb(code) end
    end)
    local function stop()
      return resi.await(function(stopped)
        if status then return stopped(status) end
        exit_cb = stopped
        handle:kill("sigterm")
      end)
    end
    out:read_start(function(_, data)
      if data then buf = buf .. data end
      local list = {}
      for l in buf:gmatch("([^\n]*)\n") do list[#list + 1] = l end
      if not got and (#list >= lines or not data) then
        got = true
        done(list, stop)
      end
      if not data then out:close() end
    end)
  end)
end

describe("resi sim command", function()
  it("prints the three URL exports first, then generated credentials, and stops on SIGTERM", function()
    local lines, stop = start_sim({ "--ports", "0,0,0", "--seed", "9" }, 8)
    assert.matches("^RESI_UNKNOWNPROXIES_URL=http://127%.0%.0%.1:%d+/api/v1$", lines[1])
    assert.matches("^RESI_OXYLABS_URL=http://127%.0%.0%.1:%d+/v2$", lines[2])
    assert.matches("^RESI_RESIFACTORY_URL=http://127%.0%.0%.1:%d+/api/v1$", lines[3])
    assert.matches("^UNKNOWNPROXIES_USERNAME=", lines[4])
    assert.matches("^RF_API_KEY=rf_live_", lines[8])
    local url = lines[1]:match("=(.*)")
    local user, pass = lines[4]:match("=(.*)"), lines[5]:match("=(.*)")
    local r = proc.run { "curl", "-sS", "-u", user .. ":" .. pass, url .. "/resi/tokens" }
    assert.are.equal(3, #json.decode(r.stdout).tokens)
    assert.are.equal(0, stop())
    -- the same seed gives the same credentials
    local again, stop2 = start_sim({ "--ports", "0,0,0", "--seed", "9" }, 8)
    assert.are.same({ lines[4], lines[5], lines[8] }, { again[4], again[5], again[8] })
    stop2()
  end)

  it("--env-file: the same lines as shell exports, whole once listening (0600), removed on stop", function()
    local path = os.tmpname()
    os.remove(path)
    local lines, stop = start_sim({ "--ports", "0,0,0", "--env-file", path }, 11) -- 8, then the 3 gateways
    local stopped
    finally(function() if not stopped then stop() end end) -- a failed assertion must not leave the sandbox running
    local st = assert(uv.fs_stat(path)) -- written before stdout, so it is there now
    assert.are.equal(tonumber("600", 8), st.mode & tonumber("777", 8))
    local r = proc.run { "bash", "-c", ". " .. path .. " && env | grep -E '^(RESI_[A-Z]+_URL|RESI_SIM_[A-Z]+_GATEWAY|UNKNOWNPROXIES_|OXYLABS_|RF_)' | sort" }
    table.sort(lines)
    assert.are.equal(table.concat(lines, "\n") .. "\n", r.stdout)
    stopped = true
    assert.are.equal(0, stop())
    assert.is_nil(uv.fs_stat(path))
    r = proc.run { RESI, "sim", "--ports", "0,0,0", "--env-file", "/nonexistent/dir/sim.env" }
    assert.are.equal(1, r.status)
    assert.are.equal("", r.stdout)
    assert.truthy(r.stderr:find("--env-file /nonexistent/dir/sim.env: ", 1, true), r.stderr)
  end)

  it("serves the accounts of an --accounts file and prints no credentials", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(json.encode {
      unknownproxies = { { username = "acme", password = "s3cret-acme" } },
      resifactory = { { api_key = "rf_live_testkey123", scopes = { "usage:read" }, balances = { walmart_premium = 3 } } },
    })
    f:close()
    local lines, stop = start_sim({ "--ports", "0,0,0", "--accounts", path }, 3)
    local url = lines[1]:match("=(.*)")
    local r = proc.run { "curl", "-sS", "-u", "acme:s3cret-acme", url .. "/resi/tokens" }
    assert.are.same({ tokens = {} }, json.decode(r.stdout))
    assert.are.equal(0, stop())
    os.remove(path)
  end)

  it("names the bad field of an accounts file and exits 2", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write('{"resifactory":[{"api_key":"sk_wrong"}]}')
    f:close()
    local r = proc.run { RESI, "sim", "--accounts", path }
    assert.are.equal(2, r.status)
    assert.matches("resifactory%[1%]%.api_key must start with rf_live_", r.stderr)
    f = assert(io.open(path, "w"))
    f:write('{"unknownproxies":[{"username":"x"}]}')
    f:close()
    r = proc.run { RESI, "sim", "--accounts", path }
    assert.matches("unknownproxies[1].password is required (a non-empty string)", r.stderr, 1, true)
    os.remove(path)
    r = proc.run { RESI, "sim", "--accounts", "/nonexistent/accounts.json" }
    assert.are.equal(2, r.status)
    assert.matches("cannot read accounts file", r.stderr)
  end)

  it("rejects bad options with exit status 2 and has --help", function()
    local r = proc.run { RESI, "sim", "--ports", "1,2" }
    assert.are.equal(2, r.status)
    assert.matches("three ports", r.stderr)
    r = proc.run { RESI, "sim", "--speed", "fast" }
    assert.are.equal(2, r.status)
    assert.matches("%-%-speed expects a number", r.stderr)
    r = proc.run { RESI, "sim", "--frobnicate" }
    assert.are.equal(2, r.status)
    r = proc.run { RESI, "sim", "--help" }
    assert.are.equal(0, r.status)
    assert.matches("usage: resi sim", r.stdout)
    assert.matches("--tls", r.stdout, 1, true)
  end)

  it("names the option that is wrong, each one, and only those", function()
    for _, case in ipairs {
      { { "--speed", "-1" }, "--speed must be a finite number >= 0", "rate-window" },
      { { "--speed=1e999" }, "--speed must be a finite number >= 0", "rate-window" },
      { { "--rate-window", "0" }, "--rate-window must be a finite number of seconds > 0", "speed" },
      { { "--rate-window", "-3" }, "--rate-window must be a finite number of seconds > 0", "speed" },
      { { "--traffic-rate", "-0.5" }, "--traffic-rate must be a finite number >= 0", "speed" },
      { { "--seed", "1.5" }, "--seed expects an integer", "speed" },
      { { "--ports", "8401,8401,8403" }, "--ports: port 8401 is given twice", "speed" },
      { { "--ports", "1,2,3,4" }, "--ports expects three ports UP,OXY,RF, got 4", "speed" },
      { { "--ports", "1,x,3" }, '--ports: "x" is not a port (0..65535)', "speed" },
      { { "--host", "my-laptop" }, "--host must be an IP address", "speed" },
      { { "--host", "300.1.1.1" }, "--host must be an IP address", "speed" },
      { { "extra" }, 'resi sim takes no arguments, got "extra"', "speed" },
      { { "--speed" }, "--speed needs a value", "rate-window" },
    } do
      local r = proc.run { RESI, "sim", table.unpack(case[1]) }
      assert.are.equal(2, r.status, table.concat(case[1], " "))
      assert.matches(case[2], r.stderr, 1, true)
      assert.is_nil(r.stderr:find("--" .. case[3], 1, true), r.stderr) -- no other option is blamed
      assert.is_nil(r.stderr:find("traceback", 1, true))
    end
    -- several wrong options: every one is named
    local r = proc.run { RESI, "sim", "--speed", "-1", "--rate-window", "0", "--traffic-rate", "-1", "--host", "x" }
    assert.are.equal(2, r.status)
    for _, name in ipairs { "--speed", "--rate-window", "--traffic-rate", "--host" } do
      assert.matches(name .. " must be", r.stderr, 1, true)
    end
    -- the bounds themselves are fine: speed 0 holds the clock, rate 0 stops traffic
    local lines, stop = start_sim({ "--ports", "0,0,0", "--speed", "0", "--traffic-rate", "0", "--rate-window", "0.5" }, 3)
    assert.matches("^RESI_UNKNOWNPROXIES_URL=", lines[1])
    assert.are.equal(0, stop())
  end)

  it("reports a port in use", function()
    local sim = require("spec.support.sim").start()
    local port = sim.urls.oxylabs:match(":(%d+)/")
    local r = proc.run { RESI, "sim", "--ports", "0," .. port .. ",0" }
    assert.are.equal(1, r.status)
    assert.matches("cannot listen for oxylabs", r.stderr)
    sim:stop()
  end)
end)

describe("resi sim defaults", function()
  -- Usage shares (and statuses) of the generated tokens and limited
  -- sub-users after `real` seconds of the README's `--speed 600`.
  local function shares_after(real)
    local sim = assert(require("resi.sim").start { ports = { 0, 0, 0 }, speed = 0 }) -- the default seed and traffic
    sim.world.clock:advance(real * 600)
    sim.world:tick()
    local state = sim.world
    local out = {}
    local up = state.providers.unknownproxies
    for _, t in pairs(up.tokens) do out[#out + 1] = { share = t.dataUsage / t.dataLimit, dead = t.status ~= "active" } end
    for _, a in ipairs(state.providers.oxylabs:snapshot().accounts) do
      for _, su in ipairs(a.sub_users) do
        if su.traffic_limit ~= json.null then
          local share = su.period_bytes / (su.traffic_limit * 1e9)
          out[#out + 1] = { share = share, dead = su.status ~= "active" or share >= 1 }
        end
      end
    end
    sim:stop()
    return out
  end

  -- Counts tokens that are exhausted, at 85%..100% and alive, and healthy (< 80%).
  local function mix(list)
    local n = { dead = 0, near = 0, healthy = 0 }
    for _, t in ipairs(list) do
      if t.dead then n.dead = n.dead + 1
      elseif t.share >= 0.85 then n.near = n.near + 1
      elseif t.share < 0.8 then n.healthy = n.healthy + 1 end
    end
    return n
  end

  it("leave a newcomer a mix of healthy, near-90% and exhausted tokens for minutes at --speed 600", function()
    assert.are.equal(0.015, require("resi.sim").TRAFFIC_RATE)
    local at30, at90, at120 = mix(shares_after(30)), mix(shares_after(90)), mix(shares_after(120))
    assert.is_true(at30.near >= 2, "some tokens near 90% after 30 s")
    assert.is_true(at30.healthy >= 2, "most still healthy after 30 s")
    assert.is_true(at90.dead >= 1 and at90.dead <= 3, "a few exhausted after 90 s")
    assert.is_true(at120.healthy >= 2, "healthy tokens left after 2 minutes")
    assert.is_true(at120.dead <= 3, "not everything dead after 2 minutes")
  end)
end)

describe("resi sim admin API", function()
  local sim

  setup(function() sim = require("spec.support.sim").start { seed = 3, provider = "resifactory" } end)
  teardown(function() sim:stop() end)

  it("advances the clock and changes its speed", function()
    local before = sim.world.clock:now()
    local status, body = sim:admin("POST", "/clock", { advance = 86400 })
    assert.are.equal(200, status)
    assert.is_true(body.now >= before + 86400)
    status, body = sim:admin("POST", "/clock", { speed = 60 })
    assert.are.equal(60, body.speed)
    sim:admin("POST", "/clock", { speed = 1 })
    status, body = sim:admin("POST", "/clock", { advance = -5 })
    assert.are.equal(400, status)
    assert.matches("advance must be a non%-negative", body.error.message)
  end)

  it("shows the whole state on every port", function()
    local res = assert(http.get(sim:admin_url("unknownproxies") .. "/state"))
    local state = res:json()
    assert.are.equal(3, #state.providers.unknownproxies.accounts[1].tokens)
    assert.is_number(state.clock.now)
    assert.are.equal(60, state.config.rate_window)
  end)

  it("validates configuration and traffic settings", function()
    local status, body = sim:admin("POST", "/config", { rate_window = 2, generate_limit = 5 })
    assert.are.equal(200, status)
    assert.are.equal(2, body.rate_window)
    assert.are.equal(5, body.generate_limit)
    status, body = sim:admin("POST", "/config", { read_limit = 1.5 })
    assert.are.equal(400, status)
    assert.matches("read_limit must be a positive integer", body.error.message)
    sim:admin("POST", "/config", { rate_window = 60, generate_limit = 20 })
    status, body = sim:admin("POST", "/traffic", { enabled = "yes" })
    assert.are.equal(400, status)
    status, body = sim:admin("POST", "/traffic", { enabled = false, rate = 0.25 })
    assert.are.equal(200, status)
    assert.are.equal(0.25, body.rate)
  end)

  it("answers unknown admin routes with 404 and bad bodies with 400", function()
    assert.are.equal(404, (sim:admin("GET", "/nothing")))
    local res = assert(http.post(sim:admin_url() .. "/clock", { body = "not json" }))
    assert.are.equal(400, res.status)
  end)
end)
