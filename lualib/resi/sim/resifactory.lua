--- resi.sim.resifactory: the sandbox's ResiFactory REST API (base /api/v1),
--- a Bearer API key (`rf_live_...`) with scopes on every call.
---
--- Documented behaviour (resifactory-api-v1.txt; providers.md §3):
---   POST /proxies   proxies:generate  pool, country (lowercase alpha-2),
---                   state (US only), quantity 1..250000 (5000), proxyType
---                   rotating|sticky|mobile_rotating|mobile_sticky
---                   (rotating), sessionDuration 1..1440 (sticky types only;
---                   ignored, even when invalid, for rotating ones), format
---                   list|json|userpass (list); is_demo with non-working
---                   credentials when the pool's balance is zero
---   GET /balance    usage:read        {"balances": {pool: GB, 4 decimals}}
---   GET /usage      usage:read        ?limit=1..100 (25) -> {"top_domains": [...]}
---   GET /pools      pools:read        {"pools": [...], "targeting": {...}}
---   GET /me         any valid key     {"id", "username", "scopes", "balances", "key"}
--- Errors are {"error": {"code", "message", "request_id", "details"?}} with
--- unauthorized 401, account_disabled 403, insufficient_scope 403,
--- pool_not_available 404, invalid_request 400 (details[].field names the
--- parameter), rate_limited 429, internal_error 500, and from the real
--- integration (providers.md §3.1) idempotency_key_reuse 422 and
--- idempotency_in_progress 409. Every response carries X-Request-Id (the
--- same id as error.request_id) and RateLimit-Limit / -Remaining / -Reset;
--- a 429 adds Retry-After (whole seconds >= 1).
---
--- Decided here, where the docs are silent:
--- * Checks run in this order: rate limit (429), key (401), path (404
---   not_found / 405 method_not_allowed), account_disabled (403, on every
---   endpoint, /me too), scope (403), then the endpoint's own checks.
--- * Rate limits: an exact sliding log per key and group (generate: POST
---   /proxies; reads: everything else, unknown paths too), see
---   resi.sim.resifactory_limits. Requests without a valid key are counted
---   per client address instead. A 429 is not counted. An idempotent replay
---   is a request like any other and is counted (it charges nothing).
--- * Generating is free: a batch does not take GB, it is tied to the pool's
---   balance (zero balance -> is_demo). Each batch is recorded (GET
---   /_sim/state shows them); a live batch puts its pool "in use", and the
---   traffic generator (tick) then spends that pool's balance at
---   traffic_rate x (balance when it went into use) GB per simulated hour,
---   spread over a fixed set of target domains for GET /usage (bytes are
---   binary: 1 GB = 1,073,741,824 bytes; a request averages 24,000 bytes).
--- * Usernames: `user-<account>[-type-mobile][-country-cc][-state-st]`, and
---   for sticky types `-session-<8 chars>-sesstime-<minutes>`, a unique
---   session per line. The password is the account's proxy password. Demo
---   credentials use `demo-` instead of `user-` and the password `demo`.
---   Omitted country/state are null in the answer (no geo targeting); an
---   omitted sessionDuration on a sticky type is the pool default, 30.
--- * A JSON null field counts as omitted; unknown body fields are ignored;
---   an empty body is {} (every field is optional).
--- * The default pool is the account's `default_pool` (accounts file) or
---   else the first pool of `pools` the key has a balance entry for.
--- * Idempotency-Key (POST /proxies only): 1..255 visible ASCII characters;
---   scoped to the key; the body is compared as canonical JSON (key order and
---   spacing do not matter); answers other than 5xx are stored for 24
---   simulated hours and replayed byte for byte with the original
---   X-Request-Id and `Idempotent-Replayed: true`; a 5xx or a crash forgets
---   the key so the client may retry.
--- * world.config.generate_delay (real seconds, default 0) holds every
---   generate request that long after it is registered, so tests can hit a
---   request still in progress; large batches also yield to the loop every
---   25,000 lines.
---
--- Admin (POST /_sim/usage with "provider": "resifactory"), by "api_key":
---   {"pool": ID, "balance": GB}         sets a balance (and grants the pool)
---   {"domain": D, "add_bytes": N, "add_requests"?: N}  adds domain usage
---   {"disabled": bool} / {"revoked": bool}             account and key state
--- Accounts file extras per account: id, username, key_name, default_pool,
--- revoked, proxy_password.
local json = require "resi.json"
local log = require "resi.log"
local task = require "resi.task"
local router = require "resi.sim.router"
local util = require "resi.sim.util"
local accounts_mod = require "resi.sim.accounts"
local limits = require "resi.sim.resifactory_limits"
local gen = require "resi.sim.resifactory_gen"

