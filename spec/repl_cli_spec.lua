-- `resi repl` with stdin not a terminal: entries read line by line (with
-- continuation), no prompt, no banner, no colour; exit status 1 when an
-- entry failed; -e CODE and FILE run first.
local files = require "spec.support.files"
local repl_run = require "spec.support.repl_run"

local repl = repl_run.piped

-- Runs `resi repl ARGS` with stdin, asserts that it exited 0 (stderr in
-- the message) and returns its stdout.
local function succeeds(args, stdin, env)
  local r = repl(args, stdin, env)
  assert.equal(0, r.status, r.stderr)
  return r.stdout, r.stderr
end

describe("resi repl on piped stdin", function()
  local dir = repl_run.scratch_dir("resi-repl-cli")

  it("evaluates line by line with no prompt, banner or colour", function()
    local out, err = succeeds({}, "x=1\nprint(x)\n")
    assert.equal("1\n", out)
    assert.equal("", err)
  end)

  it("echoes values, continues multi-line entries, keeps locals", function()
    local out = succeeds({}, "local n = 20\nfunction add(a,\n  b)\n  return a + b\nend\nadd(n, 2)\n{1, 'a'}\n")
    assert.equal("(kept local n as a session variable: top-level locals persist here)\n22\n{ 1, \"a\" }\n", out)
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
    assert.equal("42\n", succeeds({ "-e", "x=41" }, "print(x+1)\n"))
  end)

  it("runs FILE first; its globals stay", function()
    local path = files.write(dir(), "setup.lua", "greeting = 'hi from file'\n")
    assert.equal('"hi from file"\n', succeeds({ path }, "greeting\n"))
  end)

  it(".load FILE runs a file in the session", function()
    local path = files.write(dir(), "more.lua", "local loaded_value = 9\nfunction triple(n) return 3 * n end\n")
    local out = succeeds({}, ".load " .. path .. "\ntriple(loaded_value)\n")
    assert.truthy(out:find("\n27\n$"), out)
  end)

  it("shows a background task's error when it happens and exits 1", function()
    local r = repl({}, "resi.spawn(function() error('in the background') end)\nresi.sleep(0.05)\nprint('still here')\n")
    assert.equal(1, r.status)
    assert.truthy(r.stderr:find("error in task %d+ %(stdin:1%): stdin:1: in the background"), r.stderr)
    assert.truthy(r.stdout:find("still here", 1, true), r.stdout)
  end)

  it("runs dot commands and stops at .exit", function()
    assert.equal("no tasks running\n", succeeds({}, ".tasks\n.exit\nprint('never')\n"))
  end)

  it("masks secrets in echoed values but print shows what was asked", function()
    assert.equal('{ api_key = "rf_live_…", password = "…" }\nSecr3tPW\n',
      succeeds({}, 'x = {password="Secr3tPW", api_key="rf_live_abcd1234efgh"}\nx\nprint(x.password)\n'))
  end)

  it("writes no history for piped input", function()
    local hist = dir() .. "/hist"
    assert.equal("", succeeds({}, "y = 2\n", { "RESI_HISTORY=" .. hist }))
    assert.is_nil(io.open(hist))
  end)

  it("--sim talks to the in-process sandbox and exits at the end of input", function()
    local out = succeeds({ "--sim" }, "rf:balance()\n#up:list_tokens() > 0\n")
    assert.truthy(out:find("balances", 1, true), out)
    assert.truthy(out:find("\ntrue\n$"), out)
  end)

  it("is a usage error on an unknown option, and has --help", function()
    local r = repl({ "--bogus" }, "")
    assert.equal(2, r.status)
    assert.truthy(r.stderr:find("unknown option --bogus", 1, true), r.stderr)
    local out = succeeds({ "--help" }, "")
    assert.truthy(out:find("usage: resi repl [--sim] [-e CODE] [FILE", 1, true), out)
  end)
end)
