--- resi.providers.common: what the three provider clients share: the error
--- object, input checks that name the field and the rule, base URLs from the
--- environment, the limiters each client builds once, and the client
--- methods resi.providers.call drives (one call path: rate limiter, HTTP,
--- status -> error, retries that never repeat a create blindly).
local json = require "resi.json"
local secret = require "resi.secret"
local headers = require "resi.ratelimit.headers"
local limits = require "resi.providers.limits"
local call = require "resi.providers.call"

local M = {}

--- The error object every provider call raises (tostring gives one line
--- that never holds a secret).
---@class resi.providers.error
---@field kind "validation"|"auth"|"forbidden"|"not_found"|"conflict"|"rate_limited"|"server"|"transport"|"protocol"|"api"|"unsupported"|"demo"
---@field provider string  "unknownproxies" | "oxylabs" | "resifactory"
---@field status integer|nil  the HTTP status, when there was an answer
---@field code string|nil  the provider's error code, or the transport's ("timeout", "reset", ...)
---@field message string
---@field retry_after number|nil  seconds the server asked to wait
---@field field string|nil  the input field a validation error is about
---@field request_id string|nil  the provider's X-Request-Id
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
---@param e any
---@return boolean
function M.is_error(e) return getmetatable(e) == Error end

--- Raises a validation error naming the field and the rule, before any
--- request is spent.
---@param provider string
---@param field string
---@param rule string  "must be ..." (follows the field's name)
function M.invalid(provider, field, rule)
  error(M.error { kind = "validation", provider = provider, field = field, code = "invalid_" .. field:gsub("%W", "_"),
    message = field .. " " .. rule }, 0)
end

--- The kind of error an HTTP status means.
---@param status integer
---@return string
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
---@param opt string|nil
---@param env_name string
---@param default string
---@return string
function M.base_url(opt, env_name, default)
  local url = opt or os.getenv(env_name) or default
  return (url:gsub("/+$", ""))
end

--- The Retry-After of a response in seconds (either form: delta seconds
--- or an HTTP-date, read by resi.ratelimit.headers, measured against the
--- response's Date as the limiter does, so clock skew cannot tell the two
--- apart), or nil.
---@param res table|nil
---@return number|nil
function M.retry_after(res)
  local v = res and res.headers["retry-after"]
  if not v then return nil end
  local server_now = res.headers.date and headers.http_date(res.headers.date)
  return headers.retry_after(v, os.time(), server_now) or nil
end

---@class resi.providers.client
---@field provider string
---@field base string
local Client = {}
Client.__index = Client
M.Client = Client

-- The limiter for one call: the client's own, of the call's endpoint
-- group (resi.providers.limits).
function Client:limiter_for(method, path)
  return self.limiters[limits.group_of(self.provider, method, path)]
end

-- The call's path with {user_id} filled in (Oxylabs' paths hold it).
function Client:path(spec)
  return (spec.path:gsub("{user_id}", function() return self.user_id end))
end

-- resi.http (libcurl and TLS: megabytes), loaded by the first call made,
-- so a client that is only looked at (REPL completion) costs nothing.
local http

-- One HTTP attempt: the response, or nil, err, code on transport failure.
function Client:attempt(spec)
  http = http or require "resi.http"
  local h = self:auth_headers(spec)
  for k, v in pairs(spec.headers or {}) do h[k] = v end
  h.Accept = h.Accept or "application/json"
  return http.request { method = spec.method, url = self.base .. self:path(spec), query = spec.query,
    json = spec.json, headers = h, timeout = self.timeout, connect_timeout = self.connect_timeout }
end

-- Turns a failed response into an error object.
function Client:response_error(res, spec)
  local body = res:json()
  local code, message = self:error_fields(body, res)
  return M.error { kind = M.kind_of(res.status), provider = self.provider, status = res.status, code = code,
    message = message or ("HTTP %d from %s %s"):format(res.status, spec.method, spec.path),
    retry_after = M.retry_after(res), request_id = res.headers["x-request-id"] }
end

--- Sends one API call (resi.providers.call has the protocol) and returns
--- the decoded body and the response, or raises an error object. spec:
--- {method, path, query?, json?, headers?, safe? (may be repeated after a
--- failure that may have taken effect), reconcile? (for unsafe creates:
--- called when the outcome is unknown; returns what the call made, or nil)}.
---@param spec table
---@return any body
---@return table|nil res
---@async
function Client:call(spec) return call.run(self, spec) end

--- "unknownproxies client (user reseller1, password …)": never a secret.
function Client:__tostring()
  return ("%s client (%s)"):format(self.provider, self:describe())
end

--- A subclass table for one provider.
---@param provider string
---@return table
function M.class(provider)
  local C = setmetatable({}, { __index = Client })
  C.__index = C
  C.__tostring = Client.__tostring
  C.__name = "resi.providers." .. provider
  C.provider = provider
  return C
end

--- The fields every client has, from new()'s options: base URL (option,
--- then env_url, then the real API), timeouts, and its limiters: the
--- account's, shared (limits.for_account: account.key, with the base URL, tells it
--- apart; account.label names it), or with opts.ratelimit's overrides its
--- own, or opts.limiters (another client's).
---@param provider string
---@param opts table
---@param env_url string
---@param default_url string
---@param timeout? number
---@param account {key: string, label: string}
---@return table
function M.client_fields(provider, opts, env_url, default_url, timeout, account)
  local base = M.base_url(opts.base_url, env_url, default_url)
  local limiters = opts.limiters
  if limiters == nil and opts.ratelimit ~= nil then limiters = limits.build(provider, opts.ratelimit) end
  if limiters == nil then limiters = limits.for_account(provider, base .. "\0" .. account.key, account.label) end
  return { base = base, timeout = opts.timeout or timeout or 30, connect_timeout = opts.connect_timeout or 10,
    limiters = limiters }
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
--- header's value: a field name resi.secret masks); the other fields as
--- client_fields.
---@param C table
---@param opts? table
---@param prefix string
---@param env_url string
---@param default_url string
---@return resi.providers.client
function M.basic_client(C, opts, prefix, env_url, default_url)
  opts = opts or {}
  local username, basic = basic_credentials(C.provider, opts, prefix)
  local self = M.client_fields(C.provider, opts, env_url, default_url, nil, { key = username, label = username })
  self.username, self.authorization = username, basic
  return setmetatable(self, C)
end

--- Masks for descriptions.
M.mask = secret.mask

--- Checks that v is an integer (or an integer-valued float), from lo to hi
--- when given; returns it, or raises a validation error naming the field.
---@param provider string
---@param field string
---@param v any
---@param lo? integer
---@param hi? integer
---@return integer
function M.integer(provider, field, v, lo, hi)
  local n = math.tointeger(v)
  if n == nil then M.invalid(provider, field, "must be an integer" .. (lo and (" from " .. lo .. (hi and (" to " .. hi) or "")) or "")) end
  if (lo and n < lo) or (hi and n > hi) then
    M.invalid(provider, field, ("must be from %s to %s (got %d)"):format(lo or "-inf", hi or "inf", n))
  end
  return n
end

--- Rejects fields a method does not know, naming them.
---@param provider string
---@param method string
---@param fields table
---@param allowed table<string, boolean>
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
