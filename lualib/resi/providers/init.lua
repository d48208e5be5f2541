--- resi.providers: one account model over the three providers (DESIGN.md §5).
---
---   local providers = require "resi.providers"
---   local acct = providers.open("unknownproxies")      -- credentials from the environment
---   for _, t in ipairs(acct:tokens()) do print(t.id, t.used_bytes / t.limit_bytes) end
---   local new = acct:create_token{limit_bytes = 10e9, hours = 720}
---   print(acct:proxy_entry(new).host)                  -- the gateway customers use
---
--- Every provider returns the same shapes: token records (below), a
--- deletion {id, deleted = true, already}, balances {pool = GB}. Bytes are
--- integers; `unlimited` is explicit because 0 means "blocked" at Oxylabs
--- and is invalid at UnknownProxies. Oxylabs traffic is GB (1 GB = 10^9
--- bytes here) and it never returns passwords (nil, except from
--- create_token). acct.capabilities says what a provider supports; other
--- calls raise an error of kind "unsupported". acct:apply(id, want) makes a
--- token's parameters those create_token was asked for and checks them
--- (what a create could not set, or a create whose answer was lost left
--- unset). capabilities.returns_passwords is false where the provider never
--- gives a proxy user's password back (Oxylabs): a caller that must know it
--- chooses it (acct:new_credentials) and keeps it. The provider knowledge a
--- workflow needs is here too: acct.gateway,
--- acct:new_credentials() and acct:proxy_entry(token).
---
---@class resi.providers.token
---@field provider "unknownproxies"|"oxylabs"
---@field id string
---@field username string
---@field password string|nil  nil where the provider does not return it (Oxylabs)
---@field status string  "active" | "expired" | "disabled" | "deleted" ...
---@field used_bytes integer
---@field limit_bytes integer|nil  nil when unlimited
---@field unlimited boolean
---@field expires_at integer|nil  epoch seconds
---@field created_at integer|string|nil
---@field hours integer|nil  UnknownProxies' durationHours
---@field raw table  the provider's own object
---
---@class resi.providers.account
---@field name "unknownproxies"|"oxylabs"|"resifactory"
---@field id string  stable and secret-free ("oxylabs:team_main"): store namespaces use it
---@field label string  the username, or the masked API key
---@field client resi.providers.client  the provider module's client
---@field capabilities table<string, boolean>
---@field gateway resi.providers.gateway  where customers' proxy traffic goes
local common = require "resi.providers.common"
local gateways = require "resi.providers.gateways"
local json = require "resi.json"
local random = require "resi.random"

local M = {}
local GB = 1000000000

M.NAMES = { "unknownproxies", "oxylabs", "resifactory" }

--- Masks a secret for display (rf_live_…x7kQ).
M.mask = require("resi.secret").mask

-- Raises the "unsupported" error for a call a provider does not have.
local function unsupported(provider, what)
  error(common.error { kind = "unsupported", provider = provider, code = "unsupported",
    message = what .. " is not supported by " .. provider .. " (see acct.capabilities)" }, 0)
end

-- Bytes from a GB float, as an integer.
local function gb_bytes(gb)
  if type(gb) ~= "number" then return nil end
  return math.floor(gb * GB + 0.5)
end

---- what every account has ---------------------------------------------

--- What providers.open returns: one account class per provider, each with
--- the model's methods (unsupported ones raise, see acct.capabilities).
---@alias resi.providers.any_account resi.providers.unknownproxies_account|resi.providers.oxylabs_account|resi.providers.resifactory_account

---@class resi.providers.account
local Account = {}

local ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
local LOWER_DIGITS = "abcdefghijklmnopqrstuvwxyz0123456789"

-- FNV-1a (64-bit, wrapping) of s: a stable hash, not a secret one.
local function fnv1a(s)
  local h = -3750763034362895579 -- 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ s:byte(i)) * 0x100000001b3 end
  return h
end

