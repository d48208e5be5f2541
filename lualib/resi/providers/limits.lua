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
--- The limits are the account's (its key's), so the clients of one account
--- in one process share one set of limiters (M.for_account): two jobs of a
--- daemon, or a job that opens a new client every run, stay inside the
--- account's limit together, its window and any pause included. The sets
--- stay for the process's life (at most MAX_ACCOUNTS accounts; past that
--- the table starts over). A client made with ratelimit overrides (tests)
--- gets its own; `limiters = first.limiters` shares any set.
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
--- vc ...). The name is "provider:group", or "provider:label:group" with a
--- label (the account's, never a secret).
---@param provider "unknownproxies"|"oxylabs"|"resifactory"
---@param group? string  default: the provider's default group
---@param overrides? resi.ratelimit.options
---@param label? string
---@return resi.ratelimit.limiter
function M.limiter(provider, group, overrides, label)
  local p = profile_of(provider)
  group = group or p.default_group
  local base = p.groups[group]
  if not base then
    error(("resi.providers.limits: %s has no endpoint group %q"):format(provider, tostring(group)), 2)
  end
  local o = { reset_unit = p.reset_unit, learn = p.learn,
    name = provider .. ":" .. (label and (label .. ":") or "") .. group }
  for k, v in pairs(base) do o[k] = v end
  for k, v in pairs(overrides or {}) do o[k] = v end
  return ratelimit.new(o)
end

--- Every group's limiter for one client: {group = limiter}.
---@param provider "unknownproxies"|"oxylabs"|"resifactory"
---@param overrides? resi.ratelimit.options
---@param label? string  the account's, in the limiters' names
---@return table<string, resi.ratelimit.limiter>
function M.build(provider, overrides, label)
  local out = {}
  for group in pairs(profile_of(provider).groups) do out[group] = M.limiter(provider, group, overrides, label) end
  return out
end

--- The most accounts whose limiter sets are kept.
M.MAX_ACCOUNTS = 256

-- The limiter sets of the accounts used in this process: key -> {group = limiter};
-- the labels given out: provider .. ":" .. label -> key.
local accounts, naccounts, labels = {}, 0, {}

-- label, or label#2, #3 ... when another account of the provider has it
-- (two keys masked alike).
local function own_label(provider, label, key)
  local name, n = label, 1
  while labels[provider .. ":" .. name] ~= nil and labels[provider .. ":" .. name] ~= key do
    n = n + 1
    name = label .. "#" .. n
  end
  labels[provider .. ":" .. name] = key
  return name
end

--- The limiters of one account, shared by all its clients in this
--- process: key tells the account apart (the caller's: API base and
--- credential), label names it in the limiters' names (never a secret: a
--- username, a masked key; "label#2" for a second account with the same one).
---@param provider "unknownproxies"|"oxylabs"|"resifactory"
---@param key string
---@param label string
---@return table<string, resi.ratelimit.limiter>
function M.for_account(provider, key, label)
  key = provider .. "\0" .. key
  local set = accounts[key]
  if set == nil then
    if naccounts >= M.MAX_ACCOUNTS then accounts, naccounts, labels = {}, 0, {} end
    set = M.build(provider, nil, own_label(provider, label, key))
    accounts[key], naccounts = set, naccounts + 1
  end
  return set
end

--- Every limiter of the accounts used in this process, by name (for
--- resi.metrics.ratelimit: one series per account and endpoint group).
---@return resi.ratelimit.limiter[]
function M.live()
  local out = {}
  for _, set in pairs(accounts) do
    for _, lim in pairs(set) do out[#out + 1] = lim end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

return M
