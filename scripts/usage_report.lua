#!/usr/bin/env resi
--- scripts/usage_report.lua: data usage of every token across every
--- configured provider account, as a table, JSON or CSV, written once
--- against the common account model (resi.providers). Accounts come from
--- --accounts FILE or, without it, from the environment
--- (providers.select_accounts); they are read concurrently. Bytes are
--- integers everywhere; `unlimited` is its own boolean column, and the
--- limit columns of an unlimited token are empty (null in JSON).
local argparse = require "resi.argparse"
local json = require "resi.json"
local providers = require "resi.providers"

local GB = 1000000000

local help = [[
usage: resi run usage_report [--format table|json|csv] [--accounts FILE]
                                         [--provider NAME] [--min-share X]

Prints one row per token (UnknownProxies tokens, Oxylabs sub-users) of every
account, and one row per ResiFactory pool balance (id "pool:NAME", status
"balance", the balance as remaining_bytes). Every format has the same columns:

  provider, account, id, username, status
  unlimited        true or false (a balance row: false)
  used_bytes, limit_bytes, remaining_bytes
                   integers; limit_bytes and remaining_bytes are empty (null in
                   JSON) for an unlimited token, used_bytes for a balance row
  used_gb, limit_gb, remaining_gb
                   the same in GB (10^9 bytes): numbers in JSON and CSV, two
                   decimals in the table
  used_pct         share of the limit used, in percent (one decimal)
  expires_at       UTC, ISO 8601, when the token has an expiry

Options:
  --format F       table (default), json or csv
  --accounts FILE  accounts as JSON: {"unknownproxies": [{"username", "password",
                   "base_url"?, "gateway"?, "pool"?}], "oxylabs": [{"username",
                   "password", "base_url"?, "gateway"?}], "resifactory": [{"api_key",
                   "base_url"?}]} (the shape `resi sim --accounts` reads); several
                   accounts per provider; a misspelled or missing field is an error
                   naming it and the file, never a fall-back to the environment.
                   Default: the environment (UNKNOWNPROXIES_USERNAME/_PASSWORD,
                   OXYLABS_USERNAME/_PASSWORD, RF_API_KEY; RESI_*_URL for resi sim)
  --provider NAME  only these providers: unknownproxies, oxylabs, resifactory
                   (repeatable or comma-separated)
  --min-share X    only tokens that used at least this share (0..1) of their
                   limit (unlimited tokens and balances are left out)

Exit status: 0; 1 when an account could not be read (the others are still
printed); 2 for a bad option or accounts file.]]

local SPEC = {
  format = { type = "string", default = "table", choices = { table = true, json = true, csv = true } },
  accounts = { type = "string" }, provider = { type = "list" },
  ["min-share"] = { type = "number", min = 0, max = 1 },
}

--- The report's columns, in order: the same in every format.
local COLUMNS = { "provider", "account", "id", "username", "status", "unlimited", "used_bytes", "limit_bytes",
  "remaining_bytes", "used_gb", "limit_gb", "remaining_gb", "used_pct", "expires_at" }

-- The columns the table shows with two decimals.
local GB_COLUMNS = { used_gb = true, limit_gb = true, remaining_gb = true }

-- x as an integer when it is whole (17, not 17.0), else as it is.
local function number(x)
  if x == nil then return nil end
  return math.tointeger(x) or x
end

-- GB of an integer byte count (nil stays nil).
local function gb(bytes)
  if bytes == nil then return nil end
  return number(bytes / GB)
end

-- The row of one token record (resi.providers.token) of an account.
local function token_row(spec, t)
  local limit = (not t.unlimited) and t.limit_bytes or nil
  local remaining = limit and math.max(0, limit - t.used_bytes) or nil
  local share = providers.used_share(t)
  return { provider = spec.name, account = spec.label, id = t.id, username = t.username, status = t.status,
    unlimited = t.unlimited == true, used_bytes = t.used_bytes, limit_bytes = limit, remaining_bytes = remaining,
    used_gb = gb(t.used_bytes), limit_gb = gb(limit), remaining_gb = gb(remaining),
    used_pct = share and number(math.floor(share * 1000 + 0.5) / 10) or nil,
    expires_at = t.expires_at and os.date("!%Y-%m-%dT%H:%M:%SZ", t.expires_at) or nil, share = share }
end

-- The row of one ResiFactory pool balance (GB, as the provider gives it).
local function balance_row(spec, pool, balance_gb)
  local bytes = type(balance_gb) == "number" and math.floor(balance_gb * GB + 0.5) or nil
  return { provider = spec.name, account = spec.label, id = "pool:" .. pool, status = "balance", unlimited = false,
    remaining_bytes = bytes, remaining_gb = gb(bytes) }
