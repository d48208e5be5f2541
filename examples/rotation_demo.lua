#!/usr/bin/env resi
-- The rotation workflow end to end, in one command, against resi sim.
--
-- Starts the provider sandbox in this process (10 simulated minutes per real
-- second), then every second sends real proxy traffic through each live
-- credential via the sandbox's gateways (each byte billed as 4,000, so a GB
-- token fills with 250 kB), shows each token's usage and runs
-- scripts/rotate.lua as a separate process, exactly as a cron job would:
-- tokens that cross 90% get a replacement, the new credentials are published
-- to a proxy list, and the old tokens are deleted after a short grace period
-- on a later run. The traffic shows new credentials working and retired ones
-- refused by the gateway (407), as a real provider's would.
--
--   ./resi examples/rotation_demo.lua [ROUNDS] [--keep DIR]
--
-- rotate.lua's files (the proxy list, the manifest and the journal) hold the
-- sandbox's passwords in plain text, as real ones would. They go to a new
-- temporary directory that is removed when the demo ends, however it ends
-- (an error, Ctrl-C); --keep DIR writes them to DIR instead and leaves them
-- there to look at.
local argparse = require "resi.argparse"
local json = require "resi.json"
local http = require "resi.http"
local providers = require "resi.providers"
local proxylist = require "resi.proxylist"
local uv = resi.uv

local help = [[
usage: resi examples/rotation_demo.lua [ROUNDS] [--keep DIR]

Runs scripts/rotate.lua against resi sim for ROUNDS rounds (default 12).
  --keep DIR   write rotate.lua's files to DIR (a new or empty directory) and
               keep them; they hold the sandbox's passwords in plain text.
               Without it they go to a temporary directory removed at exit.]]

local SPEC = { keep = { type = "string" } }
local PROVIDERS = { "unknownproxies", "oxylabs" }
-- scripts/rotate.lua next to this file's directory, wherever the demo is run from.
local ROTATE = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/../scripts/rotate.lua"

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

