-- resi.credentials: NAME, NAME_FILE and systemd's $CREDENTIALS_DIRECTORY, in
-- that order, seen by a real provider client against resi sim in a separate
-- process (as a jobs daemon or a script under systemd sees them).
local proc = require "spec.support.proc"
local files = require "spec.support.files"

describe("resi.credentials", function()
  local sim, dir

  setup(function()
    sim = require("spec.support.sim").start { seed = 41 }
    dir = files.dir("resi-cred")
  end)
  teardown(function()
    sim:stop()
    files.remove_dir(dir)
  end)

  -- Lists the account's tokens in a child process with env; returns the result.
  local function list_tokens(env)
    local all = { "RESI_UNKNOWNPROXIES_URL=" .. sim.urls.unknownproxies, "UNKNOWNPROXIES_USERNAME=",
      "UNKNOWNPROXIES_PASSWORD=", "UNKNOWNPROXIES_PASSWORD_FILE=", "CREDENTIALS_DIRECTORY=" }
    for _, e in ipairs(env) do all[#all + 1] = e end
    return proc.resi({ "-e", [[
      local up = require("resi.providers.unknownproxies").new()
      print(#up:list_tokens())]] }, { env = all })
  end

  it("reads NAME_FILE and $CREDENTIALS_DIRECTORY/NAME when NAME is not set", function()
    local acct = sim.accounts.unknownproxies[1]
    files.write(dir, "pw", acct.password .. "\n") -- a trailing newline, as editors write
    local r = list_tokens { "UNKNOWNPROXIES_USERNAME=" .. acct.username, "UNKNOWNPROXIES_PASSWORD_FILE=" .. dir .. "/pw" }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("3\n", r.stdout)
    files.write(dir, "UNKNOWNPROXIES_USERNAME", acct.username)
    files.write(dir, "UNKNOWNPROXIES_PASSWORD", acct.password)
    r = list_tokens { "CREDENTIALS_DIRECTORY=" .. dir }
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("3\n", r.stdout)
    -- the environment wins over the directory
    r = list_tokens { "CREDENTIALS_DIRECTORY=" .. dir, "UNKNOWNPROXIES_PASSWORD=Wr0ngPassw0rd" }
    assert.are_not.equal(0, r.status)
    assert.is_nil((r.stdout .. r.stderr):find("Wr0ngPassw0rd", 1, true))
  end)

  it("names the variable and the file, never a value, when NAME_FILE cannot be read", function()
    local r = list_tokens { "UNKNOWNPROXIES_USERNAME=someone", "UNKNOWNPROXIES_PASSWORD_FILE=" .. dir .. "/missing" }
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:find("UNKNOWNPROXIES_PASSWORD_FILE: cannot read " .. dir .. "/missing", 1, true), r.stderr)
  end)

  it("exports a credentials directory into the environment for scripts", function()
    files.write(dir, "RF_API_KEY", "rf_live_fromsystemd\n")
    local r = proc.resi({ "-e", [[
      local names = require("resi.credentials").export_directory()
      print(table.concat(names, ","), os.getenv("RF_API_KEY"))]] }, { env = { "CREDENTIALS_DIRECTORY=" .. dir, "RF_API_KEY=",
      "UNKNOWNPROXIES_USERNAME=", "UNKNOWNPROXIES_PASSWORD=" } })
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("RF_API_KEY,UNKNOWNPROXIES_PASSWORD,UNKNOWNPROXIES_USERNAME\trf_live_fromsystemd\n", r.stdout)
  end)
end)

-- The same rules seen through the CLI (resi rf, resi up): NAME and NAME_FILE
-- both set, the permission warning, a lower-case file in
-- $CREDENTIALS_DIRECTORY; the value never in any message.
describe("resi.credentials from the command line", function()
  local cli, dir, key

  setup(function()
    cli = require("spec.support.provider_cli").start { tool = "rf", provider = "resifactory", seed = 42 }
    dir, key = cli.dir, cli.sim.accounts.resifactory[1].api_key
  end)
  teardown(function() cli:stop() end)

  -- Runs `resi rf balance` against the sandbox with env (no key unless given).
  local function balance(env)
    local all = { "RF_API_KEY=", "RF_API_KEY_FILE=", "CREDENTIALS_DIRECTORY=", "RESI_LOG_FORMAT=text" }
    for _, e in ipairs(env) do all[#all + 1] = e end
    return cli:run({ "balance" }, all)
  end

  -- Writes a credential file with mode (an integer); returns its path.
  local function secret_file(name, text, mode)
    local path = files.write(dir, name, text)
    assert(require("luv").fs_chmod(path, mode))
    return path
  end

  -- Asserts the key shows nowhere in a result (nor its body without the prefix).
  local function assert_no_key(r) require("spec.support.provider_cli").assert_no_secret(r, { key, key:sub(9) }) end

  it("reads NAME_FILE (mode 0600: no warning), twice alike", function()
    local path = secret_file("rf-key", key .. "\n", 384)
    for _ = 1, 2 do
      local r = balance { "RF_API_KEY_FILE=" .. path }
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("POOL\tBALANCE_GB\nretail_select\t0.0000\nwalmart_premium\t25.0000\n", r.stdout)
      assert.are.equal("", r.stderr)
    end
  end)

  it("warns about a file group or others can read, naming the file, not the value", function()
    local path = secret_file("rf-key-open", key .. "\n", 420) -- 0644
    local r = balance { "RF_API_KEY_FILE=" .. path }
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(r.stderr:find("credential file " .. path .. " (RF_API_KEY) is readable by group or others; chmod 600 it",
      1, true), r.stderr)
    assert.are.equal(1, select(2, r.stderr:gsub("readable by group", "")))
    assert_no_key(r)
    path = secret_file("rf-key-group", key, 416) -- 0640: group may read
    r = balance { "RF_API_KEY_FILE=" .. path }
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(r.stderr:find(path, 1, true), r.stderr)
    assert_no_key(r)
  end)

  it("refuses NAME and NAME_FILE both set, naming both and neither value", function()
    local path = secret_file("rf-key-both", key, 384)
    local r = balance { "RF_API_KEY=rf_live_Th1sIsTheOtherKeyValue", "RF_API_KEY_FILE=" .. path }
    assert.are.equal(1, r.status)
    assert.are.equal("", r.stdout)
    assert.are.equal("resi rf balance: RF_API_KEY and RF_API_KEY_FILE are both set: keep one (the value, or the file "
      .. path .. ")\n", r.stderr)
    assert_no_key(r)
    assert.is_nil(r.stderr:find("Th1sIsTheOtherKeyValue", 1, true))
  end)

  it("reads $CREDENTIALS_DIRECTORY/NAME or its lower-case name", function()
    local creds = dir .. "/creds"
    assert(require("luv").fs_mkdir(creds, 448))
    secret_file("creds/rf_api_key", key .. "\n", 256) -- 0400, as systemd makes them
    local r = balance { "CREDENTIALS_DIRECTORY=" .. creds }
    assert.are.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:find("\nwalmart_premium\t25.0000\n", 1, true), r.stdout)
    assert.are.equal("", r.stderr)
    local out = proc.resi({ "-e", [[
      print(table.concat(require("resi.credentials").export_directory(), ","), os.getenv("RF_API_KEY") == ...)]], key },
      { env = { "CREDENTIALS_DIRECTORY=" .. creds, "RF_API_KEY=", "RF_API_KEY_FILE=" } })
    assert.are.equal(0, out.status, out.stderr)
    assert.are.equal("RF_API_KEY\ttrue\n", out.stdout)
    -- a directory where the file should be: named, no value
    os.remove(creds .. "/rf_api_key")
    assert(require("luv").fs_mkdir(creds .. "/RF_API_KEY", 448))
    r = balance { "CREDENTIALS_DIRECTORY=" .. creds }
    assert.are.equal(1, r.status)
    assert.truthy(r.stderr:find("RF_API_KEY: cannot read $CREDENTIALS_DIRECTORY file " .. creds .. "/RF_API_KEY", 1,
      true), r.stderr)
  end)
end)
