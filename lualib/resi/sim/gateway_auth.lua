--- resi.sim.gateway_auth: who a proxy username and password are, in each
--- provider's dialect, for the sandbox's gateways (resi.sim.gateway). The
--- answer is a credential {provider, key, session, lifetime, country, bill}
--- or nil and the refusal's reason (which never holds the password).
---
--- Dialects (providers.md §1.6, §2.5, §3.2; the parsers are the ones
--- resi.proxylist.sticky uses):
--- * unknownproxies: username = the token's, password = the token's or
---   PASS-<9 digits> (a sticky session). Sessions last SESSION_MINUTES
---   (nothing is documented). Exit country US (the default pool's).
--- * oxylabs: customer-USER[-cc-CC][-city-..][-st-..][-sessid-ID][-sesstime-MIN]
---   with the sub-user's password; sessions last sesstime (default 10)
---   minutes, 1..1440.
--- * resifactory: user-TAG[-type-mobile][-country-cc][-state-st]
---   [-session-ID-sesstime-MIN] with the account's proxy password, as POST
---   /proxies generates them; demo-... (is_demo) never works. Traffic is
---   paid from the first pool with live batches and a positive balance.
local sticky = require "resi.proxylist.sticky"

local M = {}

--- Minutes an UnknownProxies session keeps its exit (undocumented: ours).
M.SESSION_MINUTES = 30
--- Oxylabs' documented default session length, minutes.
M.OXYLABS_MINUTES = 10
--- ResiFactory's pool default session length, minutes.
M.RESIFACTORY_MINUTES = 30

-- The minutes of a sesstime value 1..1440, or nil.
local function minutes(v)
  local n = v and math.tointeger(tonumber(v))
  if n and n >= 1 and n <= 1440 then return n end
  return nil
end

-- UnknownProxies: token username, password[-session].
local function unknownproxies(p, user, pass)
  local t = p:gateway_token(user)
  if not t then return nil, "unknown proxy username" end
  local base, session = pass:match("^(.-)%-(%d%d%d%d%d%d%d%d%d)$")
  base = base or pass
  if base ~= t.password then return nil, "wrong password" end
  if t.status == "deleted" then return nil, "token deleted" end
  if t.status ~= "active" then
    return nil, t.dataUsage >= t.dataLimit and "token expired: data limit reached" or "token expired"
  end
  return { key = "unknownproxies:" .. t.token, session = session, lifetime = M.SESSION_MINUTES * 60, country = "US",
    bill = function(bytes) p:gateway_bill(t, bytes) end }
end

-- Oxylabs: customer-USER[-key-value]... and the sub-user's password.
local function oxylabs(p, user, pass)
  local parsed = sticky.parse_oxylabs(user)
  if not parsed then return nil, "username must be customer-USER[-cc-CC][-sessid-ID][-sesstime-MIN]" end
  local params = {}
  for _, kv in ipairs(parsed.params) do params[kv[1]:lower()] = kv[2] end
  local su, state = p:gateway_sub_user(parsed.username)
  if not su and state == "deleted" and p:gateway_deleted_password(parsed.username) == pass then
    return nil, "sub-user deleted"
  end
  if not su then return nil, "unknown proxy username" end
  if su.password ~= pass then return nil, "wrong password" end
  if state == "disabled" then return nil, "sub-user disabled" end
  if state == "exhausted" then return nil, "traffic limit reached" end
  local life = M.OXYLABS_MINUTES
  if params.sesstime then
    life = minutes(params.sesstime)
    if not life then return nil, "sesstime must be 1..1440 minutes" end
  end
  local key = "oxylabs:" .. su.id .. (params.cc and (":cc-" .. params.cc:upper()) or "")
  return { key = key, session = params.sessid, lifetime = life * 60, country = params.cc and params.cc:upper(),
    bill = function(bytes, target) p:gateway_bill(su, bytes, target) end }
end

-- ResiFactory: user-TAG[-key-value]... and the account's proxy password.
local function resifactory(p, user, pass)
  local kind, tag, rest = user:match("^(%a+)%-([%w_]+)(.*)$")
  if kind == "demo" then return nil, "demo credentials do not work (is_demo: the pool had no balance)" end
  if kind ~= "user" then return nil, "username must be user-ACCOUNT[-country-cc][-session-ID-sesstime-MIN]" end
  local params, rebuilt = {}, {}
  for k, v in rest:gmatch("%-(%a+)%-([%w_]+)") do
    params[k] = v
    rebuilt[#rebuilt + 1] = "-" .. k .. "-" .. v
  end
  if table.concat(rebuilt) ~= rest then return nil, "username has a malformed targeting part" end
  local acct = p:gateway_account(tag)
  if not acct then return nil, "unknown proxy username" end
  if acct.proxy_password ~= pass then return nil, "wrong password" end
  if acct.disabled then return nil, "account disabled" end
  local pool = p:gateway_pool(acct)
  if not pool then return nil, "no balance left (top up the pool)" end
  local life = M.RESIFACTORY_MINUTES
  if params.sesstime then
    life = minutes(params.sesstime)
    if not life then return nil, "sesstime must be 1..1440 minutes" end
  end
  local country = params.country and params.country:upper()
  return { key = "resifactory:" .. acct.id .. ":" .. (country or "") .. ":" .. (params.state or ""),
    session = params.session, lifetime = life * 60, country = country,
    bill = function(bytes, target, requests) p:gateway_bill(acct, pool, bytes, target, requests or 0) end }
end

local DIALECTS = { unknownproxies = unknownproxies, oxylabs = oxylabs, resifactory = resifactory }

--- The credential a username and password are at provider p (a sandbox
--- provider module), or nil and why they are refused.
---@param p table  the provider (world.providers[name])
---@param user string
---@param pass string
---@return table|nil cred
---@return string|nil reason
function M.check(p, user, pass)
  if type(user) ~= "string" or user == "" then return nil, "no proxy credentials" end
  local cred, why = DIALECTS[p.name](p, user, pass or "")
  if cred then cred.provider = p.name end
  return cred, why
end

return M
