--- resi sim: runs the provider sandbox until SIGINT or SIGTERM. Prints the
--- RESI_*_URL exports first (one per line, nothing before them on stdout),
--- then, for generated accounts, the credentials as the provider modules'
--- environment variables, so `eval "$(resi sim ... | head -n 8)"` works.
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

-- Reports a usage error and exits with status 2.
local function usage_error(msg)
  io.stderr:write("resi sim: ", msg, "\n(see resi sim --help)\n")
  task.set_exit_status(2)
end

-- A number option's value, or nil and an error.
local function number_opt(name, v, integer)
  local n = tonumber(v)
  if n == nil or (integer and math.tointeger(n) == nil) then
    return nil, ("%s expects %s, got %q"):format(name, integer and "an integer" or "a number", tostring(v))
  end
  return integer and math.tointeger(n) or n
end

-- Parses the command line into resi.sim.start options; nil, message on error.
local function parse(args)
  local opts, i = {}, 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    local function value()
      if inline then return inline end
      i = i + 1
      if args[i] == nil then error({ usage = name .. " needs a value" }) end
      return args[i]
    end
    local err
    if name == "--host" then opts.host = value()
    elseif name == "--ports" then
      local ports = {}
      for p in (value() .. ","):gmatch("([^,]*),") do
        local n = math.tointeger(tonumber(p))
        if not n or n < 0 or n > 65535 then return nil, ("--ports: %q is not a port (0..65535)"):format(p) end
        ports[#ports + 1] = n
      end
      if #ports ~= 3 then return nil, "--ports expects three ports: UP,OXY,RF" end
      opts.ports = ports
    elseif name == "--accounts" then opts.accounts_file = value()
    elseif name == "--seed" then opts.seed, err = number_opt(name, value(), true)
    elseif name == "--speed" then opts.speed, err = number_opt(name, value())
    elseif name == "--traffic-rate" then opts.traffic_rate, err = number_opt(name, value())
    elseif name == "--rate-window" then opts.rate_window, err = number_opt(name, value())
    elseif name == "--no-traffic" then opts.traffic = false
    else return nil, "unknown option " .. a end
    if err then return nil, err end
    if (opts.speed and opts.speed < 0) or (opts.rate_window and opts.rate_window <= 0) then
      return nil, "--speed must be >= 0 and --rate-window > 0"
    end
    i = i + 1
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

return function(...)
  local args = { ... }
  if args[1] == "--help" or args[1] == "-h" then
    io.stdout:write(help, "\n")
    return
  end
  local ok, opts, perr = pcall(parse, args)
  if not ok then return usage_error(type(opts) == "table" and opts.usage or tostring(opts)) end
  if not opts then return usage_error(perr) end
  local generated = opts.accounts_file == nil
  if not generated then
    local accounts, err = require("resi.sim.accounts").load(opts.accounts_file)
    if not accounts then
      io.stderr:write("resi sim: ", err, "\n")
      task.set_exit_status(2)
      return
    end
    opts.accounts = accounts
  end
  local sim, err = require("resi.sim").start(opts)
  if not sim then
    io.stderr:write("resi sim: ", err, "\n")
    task.set_exit_status(1)
    return
  end
  local out = sim:exports()
  if generated then
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
