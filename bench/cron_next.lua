-- bench/cron_next.lua EXPR TZ N START [list]: resi.cron's side of the
-- next() bench. Parses EXPR in zone TZ ("UTC" or an IANA name), then calls
-- sched:next(t) N times from START (epoch seconds), each from the slot
-- before: N consecutive fire times. Prints one line: N, the last slot, a
-- checksum (the sum of the slots, to compare with croniter's) and the
-- loop's wall seconds (start-up and parsing excluded). With `list`, prints
-- the N slots instead, one a line.
local cron = require "resi.cron"
local expr, zone, n, t = resi.args[1], resi.args[2], math.tointeger(tonumber(resi.args[3])),
  math.tointeger(tonumber(resi.args[4]))
local sched = assert(cron.parse(expr, { tz = zone }))
if resi.args[5] == "list" then
  local out = {}
  for i = 1, n do
    t = sched:next(t)
    out[i] = t
  end
  print(table.concat(out, "\n"))
  return
end
local sum = 0
local t0 = resi.monotonic()
for _ = 1, n do
  t = sched:next(t)
  sum = sum + t
end
print(("%d %d %d %.6f"):format(n, t, sum, resi.monotonic() - t0))
