--- resi.ratelimit.learn: what a limiter learns from the server's answers.
--- The limiter core (resi.ratelimit) schedules with its rules, its pause and
--- its concurrency; this module changes them from what an answer says:
---
---   observe   reads the headers (resi.ratelimit.headers), counts the
---             status, adopts the limits the server states, pauses on a
---             throttled answer, and counts use the server saw but we did
---             not; an adaptive limiter also adapts (resi.ratelimit.adaptive).
---   pause     stops every call of the limiter for a while, capped at
---             retry_after_max (or handed back with a not-before time).
---   options   the learning options of ratelimit.new, checked once.
---
--- lim:observe and lim:pause (resi.ratelimit) are the public entry points
--- and say what each does; the functions here take the limiter first.
local rules = require "resi.ratelimit.rules"
local headers = require "resi.ratelimit.headers"
local adaptive = require "resi.ratelimit.adaptive"

-- resi.log, loaded on first use.
local logger
local function log() logger = logger or require "resi.log"; return logger end

local M = {}

local ON_LONG = { sleep = true, ["return"] = true }

--- Checks the learning options of ratelimit.new (learn, reset_unit,
--- retry_after_max, on_long_wait, default_pause and the adaptive ones) into
--- the shared configuration cfg. `level` is the error level as the caller
--- counts it (its own frame is 1).
---@param cfg table
---@param opts resi.ratelimit.options
---@param level integer
function M.options(cfg, opts, level)
  level = level + 1
  cfg.learn = opts.learn == nil or opts.learn -- true, false or "any"
  cfg.reset_unit = opts.reset_unit or "auto"
  cfg.retry_after_max = opts.retry_after_max or 120
  cfg.on_long_wait = opts.on_long_wait or "sleep"
  if not ON_LONG[cfg.on_long_wait] then error("resi.ratelimit.new: on_long_wait must be sleep or return", level) end
  cfg.default_pause = opts.default_pause or 1
  cfg.adaptive = opts.adaptive and true or false
  cfg.min_limit = opts.min_limit or 1
  cfg.adaptive_floor = opts.adaptive_floor or adaptive.FLOOR
  if type(cfg.adaptive_floor) ~= "number" or cfg.adaptive_floor < 0 or cfg.adaptive_floor > 1 then
    error("resi.ratelimit.new: adaptive_floor must be a share of the limit from 0 to 1", level)
  end
  cfg.adaptive_step = opts.adaptive_step
  if cfg.adaptive_step ~= nil and (type(cfg.adaptive_step) ~= "number" or cfg.adaptive_step <= 0) then
    error("resi.ratelimit.new: adaptive_step must be a positive number of units", level)
  end
  cfg.max_limit = opts.max_limit or math.huge
end

--- lim:pause(seconds, why): see Limiter:pause in resi.ratelimit.
---@param lim resi.ratelimit.limiter
---@param seconds number
---@param why? string
function M.pause(lim, seconds, why)
  local now = lim.now()
  local asked = seconds
  if seconds > lim.retry_after_max then
    lim.st.capped = lim.st.capped + 1
    local handed = lim.on_long_wait == "return"
    log().warn("ratelimit: server asked for a pause above retry_after_max", {
      limiter = lim.name, asked = asked, cap = lim.retry_after_max,
      action = handed and "calls handed back with a not-before time" or "waiting the cap", source = why })
    if not handed then seconds = lim.retry_after_max end
  end
  local untl = now + seconds
  if untl > lim.paused_until then lim.paused_until = untl end
  lim.st.pauses = lim.st.pauses + 1
  lim.learned = lim.learned or {}
  lim.learned.pause = seconds
  log().debug("ratelimit: paused", { limiter = lim.name, seconds = seconds, source = why })
  lim:_dispatch()
end

