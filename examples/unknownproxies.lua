#!/usr/bin/env resi
-- UnknownProxies: create a token, raise its limit, read its daily usage,
-- list the account's tokens, delete the token.
--
-- Credentials and URL come from the environment; against the sandbox:
--   ./resi sim > /tmp/sim.env & eval "$(sed 's/^/export /' /tmp/sim.env)"
--   ./resi examples/unknownproxies.lua
local up = require("resi.providers.unknownproxies").new() -- UNKNOWNPROXIES_USERNAME/_PASSWORD
local GB = 1000000000

print(up) -- the password is never shown

-- dataLimit is in bytes and must be whole gigabytes (checked before any request)
local t = up:create_token { dataLimit = 5 * GB, durationHours = 24 * 30 }
print(("created %s: user %s, %d GB, expires after %d hours"):format(t.token, t.username, t.dataLimit // GB, t.durationHours))

-- limits can only go up; allowedPools = {} means every pool
t = up:modify_token(t.token, { dataLimit = 10 * GB, allowedPools = { "us-s", "us-r" } })
print(("now %d GB, pools %s"):format(t.dataLimit // GB, table.concat(t.allowedPools, ",")))

local with_usage = up:get_token(t.token, { usage = true })
for _, day in ipairs(with_usage.usage) do print(("  %s: %d bytes"):format(day.date, day.usage)) end

for _, tok in ipairs(up:list_tokens()) do
  print(("  %s %-8s %5.1f%% of %d GB"):format(tok.token, tok.status, 100 * tok.dataUsage / tok.dataLimit, tok.dataLimit // GB))
end

-- errors are objects with the provider's code and message
local ok, err = pcall(up.modify_token, up, t.token, { dataLimit = 2 * GB })
print("lowering the limit:", ok, tostring(err))

up:delete_token(t.token) -- only active tokens; it stays retrievable as "deleted"
print("deleted; status is now", up:get_token(t.token).status)
