--- resi.providers.resifactory: the ResiFactory REST API
--- (https://resifactory.net/api/v1), Bearer API key.
---
---   local rf = require("resi.providers.resifactory").new{api_key = os.getenv("RF_API_KEY")}
---   local out = rf:generate{country = "us", quantity = 100, proxyType = "sticky", sessionDuration = 30}
---   -- out.raw (the API's answer), out.list (the proxies as a resi.proxylist list)
---   rf:balance()   rf:usage{limit = 10}   rf:pools()   rf:me()
---
--- Rules checked before a request (resifactory-api-v1.txt): quantity
--- 1..250,000; country ISO 3166-1 alpha-2 lower case; state only with
--- country "us"; proxyType rotating | sticky | mobile_rotating |
--- mobile_sticky; sessionDuration 1..1,440 (sticky types only); format list
--- | json | userpass; pool among the pools GET /pools lists (discovered once
--- and cached); usage limit 1..100. Every generate carries an
--- Idempotency-Key, so a retry after a lost answer cannot spend twice. A
--- demo answer (is_demo: true, the pool's balance is zero) is logged as a
--- warning, or raised when the client was made with require_live = true.
local common = require "resi.providers.common"
local log = require "resi.log"
local proxylist = require "resi.proxylist"
local random = require "resi.random"

local M = {}
local P = "resifactory"
M.DEFAULT_URL = "https://resifactory.net/api/v1"
M.PROXY_TYPES = { rotating = true, sticky = true, mobile_rotating = true, mobile_sticky = true }
M.STICKY = { sticky = true, mobile_sticky = true }
M.FORMATS = { list = true, json = true, userpass = true }

---@alias resi.providers.resifactory.proxy_type "rotating"|"sticky"|"mobile_rotating"|"mobile_sticky"
---@alias resi.providers.resifactory.format "list"|"json"|"userpass"

---@class resi.providers.resifactory.Client: resi.providers.client
local Client = common.class(P)

-- "key rf_live_…x7kQ".
function Client:describe() return "key " .. common.mask(self.api_key) end

-- The documented envelope {"error": {"code", "message"}}.
function Client:error_fields(body)
  if type(body) ~= "table" or type(body.error) ~= "table" then return nil, nil end
  return body.error.code, body.error.message
end

-- Bearer key on every call.
function Client:auth_headers() return { Authorization = "Bearer " .. self.api_key } end

-- A random Idempotency-Key (a v4 UUID from the OS generator: two processes
-- seeded alike must never share a key).
local idempotency_key = random.uuid

-- The generated proxies as a resi.proxylist list (a json answer's
-- proxies array is read by the same parser as a list file's lines).
local function to_list(raw, format)
  local text = raw.proxies
  if format == "json" then text = common.json.encode(raw.proxies) end
  return proxylist.parse(text, { format = format })
end

--- The pools this key can use (GET /pools), fetched once and cached;
--- refresh = true fetches again.
---@async
---@param refresh? boolean
---@return table[]
function Client:pools(refresh)
  if refresh or not self.pools_cache then
    self.pools_cache = self:call { method = "GET", path = "/pools", safe = true }
  end
  return self.pools_cache
end

--- Generates proxy credentials (POST /proxies). Returns {raw = the API's
--- answer, list = the proxies as a resi.proxylist list, is_demo, count,
--- format, replayed}. opts.idempotency_key: the Idempotency-Key to send
--- (default: a new random one per call, the same on its retries); give a
--- key you recorded (resi.intent's it.idempotency_key) and a call repeated
--- later, even by another run, replays the first answer instead of
--- spending again (the API keeps keys 24 hours).
---@param fields {pool?: string, country?: string, state?: string, quantity?: integer, proxyType?: resi.providers.resifactory.proxy_type, sessionDuration?: integer, format?: resi.providers.resifactory.format}
---@param opts? {idempotency_key?: string}
---@return {raw: table, list: resi.proxylist.list, is_demo: boolean, count: integer, format: string, replayed: boolean}
---@async
function Client:generate(fields, opts)
  fields = fields or {}
  if type(fields) ~= "table" then common.invalid(P, "fields", "must be a table") end
  common.known_fields(P, "generate", fields, { pool = true, country = true, state = true, quantity = true,
    proxyType = true, sessionDuration = true, format = true })
  local body = {}
  if fields.quantity ~= nil then body.quantity = common.integer(P, "quantity", fields.quantity, 1, 250000) end
  if fields.country ~= nil then
    if type(fields.country) ~= "string" or not fields.country:match("^%l%l$") then
      common.invalid(P, "country", 'must be an ISO 3166-1 alpha-2 code in lower case (e.g. "us")')
    end
    body.country = fields.country
  end
  if fields.state ~= nil then
    if body.country ~= "us" then common.invalid(P, "state", 'is only valid with country "us"') end
    if type(fields.state) ~= "string" or not fields.state:match("^%u%u$") then
      common.invalid(P, "state", 'must be a US state abbreviation (e.g. "CA")')
    end
    body.state = fields.state
  end
  local ptype = fields.proxyType
  if ptype ~= nil then
    if not M.PROXY_TYPES[ptype] then common.invalid(P, "proxyType", "must be rotating, sticky, mobile_rotating or mobile_sticky") end
    body.proxyType = ptype
  end
  if fields.sessionDuration ~= nil then
    local d = common.integer(P, "sessionDuration", fields.sessionDuration, 1, 1440)
    if not M.STICKY[ptype or "rotating"] then
      common.invalid(P, "sessionDuration", "applies only to sticky and mobile_sticky (rotating types ignore it)")
    end
    body.sessionDuration = d
  end
  local format = fields.format or "list"
  if not M.FORMATS[format] then common.invalid(P, "format", "must be list, json or userpass") end
  body.format = format
  if fields.pool ~= nil then
    if type(fields.pool) ~= "string" then common.invalid(P, "pool", "must be a pool id string") end
    local known = false
    for _, p in ipairs(self:pools().pools or {}) do known = known or p.id == fields.pool end
    if not known then common.invalid(P, "pool", ("%q is not among this key's pools (GET /pools)"):format(fields.pool)) end
    body.pool = fields.pool
  end
  local key = opts and opts.idempotency_key
  if key ~= nil and (type(key) ~= "string" or not key:match("^[\33-\126]+$") or #key > 255) then
    common.invalid(P, "idempotency_key", "must be 1 to 255 visible ASCII characters")
  end
  local raw, res = self:call { method = "POST", path = "/proxies", json = body, safe = true,
    headers = { ["Idempotency-Key"] = key or idempotency_key() } }
  if raw.is_demo then
    if self.require_live then
      error(common.error { kind = "demo", provider = P, code = "is_demo",
        message = ("pool %s has no balance: the API returned demo credentials that do not work"):format(tostring(raw.pool)) }, 0)
    end
    log.warn("resifactory returned demo credentials (is_demo: the pool's balance is zero); they will not work",
      { pool = raw.pool, count = raw.count })
  end
  return { raw = raw, list = to_list(raw, format), is_demo = raw.is_demo == true, count = raw.count, format = format,
    replayed = res ~= nil and res.headers["idempotent-replayed"] == "true" }
end

--- Remaining GB per pool (GET /balance).
---@return table
---@async
function Client:balance()
  return (self:call { method = "GET", path = "/balance", safe = true })
end

--- Top domains by bandwidth (GET /usage); opts.limit 1..100.
---@async
---@param opts? {limit?: integer}
---@return table
function Client:usage(opts)
  local query = {}
  if opts and opts.limit ~= nil then query.limit = common.integer(P, "limit", opts.limit, 1, 100) end
  return (self:call { method = "GET", path = "/usage", query = query, safe = true })
end

--- Identity and key summary (GET /me).
---@return table
---@async
function Client:me()
  return (self:call { method = "GET", path = "/me", safe = true })
end

--- A client. opts: api_key (default RF_API_KEY), base_url (default
--- RESI_RESIFACTORY_URL, then the real API), require_live, timeout, ratelimit (overrides for its resi.ratelimit profile, e.g. {window = 3}).
---@param opts? {api_key?: string, base_url?: string, require_live?: boolean, timeout?: number, ratelimit?: table}
---@return resi.providers.resifactory.Client
function M.new(opts)
  opts = opts or {}
  local key = opts.api_key or require("resi.credentials").get("RF_API_KEY")
  if type(key) ~= "string" or not key:match("^rf_live_[%w_%-]+$") then
    common.invalid(P, "api_key", "is required and starts with rf_live_ (or set RF_API_KEY)")
  end
  local self = common.client_fields(P, opts, "RESI_RESIFACTORY_URL", M.DEFAULT_URL, 60,
    { key = key, label = common.mask(key) })
  self.api_key, self.require_live = key, opts.require_live == true
  return setmetatable(self, Client)
end

M.Client = Client
return M
