-- bench/claim_commit.lua PATH N: the cost of a run's claim in resi.store.
-- Opens (creates) the store at PATH (WAL, synchronous=FULL, as `resi jobs`
-- uses it) and claims N slots of one job with db:claim_run, each its own
-- commit, timing every call. Prints one line: N, then the median, p99,
-- mean and max of the calls in milliseconds.
local store = require "resi.store"
local path, n = resi.args[1], math.tointeger(tonumber(resi.args[2]))
local db = store.open(path)
local base = 1800000000
local ms = {}
for i = 1, n do
  local t0 = resi.monotonic()
  assert(db:claim_run { job = "bench", nominal_at = base + i }, "slot already claimed")
  ms[i] = (resi.monotonic() - t0) * 1000
end
db:close()
local sum = 0
for _, v in ipairs(ms) do sum = sum + v end
table.sort(ms)
local function pct(p) return ms[math.max(1, math.ceil(n * p))] end
print(("%d %.4f %.4f %.4f %.4f"):format(n, pct(0.5), pct(0.99), sum / n, ms[n]))
