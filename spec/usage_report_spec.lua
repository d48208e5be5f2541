-- scripts/usage_report.lua against resi sim: every account's tokens and
-- balances in table, JSON and CSV form, accounts from a file or the
-- environment, a failing account reported without losing the others.
local json = require "resi.json"
local proc = require "spec.support.proc"
local scratch = require("spec.support.files").scratch

describe("scripts/usage_report.lua", function()
  local sim, env

  setup(function()
    sim = require("spec.support.sim").start { seed = 4 }
    env = sim:env()
  end)
  teardown(function() sim:stop() end)

  -- Runs the report with args.
  local function report(args, extra_env)
    local e = { table.unpack(env) }
    for _, v in ipairs(extra_env or {}) do e[#e + 1] = v end
    local argv = { proc.resi_path(), "run", "scripts/usage_report.lua" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return proc.run(argv, { env = e })
  end

  it("lists every token and balance as JSON with exact byte counts", function()
    local r = report { "--format", "json" }
    assert.are.equal(0, r.status, r.stderr)
    local rows = json.decode(r.stdout)
    local by = {}
    for _, row in ipairs(rows) do by[row.provider] = (by[row.provider] or 0) + 1 end
    assert.are.same({ unknownproxies = 3, oxylabs = 3, resifactory = 2 }, by)
    for _, row in ipairs(rows) do
      if row.provider == "unknownproxies" and row.limit_bytes == 20000000000 then
        assert.are.equal(17000000000, row.used_bytes)
        assert.are.equal(85, row.used_pct)
      end
      if row.id == "pool:walmart_premium" then assert.are.equal(25, row.balance_gb) end
      if row.username == "team_gamma" then assert.are.equal("unlimited", row.limit_bytes) end
    end
  end)

  it("filters by share and writes CSV and an aligned table", function()
    local r = report { "--format", "csv", "--min-share", "0.8" }
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("provider,account,id,username,status,used_bytes,limit_bytes,used_pct,expires_at,balance_gb", lines[1])
    assert.are.equal(3, #lines) -- 85% at UnknownProxies, 82% at Oxylabs
    r = report { "--provider", "unknownproxies" }
    assert.matches("^provider%s+account%s+id", r.stdout)
    assert.matches("85%.0%%", r.stdout)
    assert.is_nil(r.stdout:find("oxylabs", 1, true))
  end)

  it("reports an account that fails and still prints the others (exit 1)", function()
    local r = report({ "--format", "json" }, { "OXYLABS_PASSWORD=wrong-password" })
    assert.are.equal(1, r.status)
    assert.matches("oxylabs account .* failed", r.stderr)
    assert.is_nil(r.stderr:find("wrong-password", 1, true))
    assert.are.equal(5, #json.decode(r.stdout))
  end)

  it("reads accounts from a file and rejects bad options", function()
    local path = scratch(json.encode { unknownproxies = { sim:credentials("unknownproxies") } })
    local r = report { "--format", "json", "--accounts", path }
    assert.are.equal(3, #json.decode(r.stdout))
    os.remove(path)
    r = report { "--format", "xml" }
    assert.are.equal(2, r.status)
    assert.matches("--format must be one of csv, json, table", r.stderr, 1, true)
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
  end)

  it("refuses a share outside 0..1", function()
    for _, v in ipairs { "2", "-0.1" } do
      local r = report { "--min-share", v }
      assert.are.equal(2, r.status)
      assert.truthy(r.stderr:find("--min-share must be between 0 and 1, got " .. v, 1, true), r.stderr)
    end
  end)
end)
