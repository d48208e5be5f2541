--- resi up tokens|token|create|modify|delete: everyday UnknownProxies
--- calls from the shell, thin over resi.providers (the account model) and
--- resi.providers.unknownproxies: the same checks and the same errors.
--- Credentials come from the environment (resi.credentials). Output and
--- exit status: resi.cmdline.command and resi.cmdline.output.
local command = require "resi.cmdline.command"
local output = require "resi.cmdline.output"
local argparse = require "resi.argparse"

local COMMON = [[
Credentials: UNKNOWNPROXIES_USERNAME and UNKNOWNPROXIES_PASSWORD, each also
as NAME_FILE=path or a file NAME (or name) in $CREDENTIALS_DIRECTORY;
RESI_UNKNOWNPROXIES_URL points at another API (e.g. resi sim). Never on
the command line.

Output: a table on a terminal; tab-separated values with the same header
line when stdout is not a terminal; --json: one JSON document (sorted keys).

Exit status: 0 success; 1 the call failed (the provider's one-line error),
or a delete was not confirmed; 2 a usage error, or input refused before any
request (the message names the field), missing credentials included.]]

local TOKEN_KEYS = [[
Token JSON keys: id, username, status, used_bytes, limit_bytes, used_share
(0..1), hours (0: no time limit), created_at and expires_at (epoch seconds,
or null), allowed_pools (empty: every pool). Passwords are never printed,
except a new one (create, modify --new-password), shown once.]]

local help = {}

help.main = [[
usage: resi up COMMAND [OPTIONS]

UnknownProxies reseller tokens from the shell.

Commands:
  tokens            list the account's tokens (deleted ones left out)
  token ID          one token, --usage for its daily usage
  create            create a token (its password is printed once)
  modify ID         change a token's limit, duration, pools or password
  delete ID         delete a token (asks first; --yes to skip)

Run "resi up COMMAND --help" for a command's options.

]] .. COMMON

help.tokens = [[
usage: resi up tokens [--json]

Lists the account's tokens: ID, USERNAME, STATUS, USED, LIMIT, USED%,
EXPIRES (UTC). --json: an array of tokens.

]] .. TOKEN_KEYS .. "\n\n" .. COMMON

help.token = [[
usage: resi up token ID [--usage] [--json]

Shows one token. A deleted token is "not found".

  --usage   also its daily usage (DATE, USED); JSON key usage: [{date, bytes}]
  --json    one token object

]] .. TOKEN_KEYS .. "\n\n" .. COMMON

help.create = [[
usage: resi up create --gb N [--hours H] [--username U] [--json]

Creates a token and prints it with its password, which is shown this once
(a note on stderr says so).

  --gb N         data limit in GB (10^9 bytes): a whole number, at least 1
  --hours H      lifetime in hours, 0..87600 (default 0: no time limit)
  --username U   the proxy username: exactly 8 letters and digits (default random)
  --json         one token object, with its password

]] .. TOKEN_KEYS .. "\n\n" .. COMMON

help.modify = [[
usage: resi up modify ID [--gb N] [--hours H] [--pools ID,...|--all-pools] [--new-password] [--json]

Changes a token and prints it. Only what differs is sent, then checked.

  --gb N           new data limit in GB (a whole number, never lower than now)
  --hours H        new lifetime in hours, 0..87600
  --pools ID,...   allow only these pools (repeatable, or comma-separated)
  --all-pools      allow every pool
  --new-password   give the token a new random password, printed this once
  --json           one token object (with password only after --new-password)

]] .. TOKEN_KEYS .. "\n\n" .. COMMON

help.delete = [[
usage: resi up delete ID [--yes] [--json]

Deletes a token: it cannot be undone. On a terminal it asks first; without
one, --yes is required. Prints "deleted ID" (or, already deleted by an
earlier try, "deleted ID (already)"). --json: {id, deleted, already}.

  --yes, -y   do not ask
  --json      one JSON object

]] .. COMMON

-- A token record as the JSON object --json prints (stable keys).
local function token_json(t, password)
  local v = output.value
  return {
    id = t.id, username = v(t.username), status = v(t.status), used_bytes = t.used_bytes,
    limit_bytes = v(t.limit_bytes), used_share = v(require("resi.providers").used_share(t)), hours = v(t.hours),
    created_at = v(t.created_at), expires_at = v(t.expires_at),
    allowed_pools = require("resi.json").array(type(t.raw) == "table" and type(t.raw.allowedPools) == "table"
      and t.raw.allowedPools or {}),
    password = password,
  }
end

-- The table cells of a token (no password).
local function token_row(t)
  return { t.id, t.username, t.status, output.gb(t.used_bytes), output.gb(t.limit_bytes),
    output.percent(require("resi.providers").used_share(t)), output.time(t.expires_at) }
end

local TOKEN_COLUMNS = { { "ID" }, { "USERNAME" }, { "STATUS" }, { "USED", right = true }, { "LIMIT", right = true },
  { "USED%", right = true }, { "EXPIRES" } }

-- Prints one token (and its new password, when given).
local function print_token(t, opts, password)
  if opts.json then return output.json(token_json(t, password)) end
  local j = token_json(t)
  local rows = { { "id", t.id }, { "username", t.username }, { "status", t.status }, { "used", output.gb(t.used_bytes) },
    { "limit", output.gb(t.limit_bytes) }, { "used%", output.percent(require("resi.providers").used_share(t)) },
    { "hours", tostring(t.hours or 0) }, { "created", output.time(t.created_at) },
    { "expires", output.time(t.expires_at) }, { "pools", output.list(j.allowed_pools) or "all" } }
  if password then rows[#rows + 1] = { "password", password } end
  output.fields(rows)
end

-- GB from --gb as bytes (an integer); nil stays nil.
local function gb_bytes(gb)
  if gb == nil then return nil end
  return math.floor(gb * 1e9 + 0.5)
end

local commands = {}

commands.tokens = command.tokens_command("unknownproxies", help.tokens, token_json, TOKEN_COLUMNS, token_row)

commands.token = { help = help.token, spec = { json = { type = "flag" }, usage = { type = "flag" } } }
--- Runs `resi up token` (what it does: help.token).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.token.run(opts, rest)
  local id = command.positional(rest, { "ID" })
  local acct = command.account("unknownproxies")
  local t = acct:token(id)
  if not opts.usage then return print_token(t, opts) end
  local days = {}
  for _, d in ipairs(acct.client:get_token(id, { usage = true }).usage or {}) do
    days[#days + 1] = { date = tostring(d.date), bytes = math.tointeger(d.usage) or 0 }
  end
  table.sort(days, function(a, b) return a.date < b.date end)
  if opts.json then
    local j = token_json(t)
    j.usage = require("resi.json").array(days)
    return output.json(j)
  end
  print_token(t, opts)
  io.stdout:write("\n")
  local rows = {}
  for i, d in ipairs(days) do rows[i] = { d.date, output.gb(d.bytes) } end
  output.rows({ { "DATE" }, { "USED", right = true } }, rows)
end

commands.create = { help = help.create, spec = { gb = { type = "number" }, hours = { type = "integer" },
  username = { type = "string" }, json = { type = "flag" } } }
--- Runs `resi up create` (what it does: help.create).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.create.run(opts, rest)
  command.positional(rest, {})
  if opts.gb == nil then argparse.usage_error("missing --gb N (the data limit in GB)") end
  local t = command.account("unknownproxies"):create_token { limit_bytes = gb_bytes(opts.gb), hours = opts.hours,
    username = opts.username }
  print_token(t, opts, t.password)
  command.password_notice(("token %s's password"):format(t.id))
end

commands.modify = { help = help.modify, spec = { gb = { type = "number" }, hours = { type = "integer" },
  pools = { type = "list" }, ["all-pools"] = { type = "flag" }, ["new-password"] = { type = "flag" },
  json = { type = "flag" } } }
--- Runs `resi up modify` (what it does: help.modify).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.modify.run(opts, rest)
  local id = command.positional(rest, { "ID" })
  if #opts.pools > 0 and opts.all_pools then argparse.usage_error("--pools and --all-pools exclude each other") end
  local want = { limit_bytes = gb_bytes(opts.gb), hours = opts.hours }
  if #opts.pools > 0 or opts.all_pools then want.like = { allowedPools = opts.all_pools and {} or opts.pools } end
  if next(want) == nil and not opts.new_password then
    argparse.usage_error("nothing to change: give --gb, --hours, --pools, --all-pools or --new-password")
  end
  local acct = command.account("unknownproxies")
  if opts.new_password then want.password = acct:new_credentials().password end
  local t = acct:apply(id, want)
  print_token(t, opts, want.password)
  if want.password then command.password_notice(("token %s's new password"):format(t.id)) end
end

commands.delete = { help = help.delete, spec = { yes = { type = "flag" }, json = { type = "flag" } } }
--- Runs `resi up delete` (what it does: help.delete).
---@param opts table  its options, parsed by resi.argparse
---@param rest string[]  its positional arguments
function commands.delete.run(opts, rest)
  local id = command.positional(rest, { "ID" })
  return command.delete(command.account("unknownproxies"), id, opts, "UnknownProxies token %s (username %s)",
    "resi up delete")
end

--- Runs `resi up` with the command line's arguments.
---@param ... string
return function(...)
  command.main({ name = "up", help = help.main, commands = commands }, { ... })
end