-- splitmix64's finalizer: every output bit depends on every input bit
-- (FNV-1a's low bits depend only on the inputs' low bits, so taking them
-- modulo a charset's size gave 10,000 seeds fewer than 500 usernames).
local function mix(x)
  x = (x ~ (x >> 30)) * -4658895280553007687 -- 0xbf58476d1ce4e5b9
  x = (x ~ (x >> 27)) * -7723592293110705685 -- 0x94d049bb133111eb
  return x ~ (x >> 31)
end

-- n characters from charset: derived from seed when given (the same seed
-- gives the same string), else from the OS generator.
local function chars(n, charset, seed)
  if seed == nil then return random.string(n, charset) end
  local out, state = {}, fnv1a(seed)
  for i = 1, n do
    state = state + -7046029254386353131 -- 0x9e3779b97f4a7c15, splitmix64's step
    local k = (mix(state) >> 1) % #charset + 1
    out[i] = charset:sub(k, k)
  end
  return table.concat(out)
end

--- A new proxy user's username and password, valid under the provider's
--- rules (UnknownProxies: both exactly 8 letters and digits; Oxylabs: a
--- name of letters and digits, a 20-character password with every class
--- it demands). opts.seed derives the username from the account and the
--- seed (a dry run and the real run then name the same one: it is no
--- secret); the password always comes from the OS generator.
---@param opts? {seed?: string}
---@return {username: string, password: string}
function Account:new_credentials(opts)
  local seed = opts and opts.seed and (self.id .. "\0" .. tostring(opts.seed)) or nil
  return self:credential_rules(seed)
end

--- The proxy-list entry a customer uses for token t: the account's gateway
--- and the provider's username dialect (Oxylabs' "customer-" prefix).
--- Returns nil and the reason when t's password is not known.
---@param t resi.providers.token
---@return {scheme: string, host: string, port: integer, user: string, pass: string}|nil entry, string|nil why
function Account:proxy_entry(t)
  if type(t.password) ~= "string" or t.password == "" then
    return nil, self.name == "oxylabs" and "Oxylabs never returns a sub-user's password, and resi did not set it"
      or "the provider did not return its password"
  end
  local g = self.gateway
  return { scheme = "http", host = g.host, port = g.port, user = gateways.proxy_username(self.name, t.username),
    pass = t.password }
end

---- UnknownProxies -------------------------------------------------------

---@class resi.providers.unknownproxies_account: resi.providers.account
local UP = setmetatable({ capabilities = { tokens = true, create_token = true, set_limit = true, disable = false,
  delete_token = true, set_password = true, returns_passwords = true, balance = false, expiry = true } },
  { __index = Account })
UP.__index = UP

-- UnknownProxies' credential rules: both exactly 8 letters and digits.
function UP:credential_rules(seed)
  return { username = chars(8, ALNUM, seed), password = chars(8, ALNUM) }
end

-- The common record of an UnknownProxies token.
local function up_record(t)
  local hours = math.tointeger(t.durationHours) or 0
  return { provider = "unknownproxies", id = t.token, username = t.username, password = t.password,
    status = t.status, used_bytes = math.tointeger(t.dataUsage) or 0, limit_bytes = math.tointeger(t.dataLimit),
    unlimited = false, expires_at = hours > 0 and t.createdAt + hours * 3600 or nil, created_at = t.createdAt,
    hours = hours, raw = t }
end

