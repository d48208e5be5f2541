--- resi rf balance|usage|pools|me|generate: everyday ResiFactory calls from
--- the shell, thin over resi.providers.resifactory: the same checks and the
--- same errors. The API key comes from the environment (resi.credentials).
--- Output and exit status: resi.cmdline.command and resi.cmdline.output.
local command = require "resi.cmdline.command"
local output = require "resi.cmdline.output"
local argparse = require "resi.argparse"
local json = require "resi.json"

local COMMON = [[
Credentials: RF_API_KEY, also as RF_API_KEY_FILE=path or a file RF_API_KEY
(or rf_api_key) in $CREDENTIALS_DIRECTORY; RESI_RESIFACTORY_URL points at
another API (e.g. resi sim). Never on the command line; the key is never
printed (me shows its name and last four characters, as the API does).

Output: a table on a terminal; tab-separated values with the same header
line when stdout is not a terminal; --json: one JSON document (sorted keys).

Exit status: 0 success; 1 the call failed (the provider's one-line error;
generate --require-live: demo credentials); 2 a usage error, or input
refused before any request (the message names the field), missing
credentials included.]]

local help = {}

help.main = [[
usage: resi rf COMMAND [OPTIONS]

ResiFactory from the shell.

Commands:
  balance    remaining GB per pool
  usage      top domains by traffic
  pools      the pools this key can use
  me         the account and the key's scopes
  generate   generate proxies (a list on stdout or in a file)

Run "resi rf COMMAND --help" for a command's options.

]] .. COMMON

help.balance = [[
usage: resi rf balance [--json]

Remaining GB per pool: POOL, BALANCE_GB. --json: {"balances": {POOL: GB}}.

]] .. COMMON

