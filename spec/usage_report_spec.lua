-- scripts/usage_report.lua against resi sim: every account's tokens and
-- balances in table, JSON and CSV form with the same columns, integer bytes
-- and an explicit `unlimited` column, several accounts from a file (checked:
-- a wrong field is an error, never the environment's account), filters
-- validated, a failing account reported without losing the others.
local json = require "resi.json"
local proc = require "spec.support.proc"
local scratch = require("spec.support.files").scratch

local GB = 1000000000

-- The sandbox's accounts: two UnknownProxies accounts, one Oxylabs account
-- with an unlimited sub-user, one ResiFactory key with two pool balances.
local ACCOUNTS = {
  unknownproxies = {
    { username = "reseller-one", password = "PwOne1234567890abcdE", tokens = {
      { username = "aaaa0001", dataLimit = 10 * GB, dataUsage = 2 * GB },
      { username = "aaaa0002", dataLimit = 20 * GB, dataUsage = 17 * GB, durationHours = 720 } } },
    { username = "reseller-two", password = "PwTwo1234567890abcdE", tokens = {
      { username = "bbbb0001", dataLimit = 5 * GB, dataUsage = 3 * GB } } },
  },
  oxylabs = { { username = "main_one", password = "PwOxy1234567890abcdE", user_id = "7d1c2f0e-5b7a-4c1e-9f00-3a2b1c0d9e8f",
    sub_users = { { username = "team_alpha", traffic_limit = 10, traffic = 4.2 },
      { username = "team_gamma", traffic_limit = json.null, traffic = 12.5 } } } },
  resifactory = { { api_key = "rf_live_AbCdEfGhIjKlMnOpQrStUvWx", balances = { walmart_premium = 25, retail_select = 0 } } },
}

-- The report's columns, as --help documents them.
local COLUMNS = { "provider", "account", "id", "username", "status", "unlimited", "used_bytes", "limit_bytes",
  "remaining_bytes", "used_gb", "limit_gb", "remaining_gb", "used_pct", "expires_at" }
local INTEGER_COLUMNS = { "used_bytes", "limit_bytes", "remaining_bytes" }
local NUMBER_COLUMNS = { "used_bytes", "limit_bytes", "remaining_bytes", "used_gb", "limit_gb", "remaining_gb", "used_pct" }

-- The lines of a text.
local lines_of = require("spec.support.text").lines

-- The fields of one CSV line (the report quotes only what needs it).
local function csv_fields(line)
  local out, i = {}, 1
  while i <= #line + 1 do
    if line:sub(i, i) == '"' then
      local j, buf = i + 1, {}
      while true do
        local c = line:sub(j, j)
        if c == '"' and line:sub(j + 1, j + 1) == '"' then buf[#buf + 1], j = '"', j + 2
        elseif c == '"' then j = j + 1; break
        else buf[#buf + 1], j = c, j + 1 end
      end
      out[#out + 1], i = table.concat(buf), j + 1
    else
      local j = line:find(",", i, true) or (#line + 1)
      out[#out + 1], i = line:sub(i, j - 1), j + 1
    end
  end
  return out
end

-- CSV rows as tables keyed by the header's columns.
local function csv_rows(text)
  local lines = lines_of(text)
  local header, rows = csv_fields(lines[1]), {}
  for n = 2, #lines do
    local f, row = csv_fields(lines[n]), {}
    for i, c in ipairs(header) do row[c] = f[i] end
    rows[#rows + 1] = row
  end
  return header, rows
end

-- The row whose username (or id) is key.
local function find(rows, key)
  for _, row in ipairs(rows) do
    if row.username == key or row.id == key then return row end
  end
  error("no row " .. key)
end

describe("scripts/usage_report.lua", function()
  local sim, env

  setup(function()
    sim = require("spec.support.sim").start { seed = 4, accounts = ACCOUNTS }
    env = sim:env()
  end)
  teardown(function() sim:stop() end)

  -- Runs the report with args (and extra environment variables).
  local function report(args, extra_env)
    local e = { table.unpack(env) }
    for _, v in ipairs(extra_env or {}) do e[#e + 1] = v end
    local argv = { proc.resi_path(), "run", "scripts/usage_report.lua" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return proc.run(argv, { env = e })
  end

  -- An accounts file of every sandbox account (the file's path); extra
  -- fields are added to unknownproxies[1].
  local function accounts_file(extra)
    local doc = { unknownproxies = {}, oxylabs = {}, resifactory = {} }
    for name, list in pairs(doc) do
      for i = 1, #sim.accounts[name] do list[i] = sim:credentials(name, { account = i }) end
    end
    for k, v in pairs(extra or {}) do doc.unknownproxies[1][k] = v end
    return scratch(json.encode(doc))
  end

  it("lists every token and balance as JSON with exact integer bytes", function()
    local r = report { "--format", "json" }
    assert.are.equal(0, r.status, r.stderr)
    local rows = json.decode(r.stdout)
    local by = {}
    for _, row in ipairs(rows) do by[row.provider] = (by[row.provider] or 0) + 1 end
    assert.are.same({ unknownproxies = 2, oxylabs = 2, resifactory = 2 }, by) -- the environment's first accounts
    local t = find(rows, "aaaa0002")
    assert.are.same({ provider = "unknownproxies", account = "reseller-one", id = t.id, username = "aaaa0002",
      status = "active", unlimited = false, used_bytes = 17 * GB, limit_bytes = 20 * GB, remaining_bytes = 3 * GB,
      used_gb = 17, limit_gb = 20, remaining_gb = 3, used_pct = 85, expires_at = t.expires_at }, t)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", t.expires_at)
    assert.are.equal(json.null, find(rows, "aaaa0001").expires_at)
    local alpha = find(rows, "team_alpha")
    assert.are.equal(4200000000, alpha.used_bytes)
    assert.are.equal(5800000000, alpha.remaining_bytes)
    assert.are.equal(4.2, alpha.used_gb)
    assert.are.equal(42, alpha.used_pct)
    local pool = find(rows, "pool:walmart_premium")
    assert.are.equal("balance", pool.status)
    assert.are.equal(25 * GB, pool.remaining_bytes)
    assert.are.equal(25, pool.remaining_gb)
    assert.are.equal(0, find(rows, "pool:retail_select").remaining_bytes)
    for _, row in ipairs(rows) do
      for _, c in ipairs(COLUMNS) do assert.is_not_nil(row[c], c) end -- every column, null when empty
      for _, c in ipairs(INTEGER_COLUMNS) do
        assert.is_true(row[c] == json.null or math.type(row[c]) == "integer", c .. " of " .. row.id)
      end
      assert.is_boolean(row.unlimited)
    end
  end)

  it("shows an unlimited Oxylabs sub-user as unlimited=true with no number in the limit columns", function()
    local rows = json.decode(report({ "--format", "json", "--provider", "oxylabs" }).stdout)
    local g = find(rows, "team_gamma")
    assert.is_true(g.unlimited)
    assert.are.equal(12500000000, g.used_bytes)
    assert.are.equal(12.5, g.used_gb)
    for _, c in ipairs { "limit_bytes", "limit_gb", "remaining_bytes", "remaining_gb", "used_pct" } do
      assert.are.equal(json.null, g[c], c)
    end
    assert.is_false(find(rows, "team_alpha").unlimited)
    local r = report { "--format", "csv", "--provider", "oxylabs" }
    assert.are.equal(0, r.status, r.stderr)
    local _, crows = csv_rows(r.stdout)
    g = find(crows, "team_gamma")
    assert.are.equal("true", g.unlimited)
    assert.are.equal("12500000000", g.used_bytes)
    for _, c in ipairs { "limit_bytes", "limit_gb", "remaining_bytes", "remaining_gb", "used_pct" } do
      assert.are.equal("", g[c], c)
    end
    for _, row in ipairs(crows) do -- the word is a column name, never a value
      for _, c in ipairs(COLUMNS) do assert.are_not.equal("unlimited", row[c], c) end
    end
  end)

  it("has the same columns and values in JSON, CSV and the table", function()
    local rows = json.decode(report({ "--format", "json" }).stdout)
    local header, crows = csv_rows(report({ "--format", "csv" }).stdout)
    assert.are.same(COLUMNS, header)
    assert.are.equal(#rows, #crows)
    for i, row in ipairs(rows) do
      for _, c in ipairs(COLUMNS) do
        local want = row[c] == json.null and "" or tostring(row[c])
        assert.are.equal(want, crows[i][c], c .. " of " .. row.id)
      end
      for _, c in ipairs(NUMBER_COLUMNS) do -- never a word in a number column
        assert.matches("^[%d.]*$", crows[i][c], 1)
      end
    end
    local r = report {}
    assert.are.equal(0, r.status, r.stderr)
    local tlines = lines_of(r.stdout)
    assert.are.same(COLUMNS, (function()
      local out = {}
      for w in tlines[1]:gmatch("%S+") do out[#out + 1] = w end
      return out
    end)())
    assert.are.equal(#rows + 1, #tlines)
    local big = tlines[1 + 2] -- aaaa0002, the second row
    assert.matches("aaaa0002%s+active%s+false%s+17000000000%s+20000000000%s+3000000000%s+17%.00%s+20%.00%s+3%.00%s+85%.0%%", big)
    local gamma
    for _, l in ipairs(tlines) do if l:find("team_gamma", 1, true) then gamma = l end end
    assert.matches("team_gamma%s+active%s+true%s+12500000000%s+%-%s+%-%s+12%.50%s+%-%s+%-%s+%-", gamma)
    assert.matches("pool:walmart_premium%s+%-%s+balance%s+false%s+%-%s+%-%s+25000000000%s+%-%s+%-%s+25%.00", r.stdout)
  end)

  it("reads several accounts from a file, each row naming its account", function()
    local path = accounts_file()
    local r = report({ "--format", "json", "--accounts", path }, { "UNKNOWNPROXIES_PASSWORD=not-used" })
    os.remove(path)
    assert.are.equal(0, r.status, r.stderr)
    local rows = json.decode(r.stdout)
    assert.are.equal(7, #rows) -- 2 + 1 UnknownProxies tokens, 2 sub-users, 2 balances
    assert.are.equal("reseller-one", find(rows, "aaaa0001").account)
    assert.are.equal("reseller-two", find(rows, "bbbb0001").account)
    assert.are.equal(2 * GB, find(rows, "bbbb0001").remaining_bytes)
    assert.are.equal("main_one", find(rows, "team_gamma").account)
    assert.are.equal("key rf_live_…UvWx", find(rows, "pool:walmart_premium").account)
    assert.is_nil(r.stdout:find("rf_live_AbCdEf", 1, true)) -- the key is masked
    -- the model's own fields (gateway, pool) are accepted
    path = accounts_file { gateway = "gw.example.net:8000" }
    r = report { "--format", "csv", "--accounts", path, "--provider", "unknownproxies" }
    os.remove(path)
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal(4, #lines_of(r.stdout))
  end)

  it("refuses an accounts entry with a misspelled field instead of using the environment's account", function()
    local path = scratch('{"unknownproxies":[{"user":"x","password":"Hunter2Secret"}],"oxylabs":{"username":"a"}}')
    local r = report { "--format", "json", "--accounts", path }
    os.remove(path)
    assert.are.equal(2, r.status)
    assert.are.equal("", r.stdout) -- nothing reported: not the environment's account either
    assert.truthy(r.stderr:find(path .. ": unknownproxies[1].username is required", 1, true), r.stderr)
    assert.truthy(r.stderr:find(path .. ": unknownproxies[1].user: unknown field", 1, true), r.stderr)
    assert.truthy(r.stderr:find(path .. ": oxylabs must be an array of accounts", 1, true), r.stderr)
    assert.is_nil(r.stderr:find("Hunter2Secret", 1, true))
    assert.is_nil(r.stderr:find("traceback", 1, true))
    -- a wrong field next to a good account: the whole file is refused
    path = accounts_file { pasword = "x" }
    r = report { "--format", "json", "--accounts", path }
    os.remove(path)
    assert.are.equal(2, r.status)
    assert.are.equal("", r.stdout)
    assert.truthy(r.stderr:find(path .. ": unknownproxies[1].pasword: unknown field", 1, true), r.stderr)
    path = scratch('{"unknownproxies":[],"oxylab":[]}')
    r = report { "--accounts", path }
    os.remove(path)
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find(path .. ": oxylab: unknown key", 1, true), r.stderr)
  end)

  it("names a file that is not JSON or not an object, in one line without a traceback", function()
    for _, text in ipairs { '{"unknownproxies": [', "[]", '"x"' } do
      local path = scratch(text)
      local r = report { "--accounts", path }
      os.remove(path)
      assert.are.equal(2, r.status, text)
      assert.truthy(r.stderr:find(path .. ": ", 1, true), r.stderr)
      assert.is_nil(r.stderr:find("traceback", 1, true), r.stderr)
    end
    local r = report { "--accounts", "/nonexistent/accounts.json" }
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find("cannot read /nonexistent/accounts.json", 1, true), r.stderr)
  end)

  it("filters by share and by provider", function()
    local r = report { "--format", "json", "--min-share", "0.8" }
    assert.are.equal(0, r.status, r.stderr)
    local rows = json.decode(r.stdout)
    assert.are.equal(1, #rows) -- 85% at UnknownProxies; unlimited and balances are left out
    assert.are.equal("aaaa0002", rows[1].username)
    assert.are.equal(0, #json.decode(report({ "--format", "json", "--min-share", "1" }).stdout))
    assert.are.equal(3, #json.decode(report({ "--format", "json", "--min-share", "0" }).stdout)) -- not team_gamma
    rows = json.decode(report({ "--format", "json", "--provider", "oxylabs,resifactory" }).stdout)
    for _, row in ipairs(rows) do assert.are_not.equal("unknownproxies", row.provider) end
    assert.are.equal(4, #rows)
    r = report { "--provider", "unknownproxies" }
    assert.matches("^provider%s+account%s+id", r.stdout)
    assert.is_nil(r.stdout:find("oxylabs", 1, true))
  end)

  it("refuses bad options, naming the option", function()
    for _, v in ipairs { "2", "-0.1" } do
      local r = report { "--min-share", v }
      assert.are.equal(2, r.status)
      assert.truthy(r.stderr:find("--min-share must be between 0 and 1, got " .. v, 1, true), r.stderr)
    end
    local r = report { "--min-share", "half" }
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find('--min-share expects a number, got "half"', 1, true), r.stderr)
    r = report { "--provider", "oxylabs,unknownproxy" }
    assert.are.equal(2, r.status)
    assert.are.equal("", r.stdout)
    assert.truthy(r.stderr:find('--provider: unknown provider "unknownproxy" (known: unknownproxies, oxylabs, resifactory)',
      1, true), r.stderr)
    r = report { "--format", "xml" }
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find('--format must be one of csv, json, table, got "xml"', 1, true), r.stderr)
    r = report { "extra" }
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find("unexpected argument extra", 1, true), r.stderr)
    r = report({}, { "UNKNOWNPROXIES_USERNAME=", "OXYLABS_USERNAME=", "RF_API_KEY=" })
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find("no accounts", 1, true), r.stderr)
  end)

  it("documents every column and option in --help", function()
    local r = report { "--help" }
    assert.are.equal(0, r.status)
    for _, c in ipairs(COLUMNS) do assert.truthy(r.stdout:find(c, 1, true), c) end
    for _, o in ipairs { "--format", "--accounts", "--provider", "--min-share" } do
      assert.truthy(r.stdout:find(o, 1, true), o)
    end
  end)

  it("reports an account that fails and still prints the others (exit 1)", function()
    local r = report({ "--format", "json" }, { "OXYLABS_PASSWORD=wrong-password" })
    assert.are.equal(1, r.status)
    assert.matches("oxylabs account main_one failed", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("wrong-password", 1, true))
    assert.are.equal(4, #json.decode(r.stdout))
  end)
end)
