--- resi.notify.deliver: one event to one target, through the target's rate
--- limiter (resi.ratelimit), with retries and a deadline, counted and
--- logged; it never raises.
---
--- Each target has one limiter per identity (a webhook URL; a Telegram bot
--- and chat, under a parent limiter for the bot), shared by every notifier
--- that names the same target, built with the target's documented rules.
--- lim:call runs the attempts: a 429 (or 503 with Retry-After) pauses the
--- limiter for Retry-After and the attempt goes again when it ends; a 5xx,
--- a timeout or a reset backs off with jitter and goes again (deliveries
--- are at least once: the webhook's Idempotency-Key lets a receiver drop a
--- duplicate); other 4xx, TLS and authentication failures are final. The
--- whole delivery stops at `deadline` seconds. Retries spend the limiter's
--- retry budget, so a receiver that is down does not multiply traffic.
local ratelimit = require "resi.ratelimit"
local retry = require "resi.ratelimit.retry"
local task = require "resi.task"
local target = require "resi.notify.target"
local secret = require "resi.secret"

local M = {}

-- Deliveries by target name: sent, failed, retries, pending.
local counts = {}
-- Limiters by target identity, and parents (a bot) by theirs.
local limiters, parents = {}, {}

-- Headers that make retry.classify treat a POST as safe to repeat.
local KEYED = { ["Idempotency-Key"] = "notification" }

-- The counters of a target name (created at 0).
local function counter(name)
  local c = counts[name]
  if not c then
    c = { sent = 0, failed = 0, retries = 0, pending = 0 }
    counts[name] = c
  end
  return c
end
M.counter = counter

--- A copy of the counters: {[name] = {sent=, failed=, retries=, pending=}}.
---@return table<string, {sent: integer, failed: integer, retries: integer, pending: integer}>
function M.stats()
  local out = {}
  for name, c in pairs(counts) do out[name] = { sent = c.sent, failed = c.failed, retries = c.retries, pending = c.pending } end
  return out
end

--- Every limiter made for a target so far (for resi.metrics.ratelimit).
---@return resi.ratelimit.limiter[]
function M.limiters()
  local out = {}
  for _, l in pairs(parents) do out[#out + 1] = l end
  for _, l in pairs(limiters) do out[#out + 1] = l end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

--- The limiter of a target, created on first use with the target's rules.
---@param t table
---@return resi.ratelimit.limiter
function M.limiter(t)
  local s = target.secrets_of(t)
  local id = t.kind .. "\0" .. tostring(s.key)
  local lim = limiters[id]
  if lim then return lim end
  local parent
  if t.parent_rules and s.parent_key then
    local pid = t.kind .. "\0" .. s.parent_key
    parent = parents[pid]
    if not parent then
      parent = ratelimit.new { name = "notify:" .. t.kind .. ":" .. secret.mask(s.parent_key), rules = t.parent_rules }
      parents[pid] = parent
    end
  end
  lim = ratelimit.new { name = "notify:" .. t.kind .. ":" .. secret.mask(s.key), rules = t.rules, parent = parent,
    retry_budget = retry.budget { capacity = 20, refill = 0.5 } }
  limiters[id] = lim
  return lim
end

--- Forgets every limiter and counter (specs).
function M.reset()
  counts, limiters, parents = {}, {}, {}
end

-- Whether lim:call tries again after an attempt's results.
local function retryable(t)
  return function(r1, _, r3)
    if type(r1) == "table" and type(r1.status) == "number" then
      if t.accepted(r1) then return nil end
      return retry.classify("POST", KEYED, r1)
    end
    if r1 ~= nil then return nil end -- a non-HTTP target's success
    if r3 == "tls" or r3 == "auth" or r3 == "rejected" or r3 == "too_large" then return nil end
    if t.transient then return t.transient[r3] and "retry" or nil end
    return retry.classify("POST", KEYED, nil, r3)
  end
end

-- The text of a failed delivery from lim:call's results.
local function failure_text(t, r1, r2, r3)
  if type(r1) == "table" and r1.status then return target.status_detail(r1) end
  return ("%s%s"):format(tostring(r2 or "failed"), r3 and (" (" .. tostring(r3) .. ")") or "")
end

--- Delivers normalised event e to target t. o: timeout (seconds per
--- attempt), attempts, deadline (seconds for the whole delivery), base and
--- cap (backoff). Returns true, or false and what went wrong (secrets
--- masked), then the receiver's answer ("status 200: ok", "SMTP reply
--- 250") and the attempts made. Counts and logs either way; never raises
--- (a cancel excepted).
---@param t table
---@param e table
---@param o {timeout: number, attempts: integer, deadline: number, base?: number, cap?: number}
---@return boolean ok
---@return string|nil err
---@return string|nil answer
---@return integer attempts
function M.deliver(t, e, o)
  local log = require "resi.log"
  local c = counter(t.name)
  c.pending = c.pending + 1
  local tries = 0
  local function attempt()
    tries = tries + 1
    return t.attempt(e, { timeout = o.timeout, attempt = tries })
  end
  local ok, r1, r2, r3 = pcall(task.timeout, o.deadline, function()
    local lim = M.limiter(t)
    return lim:call(attempt, { attempts = o.attempts, base = o.base or 0.5, cap = o.cap or 10, retryable = retryable(t) })
  end)
  c.pending = c.pending - 1
  c.retries = c.retries + math.max(0, tries - 1)
  if not ok and task.is_cancelled(r1) then
    c.failed = c.failed + 1
    error(r1, 0)
  end
  local err
  if not ok then
    err = "error: " .. tostring(r1)
  elseif r1 == nil and r2 == "timeout" and r3 == "timeout" then
    err = ("deadline of %gs passed after %d attempt%s"):format(o.deadline, tries, tries == 1 and "" or "s")
  elseif r1 ~= nil and (type(r1) ~= "table" or t.accepted(r1)) then
    c.sent = c.sent + 1
    log.debug("notification sent", { target = t.name, to = t.label, event = e.kind, id = e.id, attempts = tries })
    local answer = type(r1) == "table" and (r1.status and target.status_detail(r1) or r1.reply and ("SMTP reply " .. r1.reply))
    return true, nil, target.hide(t, answer or "accepted"), tries
  else
    err = failure_text(t, r1, r2, r3)
  end
  err = target.hide(t, err)
  c.failed = c.failed + 1
  log.error("notification failed", { target = t.name, to = t.label, event = e.kind, id = e.id, attempts = tries,
    error = err })
  return false, err, nil, tries
end

return M
