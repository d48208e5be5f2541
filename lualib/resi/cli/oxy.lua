--- resi oxy users|stats|create|delete|client-stats: everyday Oxylabs
--- sub-user calls from the shell, thin over resi.providers (the account
--- model) and resi.providers.oxylabs: the same checks and the same errors.
--- Credentials come from the environment (resi.credentials). Output and
--- exit status: resi.cmdline.command and resi.cmdline.output.
local command = require "resi.cmdline.command"
local output = require "resi.cmdline.output"
local argparse = require "resi.argparse"
local json = require "resi.json"

local COMMON = [[
Credentials: OXYLABS_USERNAME and OXYLABS_PASSWORD (the main proxy user),
each also as NAME_FILE=path or a file NAME (or name) in
$CREDENTIALS_DIRECTORY; RESI_OXYLABS_URL points at another API (e.g. resi
sim). Never on the command line.

Output: a table on a terminal; tab-separated values with the same header
line when stdout is not a terminal; --json: one JSON document (sorted keys).
Traffic is GB as Oxylabs counts it (10^9 bytes).

Exit status: 0 success; 1 the call failed (the provider's one-line error),
or a delete was not confirmed; 2 a usage error, or input refused before any
request (the message names the field), missing credentials included.]]

local USER_KEYS = [[
Sub-user JSON keys: id, username, status, used_bytes, limit_bytes (null when
unlimited; 0 means blocked), unlimited, used_share (0..1, or null),
auto_disable, lifetime, created_at (as Oxylabs gives it, UTC). Oxylabs never
returns a password; create prints the one it chose, once.]]

local help = {}

help.main = [[
usage: resi oxy COMMAND [OPTIONS]

Oxylabs residential sub-users from the shell.

Commands:
  users          list the sub-users
  stats ID       a sub-user's traffic (--type, or --from/--to)
  create         create a sub-user (its password is printed once)
  delete ID      delete a sub-user (asks first; --yes to skip)
  client-stats   the account's traffic this month

Run "resi oxy COMMAND --help" for a command's options.

]] .. COMMON

help.users = [[
usage: resi oxy users [--json]

Lists the sub-users: ID, USERNAME, STATUS, USED, LIMIT, USED%, AUTO_DISABLE,
LIFETIME, CREATED. --json: an array of sub-users.

]] .. USER_KEYS .. "\n\n" .. COMMON

help.stats = [[
usage: resi oxy stats ID [--type T | --from DATE --to DATE] [--json]

A sub-user's traffic per period (DATE, TRAFFIC) and the total.

  --type T      24h, week, month (default), current_month, lifetime, custom
  --from DATE   with --to: a custom range, "YYYY-MM-DD" or "YYYY-MM-DD HH"
  --to DATE
  --json        {id, type, date_from, date_to, traffic_gb,
                 results: [{date, traffic_gb}]}

]] .. COMMON

help.create = [[
usage: resi oxy create --username U [--gb N | --unlimited] [--auto-disable] [--lifetime] [--json]

Creates a sub-user with a new random password that meets Oxylabs' rule and
prints it with that password, which is shown this once (a note on stderr
says so): Oxylabs never returns it.

  --username U     letters, digits and underscore
  --gb N           traffic limit in GB (0 blocks all traffic)
  --unlimited      no traffic limit (the default when --gb is not given)
  --auto-disable   disable the sub-user when it reaches its limit
  --lifetime       the limit is for its lifetime, not per month
  --json           one sub-user object, with its password

]] .. USER_KEYS .. "\n\n" .. COMMON

help.delete = [[
usage: resi oxy delete ID [--yes] [--json]

Deletes a sub-user: it cannot be undone. On a terminal it asks first;
without one, --yes is required. Prints "deleted ID". --json: {id, deleted,
already}.

  --yes, -y   do not ask
  --json      one JSON object

]] .. COMMON

help["client-stats"] = [[
usage: resi oxy client-stats [--json]

The account's total traffic for the current month (every sub-user's,
deleted ones included). --json: {traffic_gb, date_from, date_to}.

]] .. COMMON

-- A sub-user record as the JSON object --json prints (stable keys).
local function user_json(t, password)
  local v, raw = output.value, t.raw or {}
  return { id = t.id, username = v(t.username), status = v(t.status), used_bytes = t.used_bytes,
    limit_bytes = v(t.limit_bytes), unlimited = t.unlimited, used_share = v(require("resi.providers").used_share(t)),
    auto_disable = raw.auto_disable == true, lifetime = raw.lifetime == true, created_at = v(t.created_at),
    password = password }
end

-- The LIMIT cell of a sub-user.
local function limit_cell(t)
  return t.unlimited and "unlimited" or output.gb(t.limit_bytes)
end

