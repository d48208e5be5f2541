--- resi.sim: a stateful local sandbox of the three provider APIs
--- (UnknownProxies, Oxylabs, ResiFactory), each on its own loopback port with
--- the real APIs' path layout, plus an admin API under /_sim/ (resi.sim.admin),
--- a simulated clock (resi.sim.clock), injectable faults (resi.sim.faults)
--- a traffic generator that uses up tokens' data, and per provider a proxy
--- gateway (resi.sim.gateway: HTTP proxy and SOCKS5 through the issued
--- credentials, billed into their usage; loopback destinations only, any
--- other host is answered by a built-in echo target).
---
---   local sim = require("resi.sim").start{ports = {0, 0, 0}, seed = 7}
---   -- sim.urls.unknownproxies, sim.accounts.unknownproxies[1].username, ...
---   sim:stop()
local json = require "resi.json"
local server = require "resi.server"
local task = require "resi.task"
local admin = require "resi.sim.admin"
local clock = require "resi.sim.clock"
local faults = require "resi.sim.faults"
local accounts_mod = require "resi.sim.accounts"
local util = require "resi.sim.util"

local M = {}

--- Provider modules in port order, with the base path each serves under.
M.PROVIDERS = {
  { name = "unknownproxies", module = "resi.sim.unknownproxies", base = "/api/v1", env = "RESI_UNKNOWNPROXIES_URL" },
  { name = "oxylabs", module = "resi.sim.oxylabs", base = "/v2", env = "RESI_OXYLABS_URL" },
  { name = "resifactory", module = "resi.sim.resifactory", base = "/api/v1", env = "RESI_RESIFACTORY_URL" },
}
M.DEFAULT_PORTS = { 8401, 8402, 8403 }
--- What a gateway port is by default: its API port + this (0 stays 0).
M.GATEWAY_PORT_OFFSET = 10

--- How often the traffic generator runs, in real seconds.
M.TICK = 0.1

---@class resi.sim.world
local World = {}
World.__index = World

--- Advances every provider to the clock's present: usage from the traffic
--- generator (when on) and status changes (expiry) that time brings.
function World:tick()
  local now = self.clock:now()
  local dt = self.config.traffic and math.max(0, now - (self.last_tick or now)) or 0
  self.last_tick = now
  -- a provider's tick adds traffic for dt and does nothing for none (each
  -- brings a status up to date where it is read), so without traffic, as
  -- on every request of a sandbox run with --no-traffic, none is called
  if dt <= 0 then return end
  for _, p in pairs(self.providers) do p:tick(now, dt) end
end

-- Serializes a handler's response the way resi.server would, for faults
-- that must send something other than the response itself.
local function raw_response(res, mangle)
  local body = res.body or (res.json ~= nil and json.encode(res.json)) or ""
  body = mangle(body)
  local lines = { ("HTTP/1.1 %d X"):format(res.status or 200), "Content-Type: application/json",
    "Connection: close" }
  return lines, body
end