end

-- The rows of one account (a providers.select_accounts spec).
local function rows_of(spec)
  local acct = providers.open(spec.name, spec.opts)
  local rows = {}
  if acct.capabilities.tokens then
    for _, t in ipairs(acct:tokens()) do rows[#rows + 1] = token_row(spec, t) end
  end
  if acct.capabilities.balance then
    local balances, pools = acct:balance(), {}
    for pool in pairs(balances) do pools[#pools + 1] = pool end
    table.sort(pools)
    for _, pool in ipairs(pools) do rows[#rows + 1] = balance_row(spec, pool, balances[pool]) end
  end
  return rows
end

-- One CSV field, quoted when it needs to be (RFC 4180); nil is empty.
local function csv_field(v)
  if v == nil then return "" end
  local s = tostring(v)
  if s:find('[",\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- One table cell: "-" for nothing, two decimals for GB, a percent sign.
local function table_cell(column, v)
  if v == nil then return "-" end
  if GB_COLUMNS[column] then return ("%.2f"):format(v) end
  if column == "used_pct" then return ("%.1f%%"):format(v) end
  return tostring(v)
end

-- Prints rows as aligned columns.
local function print_table(rows)
  local widths, cells = {}, {}
  for i, c in ipairs(COLUMNS) do widths[i] = #c end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for i, c in ipairs(COLUMNS) do
      local s = table_cell(c, row[c])
      cells[r][i] = s
      widths[i] = math.max(widths[i], utf8.len(s) or #s)
    end
  end
  local function line(values)
    local out = {}
    for i, v in ipairs(values) do out[i] = v .. string.rep(" ", widths[i] - (utf8.len(v) or #v)) end
    print((table.concat(out, "  "):gsub("%s+$", "")))
  end
  line(COLUMNS)
  for _, c in ipairs(cells) do line(c) end
end

-- Prints rows as a JSON array of objects with every column (null when empty).
local function print_json(rows)
  local out = json.array()
  for i, row in ipairs(rows) do
    local o = {}
    for _, c in ipairs(COLUMNS) do
      local v = row[c]
      if v == nil then v = json.null end
      o[c] = v
    end
    out[i] = o
  end
  print(json.encode(out, { sort_keys = true }))
end

-- Prints rows as CSV with a header line.
local function print_csv(rows)
  print(table.concat(COLUMNS, ","))
  for _, row in ipairs(rows) do
    local out = {}
    for i, c in ipairs(COLUMNS) do out[i] = csv_field(row[c]) end
    print(table.concat(out, ","))
  end
end

-- The accounts to report on, or a usage error naming the option or file.
local function accounts(opts)
  local specs, err = providers.select_accounts(opts.accounts, opts.provider)
  if not specs then
    if tostring(err):find("^unknown provider") then argparse.usage_error("--provider: " .. err) end
    argparse.usage_error(err)
  end
  if #specs == 0 then
    local which = #opts.provider > 0 and (" of provider " .. table.concat(opts.provider, ", ")) or ""
    argparse.usage_error(opts.accounts and ("%s: no accounts%s"):format(opts.accounts, which)
      or ("no accounts%s: pass --accounts FILE or set provider credentials"):format(which))
  end
  return specs
end

-- A task that reads one account's rows; a failing account is reported on
-- stderr (exit status 1) and gives no rows, so the others still print.
local function reader(spec)
  return function()
    local ok, rows = pcall(rows_of, spec)
    if ok then return rows end
    io.stderr:write(("usage_report: %s account %s failed: %s\n"):format(spec.name, spec.label, tostring(rows)))
    require("resi.task").set_exit_status(1)
    return {}
  end
end

-- Reads every account and prints the report.
local function main(opts, rest)
  if #rest > 0 then argparse.usage_error("unexpected argument " .. rest[1]) end
  local tasks = {}
  for i, s in ipairs(accounts(opts)) do tasks[i] = reader(s) end
  local rows = {}
  for _, list in ipairs({ resi.all(tasks) }) do
    for _, row in ipairs(list) do
      if not opts.min_share or (row.share and row.share >= opts.min_share) then rows[#rows + 1] = row end
    end
  end
  if opts.format == "json" then print_json(rows)
  elseif opts.format == "csv" then print_csv(rows)
  else print_table(rows) end
end

argparse.run(resi.args, SPEC, help, main)
