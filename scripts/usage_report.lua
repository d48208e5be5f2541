#!/usr/bin/env resi
--- scripts/usage_report.lua: data usage of every token across every
--- configured provider account, as a table, JSON or CSV. Accounts come from
--- --accounts FILE (the same JSON shape as `resi sim --accounts`) or, without
--- it, from the environment (one account per provider whose credentials are
--- set). Accounts are read concurrently.
local argparse = require "resi.argparse"
local fs = require "resi.fs"
local json = require "resi.json"
local providers = require "resi.providers"

local help = [[
usage: resi run scripts/usage_report.lua [--format table|json|csv] [--accounts FILE]
                                         [--provider NAME] [--min-share X]

Prints one row per token (UnknownProxies tokens, Oxylabs sub-users) with its
usage and limit, and one row per ResiFactory pool balance.

Options:
  --format F       table (default), json or csv
  --accounts FILE  accounts as JSON: {"unknownproxies": [{"username", "password",
                   "base_url"?}], "oxylabs": [...], "resifactory": [{"api_key"}]};
                   default: the environment (UNKNOWNPROXIES_USERNAME/_PASSWORD,
                   OXYLABS_USERNAME/_PASSWORD, RF_API_KEY; RESI_*_URL for resi sim)
  --provider NAME  only these providers (repeatable or comma-separated)
  --min-share X    only tokens that used at least this share (0..1) of their limit]]

local SPEC = {
  format = { type = "string", default = "table", choices = { table = true, json = true, csv = true } },
  accounts = { type = "string" }, provider = { type = "list" },
  ["min-share"] = { type = "number", min = 0, max = 1 },
}

local COLUMNS = { "provider", "account", "id", "username", "status", "used_bytes", "limit_bytes", "used_pct", "expires_at",
  "balance_gb" }

-- The fields an accounts entry may have, per provider: the client's own
-- (required ones first) and those `resi sim --accounts` reads, so one file
-- serves both. Anything else is a misspelling and is refused by name.
local FIELDS = {
  unknownproxies = { required = { "username", "password" }, optional = { "base_url", "tokens" } },
  oxylabs = { required = { "username", "password" }, optional = { "base_url", "user_id", "sub_users" } },
  resifactory = { required = { "api_key" }, optional = { "base_url", "username", "scopes", "balances", "disabled" } },
}
local TOP_LEVEL = { unknownproxies = true, oxylabs = true, resifactory = true, pools = true }

