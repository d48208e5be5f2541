-- resi oxy: Oxylabs sub-users from the shell, run as a user runs it (a
-- separate process, another working directory) against resi sim: tables
-- and --json asserted on the sandbox's own state, errors and exit
-- statuses, the main user's password kept out of the output.
local json = require "resi.json"
local provider_cli = require "spec.support.provider_cli"

describe("resi oxy", function()
  local cli, sim, acct

  setup(function()
    cli = provider_cli.start { tool = "oxy", provider = "oxylabs", seed = 62 }
    sim, acct = cli.sim, cli.sim.accounts.oxylabs[1]
  end)
  teardown(function() cli:stop() end)

  -- Runs `resi oxy ARGS` (extra env last).
  local function oxy(args, extra) return cli:run(args, extra) end

  -- The sandbox's sub-users of the account (admin state), in order.
  local function state_users()
    return sim:state().providers.oxylabs.accounts[1].sub_users
  end

  -- Asserts that the main user's password (and extra) shows nowhere.
  local function assert_no_secret(r, extra) provider_cli.assert_no_secret(r, { acct.password, extra }) end

  it("lists the sub-users (tab-separated when piped, --json), from any directory, twice alike", function()
    local users = state_users()
    assert.are.equal(3, #users)
    local want = { "ID\tUSERNAME\tSTATUS\tUSED\tLIMIT\tUSED%\tAUTO_DISABLE\tLIFETIME\tCREATED" }
    for _, u in ipairs(users) do
      if u.traffic_limit == json.null then u.traffic_limit = nil end
      local limit = u.traffic_limit and ("%.2f GB"):format(u.traffic_limit) or "unlimited"
      local share = u.traffic_limit and ("%d%%"):format(math.floor(u.traffic / u.traffic_limit * 100 + 0.5)) or "-"
      want[#want + 1] = table.concat({ tostring(u.id), u.username, u.status, ("%.2f GB"):format(u.traffic), limit, share,
        u.auto_disable and "yes" or "no", u.lifetime and "yes" or "no", u.created_at }, "\t")
    end
    cli:assert_prints_twice({ "users" }, want, { acct.password })
    local r = oxy { "users", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    local list = json.decode(r.stdout)
    for i, u in ipairs(users) do
      local j = list[i]
      assert.are.equal(tostring(u.id), j.id)
      assert.are.equal(u.username, j.username)
      assert.are.equal(u.period_bytes, j.used_bytes)
      assert.are.equal(u.traffic_limit == nil, j.unlimited)
      assert.are.equal(u.traffic_limit and math.floor(u.traffic_limit * 1e9 + 0.5) or json.null, j.limit_bytes)
      assert.are.equal(u.auto_disable, j.auto_disable)
      assert.is_nil(j.password)
    end
  end)

  it("shows a sub-user's stats and the account's client stats as the sandbox counts them", function()
    local u = state_users()[1]
    sim:usage { id = u.id, add_gb = 1.5 }
    local r = oxy { "stats", tostring(u.id), "--type", "week", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    local j = json.decode(r.stdout)
    assert.are.equal(tostring(u.id), j.id)
    assert.are.equal("week", j.type)
    assert.are.equal(7, #j.results)
    local sum = 0
    for _, d in ipairs(j.results) do sum = sum + d.traffic_gb end
    assert.is_true(math.abs(sum - j.traffic_gb) < 1e-9)
    assert.is_true(j.traffic_gb >= 1.5 - 1e-9)
    r = oxy { "stats", tostring(u.id), "--type", "week" }
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:find("\ntotal\t" .. ("%.4f"):format(j.traffic_gb) .. "\n", 1, true), r.stdout)
    local month = sim:state().providers.oxylabs.accounts[1].month_bytes
    r = oxy { "client-stats", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    j = json.decode(r.stdout)
    assert.is_true(math.abs(j.traffic_gb - month / 1e9) < 1e-6, r.stdout)
    r = oxy { "client-stats" }
    assert.truthy(r.stdout:find("\ntraffic_gb\t" .. ("%.4f"):format(month / 1e9) .. "\n", 1, true), r.stdout)
    assert_no_secret(r)
    -- a bad type is refused before any request: exit 2, the field named
    r = oxy { "stats", tostring(u.id), "--type", "year" }
    assert.are.equal(2, r.status)
    assert.are.equal("resi oxy stats: oxylabs: validation invalid_type: type must be one of 24h, week, month, "
      .. "current_month, lifetime, custom\n", r.stderr)
    r = oxy { "stats", tostring(u.id), "--from", "2026-13-01", "--to", "x" }
    assert.are.equal(2, r.status)
    assert.are.equal('resi oxy stats: oxylabs: validation invalid_date_to: date_to is required for type custom, as '
      .. '"YYYY-MM-DD" or "YYYY-MM-DD HH"\n', r.stderr)
  end)

  it("creates a sub-user and prints the password it chose, once", function()
    local r = oxy { "create", "--username", "cli_new1", "--gb", "3", "--auto-disable", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    local j = json.decode(r.stdout)
    local su = assert(sim.world.providers.oxylabs.sub_users[math.tointeger(tonumber(j.id))], "the sandbox has it")
    assert.are.equal("cli_new1", su.username)
    assert.are.equal(3, su.traffic_limit)
    assert.is_true(su.auto_disable)
    assert.are.equal(su.password, j.password)
    assert.truthy(r.stderr:find("sub-user " .. j.id .. "'s password is shown this once", 1, true), r.stderr)
    assert_no_secret(r)
    r = oxy { "users" }
    assert.truthy(r.stdout:find("\n" .. j.id .. "\tcli_new1\tactive\t0.00 GB\t3.00 GB\t0%\tyes\tno\t", 1, true), r.stdout)
    assert_no_secret(r, su.password)
    -- the sandbox refuses a second one of that name: exit 1, one line
    r = oxy { "create", "--username", "cli_new1" }
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:match("^resi oxy create: oxylabs: conflict %(HTTP 409%)[^\n]*\n$"), r.stderr)
    r = oxy { "create", "--username", "bad name" }
    assert.are.equal(2, r.status)
    assert.are.equal("resi oxy create: oxylabs: validation invalid_username: username is required: letters, digits and "
      .. "underscore\n", r.stderr)
  end)

  it("deletes a sub-user with --yes, and names an unknown one", function()
    local u = state_users()[2]
    local r = oxy { "delete", tostring(u.id) }
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find("give --yes", 1, true))
    r = oxy { "delete", tostring(u.id), "--yes" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("deleted " .. u.id .. "\n", r.stdout)
    for _, s in ipairs(state_users()) do assert.are_not.equal(u.id, s.id) end
    r = oxy { "delete", tostring(u.id), "--yes" }
    assert.are.equal(1, r.status)
    assert.are.equal("resi oxy delete: oxylabs: not_found: no sub-user " .. u.id .. "\n", r.stderr)
  end)

  it("names missing or wrong credentials without the value", function()
    local r = oxy({ "users" }, { "OXYLABS_USERNAME=" })
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find("username is required (set OXYLABS_USERNAME, or OXYLABS_USERNAME_FILE", 1, true), r.stderr)
    r = oxy({ "users" }, { "OXYLABS_PASSWORD=N0tTheRight#Pass" })
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:match("^resi oxy users: oxylabs: [^\n]*%(HTTP 40[13]%)[^\n]*\n$"), r.stderr)
    assert_no_secret(r, "N0tTheRight#Pass")
  end)

  it("has a --help for every command", function()
    cli:assert_help { "users", "stats", "create", "delete", "client-stats" }
  end)
end)
