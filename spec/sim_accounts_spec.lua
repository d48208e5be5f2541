-- resi sim --accounts FILE: the whole file is checked, every bad path is
-- named (not just the first), the exit status is 2, there is never a
-- traceback, and no password or API key is echoed.
local json = require "resi.json"
local accounts = require "resi.sim.accounts"
local proc = require "spec.support.proc"

local scratch = require("spec.support.files").scratch

local RESI = proc.resi_path()

-- Runs `resi sim --accounts` on text; returns the result and the file.
local function sim_with(text)
  local path = scratch(text)
  local r = proc.run { RESI, "sim", "--ports", "0,0,0", "--accounts", path }
  os.remove(path)
  return r, path
end

-- The problems accounts.check finds in a JSON text (a list, maybe empty).
local function problems(text)
  local ok, _, list = accounts.check(json.decode(text))
  return ok and {} or list
end

-- Asserts that a usage error names `expected` and never leaks internals.
local function refused(text, expected)
  local r, path = sim_with(text)
  assert.are.equal(2, r.status, r.stderr)
  assert.are.equal("", r.stdout) -- nothing listened, no exports
  assert.matches(path .. ": ", r.stderr, 1, true)
  for _, e in ipairs(expected) do assert.matches(e, r.stderr, 1, true) end
  for _, bad in ipairs { "traceback", "attempt to", ".lua:" } do assert.is_nil(r.stderr:find(bad, 1, true), r.stderr) end
  return r
end