--- Every token of the account that is not deleted, as common records.
---@async
---@return resi.providers.token[]
function UP:tokens()
  local out = {}
  for _, t in ipairs(self.client:list_tokens()) do
    if t.status ~= "deleted" then out[#out + 1] = up_record(t) end
  end
  return out
end
--- The token's record; a deleted one is not_found, as at every provider
--- (Oxylabs forgets deleted sub-users).
---@param id string
---@return resi.providers.token
---@async
function UP:token(id)
  local t = self.client:get_token(id)
  if t.status == "deleted" then
    error(common.error { kind = "not_found", provider = "unknownproxies", code = "not_found",
      message = ("token %s was deleted"):format(tostring(id)) }, 0)
  end
  return up_record(t)
end

-- True when two lists of pool ids hold the same ids (order aside).
local function same_pools(a, b)
  local seen, n = {}, 0
  for _, p in ipairs(a) do
    if not seen[p] then seen[p], n = true, n + 1 end
  end
  for _, p in ipairs(b) do
    if not seen[p] then return false end
    if seen[p] == true then seen[p], n = "matched", n - 1 end
  end
  return n == 0
end

-- The fields of an UnknownProxies token that differ from want (the
-- create_token options), as a modify_token body (empty when none).
local function up_diff(t, want)
  local d = {}
  local pools = want.like and want.like.allowedPools
  if type(pools) == "table" and not same_pools(pools, type(t.allowedPools) == "table" and t.allowedPools or {}) then
    d.allowedPools = pools
  end
  if want.hours and (math.tointeger(t.durationHours) or 0) ~= want.hours then d.durationHours = want.hours end
  if want.limit_bytes and math.tointeger(t.dataLimit) ~= want.limit_bytes then d.dataLimit = want.limit_bytes end
  if want.password and t.password ~= want.password then d.password = want.password end
  return d
end

-- Raises the error for a parameter a provider did not take.
local function not_applied(provider, id, field)
  error(common.error { kind = "protocol", provider = provider, code = "not_applied", field = field,
    message = ("token %s: %s is still not what was asked for after changing it"):format(id, field) }, 0)
end

--- Creates a token: limit_bytes (required), hours, username, password (a
--- create cannot set it, nor allowedPools from like: both are applied
--- after it). Returns its record.
---@param opts {limit_bytes: integer, hours?: integer, username?: string, password?: string, like?: table}
---@return resi.providers.token
---@async
function UP:create_token(opts)
  opts = opts or {}
  if opts.unlimited then common.invalid("unknownproxies", "unlimited", "is not possible: every token has a data limit") end
  local t = self.client:create_token { dataLimit = opts.limit_bytes, durationHours = opts.hours,
    username = opts.username }
  return self:apply(t.token, opts, up_record(t))
end

--- Makes a token's parameters those of want (create_token's options:
--- limit_bytes, hours, password, like.allowedPools) and checks them: changes only
--- what differs, so repeating it is harmless. current is the token's
--- record when the caller has it (saves a read). Returns the record.
---@param id string
---@param want? {limit_bytes?: integer, hours?: integer, password?: string, like?: {allowedPools?: string[]}}
---@param current? table
---@return table
---@async
function UP:apply(id, want, current)
  want = want or {}
  local t = (current or self:token(id)).raw
  local d = up_diff(t, want)
  if next(d) == nil then return current or up_record(t) end
  t = self.client:modify_token(id, d)
  local still = next(up_diff(t, want))
  if still then not_applied("unknownproxies", id, still) end
  return up_record(t)
end

--- Sets a token's data limit (bytes: whole GB, never lower); its record.
---@param id string
---@param bytes integer
---@return resi.providers.token
---@async
function UP:set_limit(id, bytes) return up_record(self.client:modify_token(id, { dataLimit = bytes })) end

--- Sets a token's password (exactly 8 characters); its record.
---@param id string
---@param password string
---@return resi.providers.token
---@async
function UP:set_password(id, password) return up_record(self.client:modify_token(id, { password = password })) end

--- Deletes a token: {id, deleted = true, already} (already: a retry found
--- it deleted).
---@param id string
---@return {id: string, deleted: true, already: boolean}
---@async
function UP:delete_token(id)
  local r = self.client:delete_token(id)
  return { id = id, deleted = true, already = r.already == true }
end

--- The account's live token with this username, or nil.
---@param username string
---@return resi.providers.token|nil
---@async
function UP:find(username)
  local t = self.client:find_by_username(username)
  return t and up_record(t)
end

---- Oxylabs ---------------------------------------------------------------

---@class resi.providers.oxylabs_account: resi.providers.account
local OXY = setmetatable({ capabilities = { tokens = true, create_token = true, set_limit = true, disable = true,
  delete_token = true, set_password = true, returns_passwords = false, balance = false, expiry = false } },
  { __index = Account })
OXY.__index = OXY

-- The common record of an Oxylabs sub-user.
local function oxy_record(s, password)
  local unlimited = s.traffic_limit == nil or s.traffic_limit == json.null
  return { provider = "oxylabs", id = tostring(s.id), username = s.username, password = password,
    status = s.status, used_bytes = gb_bytes(s.traffic) or 0, limit_bytes = (not unlimited) and gb_bytes(s.traffic_limit) or nil,
    unlimited = unlimited, expires_at = nil, created_at = s.created_at, raw = s }
end

-- A password that meets Oxylabs' rule: 20 characters with every class
-- (one of each first, then letters and digits), from the OS generator.
local function oxy_password()
  local classes = { "abcdefghijkmnopqrstuvwxyz", "ABCDEFGHJKLMNPQRSTUVWXYZ", "23456789", "#_~+=" }
  local out = {}
  for i = 1, 4 do out[i] = random.string(1, classes[i]) end
  out[5] = random.string(16, classes[1] .. classes[2] .. classes[3])
  return table.concat(out)
end

