#!/usr/bin/env resi
-- A tour of the runtime: tasks, HTTP, exact JSON, timeouts.
--
-- It serves a small token-usage API on a loopback port from this same process
-- (raw TCP through resi.uv, answering after a 50 ms delay per request), then
-- fetches 20 token records concurrently, flags the ones at or above 90% of
-- their data limit, and shows what a timeout and a transport failure look like.
--
--   ./resi examples/tour.lua [THRESHOLD]
local http = require "resi.http"
local json = require "resi.json"
local uv = resi.uv

local threshold = tonumber(resi.args[1]) or 0.9
local GB = 1000000000

-- The fake API: GET /tokens/N -> a token record with byte counts as integers.
local function token_record(n)
  local limit = (n % 5 + 1) * 10 * GB
  local used = limit * ((n * 37) % 100) // 100 + n -- exact integers, some past 90%
  return { token = ("tk_%04d"):format(n), dataLimit = limit, used = used, allowedPools = json.array() }
end

local server = uv.new_tcp()
local clients = {} -- open connections, closed with the server in part 4
assert(server:bind("127.0.0.1", 0))
local port = server:getsockname().port
server:listen(128, function()
  local client = uv.new_tcp()
  server:accept(client)
  clients[client] = true
  local buffered = ""
  client:read_start(function(_, data)
    if not data then
      clients[client] = nil
      return client:close()
    end
    buffered = buffered .. data
    local path = buffered:match("^GET (%S+) HTTP/1%.1\r\n.-\r\n\r\n")
    if not path then return end
    buffered = ""
    local n = tonumber(path:match("^/tokens/(%d+)$"))
    local body = n and json.encode(token_record(n)) or '{"error":"not found"}'
    local delay = path == "/slow" and 2000 or 50
    local timer = uv.new_timer()
    timer:start(delay, 0, function()
      timer:close()
      if client:is_closing() then return end
      client:write(("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
        :format(n and "200 OK" or "404 Not Found", #body, body))
    end)
  end)
end)
server:unref() -- the listener alone does not keep the process running
local base = "http://127.0.0.1:" .. port

-- 1. Twenty requests at once: each task suspends while its request is in flight.
local started = resi.monotonic()
local fetches = {}
for i = 1, 20 do
  fetches[i] = function()
    local res, err, code = http.get(base .. "/tokens/" .. i)
    if not res then error(("token %d: %s (%s)"):format(i, err, code)) end
    return assert(res:json())
  end
end
local records = { resi.all(fetches) }
local took = resi.monotonic() - started
print(("fetched %d token records concurrently in %.0f ms (each answer takes 50 ms)"):format(#records, took * 1000))

-- 2. Exact integers: byte counts stay integers and compare exactly.
print(("%-8s %16s %16s %6s"):format("token", "used bytes", "limit bytes", "used"))
local due = 0
for _, r in ipairs(records) do
  local share = r.used / r.dataLimit
  local mark = share >= threshold and "  <- rotate" or ""
  if mark ~= "" then due = due + 1 end
  print(("%-8s %16d %16d %5.1f%%%s"):format(r.token, r.used, r.dataLimit, share * 100, mark))
end
print(("%d of %d tokens are at or above %.0f%% of their data limit"):format(due, #records, threshold * 100))

-- 3. A timeout cancels the request it was waiting on.
local res, err, code = resi.timeout(0.2, http.get, base .. "/slow")
print(("slow call: %s, %s, %s; transfers still in flight: %d"):format(tostring(res), err, code,
  http.stats().in_flight))

-- 4. Transport failures are values with a stable code.
server:close()
for client in pairs(clients) do client:close() end
res, err, code = http.get(base .. "/tokens/1")
print(("closed port: %s, %s, code %q"):format(tostring(res), err, code))
