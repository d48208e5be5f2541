-- bench/repl_complete.lua N: times N Tab completions of `rf:` (bench/sections/70-repl.sh).
-- The session is the REPL's own (resi.repl.standard: resi.repl.context's
-- environment, where rf is bound lazily from the credentials), with the
-- modules loaded as the CLI does once the first prompt is up
-- (context.preload). The completion function is the one the CLI hands to
-- libedit (resi.repl.complete.completer), called as libedit calls it for the
-- line "rf:" with the cursor at its end: text "rf:", start 1, stop 3.
-- Two cases: rf not bound yet (completion reads the client class that stands
-- in for it; nothing is built), then rf bound (the first use built the client
-- from RF_API_KEY, which this script sets to a dummy key; no request is made).
-- Prints one line per case: case, N, candidates, wall ms total, wall µs per
-- call, CPU µs per call (os.clock: the process's CPU time around the loop).
local repl = require "resi.repl"
local context = require "resi.repl.context"
local complete = require "resi.repl.complete"

local n = math.tointeger(tonumber(resi.args[1] or "1000")) or 1000
local uv = require "luv"
local session = repl.standard { out = function() end, err = function() end }
context.preload(session.env)
local fn = complete.completer(function() return session.env end)

-- Times n calls; returns candidates, wall ms, wall µs/call, CPU µs/call.
local function time_calls()
  local first = fn("rf:", "rf:", 1, 3)
  assert(#first > 0 and first[1]:sub(1, 3) == "rf:", "no completion of rf:")
  for _ = 1, 50 do fn("rf:", "rf:", 1, 3) end -- warm-up
  local c0, t0 = os.clock(), resi.monotonic()
  for _ = 1, n do fn("rf:", "rf:", 1, 3) end
  local t1, c1 = resi.monotonic(), os.clock()
  return #first, (t1 - t0) * 1e3, (t1 - t0) / n * 1e6, (c1 - c0) / n * 1e6
end

local function report(case)
  local count, ms, us, cpu = time_calls()
  print(("%s %d %d %.3f %.3f %.3f"):format(case, n, count, ms, us, cpu))
end

uv.os_unsetenv("RF_API_KEY")
uv.os_unsetenv("RF_API_KEY_FILE")
assert(rawget(session.env, "rf") == nil)
report("unbound")
assert(rawget(session.env, "rf") == nil, "completion bound rf")
uv.os_setenv("RF_API_KEY", "rf_live_bench_completion_0000000000")
local _ = session.env.rf -- the first use binds the client
assert(rawget(session.env, "rf") ~= nil, "rf was not bound")
report("bound")
