#!/usr/bin/env resi
-- ResiFactory: check the key, discover pools, read balances and usage, and
-- generate sticky US proxies as a parsed list.
--
-- Credentials and URL come from the environment; against the sandbox:
--   ./resi sim > /tmp/sim.env & eval "$(sed 's/^/export /' /tmp/sim.env)"
--   ./resi examples/resifactory.lua
local rf = require("resi.providers.resifactory").new() -- RF_API_KEY; calls stay inside 20/min and 120/min

print(rf) -- resifactory client (key rf_live_…x7kQ)
local me = rf:me()
print(("account %s, scopes %s"):format(me.username, table.concat(me.scopes, " ")))

for _, pool in ipairs(rf:pools().pools) do print("pool", pool.id, pool.label, table.concat(pool.proxy_types, "/")) end
for pool, gb in pairs(rf:balance().balances) do print(("balance %s: %.4f GB"):format(pool, gb)) end

-- validated before a request: quantity 1..250000, state only with country "us", ...
local out = rf:generate { country = "us", state = "CA", quantity = 5, proxyType = "sticky", sessionDuration = 30 }
if out.is_demo then print("demo credentials: the pool has no balance") end
for i = 1, #out.list do
  local e = out.list[i]
  print(("  %s:%d user %s"):format(e.host, e.port, e.user))
end

for _, d in ipairs(rf:usage { limit = 5 }.top_domains) do print(("  %-20s %d bytes"):format(d.domain, d.bytes)) end
