--- resi.ratelimit.retry: when and how long to wait before trying again.
---   backoff: exponential with full jitter, random(0, min(cap, base * 2^(n-1))).
---   budget: a token bucket of retries shared by every call on a limiter, so
---     an outage does not multiply traffic (each retry takes a token, each
---     success gives a fraction back; AWS's "retry quota").
---   call / request: the loop (lim:call and ratelimit.request), where every
---     attempt goes through the limiter again.
---   classify: the idempotency rule. A request that may create something
---     (POST, PATCH) is retried only when the server says it was not processed
---     (429, or 503 with Retry-After), when it never left (connect/resolve
---     failure), or when it carries an Idempotency-Key.
local H = require "resi.ratelimit.headers"

-- resi.log, loaded on first use.
local logger
local function log() logger = logger or require "resi.log"; return logger end

local M = {}

--- Methods that may be repeated without changing the result (RFC 9110 §9.2.2).
M.IDEMPOTENT = { GET = true, HEAD = true, OPTIONS = true, TRACE = true, PUT = true, DELETE = true }

--- Statuses worth another try for an idempotent request.
M.RETRY_STATUS = { [408] = true, [429] = true, [500] = true, [502] = true, [503] = true, [504] = true }

--- Transport failures where the request never reached the server.
M.NOT_SENT = { connect = true, resolve = true }

--- Full-jitter backoff for attempt n (1 = the first retry).
---@param n integer
---@param base number seconds
---@param cap number seconds
---@param rand? fun(): number  uniform [0,1)
---@return number seconds
function M.backoff(n, base, cap, rand)
  local ceiling = math.min(cap, base * 2 ^ (n - 1))
  return (rand or math.random)() * ceiling
end

---@class resi.ratelimit.budget
---@field tokens number
---@field capacity number
local Budget = {}
Budget.__index = Budget

--- A retry budget: `capacity` retries at most in a burst; each success
--- gives back `refill` of a retry.
---@param opts? {capacity?: number, refill?: number}
---@return resi.ratelimit.budget
function M.budget(opts)
  opts = opts or {}
  local cap = opts.capacity or 10
  return setmetatable({ tokens = cap, capacity = cap, refill = opts.refill or 0.1, denied = 0 }, Budget)
end

--- Takes one retry from the budget; false when it is empty.
---@return boolean
---@param cost? number tokens to take (default 1)
function Budget:withdraw(cost)
  cost = cost or 1
  if self.tokens < cost then
    self.denied = self.denied + 1
    return false
  end
  self.tokens = self.tokens - cost
  return true
end

--- A call succeeded: part of a retry comes back.
function Budget:deposit()
  self.tokens = math.min(self.capacity, self.tokens + self.refill)
  if self.tokens >= 1 then self.warned = nil end
end

-- Does the header table carry an Idempotency-Key (any case)?
local function has_key(headers)
  if type(headers) ~= "table" then return false end
  for k, v in pairs(headers) do
    if type(k) == "string" and k:lower() == "idempotency-key" and v ~= nil and v ~= "" then return true end
    if type(k) == "number" and type(v) == "string" and v:lower():match("^idempotency%-key%s*:") then return true end
  end
  return false
end
M.has_idempotency_key = has_key

--- Decides whether an HTTP outcome is retried. Returns "throttled" (the
--- server paused us: the limiter's pause is the wait), "retry" (back off
--- with jitter) or nil (do not retry) and, for nil, why: "status" (an
--- answer that a repeat would not change) or "not idempotent" (a call that
--- may have taken effect). `safe`, when given, overrides the method's
--- idempotency (a PATCH of absolute values is safe; a provider's create is
--- not, whatever its method).
---@param method string
---@param headers table|nil  the request's headers
---@param res table|nil  the response
---@param code string|nil  the transport failure code when res is nil
---@param safe? boolean
---@return "throttled"|"retry"|nil decision
---@return "status"|"not idempotent"|nil reason
function M.classify(method, headers, res, code, safe)
  method = (method or "GET"):upper()
  if safe == nil then safe = M.IDEMPOTENT[method] or has_key(headers) end
  if res then
    local s = res.status
    if s == 429 then return "throttled" end
    if s == 503 and res.headers and H.retry_after(res.headers["retry-after"], 0) then return "throttled" end
    if not M.RETRY_STATUS[s] then return nil, "status" end
    if safe then return "retry" end
    return nil, "not idempotent"
  end
  if M.NOT_SENT[code] then return "retry" end
  if safe then return "retry" end
  return nil, "not idempotent"
end

-- Retry settings: per call, then the limiter's `retry` option, then defaults.
local function retry_setting(self, opts, k, default)
  local v = opts[k]
  if v == nil then v = self.retry_opts[k] end
  if v == nil then v = default end
  return v
end

--- The state of one call's attempts (for M.attempt and M.again): the
--- settings (attempts, base, cap, budget, rand) from opts, then the
--- limiter's `retry` option, then the defaults.
---@param lim resi.ratelimit.limiter
---@param opts? table
---@return table
function M.start(lim, opts)
  opts = opts or {}
  return { attempt = 0, backoffs = 0, throttled = false, opts = opts,
    attempts = retry_setting(lim, opts, "attempts", 4), base = retry_setting(lim, opts, "base", 0.5),
    cap = retry_setting(lim, opts, "cap", 30), budget = opts.budget or lim.retry_budget }
end

--- One attempt through the limiter: acquires (false, why, info when the
--- limiter will not let it go), runs fn(attempt), observes a
--- response-shaped first result and releases. Returns true and fn's
--- results packed. An error fn raises is re-raised after the release.
---@param lim resi.ratelimit.limiter
---@param st table  from M.start
---@param fn fun(attempt: integer): any
---@return boolean sent
---@return table|string results_or_why
---@return any info
---@async
function M.attempt(lim, st, fn)
  st.attempt = st.attempt + 1
  local permit, why, info = lim:acquire(st.opts.weight or 1, st.opts)
  if not permit then return false, why, info end
  permit.after_throttle = st.throttled
  local r = table.pack(pcall(fn, st.attempt))
  if not r[1] then
    permit:release()
    error(r[2], 0)
  end
  local r1 = r[2]
  if type(r1) == "table" and type(r1.status) == "number" then lim:observe(r1, permit) end
  permit:release()
  return true, table.pack(table.unpack(r, 2, r.n))
end

--- A call ended well: part of a retry comes back to the budget.
---@param st table
function M.succeeded(st) st.budget:deposit() end

--- Before another attempt of a call whose last one was `decision`
--- ("throttled" or "retry"): false when there is none (that was the last
--- attempt, or the retry budget is empty); otherwise takes a retry from the
--- budget, waits a full-jitter backoff ("throttled" waits only for the
--- limiter's pause, at the next acquire) and returns true.
---@param lim resi.ratelimit.limiter
---@param st table
---@param decision "throttled"|"retry"
---@return boolean
---@async
function M.again(lim, st, decision)
  if st.attempt >= st.attempts then
    log().debug("ratelimit: giving up after the last attempt", { limiter = lim.name, attempts = st.attempt })
    return false
  end
  if not st.budget:withdraw() then
    lim.st.retries_denied = lim.st.retries_denied + 1
    if not st.budget.warned then -- once per exhaustion, not once per call
      st.budget.warned = true
      log().warn("ratelimit: retry budget exhausted, not retrying", { limiter = lim.name, attempt = st.attempt })
    end
    return false
  end
  lim.st.retries = lim.st.retries + 1
  st.throttled = st.throttled or decision == "throttled"
  if decision ~= "throttled" then
    st.backoffs = st.backoffs + 1
    local d = M.backoff(st.backoffs, st.base, st.cap, st.opts.rand)
    log().debug("ratelimit: retrying after backoff", { limiter = lim.name, attempt = st.attempt, seconds = d })
    lim.sleep(d)
  else
    log().debug("ratelimit: retrying after the server's pause", { limiter = lim.name, attempt = st.attempt })
  end
  return true
end

--- The loop of lim:call(fn, opts): M.attempt until retryable says stop or
--- M.again allows no more; its documentation is at lim:call (resi.ratelimit).
---@param self resi.ratelimit.limiter
---@param fn fun(attempt: integer): any
---@param opts? table
---@return any
---@async
function M.call(self, fn, opts)
  opts = opts or {}
  local retryable = opts.retryable or function(r1, _, r3)
    local res = type(r1) == "table" and r1.status and r1 or nil
    return M.classify(opts.method, opts.headers, res, res == nil and r3 or nil)
  end
  local st = M.start(self, opts)
  while true do
    local sent, r, info = M.attempt(self, st, fn)
    if not sent then return nil, r, info end
    local decision = retryable(r[1], r[2], r[3])
    if not decision then
      if r[1] ~= nil then M.succeeded(st) end
      return table.unpack(r, 1, r.n)
    end
    if not M.again(self, st, decision) then return table.unpack(r, 1, r.n) end
  end
end

-- Random hex for idempotency keys (the OS generator: keys must not repeat
-- across processes seeded alike).
local function random_key() return require("resi.random").hex(16) end

--- ratelimit.request(lim, http_opts, policy): lim:call around
--- resi.http.request; its documentation is at ratelimit.request (resi.ratelimit).
---@param lim resi.ratelimit.limiter
---@param http_opts table
---@param policy? table
---@return table|nil res
---@return string|nil err
---@return any code
---@async
function M.request(lim, http_opts, policy)
  local http = require "resi.http"
  local o = {}
  for k, v in pairs(policy or {}) do o[k] = v end
  local req = {}
  for k, v in pairs(http_opts) do req[k] = v end
  local method = (req.method or "GET"):upper()
  local hdrs = {}
  for k, v in pairs(req.headers or {}) do hdrs[k] = v end
  if o.idempotency_key and not M.has_idempotency_key(hdrs) then
    hdrs["Idempotency-Key"] = o.idempotency_key == true and random_key() or tostring(o.idempotency_key)
  end
  req.headers = hdrs
  o.method, o.headers = method, hdrs
  local last_err
  local res, err, code = lim:call(function()
    local r, e, c = http.request(req)
    last_err = e
    return r, e, c
  end, o)
  if res == nil and err ~= last_err then -- the limiter gave up, not the transport
    return nil, "ratelimit: " .. tostring(err), err, code
  end
  return res, err, code
end

return M
