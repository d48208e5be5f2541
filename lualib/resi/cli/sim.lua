--- resi sim: runs the provider sandbox until SIGINT or SIGTERM. Prints the
--- RESI_*_URL exports first (one per line, nothing before them on stdout),
--- with --tls then SSL_CERT_FILE=..., then, for generated accounts, the
--- credentials as the provider modules' environment variables, so
--- `eval "$(resi sim ... | sed 's/^/export /')"` works; last, the proxy
--- gateways as RESI_SIM_<PROVIDER>_GATEWAY=HOST:PORT. Notes (warnings,
--- the TLS certificate's names, admin URLs) go to stderr.
local argparse = require "resi.argparse"
local task = require "resi.task"

local help = [[
usage: resi sim [--host 127.0.0.1] [--ports UP,OXY,RF] [--accounts FILE]
                [--speed X] [--seed N] [--no-traffic] [--traffic-rate R]
                [--rate-window SECONDS] [--tls] [--env-file FILE]
                [--gateway-ports UP,OXY,RF] [--no-gateways] [--traffic]
                [--bill-scale X]

A stateful local sandbox of the UnknownProxies, Oxylabs and ResiFactory APIs,
one port each, with the real APIs' path layout. On start it prints
  RESI_UNKNOWNPROXIES_URL=http://127.0.0.1:8401/api/v1
  RESI_OXYLABS_URL=http://127.0.0.1:8402/v2
  RESI_RESIFACTORY_URL=http://127.0.0.1:8403/api/v1
then, with --tls, SSL_CERT_FILE=/tmp/resi-sim-tls-.../ca.pem, then, when
the accounts were generated, their credentials as UNKNOWNPROXIES_USERNAME=...,
UNKNOWNPROXIES_PASSWORD=..., OXYLABS_USERNAME=..., OXYLABS_PASSWORD=...,
RF_API_KEY=... lines, then the proxy gateways:
  RESI_SIM_UNKNOWNPROXIES_GATEWAY=127.0.0.1:8411
  RESI_SIM_OXYLABS_GATEWAY=127.0.0.1:8412
  RESI_SIM_RESIFACTORY_GATEWAY=127.0.0.1:8413

Proxy gateways: each provider's port speaks HTTP proxy (absolute-form and
CONNECT) and SOCKS5 (RFC 1928/1929) with the credentials the sandbox
issued, in the provider's username dialect:
  Oxylabs         customer-USER-cc-US-sessid-X-sesstime-10
  UnknownProxies  token username, PASSWORD or PASSWORD-123456789 (a session)
  ResiFactory     user-ACCOUNT-country-us-session-ID-sesstime-30 (generated)
Wrong, expired, deleted, disabled or exhausted credentials get 407 (SOCKS:
auth failure); ResiFactory demo credentials never work. Bytes both ways
are billed to the token, sub-user or pool balance (crossing a data limit
expires it at once) and to the target's stats.

The sandbox never connects off this machine: only loopback destinations
(127.0.0.0/8, ::1, localhost, asked for by loopback clients) are
connected; a request for any other host (e.g. http://ip.sim/) is answered
by a built-in echo target with the exit IP and country the credential
would have had (a sticky session keeps its exit for its lifetime; a
rotating credential gets a new one per request, and a CONNECT or SOCKS5
tunnel keeps one for its life). Plain HTTP only: TLS to the echo target is
closed.

Options:
  --host ADDR          IP address to listen on (default 127.0.0.1; 0.0.0.0 or
                       :: for every interface; localhost means 127.0.0.1)
  --ports UP,OXY,RF    ports (default 8401,8402,8403; 0 picks a free port)
  --accounts FILE      accounts as JSON (see README); default: generated
  --seed N             seed for generated accounts and ids (default 1)
  --speed X            simulated seconds per real second (default 1)
  --no-traffic         do not generate proxy traffic on tokens and sub-users
  --traffic            keep the traffic generator on after gateway traffic
                       (by default the first byte a gateway bills turns it
                       off: usage then comes from real use)
  --gateway-ports UP,OXY,RF
                       proxy gateway ports (default: each API port + 10,
                       8411,8412,8413; 0 picks a free port)
  --no-gateways        do not open the proxy gateways
  --bill-scale X       bill each byte through a gateway as X bytes (default
                       1; e.g. 4000 fills a GB token with 250 kB of traffic)
  --traffic-rate R     share of each token's limit used per simulated hour,
                       times a per-token factor in 0.5..1.5 (default 0.015:
                       a token lasts about 3 simulated days)
  --rate-window S      ResiFactory's rolling rate-limit window in seconds
                       (default 60; shorten it for tests)
  --tls                serve HTTPS: a CA and a certificate for this machine's
                       names and addresses are made at start-up (with
                       openssl) and stunnel4 serves TLS on the ports; the CA
                       file is printed as SSL_CERT_FILE=... and removed on
                       exit. Needed for resi clients on other machines: they
                       refuse plain http:// to any host but loopback.
  --env-file FILE      also write the same lines, as `export NAME='value'`,
                       to FILE (mode 0600) once every port is listening: it
                       appears whole, so `until [ -e FILE ]` waits for it;
                       removed when the sandbox stops

Admin API on every port, loopback clients only: GET /_sim/state,
POST /_sim/clock, POST /_sim/usage, GET|POST|DELETE /_sim/faults,
POST /_sim/traffic, POST /_sim/config. With --tls on a non-loopback --host
it is served on separate loopback ports instead (printed on stderr).
Stops on SIGINT or SIGTERM.]]

local SPEC = {
  host = { type = "string" }, ports = { type = "string" }, accounts = { type = "string" },
  seed = { type = "integer" }, speed = { type = "number" }, ["no-traffic"] = { type = "flag" },
  ["traffic-rate"] = { type = "number" }, ["rate-window"] = { type = "number" }, tls = { type = "flag" },
  ["env-file"] = { type = "string" }, ["gateway-ports"] = { type = "string" },
  ["no-gateways"] = { type = "flag" }, traffic = { type = "flag" },
  ["bill-scale"] = { type = "number" },
}

-- Checks --host: a numeric address (localhost becomes 127.0.0.1). Returns
-- the address, or nil and the problem.
local function check_host(host)
  if host == nil then return "127.0.0.1" end
  if host == "localhost" then return "127.0.0.1" end
  local bare = host:match("^%[(.*)%]$") or host
  if require("resi.sim.tls").ip_version(bare) then return bare end
  return nil, ("--host must be an IP address to listen on (127.0.0.1, ::1, 0.0.0.0, ::, or one of this "
    .. "machine's addresses), got %q"):format(host)
end

-- Checks --ports (or --gateway-ports, named by opt): three ports
-- 0..65535, no port twice. Returns the list, or nil and the problem.
local function check_ports(text, opt)
  opt = opt or "--ports"
  if text == nil then return nil end
  local ports, seen = {}, {}
  for p in (text .. ","):gmatch("([^,]*),") do
    local n = math.tointeger(tonumber(p))
    if not n or n < 0 or n > 65535 then return nil, ("%s: %q is not a port (0..65535)"):format(opt, p) end
    if n ~= 0 and seen[n] then return nil, ("%s: port %d is given twice"):format(opt, n) end
    seen[n] = true
    ports[#ports + 1] = n
  end
  if #ports ~= 3 then return nil, ("%s expects three ports UP,OXY,RF, got %d"):format(opt, #ports) end
  return ports
end

-- Checks a number option against a lower bound (and finiteness); nil when
-- fine, else the problem naming the option.
local function check_number(name, v, min, inclusive, what)
  if v == nil then return nil end
  if v ~= v or v == math.huge or v == -math.huge or v < min or (not inclusive and v == min) then
    return ("--%s must be %s, got %s"):format(name, what, tostring(v))
  end
  return nil
end

-- Turns parsed options into resi.sim.start options. Every bad option is
-- reported at once, each naming itself (a usage error: exit status 2).
local function start_options(o, rest)
  local problems = {}
  local function add(msg) if msg then problems[#problems + 1] = msg end end
  local host, herr = check_host(o.host)
  add(herr)
  local ports, perr = check_ports(o.ports)
  add(perr)
  local gateway_ports, gerr = check_ports(o.gateway_ports, "--gateway-ports")
  add(gerr)
  if o.traffic and o.no_traffic then add("--traffic and --no-traffic exclude each other") end
  add(check_number("speed", o.speed, 0, true, "a finite number >= 0 (simulated seconds per real second)"))
  add(check_number("traffic-rate", o.traffic_rate, 0, true, "a finite number >= 0 (share of each limit per simulated hour)"))
  add(check_number("rate-window", o.rate_window, 0, false, "a finite number of seconds > 0"))
  add(check_number("bill-scale", o.bill_scale, 0, false, "a finite number > 0 (bytes billed per byte through a gateway)"))
  if #rest > 0 then add(("resi sim takes no arguments, got %q (options start with --)"):format(rest[1])) end
  local opts = { host = host, ports = ports, seed = o.seed, speed = o.speed, traffic_rate = o.traffic_rate,
    rate_window = o.rate_window, traffic = (not o.no_traffic) and (o.traffic or nil), tls = o.tls,
    gateway_ports = gateway_ports, gateways = not o.no_gateways, bill_scale = o.bill_scale }
  if o.accounts then
    local accounts, err = require("resi.sim.accounts").load(o.accounts)
    add(err and ("--accounts " .. err))
    opts.accounts = accounts
  end
  if #problems > 0 then argparse.usage_error(table.concat(problems, "\n")) end
  return opts
end

-- Waits for SIGINT or SIGTERM (or the sandbox failing) without blocking the loop.
local function wait_for_signal(sim)
  local uv = require "luv"
  local got
  local handles = {}
  for _, name in ipairs({ "sigint", "sigterm" }) do
    local h = uv.new_signal()
    h:start(name, function() got = name end)
    handles[#handles + 1] = h
  end
  while not got and not sim.failed do task.sleep(0.1) end
  for _, h in ipairs(handles) do h:stop(); h:close() end
  return got
end

-- Notes on stderr for a host other machines can reach: without --tls, why
-- remote resi clients will refuse the URLs; with it, what the certificate
-- covers and where the admin API is.
local function host_notes(sim, opts)
  local sim_mod = require "resi.sim"
  if sim_mod.is_loopback(opts.host) and not opts.tls then return end
  local err = io.stderr
  if not opts.tls then
    err:write(("resi sim: warning: listening on %s over plain HTTP. resi clients refuse plain http:// to any host "
      .. "but loopback (HTTPS only, DESIGN §9), so from other machines only non-resi clients (curl) can use this; "
      .. "on this machine use the 127.0.0.1 URLs printed. Run with --tls to serve HTTPS that resi accepts "
      .. "from anywhere.\n"):format(opts.host))
    return
  end
  local names = {}
  for _, n in ipairs(sim.tls_names.dns) do names[#names + 1] = n end
  for _, n in ipairs(sim.tls_names.ip) do names[#names + 1] = n end
  err:write("resi sim: TLS certificate for ", table.concat(names, ", "), "; trust it with the SSL_CERT_FILE printed ",
    "(copy that file to other machines)\n")
  if sim.admin_urls then
    local list = {}
    for _, def in ipairs(sim_mod.PROVIDERS) do list[#list + 1] = sim.admin_urls[def.name] end
    err:write("resi sim: admin API (this machine only): ", table.concat(list, " "), "\n")
  end
end

-- The exports, then generated credentials, as printed on stdout.
local function output_lines(sim, opts)
  local out = sim:exports()
  if not opts.accounts then
    local up, oxy, rf = sim.accounts.unknownproxies[1], sim.accounts.oxylabs[1], sim.accounts.resifactory[1]
    out[#out + 1] = "UNKNOWNPROXIES_USERNAME=" .. up.username
    out[#out + 1] = "UNKNOWNPROXIES_PASSWORD=" .. up.password
    out[#out + 1] = "OXYLABS_USERNAME=" .. oxy.username
    out[#out + 1] = "OXYLABS_PASSWORD=" .. oxy.password
    out[#out + 1] = "RF_API_KEY=" .. rf.api_key
  end
  for _, line in ipairs(sim:gateway_exports()) do out[#out + 1] = line end
  return out
end

-- Writes the output lines to path as shell exports, atomically (the file
-- appears whole or not at all), mode 0600: it holds sandbox credentials.
local function write_env_file(path, lines)
  local out = {}
  for i, line in ipairs(lines) do
    local name, value = line:match("^([%w_]+)=(.*)$")
    out[i] = ("export %s='%s'"):format(name, value:gsub("'", "'\\''"))
  end
  local ok, err = pcall(require("resi.fs").write_atomic, path, table.concat(out, "\n") .. "\n", 384)
  if ok then return true end
  return nil, (tostring(err):gsub("^[^:]*%.lua:%d+: ", ""))
end

-- Starts the sandbox, prints the exports, serves until a signal.
local function main(o, rest)
  local opts = start_options(o, rest)
  local sim, err = require("resi.sim").start(opts)
  if not sim then
    io.stderr:write("resi sim: ", err, "\n")
    task.set_exit_status(1)
    return
  end
  local lines = output_lines(sim, opts)
  if o.env_file then
    local ok, werr = write_env_file(o.env_file, lines)
    if not ok then
      sim:stop()
      io.stderr:write("resi sim: --env-file ", o.env_file, ": ", tostring(werr), "\n")
      task.set_exit_status(1)
      return
    end
  end
  io.stdout:write(table.concat(lines, "\n"), "\n")
  io.stdout:flush()
  host_notes(sim, opts)
  local sig = wait_for_signal(sim)
  sim:stop()
  if o.env_file then os.remove(o.env_file) end
  if sim.failed then
    io.stderr:write("resi sim: ", sim.failed, "\n")
    task.set_exit_status(1)
    return
  end
  io.stderr:write("resi sim: stopped (", sig, ")\n")
end

--- Runs `resi sim` with the command line's arguments.
---@param ... string
return function(...)
  argparse.run({ ... }, SPEC, help, main)
end