-- Oxylabs' credential rules: a name of lower-case letters and digits, and
-- a password with every class its rule demands.
function OXY:credential_rules(seed)
  return { username = "r" .. chars(11, LOWER_DIGITS, seed), password = oxy_password() }
end

--- Every sub-user of the account, as common records.
---@async
---@return resi.providers.token[]
function OXY:tokens()
  local out = {}
  for _, s in ipairs(self.client:sub_users()) do out[#out + 1] = oxy_record(s) end
  return out
end
--- Creates a sub-user: limit_bytes or unlimited, username and password
--- (chosen when not given, from the OS generator), auto_disable, like
--- (auto_disable, lifetime). The record carries the password.
---@param opts? {limit_bytes?: integer, unlimited?: boolean, username?: string, password?: string, auto_disable?: boolean, like?: table}
---@return resi.providers.token
---@async
function OXY:create_token(opts)
  opts = opts or {}
  local limit = opts.unlimited and json.null or (opts.limit_bytes and opts.limit_bytes / GB)
  local username = opts.username or ("resi_" .. random.hex(4))
  local password = opts.password or oxy_password()
  local like = opts.like or {}
  local auto_disable = opts.auto_disable
  if auto_disable == nil and type(like.auto_disable) == "boolean" then auto_disable = like.auto_disable end
  local s = self.client:create_sub_user { username = username, password = password, traffic_limit = limit,
    auto_disable = auto_disable, lifetime = type(like.lifetime) == "boolean" and like.lifetime or nil }
  local r = oxy_record(s, password)
  r.username = r.username or username
  return r
end

-- The fields of an Oxylabs sub-user that differ from want (the
-- create_token options), as an update_sub_user body (empty when none).
local function oxy_diff(s, want)
  local d, like = {}, want.like or {}
  local unlimited = s.traffic_limit == nil or s.traffic_limit == json.null
  if want.unlimited and not unlimited then d.traffic_limit = json.null end
  if not want.unlimited and want.limit_bytes and (unlimited or gb_bytes(s.traffic_limit) ~= want.limit_bytes) then
    d.traffic_limit = want.limit_bytes / GB
  end
  for _, f in ipairs({ "auto_disable", "lifetime" }) do
    local v = want[f]
    if v == nil then v = like[f] end
    if type(v) == "boolean" and s[f] ~= v then d[f] = v end
  end
  return d
end

-- A sub-user object with every field apply compares: s itself, or the
-- list's copy when an answer left some out (a create may answer {id}).
local function oxy_full(self, id, s)
  if s.traffic_limit ~= nil and s.auto_disable ~= nil and s.lifetime ~= nil then return s end
  return self:token(id).raw
end

--- The sub-user's record (from the list: Oxylabs has no read of one).
---@param id string
---@return resi.providers.token
---@async
function OXY:token(id)
  for _, s in ipairs(self.client:sub_users()) do
    if tostring(s.id) == tostring(id) then return oxy_record(s) end
  end
  error(common.error { kind = "not_found", provider = "oxylabs", code = "not_found",
    message = ("no sub-user %s"):format(tostring(id)) }, 0)
end

--- Makes a sub-user's parameters those of want (create_token's options:
--- limit_bytes or unlimited, like.auto_disable, like.lifetime) and checks
--- them; changes only what differs. current: its record, when known.
---@param id string
---@param want? {limit_bytes?: integer, unlimited?: boolean, auto_disable?: boolean, like?: {auto_disable?: boolean, lifetime?: boolean}}
---@param current? table
---@return table
---@async
function OXY:apply(id, want, current)
  want = want or {}
  local s = oxy_full(self, id, (current or self:token(id)).raw)
  local d = oxy_diff(s, want)
  if next(d) == nil then return current or oxy_record(s) end
  s = oxy_full(self, id, self.client:update_sub_user(id, d))
  local still = next(oxy_diff(s, want))
  if still then not_applied("oxylabs", id, still) end
  return oxy_record(s)
end

--- Sets a sub-user's traffic limit (bytes, sent as GB); its record.
---@param id string
---@param bytes integer
---@return resi.providers.token
---@async
function OXY:set_limit(id, bytes) return oxy_record(self.client:update_sub_user(id, { traffic_limit = bytes / GB })) end

--- Disables a sub-user; its record.
---@param id string
---@return resi.providers.token
---@async
function OXY:disable(id) return oxy_record(self.client:update_sub_user(id, { status = "disabled" })) end

