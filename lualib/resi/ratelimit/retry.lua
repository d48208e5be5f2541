--- resi.ratelimit.retry: when and how long to wait before trying again.
---   backoff: exponential with full jitter, random(0, min(cap, base * 2^(n-1))).
---   budget: a token bucket of retries shared by every call on a limiter, so
---     an outage does not multiply traffic (each retry takes a token, each
---     success gives a fraction back; AWS's "retry quota").
---   classify: the idempotency rule. A request that may create something
---     (POST, PATCH) is retried only when the server says it was not processed
---     (429, or 503 with Retry-After), when it never left (connect/resolve
---     failure), or when it carries an Idempotency-Key.
local H = require "resi.ratelimit.headers"

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
--- with jitter) or nil (do not retry) and, for nil, why.
---@param method string
---@param headers table|nil  the request's headers
---@param res table|nil  the response
---@param code string|nil  the transport failure code when res is nil
---@return string|nil decision, string|nil reason
function M.classify(method, headers, res, code)
  method = (method or "GET"):upper()
  local safe = M.IDEMPOTENT[method] or has_key(headers)
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

return M
