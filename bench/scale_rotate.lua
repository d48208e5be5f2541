-- scale_rotate.lua: scripts/rotate.lua's run, for the scale benchmark.
--
--   resi bench/scale_rotate.lua ACCOUNTS STORE OUT
--
-- The same resi.rotate.run that scripts/rotate.lua makes (threshold 0.9, the
-- live list written to OUT), with one change: the client's own pacing for a
-- provider that documents no limit (UnknownProxies: 120 calls a minute, 4 at
-- a time, adaptive; resi.providers.limits) is lifted, as the sandbox's are,
-- so a 10,000-token run measures resi's work and not a minute-long wait.
-- Prints the run's summary line.
local providers = require "resi.providers"
local rotate = require "resi.rotate"

local accounts_file, store, out = resi.args[1], resi.args[2], resi.args[3]
assert(accounts_file and store and out, "usage: resi bench/scale_rotate.lua ACCOUNTS STORE OUT")
local specs = assert(providers.select_accounts(accounts_file))
for _, s in ipairs(specs) do
  s.opts = s.opts or {}
  s.opts.ratelimit = { limit = 1000000, window = 60, concurrency = 16, adaptive = false }
end
local summary = rotate.run { accounts = specs, threshold = 0.9, store = store, out = out, say = function() end }
print(summary.message)
if not summary.ok then os.exit(1) end