--- Sets a sub-user's password (Oxylabs' rule); its record, with it.
---@param id string
---@param password string
---@return resi.providers.token
---@async
function OXY:set_password(id, password)
  return oxy_record(self.client:update_sub_user(id, { password = password }), password)
end

--- Deletes a sub-user: {id, deleted = true, already} (already: it was gone).
---@param id string
---@return {id: string, deleted: true, already: boolean}
---@async
function OXY:delete_token(id)
  local _, already = self.client:delete_sub_user(id)
  return { id = tostring(id), deleted = true, already = already ~= nil }
end

--- The sub-user with this username, or nil.
---@param username string
---@return resi.providers.token|nil
---@async
function OXY:find(username)
  local s = self.client:find_sub_user(username)
  return s and oxy_record(s)
end

---- ResiFactory -----------------------------------------------------------

---@class resi.providers.resifactory_account: resi.providers.account
local RF = setmetatable({ capabilities = { tokens = false, create_token = false, set_limit = false, disable = false,
  delete_token = false, set_password = false, returns_passwords = false, balance = true, generate = true,
  expiry = false } }, { __index = Account })
RF.__index = RF

--- The account's balances per pool (GB), as ResiFactory returns them.
---@async
---@return table<string, number>
function RF:balance()
  local b = self.client:balance()
  return b.balances or b
end
--- Generates proxies (resi.providers.resifactory's generate: its fields,
--- and opts.idempotency_key to make a retry, even one a crash left for a
--- later run, replay the first answer instead of spending again).
---@param fields table
---@param opts? {idempotency_key?: string}
---@async
---@return {raw: table, list: resi.proxylist.list, is_demo: boolean, count: integer, format: string, replayed: boolean}
function RF:generate(fields, opts) return self.client:generate(fields, opts) end

---- the account -----------------------------------------------------------

local CLASSES = { unknownproxies = UP, oxylabs = OXY, resifactory = RF }

-- Every operation of the model raises "unsupported" unless a provider has it.
for _, op in ipairs({ "tokens", "token", "create_token", "apply", "set_limit", "disable", "delete_token", "set_password",
  "balance", "find", "generate", "credential_rules" }) do
  for name, class in pairs(CLASSES) do
    if rawget(class, op) == nil then class[op] = function() unsupported(name, op) end end
  end
end
for name, class in pairs(CLASSES) do
  class.__tostring = function(self) return ("%s account (%s)"):format(name, self.client:describe()) end
end


-- The account's stable, secret-free id: the username, or for an API key
-- a hash of it (a namespace must not hold the key).
local function account_id(name, client)
  if client.username then return name .. ":" .. client.username end
  return ("%s:key-%016x"):format(name, fnv1a(client.api_key))
end

--- Opens an account of a provider: opts go to the provider module's new()
--- (credentials default to the environment); opts.gateway ("host:port")
--- or opts.pool (UnknownProxies) choose the gateway. The account has
--- .client (the provider module's client), .name, .id, .label,
--- .capabilities and .gateway.
---@param name "unknownproxies"|"oxylabs"|"resifactory"
---@param opts? table
---@return resi.providers.any_account
function M.open(name, opts)
  local class = CLASSES[name]
  if not class then
    error(common.error { kind = "validation", provider = tostring(name), field = "name",
      message = ("unknown provider %q (known: unknownproxies, oxylabs, resifactory)"):format(tostring(name)) }, 2)
  end
  opts = opts or {}
  local client = require("resi.providers." .. name).new(opts)
  local ok, gateway = pcall(gateways.of, name, opts.gateway or (opts.pool and { pool = opts.pool }))
  if not ok then common.invalid(name, "gateway", tostring(gateway):gsub("^gateway ", "")) end
  return setmetatable({ name = name, client = client, capabilities = class.capabilities, id = account_id(name, client),
    label = client.username or ("key " .. M.mask(client.api_key)), gateway = gateway }, class)
end

--- The accounts a workflow runs on (resi.providers.accounts): an accounts
--- file's when path is given, else the environment's; names keeps only
--- those providers. nil, err for a bad file (every problem named).
M.select_accounts = require("resi.providers.accounts").select

--- The share of its limit a token has used (nil for unlimited ones).
---@param t resi.providers.token
---@return number|nil
function M.used_share(t)
  if t.unlimited or not t.limit_bytes or t.limit_bytes <= 0 then return nil end
  return t.used_bytes / t.limit_bytes
end

return M
