--- resi.providers: one account model over the three providers (DESIGN.md §5).
---
---   local providers = require "resi.providers"
---   local acct = providers.open("unknownproxies")      -- credentials from the environment
---   for _, t in ipairs(acct:tokens()) do print(t.id, t.used_bytes / t.limit_bytes) end
---   local new = acct:create_token{limit_bytes = 10e9, hours = 720}
---
--- A token record: {provider, id, username, password, status, used_bytes,
--- limit_bytes, unlimited, expires_at, created_at, raw}. Bytes are integers;
--- `unlimited` is explicit because 0 means "blocked" at Oxylabs and is
--- invalid at UnknownProxies. Oxylabs traffic is GB (1 GB = 10^9 bytes here)
--- and it never returns passwords (nil, except from create_token).
--- acct.capabilities says what a provider supports; other calls raise an
--- error of kind "unsupported". acct:apply(id, want) makes a token's
--- parameters those create_token was asked for and checks them (what a
--- create could not set, or a create whose answer was lost left unset).
local common = require "resi.providers.common"
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

---- UnknownProxies -------------------------------------------------------

local UP = { capabilities = { tokens = true, create_token = true, set_limit = true, disable = false,
  delete_token = true, balance = false, expiry = true } }
UP.__index = UP

-- The common record of an UnknownProxies token.
local function up_record(t)
  local hours = math.tointeger(t.durationHours) or 0
  return { provider = "unknownproxies", id = t.token, username = t.username, password = t.password,
    status = t.status, used_bytes = math.tointeger(t.dataUsage) or 0, limit_bytes = math.tointeger(t.dataLimit),
    unlimited = false, expires_at = hours > 0 and t.createdAt + hours * 3600 or nil, created_at = t.createdAt,
    hours = hours, raw = t }
end

function UP:tokens()
  local out = {}
  for _, t in ipairs(self.client:list_tokens()) do
    if t.status ~= "deleted" then out[#out + 1] = up_record(t) end
  end
  return out
end
function UP:token(id) return up_record(self.client:get_token(id)) end

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
  return d
end

-- Raises the error for a parameter a provider did not take.
local function not_applied(provider, id, field)
  error(common.error { kind = "protocol", provider = provider, code = "not_applied", field = field,
    message = ("token %s: %s is still not what was asked for after changing it"):format(id, field) }, 0)
end

function UP:create_token(opts)
  opts = opts or {}
  if opts.unlimited then common.invalid("unknownproxies", "unlimited", "is not possible: every token has a data limit") end
  local t = self.client:create_token { dataLimit = opts.limit_bytes, durationHours = opts.hours,
    username = opts.username }
  return self:apply(t.token, opts, up_record(t)) -- create cannot set allowedPools
end

--- Makes a token's parameters those of want (create_token's options:
--- limit_bytes, hours, like.allowedPools) and checks them: changes only
--- what differs, so repeating it is harmless. current is the token's
--- record when the caller has it (saves a read). Returns the record.
---@param id string
---@param want? {limit_bytes?: integer, hours?: integer, like?: {allowedPools?: string[]}}
---@param current? table
---@return table
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

function UP:set_limit(id, bytes) return up_record(self.client:modify_token(id, { dataLimit = bytes })) end
function UP:delete_token(id) return self.client:delete_token(id) end
function UP:find(username)
  local t = self.client:find_by_username(username)
  return t and up_record(t)
end

---- Oxylabs ---------------------------------------------------------------

local OXY = { capabilities = { tokens = true, create_token = true, set_limit = true, disable = true,
  delete_token = true, balance = false, expiry = false } }
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

function OXY:tokens()
  local out = {}
  for _, s in ipairs(self.client:sub_users()) do out[#out + 1] = oxy_record(s) end
  return out
end
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

function OXY:set_limit(id, bytes) return oxy_record(self.client:update_sub_user(id, { traffic_limit = bytes / GB })) end
function OXY:disable(id) return oxy_record(self.client:update_sub_user(id, { status = "disabled" })) end
function OXY:delete_token(id) return self.client:delete_sub_user(id) end
function OXY:find(username)
  local s = self.client:find_sub_user(username)
  return s and oxy_record(s)
end

---- ResiFactory -----------------------------------------------------------

local RF = { capabilities = { tokens = false, create_token = false, set_limit = false, disable = false,
  delete_token = false, balance = true, generate = true, expiry = false } }
RF.__index = RF

function RF:balance()
  local b = self.client:balance()
  return b.balances or b
end
function RF:generate(opts) return self.client:generate(opts) end

---- the account -----------------------------------------------------------

local CLASSES = { unknownproxies = UP, oxylabs = OXY, resifactory = RF }

-- Every operation of the model raises "unsupported" unless a provider has it.
for _, op in ipairs({ "tokens", "token", "create_token", "apply", "set_limit", "disable", "delete_token", "balance", "find",
  "generate" }) do
  for name, class in pairs(CLASSES) do
    if class[op] == nil then class[op] = function() unsupported(name, op) end end
  end
end
for name, class in pairs(CLASSES) do
  class.__tostring = function(self) return ("%s account (%s)"):format(name, self.client:describe()) end
end

--- A password that meets Oxylabs' sub-user rule (for callers that must
--- record it before creating the sub-user).
M.oxylabs_password = oxy_password

--- Opens an account of a provider: opts go to the provider module's new()
--- (credentials default to the environment). The account has .client (the
--- provider module's client), .name and .capabilities.
---@param name "unknownproxies"|"oxylabs"|"resifactory"
---@param opts? table
function M.open(name, opts)
  local class = CLASSES[name]
  if not class then
    error(common.error { kind = "validation", provider = tostring(name), field = "name",
      message = ("unknown provider %q (known: unknownproxies, oxylabs, resifactory)"):format(tostring(name)) }, 2)
  end
  local client = require("resi.providers." .. name).new(opts)
  return setmetatable({ name = name, client = client, capabilities = class.capabilities }, class)
end

--- The share of its limit a token has used (nil for unlimited ones).
function M.used_share(t)
  if t.unlimited or not t.limit_bytes or t.limit_bytes <= 0 then return nil end
  return t.used_bytes / t.limit_bytes
end

return M
