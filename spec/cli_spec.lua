-- The resi command line, run as a separate process: exit statuses, help,
-- arguments, tracebacks, shebang scripts, os.exit.
local proc = require "spec.support.proc"
local files = require "spec.support.files"

local dir

-- Writes a script into the scratch directory; returns its path.
local function script(name, text) return files.write(dir, name, text) end

local function resi_run(args, opts) return proc.resi(args, opts) end

-- Runs resi with args; asserts that it exits with status and that its
-- stderr holds each of the texts (plain, not patterns); returns the result.
local function resi_fails(status, args, ...)
  local r = resi_run(args)
  assert.equal(status, r.status, r.stderr)
  for _, text in ipairs { ... } do assert.truthy(r.stderr:find(text, 1, true), r.stderr) end
  return r
end

describe("resi command line", function()
  setup(function()
    dir = files.dir("resi-cli")
  end)
  teardown(function() files.remove_dir(dir) end)

  it("prints its version", function()
    local r = resi_run { "version" }
    assert.equal(0, r.status)
    assert.truthy(r.stdout:match("^resi %d+%.%d+%.%d+ %(Lua 5%.4%.%d+, libuv %d+%.%d+%.%d+, libcurl %d+%.%d+%.%d+%)\n$"),
      r.stdout)
    assert.truthy(r.stdout:find("libcurl " .. require("resi.http").curl_version .. ")", 1, true))
    assert.equal(r.stdout, resi_run({ "--version" }).stdout)
    assert.equal("resi " .. require("resi").version .. " (", r.stdout:match("^resi %S+ %(")) -- one version string
  end)

  it("prints help for the tool and for each command, with status 0", function()
    local top = resi_run { "--help" }
    assert.equal(0, top.status)
    assert.truthy(top.stdout:find("usage: resi [FILE [ARGS...]]", 1, true))
    -- every command is listed in the top-level help
    for _, cmd in ipairs { "resi run", "resi -e", "resi sim", "resi jobs", "resi proxies", "resi test", "resi version" } do
      assert.truthy(top.stdout:find(cmd, 1, true), cmd)
    end
    assert.truthy(top.stdout:find("convert|dedupe|sticky|refresh|check", 1, true), top.stdout)
    for _, args in ipairs { { "run", "--help" }, { "-e", "--help" }, { "version", "--help" }, { "test", "--help" } } do
      local r = resi_run(args)
      assert.equal(0, r.status, table.concat(args, " "))
      assert.truthy(r.stdout:find("usage: resi " .. args[1], 1, true), table.concat(args, " "))
    end
  end)

  it("exits 2 with a message on usage errors", function()
    local cases = {
      { { "-x" }, "unknown option '-x'" },
      { { "run" }, "run needs a script file" },
      { { "-e" }, "-e needs a chunk of code" },
      { { "version", "extra" }, "version takes no arguments" },
      { { dir .. "/missing.lua" }, "cannot open script '" .. dir .. "/missing.lua'" },
    }
    for _, case in ipairs(cases) do resi_fails(2, case[1], case[2]) end
  end)

  it("suggests the nearest command for a typo that is not a file", function()
    for typo, cmd in pairs { proxy = "proxies", tset = "test", simm = "sim", vesion = "version" } do
      resi_fails(2, { typo, "x" }, ("'%s' is not a command or a script file; did you mean 'resi %s'?"):format(typo, cmd))
    end
    -- a path, or a word far from every command, is a missing script
    for _, name in ipairs { "./proxy", "xyzzy" } do
      resi_fails(2, { name }, "cannot open script '" .. name .. "'")
    end
    -- an existing file with a command-like name runs as a script
    local path = script("proxy", "print('a script named proxy')\n")
    local r = proc.run({ proc.resi_path(), "proxy" }, { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("a script named proxy\n", r.stdout)
    assert.truthy(path)
  end)

  it("resi test: a bad busted flag is a usage error (exit 2)", function()
    resi_fails(2, { "test", "--bogus-flag" }, "unknown/bad flag: --bogus-flag")
  end)

  it("resi test: an error in a task nobody waited for is a failure of the test that left it, named", function()
    proc.run { "mkdir", "-p", dir .. "/orphan" }
    script("orphan/orphan_spec.lua", [[
describe("orphans", function()
  it("leaves a failing task", function()
    resi.spawn(function() error("lost in a spec task") end)
    resi.sleep(0.01)
    assert.equal(1, 1)
  end)
  it("passes", function() assert.equal(1, 1) end)
end)
]])
    local r = proc.run { proc.resi_path(), "test", dir .. "/orphan" }
    assert.equal(1, r.status, r.stderr)
    assert.truthy(r.stdout:find("2 passed, 1 failed\n$"), r.stdout) -- the closing line agrees with the status
    assert.truthy(r.stdout:find('orphan_spec.lua:3), in "orphans leaves a failing task"', 1, true), r.stdout)
    assert.truthy(r.stderr:find("lost in a spec task", 1, true), r.stderr)
  end)

  it("resi test: log lines are kept out of the progress marks and shown for the test that failed", function()
    proc.run { "mkdir", "-p", dir .. "/logs" }
    script("logs/logs_spec.lua", [[
describe("logs", function()
  it("passes quietly", function() require("resi.log").info("quiet line") assert.equal(1, 1) end)
  it("fails loudly", function() require("resi.log").warn("loud line") assert.equal(1, 2) end)
end)
]])
    local r = proc.run { proc.resi_path(), "test", dir .. "/logs" }
    assert.equal(1, r.status)
    assert.is_nil((r.stdout .. r.stderr):find("quiet line", 1, true))
    local marks = r.stdout:find("+-", 1, true)
    local shown = r.stdout:find('resi.log lines of "logs fails loudly":\n{"level":"warn","msg":"loud line"', 1, true)
    assert.truthy(marks and shown and shown > marks, r.stdout)
    assert.truthy(r.stdout:find("1 passed, 1 failed\n$"), r.stdout)
    local live = proc.run({ proc.resi_path(), "test", dir .. "/logs" }, { env = { "RESI_TEST_LOG=stderr" } })
    assert.truthy(live.stderr:find("quiet line", 1, true), live.stderr)
  end)

  it("runs a script with arguments via run, directly, and -e", function()
    local path = script("args.lua", "print(#resi.args, resi.args[1], resi.args[2], arg[0], ...)\n")
    local a = resi_run { "run", path, "one", "two" }
    assert.equal(0, a.status, a.stderr)
    assert.equal("2\tone\ttwo\t" .. path .. "\tone\ttwo\n", a.stdout)
    local b = resi_run { path, "one", "two" }
    assert.equal(a.stdout, b.stdout)
    local c = resi_run { "-e", "print(resi.args[1], ...)", "x" }
    assert.equal("x\tx\n", c.stdout)
  end)

  it("exits 1 with a traceback naming file:line on an uncaught error", function()
    local path = script("fail.lua", "local x = 1\nlocal function f() error('went wrong') end\nf()\n")
    resi_fails(1, { path }, path .. ":2: went wrong", "stack traceback:", path .. ":3: in main chunk")
  end)

  it("exits 1 on a syntax error, naming the line", function()
    local path = script("syntax.lua", "local x = 1\nlocal = 2\n")
    resi_fails(1, { path }, path .. ":2:")
  end)

  it("reports an error in a task nobody waits for and exits 1", function()
    local path = script("orphan.lua", "resi.spawn(function()\n  error('lost in a task')\nend)\nresi.sleep(0.01)\nprint('main done')\n")
    local r = resi_fails(1, { path }, "never waited for", path .. ":2: lost in a task", "stack traceback:")
    assert.equal("main done\n", r.stdout)
  end)

  it("waits for tasks the main chunk started before exiting", function()
    local path = script("pending.lua", "resi.spawn(function() resi.sleep(0.05) print('late task') end)\nprint('main end')\n")
    local r = resi_run { path }
    assert.equal(0, r.status, r.stderr)
    assert.equal("main end\nlate task\n", r.stdout)
  end)

  it("reports a main task that can never be woken", function()
    resi_fails(1, { "-e", "resi.await(function() end)" }, "deadlock")
  end)

  it("flushes output on os.exit and uses its status", function()
    local r = resi_run { "-e", "io.write('partial line') resi.sleep(0.01) os.exit(3)" }
    assert.equal(3, r.status)
    assert.equal("partial line", r.stdout)
    assert.equal(0, resi_run({ "-e", "os.exit(true)" }).status)
    assert.equal(1, resi_run({ "-e", "os.exit(false)" }).status)
  end)

  it("runs #!/usr/bin/env resi scripts", function()
    local path = script("tool", "#!/usr/bin/env resi\nprint('shebang ok', ...)\n")
    assert.equal(0, proc.run({ "chmod", "+x", path }).status)
    local bindir = proc.resi_path():match("^(.*)/")
    local r = proc.run({ path, "z" }, { env = { "PATH=" .. bindir .. ":/usr/bin:/bin" } })
    assert.equal(0, r.status, r.stderr)
    assert.equal("shebang ok\tz\n", r.stdout)
  end)

  it("reads a script from stdin", function()
    local r = resi_run({ "-" }, { stdin = "#!/usr/bin/env resi\nprint(40 + 2)\n" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("42\n", r.stdout)
    local piped = resi_run({}, { stdin = "print('piped')" })
    assert.equal("piped\n", piped.stdout)
  end)

  it("reports a raw coroutine.yield in a task as an error", function()
    resi_fails(1, { "-e", "coroutine.yield(1)" }, "coroutine.yield() reached the resi scheduler")
  end)
  it("seeds math.random differently in every process", function()
    local a = resi_run({ "-e", "print(math.random(1 << 40), math.random(1 << 40))" }).stdout
    local b = resi_run({ "-e", "print(math.random(1 << 40), math.random(1 << 40))" }).stdout
    assert.matches("^%d+\t%d+\n$", a)
    assert.are_not.equal(a, b)
  end)

  it("exits cleanly with resi.uv handles still open (unref'd), closing them while Lua still runs", function()
    local r = resi_run { "-e", [[
      local uv = resi.uv
      local server = uv.new_tcp()
      assert(server:bind("127.0.0.1", 0))
      server:listen(8, function() end)
      server:unref()
      local timer = uv.new_timer()
      timer:start(100000, 0, function() end)
      timer:unref()
      uv.new_timer():close()
      print("done")]] }
    assert.equal(0, r.status, r.stderr) -- it crashed (signal 11) in luv's close callback after lua_close
    assert.equal(0, r.signal)
    assert.equal("done\n", r.stdout)
    assert.equal("", r.stderr)
  end)

  it("resi test ends when the specs end, even when a failed spec left a server running", function()
    proc.run { "mkdir", "-p", dir .. "/careless" }
    script("careless/careless_spec.lua", [[
describe("a careless spec", function()
  it("fails and leaves its server running", function()
    local srv = assert(require("resi.server").serve { handler = function() return { body = "x" } end })
    assert.equal(1, 2)
    srv:close()
  end)
  it("passes", function() assert.equal(1, 1) end)
end)
]])
    -- timeout turns a runner that waits for the server into exit status 124
    local r = proc.run { "timeout", "20", proc.resi_path(), "test", dir .. "/careless" }
    assert.equal(1, r.status, r.stderr)
    assert.truthy(r.stdout:find("1 passed, 1 failed\n$"), r.stdout)
  end)

  it("resi test stops a test that waits longer than RESI_TEST_TIMEOUT, naming it", function()
    proc.run { "mkdir", "-p", dir .. "/stuck" }
    script("stuck/stuck_spec.lua", [[
describe("a stuck spec", function()
  it("passes first", function() assert.equal(1, 1) end)
  it("waits on a server that never answers", function()
    local uv = require "luv"
    local srv = uv.new_tcp()
    assert(srv:bind("127.0.0.1", 0))
    srv:listen(8, function() srv:accept(uv.new_tcp()) end)
    require("resi.http").get("http://127.0.0.1:" .. srv:getsockname().port .. "/")
  end)
end)
]])
    local r = proc.run({ "timeout", "20", proc.resi_path(), "test", dir .. "/stuck" }, { env = { "RESI_TEST_TIMEOUT=1" } })
    assert.equal(1, r.status, r.stderr)
    assert.truthy(r.stdout:find('resi test: "waits on a server that never answers" has waited for 1 s', 1, true), r.stdout)
    assert.truthy(r.stdout:find("1 passed, 1 failed\n$"), r.stdout)
  end)
end)
