--- resi.sim.gateway: one provider's proxy gateway in the sandbox: a luv TCP
--- listener speaking HTTP proxy (resi.sim.gateway_http) and SOCKS5
--- (resi.sim.gateway_socks) on one port, told apart by the first byte.
--- Credentials are the ones the sandbox issued, checked in the provider's
--- dialect (resi.sim.gateway_auth); the bytes through them, both ways, are
--- billed to their token, sub-user or pool (and to the target's stats).
---
--- Never an open proxy: a destination is a loopback address (127.0.0.0/8,
--- ::1, localhost) asked for by a loopback client, or else the built-in
--- echo target (resi.sim.gateway_echo) answers; nothing is ever connected
--- off this machine and no name is ever resolved. A request for the
--- gateways' own addresses is the echo too.
local uv = require "luv"
local log = require "resi.log"
local auth = require "resi.sim.gateway_auth"
local echo = require "resi.sim.gateway_echo"
local http_side = require "resi.sim.gateway_http"
local socks_side = require "resi.sim.gateway_socks"
local tunnel = require "resi.sim.gateway_tunnel"
local pp = require "resi.proxy_proto_core"

local M = {}

--- Bytes a connection may hold unparsed before its route is known.
M.MAX_PENDING = http_side.MAX_HEAD + http_side.MAX_BODY + 4096

-- Is host a loopback address or name (no name is resolved)?
local function loopback(host)
  return host == "localhost" or host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

---@class resi.sim.gateway.conn
local C = {}
C.__index = C

--- Drops the first n bytes of the pending input.
---@param n integer
function C:consume(n) self.buf = self.buf:sub(n + 1) end

--- Bills n bytes (and requests) to the connection's credential, times
--- world.config.bill_scale (1; demos bill each real byte as more). Bytes
--- before the destination is known (SOCKS5's auth reply and request) wait
--- in head_bytes for it: C:open bills them to the target.
---@param n integer bytes
---@param requests? integer
function C:bill(n, requests)
  if not self.cred or (n <= 0 and not requests) then return end
  if not self.target then
    self.head_bytes = (self.head_bytes or 0) + n
    return
  end
  self.gw.stats.bytes = self.gw.stats.bytes + n
  self.gw:billed()
  local scale = self.gw.world.config.bill_scale
  if scale ~= 1 then n = math.floor(n * scale) end
  self.cred.bill(n, self.target or "unknown", requests)
end

--- Writes bytes to the client (billed once authenticated); done(err), if
--- given, runs when the write has completed.
---@param data string
---@param done? fun(err: string|nil)
function C:send(data, done)
  if self.closed then return end
  self:bill(#data)
  self.sock:write(data, done)
end

--- Writes bytes to the client, then closes.
---@param data string
function C:send_close(data)
  if self.closed then return end
  self:bill(#data)
  self.sock:write(data, function() self:close() end)
  self.sock:read_stop()
end

--- Closes the client side (the tunnel closes its upstream itself).
function C:close()
  if self.closed then return end
  self.closed = true
  self.gw.stats.active = self.gw.stats.active - 1
  self.gw.conns[self] = nil
  if self.tunnel then self.tunnel:close() end
  if not self.sock:is_closing() then self.sock:close() end
end

--- Checks credentials in the provider's dialect; the credential, or nil
--- and the reason (counted as a refusal). `head_bytes` already read are
--- billed on success, with the rest pending.
---@param user string
---@param pass string
---@param head_bytes integer
---@return table|nil cred
---@return string|nil why
function C:authenticate(user, pass, head_bytes)
  local cred, why = auth.check(self.gw.provider, user, pass)
  if not cred then
    self.gw.stats.refused = self.gw.stats.refused + 1
    return nil, why
  end
  self.cred = cred
  self.head_bytes = (head_bytes or 0) + #self.buf
  return cred
end

--- Does a request for host:port go to the echo target (anything off
--- loopback, a non-loopback client, or a gateway's own address)?
---@param host string
---@param port integer
---@return boolean
function C:is_echo(host, port)
  if not loopback(host) or not self.local_client then return true end
  return self.gw.world.gateway_ports[port] == true
end

-- After an echo answer's write: a paused connection whose queue has
-- drained below tunnel.LOW reads and answers again.
function C:echo_drained()
  if self.closed or not self.echo_paused or self.sock:get_write_queue_size() > tunnel.LOW then return end
  self.echo_paused = false
  self.sock:read_start(self.reader)
  self:dispatch()
end

-- Serves echo requests on the (tunnelled) client stream. Bounded like a
-- tunnel: while more than tunnel.HIGH bytes of answers wait for a client
-- that does not read them, neither reading nor answering goes on.
function C:echo_serve()
  local function drained(err)
    if err then return self:close() end -- the client is gone
    self:echo_drained()
  end
  self.handler = function(c)
    while not c.closed and not c.echo_paused do
      local head, used = pp.http_head(c.buf, http_side.MAX_HEAD, 0)
      if head == nil then return end
      if head == false then return c:close() end -- not HTTP (TLS to the echo): nothing to say
      c:consume(used) -- the tunnel's one request was billed by C:open
      local now = c.gw.world.clock:now()
      if not c.exit then -- chosen by the tunnel's first request, kept for its life
        local ip, country = echo.exit_for(c.gw.echo, c.cred, now)
        c.exit = { ip = ip, country = country }
      end
      local res = echo.response(c.gw.echo, c.cred, head, c.target, now, head.keep_alive, c.exit)
      if not head.keep_alive then return c:send_close(res) end
      c:send(res, drained)
      if c.sock:get_write_queue_size() > tunnel.HIGH then
        c.echo_paused = true
        c.sock:read_stop()
      end
    end
  end
  if #self.buf > 0 then self.handler(self) end
end

--- Answers one absolute-form request from the echo target and closes.
---@param head table the parsed request head
---@param host string
---@param path string
function C:echo_once(head, host, path)
  self:bill(self.head_bytes or 0, 1)
  self:send_close(echo.response(self.gw.echo, self.cred, { method = head.method, path = path }, host,
    self.gw.world.clock:now(), false))
end

--- Answers an origin-form request (no proxy: GET / to the gateway) from
--- the echo target: the exit is the client itself.
---@param head table the parsed request head
function C:echo_direct(head)
  self:send_close(echo.response(self.gw.echo, nil, head, "direct", self.gw.world.clock:now(), false))
end

--- Opens the route to host:port. ready(ok) answers the client (and may
--- return true plus bytes for the upstream); then the echo serves the
--- stream, or a tunnel to the loopback upstream carries it.
---@param host string
---@param port integer
---@param ready fun(ok: boolean): boolean|nil, string|nil
function C:open(host, port, ready)
  self.target = host
  self:bill(self.head_bytes or 0, 1)
  self.head_bytes = 0
  if self:is_echo(host, port) then
    if ready(true) then self:echo_serve() end
    return
  end
  self.sock:read_stop()
  local up = uv.new_tcp()
  local ok = pcall(up.connect, up, host == "localhost" and "127.0.0.1" or host, port, function(err)
    if self.closed then return up:close() end
    if err then
      up:close()
      return ready(false)
    end
    up:nodelay(true)
    local go, first = ready(true)
    if not go then return up:close() end
    local pending = self.buf
    self.buf = ""
    if first then up:write(first) end
    local t = tunnel.pipe(self.sock, up, { first = pending,
      on_a = function(n) self:bill(n) end, on_b = function(n) self:bill(n) end,
      on_close = function() self:close() end })
    self.tunnel = t
  end)
  if not ok then
    up:close()
    ready(false)
  end
end

-- Reads from the client into buf and hands it to the handler.
function C:on_read(err, chunk)
  if self.closed then return end
  if err or not chunk then return self:close() end
  self:bill(#chunk)
  self.buf = self.buf .. chunk
  if #self.buf > M.MAX_PENDING then return self:close() end
  if not self.handler then
    self.handler = self.buf:byte(1) == 5 and socks_side.handle or http_side.handle
  end
  self:dispatch()
end

-- Runs the handler on the pending input; an error closes the connection
-- (logged), never the sandbox.
function C:dispatch()
  local ok, perr = pcall(self.handler, self)
  if not ok then
    log.error("resi sim: gateway connection failed", { provider = self.gw.provider.name, error = tostring(perr) })
    self:close()
  end
end

---@class resi.sim.gateway
---@field port integer
---@field address string  "HOST:PORT"
local G = {}
G.__index = G

--- The first billed byte turns the traffic generator off, unless it was
--- asked for (world.config.traffic_forced): usage then comes from use.
function G:billed()
  local cfg = self.world.config
  if cfg.traffic and not cfg.traffic_forced then cfg.traffic = false end
end

-- Accepts one client.
function G:accept()
  local sock = uv.new_tcp()
  if not pcall(self.server.accept, self.server, sock) then return sock:close() end
  sock:nodelay(true)
  local peer = sock:getpeername()
  local c = setmetatable({ gw = self, sock = sock, buf = "", local_client = peer and loopback(peer.ip) or false }, C)
  self.stats.connections, self.stats.active = self.stats.connections + 1, self.stats.active + 1
  self.conns[c] = true
  c.reader = function(err, chunk) c:on_read(err, chunk) end
  sock:read_start(c.reader)
end

--- Stops listening and closes every open connection and tunnel.
function G:close()
  if self.server and not self.server:is_closing() then self.server:close() end
  local open = {}
  for c in pairs(self.conns) do open[#open + 1] = c end
  for _, c in ipairs(open) do c:close() end
  self.world.gateway_ports[self.port] = nil
end

--- Counters: connections, active, refused (credentials), bytes billed.
function G:counters()
  return { connections = self.stats.connections, active = self.stats.active, refused = self.stats.refused,
    bytes = self.stats.bytes }
end

--- Starts provider p's gateway on host:port (0 picks a free port).
---@param world table
---@param p table     the provider (world.providers[name], with .name)
---@param host string
---@param port integer
---@return resi.sim.gateway|nil
---@return string|nil
function M.start(world, p, host, port)
  local server = uv.new_tcp()
  local self = setmetatable({ world = world, provider = p, server = server, echo = echo.new_state(),
    conns = {}, stats = { connections = 0, active = 0, refused = 0, bytes = 0 } }, G)
  local ok, err = server:bind(host, port)
  if ok then ok, err = server:listen(1024, function(lerr)
    if not lerr then self:accept() end
  end) end
  if not ok then
    server:close()
    return nil, ("cannot listen for the %s gateway on %s:%s: %s"):format(p.name, host, port, tostring(err))
  end
  self.port = server:getsockname().port
  self.address = (host:find(":", 1, true) and ("[" .. host .. "]") or host) .. ":" .. self.port
  world.gateway_ports = world.gateway_ports or {}
  world.gateway_ports[self.port] = true
  return self
end

return M
