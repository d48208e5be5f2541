--- resi.sim.gateway_socks: the SOCKS5 side of a sandbox gateway (RFC 1928
--- with RFC 1929 username/password, the only method offered: a gateway
--- without credentials is an open proxy). Greeting, sub-negotiation and
--- request may arrive in one packet or byte by byte. CONNECT only (BIND and
--- UDP ASSOCIATE answer 07); the destination goes where resi.sim.gateway
--- routes it (a loopback upstream, or the echo target).
local pp = require "resi.proxy_proto_core"

local M = {}

-- SOCKS5 replies: VER REP RSV ATYP=1 BND.ADDR 0.0.0.0 BND.PORT 0.
local function reply(code) return "\5" .. string.char(code) .. "\0\1\0\0\0\0\0\0" end

-- Stage 1: the greeting; offers method 2 (username/password) or refuses.
local function greeting(c)
  local methods, used = pp.socks_greeting(c.buf)
  if methods == nil then return false end
  if methods == false then return c:close() end
  c:consume(used)
  if not methods:find("\2", 1, true) then return c:send_close("\5\255") end
  c:send("\5\2")
  c.socks_stage = "auth"
  return true
end

-- Stage 2: RFC 1929 username/password, checked in the provider's dialect.
local function auth(c)
  local user, pass, used = pp.socks_auth(c.buf)
  if user == nil then return false end
  if user == false then return c:close() end
  c:consume(used)
  local cred = c:authenticate(user, pass)
  if not cred then return c:send_close("\1\1") end
  c:send("\1\0")
  c.socks_stage = "request"
  return true
end

-- Stage 3: the request; CONNECT to a routed destination.
local function request(c)
  local req, used = pp.socks_request(c.buf)
  if req == nil then return false end
  if req == false then return c:send_close(reply(1)) end
  c:consume(used)
  if req.cmd ~= 1 then return c:send_close(reply(7)) end
  c.socks_stage = "done"
  c:open(req.host, req.port, function(ok)
    if not ok then return c:send_close(reply(5)) end
    c:send(reply(0))
    return true
  end)
  return false
end

local STAGES = { greeting = greeting, auth = auth, request = request }

--- Handles what the client has sent so far (c.buf): runs the stages in
--- order while each finds its message complete.
---@param c table  a resi.sim.gateway connection
function M.handle(c)
  c.socks_stage = c.socks_stage or "greeting"
  while STAGES[c.socks_stage] and not c.closed do
    if not STAGES[c.socks_stage](c) then return end
  end
end

return M
