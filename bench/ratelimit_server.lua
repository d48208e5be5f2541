-- bench/ratelimit_server.lua PORT LIMIT WINDOW: a stand-in for ResiFactory's
-- POST /api/v1/proxies rate limit until `resi sim` exists. Per API key
-- (the Bearer token), at most LIMIT accepted calls in any rolling WINDOW
-- seconds (a sliding log of arrival times; rejected calls are not counted).
-- Every answer carries the documented RateLimit-Limit, RateLimit-Remaining
-- and RateLimit-Reset (a Unix timestamp); over the limit: 429 rate_limited
-- with Retry-After in whole seconds. GET /_stats?key=K gives the server's
-- own count: {ok, rejected, first_ok, last_ok} (times in epoch seconds).
local server = require "resi.server"

local port = math.tointeger(tonumber(resi.args[1])) or 0
local limit = tonumber(resi.args[2]) or 20
local window = tonumber(resi.args[3]) or 3

local logs, stats = {}, {}

local srv = assert(server.serve { port = port, handler = function(req)
  local now = resi.now()
  if req.path == "/_stats" then
    return { json = stats[req.query.key or ""] or { ok = 0, rejected = 0 } }
  end
  if req.method ~= "POST" or req.path ~= "/api/v1/proxies" then return { status = 404 } end
  local key = (req.headers.authorization or ""):match("^Bearer%s+(.+)$") or ""
  local w = logs[key] or {}
  logs[key] = w
  while w[1] and w[1] + window <= now do table.remove(w, 1) end
  local st = stats[key] or { ok = 0, rejected = 0 }
  stats[key] = st
  local h = { ["RateLimit-Limit"] = tostring(limit) }
  if #w >= limit then
    st.rejected = st.rejected + 1
    h["Retry-After"] = tostring(math.max(1, math.ceil(w[1] + window - now)))
    h["RateLimit-Remaining"] = "0"
    h["RateLimit-Reset"] = tostring(math.ceil(w[1] + window))
    return { status = 429, headers = h,
      json = { error = { code = "rate_limited", message = "You have exceeded the rate limit for this endpoint group." } } }
  end
  w[#w + 1] = now
  st.ok = st.ok + 1
  st.first_ok = st.first_ok or now
  st.last_ok = now
  h["RateLimit-Remaining"] = tostring(limit - #w)
  h["RateLimit-Reset"] = tostring(math.ceil(w[1] + window))
  return { status = 200, headers = h, json = { proxies = { { host = "premium.resifactory.net", port = 7777,
    username = "u", password = "p" } }, count = 1, is_demo = true } }
end })
print("listening " .. srv.port)
io.stdout:flush()
-- keep the server (and its listener) alive until the bench kills us
while srv do resi.sleep(3600) end
