-- resi up: UnknownProxies tokens from the shell, run as a user runs it (a
-- separate process, another working directory) against resi sim: tables
-- and --json asserted on the sandbox's own state, errors and exit
-- statuses, secrets kept out of the output, delete's confirmation on a
-- real terminal.
local json = require "resi.json"
local proc = require "spec.support.proc"
local pty = require "spec.support.pty"
local provider_cli = require "spec.support.provider_cli"

describe("resi up", function()
  local cli, sim, acct

  setup(function()
    cli = provider_cli.start { tool = "up", provider = "unknownproxies", seed = 61 }
    sim, acct = cli.sim, cli.sim.accounts.unknownproxies[1]
  end)
  teardown(function() cli:stop() end)

  -- Runs `resi up ARGS` (extra env last).
  local function up(args, extra) return cli:run(args, extra) end

  -- The sandbox's tokens of the account (its admin state), by id.
  local function state_tokens()
    local out = {}
    for _, t in ipairs(sim:state().providers.unknownproxies.accounts[1].tokens) do out[t.token] = t end
    return out
  end

  local assert_no_secret = provider_cli.assert_no_secret

  -- Every token password the sandbox holds, and the account's.
  local function all_secrets()
    local s = { acct.password }
    for _, t in pairs(state_tokens()) do s[#s + 1] = t.password end
    return s
  end

  -- The tab-separated line `tokens` prints for a sandbox token.
  local function expected_line(t)
    local expires = t.durationHours > 0 and os.date("!%Y-%m-%d %H:%M", t.createdAt + t.durationHours * 3600) or "-"
    return table.concat({ t.token, t.username, t.status, ("%.2f GB"):format(t.dataUsage / 1e9),
      ("%.2f GB"):format(t.dataLimit / 1e9), ("%d%%"):format(math.floor(t.dataUsage / t.dataLimit * 100 + 0.5)),
      expires }, "\t")
  end

  it("lists the tokens as tab-separated values when piped, twice alike", function()
    local tokens = state_tokens()
    local want = { "ID\tUSERNAME\tSTATUS\tUSED\tLIMIT\tUSED%\tEXPIRES" }
    for _, t in ipairs(sim:state().providers.unknownproxies.accounts[1].tokens) do want[#want + 1] = expected_line(t) end
    assert.are.equal(4, #want) -- the seeded account has three tokens
    cli:assert_prints_twice({ "tokens" }, want, all_secrets())
    assert.truthy(next(tokens))
  end)

  it("prints --json with stable keys and the sandbox's numbers, no password", function()
    local r = up { "tokens", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    local list = json.decode(r.stdout)
    local tokens = state_tokens()
    assert.are.equal(3, #list)
    for _, j in ipairs(list) do
      local t = assert(tokens[j.id], j.id)
      assert.are.same({ "allowed_pools", "created_at", "expires_at", "hours", "id", "limit_bytes", "status", "used_bytes",
        "used_share", "username" }, (function()
        local keys = {}
        for k in pairs(j) do keys[#keys + 1] = k end
        table.sort(keys)
        return keys
      end)())
      assert.are.equal(t.dataUsage, j.used_bytes)
      assert.are.equal(t.dataLimit, j.limit_bytes)
      assert.are.equal(t.username, j.username)
      assert.are.equal(t.durationHours, j.hours)
      assert.are.equal(t.createdAt, j.created_at)
    end
    assert_no_secret(r, all_secrets())
  end)

  it("draws an aligned table on a terminal", function()
    local t = pty.run { argv = { proc.resi_path(), "up", "tokens" }, env = cli:pty_env(), cols = 120,
      steps = { { wait_exit = true } } }
    assert.are.equal(0, t.status, t.output)
    local lines = {}
    for line in t.screen:gmatch("[^\n]+") do
      if line:match("%S") then lines[#lines + 1] = line end
    end
    assert.are.equal(4, #lines, t.screen)
    assert.truthy(lines[1]:match("^ID%s+USERNAME%s+STATUS%s+USED%s+LIMIT%s+USED%%%s+EXPIRES$"), lines[1])
    assert.is_nil(t.output:find("\t", 1, true))
    -- the columns line up: every row has its status where the header has STATUS
    local col = lines[1]:find("STATUS", 1, true)
    for i = 2, 4 do assert.are.equal("active", lines[i]:sub(col, col + 5), lines[i]) end
  end)

  it("shows one token, and names an unknown one (exit 1, one line)", function()
    local id, t = next(state_tokens())
    local r = up { "token", id, "--json" }
    assert.are.equal(0, r.status, r.stderr)
    local j = json.decode(r.stdout)
    assert.are.equal(id, j.id)
    assert.are.equal(t.dataLimit, j.limit_bytes)
    r = up { "token", id }
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:find("\nid\t" .. id .. "\n", 1, true), r.stdout)
    assert.truthy(r.stdout:find("\nlimit\t" .. ("%.2f GB"):format(t.dataLimit / 1e9) .. "\n", 1, true), r.stdout)
    assert_no_secret(r, all_secrets())
    -- --usage: the sandbox's daily usage of the token
    sim:usage { id = id, add_bytes = 1500000000 }
    r = up { "token", id, "--usage", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    local days = json.decode(r.stdout).usage
    assert.are.equal(1, #days)
    assert.are.equal(1500000000, days[1].bytes)
    r = up { "token", id, "--usage" }
    local tail = "\n\nDATE\tUSED\n" .. days[1].date .. "\t1.50 GB\n"
    assert.are.equal(tail, r.stdout:sub(-#tail))
    r = up { "token", "NoSuchTok3n" }
    assert.are.equal(1, r.status)
    assert.are.equal("", r.stdout)
    assert.are.equal("resi up token: unknownproxies: not_found (HTTP 404) token_not_found: no token NoSuchTok3n\n",
      r.stderr)
  end)

  it("creates a token and prints its password once, saying so", function()
    local before = state_tokens()
    local r = up { "create", "--gb", "2", "--hours", "24", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    local j = json.decode(r.stdout)
    assert.is_nil(before[j.id])
    local t = assert(state_tokens()[j.id], "the sandbox has the new token")
    assert.are.equal(2000000000, t.dataLimit)
    assert.are.equal(24, t.durationHours)
    assert.are.equal(t.password, j.password)
    assert.are.equal(1, select(2, r.stdout:gsub(t.password, "")))
    assert.truthy(r.stderr:find("token " .. j.id .. "'s password is shown this once", 1, true), r.stderr)
    assert_no_secret(r, { acct.password })
    -- listed afterwards without its password
    r = up { "tokens" }
    assert.truthy(r.stdout:find("\n" .. j.id .. "\t", 1, true))
    assert_no_secret(r, { t.password })
  end)

  it("refuses bad input before any request (exit 2, the field named)", function()
    local served = sim:served()
    local r = up { "create", "--gb", "1.5" }
    assert.are.equal(2, r.status)
    assert.are.equal("resi up create: unknownproxies: validation invalid_dataLimit: dataLimit must be a whole number of "
      .. "gigabytes (a multiple of 1000000000)\n", r.stderr)
    r = up { "create", "--gb", "2", "--username", "short" }
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find("username must be exactly 8 characters", 1, true), r.stderr)
    assert.are.equal(served, sim:served())
    for _, case in ipairs {
      { { "create" }, "resi up create: missing --gb N (the data limit in GB)\n(see resi up create --help)\n" },
      { { "token" }, "resi up token: missing ID\n(see resi up token --help)\n" },
      { { "tokens", "--bogus" }, "resi up tokens: unknown option --bogus\n(see resi up tokens --help)\n" },
      { { "create", "--gb", "two" }, 'resi up create: --gb expects a number, got "two"\n(see resi up create --help)\n' },
      { { "modify", "x" }, "resi up modify: nothing to change: give --gb, --hours, --pools, --all-pools or "
        .. "--new-password\n(see resi up modify --help)\n" },
      { { "frobnicate" }, "resi up: unknown command 'frobnicate'\n(see resi up --help)\n" },
      { { "create", "--gb", "1", "--password", "Cmd1inePw" }, "resi up create: unknown option --password\n"
        .. "(see resi up create --help)\n" },
    } do
      r = up(case[1])
      assert.are.equal(2, r.status, table.concat(case[1], " "))
      assert.are.equal(case[2], r.stderr)
    end
  end)

  it("modifies a token: limit, pools, a new password printed once", function()
    local id = next(state_tokens())
    local r = up { "modify", id, "--gb", "30", "--pools", "tickets-us-s", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    local t = state_tokens()[id]
    assert.are.equal(30000000000, t.dataLimit)
    assert.are.same({ "tickets-us-s" }, t.allowedPools)
    assert.are.same({ "tickets-us-s" }, json.decode(r.stdout).allowed_pools)
    assert.is_nil(json.decode(r.stdout).password)
    local old = t.password
    r = up { "modify", id, "--new-password" }
    assert.are.equal(0, r.status, r.stderr)
    t = state_tokens()[id]
    assert.are_not.equal(old, t.password)
    assert.truthy(r.stdout:find("\npassword\t" .. t.password .. "\n", 1, true), r.stdout)
    assert.truthy(r.stderr:find("new password is shown this once", 1, true))
    assert_no_secret(r, { old, acct.password })
    r = up { "modify", id, "--all-pools" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.same({}, state_tokens()[id].allowedPools)
  end)

  it("deletes only when confirmed: --yes, or yes on a terminal", function()
    local ids = {}
    for id, t in pairs(state_tokens()) do
      if t.status == "active" then ids[#ids + 1] = id end
    end
    table.sort(ids)
    local r = up { "delete", ids[1] }
    assert.are.equal(2, r.status)
    assert.truthy(r.stderr:find("this cannot be undone: give --yes (stdin is not a terminal to ask on)", 1, true))
    assert.are.equal("active", state_tokens()[ids[1]].status)
    r = up { "delete", ids[1], "-y", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.same({ id = ids[1], deleted = true, already = false }, json.decode(r.stdout))
    assert.are.equal("deleted", state_tokens()[ids[1]].status)
    r = up { "delete", ids[1], "--yes" }
    assert.are.equal(1, r.status)
    assert.are.equal("resi up delete: unknownproxies: not_found: token " .. ids[1] .. " was deleted\n", r.stderr)
    -- on a terminal: asked; "n" keeps it, "y" deletes it
    local penv = cli:pty_env()
    local t = pty.run { argv = { proc.resi_path(), "up", "delete", ids[2] }, env = penv,
      steps = { { wait_for = "It cannot be undone. [y/N]" }, { send = "n\r" }, { wait_exit = true } } }
    assert.are.equal(1, t.status, t.output)
    assert.truthy(t.output:find("not confirmed; nothing was deleted", 1, true), t.output)
    assert.are.equal("active", state_tokens()[ids[2]].status)
    t = pty.run { argv = { proc.resi_path(), "up", "delete", ids[2] }, env = penv,
      steps = { { wait_for = "[y/N]" }, { send = "y\r" }, { wait_exit = true } } }
    assert.are.equal(0, t.status, t.output)
    assert.truthy(t.output:find("deleted " .. ids[2], 1, true), t.output)
    assert.are.equal("deleted", state_tokens()[ids[2]].status)
  end)

  it("names missing credentials (exit 2) and a wrong password (exit 1) without the value", function()
    local r = up({ "tokens" }, { "UNKNOWNPROXIES_PASSWORD=" })
    assert.are.equal(2, r.status)
    assert.are.equal("resi up tokens: unknownproxies: validation invalid_password: password is required (set "
      .. "UNKNOWNPROXIES_PASSWORD, or UNKNOWNPROXIES_PASSWORD_FILE, or $CREDENTIALS_DIRECTORY/UNKNOWNPROXIES_PASSWORD)\n",
      r.stderr)
    r = up({ "tokens" }, { "UNKNOWNPROXIES_PASSWORD=Wr0ngPassw0rdX" })
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:match("^resi up tokens: unknownproxies: auth %(HTTP 401%)[^\n]*\n$"), r.stderr)
    assert_no_secret(r, { "Wr0ngPassw0rdX" })
  end)

  it("has a --help for every command with its usage and exit status", function()
    cli:assert_help { "tokens", "token", "create", "modify", "delete" }
    local r = up { "--help" }
    assert.are.equal(0, r.status)
    assert.truthy(r.stdout:find("^usage: resi up COMMAND"))
  end)
end)
