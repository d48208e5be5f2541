--- resi.sim.accounts: the sandbox's accounts: generated from a seed, or read
--- from `--accounts FILE` (JSON) and checked as a whole: every problem is
--- reported, each named by its path in the file
--- (`unknownproxies[1].tokens[2].dataLimit must be ...`,
--- `oxylabs[1].usre: unknown field (...)`), and no message quotes a password
--- or API key.
---
--- Shape (fields marked ? are optional; any other field is refused by name):
---   {"unknownproxies": [{"username", "password", "tokens"?: [TOKEN], "base_url"?}],
---    "oxylabs": [{"username", "password", "user_id", "sub_users"?: [SUB_USER], "base_url"?}],
---    "resifactory": [{"api_key": "rf_live_...", "scopes"?: [...], "balances"?: {pool: GB},
---                     "disabled"?, "revoked"?, "username"?, "key_name"?, "proxy_password"?,
---                     "id"?, "default_pool"?, "base_url"?}],
---    "pools": [{"id", "host", "label"?, "port"?, "proxy_types"?: [...]}]}
---   TOKEN    {"dataLimit"?, "dataUsage"?, "username"?, "durationHours"?}
---   SUB_USER {"username", "password"?, "traffic_limit"?, "traffic"?, "lifetime"?,
---             "auto_disable"?, "status"?}
--- `tokens` and `sub_users` are seeds created at start; they follow the
--- provider's own create rules (dataLimit whole GB >= 1 GB, 8-character token
--- usernames, Oxylabs' password rule), plus `dataUsage` (bytes) / `traffic`
--- (GB) already used. `base_url` is read by the provider clients (one file
--- serves `resi sim` and scripts/usage_report.lua) and ignored here.
local json = require "resi.json"
local util = require "resi.sim.util"
local up_rules = require "resi.sim.unknownproxies"
local oxy_rules = require "resi.sim.oxylabs"

local M = {}

M.SCOPES = { "proxies:generate", "usage:read", "pools:read" }

--- The pools a generated sandbox offers.
function M.default_pools()
  return {
    { id = "walmart_premium", label = "Premium", host = "proxy.resifactory.net", port = 8000,
      proxy_types = { "rotating", "sticky" } },
    { id = "retail_select", label = "Retail Select", host = "retail.resifactory.net", port = 8000,
      proxy_types = { "rotating", "sticky", "mobile_rotating", "mobile_sticky" } },
  }
end

--- One account per provider from the seeded generator, with a few tokens and
--- sub-users already in use so a rotation has something to do.
---@param rng resi.sim.rng
function M.generate(rng)
  local GB = util.GB
  return {
    unknownproxies = { {
      username = "reseller-" .. rng:string(6):lower(), password = rng:string(20),
      tokens = { { dataLimit = 10 * GB, dataUsage = 2 * GB }, { dataLimit = 5 * GB, dataUsage = 3 * GB },
        { dataLimit = 20 * GB, dataUsage = 17 * GB, durationHours = 720 } },
    } },
    oxylabs = { {
      username = "main_" .. rng:string(6):lower(), password = rng:string(20), user_id = rng:uuid(),
      sub_users = { { username = "team_alpha", traffic_limit = 10, traffic = 4.2 },
        { username = "team_beta", traffic_limit = 5, traffic = 4.1, auto_disable = true },
        { username = "team_gamma", traffic_limit = json.null, traffic = 12.5 } },
    } },
    resifactory = { {
      api_key = "rf_live_" .. rng:string(24), username = "reseller_" .. rng:string(4):lower(),
      scopes = M.SCOPES, balances = { walmart_premium = 25.0, retail_select = 0 }, disabled = false,
    } },
    pools = M.default_pools(),
  }
end

-- ── Checking an accounts table ──────────────────────────────────────────
-- Every problem is collected (not just the first) and named by its path in
-- the file. A rule gets (value, field, path, problems) and returns nil or a
-- message that starts with the field's name (the providers' own checks
-- have that shape); a rule for a nested list or object records its items'
-- problems itself. No message quotes a value that may be secret (a
-- password, an API key): it says what is wrong, not what was there.

---@class resi.sim.problems
---@field list string[]
---@field seen table<string, table<string, string>>
local Problems = {}
Problems.__index = Problems

