--- resi.sim.gateway_echo: the gateways' built-in echo target. The sandbox
--- never forwards off this machine: a proxy request for any host but
--- loopback is answered here, with the "exit" the credential would have had
--- at a real provider:
---   {"ip": "...", "country": "US", "session": "abc"|null, "provider": "...",
---    "target": "ip.sim", "method": "GET", "path": "/"}
--- Exits are deterministic: a sticky session (a session id in the
--- credential) keeps its IP for its lifetime on the simulated clock and
--- then rotates to the next one; a rotating credential gets a new IP on
--- every request, and a tunnel (CONNECT, SOCKS5) keeps the exit it got for
--- its first request, as one TCP connection out of a real exit does.
--- Untargeted credentials get a country from the exit.
--- GET /bytes/N answers N bytes instead (N <= MAX_BYTES, to move real
--- traffic), with the exit in X-Sim-Exit-Ip / X-Sim-Exit-Country headers
--- (on every answer).
local json = require "resi.json"

local M = {}

--- Countries an untargeted exit is drawn from.
M.COUNTRIES = { "US", "GB", "DE", "FR", "CA", "NL", "ES", "IT", "BR", "JP" }
--- The largest /bytes/N answer.
M.MAX_BYTES = 64 * 1024 * 1024

-- FNV-1a (32 bits) of a string: the exit a session key maps to.
local function hash(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

-- A public-looking IPv4 address for hash h (never 0, 10, 127 or >= 224 first).
local function ip_of(h)
  local a = 11 + (h >> 24) % 212
  if a == 127 then a = 128 end
  return ("%d.%d.%d.%d"):format(a, (h >> 16) & 255, (h >> 8) & 255, (h & 255) | 1)
end

--- Exit bookkeeping for one gateway.
---@return table
function M.new_state()
  return { sessions = {}, rotations = {} }
end

--- The exit (ip, country) of one request by credential cred at time now.
---@param state table  from new_state
---@param cred table   from resi.sim.gateway_auth.check
---@param now number   simulated epoch seconds
---@return string ip
---@return string country
function M.exit_for(state, cred, now)
  local key, n
  if cred.session then
    key = cred.key .. ":session-" .. cred.session
    local s = state.sessions[key]
    if not s or now >= s.expires then
      s = { n = s and s.n + 1 or 0, expires = now + cred.lifetime }
      state.sessions[key] = s
    end
    n = s.n
  else
    key = cred.key
    n = (state.rotations[key] or 0) + 1
    state.rotations[key] = n
  end
  local h = hash(key .. "#" .. n)
  return ip_of(h), cred.country or M.COUNTRIES[h % #M.COUNTRIES + 1]
end

--- The echo's HTTP response (bytes) to a request head for target host,
--- through cred (nil: a direct request to the gateway, the exit is the
--- client's own address). keep_alive false adds Connection: close. exit,
--- when given, is the exit already chosen ({ip, country}: a tunnel's).
---@param state table
---@param cred table|nil
---@param head table   {method, url}
---@param target string
---@param now number
---@param keep_alive boolean
---@param exit? {ip: string, country: string}
---@return string
function M.response(state, cred, head, target, now, keep_alive, exit)
  local ip, country = "127.0.0.1", json.null
  if exit then
    ip, country = exit.ip, exit.country
  elseif cred then
    ip, country = M.exit_for(state, cred, now)
  end
  local path = head.path or head.url
  local n = math.tointeger(tonumber(path:match("^/bytes/(%d+)$") or ""))
  local body, ctype
  if n and n <= M.MAX_BYTES then
    body, ctype = ("x"):rep(n), "application/octet-stream"
  else
    body, ctype = json.encode { ip = ip, country = country, session = cred and cred.session or json.null,
      provider = cred and cred.provider or json.null, target = target, method = head.method, path = path },
      "application/json"
  end
  return table.concat { "HTTP/1.1 200 OK\r\nContent-Type: ", ctype, "\r\nContent-Length: ", #body,
    "\r\nX-Sim-Exit-Ip: ", ip, "\r\nX-Sim-Exit-Country: ", country == json.null and "-" or country,
    "\r\n", keep_alive and "" or "Connection: close\r\n", "\r\n", body }
end

return M
