--- resi.providers.common: what the three provider clients share: the error
--- object, input checks that name the field and the rule, base URLs from the
--- environment, and one call path (rate limiter, HTTP, status -> error,
--- retries that never repeat a create blindly).
local http = require "resi.http"
local json = require "resi.json"
local secret = require "resi.secret"
local task = require "resi.task"

local M = {}

---@class resi.providers.error
---@field kind string  validation | auth | forbidden | not_found | conflict | rate_limited | server | transport | protocol | api | unsupported
---@field provider string
---@field status integer|nil
---@field code string|nil
---@field message string
---@field retry_after number|nil
---@field field string|nil
local Error = {}
Error.__index = Error
Error.__name = "resi.providers.error"

--- "oxylabs: validation: traffic_limit must be ..." (never a secret).
function Error:__tostring()
  local parts = { self.provider, ": ", self.kind }
  if self.status then parts[#parts + 1] = " (HTTP " .. self.status .. ")" end
  if self.code and self.code ~= self.kind then parts[#parts + 1] = " " .. self.code end
  parts[#parts + 1] = ": " .. tostring(self.message)
  return table.concat(parts)
end

--- Makes an error object.
---@param fields table
---@return resi.providers.error
function M.error(fields) return setmetatable(fields, Error) end

--- True for errors made here.
function M.is_error(e) return getmetatable(e) == Error end

--- Raises a validation error naming the field and the rule, before any
--- request is spent.
function M.invalid(provider, field, rule)
  error(M.error { kind = "validation", provider = provider, field = field, code = "invalid_" .. field:gsub("%W", "_"),
    message = field .. " " .. rule }, 0)
end

--- The kind of error an HTTP status means.
function M.kind_of(status)
  if status == 400 or status == 422 then return "validation" end
  if status == 401 then return "auth" end
  if status == 403 then return "forbidden" end
  if status == 404 then return "not_found" end
  if status == 409 then return "conflict" end
  if status == 429 then return "rate_limited" end
  if status >= 500 then return "server" end
  return "api"
end

--- The base URL: an explicit option, else the environment variable (how
--- scripts point at `resi sim`), else the provider's real HTTPS host.
function M.base_url(opt, env_name, default)
  local url = opt or os.getenv(env_name) or default
  return (url:gsub("/+$", ""))
end

--- The Retry-After of a response in seconds (number form only), or nil.
function M.retry_after(res)
  local v = res and res.headers["retry-after"]
  local n = v and tonumber(v)
  if n and n >= 0 then return n end
  return nil
end

---@class resi.providers.client
---@field provider string
---@field base string
local Client = {}
Client.__index = Client
M.Client = Client

--- Retries after a transport failure, a 5xx or a 429 for calls that may
--- repeat; backoff with full jitter, capped.
M.MAX_ATTEMPTS = 4
M.BACKOFF_BASE = 0.25
M.BACKOFF_CAP = 8

-- One HTTP attempt: nil, err, code on transport failure.
function Client:attempt(spec)
  local headers = self:auth_headers(spec)
  for k, v in pairs(spec.headers or {}) do headers[k] = v end
  headers.Accept = headers.Accept or "application/json"
  if self.limiter then self.limiter:acquire(spec.group) end
  local res, err, code = http.request { method = spec.method, url = self.base .. spec.path, query = spec.query,
    json = spec.json, headers = headers, timeout = self.timeout, connect_timeout = self.connect_timeout }
  if self.limiter then self.limiter:release(spec.group, res) end
  return res, err, code
end

-- Turns a failed response into an error object.
function Client:response_error(res, spec)
  local body = res:json()
  local code, message = self:error_fields(body, res)
  return M.error { kind = M.kind_of(res.status), provider = self.provider, status = res.status, code = code,
    message = message or ("HTTP %d from %s %s"):format(res.status, spec.method, spec.path),
    retry_after = M.retry_after(res), request_id = res.headers["x-request-id"] }
end

-- May this failure be retried for this call?
local function retryable(spec, res, code)
  if res then
    if res.status == 429 then return true end -- the server did not process it
    if res.status == 503 and res.headers["retry-after"] then return true end
    if res.status >= 500 then return spec.safe end
    return false
  end
  if code == "connect" or code == "resolve" then return true end -- never left
  return spec.safe -- timeout, reset, truncated: maybe processed
end

--- Sends one API call and returns the decoded body and the response, or
--- raises an error object. spec: {method, path, query?, json?, headers?,
--- group?, safe? (may be repeated: reads, deletes, idempotency-keyed),
--- ok? (extra success statuses), reconcile? (fn called after an unclear
--- failure of an unsafe call: returns the result if the call took effect)}.
function Client:call(spec)
  local attempt = 0
  while true do
    attempt = attempt + 1
    local res, err, code = self:attempt(spec)
    if res and res.status < 300 then
      if res.status == 204 or res.body == "" then return nil, res end
      local body, jerr = res:json()
      if body == nil then
        if spec.safe and attempt < M.MAX_ATTEMPTS then goto retry end
        error(M.error { kind = "protocol", provider = self.provider, status = res.status, code = "bad_json",
          message = ("%s %s answered %d with a body that is not JSON: %s"):format(spec.method, spec.path, res.status, jerr) }, 0)
      end
      return body, res
    end
    if attempt >= M.MAX_ATTEMPTS or not retryable(spec, res, code) then
      if not res and spec.reconcile then
        -- an unsafe call whose outcome is unknown: look for what it made
        local found = spec.reconcile()
        if found ~= nil then return found, nil end
        if code == "timeout" or code == "reset" or code == "truncated" then
          -- not there: it did not take effect, so one more try is safe
          if attempt < M.MAX_ATTEMPTS then goto retry end
        end
      end
      if res then error(self:response_error(res, spec), 0) end
      error(M.error { kind = "transport", provider = self.provider, code = code,
        message = ("%s %s: %s"):format(spec.method, spec.path, err) }, 0)
    end
    ::retry::
    do
      local wait = res and M.retry_after(res)
      if not wait then wait = math.random() * math.min(M.BACKOFF_CAP, M.BACKOFF_BASE * 2 ^ (attempt - 1)) end
      task.sleep(wait)
    end
  end
end

--- "unknownproxies client (user reseller1, password …)": never a secret.
function Client:__tostring()
  return ("%s client (%s)"):format(self.provider, self:describe())
end

--- A subclass table for one provider.
function M.class(provider)
  local C = setmetatable({}, { __index = Client })
  C.__index = C
  C.__tostring = Client.__tostring
  C.__name = "resi.providers." .. provider
  C.provider = provider
  return C
end

--- Masks for descriptions.
M.mask = secret.mask

--- Checks that v is an integer (or an integer-valued float); returns it.
function M.integer(provider, field, v, lo, hi)
  local n = math.tointeger(v)
  if n == nil then M.invalid(provider, field, "must be an integer" .. (lo and (" from " .. lo .. (hi and (" to " .. hi) or "")) or "")) end
  if (lo and n < lo) or (hi and n > hi) then
    M.invalid(provider, field, ("must be from %s to %s (got %d)"):format(lo or "-inf", hi or "inf", n))
  end
  return n
end

--- Rejects fields a method does not know, naming them.
function M.known_fields(provider, method, fields, allowed)
  for k in pairs(fields) do
    if not allowed[k] then
      local names = {}
      for n in pairs(allowed) do names[#names + 1] = n end
      table.sort(names)
      M.invalid(provider, tostring(k), ("is not a field of %s (known: %s)"):format(method, table.concat(names, ", ")))
    end
  end
end

M.json = json
return M