local M = {}

M.PROXY_TYPES = { "rotating", "sticky", "mobile_rotating", "mobile_sticky" }
M.STICKY = { sticky = true, mobile_sticky = true }
M.MOBILE = { mobile_rotating = true, mobile_sticky = true }
M.FORMATS = { "list", "json", "userpass" }
--- Batches kept per key for /_sim/state (the oldest are dropped).
M.MAX_BATCHES = 1000
M.COUNTRIES = { "us", "gb", "de", "ca", "jp", "au", "fr", "nl", "es", "it", "br", "mx" }
M.US_STATES = { "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
  "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND",
  "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY" }
M.QUANTITY = { min = 1, max = 250000, default = 5000 }
M.SESSION = { min = 1, max = 1440, default = 30 }
M.USAGE_LIMIT = { min = 1, max = 100, default = 25 }
M.IDEMPOTENCY_TTL = 24 * 3600
M.GB_BYTES = 1073741824
M.AVG_REQUEST_BYTES = 24000
--- Where simulated traffic goes, with its share.
M.DOMAINS = { { "walmart.com", 0.40 }, { "target.com", 0.22 }, { "bestbuy.com", 0.14 }, { "amazon.com", 0.10 },
  { "costco.com", 0.08 }, { "homedepot.com", 0.06 } }

-- Set of a list's values.
local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
local TYPE_SET, FORMAT_SET = set_of(M.PROXY_TYPES), set_of(M.FORMATS)
local COUNTRY_SET, STATE_SET = set_of(M.COUNTRIES), set_of(M.US_STATES)

--- The scope each route needs (nil: any valid key).
M.ROUTE_SCOPES = { ["POST /proxies"] = "proxies:generate", ["GET /balance"] = "usage:read",
  ["GET /usage"] = "usage:read", ["GET /pools"] = "pools:read" }

---@class resi.sim.resifactory
local P = {}
P.__index = P

-- GB rounded to four decimals (how the API reports balances).
local function round4(gb) return math.floor(gb * 10000 + 0.5) / 10000 end

-- A JSON array copy of a list.
local function array(list) return json.array(util.copy(list or {})) end

--- The key as it may be shown: `rf_live_…last4`.
---@param key string
---@return string
function M.mask(key) return "rf_live_…" .. key:sub(-4) end

-- A fresh request id.
function P:new_request_id() return "req_" .. self.rng:string(20) end

--- The provider's error answer, with a fresh request id (the framework's
--- faults and 404s use this; handlers use fail, which keeps the request's id).
---@param status integer
---@param code string
---@param message string
---@param details? table
---@param request_id? string
---@return table response
function P:error(status, code, message, details, request_id)
  local rid = request_id or self:new_request_id()
  local err = { code = code, message = message, request_id = rid }
  if details then err.details = json.array(details) end
  return { status = status, headers = { ["X-Request-Id"] = rid }, json = { error = err } }
end

-- An error answer for a request being handled (its id in body and header).
function P:fail(req, status, code, message, details)
  return self:error(status, code, message, details, req.rf_request_id)
end

-- invalid_request naming the parameter.
function P:invalid(req, field, message)
  return self:fail(req, 400, "invalid_request", message, { { field = field, message = message } })
end

-- A pool of the sandbox by id, or nil.
function P:pool(id)
  for _, p in ipairs(self.pools) do if p.id == id then return p end end
  return nil
end

