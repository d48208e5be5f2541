#!/usr/bin/env resi
-- Oxylabs: log in (automatic), create a sub-user with a traffic limit, read
-- its statistics, raise the limit, disable and delete it.
--
-- Credentials and URL come from the environment; against the sandbox:
--   ./resi sim > /tmp/sim.env & eval "$(sed 's/^/export /' /tmp/sim.env)"
--   ./resi examples/oxylabs.lua
local json = require "resi.json"
local oxy = require("resi.providers.oxylabs").new() -- OXYLABS_USERNAME/_PASSWORD (the main user)

-- the JWT is fetched on first use, kept, and renewed before its hour is up
local u = oxy:create_sub_user {
  username = "demo_" .. os.time() % 100000,
  password = "Str0ng#Passw0rd", -- 12..64 chars: lower, upper, digit and one of # _ ~ + =
  traffic_limit = 5,            -- GB; json.null = unlimited, 0 = blocked
  auto_disable = true,          -- disable when the limit is reached
}
print(("created sub-user %s (id %s)"):format(u.username, u.id))

local stats = oxy:sub_user_stats(u.id, { type = "month" })
print(("traffic this month: %.3f GB"):format(stats.traffic))

oxy:update_sub_user(u.id, { traffic_limit = 10 })
oxy:update_sub_user(u.id, { traffic_limit = json.null }) -- unlimited

for _, s in ipairs(oxy:sub_users()) do
  print(("  %-12s %-8s %.2f GB of %s"):format(s.username, s.status, s.traffic or 0,
    s.traffic_limit == json.null and "unlimited" or tostring(s.traffic_limit) .. " GB"))
end
print(("account traffic this month: %.3f GB"):format(oxy:client_stats().traffic))

oxy:update_sub_user(u.id, { status = "disabled" })
oxy:delete_sub_user(u.id)
print("disabled and deleted", u.username)
