-- bench/ratelimit_burst.lua URL KEY N WINDOW: resi's side of the rate-limit
-- bench. N generate calls planned at once, each through
-- ratelimit.request on ResiFactory's built-in "generate" profile (20 per
-- rolling window, the window shortened to WINDOW seconds), with an
-- Idempotency-Key. Prints one line: completed 429s seconds.
local ratelimit = require "resi.ratelimit"
local limits = require "resi.providers.limits"
local url, key, n, window = resi.args[1], resi.args[2], tonumber(resi.args[3]), tonumber(resi.args[4])
local lim = limits.limiter("resifactory", "generate", { window = window })
local body = { country = "us", quantity = 50, proxyType = "rotating", format = "json" }
local t0 = resi.monotonic()
local tasks = {}
for i = 1, n do
  tasks[i] = resi.spawn(function()
    return ratelimit.request(lim, { method = "POST", url = url, json = body,
      headers = { Authorization = "Bearer " .. key } }, { idempotency_key = true })
  end)
end
local done = 0
for i = 1, n do
  local res = tasks[i]:wait()
  if res and res.status == 200 then done = done + 1 end
end
local s = lim:stats()
print(("%d %d %.3f"):format(done, s.seen_429, resi.monotonic() - t0))
