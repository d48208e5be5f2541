--- resi.providers.unknownproxies: the UnknownProxies reseller token API
--- (https://api.unknownproxies.com/api/v1), Basic auth on every call.
---
---   local up = require("resi.providers.unknownproxies").new{username = ..., password = ...}
---   local t = up:create_token{dataLimit = 10 * 1000000000, durationHours = 720}
---   up:modify_token(t.token, {dataLimit = 20 * 1000000000})
---   up:get_token(t.token, {usage = true})   up:list_tokens()   up:delete_token(t.token)
---
--- Input is checked before a request is spent, with the documented rules
--- (DESIGN.md §4): dataLimit an integer number of bytes, at least 1 GB and a
--- whole multiple of 1,000,000,000; username exactly 8 characters;
--- durationHours 0..87600; password (modify) exactly 8 characters; at least
--- one field on modify. Retrieve and list paths are inferred (the docs do
--- not show them): they live in PATHS so a correction is one line.
local common = require "resi.providers.common"
local random = require "resi.random"

local M = {}
local P = "unknownproxies"
local GB = 1000000000

--- Paths below the base URL, one place to correct them.
M.PATHS = {
  create = "/resi/token/create", modify = "/resi/token", delete = "/resi/token",
  get = "/resi/token", list = "/resi/tokens",
}
M.DEFAULT_URL = "https://api.unknownproxies.com/api/v1"

--- A residential token as the API returns it (providers.md §1.2).
---@class resi.providers.unknownproxies.Token
---@field token string  the id
---@field username string  8 characters
---@field password string
---@field authType "user"
---@field status "active"|"expired"|"deleted"
---@field dataLimit integer  bytes, a whole multiple of 1,000,000,000
---@field dataUsage integer  bytes used
---@field durationHours integer  0 = no time expiry
---@field allowedPools string[]  empty = all pools
---@field createdAt integer  epoch seconds
---@field updatedAt integer  epoch seconds
---@field usage? {date: string, usage: integer}[]  with get_token(id, {usage = true})

---@class resi.providers.unknownproxies.Client: resi.providers.client
local Client = common.class(P)

-- Basic credentials for every call.
function Client:auth_headers()
  return { Authorization = self.authorization }
end

-- The provider's error body: {"error": CODE, "message": TEXT} (the sandbox's
-- shape; the real API's is undocumented, so other shapes fall back).
function Client:error_fields(body)
  if type(body) ~= "table" then return nil, nil end
  local e = body.error
  if type(e) == "table" then return e.code, e.message end
  return type(e) == "string" and e or nil, body.message or (type(e) == "string" and e or nil)
end

-- "user acme, password …".
function Client:describe() return ("user %s, password …"):format(self.username) end

-- Checks dataLimit.
local function check_limit(v)
  local n = common.integer(P, "dataLimit", v)
  if n < GB then common.invalid(P, "dataLimit", "must be at least 1000000000 bytes (1 GB)") end
  if n % GB ~= 0 then common.invalid(P, "dataLimit", "must be a whole number of gigabytes (a multiple of 1000000000)") end
  return n
end

-- Checks an exactly-8-character credential.
local function check_eight(field, v)
  if type(v) ~= "string" or utf8.len(v) ~= 8 then common.invalid(P, field, "must be exactly 8 characters") end
  if v:find("[%s:@]") then common.invalid(P, field, "must not contain spaces, ':' or '@'") end
  return v
end

local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

-- A random 8-character alphanumeric username (chosen here rather than by
-- the server, so a create whose answer is lost can be found again).
local function random_username()
  return random.string(8, ALNUM)
end

--- Creates a token. fields: dataLimit (bytes, required), username?,
--- durationHours?. Returns the token object.
---@param fields {dataLimit: integer, username?: string, durationHours?: integer}
---@return resi.providers.unknownproxies.Token
---@async
function Client:create_token(fields)
  if type(fields) ~= "table" then common.invalid(P, "fields", "must be a table") end
  common.known_fields(P, "create_token", fields, { dataLimit = true, username = true, durationHours = true })
  if fields.dataLimit == nil then common.invalid(P, "dataLimit", "is required") end
  local body = { dataLimit = check_limit(fields.dataLimit) }
  body.username = check_eight("username", fields.username or random_username())
  if fields.durationHours ~= nil then body.durationHours = common.integer(P, "durationHours", fields.durationHours, 0, 87600) end
  return (self:call { method = "POST", path = M.PATHS.create, json = body,
    reconcile = function() return self:find_by_username(body.username) end })
end

--- Finds a token of this account by username (nil when none is active).
---@param username string
---@return resi.providers.unknownproxies.Token|nil
---@async
function Client:find_by_username(username)
  for _, t in ipairs(self:list_tokens()) do
    if t.username == username and t.status ~= "deleted" then return t end
  end
  return nil
end

--- Changes a token: password (8 characters), allowedPools (pool ids; an
--- empty list means every pool), dataLimit (never lower), durationHours.
---@param token string
---@param fields {password?: string, allowedPools?: string[], dataLimit?: integer, durationHours?: integer}
---@return resi.providers.unknownproxies.Token
---@async
function Client:modify_token(token, fields)
  if type(token) ~= "string" or token == "" then common.invalid(P, "token", "is required (the token id)") end
  if type(fields) ~= "table" or next(fields) == nil then
    common.invalid(P, "fields", "needs at least one of password, allowedPools, dataLimit, durationHours")
  end
  common.known_fields(P, "modify_token", fields, { password = true, allowedPools = true, dataLimit = true, durationHours = true })
  local body = { token = token }
  if fields.password ~= nil then body.password = check_eight("password", fields.password) end
  if fields.dataLimit ~= nil then body.dataLimit = check_limit(fields.dataLimit) end
  if fields.durationHours ~= nil then body.durationHours = common.integer(P, "durationHours", fields.durationHours, 0, 87600) end
  if fields.allowedPools ~= nil then
    if type(fields.allowedPools) ~= "table" then common.invalid(P, "allowedPools", "must be a list of pool ids") end
    local pools = common.json.array()
    for i, p in ipairs(fields.allowedPools) do
      if type(p) ~= "string" or p == "" then common.invalid(P, ("allowedPools[%d]"):format(i), "must be a pool id string") end
      pools[i] = p
    end
    body.allowedPools = pools
  end
  -- a modify sets absolute values, so repeating it is harmless
  return (self:call { method = "PATCH", path = M.PATHS.modify, json = body, safe = true })
end

--- Deletes an active token (irreversible; it stays retrievable as deleted).
---@param token string
---@return table {message = "success"}
---@async
function Client:delete_token(token)
  if type(token) ~= "string" or token == "" then common.invalid(P, "token", "is required (the token id)") end
  local ok, res = pcall(self.call, self, { method = "DELETE", path = M.PATHS.delete, json = { token = token },
    safe = true })
  if ok then return res end
  -- a retried delete whose first try took effect answers "not active": check
  if common.is_error(res) and res.kind == "conflict" then
    local t = self:get_token(token)
    if t.status == "deleted" then return { message = "success", already = true } end
  end
  error(res, 0)
end

--- Retrieves one token (also deleted ones); opts.usage adds daily usage.
---@param token string
---@param opts? {usage?: boolean}
---@return resi.providers.unknownproxies.Token
---@async
function Client:get_token(token, opts)
  if type(token) ~= "string" or token == "" then common.invalid(P, "token", "is required (the token id)") end
  local query = { token = token }
  if opts and opts.usage then query.usage = "true" end
  return (self:call { method = "GET", path = M.PATHS.get, query = query, safe = true })
end

--- Every token of the account.
---@return resi.providers.unknownproxies.Token[]
---@async
function Client:list_tokens()
  local body = self:call { method = "GET", path = M.PATHS.list, safe = true }
  return body.tokens or body
end

--- A client. opts: username, password (default UNKNOWNPROXIES_USERNAME /
--- UNKNOWNPROXIES_PASSWORD), base_url (default RESI_UNKNOWNPROXIES_URL, then
--- the real API), timeout, ratelimit (overrides for its resi.ratelimit profile, e.g. {window = 3}).
---@param opts? {username?: string, password?: string, base_url?: string, timeout?: number, ratelimit?: table}
---@return resi.providers.unknownproxies.Client
function M.new(opts)
  return common.basic_client(Client, opts, "UNKNOWNPROXIES", "RESI_UNKNOWNPROXIES_URL", M.DEFAULT_URL)
end

M.Client = Client
return M
