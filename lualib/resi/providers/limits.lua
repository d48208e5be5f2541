--- resi.providers.limits: what each provider says (or does not say) about
--- its rate limits, as resi.ratelimit options per endpoint group, and the
--- limiters one client builds from them once, when it is made.
---
--- ResiFactory documents its limits (resifactory-api-v1, "Rate Limits"): per
--- API key, rolling 60-second window, 20/min for POST /proxies (generate) and
--- 120/min for the reads; every response has RateLimit-Limit/-Remaining and
--- RateLimit-Reset as a Unix timestamp; 429 carries Retry-After in seconds.
--- UnknownProxies and Oxylabs document no limits: they start conservative
--- (120 calls a minute, 4 at a time) and adapt: whatever limit the server
--- reports is adopted; a burst of 429s halves the rate once (not once per
--- retry), never below 30 a minute, and successes bring it back to 120
--- (resi.ratelimit.adaptive has the whole policy).
---
--- There is no registry: a client owns its limiters (client.limiters), so
--- a fresh client starts fresh and nothing outlives it. Two clients of one
--- account in one process share limits only when the second is made with
--- `limiters = first.limiters`; otherwise the server's RateLimit-Remaining
--- (ResiFactory) or its 429s (the adaptive ones) bring them into line.
local ratelimit = require "resi.ratelimit"

local M = {}

M.resifactory = {
  reset_unit = "epoch",
  learn = "any", -- RateLimit-Limit is documented as the limit of the 60 s window
  groups = {
    generate = { limit = 20, window = 60 },
    reads = { limit = 120, window = 60 },
  },
  endpoints = {
    ["POST /proxies"] = "generate",
    ["GET /balance"] = "reads", ["GET /usage"] = "reads", ["GET /pools"] = "reads", ["GET /me"] = "reads",
  },
  default_group = "reads",
}

-- Undocumented limits: 2 calls a second on average and 4 at a time, which a
-- rotation of a few hundred tokens fits in. A 429 episode halves it once,
-- never below a quarter (30 a minute); each success adds a twentieth of
-- the base (6) back up to 120; quiet windows probe above it up to 600; any
-- limit the server states is adopted as the new base.
local conservative = { limit = 120, window = 60, concurrency = 4, adaptive = true, min_limit = 1, max_limit = 600,
  adaptive_floor = 0.25, learn = "any" }

M.unknownproxies = {
  reset_unit = "auto",
  groups = { default = conservative },
  endpoints = {},
  default_group = "default",
}

M.oxylabs = {
  reset_unit = "auto",
  groups = { default = conservative },
  endpoints = {},
  default_group = "default",
}

-- The profile of a provider, or an error naming it.
local function profile_of(provider)
  local p = rawget(M, provider)
  if type(p) ~= "table" or not p.groups then
    error("resi.providers.limits: unknown provider " .. tostring(provider), 3)
  end
  return p
end

--- The endpoint group of a call ("generate", "reads", "default" ...).
---@param provider "unknownproxies"|"oxylabs"|"resifactory"
---@param method string
---@param path string  the path below the API base, e.g. "/proxies"
---@return string
function M.group_of(provider, method, path)
  local p = profile_of(provider)
  path = (path or ""):gsub("[?#].*$", "")
  return p.endpoints[(method or "GET"):upper() .. " " .. path] or p.default_group
end

--- A new limiter for one endpoint group of a provider, with its built-in
--- limits; `overrides` replaces any option (window = 3 for a test, clock =
--- vc ...). The name is "provider:group".
---@param provider "unknownproxies"|"oxylabs"|"resifactory"
---@param group? string  default: the provider's default group
---@param overrides? resi.ratelimit.options
---@return resi.ratelimit.limiter
function M.limiter(provider, group, overrides)
  local p = profile_of(provider)
  group = group or p.default_group
  local base = p.groups[group]
  if not base then
    error(("resi.providers.limits: %s has no endpoint group %q"):format(provider, tostring(group)), 2)
  end
  local o = { reset_unit = p.reset_unit, learn = p.learn, name = provider .. ":" .. group }
  for k, v in pairs(base) do o[k] = v end
  for k, v in pairs(overrides or {}) do o[k] = v end
  return ratelimit.new(o)
end

--- Every group's limiter for one client: {group = limiter}.
---@param provider "unknownproxies"|"oxylabs"|"resifactory"
---@param overrides? resi.ratelimit.options
---@return table<string, resi.ratelimit.limiter>
function M.build(provider, overrides)
  local out = {}
  for group in pairs(profile_of(provider).groups) do out[group] = M.limiter(provider, group, overrides) end
  return out
end

return M