-- The directory for rotate.lua's files: DIR of --keep (made when missing,
-- mode 0700; it must be empty, since a journal of another sandbox would
-- not match this one), or a new temporary directory.
local function work_dir(keep)
  if not keep then
    return assert(uv.fs_mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/resi-rotation-demo.XXXXXX"))
  end
  local st = uv.fs_stat(keep)
  if not st then
    local ok, err = uv.fs_mkdir(keep, 448)
    if not ok then argparse.usage_error(("--keep %s: cannot create it: %s"):format(keep, err)) end
  elseif st.type ~= "directory" then
    argparse.usage_error(("--keep %s: not a directory"):format(keep))
  elseif uv.fs_scandir_next(assert(uv.fs_scandir(keep))) then
    argparse.usage_error(("--keep %s: not empty (the demo starts a new journal: give a new or empty directory)"):format(keep))
  end
  return keep
end

-- Removes dir and the files in it (all made by this demo and rotate.lua:
-- the directory was new or empty).
local function remove_dir(dir)
  local scan = uv.fs_scandir(dir)
  for name in function() return scan and uv.fs_scandir_next(scan) end do uv.fs_unlink(dir .. "/" .. name) end
  uv.fs_rmdir(dir)
end

-- A to-be-closed guard that, when the demo ends (normally, by an error or
-- after Ctrl-C), stops what ctx holds (the sandbox, the signal watchers)
-- and removes the directory, or says where it was kept and why.
local function cleanup_guard(dir, keep, ctx)
  return setmetatable({}, { __close = function()
    for _, s in ipairs(ctx.signals or {}) do if not s:is_closing() then s:close() end end
    if ctx.sim then ctx.sim:stop() end
    if keep then
      print(("\nkept %s (--keep): store.db, proxies.txt and manifest.json hold the sandbox's passwords in plain"
        .. " text (mode 0600); remove the directory when done"):format(dir))
    else
      remove_dir(dir)
      print(("\nremoved %s (rotate.lua's files; pass --keep DIR to keep them)"):format(dir))
    end
  end })
end

-- Watches SIGINT and SIGTERM: either sets state.interrupted, so the demo
-- stops after the current step and still cleans up.
local function watch_signals(state)
  local out = {}
  for _, name in ipairs({ "sigint", "sigterm" }) do
    local s = uv.new_signal()
    s:start(name, function() state.interrupted = name end)
    out[#out + 1] = s
  end
  return out
end

-- The rotate.lua environment for the sandbox's first accounts.
local function sandbox_env(sim)
  return {
    RESI_UNKNOWNPROXIES_URL = sim.urls.unknownproxies, RESI_OXYLABS_URL = sim.urls.oxylabs,
    UNKNOWNPROXIES_USERNAME = sim.accounts.unknownproxies[1].username,
    UNKNOWNPROXIES_PASSWORD = sim.accounts.unknownproxies[1].password,
    OXYLABS_USERNAME = sim.accounts.oxylabs[1].username, OXYLABS_PASSWORD = sim.accounts.oxylabs[1].password,
  }
end

-- One account per provider, on the sandbox, its gateway the sandbox's.
local function open_accounts(env, sim)
  local accounts = {}
  for _, name in ipairs(PROVIDERS) do
    accounts[name] = providers.open(name, name == "unknownproxies"
      and { username = env.UNKNOWNPROXIES_USERNAME, password = env.UNKNOWNPROXIES_PASSWORD, base_url = env.RESI_UNKNOWNPROXIES_URL,
        gateway = sim.gateway_addresses.unknownproxies }
      or { username = env.OXYLABS_USERNAME, password = env.OXYLABS_PASSWORD, base_url = env.RESI_OXYLABS_URL,
        gateway = sim.gateway_addresses.oxylabs })
  end
  return accounts
end

-- The sandbox's generated accounts, with the Oxylabs sub-users' passwords
-- set here: the API never returns them, and the demo is their customer.
local function demo_accounts()
  local accounts = require("resi.sim.accounts").generate(require("resi.sim.util").rng(42))
  local known = {}
  for i, su in ipairs(accounts.oxylabs[1].sub_users) do
    su.password = "Demo_pass_" .. i .. "Xy"
    known["customer-" .. su.username] = su.password
  end
  return accounts, known
end

-- The proxy URL of a token (nil while its password is unknown): its
-- password from the API, the published list or the demo's own.
local function proxy_url(acct, t, known)
  local e = acct:proxy_entry(t)
  if not e then
    local user = acct.name == "oxylabs" and "customer-" .. t.username or t.username
    if not known[user] then return nil end
    e = { host = acct.gateway.host, port = acct.gateway.port, user = user, pass = known[user] }
  end
  return ("http://%s:%s@%s:%d"):format(http.escape(e.user), http.escape(e.pass), e.host, e.port)
end

-- Sends 256 kB through every live credential seen so far (seen: token id
-- -> {url, new}, false once refused); says when a new one works and when
-- a retired one is refused.
local function drive_traffic(accounts, dir, seen, known)
  local published = io.open(dir .. "/proxies.txt") and proxylist.load(dir .. "/proxies.txt", { format = "url" })
  for i = 1, published and #published or 0 do known[published[i].user] = published[i].pass end
  local sent = 0
  for _, name in ipairs(PROVIDERS) do
    local ok, tokens = pcall(accounts[name].tokens, accounts[name])
    for _, t in ipairs(ok and tokens or {}) do
      if seen[t.id] == nil and t.status == "active" then seen[t.id] = { url = proxy_url(accounts[name], t, known), new = true } end
    end
  end
  local ids = {}
  for id, s in pairs(seen) do if s then ids[#ids + 1] = id end end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local s = seen[id]
    local res = s.url and http.request { url = "http://ip.sim/bytes/262144", proxy = s.url, allow_plain_http = true }
    if res and res.status == 200 then
      sent = sent + #res.body
      if s.new then print(("  gateway: %s works (exit %s)"):format(id, res.headers["x-sim-exit-ip"])) end
      s.new = false
    elseif res then
      print(("  gateway: %s refused (%d: %s)"):format(id, res.status, tostring((res:json() or {}).error)))
      seen[id] = false -- retired: never used again
    end
  end
  print(("  gateway: %d kB of real traffic through the live credentials"):format(sent // 1024))
end

-- Prints every token's usage.
local function show_usage(accounts)
  for _, name in ipairs(PROVIDERS) do
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
end

-- Runs rotate.lua once, as cron would, and shows what it said.
local function rotate_once(dir, env, sim)
  local code, out, err = run({ uv.exepath(), "run", ROTATE, "--provider", table.concat(PROVIDERS, ","),
    "--store", dir .. "/store.db", "--out", dir .. "/proxies.txt", "--manifest", dir .. "/manifest.json",
    "--format", "url", "--grace", "0.05", "--gateway", "unknownproxies=" .. sim.gateway_addresses.unknownproxies,
    "--gateway", "oxylabs=" .. sim.gateway_addresses.oxylabs }, env)
  for line in out:gmatch("[^\n]+") do print("  rotate.lua: " .. line) end
  if code ~= 0 then
    for line in err:gmatch("[^\n]+") do print("  rotate.lua (stderr): " .. line) end
  end
end

-- Prints the published credentials without their passwords.
local function show_published(dir)
  local f = io.open(dir .. "/manifest.json")
  if not f then
    print("\nnothing was published")
    return
  end
  local manifest = json.decode(f:read("a"))
  f:close()
  print(("\nrotate.lua's manifest lists %d live credentials (passwords not shown):"):format(#manifest.credentials))
  for _, c in ipairs(manifest.credentials) do
    local note = c.replaces and ("  (replaces " .. c.replaces .. ")") or ""
    if not c.published then note = note .. "  (not in the list: " .. tostring(c.reason) .. ")" end
    print(("  %-15s %s:…@%s:%d%s"):format(c.provider, c.username, c.host, c.port, note))
  end
end

-- The demo.
local function main(opts, rest)
  local rounds = math.tointeger(tonumber(rest[1] or "12"))
  if not rounds or rounds < 1 then argparse.usage_error(("ROUNDS must be a whole number >= 1, got %q"):format(rest[1])) end
  local dir, state = work_dir(opts.keep), {}
  local _ <close> = cleanup_guard(dir, opts.keep, state)
  state.signals = watch_signals(state)
  local sim_accounts, known = demo_accounts()
  state.sim = assert(require("resi.sim").start { ports = { 0, 0, 0 }, seed = 42, speed = 600, traffic = false,
    accounts = sim_accounts, bill_scale = 4000 })
  local sim = state.sim
  local env = sandbox_env(sim)
  print(("resi sim is serving UnknownProxies at %s and Oxylabs at %s"):format(sim.urls.unknownproxies, sim.urls.oxylabs))
  print(("proxy gateways at %s and %s (10 simulated minutes per second); rotate.lua's files are in %s\n")
    :format(sim.gateway_addresses.unknownproxies, sim.gateway_addresses.oxylabs, dir))
  local accounts, seen = open_accounts(env, sim), {}
  for round = 1, rounds do
    if state.interrupted then break end
    print(("── round %d ─────────────────────────────────────────────"):format(round))
    drive_traffic(accounts, dir, seen, known)
    show_usage(accounts)
    rotate_once(dir, env, sim)
    if not state.interrupted then resi.sleep(1) end
  end
  show_published(dir)
  if state.interrupted then
    print(("\ninterrupted (%s)"):format(state.interrupted))
    require("resi.task").set_exit_status(state.interrupted == "sigint" and 130 or 143)
  end
end

argparse.run(resi.args, SPEC, help, main)
