--- resi.sim.oxylabs: the sandbox's Oxylabs Residential Proxies Public API v2
--- (base /v2). POST /login takes the main user's Basic credentials and
--- answers {user_id, token}; every other call carries `Authorization: Bearer
--- <token>` and names the user in its path:
---   POST   /login
---   GET    /users/{userId}/sub-users                      list (deleted ones are gone)
---   POST   /users/{userId}/sub-users                      create (NewSubUser)
---   GET    /users/{userId}/sub-users/{id}?type=...        traffic statistics
---   PATCH  /users/{userId}/sub-users/{id}                 update (UpdatableSubUserFields)
---   DELETE /users/{userId}/sub-users/{id}
---   GET    /users/{userId}/sub-users/{id}/target-stats?date=YYYY-MM-DD
---   GET    /users/{userId}/client-stats                   current month total
---
--- Documented rules enforced (oxylabs-residential-public-api.txt, providers.md
--- §2, DESIGN.md §4): the JWT expires one hour (simulated) after login;
--- username letters, digits and underscores; password 12-64 characters with a
--- lowercase letter, an uppercase letter, a digit and one of # _ ~ + =;
--- traffic_limit in GB (1 GB = 10^9 bytes), null = unlimited, 0 = no more
--- traffic; lifetime (no monthly reset); auto_disable (status becomes
--- "disabled" when the limit is reached); status "active" | "disabled";
--- stats types 24h, week, month, current_month, lifetime (lifetime sub-users
--- only), custom (date_from/date_to "YYYY-MM-DD[ HH]", hour-granular ranges at
--- most 7 days); target stats for one date within the last 30 days; client
--- stats for the current month; errors are {"error": "<message>"}.
---
--- Undocumented, decided here:
--- * Status codes: 200 GET/PATCH and login; 201 create, answering the whole
---   SubUser object (so {id} is there); 204 DELETE with an empty body; 400
---   validation (the message names the field and the rule, and unknown fields
---   such as `trafficLimit` are refused); 401 missing, unknown or expired JWT
---   (and login without Basic credentials), with WWW-Authenticate; 403 wrong
---   login credentials, or a userId in the path that is not the token's (any
---   userId, existing or not, so ids cannot be probed); 404 unknown sub-user
---   (or one of another account) and unknown paths; 405 wrong method; 409
---   duplicate username (usernames are unique across the sandbox, main users'
---   included; a deleted sub-user's username is free again). The machine
---   readable code (validation_error, unauthorized, ...) is in the
---   `X-Sim-Error` response header, so the body keeps the documented shape.
--- * The JWT is a real-looking HS256 JWT (header.payload.signature, base64url,
---   claims sub = user_id, iat, exp, jti) checked by lookup, not by signature.
---   Logging in again does not revoke older tokens; each expires on its own.
--- * SubUser: {id, username, status, created_at "YYYY-MM-DD HH:MM" (UTC),
---   traffic (GB used in the current period: this calendar month, or all time
---   when lifetime is true), traffic_limit, auto_disable, lifetime}. The
---   password is never returned. Defaults on create: traffic_limit null,
---   lifetime false, auto_disable false, status "active".
--- * PATCH needs at least one field; username cannot be changed. Setting
---   status "active" is refused (400) when auto_disable would disable the
---   sub-user again at once (traffic at or over the limit).
--- * auto_disable fires when the period's traffic reaches a positive limit;
---   a disabled sub-user stays disabled (also in a new month) until PATCHed.
---   traffic_limit 0 blocks all traffic but does not disable the sub-user.
--- * Stats (all UTC; only time_zone "UTC"/"Etc/UTC"/"GMT" is accepted):
---   {traffic: GB, results: [{date, traffic}], date_from, date_to}.
---   24h: the last 24 hour buckets including the current one, dates
---   "YYYY-MM-DD HH"; week: the last 7 days including today; month: the last
---   30 days including today; current_month: the 1st to today; lifetime: the
---   day of creation to today; custom: whole days from date_from to date_to,
---   or hour buckets when either bound has an hour (a bound without one means
---   00 for date_from and 23 for date_to). Every bucket is listed, zeros too,
---   and traffic is the sum of the results.
--- * Target stats: {date, traffic: GB, requests, results: [{target, traffic,
---   requests}]} sorted by traffic, largest first; "last 30 days" means today
---   and the 29 days before it. Requests are derived from bytes (one request
---   per started 150 kB).
--- * Client stats: {traffic, date_from: "YYYY-MM-01", date_to: today}; it
---   counts the traffic of every sub-user this month, deleted ones included.
--- * Traffic generator (tick): an active sub-user with a positive limit uses
---   traffic_rate x limit per simulated hour (times a per-sub-user factor in
---   0.5..1.5), never past the limit; unlimited sub-users use traffic_rate x
---   10 GB per hour; traffic_limit 0 or status disabled use nothing. Usage is
---   recorded per hour bucket and per target (walmart.com, target.com,
---   amazon.com, bestbuy.com, ebay.com), so every stats type agrees.
--- * POST /_sim/usage body: {"provider": "oxylabs", "id": <sub-user id>, and
---   one of "bytes": N | "gb": X (set the current period's traffic) or
---   "add_bytes": N | "add_gb": X (add to it), optional "target": "<domain>"
---   (all of it on one target; default: the sub-user's usual mix)}. Usage is
---   recorded at the present hour; history is append-only, so a set below the
---   current traffic is refused. It may go past the limit (auto_disable
---   applies).
local json = require "resi.json"
local router = require "resi.sim.router"
local util = require "resi.sim.util"

local M = {}

local GB = util.GB
--- How long a JWT lives, in simulated seconds.
M.JWT_TTL = 3600
--- The targets (domains) traffic goes to.
M.TARGETS = { "walmart.com", "target.com", "amazon.com", "bestbuy.com", "ebay.com" }
--- GB per simulated hour an unlimited sub-user uses at traffic_rate 1.
M.UNLIMITED_GB = 10
--- Bytes per request when deriving request counts.
M.REQUEST_BYTES = 150000
--- The stats types the sub-user stats endpoint takes.
M.STATS_TYPES = { ["24h"] = true, week = true, month = true, current_month = true, lifetime = true, custom = true }

local TZ_UTC = { UTC = true, ["Etc/UTC"] = true, GMT = true, ["Etc/GMT"] = true }
local NEW_FIELDS = { username = true, password = true, traffic_limit = true, lifetime = true, auto_disable = true }
local PATCH_FIELDS = { password = true, traffic_limit = true, lifetime = true, status = true, auto_disable = true }
local DAY = 86400

---@class resi.sim.oxylabs
local P = {}
P.__index = P

--- The provider's error answer: {"error": message}; the code goes in a header.
---@param status integer
---@param code string
---@param message string
---@return table response
function P:error(status, code, message)
  return { status = status, headers = { ["X-Sim-Error"] = code }, json = { error = message } }
end

-- A validation failure (400) naming the field and the rule.
local function invalid(self, message) return self:error(400, "validation_error", message) end

-- "YYYY-MM" of an epoch time (UTC): the key of a monthly total.
local function month(t) return os.date("!%Y-%m", math.floor(t)) end

-- Epoch seconds of the start of t's UTC day.
local function day_start(t) return math.floor(t) // DAY * DAY end

-- Epoch seconds of the start of t's UTC month.
local function month_start(t) return util.parse_date(os.date("!%Y-%m-01", math.floor(t))) end

-- A sub-user's limit in bytes, or nil when unlimited.
local function limit_bytes(su)
  if su.traffic_limit == nil then return nil end
  return math.floor(su.traffic_limit * GB + 0.5)
end

-- Bytes a sub-user used in the period that contains time t.
local function period_bytes(su, t)
  if su.lifetime then return su.total end
  return su.monthly[month(t)] or 0
end

-- Disables a sub-user whose auto_disable limit has been reached at time t.
local function refresh(su, t)
  local cap = limit_bytes(su)
  if su.status == "active" and su.auto_disable and cap and cap > 0 and period_bytes(su, t) >= cap then
    su.status = "disabled"
  end
end

-- The SubUser object as the API returns it, at time t.
local function view(su, t)
  return { id = su.id, username = su.username, status = su.status,
    created_at = os.date("!%Y-%m-%d %H:%M", su.created_at), traffic = period_bytes(su, t) / GB,
    traffic_limit = su.traffic_limit == nil and json.null or su.traffic_limit,
    auto_disable = su.auto_disable, lifetime = su.lifetime }
end

-- Requests made for a number of bytes (one per started REQUEST_BYTES).
local function requests_for(bytes)
  return (bytes + M.REQUEST_BYTES - 1) // M.REQUEST_BYTES
end

-- Checks a username; nil when fine, else the message.
local function check_username(v)
  if type(v) ~= "string" or v == "" then return "username is required (a non-empty string)" end
  if not v:match("^[%w_]+$") then return "username must contain only letters, digits and underscores" end
  if #v > 64 then return "username must be at most 64 characters" end
  return nil
end

-- Checks a password against the documented rule; nil when fine, else the message.
local function check_password(v)
  if type(v) ~= "string" then return "password is required (a string)" end
  local n = utf8.len(v) or #v
  if n < 12 or n > 64 then return "password must be 12 to 64 characters long" end
  if not v:find("%l") then return "password must contain a lowercase letter" end
  if not v:find("%u") then return "password must contain an uppercase letter" end
  if not v:find("%d") then return "password must contain a digit" end
  if not v:find("[#_~+=]") then return "password must contain one of the special characters # _ ~ + =" end
  return nil
end

-- Checks a traffic_limit value (json.null allowed); nil when fine, else the message.
local function check_limit(v)
  if v == json.null then return nil end
  if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
    return "traffic_limit must be null (unlimited), 0 (no traffic) or a positive number of GB"
  end
  return nil
end

-- Checks a boolean field; nil when fine, else the message.
local function check_bool(field, v)
  if type(v) ~= "boolean" then return field .. " must be true or false" end
  return nil
end

--- The documented field rules, for checking seeded sub-users in an accounts
--- file (resi.sim.accounts): each returns nil or a message naming the field.
M.check_username, M.check_password, M.check_limit, M.check_bool = check_username, check_password, check_limit, check_bool

-- The first field of body that is not in allowed (sorted, so the message is stable).
local function unknown_field(body, allowed)
  local bad = {}
  for k in pairs(body) do if not allowed[k] then bad[#bad + 1] = tostring(k) end end
  table.sort(bad)
  return bad[1]
end

-- The message for the first bad one of the optional fields a new sub-user
-- and an update share (traffic_limit, lifetime, auto_disable), or nil.
local function check_common(body)
  return (body.traffic_limit ~= nil and check_limit(body.traffic_limit))
    or (body.lifetime ~= nil and check_bool("lifetime", body.lifetime))
    or (body.auto_disable ~= nil and check_bool("auto_disable", body.auto_disable))
    or nil
end

-- The JSON object body of req, or nil and the validation error to answer.
local function body_of(self, req)
  local body, err = util.json_body(req)
  if not body then return nil, invalid(self, err) end
  return body
end

-- The allowed names of a field set, for messages.
local function names(allowed)
  local out = {}
  for k in pairs(allowed) do out[#out + 1] = k end
  table.sort(out)
  return table.concat(out, ", ")
end

-- Records `bytes` of traffic for a sub-user at time t: hour, day, month and
-- lifetime totals, per target, and the account's monthly total.
function P:record(su, t, bytes, target)
  if bytes <= 0 then return end
  local hour, day, mon = util.hour(t), util.date(t), month(t)
  su.hourly[hour] = (su.hourly[hour] or 0) + bytes
  su.daily[day] = (su.daily[day] or 0) + bytes
  su.monthly[mon] = (su.monthly[mon] or 0) + bytes
  su.total = su.total + bytes
  local acct = su.account
  acct.monthly[mon] = (acct.monthly[mon] or 0) + bytes
  local per_target = su.targets[day]
  if not per_target then
    per_target = {}
    su.targets[day] = per_target
    -- target stats answer for the last 30 days only: older days are dropped
    local oldest = util.date(t - 31 * 86400)
    for d in pairs(su.targets) do
      if d < oldest then su.targets[d] = nil end
    end
  end
  if target then
    per_target[target] = (per_target[target] or 0) + bytes
    return
  end
  local left = bytes
  for i = #M.TARGETS, 2, -1 do -- the first target takes the rounding remainder
    local name = M.TARGETS[i]
    local part = math.floor(bytes * su.weights[i])
    if part > 0 then per_target[name] = (per_target[name] or 0) + part end
    left = left - part
  end
  per_target[M.TARGETS[1]] = (per_target[M.TARGETS[1]] or 0) + left
end

-- A fresh sub-user id (integers, counting up from a seeded start).
function P:new_id()
  self.next_id = self.next_id + 1
  return self.next_id
end

-- Creates a sub-user for an account from checked fields (json.null or nil
-- traffic_limit = unlimited).
function P:create(acct, fields, now)
  local weights, sum = {}, 0
  for i = 1, #M.TARGETS do weights[i] = 0.2 + self.world.rng:float(); sum = sum + weights[i] end
  for i = 1, #M.TARGETS do weights[i] = weights[i] / sum end
  local limit = fields.traffic_limit
  if limit == json.null then limit = nil end
  local su = { id = self:new_id(), username = fields.username, password = fields.password, status = "active",
    created_at = math.floor(now), traffic_limit = limit, auto_disable = fields.auto_disable == true,
    lifetime = fields.lifetime == true, hourly = {}, daily = {}, monthly = {}, targets = {}, total = 0,
    weights = weights, speed = 0.5 + self.world.rng:float(), carry = 0, account = acct }
  self.sub_users[su.id] = su
  self.by_username[su.username] = su
  self.deleted_names[su.username] = nil
  acct.order[#acct.order + 1] = su.id
  return su
end

-- A password that passes the documented rule, for seeded sub-users.
function P:new_password()
  return self.world.rng:string(4, "abcdefghijkmnopqrstuvwxyz") .. self.world.rng:string(4, "ABCDEFGHJKLMNPQRSTUVWXYZ")
    .. self.world.rng:string(4, "23456789") .. "_" .. self.world.rng:string(3)
end

-- Spreads a seeded sub-user's traffic (GB) evenly over the hours of the last
-- week that fall in the current month (at least the current hour).
function P:seed_history(su, gb, now)
  local bytes = math.floor(gb * GB + 0.5)
  if bytes <= 0 then return end
  local first = math.floor(math.max(month_start(now), now - 7 * DAY)) // 3600 * 3600
  local last = math.floor(now) // 3600 * 3600
  local hours = (last - first) // 3600 + 1
  local each = bytes // hours
  for i = 0, hours - 1 do
    local part = i == hours - 1 and bytes - each * (hours - 1) or each
    self:record(su, first + i * 3600, part)
  end
end

-- The account for a request's Bearer JWT; or nil, response.
function P:authenticate(req)
  local token = util.bearer(req)
  local res
  if not token then
    res = self:error(401, "unauthorized", "missing Authorization: Bearer <token>; POST /v2/login first")
  else
    local entry = self.tokens[token]
    if not entry then
      res = self:error(401, "unauthorized", "invalid token")
    elseif self.world.clock:now() >= entry.exp then
      res = self:error(401, "token_expired", "token expired; POST /v2/login again")
    else
      return entry.account
    end
  end
  res.headers["WWW-Authenticate"] = 'Bearer realm="oxylabs"'
  return nil, res
end

-- The account when the token is valid and the path's userId is its own; or nil, response.
function P:authorize(req, params)
  local acct, res = self:authenticate(req)
  if not acct then return nil, res end
  if params.user_id ~= acct.user_id then
    return nil, self:error(403, "forbidden", "user " .. params.user_id .. " is not the user this token belongs to")
  end
  return acct
end

-- The account's sub-user named by the path; or nil, response.
function P:find(acct, params)
  local id = params.id
  if not id:match("^%d+$") or #id > 15 then return nil, invalid(self, "subUserId must be an integer") end
  local su = self.sub_users[tonumber(id)]
  if not su or su.account ~= acct then return nil, self:error(404, "not_found", "no sub-user with id " .. id) end
  return su
end

-- The caller's sub-user named in the path: authorized (JWT, user_id) and
-- found, or nil and the error response.
function P:authorized_sub_user(req, params)
  local acct, res = self:authorize(req, params)
  if not acct then return nil, res end
  return self:find(acct, params)
end

-- A JWT-shaped token for an account, valid for JWT_TTL simulated seconds.
function P:issue_token(acct, now)
  local iat = math.floor(now)
  local header = util.base64url(json.encode({ alg = "HS256", typ = "JWT" }, { sort_keys = true }))
  local payload = util.base64url(json.encode({ sub = acct.user_id, username = acct.username, iat = iat,
    exp = iat + M.JWT_TTL, jti = self.world.rng:uuid() }, { sort_keys = true }))
  local bytes = {}
  for i = 1, 32 do bytes[i] = string.char(self.world.rng:int(0, 255)) end
  local token = header .. "." .. payload .. "." .. util.base64url(table.concat(bytes))
  for t, entry in pairs(self.tokens) do -- forget tokens a day after they expired
    if now >= entry.exp + DAY then self.tokens[t] = nil end
  end
  self.tokens[token] = { account = acct, exp = now + M.JWT_TTL }
  return token
end

-- POST /login
function P:route_login(req)
  local user, pass = util.basic_auth(req)
  if not user then
    local res = self:error(401, "unauthorized", "log in with the main user's credentials: Authorization: Basic base64(username:password)")
    res.headers["WWW-Authenticate"] = 'Basic realm="oxylabs"'
    return res
  end
  local acct = self.accounts[user]
  if not acct or acct.password ~= pass then return self:error(403, "forbidden", "wrong username or password") end
  local now = self.world.clock:now()
  return { status = 200, json = { user_id = acct.user_id, token = self:issue_token(acct, now) } }
end

-- GET /users/{userId}/sub-users
function P:route_list(req, params)
  local acct, res = self:authorize(req, params)
  if not acct then return res end
  local out, now = {}, self.world.clock:now()
  for _, id in ipairs(acct.order) do
    local su = self.sub_users[id]
    if su then out[#out + 1] = view(su, now) end
  end
  return { status = 200, json = json.array(out) }
end

-- POST /users/{userId}/sub-users
function P:route_create(req, params)
  local acct, res = self:authorize(req, params)
  if not acct then return res end
  local body, bad = body_of(self, req)
  if not body then return bad end
  local extra = unknown_field(body, NEW_FIELDS)
  if extra then return invalid(self, ("unknown field %s (a new sub-user takes %s)"):format(extra, names(NEW_FIELDS))) end
  local msg = check_username(body.username) or check_password(body.password) or check_common(body)
  if msg then return invalid(self, msg) end
  if self.by_username[body.username] or self.accounts[body.username] then
    return self:error(409, "username_taken", "username " .. body.username .. " is already taken")
  end
  local now = self.world.clock:now()
  local su = self:create(acct, body, now)
  return { status = 201, json = view(su, now) }
end

-- The stats window for a query: first and last bucket start, bucket size
-- (3600 or DAY); or nil, message.
local function stats_window(q, su, now)
  local kind = q.type
  if kind == nil or kind == "" then
    return nil, "type is required (24h, week, month, current_month, lifetime or custom)"
  end
  if type(kind) ~= "string" or not M.STATS_TYPES[kind] then
    return nil, "type must be one of 24h, week, month, current_month, lifetime, custom"
  end
  if q.time_zone ~= nil and not TZ_UTC[q.time_zone] then
    return nil, "time_zone: the sandbox keeps statistics in UTC only (use UTC)"
  end
  local today = day_start(now)
  if kind == "24h" then
    local last = math.floor(now) // 3600 * 3600
    return last - 23 * 3600, last, 3600
  elseif kind == "week" then return today - 6 * DAY, today, DAY
  elseif kind == "month" then return today - 29 * DAY, today, DAY
  elseif kind == "current_month" then return month_start(now), today, DAY
  elseif kind == "lifetime" then
    if not su.lifetime then return nil, "type lifetime is only available for sub-users with lifetime = true" end
    return day_start(su.created_at), today, DAY
  end
  -- custom
  for _, f in ipairs { "date_from", "date_to" } do
    if q[f] == nil or q[f] == "" then return nil, f .. " is required with type custom (YYYY-MM-DD or YYYY-MM-DD HH)" end
    if not util.parse_date(q[f]) then return nil, f .. " must be a date: YYYY-MM-DD or YYYY-MM-DD HH (UTC)" end
  end
  local from, to = util.parse_date(q.date_from), util.parse_date(q.date_to)
  local hourly = #q.date_from > 10 or #q.date_to > 10
  if hourly then
    if #q.date_to <= 10 then to = to + 23 * 3600 end
    if to < from then return nil, "date_to must not be before date_from" end
    if to - from > 7 * DAY then return nil, "hour-granular custom ranges are limited to 7 days (date_from to date_to)" end
    return from, to, 3600
  end
  if to < from then return nil, "date_to must not be before date_from" end
  return from, to, DAY
end

-- GET /users/{userId}/sub-users/{id}?type=...
function P:route_stats(req, params)
  local su, res = self:authorized_sub_user(req, params)
  if not su then return res end
  local now = self.world.clock:now()
  local first, last, step = stats_window(req.query, su, now)
  if not first then return invalid(self, last) end
  local results, sum = {}, 0
  local key = step == 3600 and util.hour or util.date
  local buckets = step == 3600 and su.hourly or su.daily
  for t = first, last, step do
    local label = key(t)
    local bytes = buckets[label] or 0
    sum = sum + bytes
    results[#results + 1] = { date = label, traffic = bytes / GB }
  end
  return { status = 200, json = { traffic = sum / GB, results = json.array(results),
    date_from = key(first), date_to = key(last) } }
end

-- PATCH /users/{userId}/sub-users/{id}
function P:route_update(req, params)
  local su, res = self:authorized_sub_user(req, params)
  if not su then return res end
  local body, bad = body_of(self, req)
  if not body then return bad end
  if next(body) == nil then return invalid(self, "at least one of " .. names(PATCH_FIELDS) .. " must be given") end
  local extra = unknown_field(body, PATCH_FIELDS)
  if extra == "username" then return invalid(self, "username cannot be changed") end
  if extra then return invalid(self, ("unknown field %s (a sub-user update takes %s)"):format(extra, names(PATCH_FIELDS))) end
  local msg = (body.password ~= nil and check_password(body.password))
    or check_common(body)
    or (body.status ~= nil and body.status ~= "active" and body.status ~= "disabled"
      and 'status must be "active" or "disabled"')
    or nil
  if msg then return invalid(self, msg) end
  local now = self.world.clock:now()
  local next_su = util.copy(su) -- the result, checked before it is committed
  if body.password ~= nil then next_su.password = body.password end
  if body.traffic_limit ~= nil then
    next_su.traffic_limit = body.traffic_limit ~= json.null and body.traffic_limit or nil
  end
  if body.lifetime ~= nil then next_su.lifetime = body.lifetime end
  if body.auto_disable ~= nil then next_su.auto_disable = body.auto_disable end
  if body.status ~= nil then next_su.status = body.status end
  refresh(next_su, now)
  if body.status == "active" and next_su.status == "disabled" then
    return invalid(self, ("status cannot be active: traffic (%s GB) has reached traffic_limit (%s GB) and auto_disable is on;"
      .. " raise traffic_limit or turn auto_disable off"):format(period_bytes(next_su, now) / GB, next_su.traffic_limit))
  end
  for k, v in pairs(next_su) do su[k] = v end
  su.traffic_limit = next_su.traffic_limit -- pairs skips a nil (unlimited)
  return { status = 200, json = view(su, now) }
end

-- DELETE /users/{userId}/sub-users/{id}
function P:route_delete(req, params)
  local su, res = self:authorized_sub_user(req, params)
  if not su then return res end
  self.sub_users[su.id] = nil
  self.by_username[su.username] = nil
  -- its password is kept: the gateway says "deleted" only to its right
  -- password (to any other, "unknown"), so a guess learns nothing
  self.deleted_names[su.username] = su.password
  local acct = su.account
  for i, id in ipairs(acct.order) do
    if id == su.id then table.remove(acct.order, i) break end
  end
  return { status = 204 }
end

-- GET /users/{userId}/sub-users/{id}/target-stats?date=YYYY-MM-DD
function P:route_target_stats(req, params)
  local su, res = self:authorized_sub_user(req, params)
  if not su then return res end
  local date = req.query.date
  if date == nil or date == "" then return invalid(self, "date is required (YYYY-MM-DD, within the last 30 days)") end
  local t = type(date) == "string" and #date == 10 and util.parse_date(date)
  if not t then return invalid(self, "date must be YYYY-MM-DD") end
  local now = self.world.clock:now()
  local newest, oldest = day_start(now), day_start(now) - 29 * DAY
  if t < oldest or t > newest then
    return invalid(self, ("date must be within the last 30 days (%s to %s)"):format(util.date(oldest), util.date(newest)))
  end
  local results, bytes_sum, req_sum = {}, 0, 0
  for name, bytes in pairs(su.targets[date] or {}) do -- the generator's targets and the gateway's real ones
    if bytes > 0 then
      local n = requests_for(bytes)
      results[#results + 1] = { target = name, traffic = bytes / GB, requests = n, bytes = bytes }
      bytes_sum, req_sum = bytes_sum + bytes, req_sum + n
    end
  end
  table.sort(results, function(a, b)
    if a.bytes ~= b.bytes then return a.bytes > b.bytes end
    return a.target < b.target
  end)
  for _, r in ipairs(results) do r.bytes = nil end
  return { status = 200, json = { date = date, traffic = bytes_sum / GB, requests = req_sum, results = json.array(results) } }
end

-- GET /users/{userId}/client-stats
function P:route_client_stats(req, params)
  local acct, res = self:authorize(req, params)
  if not acct then return res end
  local now = self.world.clock:now()
  return { status = 200, json = { traffic = (acct.monthly[month(now)] or 0) / GB,
    date_from = util.date(month_start(now)), date_to = util.date(now) } }
end

--- Answers one API request (path relative to /v2).
---@param req table
---@param path string
---@return table response
function P:handle(req, path)
  local fn, params = self.router:find(req.method, path)
  if not fn then
    if params == "method_not_allowed" then
      return self:error(405, "method_not_allowed", req.method .. " is not allowed on " .. path)
    end
    return self:error(404, "not_found", "no such endpoint: " .. path)
  end
  return fn(self, req, params)
end

-- Lets one sub-user use traffic for `secs` simulated seconds starting at t.
function P:flow(su, t, secs, rate)
  if su.status ~= "active" or su.traffic_limit == 0 then su.carry = 0 return end
  local per_hour = (su.traffic_limit or M.UNLIMITED_GB) * GB * rate * su.speed
  local want = per_hour * secs / 3600 + su.carry
  local bytes = math.floor(want)
  su.carry = want - bytes
  local cap = limit_bytes(su)
  if cap then
    local room = cap - period_bytes(su, t)
    if room <= bytes then bytes, su.carry = math.max(0, room), 0 end
  end
  if bytes > 0 then self:record(su, t, bytes) end
  refresh(su, t)
end

--- Moves time on: dt simulated seconds of traffic ending at now, one hour
--- bucket at a time (so history and monthly resets follow the clock).
---@param now number
---@param dt number
function P:tick(now, dt)
  local rate = self.world.config.traffic_rate or 0
  if dt <= 0 or rate <= 0 then return end
  local ids = {}
  for id in pairs(self.sub_users) do ids[#ids + 1] = id end
  table.sort(ids)
  local t = now - dt
  while t < now do
    local seg_end = math.min(now, (math.floor(t) // 3600 + 1) * 3600)
    for _, id in ipairs(ids) do self:flow(self.sub_users[id], t, seg_end - t, rate) end
    t = seg_end
  end
end

--- Gateway (resi.sim.gateway_auth): the sub-user whose username is name and
--- what it may do now: "active", "disabled" or "exhausted" (its limit
--- reached, or traffic_limit 0); nil and "deleted" or "unknown" without one.
---@param name string
---@return table|nil su
---@return string state
function P:gateway_sub_user(name)
  local su = self.by_username[name]
  if not su then return nil, self.deleted_names[name] and "deleted" or "unknown" end
  local now = self.world.clock:now()
  refresh(su, now)
  if su.status ~= "active" then return su, "disabled" end
  local cap = limit_bytes(su)
  if cap and period_bytes(su, now) >= cap then return su, "exhausted" end
  return su, "active"
end

--- The password a deleted sub-user had (name: its username), or nil.
---@param name string
---@return string|nil
function P:gateway_deleted_password(name) return self.deleted_names[name] end

--- Gateway billing: bytes through sub-user su to target (a host name), in
--- its stats and target stats; auto_disable applies at once.
---@param su table
---@param bytes integer
---@param target string
function P:gateway_bill(su, bytes, target)
  local now = self.world.clock:now()
  self:record(su, now, bytes, target)
  refresh(su, now)
end

-- Reads a non-negative byte count from bytes/add_bytes or gb/add_gb.
local function amount(body, bytes_field, gb_field)
  local v = body[bytes_field]
  if v ~= nil then
    if not util.is_int(v) or v < 0 then return nil, bytes_field .. " must be a non-negative integer" end
    return math.tointeger(v)
  end
  v = body[gb_field]
  if type(v) ~= "number" or v < 0 or v ~= v or v == math.huge then return nil, gb_field .. " must be a non-negative number" end
  return math.floor(v * GB + 0.5)
end

--- Admin (POST /_sim/usage): sets or adds a sub-user's traffic; see the
--- header comment for the body.
---@param body table
---@return boolean ok
---@return table view_or_error
function P:set_usage(body)
  local id = body.id
  if type(id) == "string" and id:match("^%d+$") then id = tonumber(id) end
  local su = util.is_int(id) and self.sub_users[math.tointeger(id)]
  if not su then return false, { status = 404, code = "not_found", message = "no oxylabs sub-user " .. tostring(body.id) } end
  local given = {}
  for _, f in ipairs { "bytes", "add_bytes", "gb", "add_gb" } do if body[f] ~= nil then given[#given + 1] = f end end
  if #given ~= 1 then return false, { message = "give exactly one of bytes, add_bytes, gb, add_gb" } end
  local target = body.target
  if target ~= nil then
    local known = false
    for _, name in ipairs(M.TARGETS) do known = known or name == target end
    if not known then return false, { message = "target must be one of " .. table.concat(M.TARGETS, ", ") } end
  end
  local now = self.world.clock:now()
  local n, err
  local current = period_bytes(su, now)
  local delta
  if given[1] == "bytes" or given[1] == "gb" then
    n, err = amount(body, "bytes", "gb")
    if not n then return false, { message = err } end
    if n < current then
      return false, { message = ("cannot lower usage (history is append-only): the period's traffic is already %d bytes"):format(current) }
    end
    delta = n - current
  else
    n, err = amount(body, "add_bytes", "add_gb")
    if not n then return false, { message = err } end
    delta = n
  end
  self:record(su, now, delta, target)
  refresh(su, now)
  return true, view(su, now)
end

--- Everything, for GET /_sim/state: accounts with their sub-users (and
--- lifetime bytes) and how many JWTs are live.
---@return table
function P:snapshot()
  local now = self.world.clock:now()
  local accounts, live = {}, 0
  for _, entry in pairs(self.tokens) do if now < entry.exp then live = live + 1 end end
  for _, acct in ipairs(self.account_list) do
    local subs = {}
    for _, id in ipairs(acct.order) do
      local su = self.sub_users[id]
      local v = view(su, now)
      v.total_bytes, v.period_bytes = su.total, period_bytes(su, now)
      subs[#subs + 1] = v
    end
    accounts[#accounts + 1] = { username = acct.username, user_id = acct.user_id,
      month_bytes = acct.monthly[month(now)] or 0, sub_users = json.array(subs) }
  end
  return { accounts = json.array(accounts), live_tokens = live, targets = json.array(util.copy(M.TARGETS)) }
end

-- Checks one seeded sub-user from the accounts; raises a message naming
-- where (e.g. "oxylabs[1].sub_users[2].traffic_limit ...").
local function check_seed(seed, where)
  if type(seed) ~= "table" then error(where .. " must be an object", 0) end
  local msg = check_username(seed.username)
    or (seed.password ~= nil and check_password(seed.password))
    or (seed.traffic_limit ~= nil and check_limit(seed.traffic_limit))
    or (seed.lifetime ~= nil and check_bool("lifetime", seed.lifetime))
    or (seed.auto_disable ~= nil and check_bool("auto_disable", seed.auto_disable))
    or (seed.traffic ~= nil and (type(seed.traffic) ~= "number" or seed.traffic < 0)
      and "traffic must be a non-negative number of GB")
    or (seed.status ~= nil and seed.status ~= "active" and seed.status ~= "disabled"
      and 'status must be "active" or "disabled"')
    or nil
  if msg then error(where .. "." .. msg, 0) end
end

--- The provider over the sandbox's accounts (seeded sub-users get a
--- generated password and their `traffic` spread over the last week). A bad
--- seed raises an error naming it.
---@param world resi.sim.world
---@param accounts table
---@return resi.sim.oxylabs
function M.new(world, accounts)
  local self = setmetatable({ name = "oxylabs", world = world, accounts = {}, account_list = {}, sub_users = {}, by_username = {},
    deleted_names = {}, tokens = {}, next_id = world.rng:int(100000, 899999), router = router.new() }, P)
  local r = self.router
  r:add("POST", "/login", P.route_login)
  r:add("GET", "/users/:user_id/sub-users", P.route_list)
  r:add("POST", "/users/:user_id/sub-users", P.route_create)
  r:add("GET", "/users/:user_id/sub-users/:id", P.route_stats)
  r:add("PATCH", "/users/:user_id/sub-users/:id", P.route_update)
  r:add("DELETE", "/users/:user_id/sub-users/:id", P.route_delete)
  r:add("GET", "/users/:user_id/sub-users/:id/target-stats", P.route_target_stats)
  r:add("GET", "/users/:user_id/client-stats", P.route_client_stats)
  local now = world.clock:now()
  for _, a in ipairs(accounts.oxylabs or {}) do -- main users first: their names are taken
    local acct = { username = a.username, password = a.password, user_id = a.user_id, order = {}, monthly = {} }
    self.accounts[a.username] = acct
    self.account_list[#self.account_list + 1] = acct
  end
  for i, a in ipairs(accounts.oxylabs or {}) do
    local acct = self.account_list[i]
    if a.sub_users ~= nil and type(a.sub_users) ~= "table" then
      error(("oxylabs[%d].sub_users must be an array"):format(i), 0)
    end
    for j, seed in ipairs(a.sub_users or {}) do
      check_seed(seed, ("oxylabs[%d].sub_users[%d]"):format(i, j))
      if self.by_username[seed.username] or self.accounts[seed.username] then
        error(("oxylabs[%d].sub_users[%d].username %s is already taken"):format(i, j, seed.username), 0)
      end
      local su = self:create(acct, { username = seed.username, password = seed.password or self:new_password(),
        traffic_limit = seed.traffic_limit, auto_disable = seed.auto_disable, lifetime = seed.lifetime },
        now - 30 * DAY)
      if seed.status == "disabled" then su.status = "disabled" end
      self:seed_history(su, tonumber(seed.traffic) or 0, now)
      refresh(su, now)
    end
  end
  return self
end

return M
