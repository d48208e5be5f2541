--- resi.providers.common: what the three provider clients share: the error
--- object, input checks that name the field and the rule, base URLs from the
--- environment, and one call path (rate limiter, HTTP, status -> error,
--- retries that never repeat a create blindly).
local http = require "resi.http"
local json = require "resi.json"
local secret = require "resi.secret"
local ratelimit = require "resi.ratelimit"

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

--- Attempts per call (the first and its retries), through the limiter.
M.MAX_ATTEMPTS = 4

-- The rate limiter for one call: the provider's profile for this account
-- and the call's endpoint group (resi.ratelimit.profiles).
function Client:limiter_for(method, path)
  local group = ratelimit.endpoint_group(self.provider, method, path)
  return ratelimit.profile(self.provider, self.rate_key, group, self.rate_overrides)
end

-- One HTTP attempt: the response, or nil, err, code on transport failure.
function Client:attempt(spec)
  local headers = self:auth_headers(spec)
  for k, v in pairs(spec.headers or {}) do headers[k] = v end
  headers.Accept = headers.Accept or "application/json"
  return http.request { method = spec.method, url = self.base .. spec.path, query = spec.query,
    json = spec.json, headers = headers, timeout = self.timeout, connect_timeout = self.connect_timeout }
end

-- Turns a failed response into an error object.
function Client:response_error(res, spec)
  local body = res:json()
  local code, message = self:error_fields(body, res)
  return M.error { kind = M.kind_of(res.status), provider = self.provider, status = res.status, code = code,
    message = message or ("HTTP %d from %s %s"):format(res.status, spec.method, spec.path),
    retry_after = M.retry_after(res), request_id = res.headers["x-request-id"] }
end

-- The retry decision for one outcome (resi.ratelimit's lim:call protocol):
-- "throttled" when the server said it did not process the call (429, 503
-- with Retry-After), "retry" for failures a repeat cannot make worse, nil
-- to stop. Only spec.safe calls (reads, absolute updates, deletes, keyed
-- creates) are repeated after a failure that may have taken effect.
local function decide(spec, res, code)
  if res then
    if res.status == 429 or (res.status == 503 and res.headers["retry-after"]) then return "throttled" end
    if res.status >= 500 then return spec.safe and "retry" or nil end
    if res.status < 300 and res.body ~= "" and res:json() == nil then return spec.safe and "retry" or nil end
    return nil
  end
  if code == "connect" or code == "resolve" then return "retry" end -- it never left
  return spec.safe and "retry" or nil
end

-- Reasons resi.ratelimit gives when it will not let a call go.
local REFUSED = { timeout = true, queue_full = true, dropped = true, not_before = true, too_heavy = true }

-- Transport failures where the request never left: nothing can have been
-- made, so there is nothing to look for.
local NOT_SENT = { connect = true, resolve = true }

-- The error of a call that failed in transport: it names the call (not a
-- lookup made on its behalf); context, when given, says what else failed.
local function transport_error(self, spec, err, code, context)
  return M.error { kind = "transport", provider = self.provider, code = code,
    message = ("%s %s: %s%s"):format(spec.method, spec.path, err, context and ("; " .. context) or "") }
end

-- Runs spec.reconcile (looks for what a call whose answer was lost made).
-- When the lookup fails too, raises the call's own error, with the
-- lookup's failure as context: the call is what the caller asked for.
local function lookup(self, spec, err, code)
  local ok, found = pcall(spec.reconcile)
  if ok then return found end
  error(transport_error(self, spec, err, code,
    "looking for what it may have made failed too: " .. tostring(found)), 0)
end

--- Sends one API call through the account's rate limiter and returns the
--- decoded body and the response, or raises an error object. spec:
--- {method, path, query?, json?, headers?, safe? (may be repeated after a
--- failure that may have taken effect), reconcile? (for unsafe creates:
--- called when the outcome is unknown; returns what the call made, or nil)}.
function Client:call(spec)
  local lim = self:limiter_for(spec.method, spec.path)
  local tries_left = 2 -- a lost create that reconcile did not find is sent once more
  while true do
    local res, err, code = lim:call(function() return self:attempt(spec) end, {
      method = spec.method, attempts = M.MAX_ATTEMPTS,
      retryable = function(r1, _, r3) return decide(spec, r1 and r1.status and r1 or nil, r3) end,
    })
    if res then
      if res.status >= 300 then error(self:response_error(res, spec), 0) end
      if res.status == 204 or res.body == "" then return nil, res end
      local body, jerr = res:json()
      if body == nil then
        error(M.error { kind = "protocol", provider = self.provider, status = res.status, code = "bad_json",
          message = ("%s %s answered %d with a body that is not JSON: %s"):format(spec.method, spec.path, res.status, jerr) }, 0)
      end
      return body, res
    end
    if REFUSED[err] and type(code) ~= "string" then
      error(M.error { kind = "rate_limited", provider = self.provider, code = err, retry_after = type(code) == "number"
        and math.max(0, code - os.time()) or nil,
        message = ("%s %s was not sent: the rate limiter said %s"):format(spec.method, spec.path, err) }, 0)
    end
    if spec.reconcile and not NOT_SENT[code] then
      -- an unsafe call whose outcome is unknown: look for what it made
      local found = lookup(self, spec, err, code)
      if found ~= nil then return found, nil end
      tries_left = tries_left - 1
      if tries_left <= 0 or not (code == "timeout" or code == "reset" or code == "truncated") then spec.reconcile = nil end
    end
    if not spec.reconcile or NOT_SENT[code] then error(transport_error(self, spec, err, code), 0) end
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

--- The fields every client has, from new()'s options: base URL (option,
--- then env_url, then the real API), timeouts, the rate-limit key and the
--- profile overrides (opts.ratelimit).
function M.client_fields(opts, rate_key, env_url, default_url, timeout)
  return { base = M.base_url(opts.base_url, env_url, default_url), timeout = opts.timeout or timeout or 30,
    connect_timeout = opts.connect_timeout or 10, rate_key = rate_key, rate_overrides = opts.ratelimit }
end

-- Username and password from new()'s options or the environment
-- (PREFIX_USERNAME / PREFIX_PASSWORD), with the Basic header they make.
local function basic_credentials(provider, opts, prefix)
  local credentials = require "resi.credentials"
  local username = opts.username or credentials.get(prefix .. "_USERNAME")
  local password = opts.password or credentials.get(prefix .. "_PASSWORD")
  if type(username) ~= "string" or username == "" then M.invalid(provider, "username", "is required (or set " .. prefix .. "_USERNAME)") end
  if type(password) ~= "string" or password == "" then M.invalid(provider, "password", "is required (or set " .. prefix .. "_PASSWORD)") end
  return username, "Basic " .. require("resi.base64").encode(username .. ":" .. password)
end

--- A client of class C (from M.class) for an API that takes HTTP Basic
--- credentials: username and password from opts or PREFIX_USERNAME /
--- PREFIX_PASSWORD, kept as self.username and self.authorization (the
--- header's value: a field name resi.secret masks), rate-limited per
--- username; the other fields as client_fields.
---@param C table
---@param opts? table
---@param prefix string
---@param env_url string
---@param default_url string
---@return resi.providers.client
function M.basic_client(C, opts, prefix, env_url, default_url)
  opts = opts or {}
  local username, basic = basic_credentials(C.provider, opts, prefix)
  local self = M.client_fields(opts, username, env_url, default_url)
  self.username, self.authorization = username, basic
  return setmetatable(self, C)
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