describe("resi sim --accounts", function()
  it("names a dataLimit that is not a number instead of crashing", function()
    refused('{"unknownproxies":[{"username":"acme","password":"pw","tokens":[{"dataLimit":"lots"}]}]}',
      { "unknownproxies[1].tokens[1].dataLimit must be an integer number of bytes" })
  end)

  it("names a negative dataLimit, a misspelled nested key and a wrong seed field", function()
    local list = problems [[{"unknownproxies": [{"username": "acme", "password": "pw", "tokens": [
        {"dataLimit": 10000000000}, {"dataLimit": -5}, {"dataLimit": 1500000000, "dataUsag": 1}]}],
      "oxylabs": [{"usre": "main", "password": "Main-Pass-1234", "user_id": "u-1",
        "sub_users": [{"username": "team_a", "traffic_limit": -1}]}]}]]
    assert.are.same({
      "unknownproxies[1].tokens[2].dataLimit must be at least 1000000000 (1 GB)",
      "unknownproxies[1].tokens[3].dataLimit must be a whole number of gigabytes (a multiple of 1000000000)",
      "unknownproxies[1].tokens[3].dataUsag: unknown field (expected dataLimit, dataUsage, username, durationHours)",
      "oxylabs[1].username is required (a non-empty string)",
      "oxylabs[1].sub_users[1].traffic_limit must be null (unlimited), 0 (no traffic) or a positive number of GB",
      "oxylabs[1].usre: unknown field (expected username, password, user_id, sub_users, base_url)",
    }, list)
  end)

  it("refuses a top level that is an array, and an object where a list belongs", function()
    refused("[]", { "the top level must be a JSON object" })
    refused('[{"username":"acme"}]', { "the top level must be a JSON object", "got an array" })
    refused('{"unknownproxies":{"username":"acme","password":"pw"}}',
      { "unknownproxies must be an array of accounts, got an object" })
    refused('{"unknownproxies":[{"username":"acme","password":"pw","tokens":{"dataLimit":1000000000}}]}',
      { "unknownproxies[1].tokens must be an array of tokens, got an object" })
    refused('{"unknownproxies":["acme"]}', { "unknownproxies[1] must be an object, got a string" })
    refused('{"pools":[{"id":"p","host":"h","proxy_types":"rotating"}]}', { "pools[1].proxy_types must be a non-empty array" })
    refused('{"unknownproxies":[]} trailing', { "not valid JSON" })
  end)

  it("reports every problem of the file at once, with a count", function()
    local r = refused([[{"frobnicate": 1,
      "unknownproxies": [{"username": "acme", "password": "pw", "tokens": [{"dataLimit": "lots"}, {"durationHours": -1}]}],
      "resifactory": [{"api_key": "rf_live_k1", "scopes": ["usage:reads"], "balances": {"nowhere": 1}, "disabled": "no"}],
      "pools": [{"id": "walmart_premium", "host": "h", "port": 70000}]}]], {
      "7 problems:",
      "frobnicate: unknown field (expected unknownproxies, oxylabs, resifactory, pools)",
      "unknownproxies[1].tokens[1].dataLimit must be an integer number of bytes",
      "unknownproxies[1].tokens[2].durationHours must be an integer from 0 to 87600",
      'resifactory[1].scopes[1] must be a scope (proxies:generate, usage:read, pools:read), got "usage:reads"',
      "resifactory[1].balances.nowhere: unknown pool (pools: walmart_premium)",
      "resifactory[1].disabled must be true or false, got a string",
      "pools[1].port must be a port number (1..65535)",
    })
    local count = 0
    for _ in r.stderr:gmatch("\n  [%w%[]") do count = count + 1 end
    assert.are.equal(7, count)
  end)

  it("never echoes a password or an API key, even the wrong ones", function()
    local r = refused([[{"unknownproxies": [{"username": "acme", "password": 12345678}],
      "oxylabs": [{"username": "main", "password": "Hunter2-Main-Pw", "user_id": "u-1",
        "sub_users": [{"username": "team_a", "password": "weakSecretPw"}]}],
      "resifactory": [{"api_key": "sk_live_Sup3rSecretKey"}, {"api_key": "rf_live_SameSecretKey"},
        {"api_key": "rf_live_SameSecretKey", "proxy_password": ""}]}]], {
      "unknownproxies[1].password must be a non-empty string, got a number",
      "oxylabs[1].sub_users[1].password must contain a digit",
      "resifactory[1].api_key must start with rf_live_",
      "resifactory[3].api_key is the same key as resifactory[2].api_key",
      "resifactory[3].proxy_password must be a non-empty string",
    })
    for _, secret in ipairs { "12345678", "Hunter2-Main-Pw", "weakSecretPw", "Sup3rSecretKey", "SameSecretKey" } do
      assert.is_nil(r.stderr:find(secret, 1, true), "leaked " .. secret)
    end
  end)

  it("names duplicate usernames, user ids and pool ids by the entry that came first", function()
    assert.are.same({
      "unknownproxies[2].username acme is already used (by unknownproxies[1].username)",
      "unknownproxies[2].tokens[1].username tok00001 is already taken (by unknownproxies[1].tokens[1].username)",
      "oxylabs[1].sub_users[1].username main_two is already taken (by oxylabs[2].username)",
      "oxylabs[2].user_id u-1 is already used (by oxylabs[1].user_id)",
      "pools[2].id p is already used (by pools[1].id)",
    }, problems [[{
      "unknownproxies": [{"username": "acme", "password": "a", "tokens": [{"username": "tok00001"}]},
                         {"username": "acme", "password": "b", "tokens": [{"username": "tok00001"}]}],
      "oxylabs": [{"username": "main_one", "password": "x", "user_id": "u-1", "sub_users": [{"username": "main_two"}]},
                  {"username": "main_two", "password": "y", "user_id": "u-1"}],
      "pools": [{"id": "p", "host": "h"}, {"id": "p", "host": "h2"}]}]])
  end)

  it("accepts every documented field, serves it, and the generated accounts pass the same check", function()
    local path = scratch(json.encode {
      unknownproxies = { { username = "acme", password = "pw-acme", base_url = "http://127.0.0.1:1/api/v1",
        tokens = { { dataLimit = 10000000000, dataUsage = 9000000000, username = "acmetok1", durationHours = 720 } } } },
      oxylabs = { { username = "main_acme", password = "Main-Pass-123", user_id = "7d4c2b1a-0000-4000-a000-000000000009",
        sub_users = { { username = "team_a", password = "Team_Pass_123", traffic_limit = json.null, traffic = 1.5,
          lifetime = true, auto_disable = false, status = "disabled" } } } },
      resifactory = { { api_key = "rf_live_full_key", scopes = { "usage:read" }, balances = { mine = 2.5 },
        disabled = false, revoked = false, username = "acme", key_name = "ci", proxy_password = "px", id = 7,
        default_pool = "mine" } },
      pools = { { id = "mine", label = "Mine", host = "proxy.example", port = 9000, proxy_types = { "rotating", "mobile_sticky" } } },
    })
    local loaded, err = accounts.load(path)
    os.remove(path)
    assert.is_table(loaded, err)
    local sim = require("spec.support.sim").start { accounts = loaded }
    local state = sim:state()
    sim:stop()
    assert.are.equal(9000000000, state.providers.unknownproxies.accounts[1].tokens[1].dataUsage)
    assert.are.equal("acmetok1", state.providers.unknownproxies.accounts[1].tokens[1].username)
    for seed = 1, 5 do
      assert.is_true((accounts.check(accounts.generate(require("resi.sim.util").rng(seed)))))
    end
  end)
end)
