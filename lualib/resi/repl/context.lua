--- resi.repl.context: what the REPL has ready. `up`, `oxy` and `rf` are
--- provider clients bound on first use, built from the environment's
--- credentials (resi.credentials: NAME, NAME_FILE, $CREDENTIALS_DIRECTORY);
--- the first use without credentials raises a message naming the missing
--- variable. `resi`, `http`, `json`, `providers`, `proxylist`, `ratelimit`
--- (and `help`) are there too; modules load on first use. Completion
--- reads stand-ins for them (resi.repl.complete.lazy) that load a module,
--- or a client's class, the first time a completion looks inside one
--- (`rf:ba<Tab>`, `http.<Tab>`): nothing is loaded just to be at the prompt
--- (resi.http alone, with libcurl and TLS, is some 8 MiB of RSS). With the
--- sandbox (start_sim), the clients and the environment variables point at
--- resi.sim started in this process.
local credentials = require "resi.credentials"
local complete = require "resi.repl.complete"

local M = {}

--- Modules bound under these names.
M.MODULES = { http = "resi.http", json = "resi.json", providers = "resi.providers", proxylist = "resi.proxylist",
  ratelimit = "resi.ratelimit" }

--- Clients bound lazily: module, the environment variables it needs, and
--- the new() options each gives.
M.CLIENTS = {
  up = { module = "resi.providers.unknownproxies", label = "UnknownProxies",
    vars = { { "UNKNOWNPROXIES_USERNAME", "username" }, { "UNKNOWNPROXIES_PASSWORD", "password" } } },
  oxy = { module = "resi.providers.oxylabs", label = "Oxylabs",
    vars = { { "OXYLABS_USERNAME", "username" }, { "OXYLABS_PASSWORD", "password" } } },
  rf = { module = "resi.providers.resifactory", label = "ResiFactory", vars = { { "RF_API_KEY", "api_key" } } },
}

--- Builds the client bound to name (up, oxy, rf) from credentials; raises,
--- naming the missing variables, when there are none.
---@param name string
---@param level? integer
---@return table client
function M.client(name, level)
  local def = M.CLIENTS[name]
  local opts, missing = {}, {}
  for _, v in ipairs(def.vars) do
    local value = credentials.get(v[1])
    if value then opts[v[2]] = value else missing[#missing + 1] = v[1] end
  end
  if #missing > 0 then
    error(("%s: no %s credentials: set %s (or %s_FILE) in the environment, or start `resi repl --sim` for the sandbox")
      :format(name, def.label, table.concat(missing, " and "), missing[1]), level or 2)
  end
  return require(def.module).new(opts)
end

-- The __index of the session environment: modules and clients bound on
-- first use, then base (usually _G).
local function binder(base)
  return function(env, k)
    local mod = M.MODULES[k]
    if mod then
      local v = require(mod)
      rawset(env, k, v)
      return v
    end
    if M.CLIENTS[k] then
      local v = M.client(k, 3)
      rawset(env, k, v)
      return v
    end
    return base[k]
  end
end

--- Makes env the REPL's environment: the bindings above, falling back to
--- base (default _G). Completion reads the stand-ins in its metatable's
--- __complete (modules, client classes: loaded, or loaded on first need)
--- and never runs the binder.
---@param env table
---@param base? table
---@return table env
function M.install(env, base)
  base = base or _G
  local mt = getmetatable(env) or {}
  mt.__index = binder(base)
  mt.__complete = setmetatable({}, { __index = base })
  setmetatable(env, mt)
  M.refresh_complete(env)
  return env
end

-- What completion reads for a client: an object whose __index is the
-- client class of the loaded module m (methods, no fields), or nil.
local function class_standin(m)
  if type(m) ~= "table" or type(m.Client) ~= "table" then return nil end
  return setmetatable({}, { __index = m.Client })
end

-- The completion stand-in of module mod: the module once loaded, else a
-- lazy stand-in that requires it when a completion looks inside.
local function module_standin(mod)
  return package.loaded[mod] or complete.lazy(function() return require(mod) end)
end

-- The completion stand-in of a client: its class once loaded, else a lazy
-- stand-in that requires its module (no client is built, no request made).
local function client_standin(def)
  return class_standin(package.loaded[def.module])
    or complete.lazy(function() return class_standin(require(def.module)) end)
end

--- Fills the completion stand-ins: what is loaded now, lazy stand-ins for
--- the rest (nothing is loaded here).
---@param env table
function M.refresh_complete(env)
  local c = rawget(getmetatable(env), "__complete")
  for name, mod in pairs(M.MODULES) do c[name] = module_standin(mod) end
  for name, def in pairs(M.CLIENTS) do c[name] = client_standin(def) end
end

--- Loads the preloaded modules and the client classes now (not the
--- clients: they need credentials). The CLI does not: completion loads
--- them on first need; benches and specs that want them loaded call this.
---@param env table
function M.preload(env)
  for name, mod in pairs(M.MODULES) do
    if rawget(env, name) == nil then rawset(env, name, require(mod)) end
  end
  for _, def in pairs(M.CLIENTS) do require(def.module) end
  M.refresh_complete(env)
end

--- Starts the provider sandbox in this process (free loopback ports,
--- generated accounts) and points everything at it: the RESI_*_URL and
--- credential variables are set (so new clients and resi.providers use it
--- too) and bound clients are dropped. Returns the sandbox, or nil and why.
---@param env table
---@param opts? table resi.sim.start options (seed, speed, ...)
---@return table|nil sim
---@return string|nil err
function M.start_sim(env, opts)
  local o = { ports = { 0, 0, 0 } }
  for k, v in pairs(opts or {}) do o[k] = v end
  local sim, err = require("resi.sim").start(o)
  if not sim then return nil, err end
  local uv = require "luv"
  local a = sim.accounts
  local values = { UNKNOWNPROXIES_USERNAME = a.unknownproxies[1].username,
    UNKNOWNPROXIES_PASSWORD = a.unknownproxies[1].password, OXYLABS_USERNAME = a.oxylabs[1].username,
    OXYLABS_PASSWORD = a.oxylabs[1].password, RF_API_KEY = a.resifactory[1].api_key }
  local saved = {}
  for _, def in ipairs(require("resi.sim").PROVIDERS) do values[def.env] = sim.urls[def.name] end
  for k, v in pairs(values) do
    saved[k] = os.getenv(k) or false
    uv.os_setenv(k, v)
  end
  sim.repl_saved_env = saved
  for name in pairs(M.CLIENTS) do rawset(env, name, nil) end
  return sim
end

--- Stops a sandbox start_sim started and puts the environment variables
--- it set back as they were.
---@param sim table
function M.stop_sim(sim)
  sim:stop()
  local uv = require "luv"
  for k, v in pairs(sim.repl_saved_env or {}) do
    if v then uv.os_setenv(k, v) else uv.os_unsetenv(k) end
  end
  sim.repl_saved_env = nil
end

--- The banner line about the sandbox.
---@param sim table
---@return string
function M.sim_banner(sim)
  return ("sandbox (resi sim) running in this process: up -> %s, oxy -> %s, rf -> %s (generated accounts)")
    :format(sim.urls.unknownproxies, sim.urls.oxylabs, sim.urls.resifactory)
end

return M
