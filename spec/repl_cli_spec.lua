-- `resi repl` with stdin not a terminal: entries read line by line (with
-- continuation), no prompt, no banner, no colour; exit status 1 when an
-- entry failed; -e CODE and FILE run first.
local proc = require "spec.support.proc"
local files = require "spec.support.files"

-- Runs `resi repl ARGS` with stdin; history off unless env says otherwise.
local function repl(args, stdin, env)
  local full = { "repl" }
  for _, a in ipairs(args) do full[#full + 1] = a end
  local e = { "RESI_HISTORY=" }
  for _, kv in ipairs(env or {}) do e[#e + 1] = kv end
  return proc.resi(full, { stdin = stdin, env = e })
end

describe("resi repl on piped stdin", function()
  local dir
  setup(function() dir = proc.run({ "mktemp", "-d", "/tmp/resi-repl-cli.XXXXXX" }).stdout:gsub("%s+$", "") end)
  teardown(function() proc.run { "rm", "-rf", dir } end)

  it("evaluates line by line with no prompt, banner or colour", function()
    local r = repl({}, "x=1\nprint(x)\n")
    assert.equal(0, r.status, r.stderr)
    assert.equal("1\n", r.stdout)
    assert.equal("", r.stderr)
  end)

  it("echoes values, continues multi-line entries, keeps locals", function()
    local r = repl({}, "local n = 20\nfunction add(a,\n  b)\n  return a + b\nend\nadd(n, 2)\n{1, 'a'}\n")
    assert.equal(0, r.status, r.stderr)
    assert.equal("(kept local n as a session variable: top-level locals persist here)\n22\n{ 1, \"a\" }\n", r.stdout)
    assert.falsy(r.stdout:find("\27", 1, true))
    assert.falsy(r.stdout:find("> ", 1, true))
  end)

  it("exits 1 when an entry failed, and goes on after it", function()
    local r = repl({}, "error('first')\nprint('after')\n")
    assert.equal(1, r.status)
    assert.equal("after\n", r.stdout)
    assert.truthy(r.stderr:find("stdin:1: first", 1, true), r.stderr)
  end)

  it("exits 1 on input that ends inside an entry", function()
    local r = repl({}, "function f()\n")
    assert.equal(1, r.status)
    assert.truthy(r.stderr:find("unfinished entry", 1, true), r.stderr)
  end)

  it("runs -e CODE first, then stdin", function()
    local r = repl({ "-e", "x=41" }, "print(x+1)\n")
    assert.equal(0, r.status, r.stderr)
    assert.equal("42\n", r.stdout)
  end)

  it("runs FILE first; its globals stay", function()
    local path = files.write(dir, "setup.lua", "greeting = 'hi from file'\n")
    local r = repl({ path }, "greeting\n")
    assert.equal(0, r.status, r.stderr)
    assert.equal('"hi from file"\n', r.stdout)
  end)

  it(".load FILE runs a file in the session", function()
    local path = files.write(dir, "more.lua", "local loaded_value = 9\nfunction triple(n) return 3 * n end\n")
    local r = repl({}, ".load " .. path .. "\ntriple(loaded_value)\n")
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:find("\n27\n$"), r.stdout)
  end)

  it("shows a background task's error when it happens and exits 1", function()
    local r = repl({}, "resi.spawn(function() error('in the background') end)\nresi.sleep(0.05)\nprint('still here')\n")
    assert.equal(1, r.status)
    assert.truthy(r.stderr:find("error in task %d+ %(stdin:1%): stdin:1: in the background"), r.stderr)
    assert.truthy(r.stdout:find("still here", 1, true), r.stdout)
  end)

  it("runs dot commands and stops at .exit", function()
    local r = repl({}, ".tasks\n.exit\nprint('never')\n")
    assert.equal(0, r.status, r.stderr)
    assert.equal("no tasks running\n", r.stdout)
  end)

  it("masks secrets in echoed values but print shows what was asked", function()
    local r = repl({}, 'x = {password="Secr3tPW", api_key="rf_live_abcd1234efgh"}\nx\nprint(x.password)\n')
    assert.equal(0, r.status, r.stderr)
    assert.equal('{ api_key = "rf_live_…", password = "…" }\nSecr3tPW\n', r.stdout)
  end)

  it("writes no history for piped input", function()
    local hist = dir .. "/hist"
    local r = repl({}, "y = 2\n", { "RESI_HISTORY=" .. hist })
    assert.equal(0, r.status, r.stderr)
    assert.is_nil(io.open(hist))
  end)

  it("--sim talks to the in-process sandbox and exits at the end of input", function()
    local r = repl({ "--sim" }, "rf:balance()\n#up:list_tokens() > 0\n")
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:find("balances", 1, true), r.stdout)
    assert.truthy(r.stdout:find("\ntrue\n$"), r.stdout)
  end)

  it("is a usage error on an unknown option, and has --help", function()
    local r = repl({ "--bogus" }, "")
    assert.equal(2, r.status)
    assert.truthy(r.stderr:find("unknown option --bogus", 1, true), r.stderr)
    r = repl({ "--help" }, "")
    assert.equal(0, r.status)
    assert.truthy(r.stdout:find("usage: resi repl [--sim] [-e CODE] [FILE", 1, true))
  end)
end)