-- The pools an account can use, in `pools` order.
function P:accessible(acct)
  local out = {}
  for _, p in ipairs(self.pools) do if acct.balances[p.id] ~= nil then out[#out + 1] = p end end
  return out
end

-- {pool id: GB rounded} over the pools the account can use.
function P:balances_view(acct)
  local out = {}
  for _, p in ipairs(self:accessible(acct)) do out[p.id] = round4(acct.balances[p.id]) end
  return out
end

-- The account's domains by bytes, most first (ties by name), at most n.
local function top_domains(acct, n)
  local list = {}
  for name, d in pairs(acct.domains) do list[#list + 1] = { domain = name, bytes = d.bytes, requests = d.requests } end
  table.sort(list, function(a, b)
    if a.bytes ~= b.bytes then return a.bytes > b.bytes end
    return a.domain < b.domain
  end)
  for i = #list, (n or #list) + 1, -1 do list[i] = nil end
  return json.array(list)
end

-- Adds whole bytes (and requests) to one domain of an account.
local function add_domain(acct, domain, bytes, requests)
  local d = acct.domains[domain]
  if not d then
    d = { bytes = 0, requests = 0 }
    acct.domains[domain] = d
  end
  requests = requests or ((d.bytes + bytes) // M.AVG_REQUEST_BYTES - d.bytes // M.AVG_REQUEST_BYTES)
  d.bytes, d.requests = d.bytes + bytes, d.requests + requests
end

-- Spreads traffic (bytes, may be fractional) over the domains.
local function add_traffic(acct, bytes)
  acct.carry = acct.carry + bytes
  local whole = math.floor(acct.carry)
  if whole <= 0 then return end
  acct.carry = acct.carry - whole
  local left = whole
  for i, d in ipairs(M.DOMAINS) do
    local part = i == #M.DOMAINS and left or math.floor(whole * d[2])
    left = left - part
    if part > 0 then add_domain(acct, d[1], part) end
  end
end

-- The account behind a request's Authorization header, or nil and why.
function P:authenticate(req)
  local h = req.headers.authorization
  if h == nil or h == "" then
    return nil, "missing Authorization header: send Authorization: Bearer rf_live_..."
  end
  local key = type(h) == "string" and h:match("^Bearer (rf_live_[%w_%-]+)$")
  if not key then return nil, "malformed Authorization header: expected Bearer rf_live_... (check for a missing Bearer prefix or stray whitespace)" end
  local acct = self.by_key[key]
  if not acct then return nil, "unknown API key" end
  if acct.revoked then return nil, "this API key has been revoked" end
  return acct
end

--- Answers one API request (path relative to /api/v1).
---@param req table
---@param path string
---@return table response
function P:handle(req, path)
  req.rf_request_id = self:new_request_id()
  local fn, why_not, name = self.router:find(req.method, path)
  local acct, why = self:authenticate(req)
  local group = name == "POST /proxies" and "generate" or "reads"
  local bucket = acct and ("key:" .. acct.api_key) or ("addr:" .. tostring(req.remote))
  local rl = self.limiter:take(bucket, group)
  local res
  if not rl.allowed then
    res = self:fail(req, 429, "rate_limited", ("rate limit of %d %s requests per %g seconds exceeded; retry in %d s")
      :format(rl.limit, group, self.world.config.rate_window, rl.retry_after))
  elseif not acct then
    res = self:fail(req, 401, "unauthorized", why)
  elseif not fn then
    if why_not == "method_not_allowed" then
      res = self:fail(req, 405, "method_not_allowed", req.method .. " is not allowed on " .. path)
    else
      res = self:fail(req, 404, "not_found", "no such endpoint: " .. path)
    end
  elseif acct.disabled then
    res = self:fail(req, 403, "account_disabled", "this account has been suspended; contact support")
  elseif M.ROUTE_SCOPES[name] and not acct.scope_set[M.ROUTE_SCOPES[name]] then
    res = self:fail(req, 403, "insufficient_scope", ("This key does not have the %s scope."):format(M.ROUTE_SCOPES[name]))
  else
    local ok, out = pcall(fn, self, req, acct)
    if ok then res = out
    else
      if task.is_cancelled(out) then error(out, 0) end
      log.error("resi sim: resifactory handler failed", { route = name, error = tostring(out), request_id = req.rf_request_id })
      res = self:fail(req, 500, "internal_error", "an unexpected error occurred; retry after a short delay")
    end
  end
  if acct then -- per key and group: answered, refused for the rate, other failures
    local c = acct.requests[group]
    local k = res.status == 429 and "rate_limited" or (res.status < 300 and "ok" or "failed")
    c[k] = c[k] + 1
  end
  res.headers = res.headers or {}
  local h = res.headers
  h["X-Request-Id"] = h["X-Request-Id"] or req.rf_request_id
  h["RateLimit-Limit"] = tostring(rl.limit)
  h["RateLimit-Remaining"] = tostring(rl.remaining)
  h["RateLimit-Reset"] = tostring(rl.reset)
  if rl.retry_after then h["Retry-After"] = tostring(rl.retry_after) end
  return res
end

-- The request body canonicalized for idempotency comparison.
local function fingerprint(body)
  if body == nil or body == "" then return "" end
  local v = json.safe_decode(body)
  if type(v) == "table" then
    local ok, text = pcall(json.encode, v, { sort_keys = true })
    if ok then return text end
  end
  return body
end

-- Drops an account's idempotency records older than the TTL.
function P:prune_idempotency(acct)
  local now = self.world.clock:now()
  for k, rec in pairs(acct.idem) do
    if rec.state == "done" and now - rec.created > M.IDEMPOTENCY_TTL then acct.idem[k] = nil end
  end
end

-- POST /proxies: the Idempotency-Key layer around generate.
function P:route_generate(req, acct)
  local ikey = req.headers["idempotency-key"]
  if ikey == nil then return self:generate(req, acct) end
  if type(ikey) ~= "string" or #ikey < 1 or #ikey > 255 or ikey:find("[^\33-\126]") then
    return self:invalid(req, "Idempotency-Key", "Idempotency-Key must be 1 to 255 visible ASCII characters")
  end
  self:prune_idempotency(acct)
  local fp = fingerprint(req.body)
  local rec = acct.idem[ikey]
  if rec then
    if rec.fingerprint ~= fp then
      return self:fail(req, 422, "idempotency_key_reuse",
        "Idempotency-Key " .. ikey .. " was already used with a different request body")
    end
    if rec.state == "in_progress" then
      return self:fail(req, 409, "idempotency_in_progress",
        "a request with Idempotency-Key " .. ikey .. " is still in progress; retry later")
    end
    rec.replays = rec.replays + 1
    return { status = rec.status, body = rec.body, headers = { ["Content-Type"] = "application/json",
      ["X-Request-Id"] = rec.request_id, ["Idempotent-Replayed"] = "true" } }
  end
  rec = { fingerprint = fp, state = "in_progress", created = self.world.clock:now(), replays = 0 }
  acct.idem[ikey] = rec
  local ok, res = pcall(self.generate, self, req, acct, ikey)
  if not ok or res.status >= 500 then
    acct.idem[ikey] = nil
    if not ok then error(res, 0) end
    return res
  end
  rec.state, rec.status, rec.request_id = "done", res.status, req.rf_request_id
  rec.body = res.body or json.encode(res.json)
  return res
end

-- Validates a POST /proxies body; the normalized options, or nil, response.
function P:check_generate(req, acct)
  local body = {}
  if req.body ~= nil and req.body ~= "" then
    local err
    body, err = util.json_body(req)
    if not body then return nil, self:invalid(req, "body", err) end
  end
  for k, v in pairs(body) do if v == json.null then body[k] = nil end end
  local o = {}
  if body.pool ~= nil and (type(body.pool) ~= "string" or body.pool == "") then
    return nil, self:invalid(req, "pool", "pool must be a pool ID string (see GET /pools)")
  end
  if body.country ~= nil then
    if type(body.country) ~= "string" or not body.country:match("^%l%l$") then
      return nil, self:invalid(req, "country", "country must be a lowercase ISO 3166-1 alpha-2 code (e.g. us, gb, de)")
    end
    if not COUNTRY_SET[body.country] then
      return nil, self:invalid(req, "country", ("country %s is not available; valid values: %s (GET /pools)")
        :format(body.country, table.concat(M.COUNTRIES, ", ")))
    end
    o.country = body.country
  end
  if body.state ~= nil then
    if o.country ~= "us" then
      return nil, self:invalid(req, "state", "state is only valid when country is us")
    end
    if type(body.state) ~= "string" or not STATE_SET[body.state] then
      return nil, self:invalid(req, "state", "state must be a US state abbreviation from GET /pools (e.g. CA, TX)")
    end
    o.state = body.state
  end
  o.quantity = body.quantity == nil and M.QUANTITY.default or body.quantity
  if not util.is_int(o.quantity) or o.quantity < M.QUANTITY.min or o.quantity > M.QUANTITY.max then
    return nil, self:invalid(req, "quantity", "quantity must be an integer from 1 to 250000")
  end
  o.quantity = math.tointeger(o.quantity)
  o.proxy_type = body.proxyType == nil and "rotating" or body.proxyType
  if not TYPE_SET[o.proxy_type] then
    return nil, self:invalid(req, "proxyType", "proxyType must be one of rotating, sticky, mobile_rotating, mobile_sticky")
  end
  if M.STICKY[o.proxy_type] then
    o.session = body.sessionDuration == nil and M.SESSION.default or body.sessionDuration
    if not util.is_int(o.session) or o.session < M.SESSION.min or o.session > M.SESSION.max then
      return nil, self:invalid(req, "sessionDuration", "sessionDuration must be an integer number of minutes from 1 to 1440")
    end
    o.session = math.tointeger(o.session)
  end
  o.format = body.format == nil and "list" or body.format
  if not FORMAT_SET[o.format] then
    return nil, self:invalid(req, "format", "format must be one of list, json, userpass")
  end
  local pool
  if body.pool ~= nil then
    pool = self:pool(body.pool)
    if not pool or acct.balances[pool.id] == nil then
      return nil, self:fail(req, 404, "pool_not_available",
        ("pool %s does not exist or is not accessible by this key; call GET /pools"):format(body.pool))
    end
  else
    pool = acct.default_pool and acct.balances[acct.default_pool] ~= nil and self:pool(acct.default_pool)
      or self:accessible(acct)[1]
    if not pool then return nil, self:fail(req, 404, "pool_not_available", "this key has no accessible pool") end
  end
  local types = pool.proxy_types or { "rotating", "sticky" }
  if not set_of(types)[o.proxy_type] then
    return nil, self:invalid(req, "proxyType", ("proxyType %s is not offered by pool %s (it offers %s)")
      :format(o.proxy_type, pool.id, table.concat(types, ", ")))
  end
  o.pool = pool
  return o
end

-- POST /proxies: generates one batch of credentials.
function P:generate(req, acct, ikey)
  local o, res = self:check_generate(req, acct)
  if not o then return res end
  local pool = o.pool
  local is_demo = (acct.balances[pool.id] or 0) <= 0
  local user = { is_demo and "demo" or "user", acct.tag }
  if M.MOBILE[o.proxy_type] then user[#user + 1] = "type-mobile" end
  if o.country then user[#user + 1] = "country-" .. o.country end
  if o.state then user[#user + 1] = "state-" .. o.state:lower() end
  acct.batch_seq = acct.batch_seq + 1
  local batch = { id = ("batch_%d"):format(acct.batch_seq), pool = pool.id, quantity = o.quantity,
    country = o.country or json.null, state = o.state or json.null, proxy_type = o.proxy_type,
    session_minutes = o.session or json.null, format = o.format, is_demo = is_demo,
    created_at = self.world.clock:time(), idempotency_key = ikey or json.null }
  acct.batches[#acct.batches + 1] = batch
  if #acct.batches > M.MAX_BATCHES then table.remove(acct.batches, 1) end -- /_sim/state shows the latest
  if not is_demo and not acct.in_use[pool.id] then acct.in_use[pool.id] = acct.balances[pool.id] end
  local delay = tonumber(self.world.config.generate_delay)
  if delay and delay > 0 then task.sleep(delay) end
  local proxies = gen.render { format = o.format, host = pool.host, port = pool.port or 8000,
    user = table.concat(user, "-"), password = is_demo and "demo" or acct.proxy_password, quantity = o.quantity,
    sticky = M.STICKY[o.proxy_type] or false, session_prefix = self.rng:string(4),
    session_suffix = o.session and ("-sesstime-" .. o.session), yield = function() task.sleep(0) end }
  local meta = json.encode { count = o.quantity, country = o.country or json.null, state = o.state or json.null,
    is_demo = is_demo, pool = pool.id, proxy_type = o.proxy_type, format = o.format }
  return { status = 200, headers = { ["Content-Type"] = "application/json" },
    body = '{"proxies":' .. proxies .. "," .. meta:sub(2) }
end

-- GET /balance
function P:route_balance(req, acct)
  return { status = 200, json = { balances = self:balances_view(acct) } }
end

-- GET /usage?limit=N
function P:route_usage(req, acct)
  local limit = req.query.limit
  local n = M.USAGE_LIMIT.default
  if limit ~= nil then
    n = type(limit) == "string" and limit:match("^%d+$") and tonumber(limit)
    if not n or n < M.USAGE_LIMIT.min or n > M.USAGE_LIMIT.max then
      return self:invalid(req, "limit", "limit must be an integer from 1 to 100")
    end
  end
  return { status = 200, json = { top_domains = top_domains(acct, math.tointeger(n)) } }
end

-- GET /pools
function P:route_pools(req, acct)
  local out = {}
  for _, p in ipairs(self:accessible(acct)) do
    local types = p.proxy_types or { "rotating", "sticky" }
    local sticky = {}
    for _, t in ipairs(types) do if M.STICKY[t] then sticky[#sticky + 1] = t end end
    out[#out + 1] = { id = p.id, label = p.label or p.id, host = p.host, port = p.port or 8000,
      proxy_types = array(types), access = "granted", status = "available", protocols = json.array({ "http" }),
      targeting = { geo_supported = true, countries = array(M.COUNTRIES), us_states = array(M.US_STATES),
        session_minutes = { min = M.SESSION.min, max = M.SESSION.max, default = M.SESSION.default,
          applies_to = json.array(sticky) } } }
  end
  return { status = 200, json = { pools = json.array(out), targeting = { countries = array(M.COUNTRIES),
    us_states = array(M.US_STATES), session_minutes = { min = M.SESSION.min, max = M.SESSION.max },
    carriers = json.array() } } }
end

-- GET /me
function P:route_me(req, acct)
  local balances = self:balances_view(acct)
  return { status = 200, json = { id = acct.id, username = acct.username, scopes = array(acct.scopes),
    balances = balances, balances_gb = balances,
    key = { name = acct.key_name, prefix = "rf_live_", last4 = acct.api_key:sub(-4), spend_cap_usd = json.null } } }
end

--- Moves time on: pools in use spend their balance (dt simulated seconds)
--- and the bytes show up per domain in GET /usage.
---@param now number
---@param dt number
function P:tick(now, dt)
  local rate = self.world.config.traffic_rate or 0
  if dt <= 0 or rate <= 0 then return end
  for _, acct in ipairs(self.list) do
    if not acct.disabled and not acct.revoked then
      for pool, ref in pairs(acct.in_use) do
        local bal = acct.balances[pool]
        if bal and bal > 0 then
          local gb = math.min(bal, ref * rate * dt / 3600)
          acct.balances[pool] = bal - gb < 1e-9 and 0 or bal - gb
          add_traffic(acct, gb * M.GB_BYTES)
        end
      end
    end
  end
end

--- Gateway (resi.sim.gateway_auth): the account whose proxy usernames carry
--- tag (`user-TAG-...`), or nil.
---@param tag string
---@return table|nil
function P:gateway_account(tag)
  return self.by_tag[tag]
end

--- Gateway: the pool an account's proxy traffic is paid from: the first
--- pool (in `pools` order) with live batches and a positive balance; nil
--- when none has balance left.
---@param acct table
---@return string|nil
function P:gateway_pool(acct)
  for _, p in ipairs(self.pools) do
    if acct.in_use[p.id] and (acct.balances[p.id] or 0) > 0 then return p.id end
  end
  return nil
end

--- Gateway billing: bytes (and requests) to domain, taken from the pool's
--- balance (never below 0) and shown in GET /usage.
---@param acct table
---@param pool string
---@param bytes integer
---@param domain string
---@param requests integer
function P:gateway_bill(acct, pool, bytes, domain, requests)
  local bal = acct.balances[pool] or 0
  local left = bal - bytes / M.GB_BYTES
  acct.balances[pool] = left < 1e-12 and 0 or left
  add_domain(acct, domain, bytes, requests)
end

-- An account's full state for the admin API (the key masked).
function P:account_view(acct)
  local batches = {}
  for i, b in ipairs(acct.batches) do batches[i] = b end
  local in_use = {}
  for pool in pairs(acct.in_use) do in_use[#in_use + 1] = pool end
  table.sort(in_use)
  local idem = 0
  for _ in pairs(acct.idem) do idem = idem + 1 end
  local bucket = "key:" .. acct.api_key
  return { id = acct.id, username = acct.username, key = M.mask(acct.api_key), scopes = array(acct.scopes),
    disabled = acct.disabled, revoked = acct.revoked, balances = self:balances_view(acct),
    pools_in_use = json.array(in_use), top_domains = top_domains(acct), batches = json.array(batches),
    idempotency_keys = idem, requests = acct.requests,
    rate = { generate = { used = self.limiter:used(bucket, "generate"), limit = self.limiter:limit_of("generate") },
      reads = { used = self.limiter:used(bucket, "reads"), limit = self.limiter:limit_of("reads") } } }
end

--- Admin (POST /_sim/usage): changes one account, found by "api_key"; see
--- the module comment for the fields. Returns true and the account's state,
--- or false and {status?, code?, message}.
---@param body table
---@return boolean
---@return table
function P:set_usage(body)
  local acct = type(body.api_key) == "string" and self.by_key[body.api_key]
  if not acct then return false, { status = 404, code = "not_found", message = "no resifactory account with that api_key" } end
  local changed = false
  if body.balance ~= nil or body.pool ~= nil then
    if type(body.balance) ~= "number" or body.balance < 0 then
      return false, { message = "balance must be a non-negative number of GB (with pool)" }
    end
    if type(body.pool) ~= "string" or not self:pool(body.pool) then
      return false, { status = 404, code = "pool_not_available", message = "pool must be the id of a sandbox pool" }
    end
    changed = true
  end
  if body.add_bytes ~= nil or body.domain ~= nil then
    if type(body.domain) ~= "string" or body.domain == "" then return false, { message = "domain must be a non-empty string (with add_bytes)" } end
    if not util.is_int(body.add_bytes) or body.add_bytes < 0 then return false, { message = "add_bytes must be a non-negative integer" } end
    if body.add_requests ~= nil and (not util.is_int(body.add_requests) or body.add_requests < 0) then
      return false, { message = "add_requests must be a non-negative integer" }
    end
    changed = true
  end
  for _, f in ipairs({ "disabled", "revoked" }) do
    if body[f] ~= nil then
      if type(body[f]) ~= "boolean" then return false, { message = f .. " must be true or false" } end
      changed = true
    end
  end
  if not changed then
    return false, { message = "expected pool+balance, domain+add_bytes, disabled or revoked (with api_key)" }
  end
  if body.pool then
    acct.balances[body.pool] = body.balance
    acct.in_use[body.pool] = acct.in_use[body.pool] and body.balance > 0 and body.balance or nil
  end
  if body.domain then
    add_domain(acct, body.domain, math.tointeger(body.add_bytes), math.tointeger(body.add_requests))
  end
  if body.disabled ~= nil then acct.disabled = body.disabled end
  if body.revoked ~= nil then acct.revoked = body.revoked end
  return true, self:account_view(acct)
end

--- Everything, for GET /_sim/state (keys masked).
---@return table
function P:snapshot()
  local accounts = {}
  for i, acct in ipairs(self.list) do accounts[i] = self:account_view(acct) end
  return { accounts = json.array(accounts), pools = self.pools }
end

-- The account record for one entry of the accounts file.
function P:add_account(a, i)
  local scopes = a.scopes or accounts_mod.SCOPES
  local username = a.username or ("account" .. i)
  local balances = {}
  for pool, gb in pairs(a.balances or {}) do balances[pool] = gb end
  local acct = { id = math.tointeger(a.id) or 1000 + i, username = username,
    tag = (username:gsub("[^%w_]", "_")), api_key = a.api_key, scopes = util.copy(scopes),
    scope_set = set_of(scopes), disabled = a.disabled == true, revoked = a.revoked == true,
    key_name = a.key_name or "sandbox key", default_pool = a.default_pool, balances = balances,
    in_use = {}, carry = 0, domains = {}, batches = {}, batch_seq = 0, idem = {},
    requests = { generate = { ok = 0, rate_limited = 0, failed = 0 }, reads = { ok = 0, rate_limited = 0, failed = 0 } },
    proxy_password = a.proxy_password or self.rng:string(12) }
  self.by_key[a.api_key] = acct
  self.by_tag[acct.tag] = self.by_tag[acct.tag] or acct
  self.list[#self.list + 1] = acct
end

--- The provider over the sandbox's accounts (pools are used by reference).
---@param world resi.sim.world
---@param accounts table
---@return resi.sim.resifactory
function M.new(world, accounts)
  accounts.pools = accounts.pools or accounts_mod.default_pools()
  local self = setmetatable({ name = "resifactory", world = world, rng = util.rng(world.rng:next()), pools = accounts.pools,
    by_key = {}, by_tag = {}, list = {}, limiter = limits.new(world.config), router = router.new() }, P)
  self.router:add("POST", "/proxies", P.route_generate)
  self.router:add("GET", "/balance", P.route_balance)
  self.router:add("GET", "/usage", P.route_usage)
  self.router:add("GET", "/pools", P.route_pools)
  self.router:add("GET", "/me", P.route_me)
  for i, a in ipairs(accounts.resifactory or {}) do self:add_account(a, i) end
  return self
end

return M
