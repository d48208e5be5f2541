#!/usr/bin/env resi
-- The rotation workflow end to end, in one command, against resi sim.
--
-- Starts the provider sandbox in this process (10 simulated minutes per real
-- second, traffic flowing on every token and sub-user), then every couple of
-- seconds shows each token's usage and runs scripts/rotate.lua as a separate
-- process, exactly as cron or `resi jobs` would: tokens that cross 90% get a
-- replacement, the new credentials are published to a proxy list, and the old
-- tokens are deleted after a short grace period on a later run.
--
--   ./resi examples/rotation_demo.lua [ROUNDS]
local json = require "resi.json"
local providers = require "resi.providers"
local uv = resi.uv

local rounds = tonumber(resi.args[1]) or 12
local providers_used = { "unknownproxies", "oxylabs" }

-- Runs a command with extra environment; returns exit code, stdout, stderr.
local function run(argv, env)
  return resi.await(function(done)
    local out, err = uv.new_pipe(), uv.new_pipe()
    local bufs, pending, code = { {}, {} }, 3, nil
    local function step() pending = pending - 1; if pending == 0 then done(code, table.concat(bufs[1]), table.concat(bufs[2])) end end
    local vars = uv.os_environ()
    for k, v in pairs(env) do vars[k] = v end
    local envlist = {}
    for k, v in pairs(vars) do envlist[#envlist + 1] = k .. "=" .. v end
    local handle
    handle = uv.spawn(argv[1], { args = { table.unpack(argv, 2) }, env = envlist, stdio = { nil, out, err } },
      function(c) code = c; handle:close(); step() end)
    for i, pipe in ipairs({ out, err }) do
      pipe:read_start(function(_, data)
        if data then bufs[i][#bufs[i] + 1] = data else pipe:close(); step() end
      end)
    end
  end)
end

-- A usage bar: 20 cells.
local function bar(share)
  local n = math.min(20, math.floor(share * 20 + 0.5))
  return ("[%s%s]"):format(string.rep("#", n), string.rep(".", 20 - n))
end

local sim = assert(require("resi.sim").start { ports = { 0, 0, 0 }, seed = 42, speed = 600, traffic_rate = 0.2 })
local dir = os.tmpname()
os.remove(dir)
assert(uv.fs_mkdir(dir, 448))
local env = {
  RESI_UNKNOWNPROXIES_URL = sim.urls.unknownproxies, RESI_OXYLABS_URL = sim.urls.oxylabs,
  UNKNOWNPROXIES_USERNAME = sim.accounts.unknownproxies[1].username,
  UNKNOWNPROXIES_PASSWORD = sim.accounts.unknownproxies[1].password,
  OXYLABS_USERNAME = sim.accounts.oxylabs[1].username, OXYLABS_PASSWORD = sim.accounts.oxylabs[1].password,
}
print(("resi sim is serving UnknownProxies at %s and Oxylabs at %s"):format(sim.urls.unknownproxies, sim.urls.oxylabs))
print("traffic is flowing: 10 simulated minutes per second\n")

local accounts = {}
for _, name in ipairs(providers_used) do
  accounts[name] = providers.open(name, name == "unknownproxies"
    and { username = env.UNKNOWNPROXIES_USERNAME, password = env.UNKNOWNPROXIES_PASSWORD, base_url = env.RESI_UNKNOWNPROXIES_URL }
    or { username = env.OXYLABS_USERNAME, password = env.OXYLABS_PASSWORD, base_url = env.RESI_OXYLABS_URL })
end

for round = 1, rounds do
  print(("── round %d ─────────────────────────────────────────────"):format(round))
  for _, name in ipairs(providers_used) do
    local ok, tokens = pcall(accounts[name].tokens, accounts[name])
    if ok then
      for _, t in ipairs(tokens) do
        local share = providers.used_share(t)
        print(("  %-15s %-14s %-12s %-8s %s %s"):format(name, t.id, t.username, t.status,
          share and bar(share) or "[ unlimited        ]", share and ("%5.1f%%"):format(share * 100) or ""))
      end
    else
      print(("  %-15s unavailable: %s"):format(name, tostring(tokens)))
    end
  end
  local code, out, err = run({ uv.exepath(), "run", "scripts/rotate.lua", "--provider", table.concat(providers_used, ","),
    "--state", dir .. "/state.json", "--out", dir .. "/proxies.txt", "--manifest", dir .. "/manifest.json",
    "--grace", "0.05" }, env)
  for line in out:gmatch("[^\n]+") do print("  rotate.lua: " .. line) end
  if code ~= 0 then
    for line in err:gmatch("[^\n]+") do print("  rotate.lua (stderr): " .. line) end
  end
  resi.sleep(1)
end

local manifest = json.decode(assert(io.open(dir .. "/manifest.json")):read("a"))
print(("\npublished %d live credentials to %s (passwords masked here):"):format(#manifest.credentials, dir .. "/proxies.txt"))
for _, c in ipairs(manifest.credentials) do
  print(("  %-15s %s:…@%s:%d%s"):format(c.provider, c.username, c.host, c.port, c.replaces and ("  (replaces " .. c.replaces .. ")") or ""))
end
sim:stop()