-- A yes/no cell.
local function yes_no(b) return b and "yes" or "no" end

-- The table cells of a sub-user (no password).
local function user_row(t)
  local j = user_json(t)
  return { t.id, t.username, t.status, output.gb(t.used_bytes), limit_cell(t),
    output.percent(require("resi.providers").used_share(t)), yes_no(j.auto_disable), yes_no(j.lifetime),
    output.time(t.created_at) }
end

local USER_COLUMNS = { { "ID", right = true }, { "USERNAME" }, { "STATUS" }, { "USED", right = true },
  { "LIMIT", right = true }, { "USED%", right = true }, { "AUTO_DISABLE" }, { "LIFETIME" }, { "CREATED" } }

local commands = {}

commands.users = command.tokens_command("oxylabs", help.users, user_json, USER_COLUMNS, user_row)

commands.stats = { help = help.stats, spec = { type = { type = "string" }, from = { type = "string" },
  to = { type = "string" }, json = { type = "flag" } } }
--- Runs `resi oxy stats` (what it does: help.stats).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.stats.run(opts, rest)
  local id = command.positional(rest, { "ID" })
  if (opts.from or opts.to) and opts.type and opts.type ~= "custom" then
    argparse.usage_error("--from and --to make a custom range: leave out --type " .. opts.type)
  end
  local kind = opts.type or ((opts.from or opts.to) and "custom") or "month"
  local s = command.account("oxylabs").client:sub_user_stats(id, { type = kind, date_from = opts.from,
    date_to = opts.to })
  local results = {}
  for i, r in ipairs(s.results or {}) do results[i] = { date = tostring(r.date), traffic_gb = tonumber(r.traffic) or 0 } end
  if opts.json then
    return output.json({ id = tostring(id), type = kind, date_from = output.value(s.date_from),
      date_to = output.value(s.date_to), traffic_gb = tonumber(s.traffic) or 0, results = json.array(results) })
  end
  local rows = {}
  for i, r in ipairs(results) do rows[i] = { r.date, ("%.4f"):format(r.traffic_gb) } end
  rows[#rows + 1] = { "total", ("%.4f"):format(tonumber(s.traffic) or 0) }
  output.rows({ { "DATE" }, { "TRAFFIC_GB", right = true } }, rows)
end

commands.create = { help = help.create, spec = { username = { type = "string" }, gb = { type = "number" },
  unlimited = { type = "flag" }, ["auto-disable"] = { type = "flag" }, lifetime = { type = "flag" },
  json = { type = "flag" } } }
--- Runs `resi oxy create` (what it does: help.create).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.create.run(opts, rest)
  command.positional(rest, {})
  if not opts.username then argparse.usage_error("missing --username U") end
  if opts.gb and opts.unlimited then argparse.usage_error("--gb and --unlimited exclude each other") end
  local acct = command.account("oxylabs")
  local t = acct:create_token { username = opts.username, password = acct:new_credentials().password,
    limit_bytes = opts.gb and math.floor(opts.gb * 1e9 + 0.5), unlimited = opts.gb == nil,
    auto_disable = opts.auto_disable or nil, like = { lifetime = opts.lifetime or nil } }
  if opts.json then
    output.json(user_json(t, t.password))
  else
    local j = user_json(t)
    output.fields({ { "id", t.id }, { "username", t.username }, { "status", t.status }, { "limit", limit_cell(t) },
      { "auto_disable", yes_no(j.auto_disable) }, { "lifetime", yes_no(j.lifetime) }, { "password", t.password } })
  end
  command.password_notice(("sub-user %s's password"):format(t.id))
end

commands.delete = { help = help.delete, spec = { yes = { type = "flag" }, json = { type = "flag" } } }
--- Runs `resi oxy delete` (what it does: help.delete).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.delete.run(opts, rest)
  local id = command.positional(rest, { "ID" })
  return command.delete(command.account("oxylabs"), id, opts, "Oxylabs sub-user %s (%s)", "resi oxy delete")
end

commands["client-stats"] = { help = help["client-stats"], spec = { json = { type = "flag" } } }
commands["client-stats"].run = function(opts, rest)
  command.positional(rest, {})
  local s = command.account("oxylabs").client:client_stats()
  local j = { traffic_gb = tonumber(s.traffic) or 0, date_from = output.value(s.date_from),
    date_to = output.value(s.date_to) }
  if opts.json then return output.json(j) end
  output.fields({ { "traffic_gb", ("%.4f"):format(j.traffic_gb) }, { "date_from", s.date_from },
    { "date_to", s.date_to } })
end

--- Runs `resi oxy` with the command line's arguments.
---@param ... string
return function(...)
  command.main({ name = "oxy", help = help.main, commands = commands }, { ... })
end
