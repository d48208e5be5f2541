--- resi sim: runs the provider sandbox until SIGINT or SIGTERM. Prints the
--- RESI_*_URL exports first (one per line, nothing before them on stdout),
--- then, for generated accounts, the credentials as the provider modules'
--- environment variables, so `eval "$(resi sim ... | head -n 8)"` works.
local argparse = require "resi.argparse"
local task = require "resi.task"

local help = [[
usage: resi sim [--host 127.0.0.1] [--ports UP,OXY,RF] [--accounts FILE]
                [--speed X] [--seed N] [--no-traffic] [--traffic-rate R]
                [--rate-window SECONDS]

A stateful local sandbox of the UnknownProxies, Oxylabs and ResiFactory APIs,
one loopback port each, with the real APIs' path layout. On start it prints
  RESI_UNKNOWNPROXIES_URL=http://127.0.0.1:8401/api/v1
  RESI_OXYLABS_URL=http://127.0.0.1:8402/v2
  RESI_RESIFACTORY_URL=http://127.0.0.1:8403/api/v1
then, when the accounts were generated, their credentials as
UNKNOWNPROXIES_USERNAME=..., OXYLABS_USERNAME=..., RF_API_KEY=... lines.

Options:
  --host ADDR          address to listen on (default 127.0.0.1)
  --ports UP,OXY,RF    ports (default 8401,8402,8403; 0 picks a free port)
  --accounts FILE      accounts as JSON (see README); default: generated
  --seed N             seed for generated accounts and ids (default 1)
  --speed X            simulated seconds per real second (default 1)
  --no-traffic         do not generate proxy traffic on tokens and sub-users
  --traffic-rate R     share of each token's limit used per simulated hour
                       (default 0.5)
  --rate-window S      ResiFactory's rolling rate-limit window in seconds
                       (default 60; shorten it for tests)

Admin API on every port, loopback only: GET /_sim/state, POST /_sim/clock,
POST /_sim/usage, GET|POST|DELETE /_sim/faults, POST /_sim/traffic,
POST /_sim/config. Stops on SIGINT or SIGTERM.]]

local SPEC = {
  host = { type = "string" }, ports = { type = "string" }, accounts = { type = "string" },
  seed = { type = "integer" }, speed = { type = "number" }, ["no-traffic"] = { type = "flag" },
  ["traffic-rate"] = { type = "number" }, ["rate-window"] = { type = "number" },
}

-- Turns parsed options into resi.sim.start options (usage errors exit 2).
local function start_options(o)
  local usage = argparse.usage_error
  local opts = { host = o.host, seed = o.seed, speed = o.speed, traffic_rate = o.traffic_rate,
    rate_window = o.rate_window, traffic = not o.no_traffic }
  if o.ports then
    local ports = {}
    for p in (o.ports .. ","):gmatch("([^,]*),") do
      local n = math.tointeger(tonumber(p))
      if not n or n < 0 or n > 65535 then usage(("--ports: %q is not a port (0..65535)"):format(p)) end
      ports[#ports + 1] = n
    end
    if #ports ~= 3 then usage("--ports expects three ports: UP,OXY,RF") end
    opts.ports = ports
  end
  if (opts.speed and opts.speed < 0) or (opts.rate_window and opts.rate_window <= 0) then
    usage("--speed must be >= 0 and --rate-window > 0")
  end
  if o.accounts then
    local accounts, err = require("resi.sim.accounts").load(o.accounts)
    if not accounts then usage(err) end
    opts.accounts = accounts
  end
  return opts
end

-- Waits for SIGINT or SIGTERM without blocking the loop.
local function wait_for_signal()
  local uv = require "luv"
  local got
  local handles = {}
  for _, name in ipairs({ "sigint", "sigterm" }) do
    local h = uv.new_signal()
    h:start(name, function() got = name end)
    handles[#handles + 1] = h
  end
  while not got do task.sleep(0.1) end
  for _, h in ipairs(handles) do h:stop(); h:close() end
  return got
end

-- Starts the sandbox, prints the exports, serves until a signal.
local function main(o)
  local opts = start_options(o)
  local sim, err = require("resi.sim").start(opts)
  if not sim then
    io.stderr:write("resi sim: ", err, "\n")
    task.set_exit_status(1)
    return
  end
  local out = sim:exports()
  if not opts.accounts then
    local up, oxy, rf = sim.accounts.unknownproxies[1], sim.accounts.oxylabs[1], sim.accounts.resifactory[1]
    out[#out + 1] = "UNKNOWNPROXIES_USERNAME=" .. up.username
    out[#out + 1] = "UNKNOWNPROXIES_PASSWORD=" .. up.password
    out[#out + 1] = "OXYLABS_USERNAME=" .. oxy.username
    out[#out + 1] = "OXYLABS_PASSWORD=" .. oxy.password
    out[#out + 1] = "RF_API_KEY=" .. rf.api_key
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
  io.stdout:flush()
  local sig = wait_for_signal()
  sim:stop()
  io.stderr:write("resi sim: stopped (", sig, ")\n")
end

return function(...)
  argparse.run({ ... }, SPEC, help, main)
end
