--- resi.providers.accounts: which provider accounts a workflow works on:
--- from an accounts file (the JSON shape `resi sim --accounts` reads, so
--- one file can serve both, as long as it leaves out gateway and pool,
--- which the sandbox does not take) or, without one, one account per provider whose
--- credentials are set in the environment. A file is checked whole: every
--- misspelled or missing field is named, and a wrong field is never a
--- silent fall-back to the environment's account.
---
---   {"unknownproxies": [{"username", "password", "base_url"?, "gateway"?}],
---    "oxylabs": [{"username", "password", "base_url"?, "gateway"?}],
---    "resifactory": [{"api_key", "base_url"?}]}
local fs = require "resi.fs"
local json = require "resi.json"
local secret = require "resi.secret"

local M = {}

M.NAMES = { "unknownproxies", "oxylabs", "resifactory" }

-- The fields an entry may have, per provider: the client's own (required
-- ones first), the account model's (gateway, pool) and those `resi sim
-- --accounts` reads. Anything else is a misspelling.
M.FIELDS = {
  unknownproxies = { required = { "username", "password" }, optional = { "base_url", "gateway", "pool", "tokens" } },
  oxylabs = { required = { "username", "password" }, optional = { "base_url", "gateway", "user_id", "sub_users" } },
  resifactory = { required = { "api_key" }, optional = { "base_url", "username", "scopes", "balances", "disabled" } },
}
local TOP_LEVEL = { unknownproxies = true, oxylabs = true, resifactory = true, pools = true }
-- Fields only the sandbox reads: not passed to the client.
local SIM_ONLY = { tokens = true, user_id = true, sub_users = true, scopes = true, balances = true, disabled = true }

---@class resi.providers.account_spec
---@field name "unknownproxies"|"oxylabs"|"resifactory"
---@field label string  the username, or the masked API key
---@field opts? table   providers.open's options (nil: the environment's)

-- The problems of one accounts entry (path like "oxylabs[2]"), as messages.
local function entry_problems(name, path, a)
  if type(a) ~= "table" or a[1] ~= nil then return { path .. " must be an object" } end
  local problems, known = {}, {}
  local f = M.FIELDS[name]
  for _, k in ipairs(f.required) do
    known[k] = true
    if type(a[k]) ~= "string" or a[k] == "" then problems[#problems + 1] = ("%s.%s is required (a string)"):format(path, k) end
  end
  for _, k in ipairs(f.optional) do known[k] = true end
  for _, k in ipairs({ "base_url", "gateway", "pool" }) do
    if a[k] ~= nil and (type(a[k]) ~= "string" or a[k] == "") then
      problems[#problems + 1] = ("%s.%s must be a non-empty string"):format(path, k)
    end
  end
  if #problems == 0 and (a.gateway or a.pool) then
    local ok, err = pcall(require("resi.providers.gateways").of, name, a.gateway or { pool = a.pool })
    if not ok then problems[#problems + 1] = ("%s.%s: %s"):format(path, a.gateway and "gateway" or "pool", tostring(err)) end
  end
  local unknown = {}
  for k in pairs(a) do if not known[k] then unknown[#unknown + 1] = tostring(k) end end
  table.sort(unknown)
  for _, k in ipairs(unknown) do
    problems[#problems + 1] = ("%s.%s: unknown field (expected %s, %s)"):format(path, k, table.concat(f.required, ", "),
      table.concat(f.optional, ", "))
  end
  return problems
end

-- providers.open's options of a checked entry (the sandbox's fields left out).
local function open_opts(name, a)
  local o = {}
  for k, v in pairs(a) do
    if not SIM_ONLY[k] and not (name == "resifactory" and k == "username") then o[k] = v end
  end
  return o
end

-- The checked entries of a decoded accounts document, and the problems.
local function entries(doc, problems)
  local out = {}
  for k in pairs(doc) do
    if not TOP_LEVEL[k] then
      problems[#problems + 1] = ("%s: unknown key (expected %s)"):format(tostring(k), table.concat(M.NAMES, ", "))
    end
  end
  for _, name in ipairs(M.NAMES) do
    local list = doc[name]
    if list ~= nil and (type(list) ~= "table" or (next(list) ~= nil and list[1] == nil)) then
      problems[#problems + 1] = name .. " must be an array of accounts"
    else
      for i, a in ipairs(list or {}) do
        local mine = entry_problems(name, ("%s[%d]"):format(name, i), a)
        table.move(mine, 1, #mine, #problems + 1, problems)
        if #mine == 0 then
          out[#out + 1] = { name = name, opts = open_opts(name, a), label = a.api_key and ("key " .. secret.mask(a.api_key))
            or a.username }
        end
      end
    end
  end
  return out
end

--- Reads and checks an accounts file. Returns the account specs, or nil
--- and every problem as one message ("FILE: path: cause" per line).
---@param path string
---@return resi.providers.account_spec[]|nil specs
---@return string|nil err
function M.load(path)
  local text, err = fs.read(path)
  if not text then return nil, "cannot read " .. path .. ": " .. tostring(err) end
  local doc, jerr = json.safe_decode(text)
  if type(doc) ~= "table" or doc[1] ~= nil or (next(doc) == nil and text:match("^%s*%[")) then
    return nil, ("%s: %s"):format(path, doc == nil and ("not JSON: " .. tostring(jerr)) or "must be a JSON object")
  end
  local problems = {}
  local out = entries(doc, problems)
  if #problems > 0 then return nil, path .. ": " .. table.concat(problems, "\n" .. path .. ": ") end
  return out
end

-- The environment variable that names each provider's account.
M.ENV = { unknownproxies = "UNKNOWNPROXIES_USERNAME", oxylabs = "OXYLABS_USERNAME", resifactory = "RF_API_KEY" }

--- One account per provider whose credentials are set in the environment
--- (or NAME_FILE, or $CREDENTIALS_DIRECTORY: resi.credentials).
---@return resi.providers.account_spec[]
function M.from_env()
  local out, get = {}, require("resi.credentials").get
  for _, name in ipairs(M.NAMES) do
    local v = get(M.ENV[name])
    if v then out[#out + 1] = { name = name, label = name == "resifactory" and ("key " .. secret.mask(v)) or v } end
  end
  return out
end

--- The accounts file's specs when path is given, else the environment's;
--- `names` (a list) keeps only those providers. Returns nil, err for a bad
--- file or an unknown provider name.
---@param path? string
---@param names? string[]
---@return resi.providers.account_spec[]|nil specs
---@return string|nil err
function M.select(path, names)
  local known = {}
  for _, n in ipairs(M.NAMES) do known[n] = true end
  local wanted = {}
  for _, n in ipairs(names or {}) do
    if not known[n] then return nil, ("unknown provider %q (known: %s)"):format(n, table.concat(M.NAMES, ", ")) end
    wanted[n] = true
  end
  local specs, err
  if path then specs, err = M.load(path) else specs = M.from_env() end
  if not specs then return nil, err end
  local out = {}
  for _, s in ipairs(specs) do
    if next(wanted) == nil or wanted[s.name] then out[#out + 1] = s end
  end
  return out
end

return M