-- Adopts a limit the server reported; adds a rule for a new window. A
-- limit without a window (RateLimit-Limit alone) may be for another window
-- than ours, so it only lowers ours unless learn = "any". Returns the rule.
local function learn_limit(lim, limit, window, now, name)
  local r = lim:_rule_for(window)
  if r then
    if window == nil and limit > r.limit and lim.learn ~= "any" then return r end
    if limit ~= r.limit and limit > 0 then
      log().debug("ratelimit: limit learned from the server",
        { limiter = lim.name, limit = limit, was = r.limit, window = r.window })
      r:set_limit(limit, now)
      adaptive.rebase(lim, r, limit)
    end
    return r
  end
  if window and limit > 0 and #lim.rules < 8 then
    r = rules.sliding(limit, window)
    r.learned_from = name or "server"
    lim.rules[#lim.rules + 1] = r
    log().debug("ratelimit: window learned from the server", { limiter = lim.name, limit = limit, window = window })
    return r
  end
  return nil
end

-- Counts the answer's status: 429s in a row (they grow the default pause)
-- and 503s; a success ends the run and steps an adaptive limit back up.
local function count_status(lim, status, now)
  local st = lim.st
  if status == 429 then
    st.seen_429 = st.seen_429 + 1
    lim.consecutive_429 = lim.consecutive_429 + 1
  elseif status == 503 then
    st.seen_503 = st.seen_503 + 1
  elseif status < 400 then
    lim.consecutive_429 = 0
    adaptive.succeeded(lim, now)
  end
end

-- Keeps what the headers said, for stats().learned.
local function remember(lim, info, now)
  local l = lim.learned or {}
  lim.learned = l
  l.limit, l.remaining, l.reset, l.window = info.limit or l.limit, info.remaining, info.reset, info.window or l.window
  l.retry_after = info.retry_after
  l.at = now
end

-- Adopts what the server's limits say, Retry-After or not (unless
-- learn = false), and returns the local rule its RateLimit fields are
-- about, if any.
local function adopt_limits(lim, info, now)
  local rule
  if lim.learn then
    for _, p in ipairs(info.policies) do learn_limit(lim, p.quota, p.window, now, p.name) end
    if info.limit then rule = learn_limit(lim, info.limit, info.window, now, info.policy) end
  end
  return rule or lim:_rule_for(info.window)
end

-- A throttled answer: pauses for Retry-After, else the RateLimit reset when
-- nothing is left, else a default pause that doubles per 429 in a row.
-- An adaptive limiter halves its limit when the answer stated none.
local function throttled(lim, info, now, permit)
  if info.retry_after then
    lim:pause(info.retry_after, "retry-after")
  elseif info.remaining == 0 and info.reset then
    lim:pause(info.reset, "ratelimit-reset")
  else
    local d = math.min(lim.default_pause * 2 ^ (lim.consecutive_429 - 1), lim.retry_after_max)
    lim:pause(d, "429 without Retry-After")
  end
  if info.limit == nil then adaptive.throttled(lim, now, permit) else adaptive.noted(lim, now) end
end

-- A RateLimit-Remaining below what the rule thinks is left: the difference
-- is someone else's use, charged until the reset. Without a rule to charge,
-- nothing left pauses until the reset.
local function reconcile(lim, info, rule, now)
  if rule then
    local left = rule.limit - rule:used(now)
    if left > info.remaining then
      rule:phantom(now, left - info.remaining, info.reset)
      log().debug("ratelimit: server counts more use than we do",
        { limiter = lim.name, ours = left, server = info.remaining })
    end
  elseif info.remaining == 0 and info.reset and info.reset > 0 then
    lim:pause(info.reset, "ratelimit-remaining 0")
  end
end

--- lim:observe(res, permit): see Limiter:observe in resi.ratelimit.
---@param lim resi.ratelimit.limiter
---@param res {status: integer, headers: table<string,string>}|nil
---@param permit? resi.ratelimit.permit
---@return table|nil info
function M.observe(lim, res, permit)
  if type(res) ~= "table" or type(res.status) ~= "number" then return nil end
  if type(permit) ~= "table" or permit.lim ~= lim then permit = nil end
  local now = lim.now()
  local info = headers.parse(res.headers or {}, lim.wall(), { reset_unit = lim.reset_unit })
  local status = res.status
  if info.ignored then
    log().debug("ratelimit: header ignored", { limiter = lim.name, ignored = info.ignored })
  end
  count_status(lim, status, now)
  remember(lim, info, now)
  local rule = adopt_limits(lim, info, now)
  if status == 429 or (status == 503 and info.retry_after ~= nil) then
    throttled(lim, info, now, permit)
  elseif info.remaining and info.retry_after == nil then
    reconcile(lim, info, rule, now)
  end
  lim:_dispatch()
  return info
end

return M
