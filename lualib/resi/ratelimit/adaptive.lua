--- resi.ratelimit.adaptive: the limit of a limiter created with
--- `adaptive = true` (UnknownProxies and Oxylabs, which document no limits),
--- learned from the server's throttling: AIMD, once per episode.
---
---   base      the limit to come back to: the configured one, or the last
---             one the server stated (RateLimit-Limit / -Policy) or
---             lim:set_limit gave.
---   decrease  a throttled answer (429, or 503 with Retry-After) that says
---             nothing about limits halves the limit, at most once per
---             throttle EPISODE: the halving opens one, and it lasts one
---             window (or the pause that answer set, if longer). Other 429s
---             in the episode (the rest of the burst, calls that were in
---             flight) only pause the key. The retries of a call that was
---             throttled never halve it, even after the episode: one call's
---             four attempts are one signal, not four.
---   floor     never below max(min_limit, ceil(base * adaptive_floor));
---             adaptive_floor is 1/4 by default (120/min -> 30/min).
---   increase  every success (status < 400) adds adaptive_step units
---             (default base / 20, at least 1) until the limit is back at
---             base, in an episode or not: 10 calls bring 60 back to 120.
---   probe     at or above base, one more unit per quiet window (no 429 in
---             a whole window), up to max_limit.
---
--- A server whose real limit is below ours therefore sees one halving per
--- window at most, and in between its Retry-After does the slowing down.
--- That pause is not this module's business: every throttled answer still
--- pauses the whole key (resi.ratelimit's observe).
local huge = math.huge

-- resi.log, loaded on first use.
local logger
local function log() logger = logger or require "resi.log"; return logger end

local M = {}

--- Default share of base below which the limit never goes.
M.FLOOR = 0.25

--- Default recovery per success, as a share of base.
M.STEP = 0.05

--- The adaptive state a new limiter starts with (nil when not adaptive).
---@param cfg table  the limiter's shared configuration
---@param rule resi.ratelimit.rule|nil  its primary rule
---@return table|nil
function M.state(cfg, rule)
  if not cfg.adaptive or not rule then return nil end
  return { base = rule.limit, episode_until = -huge, last_throttle = -huge, last_raise = -huge }
end

--- The lowest limit adaptation may set.
---@param lim resi.ratelimit.limiter
---@return number
function M.floor(lim)
  return math.max(lim.min_limit, math.ceil(lim.adapt.base * lim.adaptive_floor))
end

--- Units one success adds back while the limit is below base.
---@param lim resi.ratelimit.limiter
---@return number
function M.step(lim)
  return lim.adaptive_step or math.max(1, math.ceil(lim.adapt.base * M.STEP))
end

--- A throttled answer without limits: halves the limit when it opens an
--- episode, never below the floor. `permit.after_throttle` (set by
--- lim:call) marks a retry of a call that was throttled already.
---@param lim resi.ratelimit.limiter
---@param now number
---@param permit? resi.ratelimit.permit
function M.throttled(lim, now, permit)
  local a, r = lim.adapt, lim:_primary()
  if not a then return end
  a.last_throttle = now
  if now < a.episode_until or (permit and permit.after_throttle) then return end
  a.episode_until = now + math.max(r.window, lim.paused_until - now)
  local st = lim.st
  st.episodes = st.episodes + 1
  local new = math.min(r.limit, math.max(M.floor(lim), math.floor(r.limit / 2)))
  if new == r.limit then return end
  r:set_limit(new, now)
  st.lowered = st.lowered + 1
  log().debug("ratelimit: limit lowered after a 429", { limiter = lim.name, limit = new, floor = M.floor(lim) })
end

--- A throttled answer that stated the server's limit: no halving (the
--- limit was adopted), but it is throttling all the same.
---@param lim resi.ratelimit.limiter
---@param now number
function M.noted(lim, now)
  if lim.adapt then lim.adapt.last_throttle = now end
end

--- A successful answer: adds a step back towards base.
---@param lim resi.ratelimit.limiter
---@param now number
function M.succeeded(lim, now)
  local a = lim.adapt
  if not a then return end
  local r = lim:_primary()
  if r.limit >= a.base then return end
  local new = math.min(a.base, r.limit + M.step(lim))
  r:set_limit(new, now)
  a.last_raise = now
  lim.st.raised = lim.st.raised + 1
  log().debug("ratelimit: limit raised after a success", { limiter = lim.name, limit = new, base = a.base })
end

--- At or above base: one more unit per quiet window, up to max_limit
--- (called on every grant).
---@param lim resi.ratelimit.limiter
---@param now number
function M.probe(lim, now)
  local a = lim.adapt
  if not a then return end
  local r = lim:_primary()
  if r.limit < a.base or r.limit >= lim.max_limit then return end
  local since = math.max(a.last_throttle, a.last_raise)
  if since == -huge then a.last_raise = now return end
  if now - since >= r.window then
    r:set_limit(math.min(lim.max_limit, r.limit + 1), now)
    a.last_raise = now
  end
end

--- A new limit from the server or the caller becomes the base.
---@param lim resi.ratelimit.limiter
---@param rule resi.ratelimit.rule
---@param limit number
function M.rebase(lim, rule, limit)
  if lim.adapt and rule == lim:_primary() then lim.adapt.base = limit end
end

--- The adaptive part of lim:stats(): {base, floor, step, episode (seconds
--- of the current throttle episode left, 0 outside one)}, or nil.
---@param lim resi.ratelimit.limiter
---@param now number
---@return table|nil
function M.stats(lim, now)
  local a = lim.adapt
  if not a then return nil end
  return { base = a.base, floor = M.floor(lim), step = M.step(lim), episode = math.max(0, a.episode_until - now) }
end

return M
