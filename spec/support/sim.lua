--- spec/support/sim.lua: the one harness specs use for the sandbox
--- (resi.sim) started in this process. It starts the sandbox, calls its
--- admin API with one return order (status, decoded body, response),
--- counts the requests a provider's port received, arms and clears faults,
--- moves the simulated clock, sets usage, and builds provider clients and
--- subprocess environments from the sandbox's accounts.
---
---   local sim = require("spec.support.sim").start { seed = 21, provider = "unknownproxies" }
---   local up = sim:client()                                  -- account 1, against the sandbox
---   sim:fault { route = "POST /resi/token/create", kind = "commit_lost" }
---   local before = sim:served()                              -- requests its port received
---   local status, state = sim:admin("GET", "/state")
---   sim:stop()
---
--- `provider` names the provider a spec is about (default unknownproxies):
--- admin calls go to its port (POST /_sim/usage without a provider means
--- that port's provider), and served, fault, client and account default
--- to it. The raw sandbox stays reachable as h.sim; h.urls, h.accounts and
--- h.world are its fields.
local http = require "resi.http"
local assert = require "luassert"
local resi_sim = require "resi.sim"

local M = {}

-- Each provider's definition (name, base path, URL variable) and port index.
local DEFS, INDEX = {}, {}
for i, def in ipairs(resi_sim.PROVIDERS) do DEFS[def.name], INDEX[def.name] = def, i end

-- The environment variables that carry each provider's account, in the
-- order h:env writes them, with the account field each takes.
local CREDENTIAL_VARS = {
  unknownproxies = { { "UNKNOWNPROXIES_USERNAME", "username" }, { "UNKNOWNPROXIES_PASSWORD", "password" } },
  oxylabs = { { "OXYLABS_USERNAME", "username" }, { "OXYLABS_PASSWORD", "password" } },
  resifactory = { { "RF_API_KEY", "api_key" } },
}

-- The account fields each provider's client takes (besides base_url).
local CLIENT_FIELDS = { unknownproxies = { "username", "password" }, oxylabs = { "username", "password" },
  resifactory = { "api_key" } }

---@class spec.sim
---@field sim resi.sim                     the sandbox itself
---@field urls table<string, string>       provider name -> base URL
---@field accounts table                   the accounts in use (generated from the seed, or given)
---@field world resi.sim.world             the simulated world: clock, config, providers
---@field provider string                  the provider the spec is about (the admin port's)
local H = {}
H.__index = H

-- Checks a provider name; the name.
local function known(name)
  assert(DEFS[name], "no sandbox provider " .. tostring(name))
  return name
end

--- Starts the sandbox in this process and returns its harness. opts are
--- resi.sim.start's (seed, accounts, speed, start, rate_window, ...) with
--- ports {0, 0, 0} and traffic false unless given, plus `provider`: the
--- provider the spec is about (default "unknownproxies"). Fails the spec
--- when the sandbox cannot start.
---@param opts? table
---@return spec.sim
function M.start(opts)
  local o = { ports = { 0, 0, 0 }, traffic = false }
  for k, v in pairs(opts or {}) do o[k] = v end
  local provider = known(o.provider or "unknownproxies")
  o.provider = nil
  local sim = assert(resi_sim.start(o))
  return setmetatable({ sim = sim, urls = sim.urls, accounts = sim.accounts, world = sim.world,
    provider = provider }, H)
end

--- The admin API's URL ("http://127.0.0.1:PORT/_sim") on a provider's port
--- (default the harness's), for raw requests (a body that is not JSON, curl).
---@param provider? string
---@return string
function H:admin_url(provider)
  local def = DEFS[known(provider or self.provider)]
  local url = self.urls[def.name]
  return url:sub(1, #url - #def.base) .. "/_sim"
end

--- One admin API call on the harness provider's port: method, a path under
--- /_sim ("/clock", "/state"), a body sent as JSON. Returns the status, the
--- decoded body (nil when not JSON) and the response.
---@param method string
---@param path string
---@param body? table
---@return integer status, any doc, table res
function H:admin(method, path, body)
  local res = assert(http.request { method = method, url = self:admin_url() .. path, json = body })
  return res.status, res:json(), res
end

--- GET /_sim/state (asserting 200): the clock, config and every provider's state.
---@return table
function H:state()
  local status, doc, res = self:admin("GET", "/state")
  assert.are.equal(200, status, res.body)
  return doc
end

--- The requests a provider's port (default the harness's) has received so
--- far; admin calls count on the harness's port, so measure across calls
--- to the provider only.
---@param provider? string
---@return integer
function H:served(provider)
  return self.sim.servers[INDEX[known(provider or self.provider)]]:stats().requests
end

--- Arms a fault (resi.sim.faults: provider, route, kind, count, status,
--- ms, after, retry_after) and asserts the 201; the armed rule. provider
--- defaults to the harness's; a rule for every provider goes through h:admin.
---@param rule table
---@return table
function H:fault(rule)
  local body = { provider = self.provider }
  for k, v in pairs(rule) do body[k] = v end
  local status, doc, res = self:admin("POST", "/faults", body)
  assert.are.equal(201, status, res.body)
  return doc
end

--- Clears the armed faults (every provider's) and asserts the 200; how many were cleared.
---@return integer
function H:clear_faults()
  local status, doc, res = self:admin("DELETE", "/faults")
  assert.are.equal(200, status, res.body)
  return doc.cleared
end

--- Moves the simulated clock on by `advance` seconds (POST /_sim/clock)
--- and asserts the 200; the answer {now, speed}.
---@param advance number
---@return table
function H:clock(advance)
  local status, doc, res = self:admin("POST", "/clock", { advance = advance })
  assert.are.equal(200, status, res.body)
  return doc
end

--- Sets usage (POST /_sim/usage: provider?, id or api_key, bytes, add_bytes,
--- gb, add_gb, balance, ...; see each provider's set_usage) and asserts the
--- 200; the changed token, sub-user or account as the answer shows it.
---@param fields table
---@return table
function H:usage(fields)
  local status, doc, res = self:admin("POST", "/usage", fields)
  assert.are.equal(200, status, res.body)
  return doc
end

--- The options a provider's client takes to reach the sandbox with one of
--- its accounts: base_url plus username and password (api_key for
--- resifactory) of account `overrides.account` (default 1); every other
--- field of overrides is added or replaces (password = "wrong", ratelimit = {...}).
---@param provider? string
---@param overrides? table
---@return table
function H:credentials(provider, overrides)
  provider = known(provider or self.provider)
  overrides = overrides or {}
  local acct = self.accounts[provider][overrides.account or 1]
  local opts = { base_url = self.urls[provider] }
  for _, field in ipairs(CLIENT_FIELDS[provider]) do opts[field] = acct[field] end
  for k, v in pairs(overrides) do
    if k ~= "account" then opts[k] = v end
  end
  return opts
end

--- The provider's own client (resi.providers.NAME.new) against the
--- sandbox; overrides as for h:credentials.
---@param provider? string
---@param overrides? table
function H:client(provider, overrides)
  provider = known(provider or self.provider)
  return require("resi.providers." .. provider).new(self:credentials(provider, overrides))
end

--- The provider through the common account model (resi.providers.open)
--- against the sandbox; overrides as for h:credentials.
---@param provider? string
---@param overrides? table
function H:account(provider, overrides)
  provider = known(provider or self.provider)
  return require("resi.providers").open(provider, self:credentials(provider, overrides))
end

--- The environment for a subprocess (spec.support.proc's opts.env): every
--- RESI_*_URL, then the first account of each provider in `names` (default
--- all three) as UNKNOWNPROXIES_USERNAME/PASSWORD, OXYLABS_USERNAME/PASSWORD
--- and RF_API_KEY. The variables of providers not named are set empty,
--- which removes them: an account in the outer environment is not used.
---@param names? string[]
---@return string[]
function H:env(names)
  local wanted = {}
  for _, name in ipairs(names or { "unknownproxies", "oxylabs", "resifactory" }) do wanted[known(name)] = true end
  local env = self.sim:exports()
  for _, line in ipairs(self.sim:gateway_exports()) do env[#env + 1] = line end
  for _, def in ipairs(resi_sim.PROVIDERS) do
    local acct = self.accounts[def.name] and self.accounts[def.name][1]
    for _, var in ipairs(CREDENTIAL_VARS[def.name]) do
      local value = wanted[def.name] and acct and acct[var[2]] or ""
      env[#env + 1] = var[1] .. "=" .. value
    end
  end
  return env
end

--- A provider's gateway address "127.0.0.1:PORT" (default the harness's).
---@param provider? string
---@return string
function H:gateway(provider)
  return self.sim.gateway_addresses[known(provider or self.provider)]
end

--- A proxy URL through a provider's gateway: scheme ("http", "socks5h",
--- ...; default http), proxy username and password (percent-encoded).
---@param user string
---@param pass string
---@param scheme? string
---@param provider? string
---@return string
function H:proxy_url(user, pass, scheme, provider)
  return ("%s://%s:%s@%s"):format(scheme or "http", http.escape(user), http.escape(pass), self:gateway(provider))
end

--- Stops the sandbox: its servers and the traffic generator.
function H:stop()
  self.sim:stop()
end

return M
