--- resi.providers.gateways: where each provider's proxy gateway is and how
--- its proxy usernames are written: the one source of truth for
--- acct.gateway, acct:proxy_entry and resi.proxylist.sticky. No HTTP here,
--- so proxy-list code can read it without loading the API clients.
---
--- * oxylabs: pr.oxylabs.io:7777, username "customer-" .. the sub-user's
---   (providers.md §2.5).
--- * unknownproxies: <pool>.reserve2.resi.unknownproxies.com at the pool's
---   port (providers.md §1.6: seen in public code, nothing documented; the
---   older us.reserve.unknownproxies.com:10000 is not used). The default
---   pool is tickets-us-s; give another pool, or host and port, for others.
--- * resifactory: premium.resifactory.net:7777 (providers.md §3; generated
---   lines carry their own host, this is only the default).
local M = {}

--- UnknownProxies gateway pools resi knows, with their ports. Add to it
--- for a pool of your own, or give host and port.
M.unknownproxies_pools = { ["tickets-us-s"] = 14004, ["tickets-fr-s"] = 14018 }

--- The pool an UnknownProxies gateway uses when none is named.
M.UNKNOWNPROXIES_POOL = "tickets-us-s"

--- The fixed gateways.
M.oxylabs = { host = "pr.oxylabs.io", port = 7777 }
M.resifactory = { host = "premium.resifactory.net", port = 7777 }

--- The names of the known UnknownProxies pools, sorted.
---@return string[]
function M.pool_names()
  local names = {}
  for name in pairs(M.unknownproxies_pools) do names[#names + 1] = name end
  table.sort(names)
  return names
end

--- The host and port of an UnknownProxies pool's gateway, or nil and why.
---@param pool string
---@return string|nil host
---@return integer|string port_or_err
function M.unknownproxies_pool(pool)
  local port = M.unknownproxies_pools[pool]
  if not port then
    return nil, ("pool %q is not a known unknownproxies pool (known: %s; for another gateway give host and port)")
      :format(tostring(pool), table.concat(M.pool_names(), ", "))
  end
  return pool .. ".reserve2.resi.unknownproxies.com", port
end

---@class resi.providers.gateway
---@field host string
---@field port integer

--- A provider's gateway: `spec` is "host:port", or {host=, port=}, or for
--- UnknownProxies {pool=}; nil gives the default. Raises naming what is wrong.
---@param provider "unknownproxies"|"oxylabs"|"resifactory"
---@param spec? string|{host?: string, port?: integer, pool?: string}
---@return resi.providers.gateway
function M.of(provider, spec)
  if type(spec) == "string" then
    local host, port = spec:match("^(.+):(%d+)$")
    port = math.tointeger(tonumber(port))
    if not host or not port or port < 1 or port > 65535 then
      error(("gateway %q: expected HOST:PORT"):format(spec), 2)
    end
    return { host = host, port = port }
  end
  spec = spec or {}
  if spec.host then
    local port = math.tointeger(spec.port) or (M[provider] and M[provider].port)
    if type(spec.host) ~= "string" or spec.host == "" or not port or port < 1 or port > 65535 then
      error("gateway: host must be a name and port 1..65535", 2)
    end
    return { host = spec.host, port = port }
  end
  if provider == "unknownproxies" then
    local host, port = M.unknownproxies_pool(spec.pool or M.UNKNOWNPROXIES_POOL)
    if not host then error(port, 2) end
    return { host = host, port = port }
  end
  local g = M[provider]
  if type(g) ~= "table" or not g.host then error("no gateway is known for provider " .. tostring(provider), 2) end
  return { host = g.host, port = g.port }
end

--- The proxy username a customer uses for a provider's proxy user (an
--- Oxylabs sub-user is "customer-NAME" at the gateway).
---@param provider string
---@param username string
---@return string
function M.proxy_username(provider, username)
  if provider == "oxylabs" then return "customer-" .. username end
  return username
end

return M
