#!/usr/bin/env resi
-- resi.ratelimit in one page: a burst of calls against a server that allows
-- 5 calls per rolling second, sent at exactly the allowed rate, with a
-- 429 from the server pausing every task that uses the same key.
--
--   ./resi examples/ratelimit.lua
--   RESI_LOG_LEVEL=debug ./resi examples/ratelimit.lua   (see the limiter think)
local server = require "resi.server"
local ratelimit = require "resi.ratelimit"

-- A stand-in API: 5 calls per rolling second, documented headers, 429 over it.
local seen = {}
local srv = assert(server.serve { handler = function()
  local now = resi.now()
  while seen[1] and seen[1] + 1 <= now do table.remove(seen, 1) end
  if #seen >= 5 then return { status = 429, headers = { ["Retry-After"] = "1" } } end
  seen[#seen + 1] = now
  return { json = { ok = true }, headers = { ["RateLimit-Limit"] = "5",
    ["RateLimit-Remaining"] = tostring(5 - #seen), ["RateLimit-Reset"] = "1" } }
end })

-- 1. A limiter: 5 per rolling second, at most 3 calls in flight.
local lim = ratelimit.new { name = "demo", limit = 5, window = 1, concurrency = 3 }

-- 2. By hand: acquire waits (this task only), observe learns, release ends the call.
do
  local permit <close> = assert(lim:acquire()) -- luacheck: ignore permit (released when the block ends)
  local res = require("resi.http").get(srv.url .. "/one")
  lim:observe(res)
  print("by hand:", res.status, "server says remaining", res.headers["ratelimit-remaining"])
end

-- 3. All of it at once: 12 calls, each through the limiter with retries.
local t0 = resi.monotonic()
local tasks = {}
for i = 1, 12 do
  tasks[i] = resi.spawn(function()
    return ratelimit.request(lim, { method = "GET", url = srv.url .. "/item/" .. i })
  end)
end
local ok = 0
for _, t in ipairs(tasks) do if t:wait().status == 200 then ok = ok + 1 end end
print(("burst: %d/12 ok in %.1f s"):format(ok, resi.monotonic() - t0))

-- 4. What the limiter knows.
local s = lim:stats()
print(("stats: granted %d, waited %.2f s in total, 429s %d, retries %d, limit learned %s")
  :format(s.granted, s.waited, s.seen_429, s.retries, tostring(s.learned.limit)))

-- 5. Providers: ResiFactory's documented limits are built in; each client
-- builds its own limiters from them (resi.providers.limits).
local gen = require("resi.providers.limits").limiter("resifactory", "generate")
print("resifactory generate:", gen.name, gen:stats().rules[1].limit .. " per " .. gen:stats().rules[1].window .. " s")
srv:close()