-- The problems of one accounts entry (path like "oxylabs[2]"), as messages.
local function entry_problems(name, path, a)
  if type(a) ~= "table" or a[1] ~= nil then return { path .. " must be an object" } end
  local problems, known = {}, {}
  for _, f in ipairs(FIELDS[name].required) do
    known[f] = true
    if type(a[f]) ~= "string" or a[f] == "" then problems[#problems + 1] = ("%s.%s is required (a string)"):format(path, f) end
  end
  for _, f in ipairs(FIELDS[name].optional) do known[f] = true end
  local unknown = {}
  for k in pairs(a) do if not known[k] then unknown[#unknown + 1] = tostring(k) end end
  table.sort(unknown)
  for _, k in ipairs(unknown) do
    local allowed = table.concat(FIELDS[name].required, ", ") .. ", " .. table.concat(FIELDS[name].optional, ", ")
    problems[#problems + 1] = ("%s.%s: unknown field (expected %s)"):format(path, k, allowed)
  end
  return problems
end

-- Reads and checks an accounts file; raises one usage error listing every
-- problem (file: path: cause), so a misspelled field never falls back to
-- the environment's account.
local function accounts_file(path)
  local text, err = fs.read(path)
  if not text then argparse.usage_error("cannot read " .. path .. ": " .. err) end
  local doc, jerr = json.safe_decode(text)
  if type(doc) ~= "table" or doc[1] ~= nil or (next(doc) == nil and text:match("^%s*%[")) then
    argparse.usage_error(("%s: %s"):format(path, doc == nil and ("not JSON: " .. tostring(jerr)) or "must be a JSON object"))
  end
  local problems, out = {}, {}
  for k in pairs(doc) do
    if not TOP_LEVEL[k] then problems[#problems + 1] = ("%s: unknown key (expected %s)"):format(tostring(k), table.concat(providers.NAMES, ", ")) end
  end
  for _, name in ipairs(providers.NAMES) do
    local list = doc[name]
    if list ~= nil and (type(list) ~= "table" or (next(list) ~= nil and list[1] == nil)) then
      problems[#problems + 1] = name .. " must be an array of accounts"
    else
      for i, a in ipairs(list or {}) do
        local mine = entry_problems(name, ("%s[%d]"):format(name, i), a)
        table.move(mine, 1, #mine, #problems + 1, problems)
        if #mine == 0 then out[#out + 1] = { name = name, opts = a, label = a.username or ("key " .. providers.mask(a.api_key)) } end
      end
    end
  end
  if #problems > 0 then argparse.usage_error(path .. ": " .. table.concat(problems, "\n" .. path .. ": ")) end
  return out
end

-- The account list: from the file, or one per provider from the environment.
local function account_specs(path)
  if path then return accounts_file(path) end
  local out, get = {}, require("resi.credentials").get
  local up, oxy, rf = get("UNKNOWNPROXIES_USERNAME"), get("OXYLABS_USERNAME"), get("RF_API_KEY")
  if up then out[#out + 1] = { name = "unknownproxies", label = up } end
  if oxy then out[#out + 1] = { name = "oxylabs", label = oxy } end
  if rf then out[#out + 1] = { name = "resifactory", label = "key " .. providers.mask(rf) } end
  return out
end

-- The rows of one account.
local function rows_of(spec)
  local acct = providers.open(spec.name, spec.opts)
  local rows = {}
  if acct.capabilities.tokens then
    for _, t in ipairs(acct:tokens()) do
      local share = providers.used_share(t)
      rows[#rows + 1] = { provider = spec.name, account = spec.label, id = t.id, username = t.username, status = t.status,
        used_bytes = t.used_bytes, limit_bytes = t.unlimited and "unlimited" or t.limit_bytes,
        used_pct = share and math.floor(share * 1000 + 0.5) / 10 or nil,
        expires_at = t.expires_at and os.date("!%Y-%m-%dT%H:%M:%SZ", t.expires_at) or nil, share = share }
    end
  end
  if acct.capabilities.balance then
    local pools = {}
    for pool in pairs(acct:balance()) do pools[#pools + 1] = pool end
    table.sort(pools)
    local balances = acct:balance()
    for _, pool in ipairs(pools) do
      rows[#rows + 1] = { provider = spec.name, account = spec.label, id = "pool:" .. pool, status = "balance",
        balance_gb = balances[pool] }
    end
  end
  return rows
end

-- One CSV field, quoted when it needs to be (RFC 4180).
local function csv_field(v)
  if v == nil then return "" end
  local s = tostring(v)
  if s:find('[",\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- Prints rows as aligned columns.
local function print_table(rows)
  local widths, cells = {}, {}
  for i, c in ipairs(COLUMNS) do widths[i] = #c end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for i, c in ipairs(COLUMNS) do
      local v = row[c]
      local s = v == nil and "-" or tostring(v)
      if c == "used_pct" and v then s = ("%.1f%%"):format(v) end
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

local function main(opts)
  local min_share = opts.min_share
  local specs = account_specs(opts.accounts)
  local wanted = {}
  for _, p in ipairs(opts.provider) do wanted[p] = true end
  local tasks = {}
  for _, s in ipairs(specs) do
    if next(wanted) == nil or wanted[s.name] then
      tasks[#tasks + 1] = function()
        local ok, rows = pcall(rows_of, s)
        if ok then return rows end
        io.stderr:write(("usage_report: %s account %s failed: %s\n"):format(s.name, s.label, tostring(rows)))
        require("resi.task").set_exit_status(1)
        return {}
      end
    end
  end
  if #tasks == 0 then argparse.usage_error("no accounts: pass --accounts FILE or set provider credentials") end
  local rows = {}
  for _, list in ipairs({ resi.all(tasks) }) do
    for _, row in ipairs(list) do
      if not min_share or (row.share and row.share >= min_share) then rows[#rows + 1] = row end
    end
  end
  for _, row in ipairs(rows) do row.share = nil end
  if opts.format == "json" then
    print(json.encode(json.array(rows), { sort_keys = true }))
  elseif opts.format == "csv" then
    print(table.concat(COLUMNS, ","))
    for _, row in ipairs(rows) do
      local out = {}
      for i, c in ipairs(COLUMNS) do out[i] = csv_field(row[c]) end
      print(table.concat(out, ","))
    end
  else
    print_table(rows)
  end
end

argparse.run(resi.args, SPEC, help, main)
