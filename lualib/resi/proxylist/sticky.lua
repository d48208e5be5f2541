--- resi.proxylist.sticky: sticky-session proxy lists for provider username
--- dialects. Each entry gets its own random session id, unique in the list,
--- drawn from the dialect's character set at the dialect's length, with the
--- lifetime checked against the dialect's limits.
---
--- Dialects (see shared/reference/providers.md §1.6, §2.5 and
--- anchors-ecosystem.md §3.5; where the docs are silent the choice is ours
--- and written here):
---
--- Gateways and username prefixes come from resi.providers.gateways.
---
--- * oxylabs: host pr.oxylabs.io:7777, username
---   customer-USER[-cc-CC][-city-CITY][-st-us_STATE]-sessid-ID[-sesstime-MIN],
---   password the sub-user's. Country upper case, city and state lower case
---   with spaces as "_"; values may not hold "-" (the separator). Session id:
---   12 characters [a-z0-9] (docs: "alphanumeric", no length given: 12 keeps
---   ids collision-free and readable). minutes: 1..1440 (sesstime), omitted
---   = the provider's default (10 minutes).
--- * unknownproxies: host <pool>.reserve2.resi.unknownproxies.com, port of
---   the pool, username the token's, password the token's + "-" + 9 digits
---   (the session, as observed in public code; nothing is documented). The
---   pool must be one of M.unknownproxies_pools, the gateways seen in public
---   code with their ports (providers.md §1.6); port defaults to the pool's.
---   For a gateway not in that table give host and port instead of pool. No
---   lifetime parameter is known, so minutes is refused rather than
---   silently ignored.
---
--- Credentials are always the caller's: the proxy user (an Oxylabs
--- sub-user, an UnknownProxies token), never the account's API login, and
--- never read from the environment. A list is handed to customers; the API
--- login would give them the whole account. Every missing required option
--- is named in one error, and an option the dialect does not know is an
--- error, not silently ignored.
--- * template: username (and optionally password) from a template with
---   {session}, {minutes} and any targeting field ({country}, {city}, ...,
---   or opts.vars); charset "alnum", "lower", "digits", "hex" or a literal
---   set; length (default 8); min_minutes/max_minutes for the lifetime.
local core = require "resi.proxylist_core"
local gateways = require "resi.providers.gateways"

local M = {}

local CHARSETS = {
  alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
  lower = "abcdefghijklmnopqrstuvwxyz0123456789",
  digits = "0123456789",
  hex = "0123456789abcdef",
}

local function bad(msg) error("resi.proxylist.sticky: " .. msg, 0) end

local UP_NO_MINUTES = "unknownproxies documents no session lifetime parameter: leave minutes out"

--- UnknownProxies gateway pools resi knows, with their ports: the same
--- table as resi.providers.gateways' (add to either).
M.unknownproxies_pools = gateways.unknownproxies_pools

--- The options of each dialect: required ones, every one it takes
--- (provider and sessions are common to all) and ones it refuses with a
--- reason. template takes any option (each is a {name} the template can use).
M.options = {
  oxylabs = { required = { "username", "password" }, who = "a sub-user's",
    takes = { "username", "password", "minutes", "country", "city", "state", "host", "port", "seed", "scheme" } },
  unknownproxies = { required = { "username", "password" }, who = "the token's",
    takes = { "username", "password", "pool", "port", "host", "seed", "scheme" }, refuses = { minutes = UP_NO_MINUTES } },
  template = { required = { "template", "host", "port" }, any = true },
}

--- The names of the known UnknownProxies pools, sorted.
M.pool_names = gateways.pool_names

