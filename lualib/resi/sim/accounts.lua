--- resi.sim.accounts: the sandbox's accounts: generated from a seed, or read
--- from `--accounts FILE` (JSON) and checked, each problem named by its path
--- in the file (e.g. `resifactory[1].api_key`).
---
--- Shape: {"unknownproxies": [{"username", "password", "tokens"?: [...]}],
---         "oxylabs": [{"username", "password", "user_id", "sub_users"?: [...]}],
---         "resifactory": [{"api_key", "scopes"?, "balances"?, "disabled"?, "username"?}],
---         "pools": [{"id", "label", "host", "port"?, "proxy_types"}]}
--- `tokens` and `sub_users` are optional seeds created at start (the
--- provider's own field names plus `dataUsage` / `traffic`).
local json = require "resi.json"

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
  local GB = 1000000000
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

-- Checks that t[field] is a non-empty string; the message names where.
local function need_string(t, field, where)
  if type(t[field]) ~= "string" or t[field] == "" then
    return false, ("%s.%s must be a non-empty string"):format(where, field)
  end
  return true
end

-- Checks one provider's list of accounts with the given required fields.
local function check_list(accounts, name, fields)
  local list = accounts[name]
  if list == nil then return true end
  if type(list) ~= "table" then return false, name .. " must be an array of accounts" end
  for i, a in ipairs(list) do
    local where = ("%s[%d]"):format(name, i)
    if type(a) ~= "table" then return false, where .. " must be an object" end
    for _, f in ipairs(fields) do
      local ok, err = need_string(a, f, where)
      if not ok then return false, err end
    end
  end
  return true
end

--- Checks an accounts table; true, or false and a message naming the field.
function M.check(accounts)
  if type(accounts) ~= "table" then return false, "accounts must be a JSON object" end
  for key in pairs(accounts) do
    if key ~= "unknownproxies" and key ~= "oxylabs" and key ~= "resifactory" and key ~= "pools" then
      return false, ("unknown key %q (expected unknownproxies, oxylabs, resifactory, pools)"):format(tostring(key))
    end
  end
  local checks = { { "unknownproxies", { "username", "password" } }, { "oxylabs", { "username", "password", "user_id" } },
    { "resifactory", { "api_key" } }, { "pools", { "id", "host" } } }
  for _, c in ipairs(checks) do
    local ok, err = check_list(accounts, c[1], c[2])
    if not ok then return false, err end
  end
  for i, a in ipairs(accounts.resifactory or {}) do
    local where = ("resifactory[%d]"):format(i)
    if not a.api_key:match("^rf_live_[%w_%-]+$") then return false, where .. ".api_key must start with rf_live_" end
    if a.scopes ~= nil and type(a.scopes) ~= "table" then return false, where .. ".scopes must be an array of scope names" end
    if a.balances ~= nil and type(a.balances) ~= "table" then return false, where .. ".balances must be an object of pool id -> GB" end
    for pool, gb in pairs(a.balances or {}) do
      if type(gb) ~= "number" or gb < 0 then return false, ("%s.balances.%s must be a non-negative number of GB"):format(where, pool) end
    end
  end
  for i, p in ipairs(accounts.pools or {}) do
    if p.proxy_types ~= nil and type(p.proxy_types) ~= "table" then
      return false, ("pools[%d].proxy_types must be an array"):format(i)
    end
  end
  return true
end

--- Reads and checks an accounts file; the table, or nil and a message that
--- names the file and the field.
function M.load(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot read accounts file: " .. err end
  local text = f:read("a")
  f:close()
  local accounts, jerr = json.safe_decode(text)
  if jerr then return nil, path .. ": " .. jerr end
  local ok, cerr = M.check(accounts)
  if not ok then return nil, path .. ": " .. cerr end
  accounts.pools = accounts.pools or M.default_pools()
  return accounts
end

return M
