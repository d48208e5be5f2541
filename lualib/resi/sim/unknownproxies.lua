--- resi.sim.unknownproxies: the sandbox's UnknownProxies reseller token API
--- (base /api/v1), Basic auth on every call.
---
--- Documented rules enforced (unknownproxies-resi-token-create.txt and the
--- schema rules in providers.md §1): dataLimit an integer number of bytes,
--- at least 1,000,000,000 and a whole multiple of it, never decreased;
--- username exactly 8 characters (random 8-character alphanumeric when
--- absent); password generated, exactly 8 characters when set on modify;
--- durationHours 0..87600 counted from createdAt; at least one field on
--- modify; only active tokens can be deleted; deleted tokens stay
--- retrievable; status active -> expired (data or time) / deleted;
--- allowedPools checked against the known pools.
---
--- Undocumented, decided here (and in README's sandbox section): retrieve is
--- GET /resi/token?token=ID[&usage=true], list is GET /resi/tokens ->
--- {"tokens": [...]}; errors are {"error": CODE, "message": TEXT} with 400
--- (validation), 401 (auth), 404 (unknown token), 409 (state conflict);
--- modifying an expired token re-checks its status, so raising dataLimit or
--- durationHours makes it active again; a deleted token cannot be modified.
local json = require "resi.json"
local router = require "resi.sim.router"
local token_view = require "resi.sim.unknownproxies_view"
local util = require "resi.sim.util"

local M = {}

local GB = util.GB
M.MAX_HOURS = 87600
--- Pool ids accepted in allowedPools.
M.POOLS = { "us-s", "us-r", "gb-s", "gb-r", "de-s", "de-r", "fr-s", "fr-r", "tickets-us-s", "tickets-fr-s" }

---@class resi.sim.unknownproxies
local P = {}
P.__index = P

--- The provider's error answer.
---@param status integer
---@param code string
---@param message string
---@return table response
function P:error(status, code, message)
  return { status = status, json = { error = code, message = message } }
end

-- A validation failure (400) naming the field.
local function invalid(self, message) return self:error(400, "validation_error", message) end

-- The token object as the API returns it (with_usage: and its daily usage).
local view = token_view.view

-- Re-evaluates an active or expired token's status at time now.
local function refresh(t, now)
  if t.status == "deleted" then return end
  local out_of_data = t.dataUsage >= t.dataLimit
  local out_of_time = t.durationHours > 0 and now >= t.createdAt + t.durationHours * 3600
  t.status = (out_of_data or out_of_time) and "expired" or "active"
end

-- Checks dataLimit; nil when fine, else the message (1e300 is integer-valued
-- but no Lua integer: refused like "lots", never compared as nil).
local function check_limit(v)
  v = util.is_int(v) and math.tointeger(v)
  if not v then return "dataLimit must be an integer number of bytes" end
  if v < GB then return "dataLimit must be at least 1000000000 (1 GB)" end
  if v % GB ~= 0 then return "dataLimit must be a whole number of gigabytes (a multiple of 1000000000)" end
  return nil
end

-- Checks durationHours; nil when fine, else the message.
local function check_hours(v)
  if not util.is_int(v) or v < 0 or v > M.MAX_HOURS then
    return "durationHours must be an integer from 0 to 87600 (10 years)"
  end
  return nil
end

-- Checks an 8-character credential field; nil when fine, else the message.
local function check_eight(field, v)
  if type(v) ~= "string" or utf8.len(v) ~= 8 then return field .. " must be exactly 8 characters" end
  if v:find("[%s:@]") then return field .. " must not contain spaces, ':' or '@'" end
  return nil
end

--- The documented field rules, for checking seeded tokens in an accounts
--- file (resi.sim.accounts): each returns nil or a message naming the field.
M.check_limit, M.check_hours, M.check_eight = check_limit, check_hours, check_eight

-- The reseller account for a request's Basic credentials, or nil.
function P:account_for(req)
  local user, pass = util.basic_auth(req)
  local acct = user and self.accounts[user]
  if acct and acct.password == pass then return acct end
  return nil
end

-- Creates a token for an account from checked fields.
function P:create(acct, fields)
  local now = self.world.clock:time()
  local t = { token = self:new_id(), username = fields.username or self:new_username(),
    password = self.world.rng:string(8), durationHours = math.tointeger(fields.durationHours) or 0,
    status = "active", createdAt = now, updatedAt = now, dataUsage = 0,
    dataLimit = math.tointeger(fields.dataLimit), allowedPools = {}, daily = {},
    speed = 0.5 + self.world.rng:float(), account = acct.username }
  self.tokens[t.token] = t
  self.by_username[t.username] = t
  acct.order[#acct.order + 1] = t.token
  return t
end

-- A fresh 12-character token id.
function P:new_id()
  local id
  repeat id = self.world.rng:string(12) until not self.tokens[id]
  return id
end

-- A fresh 8-character username.
function P:new_username()
  local u
  repeat u = self.world.rng:string(8) until not self.by_username[u]
  return u
end

-- The token a request names, checked against the account; or nil, response.
function P:find(acct, id)
  if type(id) ~= "string" or id == "" then return nil, invalid(self, "token is required (the token id string)") end
  local t = self.tokens[id]
  if not t or t.account ~= acct.username then return nil, self:error(404, "token_not_found", "no token " .. id) end
  refresh(t, self.world.clock:now())
  return t
end

-- The JSON body of a request and the token it names (checked against the
-- account); or nil and the response that says why not.
function P:body_token(req, acct)
  local body, err = util.json_body(req)
  if not body then return nil, invalid(self, err) end
  local t, res = self:find(acct, body.token)
  if not t then return nil, res end
  return body, t
end

-- POST /resi/token/create
function P:route_create(req, acct)
  local body, err = util.json_body(req)
  if not body then return invalid(self, err) end
  if body.dataLimit == nil then return invalid(self, "dataLimit is required") end
  local msg = check_limit(body.dataLimit)
  if msg then return invalid(self, msg) end
  if body.password ~= nil then return invalid(self, "password cannot be specified: it is generated") end
  if body.username ~= nil then
    msg = check_eight("username", body.username)
    if msg then return invalid(self, msg) end
    if self.by_username[body.username] then return self:error(409, "username_taken", "username " .. body.username .. " is already in use") end
  end
  if body.durationHours ~= nil then
    msg = check_hours(body.durationHours)
    if msg then return invalid(self, msg) end
  end
  return { status = 200, json = view(self:create(acct, body)) }
end

-- PATCH /resi/token
function P:route_modify(req, acct)
  local body, t = self:body_token(req, acct)
  if not body then return t end
  if body.password == nil and body.allowedPools == nil and body.dataLimit == nil and body.durationHours == nil then
    return invalid(self, "at least one of password, allowedPools, dataLimit, durationHours must be provided")
  end
  if t.status == "deleted" then return self:error(409, "token_deleted", "token " .. t.token .. " is deleted") end
  local msg
  if body.password ~= nil then msg = check_eight("password", body.password) end
  if not msg and body.dataLimit ~= nil then
    msg = check_limit(body.dataLimit)
    if not msg and body.dataLimit < t.dataLimit then
      msg = ("dataLimit cannot be decreased (it is %d)"):format(t.dataLimit)
    end
  end
  if not msg and body.durationHours ~= nil then msg = check_hours(body.durationHours) end
  if not msg and body.allowedPools ~= nil then
    if type(body.allowedPools) ~= "table" or (next(body.allowedPools) ~= nil and body.allowedPools[1] == nil) then
      msg = "allowedPools must be an array of pool ids"
    else
      for i, pool in ipairs(body.allowedPools) do
        if not self.pools[pool] then msg = ("allowedPools[%d]: unknown pool %q"):format(i - 1, tostring(pool)) break end
      end
    end
  end
  if msg then return invalid(self, msg) end
  if body.password ~= nil then t.password = body.password end
  if body.dataLimit ~= nil then t.dataLimit = math.tointeger(body.dataLimit) end
  if body.durationHours ~= nil then t.durationHours = math.tointeger(body.durationHours) end
  if body.allowedPools ~= nil then t.allowedPools = util.copy(body.allowedPools) end
  t.updatedAt = self.world.clock:time()
  refresh(t, self.world.clock:now())
  return { status = 200, json = view(t) }
end

-- DELETE /resi/token
function P:route_delete(req, acct)
  local body, t = self:body_token(req, acct)
  if not body then return t end
  if t.status ~= "active" then
    return self:error(409, "token_not_active", ("only active tokens can be deleted; token %s is %s"):format(t.token, t.status))
  end
  t.status, t.updatedAt = "deleted", self.world.clock:time()
  self.by_username[t.username] = nil
  return { status = 200, json = { message = "success" } }
end

-- GET /resi/token?token=ID[&usage=true]
function P:route_get(req, acct)
  local t, res = self:find(acct, req.query.token)
  if not t then return res end
  local usage = req.query.usage
  if usage ~= nil and usage ~= "true" and usage ~= "false" then return invalid(self, "usage must be true or false") end
  if usage == "true" then return { status = 200, json = view(t, true) } end
  return { status = 200, headers = { ["Content-Type"] = "application/json" }, body = self.rendered:json(t) }
end

-- GET /resi/tokens
function P:route_list(req, acct)
  local out, now = {}, self.world.clock:now()
  for _, id in ipairs(acct.order) do
    local t = self.tokens[id]
    refresh(t, now)
    out[#out + 1] = view(t)
  end
  return { status = 200, json = { tokens = json.array(out) } }
end

--- Answers one API request (path relative to /api/v1).
---@param req table
---@param path string
---@return table response
function P:handle(req, path)
  local fn, params = self.router:find(req.method, path)
  if not fn then
    if params == "method_not_allowed" then return self:error(405, "method_not_allowed", req.method .. " is not allowed on " .. path) end
    return self:error(404, "not_found", "no such endpoint: " .. path)
  end
  local acct = self:account_for(req)
  if not acct then
    local res = self:error(401, "unauthorized", "missing or wrong Basic credentials")
    res.headers = { ["WWW-Authenticate"] = 'Basic realm="unknownproxies"' }
    return res
  end
  return fn(self, req, acct)
end

--- Moves time on: usage from traffic (dt simulated seconds) and expiry.
---@param now number simulated epoch seconds
---@param dt number simulated seconds since the last tick
function P:tick(now, dt)
  local rate = self.world.config.traffic_rate
  -- Without traffic there is nothing to add: a status that time changes is
  -- brought up to date where a token is read (find, the list, the gateway,
  -- the snapshot), so a request does not cost a walk over every token.
  if dt <= 0 or rate <= 0 then return end
  for _, t in pairs(self.tokens) do
    refresh(t, now)
    if t.status == "active" then
      local bytes = math.floor(t.dataLimit * rate * t.speed * dt / 3600)
      bytes = math.min(bytes, t.dataLimit - t.dataUsage)
      if bytes > 0 then
        t.dataUsage = t.dataUsage + bytes
        local day = util.date(now)
        t.daily[day] = (t.daily[day] or 0) + bytes
        refresh(t, now)
      end
    end
  end
end

--- Gateway (resi.sim.gateway_auth): the token whose proxy username is
--- `username`, its status brought up to date; a deleted one only when no
--- live token has that username. Nil when there is none.
---@param username string
---@return table|nil
function P:gateway_token(username)
  local t = self.by_username[username]
  if not t then
    for _, x in pairs(self.tokens) do
      if x.username == username and (not t or x.updatedAt > t.updatedAt) then t = x end
    end
  end
  if t then refresh(t, self.world.clock:now()) end
  return t
end

--- Gateway billing: bytes through token t count as today's usage; crossing
--- dataLimit expires it at once.
---@param t table
---@param bytes integer
function P:gateway_bill(t, bytes)
  local now = self.world.clock:now()
  local day = util.date(now)
  t.dataUsage = t.dataUsage + bytes
  t.daily[day] = (t.daily[day] or 0) + bytes
  refresh(t, now)
end

--- Admin: sets a token's dataUsage ({"id", "bytes"} or {"id", "add_bytes"}).
---@param body {id: string, bytes?: integer, add_bytes?: integer}
---@return table response
function P:set_usage(body)
  local t = self.tokens[body.id]
  if not t then return false, { status = 404, code = "not_found", message = "no token " .. tostring(body.id) } end
  local bytes = body.bytes or (body.add_bytes and t.dataUsage + body.add_bytes)
  if not util.is_int(bytes) or bytes < 0 then
    return false, { message = "bytes (or add_bytes) must be a non-negative integer" }
  end
  bytes = math.tointeger(bytes)
  local day = util.date(self.world.clock:now())
  t.daily[day] = (t.daily[day] or 0) + math.max(0, bytes - t.dataUsage)
  t.dataUsage = bytes
  refresh(t, self.world.clock:now())
  return true, view(t)
end

--- Everything, for GET /_sim/state.
function P:snapshot()
  local accounts = {}
  for _, acct in ipairs(self.account_list) do
    local tokens = {}
    local now = self.world.clock:now()
    for _, id in ipairs(acct.order) do
      refresh(self.tokens[id], now)
      tokens[#tokens + 1] = view(self.tokens[id])
    end
    accounts[#accounts + 1] = { username = acct.username, tokens = json.array(tokens) }
  end
  return { accounts = json.array(accounts), pools = json.array(util.copy(M.POOLS)) }
end

--- The provider over the sandbox's accounts.
---@param world table
---@param accounts table[]
---@return table provider
function M.new(world, accounts)
  local self = setmetatable({ world = world, accounts = {}, account_list = {}, tokens = {}, by_username = {},
    pools = {}, router = router.new(), rendered = token_view.cache() }, P)
  for _, id in ipairs(M.POOLS) do self.pools[id] = true end
  self.router:add("POST", "/resi/token/create", P.route_create)
  self.router:add("PATCH", "/resi/token", P.route_modify)
  self.router:add("DELETE", "/resi/token", P.route_delete)
  self.router:add("GET", "/resi/token", P.route_get)
  self.router:add("GET", "/resi/tokens", P.route_list)
  for _, a in ipairs(accounts.unknownproxies or {}) do
    local acct = { username = a.username, password = a.password, order = {} }
    self.accounts[a.username] = acct
    self.account_list[#self.account_list + 1] = acct
    for _, seed in ipairs(a.tokens or {}) do
      local t = self:create(acct, { dataLimit = seed.dataLimit or 10 * GB, username = seed.username,
        durationHours = seed.durationHours })
      t.dataUsage = math.tointeger(seed.dataUsage) or 0
      refresh(t, world.clock:now())
    end
  end
  return self
end

return M
