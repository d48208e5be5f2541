-- Sticky-session lists (`resi proxies sticky`, proxylist.sticky{}): the
-- credentials in a generated list are always the ones the caller gives (an
-- Oxylabs sub-user, an UnknownProxies token), never the account's API login
-- from the environment; every missing required option is named in one usage
-- error; an UnknownProxies pool must be one resi knows.
local proxylist = require "resi.proxylist"
local sticky = require "resi.proxylist.sticky"
local tablex = require "pl.tablex"
local proc = require "spec.support.proc"

-- The account's API logins, set in the environment of every command below.
local API_ENV = { "OXYLABS_USERNAME=apilogin", "OXYLABS_PASSWORD=ApiPassw0rd", "UNKNOWNPROXIES_USERNAME=upapilog",
  "UNKNOWNPROXIES_PASSWORD=UpApiPw77" }

-- The proxy user's password for sticky_cli: given in the environment
-- (RESI_PROXY_PASSWORD), never on the command line.
local function PW(password) return { env = "RESI_PROXY_PASSWORD=" .. password } end

-- Runs `resi proxies sticky ARGS` with the API logins in the environment
-- (a PW element of ARGS goes to the environment too).
local function sticky_cli(args, env)
  local argv, vars = { "proxies", "sticky" }, { "RESI_PROXY_PASSWORD=", "RESI_PROXY_PASSWORD_FILE=" }
  for _, a in ipairs(args) do
    if type(a) == "table" then vars[#vars + 1] = a.env else argv[#argv + 1] = a end
  end
  for _, kv in ipairs(API_ENV) do vars[#vars + 1] = kv end
  for _, kv in ipairs(env or {}) do vars[#vars + 1] = kv end
  return proc.resi(argv, { env = vars, stdin = "" })
end

-- Asserts that no API login or given password shows in a command's output.
local function assert_no_secrets(r, extra)
  for _, out in ipairs { r.stdout, r.stderr } do
    for _, secret in ipairs { "ApiPassw0rd", "UpApiPw77", extra } do
      assert.falsy(out:find(secret, 1, true), secret .. " in: " .. out)
    end
  end
end

describe("resi proxies sticky", function()
  it("never takes the credentials from the API login in the environment", function()
    local r = sticky_cli { "--provider", "oxylabs", "--sessions", "3" }
    assert.equal(2, r.status, r.stderr)
    assert.equal("", r.stdout)
    assert.truthy(r.stderr:find("missing --username U, $RESI_PROXY_PASSWORD\n", 1, true), r.stderr)
    assert.truthy(r.stderr:find("never the account's API login in $OXYLABS_USERNAME/$OXYLABS_PASSWORD", 1, true), r.stderr)
    assert.falsy(r.stderr:find("apilogin", 1, true), r.stderr)
    assert_no_secrets(r)
    r = sticky_cli { "--provider", "unknownproxies", "--sessions", "3", "--pool", "tickets-us-s" }
    assert.equal(2, r.status, r.stderr)
    assert.equal("", r.stdout)
    assert.truthy(r.stderr:find("missing --username U, $RESI_PROXY_PASSWORD\n", 1, true), r.stderr)
    assert.truthy(r.stderr:find("$UNKNOWNPROXIES_USERNAME/$UNKNOWNPROXIES_PASSWORD", 1, true), r.stderr)
    assert_no_secrets(r)
  end)

  it("writes the sub-user's credentials it is given", function()
    local r = sticky_cli { "--provider", "oxylabs", "--sessions", "3", "--minutes", "20", "--username", "sub_1",
      PW "SubPw-9x", "--to", "list" }
    assert.equal(0, r.status, r.stderr)
    assert.equal("", r.stderr)
    local n = 0
    for line in r.stdout:gmatch("[^\n]+") do
      n = n + 1
      assert.truthy(line:match("^pr%.oxylabs%.io:7777:customer%-sub_1%-sessid%-[a-z0-9]+%-sesstime%-20:SubPw%-9x$"), line)
    end
    assert.equal(3, n)
    assert.falsy(r.stdout:find("apilogin", 1, true))
    assert_no_secrets(r)
    -- the API login given explicitly works, with a warning (its password never shows on stderr)
    r = sticky_cli { "--provider", "oxylabs", "--sessions", "1", "--username", "apilogin", PW "ApiPassw0rd" }
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stderr:find("warning: --username is the account's API login ($OXYLABS_USERNAME)", 1, true), r.stderr)
    assert.falsy(r.stderr:find("ApiPassw0rd", 1, true), r.stderr)
  end)

  it("takes the proxy user's password from the environment or a file, never from the command line", function()
    for _, args in ipairs { { "--password", "Cmd1ineSecret" }, { "--password=Cmd1ineSecret" } } do
      local r = sticky_cli { "--provider", "oxylabs", "--sessions", "1", "--username", "sub_1", args[1], args[2] }
      assert.equal(2, r.status, r.stderr)
      assert.equal("", r.stdout)
      assert.truthy(r.stderr:find("--password is not taken (ps would show it to every user): set RESI_PROXY_PASSWORD", 1,
        true), r.stderr)
      assert_no_secrets(r, "Cmd1ineSecret")
    end
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("F1lePassw0rd\n")
    f:close()
    require("luv").fs_chmod(path, 384)
    local r = sticky_cli({ "--provider", "oxylabs", "--sessions", "1", "--username", "sub_1", "--to", "list" },
      { "RESI_PROXY_PASSWORD_FILE=" .. path })
    os.remove(path)
    assert.equal(0, r.status, r.stderr)
    assert.equal("", r.stderr)
    assert.truthy(r.stdout:match("^pr%.oxylabs%.io:7777:customer%-sub_1%-sessid%-[a-z0-9]+:F1lePassw0rd\n$"), r.stdout)
  end)

  it("names every missing required option in one usage error", function()
    local cases = {
      { {}, "missing --provider NAME, --sessions N\n" },
      { { "--provider", "oxylabs" }, "missing --sessions N, --username U, $RESI_PROXY_PASSWORD\n" },
      { { "--provider", "unknownproxies" }, "missing --sessions N, --username U, $RESI_PROXY_PASSWORD, --pool ID\n" },
      { { "--provider", "unknownproxies", "--sessions", "2", PW "TokPw123" }, "missing --username U, --pool ID\n" },
      { { "--provider", "template", "--sessions", "2" }, "missing --template T, --host H, --port N\n" },
    }
    for _, case in ipairs(cases) do
      local r = sticky_cli(case[1])
      assert.equal(2, r.status, r.stderr)
      assert.truthy(r.stderr:find("resi proxies sticky: " .. case[2], 1, true), r.stderr)
      assert.truthy(r.stderr:find("(see resi proxies sticky --help)", 1, true), r.stderr)
      assert_no_secrets(r, "TokPw123")
    end
    local r = sticky_cli { "--provider", "unknownproxies", "--sessions", "2" }
    assert.truthy(r.stderr:find("--pool is one of tickets-fr-s, tickets-us-s (or give --host and --port)", 1, true),
      r.stderr)
  end)

  it("takes only a known UnknownProxies pool, with its port", function()
    local r = sticky_cli { "--provider", "unknownproxies", "--sessions", "2", "--username", "abcd1234", PW
      "TokPw123", "--pool", "tickets-gb-s" }
    assert.equal(2, r.status, r.stderr)
    assert.equal("", r.stdout)
    assert.truthy(r.stderr:find("--pool tickets-gb-s: unknown unknownproxies pool (known: tickets-fr-s, tickets-us-s; "
      .. "for another gateway give --host and --port)", 1, true), r.stderr)
    assert_no_secrets(r, "TokPw123")
    -- a known pool, in any case: the pool's gateway and port
    r = sticky_cli { "--provider", "unknownproxies", "--sessions", "2", "--username", "abcd1234", PW
      "TokPw123", "--pool", "Tickets-FR-s", "--seed", "3" }
    assert.equal(0, r.status, r.stderr)
    for line in r.stdout:gmatch("[^\n]+") do
      assert.truthy(line:match("^http://abcd1234:TokPw123%-%d+@tickets%-fr%-s%.reserve2%.resi%.unknownproxies%.com:14018$"),
        line)
    end
    -- another gateway: --host and --port instead of --pool
    r = sticky_cli { "--provider", "unknownproxies", "--sessions", "1", "--username", "abcd1234", PW
      "TokPw123", "--host", "tickets-gb-s.reserve2.resi.unknownproxies.com", "--port", "14099" }
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:match("^http://abcd1234:TokPw123%-%d+@tickets%-gb%-s%.reserve2%.resi%.unknownproxies%.com:14099\n$"),
      r.stdout)
    r = sticky_cli { "--provider", "unknownproxies", "--sessions", "1", "--username", "abcd1234", PW
      "TokPw123", "--host", "gw.example.com" }
    assert.equal(2, r.status)
    assert.truthy(r.stderr:find("port is required", 1, true), r.stderr)
  end)

  it("refuses options the provider does not take", function()
    local r = sticky_cli { "--provider", "oxylabs", "--sessions", "2", "--username", "sub_1", PW "SubPw-9x",
      "--pool", "tickets-us-s" }
    assert.equal(2, r.status, r.stderr)
    assert.truthy(r.stderr:find("resi proxies sticky: --pool does not apply to --provider oxylabs", 1, true), r.stderr)
    r = sticky_cli { "--provider", "unknownproxies", "--sessions", "2", "--username", "abcd1234", PW
      "TokPw123", "--pool", "tickets-us-s", "--country", "us", "--template", "x" }
    assert.equal(2, r.status, r.stderr)
    assert.truthy(r.stderr:find("--country, --template do not apply to --provider unknownproxies", 1, true), r.stderr)
    r = sticky_cli { "--provider", "unknownproxies", "--sessions", "2", "--username", "abcd1234", PW
      "TokPw123", "--pool", "tickets-us-s", "--minutes", "5" }
    assert.equal(2, r.status, r.stderr)
    assert.truthy(r.stderr:find("documents no session lifetime parameter", 1, true), r.stderr)
    assert.falsy(r.stderr:find(".lua:", 1, true), r.stderr)
    assert_no_secrets(r, "TokPw123")
    r = sticky_cli { "--provider", "nope", "--sessions", "1" }
    assert.equal(2, r.status)
    assert.truthy(r.stderr:find("--provider nope: unknown provider (expected oxylabs, unknownproxies, template)", 1,
      true), r.stderr)
  end)

  it("refreshes a generated list, keeping its credentials", function()
    local r = sticky_cli { "--provider", "oxylabs", "--sessions", "3", "--minutes", "20", "--username", "sub_1",
      PW "SubPw9x", "--to", "list" }
    assert.equal(0, r.status, r.stderr)
    local list = r.stdout
    r = proc.resi({ "proxies", "refresh", "--minutes", "45" }, { stdin = list .. "h.example:8080:u:p\n" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("resi proxies: 3 sessions refreshed, 1 entries copied unchanged\n", r.stderr)
    local old_ids, lines = {}, {}
    for id in list:gmatch("sessid%-(%w+)") do old_ids[id] = true end
    for line in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(4, #lines)
    for i = 1, 3 do
      local id = lines[i]:match("^http://customer%-sub_1%-sessid%-(%w+)%-sesstime%-45:SubPw9x@pr%.oxylabs%.io:7777$")
      assert.truthy(id, lines[i])
      assert.is_nil(old_ids[id])
    end
    assert.equal("http://u:p@h.example:8080", lines[4])
  end)
end)

describe("proxylist.sticky", function()
  it("names every missing required option at once", function()
    assert.has_error(function() proxylist.sticky { provider = "oxylabs" } end,
      "resi.proxylist.sticky: sessions, username and password are required (username and password: a sub-user's, "
      .. "never the account's API login)")
    assert.has_error(function() proxylist.sticky { provider = "unknownproxies", sessions = 1, password = "TokPw123" } end,
      "resi.proxylist.sticky: username and pool are required (username and password: the token's, never the "
      .. "account's API login; pool: tickets-fr-s or tickets-us-s, or give host and port)")
    assert.has_error(function() proxylist.sticky { provider = "template", sessions = 1 } end,
      "resi.proxylist.sticky: template, host and port are required")
    assert.has_error(function() proxylist.sticky { provider = "oxylabs", sessions = 1, username = "u" } end,
      "resi.proxylist.sticky: password is required (username and password: a sub-user's, never the account's API login)")
  end)

  it("reads no credentials from the environment", function()
    local r = proc.resi({ "-e", [[
      local ok, err = pcall(require("resi.proxylist").sticky, { provider = "oxylabs", sessions = 1 })
      io.write(tostring(ok), " ", tostring(err))
    ]] }, { env = API_ENV })
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:match("^false resi%.proxylist%.sticky: username and password are required"), r.stdout)
    assert_no_secrets(r)
  end)

  it("checks the UnknownProxies pool against the known ones", function()
    local base = { provider = "unknownproxies", sessions = 1, username = "abcd1234", password = "TokPw123" }
    -- base with extra's fields added or replaced
    local function with(extra) return tablex.merge(base, extra, true) end
    local ok, err = pcall(proxylist.sticky, with { pool = "us-x" })
    assert.is_false(ok)
    assert.equal('resi.proxylist.sticky: pool "us-x" is not a known unknownproxies pool (known: tickets-fr-s, '
      .. "tickets-us-s; for another gateway give host and port)", err)
    assert.falsy(err:find("TokPw123", 1, true))
    local list = proxylist.sticky(with { pool = "tickets-us-s" })
    assert.equal("tickets-us-s.reserve2.resi.unknownproxies.com", list[1].host)
    assert.equal(14004, list[1].port)
    assert.equal(14005, proxylist.sticky(with { pool = "tickets-us-s", port = 14005 })[1].port)
    assert.same({ "tickets-fr-s", "tickets-us-s" }, sticky.pool_names())
    -- a pool of one's own, added to the table
    sticky.unknownproxies_pools["tickets-gb-s"] = 14020
    local ok2, gb = pcall(proxylist.sticky, with { pool = "tickets-gb-s" })
    sticky.unknownproxies_pools["tickets-gb-s"] = nil
    assert.is_true(ok2, gb)
    assert.equal(14020, gb[1].port)
  end)

  it("refuses options a dialect does not take", function()
    assert.has_error(function()
      proxylist.sticky { provider = "oxylabs", sessions = 1, username = "u", password = "p", contry = "us", pool = "x" }
    end, "resi.proxylist.sticky: oxylabs does not take contry and pool (it takes username, password, minutes, "
      .. "country, city, state, host, port, seed, scheme)")
    assert.has_error(function()
      proxylist.sticky { provider = "unknownproxies", sessions = 1, username = "abcd1234", password = "TokPw123",
        pool = "tickets-us-s", minutes = 5 }
    end, "resi.proxylist.sticky: unknownproxies documents no session lifetime parameter: leave minutes out")
  end)
end)
