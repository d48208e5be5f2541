-- resi rf: ResiFactory from the shell, run as a user runs it (a separate
-- process, another working directory) against resi sim: balance, usage,
-- pools, me and generate asserted on the sandbox's own state, errors and
-- exit statuses, the API key never in the output.
local json = require "resi.json"
local uv = require "luv"
local provider_cli = require "spec.support.provider_cli"

describe("resi rf", function()
  local cli, sim, cwd, key

  setup(function()
    cli = provider_cli.start { tool = "rf", provider = "resifactory", seed = 63 }
    sim, cwd, key = cli.sim, cli.dir, cli.sim.accounts.resifactory[1].api_key
  end)
  teardown(function() cli:stop() end)

  -- Runs `resi rf ARGS` (extra env last).
  local function rf(args, extra) return cli:run(args, extra) end

  -- The sandbox's account (admin state).
  local function state()
    return sim:state().providers.resifactory.accounts[1]
  end

  -- Asserts the API key shows nowhere (nor its body without the prefix).
  local function assert_no_key(r) provider_cli.assert_no_secret(r, { key, key:sub(9) }) end

  it("prints the balance per pool (tab-separated when piped, --json), twice alike", function()
    local balances = state().balances
    local pools = {}
    for p in pairs(balances) do pools[#pools + 1] = p end
    table.sort(pools)
    local want = { "POOL\tBALANCE_GB" }
    for _, p in ipairs(pools) do want[#want + 1] = ("%s\t%.4f"):format(p, balances[p]) end
    cli:assert_prints_twice({ "balance" }, want, { key, key:sub(9) })
    local r = rf { "balance", "--json" }
    assert.are.same({ balances = balances }, json.decode(r.stdout))
  end)

  it("prints usage, pools and me as the sandbox has them, the key masked", function()
    sim:usage { api_key = key, domain = "walmart.com", add_bytes = 2147483648, add_requests = 42 }
    local r = rf { "usage", "--limit", "5" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("DOMAIN\tBYTES\tGB\tREQUESTS\nwalmart.com\t2147483648\t2.00\t42\n", r.stdout)
    r = rf { "usage", "--json" }
    assert.are.same({ top_domains = { { domain = "walmart.com", bytes = 2147483648, requests = 42 } } },
      json.decode(r.stdout))
    r = rf { "usage", "--limit", "500" }
    assert.are.equal(2, r.status)
    assert.are.equal("resi rf usage: resifactory: validation invalid_limit: limit must be from 1 to 100 (got 500)\n",
      r.stderr)
    local pools = sim:state().providers.resifactory.pools
    r = rf { "pools", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    local j = json.decode(r.stdout)
    assert.are.equal(#pools, #j.pools)
    for i, p in ipairs(pools) do
      assert.are.equal(p.id, j.pools[i].id)
      assert.are.equal(p.host, j.pools[i].host)
      assert.are.same(p.proxy_types, j.pools[i].proxy_types)
    end
    r = rf { "pools" }
    assert.truthy(r.stdout:find("\n" .. pools[1].id .. "\t" .. pools[1].label .. "\t" .. pools[1].host .. "\t", 1, true),
      r.stdout)
    local s = state()
    r = rf { "me", "--json" }
    assert.are.equal(0, r.status, r.stderr)
    j = json.decode(r.stdout)
    assert.are.equal(s.id, j.id)
    assert.are.equal(s.username, j.username)
    assert.are.same(s.scopes, j.scopes)
    assert.are.equal(key:sub(-4), j.key.last4)
    r = rf { "me" }
    assert.truthy(r.stdout:find("\nkey\tsandbox key (rf_live_…" .. key:sub(-4) .. ")\n", 1, true), r.stdout)
    assert_no_key(r)
  end)

  it("generates sticky proxies on stdout, a summary on stderr", function()
    local r = rf { "generate", "--country", "us", "-n", "5", "--type", "sticky", "--minutes", "30" }
    assert.are.equal(0, r.status, r.stderr)
    local lines = {}
    for line in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(5, #lines)
    for _, line in ipairs(lines) do
      assert.truthy(line:match("^proxy%.resifactory%.net:8000:[^:]*%-country%-us%-session%-[%w]+%-sesstime%-30:[%w]+$"), line)
    end
    assert.are.equal("5 proxies, pool walmart_premium, country us\n", r.stderr)
    local batch = state().batches[1]
    assert.are.equal(1, #state().batches)
    assert.are.same({ 5, "us", "sticky", 30 }, { batch.quantity, batch.country, batch.proxy_type, batch.session_minutes })
    assert_no_key(r)
  end)

  it("writes the list to -o FILE (mode 0600) in the --format asked, and --json summaries", function()
    local path = cwd .. "/out.txt"
    local r = rf { "generate", "-n", "3", "--format", "url", "-o", path, "--json" }
    assert.are.equal(0, r.status, r.stderr)
    local j = json.decode(r.stdout)
    assert.are.same({ count = 3, pool = "walmart_premium", country = json.null, is_demo = false, replayed = false,
      format = "url", file = path }, j)
    local text = assert(require("resi.fs").read(path))
    local n = 0
    for line in text:gmatch("[^\n]+") do
      n = n + 1
      assert.truthy(line:match("^http://[^:]+:[%w]+@proxy%.resifactory%.net:8000$"), line)
    end
    assert.are.equal(3, n)
    assert.are.equal(384, uv.fs_stat(path).mode & 511)
    -- relative to the working directory, as a user expects
    r = rf { "generate", "-n", "2", "-o", "rel.txt" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("2 proxies, pool walmart_premium, country any -> rel.txt\n", r.stdout)
    assert.truthy(require("resi.fs").exists(cwd .. "/rel.txt"))
    r = rf { "generate", "-n", "2", "--json" }
    j = json.decode(r.stdout)
    assert.are.equal(2, #j.proxies)
    assert.are.equal("proxy.resifactory.net", j.proxies[1].host)
    assert.are.equal(8000, j.proxies[1].port)
    assert_no_key(r)
  end)

  it("writes one whole list when two generates race for the same -o FILE", function()
    local path = cwd .. "/race.txt"
    local results = require("resi").all {
      function() return rf { "generate", "-n", "40", "--format", "url", "-o", path } end,
      function() return rf { "generate", "-n", "60", "--format", "url", "-o", path } end,
    }
    for _, r in ipairs(results) do assert.are.equal(0, r.status, r.stderr) end
    local n = 0
    for line in assert(require("resi.fs").read(path)):gmatch("[^\n]+") do
      n = n + 1
      assert.truthy(line:match("^http://[^:]+:[%w]+@proxy%.resifactory%.net:8000$"), line)
    end
    assert.is_true(n == 40 or n == 60, tostring(n))
  end)

  it("refuses bad input before spending a request, and demo credentials with --require-live", function()
    local served = sim:served()
    for _, case in ipairs {
      { { "generate", "--country", "US" }, 'resi rf generate: resifactory: validation invalid_country: country must be '
        .. 'an ISO 3166-1 alpha-2 code in lower case (e.g. "us")\n' },
      { { "generate", "--type", "rotating", "--minutes", "30" }, "resi rf generate: resifactory: validation "
        .. "invalid_sessionDuration: sessionDuration applies only to sticky and mobile_sticky (rotating types ignore it)\n" },
      { { "generate", "-n", "0" }, "resi rf generate: resifactory: validation invalid_quantity: quantity must be from 1 "
        .. "to 250000 (got 0)\n" },
      { { "generate", "--format", "xml" }, 'resi rf generate: --format must be one of hostport, json, list, proxychains, '
        .. 'url, userpass, got "xml"\n(see resi rf generate --help)\n' },
      { { "generate", "-o", "/nonexistent/dir/x.txt" }, "resi rf generate: -o /nonexistent/dir/x.txt: directory "
        .. "/nonexistent/dir does not exist\n(see resi rf generate --help)\n" },
      { { "balance", "--api-key", "rf_live_x" }, "resi rf balance: unknown option --api-key\n(see resi rf balance --help)\n" },
    } do
      local r = rf(case[1])
      assert.are.equal(2, r.status, table.concat(case[1], " "))
      assert.are.equal(case[2], r.stderr)
      assert.are.equal("", r.stdout)
    end
    assert.are.equal(served, sim:served())
    local batches = #state().batches
    local r = rf { "generate", "--pool", "retail_select", "-n", "1", "--require-live" }
    assert.are.equal(1, r.status)
    assert.are.equal("resi rf generate: resifactory: demo is_demo: pool retail_select has no balance: the API returned "
      .. "demo credentials that do not work\n", r.stderr)
    assert.are.equal("", r.stdout)
    assert.are.equal(batches + 1, #state().batches)
  end)

  it("names a missing or bad key without printing it", function()
    local r = rf({ "balance" }, { "RF_API_KEY=" })
    assert.are.equal(2, r.status)
    assert.are.equal("resi rf balance: resifactory: validation invalid_api_key: api_key is required and starts with "
      .. "rf_live_ (set RF_API_KEY, or RF_API_KEY_FILE, or $CREDENTIALS_DIRECTORY/RF_API_KEY)\n", r.stderr)
    r = rf({ "balance" }, { "RF_API_KEY=rf_live_N0tAKeyTheSandboxKnows" })
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:match("^resi rf balance: resifactory: auth %(HTTP 401%)[^\n]*\n$"), r.stderr)
    assert.is_nil(r.stderr:find("N0tAKeyTheSandboxKnows", 1, true))
  end)

  it("has a --help for every command", function()
    cli:assert_help { "balance", "usage", "pools", "me", "generate" }
  end)
end)
