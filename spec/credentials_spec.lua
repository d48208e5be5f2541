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