help.usage = [[
usage: resi rf usage [--limit N] [--json]

Top domains by traffic: DOMAIN, BYTES, GB (2^30 bytes, as the API counts),
REQUESTS.

  --limit N   how many domains, 1..100 (the API's default: 25)
  --json      {"top_domains": [{domain, bytes, requests}]}

]] .. COMMON

help.pools = [[
usage: resi rf pools [--json]

The pools this key can use: ID, LABEL, HOST, PORT, TYPES, STATUS.
--json: {"pools": [{id, label, host, port, proxy_types, status, countries}]}.

]] .. COMMON

help.me = [[
usage: resi rf me [--json]

The account and the key: id, username, scopes, key (its name and last four
characters), balance per pool. --json: {id, username, scopes, balances,
key: {name, prefix, last4}}.

]] .. COMMON

help.generate = [[
usage: resi rf generate [--country CC] [-n N] [--type T] [--minutes M] [--pool ID] [--state ST]
                        [--format F] [-o FILE] [--require-live] [--json]

Generates proxies (POST /proxies, with an Idempotency-Key so a retry never
spends twice). The list goes to stdout, or to FILE (written atomically,
mode 0600); a summary goes to stderr (to stdout with -o). The list holds
the proxies' passwords: that is what was asked for.

  --country CC      ISO 3166-1 alpha-2, lower case (e.g. us)
  -n, --quantity N  how many, 1..250000 (the API's default: 5000)
  --type T          rotating (default), sticky, mobile_rotating, mobile_sticky
  --minutes M       sticky session lifetime, 1..1440 (sticky types only)
  --pool ID         a pool of "resi rf pools" (default: the key's default pool)
  --state ST        a US state (e.g. CA), with --country us
  --format F        list (default: host:port:user:pass), userpass, url, json,
                    hostport, proxychains
  -o, --output FILE write the list to FILE instead of stdout
  --require-live    fail (exit 1) instead of warning when the pool has no
                    balance and the API answers with demo credentials
  --json            a JSON summary {count, pool, country, is_demo, replayed,
                    format, file}; without -o it also holds the proxies
                    (key proxies: [{scheme, host, port, user, pass}])

]] .. COMMON

-- The ResiFactory client (credentials from the environment).
local function client(opts)
  return require("resi.providers.resifactory").new { require_live = opts and opts.require_live }
end

local commands = {}

commands.balance = { help = help.balance, spec = { json = { type = "flag" } } }
--- Runs `resi rf balance` (what it does: help.balance).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.balance.run(opts, rest)
  command.positional(rest, {})
  local b = client():balance()
  local balances = type(b.balances) == "table" and b.balances or {}
  if opts.json then return output.json({ balances = setmetatable(balances, nil) }) end
  local pools = {}
  for pool in pairs(balances) do pools[#pools + 1] = pool end
  table.sort(pools)
  local rows = {}
  for i, pool in ipairs(pools) do rows[i] = { pool, ("%.4f"):format(balances[pool]) } end
  output.rows({ { "POOL" }, { "BALANCE_GB", right = true } }, rows)
end

commands.usage = { help = help.usage, spec = { limit = { type = "integer" }, json = { type = "flag" } } }
--- Runs `resi rf usage` (what it does: help.usage).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.usage.run(opts, rest)
  command.positional(rest, {})
  local u = client():usage { limit = opts.limit }
  local domains = {}
  for i, d in ipairs(u.top_domains or {}) do
    domains[i] = { domain = tostring(d.domain), bytes = math.tointeger(d.bytes) or 0,
      requests = math.tointeger(d.requests) or 0 }
  end
  if opts.json then return output.json({ top_domains = json.array(domains) }) end
  local rows = {}
  for i, d in ipairs(domains) do
    rows[i] = { d.domain, tostring(d.bytes), ("%.2f"):format(d.bytes / 1073741824), tostring(d.requests) }
  end
  output.rows({ { "DOMAIN" }, { "BYTES", right = true }, { "GB", right = true }, { "REQUESTS", right = true } }, rows)
end

commands.pools = { help = help.pools, spec = { json = { type = "flag" } } }
--- Runs `resi rf pools` (what it does: help.pools).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.pools.run(opts, rest)
  command.positional(rest, {})
  local pools = {}
  for i, p in ipairs(client():pools().pools or {}) do
    local targeting = type(p.targeting) == "table" and p.targeting or {}
    pools[i] = { id = p.id, label = output.value(p.label), host = output.value(p.host), port = output.value(p.port),
      proxy_types = json.array(p.proxy_types or {}), status = output.value(p.status),
      countries = json.array(targeting.countries or {}) }
  end
  if opts.json then return output.json({ pools = json.array(pools) }) end
  local rows = {}
  for i, p in ipairs(pools) do
    rows[i] = { p.id, output.text(p.label), output.text(p.host), output.text(p.port), output.list(p.proxy_types),
      output.text(p.status) }
  end
  output.rows({ { "ID" }, { "LABEL" }, { "HOST" }, { "PORT", right = true }, { "TYPES" }, { "STATUS" } }, rows)
end

commands.me = { help = help.me, spec = { json = { type = "flag" } } }
--- Runs `resi rf me` (what it does: help.me).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.me.run(opts, rest)
  command.positional(rest, {})
  local me = client():me()
  local key = type(me.key) == "table" and me.key or {}
  local balances = type(me.balances) == "table" and me.balances or {}
  if opts.json then
    return output.json({ id = output.value(me.id), username = output.value(me.username),
      scopes = json.array(me.scopes or {}), balances = setmetatable(balances, nil),
      key = { name = output.value(key.name), prefix = output.value(key.prefix), last4 = output.value(key.last4) } })
  end
  local rows = { { "id", tostring(me.id) }, { "username", me.username }, { "scopes", output.list(me.scopes) },
    { "key", ("%s (%s…%s)"):format(tostring(key.name), tostring(key.prefix or ""), tostring(key.last4 or "")) } }
  local pools = {}
  for pool in pairs(balances) do pools[#pools + 1] = pool end
  table.sort(pools)
  for _, pool in ipairs(pools) do rows[#rows + 1] = { "balance " .. pool, ("%.4f GB"):format(balances[pool]) } end
  output.fields(rows)
end

-- The API's own formats (others are asked for as json and rewritten).
local API_FORMATS = { list = true, json = true, userpass = true }
-- Every output format --format takes.
local FORMATS = {}
for _, f in ipairs(require("resi.proxylist").formats) do FORMATS[f] = true end

commands.generate = { help = help.generate, spec = { country = { type = "string" },
  quantity = { type = "integer" }, type = { type = "string" }, minutes = { type = "integer" },
  pool = { type = "string" }, state = { type = "string" }, format = { type = "string", default = "list",
  choices = FORMATS }, output = { type = "string" }, ["require-live"] = { type = "flag" }, json = { type = "flag" } } }
--- Runs `resi rf generate` (what it does: help.generate).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.generate.run(opts, rest)
  command.positional(rest, {})
  if opts.output then
    local ok, why = require("resi.fs").check_writable(opts.output)
    if not ok then argparse.usage_error("-o " .. opts.output .. ": " .. tostring(why)) end
  end
  local out = client(opts):generate { country = opts.country, quantity = opts.quantity, proxyType = opts.type,
    sessionDuration = opts.minutes, pool = opts.pool, state = opts.state,
    format = API_FORMATS[opts.format] and opts.format or "json" }
  local text = out.list:format(opts.format)
  local summary = { count = output.value(out.count), pool = output.value(out.raw.pool),
    country = output.value(out.raw.country), is_demo = out.is_demo, replayed = out.replayed, format = opts.format,
    file = output.value(opts.output) }
  if opts.output then require("resi.fs").write_atomic(opts.output, text, 384) end
  if opts.json then
    if not opts.output then
      local proxies = {}
      for i, e in ipairs(out.list) do
        proxies[i] = { scheme = e.scheme or "http", host = e.host, port = e.port, user = output.value(e.user),
          pass = output.value(e.pass) }
      end
      summary.proxies = json.array(proxies)
    end
    return output.json(summary)
  end
  if not opts.output then io.stdout:write(text) end
  local line = ("%s proxies, pool %s, country %s%s%s%s\n"):format(output.text(out.count) or "?",
    output.text(out.raw.pool) or "default", output.text(out.raw.country) or "any", out.is_demo and ", DEMO credentials (no balance: they will not work)" or "",
    out.replayed and ", replayed" or "", opts.output and (" -> " .. opts.output) or "")
  if opts.output then io.stdout:write(line) else io.stderr:write(line) end
end

--- Runs `resi rf` with the command line's arguments.
---@param ... string
return function(...)
  command.main({ name = "rf", help = help.main, commands = commands }, { ... })
end