-- Records one problem (a full "path rule" sentence).
function Problems:add(message) self.list[#self.list + 1] = message end

-- Records that `value` of a `kind` (a namespace such as "oxylabs username")
-- is used at path; returns the path of an earlier use, if any.
function Problems:claim(kind, value, path)
  local seen = self.seen[kind] or {}
  self.seen[kind] = seen
  local first = seen[value]
  if not first then seen[value] = path end
  return first
end

-- "a.b" (or "b" at the top level).
local function join(parent, field) return parent == "" and field or parent .. "." .. field end

-- Is v a Lua sequence or a decoded JSON array (the empty table is both)?
local function is_list(v)
  if type(v) ~= "table" then return false end
  if json.is_array(v) then return true end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  return n == #v
end

-- Is v a JSON object (a table with no array part)?
local function is_object(v)
  return type(v) == "table" and not json.is_array(v) and rawget(v, 1) == nil
end

-- What kind of JSON value v is, for "got ..." (never the value itself).
local function kind(v)
  if v == json.null then return "null" end
  if type(v) == "table" then return (json.is_array(v) or rawget(v, 1) ~= nil) and "an array" or "an object" end
  local names = { string = "a string", number = "a number", boolean = "true/false" }
  return names[type(v)] or type(v)
end

-- Rule: a non-empty string.
local function string_rule(v, field)
  if type(v) ~= "string" or v == "" then return ("%s must be a non-empty string, got %s"):format(field, kind(v)) end
end

-- Rule: true or false.
local function bool_rule(v, field)
  if type(v) ~= "boolean" then return ("%s must be true or false, got %s"):format(field, kind(v)) end
end

-- Rule: a non-negative integer (a count of bytes).
local function bytes_rule(v, field)
  local n = util.is_int(v) and math.tointeger(v)
  if not n or n < 0 then return field .. " must be a non-negative integer number of bytes" end
end

-- Rule: a non-negative, finite number of GB.
local function gb_rule(v, field)
  if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then return field .. " must be a non-negative number of GB" end
end

-- Adapts a provider check taking (v) or (field, v) to a rule.
local function provider_rule(check, takes_field)
  return function(v, field) if takes_field then return check(field, v) end return check(v) end
end

-- Checks t's fields against spec, a list of {name, rule, required = bool,
-- what = "..."}; names each missing required field and each unknown one.
local function check_fields(p, t, path, spec)
  local known, names = {}, {}
  for _, f in ipairs(spec) do
    known[f[1]], names[#names + 1] = true, f[1]
    local v, at = t[f[1]], join(path, f[1])
    if v == nil then
      if f.required then p:add(("%s is required (%s)"):format(at, f.what or "a non-empty string")) end
    else
      local msg = f[2](v, f[1], at, p)
      if msg then p:add(join(path, msg)) end
    end
  end
  local unknown = {}
  for k in pairs(t) do if not known[k] then unknown[#unknown + 1] = tostring(k) end end
  table.sort(unknown)
  for _, k in ipairs(unknown) do
    p:add(("%s: unknown field (expected %s)"):format(join(path, k), table.concat(names, ", ")))
  end
end

-- Rule: an array whose items item(x, path, p) checks; `what` names them.
local function list_rule(what, item)
  return function(v, field, path, p)
    if not is_list(v) then return ("%s must be an array of %s, got %s"):format(field, what, kind(v)) end
    for i, x in ipairs(v) do item(x, ("%s[%d]"):format(path, i), p) end
  end
end

-- Item checker: an object; extra(x, path, p) (its own uniqueness), then
-- the fields of spec (nested lists included).
local function object_item(spec, extra)
  return function(x, path, p)
    if not is_object(x) then return p:add(("%s must be an object, got %s"):format(path, kind(x))) end
    if extra then extra(x, path, p) end
    check_fields(p, x, path, spec)
  end
end

-- Extra check: x[field] (a string, not secret) is unique within `space`.
local function unique(space, field, verb)
  return function(x, path, p)
    local v = x[field]
    if type(v) ~= "string" or v == "" then return end
    local first = p:claim(space, v, join(path, field))
    if first then p:add(("%s %s is already %s (by %s)"):format(join(path, field), v, verb or "taken", first)) end
  end
end

-- A seeded UnknownProxies token: the create endpoint's rules.
local UP_TOKEN = object_item({
  { "dataLimit", provider_rule(up_rules.check_limit) }, { "dataUsage", bytes_rule },
  { "username", provider_rule(up_rules.check_eight, true) }, { "durationHours", provider_rule(up_rules.check_hours) },
}, unique("unknownproxies token username", "username"))

-- An UnknownProxies reseller account (Basic auth: no ':' in the username).
local UP_ACCOUNT = object_item({
  { "username", function(v, field)
    return string_rule(v, field) or (v:find(":", 1, true) and field .. " must not contain ':' (it is a Basic-auth user)")
  end, required = true },
  { "password", string_rule, required = true }, { "tokens", list_rule("tokens", UP_TOKEN) }, { "base_url", string_rule },
}, unique("unknownproxies username", "username", "used"))

-- A seeded Oxylabs sub-user: the create endpoint's rules plus seed fields.
local OXY_SUB_USER = object_item({
  { "username", provider_rule(oxy_rules.check_username), required = true, what = "letters, digits and underscores" },
  { "password", provider_rule(oxy_rules.check_password) }, { "traffic_limit", provider_rule(oxy_rules.check_limit) },
  { "traffic", gb_rule }, { "lifetime", bool_rule }, { "auto_disable", bool_rule },
  { "status", function(v, field)
    if v ~= "active" and v ~= "disabled" then return field .. ' must be "active" or "disabled"' end
  end },
}, unique("oxylabs username", "username"))

-- An Oxylabs main account.
local OXY_ACCOUNT = object_item({
  { "username", string_rule, required = true }, { "password", string_rule, required = true },
  { "user_id", string_rule, required = true }, { "sub_users", list_rule("sub-users", OXY_SUB_USER) },
  { "base_url", string_rule },
}, unique("oxylabs user_id", "user_id", "used"))

-- The Oxylabs list: main usernames are claimed first (the provider creates
-- them first), so a sub-user named like a main user is the one refused.
local function oxylabs_rule(v, field, path, p)
  if is_list(v) then
    for i, a in ipairs(v) do if is_object(a) then unique("oxylabs username", "username", "used")(a, ("%s[%d]"):format(path, i), p) end end
  end
  return list_rule("accounts", OXY_ACCOUNT)(v, field, path, p)
end

-- Rule: one of the names in list (the value is shown: it is not secret).
local function one_of(list, what)
  local set = {}
  for _, s in ipairs(list) do set[s] = true end
  return function(v, field)
    if not set[v] then
      return ("%s must be %s (%s), got %s"):format(field, what, table.concat(list, ", "),
        type(v) == "string" and ("%q"):format(v) or kind(v))
    end
  end
end

-- Rule: a map of pool id -> GB whose ids are known pools.
local function balances_rule(pool_ids)
  return function(v, field, path, p)
    if not is_object(v) then return ("%s must be an object of pool id -> GB, got %s"):format(field, kind(v)) end
    local ids = {}
    for id in pairs(v) do ids[#ids + 1] = tostring(id) end
    table.sort(ids)
    for _, id in ipairs(ids) do
      local msg = gb_rule(v[id], id)
      if msg then p:add(path .. "." .. msg) end
      if not pool_ids[id] then p:add(("%s.%s: unknown pool (pools: %s)"):format(path, id, pool_ids.names)) end
    end
  end
end

-- Rule: a pool id that is one of the known pools.
local function pool_rule(pool_ids)
  return function(v, field)
    return string_rule(v, field) or (not pool_ids[v] and ("%s %s is not a pool (pools: %s)"):format(field, v, pool_ids.names)) or nil
  end
end

-- A ResiFactory API key entry; pool_ids are the pools balances may name.
local function rf_account(pool_ids)
  return object_item({
    { "api_key", function(v, field)
      if type(v) ~= "string" or not v:match("^rf_live_[%w_%-]+$") then
        return field .. " must start with rf_live_ (then letters, digits, '_' or '-')"
      end
    end, required = true, what = "a string starting with rf_live_" },
    { "scopes", list_rule("scope names", function(x, path, p)
      local msg = one_of(M.SCOPES, "a scope")(x, path)
      if msg then p:add(msg) end
    end) },
    { "balances", balances_rule(pool_ids) }, { "disabled", bool_rule }, { "revoked", bool_rule },
    { "username", string_rule }, { "key_name", string_rule }, { "proxy_password", string_rule },
    { "id", function(v, field) if not (util.is_int(v) and v > 0) then return field .. " must be a positive integer" end end },
    { "default_pool", pool_rule(pool_ids) }, { "base_url", string_rule },
  }, function(x, path, p)
    -- the key itself is secret: name the earlier entry, not the key
    local first = type(x.api_key) == "string" and p:claim("resifactory api_key", x.api_key, path)
    if first then p:add(path .. ".api_key is the same key as " .. first .. ".api_key") end
  end)
end

-- A proxy pool (ResiFactory's GET /pools entries).
local function pool_item()
  local types = require("resi.sim.resifactory").PROXY_TYPES -- required here: resifactory requires this module
  return object_item({
    { "id", string_rule, required = true }, { "host", string_rule, required = true }, { "label", string_rule },
    { "port", function(v, field)
      if not (util.is_int(v) and v >= 1 and v <= 65535) then return field .. " must be a port number (1..65535)" end
    end },
    { "proxy_types", function(v, field, path, p)
      if not is_list(v) or next(v) == nil then return ("%s must be a non-empty array of proxy types (%s)"):format(field, table.concat(types, ", ")) end
      for i, t in ipairs(v) do
        local msg = one_of(types, "a proxy type")(t, ("%s[%d]"):format(path, i))
        if msg then p:add(msg) end
      end
    end },
  }, unique("pool id", "id", "used"))
end

-- The pool ids balances and default_pool may name: the file's pools (when
-- given) or the default ones; .names lists them for messages.
local function known_pools(pools)
  local ids, names = {}, {}
  if pools == nil then pools = M.default_pools() end
  if is_list(pools) then
    for _, pool in ipairs(pools) do
      if type(pool) == "table" and type(pool.id) == "string" then ids[pool.id] = true; names[#names + 1] = pool.id end
    end
  end
  ids.names = #names > 0 and table.concat(names, ", ") or "none"
  return ids
end

--- Checks a whole accounts table (the decoded --accounts file). Returns
--- true, or false, every problem as one text (one per line) and as a list;
--- each names its path (`unknownproxies[1].tokens[2].dataLimit must be ...`,
--- `oxylabs[1].usre: unknown field (...)`) and never quotes a secret.
---@param accounts any
---@return boolean ok
---@return string|nil text
---@return string[]|nil problems
function M.check(accounts)
  local p = setmetatable({ list = {}, seen = {} }, Problems)
  if not is_object(accounts) then
    p:add(('the top level must be a JSON object ({"unknownproxies": [...], "oxylabs": [...], ...}), got %s'):format(kind(accounts)))
  else
    local pool_ids = known_pools(accounts.pools)
    check_fields(p, accounts, "", {
      { "unknownproxies", list_rule("accounts", UP_ACCOUNT) }, { "oxylabs", oxylabs_rule },
      { "resifactory", list_rule("API keys", rf_account(pool_ids)) }, { "pools", list_rule("pools", pool_item()) },
    })
  end
  if #p.list == 0 then return true end
  return false, table.concat(p.list, "\n"), p.list
end

-- One problem as is, several as a counted list (at most 50 shown).
local function summary(problems)
  if #problems == 1 then return problems[1] end
  local shown = { table.unpack(problems, 1, math.min(#problems, 50)) }
  if #problems > 50 then shown[#shown + 1] = ("... and %d more"):format(#problems - 50) end
  return ("%d problems:\n  %s"):format(#problems, table.concat(shown, "\n  "))
end

--- Reads and checks an accounts file; the table, or nil and a message that
--- names the file and every bad field.
---@param path string
---@return table|nil accounts
---@return string|nil err
function M.load(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot read accounts file: " .. err end
  local text, rerr = f:read("a")
  f:close()
  if not text then return nil, ("cannot read accounts file: %s: %s"):format(path, rerr or "read failed") end
  local accounts, jerr = json.safe_decode(text)
  if jerr then return nil, ("%s: not valid JSON: %s"):format(path, (jerr:gsub("^resi%.json%.decode: ", ""))) end
  local ok, _, problems = M.check(accounts)
  if not ok then return nil, path .. ": " .. summary(problems) end
  accounts.pools = accounts.pools or M.default_pools()
  return accounts
end

return M
