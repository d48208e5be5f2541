-- `resi repl` on a real pseudo-terminal (spec/support/pty.lua): values on
-- the screen, a multi-line function, Tab completion (loading the provider
-- client only then), history across runs, Ctrl-C during a slow sandbox
-- call, on a partial entry and on an empty line, background output while
-- typing, and secrets kept out of the history file.
local pty = require "spec.support.pty"
local simh = require "spec.support.sim"
local repl_run = require "spec.support.repl_run"
local uv = require "luv"

local KEY = "rf_live_0123456789abcdefghijklmnopqrX7kQ"
local HINT = "(To exit, press Ctrl+C again or Ctrl+D or type .exit)"

local run = repl_run.tty

-- How many times plain text occurs in s.
local count = require("spec.support.text").count

-- The text of a file, or nil.
local read = require("resi.fs").read

-- The server side of the TCP connections to a local port, from
-- /proc/net/tcp and tcp6: remote port -> state ("01" established, "08"
-- close-wait: the peer closed).
local function connections(port)
  local out = {}
  for _, file in ipairs { "/proc/net/tcp", "/proc/net/tcp6" } do
    for line in (read(file) or ""):gmatch("[^\n]+") do
      local lport, rport, st = line:match("^%s*%d+:%s+%x+:(%x+)%s+%x+:(%x+)%s+(%x%x)")
      if lport and tonumber(lport, 16) == port and st ~= "0A" then out[tonumber(rport, 16)] = st end
    end
  end
  return out
end