-- Joins names as "a", "a and b" or "a, b and c".
local function and_list(names)
  if #names == 1 then return names[1] end
  return table.concat(names, ", ", 1, #names - 1) .. " and " .. names[#names]
end

-- Raises naming every required option the dialect misses, and any option
-- it does not take.
local function check_present(opts, provider)
  local spec = M.options[provider]
  if not spec then return end
  local missing = {}
  if opts.sessions == nil then missing[1] = "sessions" end
  for _, name in ipairs(spec.required) do
    if opts[name] == nil then missing[#missing + 1] = name end
  end
  local no_pool = provider == "unknownproxies" and opts.pool == nil and opts.host == nil
  if no_pool then missing[#missing + 1] = "pool" end
  if #missing > 0 then
    local notes = {}
    if spec.who and (opts.username == nil or opts.password == nil) then
      notes[1] = ("username and password: %s, never the account's API login"):format(spec.who)
    end
    if no_pool then notes[#notes + 1] = "pool: " .. table.concat(M.pool_names(), " or ") .. ", or give host and port" end
    bad(and_list(missing) .. (#missing == 1 and " is" or " are") .. " required"
      .. (#notes > 0 and (" (" .. table.concat(notes, "; ") .. ")") or ""))
  end
  for name, why in pairs(spec.refuses or {}) do
    if opts[name] ~= nil then bad(why) end
  end
  if spec.any then return end
  local takes = { provider = true, sessions = true }
  for _, name in ipairs(spec.takes) do takes[name] = true end
  local unknown = {}
  for k in pairs(opts) do
    if not takes[k] then unknown[#unknown + 1] = tostring(k) end
  end
  table.sort(unknown)
  if #unknown > 0 then
    bad(("%s does not take %s (it takes %s)"):format(provider, and_list(unknown), table.concat(spec.takes, ", ")))
  end
end

-- A source of random integers in [0, n): the kernel's generator, or a
-- seeded splitmix64 when a seed is given (reproducible lists for tests).
local function random_source(seed)
  if seed ~= nil then
    if math.type(seed) ~= "integer" then bad("seed must be an integer") end
    local s = seed
    return function(n)
      s = s + 0x9E3779B97F4A7C15
      local z = s
      z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
      z = (z ~ (z >> 27)) * 0x94D049BB133111EB
      z = z ~ (z >> 31)
      return (z & 0x7fffffffffffffff) % n
    end
  end
  local pool, pos = "", 1
  return function(n)
    -- one byte per draw, with rejection so every character is equally likely
    local limit = 256 - 256 % n
    while true do
      if pos > #pool then pool, pos = core.random_bytes(4096), 1 end
      local b = pool:byte(pos)
      pos = pos + 1
      if b < limit then return b % n end
    end
  end
end

-- count unique ids of `length` characters from `charset`.
local function session_ids(count, charset, length, seed, first_nonzero)
  local space = (#charset) ^ length
  if space < count * 4 then
    bad(("%d sessions do not fit in %d-character ids from %d characters (need a longer id)")
      :format(count, length, #charset))
  end
  local rand = random_source(seed)
  local seen, ids = {}, {}
  while #ids < count do
    local chars = {}
    for i = 1, length do
      local k = (i == 1 and first_nonzero) and 1 + rand(#charset - 1) or rand(#charset)
      chars[i] = charset:sub(k + 1, k + 1)
    end
    local id = table.concat(chars)
    if not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
    end
  end
  return ids
end

-- An option's value, or nil when it is absent and optional.
local function given(opts, name, required)
  local v = opts[name]
  if v == nil and required then bad(name .. " is required") end
  return v
end

-- Checks an integer option in a range; returns it (nil when absent and optional).
local function int_opt(opts, name, lo, hi, required)
  local v = given(opts, name, required)
  if v == nil then return nil end
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
    bad(("%s must be an integer, got %s"):format(name, tostring(v)))
  end
  v = math.tointeger(v)
  if v < lo or (hi and v > hi) then
    bad(("%s must be %d..%s, got %d"):format(name, lo, hi and tostring(hi) or "", v))
  end
  return v
end

-- Checks a string option against a Lua pattern; returns it.
local function str_opt(opts, name, pattern, rule, required)
  local v = given(opts, name, required)
  if v == nil then return nil end
  if type(v) ~= "string" or not v:match(pattern) then bad(("%s must be %s"):format(name, rule)) end
  return v
end

-- A targeting value in Oxylabs' style: lower case, spaces as "_", no "-".
local function place(opts, name)
  local v = opts[name]
  if v == nil then return nil end
  if type(v) ~= "string" then bad(name .. " must be a string") end
  v = v:lower():gsub("%s+", "_")
  if not v:match("^[%w_]+$") then
    bad(("%s %q may hold letters, digits, spaces and '_' only ('-' separates parameters)"):format(name, opts[name]))
  end
  return v
end

local dialects = {}

dialects.oxylabs = function(opts, count)
  local user = str_opt(opts, "username", "^[%w_]+$", "letters, digits and '_' (an Oxylabs sub-user name)", true)
  local pass = str_opt(opts, "password", "^.+$", "a non-empty string", true)
  local minutes = int_opt(opts, "minutes", 1, 1440)
  local cc = str_opt(opts, "country", "^%a%a$", "a two-letter ISO 3166-1 code")
  local city, state = place(opts, "city"), place(opts, "state")
  if state and not state:match("^us_") then state = "us_" .. state end
  if state and cc and cc:lower() ~= "us" then bad("state targeting works with country us only") end
  local prefix = { gateways.proxy_username("oxylabs", user) }
  if cc then prefix[#prefix + 1] = "-cc-" .. cc:upper() end
  if city then prefix[#prefix + 1] = "-city-" .. city end
  if state then prefix[#prefix + 1] = "-st-" .. state end
  prefix = table.concat(prefix)
  local ids = session_ids(count, CHARSETS.lower, 12, opts.seed)
  local entries = {}
  for i, id in ipairs(ids) do
    entries[i] = {
      user = prefix .. "-sessid-" .. id .. (minutes and ("-sesstime-" .. minutes) or ""),
      pass = pass,
      host = opts.host or gateways.oxylabs.host,
      port = opts.port or gateways.oxylabs.port,
      scheme = opts.scheme,
    }
  end
  return entries
end

-- The gateway host and port of an UnknownProxies list: the pool's, or the
-- host and port given for a gateway resi does not know.
local function up_gateway(opts)
  local port = int_opt(opts, "port", 1, 65535, opts.host ~= nil)
  if opts.host ~= nil then
    if type(opts.host) ~= "string" or opts.host == "" then bad("host must be a host name") end
    return opts.host, port
  end
  local pool = str_opt(opts, "pool", "^[%w][%w-]*$", "a pool id such as tickets-us-s", true):lower()
  local host, known = gateways.unknownproxies_pool(pool)
  if not host then bad(known) end
  return host, port or known
end

dialects.unknownproxies = function(opts, count)
  local user = str_opt(opts, "username", "^%w+$", "letters and digits (the token's username)", true)
  local pass = str_opt(opts, "password", "^%w+$", "letters and digits (the token's password)", true)
  local host, port = up_gateway(opts)
  local ids = session_ids(count, CHARSETS.digits, 9, opts.seed, true)
  local entries = {}
  for i, id in ipairs(ids) do
    entries[i] = {
      user = user,
      pass = pass .. "-" .. id,
      host = host,
      port = port,
      scheme = opts.scheme,
    }
  end
  return entries
end

-- Fills {name} placeholders from vars; raises on an unknown one.
local function expand(template, vars, what)
  return (template:gsub("{([%w_]+)}", function(name)
    local v = vars[name]
    if v == nil then bad(("%s uses {%s}, which has no value"):format(what, name)) end
    return tostring(v)
  end))
end

dialects.template = function(opts, count)
  local template = str_opt(opts, "template", "{session}", "a username template containing {session}", true)
  local charset = opts.charset or "alnum"
  if type(charset) ~= "string" or charset == "" then bad("charset must be a name or a set of characters") end
  charset = CHARSETS[charset] or charset
  local length = int_opt(opts, "length", 1, 64) or 8
  local lo = int_opt(opts, "min_minutes", 0) or 1
  local hi = int_opt(opts, "max_minutes", lo)
  local minutes = opts.minutes ~= nil and int_opt(opts, "minutes", lo, hi) or nil
  local port = int_opt(opts, "port", 1, 65535, true)
  if type(opts.host) ~= "string" then bad("host is required") end
  local vars = {}
  for k, v in pairs(opts) do
    if type(v) == "string" or math.type(v) == "integer" then vars[k] = v end
  end
  for k, v in pairs(opts.vars or {}) do vars[k] = v end
  vars.minutes = minutes
  local ids = session_ids(count, charset, length, opts.seed)
  local entries = {}
  for i, id in ipairs(ids) do
    vars.session = id
    local pass = opts.password
    if opts.password_template then pass = expand(opts.password_template, vars, "password_template") end
    entries[i] = {
      user = expand(template, vars, "template"),
      pass = pass,
      host = opts.host,
      port = port,
      scheme = opts.scheme,
    }
  end
  return entries
end

dialects.resifactory = function()
  bad("resifactory makes sticky sessions itself: use rf:generate{proxyType='sticky', sessionDuration=...}")
end

--- Reads an Oxylabs username (customer-USER[-KEY-VALUE]...) into
--- {username=, params={{key, value}, ...}} in order, or nil when it is not
--- one. Keys seen in the docs: cc, city, st, sessid, sesstime.
---@param user string
---@return table|nil
function M.parse_oxylabs(user)
  if type(user) ~= "string" then return nil end
  local name, rest = user:match("^customer%-([%w_]+)(.*)$")
  if not name then return nil end
  local params = {}
  for k, v in rest:gmatch("%-([%w_]+)%-([%w_]+)") do params[#params + 1] = { k, v } end
  -- gmatch skips what does not match: the pairs must spell the whole username
  local rebuilt = { "customer-", name }
  for _, p in ipairs(params) do rebuilt[#rebuilt + 1] = "-" .. p[1] .. "-" .. p[2] end
  if table.concat(rebuilt) ~= user then return nil end
  return { username = name, params = params }
end

-- The 9-digit session suffix of an UnknownProxies session password, or nil.
local function up_session(e)
  if not (e.host and e.host:find("unknownproxies", 1, true) and e.pass) then return nil end
  return e.pass:match("^(%w+)%-(%d%d%d%d%d%d%d%d%d)$")
end

--- A copy of list in which every sticky entry has a new session id, unique
--- in the list: Oxylabs usernames with a sessid (and their sesstime set to
--- opts.minutes when given, 1..1440), UnknownProxies session passwords
--- (PASS-9 digits on an unknownproxies host). Other entries are copied
--- unchanged. Returns the new list and how many entries got a new session.
---@param list resi.proxylist.list
---@param opts? {minutes?: integer, seed?: integer}
---@return resi.proxylist.list list
---@return integer refreshed
function M.refresh(list, opts)
  opts = opts or {}
  local minutes = int_opt(opts, "minutes", 1, 1440)
  local entries, oxy, up = {}, {}, {}
  for i = 1, #list do
    local e = list[i]
    entries[i] = e
    local parsed = M.parse_oxylabs(e.user)
    if parsed then
      for _, p in ipairs(parsed.params) do
        if p[1] == "sessid" then
          oxy[#oxy + 1] = { i = i, parsed = parsed }
          break
        end
      end
    else
      local base = up_session(e)
      if base then up[#up + 1] = { i = i, base = base } end
    end
  end
  if #up > 0 and minutes then bad(UP_NO_MINUTES) end
  local oxy_ids = session_ids(#oxy, CHARSETS.lower, 12, opts.seed)
  for k, o in ipairs(oxy) do
    local parts, has_time = { "customer-", o.parsed.username }, false
    for _, p in ipairs(o.parsed.params) do
      local key, value = p[1], p[2]
      if key == "sessid" then value = oxy_ids[k] end
      if key == "sesstime" and minutes then value, has_time = tostring(minutes), true end
      parts[#parts + 1] = "-" .. key .. "-" .. value
    end
    if minutes and not has_time then parts[#parts + 1] = "-sesstime-" .. minutes end
    entries[o.i].user = table.concat(parts)
  end
  local up_ids = session_ids(#up, CHARSETS.digits, 9, opts.seed and opts.seed + 1, true)
  for k, u in ipairs(up) do entries[u.i].pass = u.base .. "-" .. up_ids[k] end
  return core.from(entries), #oxy + #up
end

--- The providers sticky knows.
M.providers = { "oxylabs", "unknownproxies", "template" }

--- Builds n sticky-session entries: opts.provider, opts.sessions (n,
--- 1..1,000,000), opts.minutes, credentials (the proxy user's: required,
--- never the API login) and targeting per dialect (M.options), opts.pool
--- for unknownproxies (one of M.unknownproxies_pools), opts.host/port/scheme
--- to override the gateway, opts.seed for a reproducible list. Returns a
--- proxy list.
---@param opts table
---@return resi.proxylist.list list
function M.build(opts)
  if type(opts) ~= "table" then bad("expects a table of options") end
  local dialect = dialects[opts.provider]
  if dialect == nil then
    bad(("unknown provider %q (expected %s)"):format(tostring(opts.provider), table.concat(M.providers, ", ")))
  end
  check_present(opts, opts.provider)
  local count = int_opt(opts, "sessions", 1, 1000000, true)
  local ok, list = pcall(core.from, dialect(opts, count))
  if not ok then bad((tostring(list):gsub("^resi%.proxylist: ", ""))) end
  return list
end

return M
