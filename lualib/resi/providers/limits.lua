--- resi.ratelimit.profiles: what each provider says (or does not say) about
--- its limits, as limiter options per endpoint group.
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

--- The endpoint group of a call ("generate", "reads", "default" ...).
---@param provider string
---@param method string
---@param path string  the path below the API base, e.g. "/proxies"
---@return string
function M.group_of(provider, method, path)
  local p = M[provider]
  if not p then error("resi.ratelimit: unknown provider profile " .. tostring(provider), 2) end
  path = (path or ""):gsub("[?#].*$", "")
  return p.endpoints[(method or "GET"):upper() .. " " .. path] or p.default_group
end

return M
