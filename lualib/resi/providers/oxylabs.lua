--- resi.providers.oxylabs: Oxylabs Residential Proxies public API v2
--- (https://residential-api.oxylabs.io/v2). Logs in with Basic auth
--- (POST /login -> user_id + a JWT valid for one hour), keeps the JWT, logs
--- in again before its hour is up and once more on a 401.
---
---   local oxy = require("resi.providers.oxylabs").new{username = ..., password = ...}
---   local u = oxy:create_sub_user{username = "team_a", password = "...", traffic_limit = 10}
---   oxy:sub_user_stats(u.id, {type = "month"})   oxy:update_sub_user(u.id, {traffic_limit = 20})
---   oxy:sub_users()   oxy:target_stats(u.id, "2026-11-20")   oxy:client_stats()   oxy:delete_sub_user(u.id)
---
--- Rules checked before a request (providers.md §2): username letters,
--- digits and underscore; password 12..64 characters with a lowercase and
--- an uppercase letter, a digit and one of # _ ~ + =; traffic_limit null
--- (unlimited, pass resi.json.null), 0 (blocked) or a positive number of GB;
--- stats type one of 24h, week, month, current_month, lifetime, custom (the
--- last needs date_from and date_to as "YYYY-MM-DD" or "YYYY-MM-DD HH").
local common = require "resi.providers.common"
local json = require "resi.json"
local core = require "resi.core"

local M = {}
local P = "oxylabs"
M.DEFAULT_URL = "https://residential-api.oxylabs.io/v2"
--- Log in again this many seconds before the JWT's hour is up.
M.JWT_LIFETIME = 3600
M.JWT_MARGIN = 300
M.STATS_TYPES = { ["24h"] = true, week = true, month = true, current_month = true, lifetime = true, custom = true }

--- A sub-user as the API returns it (providers.md §2.3; its password is
--- never returned).
---@class resi.providers.oxylabs.SubUser
---@field id integer
---@field username string
---@field status "active"|"disabled"
---@field created_at string
---@field traffic number  GB used in the current period
---@field traffic_limit number|nil  GB; nil (null) = unlimited, 0 = blocked
---@field auto_disable boolean
---@field lifetime boolean

---@class resi.providers.oxylabs.Client: resi.providers.client
local Client = common.class(P)

-- "user main, password …".
function Client:describe() return ("user %s, password …"):format(self.username) end

-- Oxylabs errors are {"error": "text"}.
function Client:error_fields(body)
  if type(body) ~= "table" then return nil, nil end
  local e = body.error
  if type(e) == "table" then return e.code, e.message end
  return nil, e or body.message
end

-- Bearer JWT for API calls, Basic for /login.
function Client:auth_headers(spec)
  if spec.login then return { Authorization = self.authorization } end
  return { Authorization = "Bearer " .. self.jwt }
end

--- Logs in (POST /login) and keeps user_id and the JWT; returns user_id.
---@return string
---@async
function Client:login()
  local body = self:call { method = "POST", path = "/login", login = true, safe = true }
  if type(body) ~= "table" or type(body.token) ~= "string" or body.user_id == nil then
    error(common.error { kind = "protocol", provider = P, message = "POST /login answered without user_id and token" }, 0)
  end
  self.jwt, self.user_id = body.token, tostring(body.user_id)
  self.jwt_expires = core.monotonic() + M.JWT_LIFETIME - M.JWT_MARGIN
  return self.user_id
end

-- Before each attempt of an API call (resi.providers.call): a JWT that is
-- missing or near its hour's end is renewed first.
function Client:prepare()
  if not self.jwt or core.monotonic() >= self.jwt_expires then self:login() end
end

-- The call's 401 outcome: the JWT was refused, so log in again (the call
-- protocol does this once per call; the path's {user_id} follows).
function Client:refresh() self:login() end

-- Checks a sub-user id.
local function check_id(id)
  local n = math.tointeger(tonumber(id))
  if not n or n <= 0 then common.invalid(P, "id", "must be a sub-user id (a positive integer)") end
  return n
end

-- Checks a sub-user password against the documented rule.
local function check_password(v)
  if type(v) ~= "string" then common.invalid(P, "password", "must be a string") end
  if #v < 12 or #v > 64 then common.invalid(P, "password", "must be 12 to 64 characters") end
  if not v:find("%l") or not v:find("%u") or not v:find("%d") or not v:find("[#_~+=]") then
    common.invalid(P, "password", "must contain a lowercase and an uppercase letter, a digit and one of # _ ~ + =")
  end
  if v:find("[^%w#_~+=]") then common.invalid(P, "password", "may contain only letters, digits and # _ ~ + =") end
  return v
end

-- Checks traffic_limit: json.null (unlimited), 0 (blocked) or GB > 0.
local function check_limit(v)
  if v == json.null then return v end
  if type(v) ~= "number" or v < 0 or v ~= v or v == math.huge then
    common.invalid(P, "traffic_limit", "must be resi.json.null (unlimited), 0 (blocked) or a positive number of GB")
  end
  return v
end

-- Checks a boolean field.
local function check_bool(field, v)
  if type(v) ~= "boolean" then common.invalid(P, field, "must be true or false") end
  return v
end

--- Active sub-users of the account.
---@return resi.providers.oxylabs.SubUser[]
---@async
function Client:sub_users()
  return (self:call { method = "GET", path = "/users/{user_id}/sub-users", safe = true })
end

--- Creates a sub-user: username, password (required), traffic_limit,
--- lifetime, auto_disable. Returns what the API returns.
---@param fields {username: string, password: string, traffic_limit?: number, lifetime?: boolean, auto_disable?: boolean}
---@async
---@return table created  what the API returns ({id = ...})
function Client:create_sub_user(fields)
  if type(fields) ~= "table" then common.invalid(P, "fields", "must be a table") end
  common.known_fields(P, "create_sub_user", fields,
    { username = true, password = true, traffic_limit = true, lifetime = true, auto_disable = true })
  local u = fields.username
  if type(u) ~= "string" or u == "" or u:find("[^%w_]") then
    common.invalid(P, "username", "is required: letters, digits and underscore")
  end
  local body = { username = u, password = check_password(fields.password) }
  if fields.traffic_limit ~= nil then body.traffic_limit = check_limit(fields.traffic_limit) end
  if fields.lifetime ~= nil then body.lifetime = check_bool("lifetime", fields.lifetime) end
  if fields.auto_disable ~= nil then body.auto_disable = check_bool("auto_disable", fields.auto_disable) end
  return (self:call { method = "POST", path = "/users/{user_id}/sub-users", json = body,
    reconcile = function() return self:find_sub_user(u) end })
end

--- The active sub-user with this username, or nil.
---@async
---@param username string
---@return resi.providers.oxylabs.SubUser|nil sub_user
function Client:find_sub_user(username)
  for _, s in ipairs(self:sub_users()) do
    if s.username == username then return s end
  end
  return nil
end

--- Traffic statistics of a sub-user. opts.type: 24h | week | month |
--- current_month | lifetime | custom (with date_from, date_to); time_zone.
---@param id integer
---@param opts? {type?: "24h"|"week"|"month"|"current_month"|"lifetime"|"custom", date_from?: string, date_to?: string, time_zone?: string}
---@async
---@return {traffic: number, results: table[]}
function Client:sub_user_stats(id, opts)
  opts = opts or {}
  local query = { type = opts.type or "month" }
  if not M.STATS_TYPES[query.type] then
    common.invalid(P, "type", "must be one of 24h, week, month, current_month, lifetime, custom")
  end
  if query.type == "custom" then
    for _, f in ipairs({ "date_from", "date_to" }) do
      local d = opts[f]
      if type(d) ~= "string" or not (d:match("^%d%d%d%d%-%d%d%-%d%d$") or d:match("^%d%d%d%d%-%d%d%-%d%d %d%d$")) then
        common.invalid(P, f, 'is required for type custom, as "YYYY-MM-DD" or "YYYY-MM-DD HH"')
      end
      query[f] = d
    end
  end
  query.time_zone = opts.time_zone
  return (self:call { method = "GET", path = "/users/{user_id}/sub-users/" .. check_id(id), query = query,
    safe = true })
end

--- Changes a sub-user: password, traffic_limit, lifetime, status
--- ("active" | "disabled"), auto_disable.
---@async
---@param id string|integer
---@param fields {password?: string, traffic_limit?: number|nil, lifetime?: boolean, status?: "active"|"disabled", auto_disable?: boolean}
---@return resi.providers.oxylabs.SubUser sub_user
function Client:update_sub_user(id, fields)
  id = check_id(id)
  if type(fields) ~= "table" or next(fields) == nil then
    common.invalid(P, "fields", "needs at least one of password, traffic_limit, lifetime, status, auto_disable")
  end
  common.known_fields(P, "update_sub_user", fields,
    { password = true, traffic_limit = true, lifetime = true, status = true, auto_disable = true })
  local body = {}
  if fields.password ~= nil then body.password = check_password(fields.password) end
  if fields.traffic_limit ~= nil then body.traffic_limit = check_limit(fields.traffic_limit) end
  if fields.lifetime ~= nil then body.lifetime = check_bool("lifetime", fields.lifetime) end
  if fields.auto_disable ~= nil then body.auto_disable = check_bool("auto_disable", fields.auto_disable) end
  if fields.status ~= nil then
    if fields.status ~= "active" and fields.status ~= "disabled" then common.invalid(P, "status", 'must be "active" or "disabled"') end
    body.status = fields.status
  end
  return (self:call { method = "PATCH", path = "/users/{user_id}/sub-users/" .. id, json = body, safe = true })
end

--- Deletes a sub-user. A retry after a lost answer that finds it gone counts
--- as done.
---@async
---@param id string|integer
---@return any
function Client:delete_sub_user(id)
  id = check_id(id)
  local ok, err = pcall(self.call, self, { method = "DELETE", path = "/users/{user_id}/sub-users/" .. id,
    safe = true })
  if ok then return true end
  if common.is_error(err) and err.kind == "not_found" then return true, "already deleted" end
  error(err, 0)
end

--- Per-target traffic of a sub-user on one date ("YYYY-MM-DD", within the
--- last 30 days).
---@async
---@param id string|integer
---@param date string YYYY-MM-DD
---@return table
function Client:target_stats(id, date)
  id = check_id(id)
  if type(date) ~= "string" or not date:match("^%d%d%d%d%-%d%d%-%d%d$") then
    common.invalid(P, "date", 'must be "YYYY-MM-DD" (within the last 30 days)')
  end
  return (self:call { method = "GET", path = "/users/{user_id}/sub-users/" .. id .. "/target-stats",
    query = { date = date }, safe = true })
end

--- Total traffic of the account for the current month.
---@async
---@return table
function Client:client_stats()
  return (self:call { method = "GET", path = "/users/{user_id}/client-stats", safe = true })
end

--- A client. opts: username, password (default OXYLABS_USERNAME /
--- OXYLABS_PASSWORD: the main proxy user), base_url (default
--- RESI_OXYLABS_URL, then the real API), timeout, ratelimit (overrides for its resi.ratelimit profile, e.g. {window = 3}).
---@param opts? {username?: string, password?: string, base_url?: string, timeout?: number, ratelimit?: table}
---@return resi.providers.oxylabs.Client
function M.new(opts)
  return common.basic_client(Client, opts, "OXYLABS", "RESI_OXYLABS_URL", M.DEFAULT_URL)
end

M.Client = Client
M.check_password = check_password
return M