describe("resi repl on a terminal", function()
  local dir = repl_run.scratch_dir("resi-repl-tty")

  it("shows the banner, an expression's value and a multi-line function", function()
    local r = run({}, { RESI_HISTORY = "" }, {
      { wait_for = "> " }, { send = "6 * 7\r" }, { wait_for = "42" },
      { send = "function f(n)\r" }, { wait_for = ".. " }, { send = "  return n + 1\r" }, { send = "end\r" },
      { send = "f(41)\r" }, { wait_for = "\n42" }, { send = pty.keys.ctrl_d }, { wait_exit = true },
    })
    assert.is_nil(r.failed_step, r.screen)
    assert.equal(0, r.status)
    assert.truthy(r.screen:find("help() for help", 1, true), r.screen)
    assert.truthy(r.screen:find("> 6 * 7\n42\n", 1, true), r.screen)
    assert.truthy(r.screen:find(".. end\n> f(41)\n42", 1, true), r.screen)
    assert.is_true(r.tty.icanon and r.tty.echo, "terminal restored")
  end)

  it("is what `resi` with no FILE runs on a terminal", function()
    local r = run(false, { RESI_HISTORY = "" }, {
      { wait_for = "> " }, { send = "'é' .. #'é'\r" }, { wait_for = "2" }, { send = pty.keys.ctrl_d }, { wait_exit = true },
    })
    assert.is_nil(r.failed_step, r.screen)
    assert.equal(0, r.status)
    assert.truthy(r.screen:find('> \'é\' .. #\'é\'\n"é2"', 1, true), r.screen)
  end)

  it("completes rf:ba to rf:balance( with Tab, loading the client class only then (not resi.http), making no request", function()
    local probe = "type(package.loaded['resi.http']) .. '|' .. type(package.loaded['resi.providers.resifactory'])"
      .. " .. '|' .. type(rawget(_ENV, 'rf'))\r"
    local r = run({}, { RESI_HISTORY = "", RF_API_KEY = KEY, RESI_RESIFACTORY_URL = "http://127.0.0.1:9/api/v1" }, {
      { wait_for = "> " }, { sleep = 0.6 }, { send = probe }, { wait_for = '"nil|nil|nil"' }, { wait_for = "> " },
      { send = "rf:ba" }, { send = pty.keys.tab }, { wait_for = "lance(" }, { sleep = 0.1 },
      { send = pty.keys.ctrl_c }, { wait_for = "> " }, { send = probe }, { wait_for = '"nil|table|nil"' }, -- the class, not libcurl: that waits for a call
      { send = pty.keys.ctrl_d }, { wait_exit = true },
    })
    assert.is_nil(r.failed_step, r.screen)
    assert.truthy(r.screen:find("> rf:balance(^C\n", 1, true), r.screen)
    assert.equal(0, count(r.screen, HINT), r.screen) -- Ctrl-C on the partial entry only cleared it
    assert.equal(0, r.status)
  end)

  it("clears a partial entry on Ctrl-C and stays up; a further Ctrl-C only shows how to exit", function()
    local r = run({}, { RESI_HISTORY = "" }, {
      { wait_for = "> " }, { send = "cleared_value = 1" }, { sleep = 0.2 }, { send = pty.keys.ctrl_c },
      { wait_for = "> " }, { sleep = 0.2 }, { send = pty.keys.ctrl_c }, { wait_for = HINT }, { sleep = 0.2 },
      { send = "type(cleared_value)\r" }, { wait_for = '"nil"' }, { sleep = 0.2 },
      { send = "function half(n)\r" }, { wait_for = ".. " }, { sleep = 0.2 }, { send = pty.keys.ctrl_c },
      { wait_for = "> " }, { send = "type(half)\r" }, { wait_for = '"nil"' },
      { send = pty.keys.ctrl_d }, { wait_exit = true },
    })
    assert.is_nil(r.failed_step, r.screen)
    assert.equal(0, r.status)
    assert.truthy(r.screen:find("> cleared_value = 1^C\n> ^C\n" .. HINT .. "\n> type(cleared_value)\n\"nil\"", 1, true),
      r.screen)
    assert.equal(1, count(r.screen, HINT), r.screen) -- the continuation line's Ctrl-C cleared, no hint
    assert.truthy(r.screen:find(".. ^C\n> type(half)\n\"nil\"", 1, true), r.screen)
  end)

  it("exits on a second Ctrl-C on an empty line, status 0, the terminal restored", function()
    local r = run({}, { RESI_HISTORY = "" }, {
      { wait_for = "> " }, { sleep = 0.2 }, { send = pty.keys.ctrl_c }, { wait_for = HINT }, { sleep = 0.2 },
      { send = pty.keys.ctrl_c }, { wait_exit = true },
    })
    assert.is_nil(r.failed_step, r.screen)
    assert.equal(0, r.status)
    assert.is_nil(r.signal)
    assert.equal(1, count(r.screen, HINT), r.screen)
    assert.is_true(r.tty.icanon and r.tty.echo, "terminal restored")
  end)

  it("asks again instead of exiting when something was typed (and deleted) after the hint", function()
    local r = run({}, { RESI_HISTORY = "" }, {
      { wait_for = "> " }, { sleep = 0.2 }, { send = pty.keys.ctrl_c }, { wait_for = HINT }, { sleep = 0.2 },
      { send = "x" }, { sleep = 0.1 }, { send = pty.keys.backspace }, { sleep = 0.2 }, { send = pty.keys.ctrl_c },
      { wait_for = HINT }, { sleep = 0.2 }, { send = "40 + 2\r" }, { wait_for = "42" }, { sleep = 0.2 },
      { send = pty.keys.ctrl_c }, { wait_for = HINT }, { sleep = 0.2 }, { send = pty.keys.ctrl_c }, { wait_exit = true },
    })
    assert.is_nil(r.failed_step, r.screen)
    assert.equal(0, r.status)
    assert.equal(3, count(r.screen, HINT), r.screen)
    assert.truthy(r.screen:find("> 40 + 2\n42\n", 1, true), r.screen)
  end)

  it("recalls the previous entry with Up-arrow in the next run (same RESI_HISTORY file)", function()
    local hist = dir() .. "/history-up"
    local first = run({}, { RESI_HISTORY = hist }, {
      { wait_for = "> " }, { send = "marker_value = 1234\r" }, { wait_for = "> " }, { send = pty.keys.ctrl_d },
      { wait_exit = true },
    })
    assert.is_nil(first.failed_step, first.screen)
    assert.equal("marker_value = 1234\n", read(hist))
    local second = run({}, { RESI_HISTORY = hist }, {
      { wait_for = "> " }, { send = pty.keys.up }, { wait_for = "marker_value = 1234" }, { send = "\r" },
      { send = "marker_value + 1\r" }, { wait_for = "1235" }, { send = pty.keys.ctrl_d }, { wait_exit = true },
    })
    assert.is_nil(second.failed_step, second.screen)
    assert.truthy(second.screen:find("> marker_value = 1234\n> marker_value + 1\n1235", 1, true), second.screen)
  end)

  it("cancels a slow sandbox call on Ctrl-C: the prompt is back within 0.5 s, the transfer aborted", function()
    local sim = simh.start { provider = "resifactory" }
    local port = tonumber(sim.urls.resifactory:match(":(%d+)/"))
    sim:fault { route = "GET /balance", kind = "latency", ms = 8000 }
    local env = { RESI_HISTORY = "" }
    for _, kv in ipairs(sim:env { "resifactory" }) do
      local k, v = kv:match("^([^=]+)=(.*)$")
      env[k] = v ~= "" and v or false
    end
    local before, seen, done = connections(port), {}, false
    local watcher = resi.spawn(function() -- watches the REPL's connection: the one that is new
      while not done do
        for rport, st in pairs(connections(port)) do
          if not before[rport] and not seen.rport and st == "01" then seen.rport, seen.open = rport, uv.hrtime() end
          if rport == seen.rport and st ~= "01" and not seen.closed then seen.closed = uv.hrtime() end
        end
        if seen.rport and not connections(port)[seen.rport] and not seen.closed then seen.closed = uv.hrtime() end
        resi.sleep(0.02)
      end
    end)
    local r = run({}, env, {
      { wait_for = "> " }, { send = "rf:balance()\r" }, { sleep = 0.6 }, { send = pty.keys.ctrl_c },
      { sleep = 0.5 }, { signal = "TERM" }, { wait_exit = true },
    })
    local ended = uv.hrtime()
    done = true
    watcher:wait()
    sim:stop()
    assert.truthy(r.screen:find("> rf:balance()\n^Ccancelled\n>", 1, true), r.screen) -- before the SIGTERM
    assert.truthy(seen.open, "the call reached the sandbox")
    assert.truthy(seen.closed, "the sandbox saw the connection close")
    local open_for = (seen.closed - seen.open) / 1e9
    assert.truthy(open_for > 0.4 and open_for < 1.1, open_for) -- closed after the Ctrl-C, not at exit
    assert.truthy((ended - seen.closed) / 1e9 > 0.3, "closed well before the REPL exited")
    assert.is_true(r.tty.icanon and r.tty.echo, "terminal restored after SIGTERM")
  end)

  it("prints a background task's output above the prompt, the typed text intact", function()
    local r = run({}, { RESI_HISTORY = "" }, {
      { wait_for = "> " },
      { send = "resi.spawn(function() for i = 1, 3 do resi.sleep(0.3) print('tick' .. i) end end)\r" },
      { wait_for = "> " }, { send = "typed = 'par" }, { wait_for = "tick2" }, { sleep = 0.1 },
      { send = "tial'\r" }, { wait_for = "tick3" }, { send = "typed\r" }, { wait_for = '"partial"' },
      { send = pty.keys.ctrl_d }, { wait_exit = true },
    })
    assert.is_nil(r.failed_step, r.screen)
    assert.truthy(r.screen:find("\ntick1\n", 1, true), r.screen)
    assert.truthy(r.screen:find("> typed = 'partial'\n", 1, true), r.screen)
    assert.falsy(r.screen:find("tick%d[^\n]"), r.screen) -- no tick glued to typed text
    assert.truthy(r.screen:find('> typed\n"partial"', 1, true), r.screen)
  end)

  it("leaves a secret-bearing entry out of the history file", function()
    local hist = dir() .. "/history-secret"
    local r = run({}, { RESI_HISTORY = hist }, {
      { wait_for = "> " }, { send = "k = '" .. KEY .. "'\r" }, { wait_for = "> " },
      { send = "creds = {password = 'hunter2hunter2'}\r" }, { wait_for = "> " },
      { send = "safe_entry = 1\r" }, { wait_for = "> " }, { send = pty.keys.ctrl_d }, { wait_exit = true },
    })
    assert.is_nil(r.failed_step, r.screen)
    local text = read(hist)
    assert.equal("safe_entry = 1\n", text)
    assert.equal(384, uv.fs_stat(hist).mode % 512)
  end)

  it("masks a client and a token record on the screen", function()
    local r = run({}, { RESI_HISTORY = "", RF_API_KEY = KEY, RESI_RESIFACTORY_URL = "http://127.0.0.1:9/api/v1" }, {
      { wait_for = "> " }, { send = "rf\r" }, { wait_for = "client" },
      { send = "{password = 'Secr3tPW', api_key = 'rf_live_abcd1234efgh'}\r" }, { wait_for = "password" },
      { send = pty.keys.ctrl_d }, { wait_exit = true },
    })
    assert.is_nil(r.failed_step, r.screen)
    assert.truthy(r.screen:find("resifactory client (key rf_live_…X7kQ)", 1, true), r.screen)
    local echoed = r.screen:match("\n({ api_key[^\n]*)")
    assert.truthy(echoed, r.screen)
    assert.falsy(echoed:find("Secr3tPW", 1, true), echoed)
    assert.falsy(echoed:find("abcd1234efgh", 1, true), echoed)
  end)
end)