-- Sends a response cut short: Content-Length promises the whole body.
local function send_truncated(req, res)
  local lines, body = raw_response(res, function(b) return b end)
  lines[#lines + 1] = "Content-Length: " .. #body
  req.exchange:send_raw(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body:sub(1, #body // 2))
end

-- The handler for one provider's port: admin routes, faults, then the API.
-- `relayed`: the port is the TLS front's backend for a non-loopback host
-- (every client looks like 127.0.0.1 there, so the admin API is refused).
local function handler_for(world, p, base, relayed)
  local prefix = base .. "/"
  local n = #prefix
  return function(req)
    local path = req.path
    if path:sub(1, 6) == "/_sim/" or path == "/_sim" then return admin.handle(world, req, path, p.name, relayed) end
    if path:sub(1, n) ~= prefix then return p:error(404, "not_found", "no such path: " .. path) end
    local rel = path:sub(n)
    world:tick()
    local rule = world.faults:take(p.name, req.method, rel)
    if rule then
      if rule.kind == "latency" and not rule.after then task.sleep(rule.ms / 1000)
      elseif rule.kind == "error" then return p:error(rule.status, "internal_error", "injected fault: HTTP " .. rule.status)
      elseif rule.kind == "reset" then return req.exchange:reset()
      elseif rule.kind == "rate_limit" then
        local res = p:error(429, "rate_limited", "injected fault: rate limited")
        res.headers = res.headers or {}
        res.headers["Retry-After"] = tostring(rule.retry_after)
        return res
      end
    end
    local res = p:handle(req, rel)
    if not rule then return res end
    if rule.kind == "commit_lost" then return req.exchange:reset() end
    if rule.kind == "latency" and rule.after then task.sleep(rule.ms / 1000) end
    if rule.kind == "truncate" then return send_truncated(req, res) end
    if rule.kind == "malformed" then
      local body = res.body or json.encode(res.json)
      return { status = res.status, headers = res.headers, body = body:sub(1, math.max(1, #body // 2)) .. "<!-- garbled -->" }
    end
    return res
  end
end

---@class resi.sim
---@field urls table<string, string>  provider name -> base URL
---@field accounts table              the accounts in use (generated or loaded)
---@field world resi.sim.world
---@field ca_file string|nil          with tls: the CA bundle clients must trust
---@field admin_urls table<string, string>|nil  with tls on a non-loopback host: loopback admin URLs
---@field failed string|nil           set when the TLS front died on its own
local Sim = {}
Sim.__index = Sim

--- Lines `NAME=URL` for each provider, in port order; with tls, then
--- `SSL_CERT_FILE=...` (the CA bundle to trust).
function Sim:exports()
  local out = {}
  for _, def in ipairs(M.PROVIDERS) do out[#out + 1] = def.env .. "=" .. self.urls[def.name] end
  if self.ca_file then out[#out + 1] = "SSL_CERT_FILE=" .. self.ca_file end
  return out
end

--- Lines `RESI_SIM_<PROVIDER>_GATEWAY=HOST:PORT`, in port order (none
--- without gateways).
function Sim:gateway_exports()
  local out = {}
  for _, def in ipairs(M.PROVIDERS) do
    if self.gateway_addresses[def.name] then
      out[#out + 1] = ("RESI_SIM_%s_GATEWAY=%s"):format(def.name:upper(), self.gateway_addresses[def.name])
    end
  end
  return out
end

--- Stops serving, the traffic generator and the TLS front (which removes
--- its certificates).
function Sim:stop()
  if self.ticker then self.ticker:cancel(); self.ticker = nil end
  for _, srv in ipairs(self.servers) do srv:close() end
  self.servers = {}
  for _, gw in pairs(self.gateways or {}) do gw:close() end
  self.gateways = {}
  if self.front then self.front:stop(); self.front = nil end
end

--- Is host a loopback address (where every client is on this machine)?
---@param host string
function M.is_loopback(host)
  return host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

-- The URL clients on this machine use for a server: a wildcard listener
-- (0.0.0.0, ::) is reached over loopback, which resi's clients allow.
local function local_url(srv, host)
  if host == "0.0.0.0" then return "http://127.0.0.1:" .. srv.port end
  if host == "::" then return "http://[::1]:" .. srv.port end
  return srv.url
end

-- Creates the world (clock, generator, config) from start options.
local function new_world(opts, rng)
  return setmetatable({
    clock = clock.new(opts.speed or 1, opts.start), rng = rng, faults = faults.new(), providers = {},
    gateway_ports = {},
    config = { traffic = opts.traffic ~= false, traffic_forced = opts.traffic == true, bill_scale = opts.bill_scale or 1,
      traffic_rate = opts.traffic_rate or M.TRAFFIC_RATE,
      rate_window = opts.rate_window or 60, generate_limit = 20, read_limit = 120 },
  }, World)
end

-- Listens for one provider; the server, or nil and a message.
local function listen(world, p, def, host, port, relayed)
  local srv, err = server.serve{ host = host, port = port, handler = handler_for(world, p, def.base, relayed) }
  if not srv then return nil, ("cannot listen for %s on %s:%s: %s"):format(def.name, host, port, err) end
  return srv
end

-- Puts the TLS front before the backends (self.servers, 127.0.0.1) and
-- points urls at it; with a non-loopback host, also opens loopback admin
-- listeners. True or nil, message.
function Sim:_start_tls(host, ports)
  local backends, names = {}, {}
  for i, def in ipairs(M.PROVIDERS) do backends[i], names[i] = self.servers[i].port, def.name end
  local front, err = require("resi.sim.tls").start{ host = host, ports = ports, backends = backends, names = names,
    on_exit = function(msg) self.failed = msg end }
  if not front then return nil, err end
  self.front, self.ca_file, self.tls_names = front, front.ca_file, front.names
  for i, def in ipairs(M.PROVIDERS) do self.urls[def.name] = front.urls[i] .. def.base end
  if M.is_loopback(host) then return true end
  self.admin_urls = {}
  for _, def in ipairs(M.PROVIDERS) do
    local srv, lerr = listen(self.world, self.world.providers[def.name], def, "127.0.0.1", 0, false)
    if not srv then return nil, lerr end
    self.servers[#self.servers + 1] = srv
    self.admin_urls[def.name] = srv.url .. "/_sim"
  end
  return true
end

-- Starts a gateway per provider (unless opts.gateways is false) on
-- opts.gateway_ports or each API port + GATEWAY_PORT_OFFSET. True, or nil
-- and a message.
function Sim:_start_gateways(opts, host, ports)
  if opts.gateways == false then return true end
  local gateway = require "resi.sim.gateway"
  for i, def in ipairs(M.PROVIDERS) do
    local port = opts.gateway_ports and opts.gateway_ports[i]
    if port == nil then
      port = (ports[i] or 0) == 0 and 0 or ports[i] + M.GATEWAY_PORT_OFFSET
    end
    local gw, err = gateway.start(self.world, self.world.providers[def.name], host, port)
    if not gw then return nil, err end
    self.gateways[def.name] = gw
    local shown = host == "0.0.0.0" and "127.0.0.1" or host == "::" and "::1" or host
    self.gateway_addresses[def.name] = (shown:find(":", 1, true) and ("[" .. shown .. "]") or shown) .. ":" .. gw.port
  end
  return true
end

--- Default share of each token's limit the traffic generator uses per
--- simulated hour, times a per-token factor in 0.5..1.5: 1.5%, so a full
--- token lasts about 3 simulated days. At the README's --speed 600 (10
--- simulated hours a real minute) that is 15% x factor a real minute: the
--- generated tokens (20%, 60%, 85%; sub-users 42%, 82%, unlimited) show
--- some crossing 90% in the first minute, the first ones exhausted after
--- about one, and the others healthy for several more, where 0.5 used up
--- every token within 15 s.
M.TRAFFIC_RATE = 0.015

--- Starts the sandbox. Options: host ("127.0.0.1"), ports ({up, oxy, rf};
--- 0 picks a free port), accounts (a table shaped like --accounts FILE; when
--- absent they are generated from seed), seed (integer), speed (simulated
--- seconds per real second), traffic (false turns the generator off),
--- traffic_rate (share of each limit used per simulated hour, M.TRAFFIC_RATE),
--- rate_window (ResiFactory's window in seconds, 60), start (simulated epoch
--- at start), tls (true: HTTPS on host:ports through resi.sim.tls, the
--- sandbox itself on 127.0.0.1; needs openssl and stunnel4), gateway_ports
--- ({up, oxy, rf}; default each API port + 10, 0 for 0), gateways (false:
--- none). traffic: nil turns the generator off at the first byte a gateway
--- bills; true keeps it on. bill_scale: each byte through a gateway is
--- billed as this many (default 1; the rotation demo fills GB tokens with
--- kB of real traffic).
---@param opts? table
---@return resi.sim|nil sim
---@return string|nil err
function M.start(opts)
  opts = opts or {}
  local seed = math.tointeger(opts.seed) or 1
  local rng = util.rng(seed)
  local accounts = opts.accounts
  if accounts == nil then accounts = accounts_mod.generate(rng) end
  local ok, err = accounts_mod.check(accounts)
  if not ok then return nil, err end
  local world = new_world(opts, rng)
  local self = setmetatable({ world = world, accounts = accounts, urls = {}, servers = {}, gateways = {},
    gateway_addresses = {} }, Sim)
  local host, ports = opts.host or "127.0.0.1", opts.ports or M.DEFAULT_PORTS
  local relayed = opts.tls and not M.is_loopback(host)
  for i, def in ipairs(M.PROVIDERS) do
    local made, p = pcall(require(def.module).new, world, accounts)
    if not made then -- a provider refused its accounts (a bad seed): say why, listen nowhere
      self:stop()
      return nil, tostring(p)
    end
    p.name = def.name
    world.providers[def.name] = p
    local srv, serr = listen(world, p, def, opts.tls and "127.0.0.1" or host, opts.tls and 0 or (ports[i] or 0), relayed)
    if not srv then
      self:stop()
      return nil, serr
    end
    self.servers[#self.servers + 1] = srv
    self.urls[def.name] = local_url(srv, host) .. def.base
  end
  local gok, gerr = self:_start_gateways(opts, host, ports)
  if not gok then
    self:stop()
    return nil, gerr
  end
  if opts.tls then
    local started, terr = self:_start_tls(host, ports)
    if not started then
      self:stop()
      return nil, terr
    end
  end
  world.last_tick = world.clock:now()
  self.ticker = task.spawn(function()
    while true do
      task.sleep(M.TICK)
      world:tick()
    end
  end)
  return self
end

return M
