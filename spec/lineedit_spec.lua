-- resi.lineedit_core (runtime/lineedit.c) on a real pseudo-terminal: each
-- case runs `resi -e SCRIPT` under spec/support/pty.lua, types keys and
-- asserts on what reached Lua and on the screen.
local pty = require "spec.support.pty"
local proc = require "spec.support.proc"

local keys = pty.keys

-- Every script opens an editor; show() prints above the prompt; a line comes
-- back as GOT[line] (newlines as \n); Ctrl-D closes the editor and says EOF.
local PRELUDE = [[
local le = require "resi.lineedit_core"
local ed = assert(le.open {})
local function show(s) ed:print(s .. "\n") end
local function got(line)
  if line == nil then show("EOF") ed:close() return true end
  show("GOT[" .. line:gsub("\n", "\\n") .. "]")
end
]]

-- Runs PRELUDE .. script on a pty with steps; returns the driver's result.
local function run(script, steps, opts)
  opts = opts or {}
  local argv = { proc.resi_path(), "-e", PRELUDE .. script }
  if opts.shell then -- run it under sh, then a command in the same terminal
    argv = { "sh", "-c", '"$RESI" -e "$SCRIPT"; echo "exit=$?"; ' .. opts.shell }
  end
  return pty.run {
    argv = argv, steps = steps, timeout = 20, rows = opts.rows, cols = opts.cols,
    env = { RESI = proc.resi_path(), SCRIPT = PRELUDE .. script, LANG = "C.UTF-8" },
  }
end

-- The script most cases use: lines go to got().
local ECHO = [[ed:start("> ", got)]]

-- Asserts the run ended normally (no timeout) and returns it.
local function ok(r)
  assert.is_nil(r.failed_step, "a wait timed out; output:\n" .. r.output)
  assert.is_false(r.timed_out, r.output)
  assert.falsy(r.output:find("Sanitizer") or r.output:find("runtime error:"), r.output) -- make asan
  return r
end

describe("resi.lineedit_core on a terminal", function()
  it("hands a typed line to on_line, and nil on Ctrl-D", function()
    local r = ok(run(ECHO, {
      { wait_for = "> " }, { send = "1+1" .. keys.enter }, { wait_for = "GOT[1+1]" },
      { send = keys.ctrl_d }, { wait_for = "EOF" }, { wait_exit = true },
    }))
    assert.equal(0, r.status)
  end)

  it("edits UTF-8 input by characters", function()
    local r = ok(run(ECHO, {
      { wait_for = "> " }, { send = "héllo wörld" }, { sleep = 0.1 },
      { send = keys.left .. keys.left .. keys.backspace }, { sleep = 0.1 },
      { send = keys.enter }, { wait_for = "GOT[" }, { send = keys.ctrl_d }, { wait_exit = true },
    }))
    assert.truthy(r.output:find("GOT[héllo wöld]", 1, true), r.output)
  end)

  it("recalls history_add'ed and history_load'ed entries with Up-arrow, multi-line ones whole", function()
    local r = ok(run([[
      ed:history_load { "old entry" }
      ed:history_add("first entry")
      ed:history_add("x = 1\ny = 2")
    ]] .. ECHO, {
      { wait_for = "> " }, { send = keys.up }, { sleep = 0.1 }, { send = keys.enter },
      { wait_for = "GOT[" },
      { send = keys.up .. keys.up }, { sleep = 0.1 }, { send = keys.enter }, { wait_for = "GOT[" },
      { send = keys.up .. keys.up .. keys.up }, { sleep = 0.1 }, { send = keys.enter }, { wait_for = "GOT[" },
      { send = keys.ctrl_d }, { wait_exit = true },
    }))
    assert.truthy(r.output:find("GOT[x = 1\\ny = 2]", 1, true), r.output)
    assert.truthy(r.output:find("GOT[first entry]", 1, true), r.output)
    assert.truthy(r.output:find("GOT[old entry]", 1, true), r.output)
  end)

  it("completes on Tab through the Lua completer, whole words across '.' and ':'", function()
    local r = ok(run([[
      ed:set_completer(function(text, line, start, stop)
        show(("ASKED[%s|%s|%d|%d|%s]"):format(text, line, start, stop, line:sub(start, stop)))
        if text == "rf:ba" then return { "rf:balance(" } end
        if text:find("^resi%.http%.ge") then return { "resi.http.get", "resi.http.get_json" } end
        return {}
      end)
    ]] .. ECHO, {
      { wait_for = "> " }, { send = "rf:ba" .. keys.tab }, { wait_for = "ASKED" }, { sleep = 0.1 },
      { send = keys.enter }, { wait_for = "GOT[" },
      { send = "x = resi.http.ge" .. keys.tab }, { wait_for = "ASKED" }, { sleep = 0.1 },
      { send = keys.tab }, { wait_for = "ASKED" }, { sleep = 0.1 }, -- a second Tab lists them
      { send = keys.enter }, { wait_for = "GOT[" },
      { send = keys.ctrl_d }, { wait_exit = true },
    }))
    assert.truthy(r.output:find("ASKED[rf:ba|rf:ba|1|5|rf:ba]", 1, true), r.output)
    assert.truthy(r.output:find("GOT[rf:balance(]", 1, true), r.output)
    assert.truthy(r.output:find("ASKED[resi.http.ge|x = resi.http.ge|5|16|resi.http.ge]", 1, true), r.output)
    -- two candidates: their common prefix is inserted, a second Tab lists both
    assert.truthy(r.output:find("GOT[x = resi.http.get]", 1, true), r.output)
    assert.truthy(r.screen:find("resi.http.get%s+resi.http.get_json"), r.screen)
  end)

  it("prints above the prompt while the user types, the partial input intact", function()
    local r = ok(run([[
      local t = resi.uv.new_timer()
      _G.tick = function() show("TICK one") show("TICK two") end
      ed:start("> ", function(line)
        if line == "go" then t:start(200, 0, function() t:close() _G.tick() end) return end
        return got(line)
      end)
    ]], {
      { wait_for = "> " }, { send = "go" .. keys.enter }, { wait_for = "> " },
      { send = "abc def" .. keys.left .. keys.left }, { wait_for = "TICK two" }, { sleep = 0.2 },
      { send = "X" }, { sleep = 0.2 }, { send = keys.enter }, { wait_for = "GOT[" },
      { send = keys.ctrl_d }, { wait_exit = true },
    }))
    -- the screen: the ticks, then the prompt with the input as typed around them
    assert.truthy(r.screen:find("> go\nTICK one\nTICK two\n> abc dXef\nGOT%[abc dXef%]\n"), r.screen)
  end)

  it("shows a new prompt from set_prompt and redraws it", function()
    local r = ok(run([[
      ed:start("> ", function(line)
        if line == "more" then ed:set_prompt(".. ") return end
        return got(line)
      end)
    ]], {
      { wait_for = "> " }, { send = "more" .. keys.enter }, { wait_for = ".. " },
      { send = "x" .. keys.enter }, { wait_for = "GOT[x]" }, { send = keys.ctrl_d }, { wait_exit = true },
    }))
    assert.truthy(r.screen:find(".. x\nGOT[x]", 1, true), r.screen)
  end)

  it("calls on_interrupt on Ctrl-C, and clear_line drops the partial input", function()
    local r = ok(run([[
      le.on_interrupt(function(n, hooked) show("INT " .. n .. " " .. tostring(hooked)) ed:clear_line() end)
    ]] .. ECHO, {
      { wait_for = "> " }, { send = "partial" }, { sleep = 0.2 }, { send = keys.ctrl_c },
      { wait_for = "INT 1 false" }, { sleep = 0.1 }, { send = "ok" .. keys.enter }, { wait_for = "GOT[" },
      { send = keys.ctrl_d }, { wait_exit = true },
    }))
    assert.truthy(r.output:find("GOT[ok]", 1, true), r.output)
    assert.truthy(r.screen:find("> partial^C\n", 1, true), r.screen)
  end)

  it("reads the line being edited (ed:line) and counts typed characters (ed:typed)", function()
    local r = ok(run([[
      le.on_interrupt(function()
        local line, typed = ed:line(), ed:typed()
        ed:clear_line()
        show("LINE[" .. line .. "] TYPED[" .. typed .. "] AFTER[" .. ed:line() .. "|" .. ed:typed() .. "]")
      end)
      show("IDLE[" .. tostring(ed:line()) .. "]")
    ]] .. ECHO, {
      { wait_for = "> " }, { send = "héllo" .. keys.left .. "X" }, { sleep = 0.2 }, { send = keys.ctrl_c },
      { wait_for = "AFTER[" }, { sleep = 0.1 }, { send = "ab" .. keys.backspace .. keys.backspace }, { sleep = 0.2 },
      { send = keys.ctrl_c }, { wait_for = "AFTER[" }, { sleep = 0.1 }, { send = keys.ctrl_c }, { wait_for = "AFTER[" },
      { send = keys.ctrl_d }, { wait_exit = true },
    }))
    assert.truthy(r.output:find("IDLE[nil]", 1, true), r.output) -- no prompt shown yet
    assert.truthy(r.output:find("LINE[héllXo] TYPED[9] AFTER[|0]", 1, true), r.output) -- the arrow is 3 bytes
    assert.truthy(r.output:find("LINE[] TYPED[4] AFTER[|0]", 1, true), r.output)
    assert.truthy(r.output:find("LINE[] TYPED[0] AFTER[|0]", 1, true), r.output)
  end)

  it("stops a runaway `while true do end` in an armed coroutine with 'interrupted'", function()
    local r = ok(run([[
      le.on_interrupt(function(n, hooked) print("ON_INTERRUPT", hooked) end)
      ed:start("> ", function(line)
        if line ~= "loop" then return got(line) end
        ed:stop()
        local co = coroutine.create(function() local i = 0 while true do i = i + 1 end end)
        le.arm_interrupt(co)
        resi.spawn(function()
          local ok, err = coroutine.resume(co)
          le.arm_interrupt(nil)
          print("RESULT", ok, err)
          ed:start("> ", got)
        end)
      end)
    ]], {
      { wait_for = "> " }, { send = "loop" .. keys.enter }, { sleep = 0.5 }, { send = keys.ctrl_c },
      { wait_for = "RESULT" }, { wait_for = "> " }, { sleep = 0.2 }, { send = keys.ctrl_d }, { wait_exit = true },
    }))
    assert.truthy(r.output:find("RESULT\tfalse\tinterrupted", 1, true), r.output)
    assert.truthy(r.output:find("ON_INTERRUPT\ttrue", 1, true), r.output)
    assert.equal(0, r.status)
  end)

  it("leaves the terminal in cooked mode after Ctrl-D, SIGTERM and SIGHUP", function()
    local script = [[print(("PID=%d"):format(resi.uv.os_getpid()))]] .. ECHO
    local stty = [[stty -a; python3 -c 'import fcntl,os; print("nonblock=%d" % (fcntl.fcntl(0, fcntl.F_GETFL) & os.O_NONBLOCK))']]
    for _, how in ipairs { "ctrl_d", "TERM", "HUP" } do
      local last = how == "ctrl_d" and { send = keys.ctrl_d } or { signal = how, pid_pattern = "PID=(\\d+)" }
      local r = ok(run(script, { { wait_for = "> " }, { send = "abc" }, { sleep = 0.2 },
        how == "ctrl_d" and { send = "\21" } or { sleep = 0 }, last, { wait_exit = true } }, { shell = stty }))
      local after = r.output:match("exit=%d+(.*)$")
      assert.truthy(after, r.output)
      assert.truthy(after:find("[ ;]icanon[ \r\n]") and not after:find("-icanon", 1, true), how .. ": " .. after)
      assert.truthy(after:find("[ ;]echo[ \r\n]") and not after:find("-echo ", 1, true), how .. ": " .. after)
      assert.truthy(after:find("nonblock=0", 1, true), how .. ": " .. after)
      assert.truthy(r.tty.icanon and r.tty.echo)
      local status = r.output:match("exit=(%d+)")
      local want = ({ ctrl_d = "0", TERM = "143", HUP = "129" })[how]
      assert.equal(want, status, r.output)
    end
  end)

  it("redraws after a resize", function()
    local r = ok(run([[
      local sig = resi.uv.new_signal()
      sig:start("sigwinch", function() ed:resize() show("RESIZED") end)
      ed:start("> ", function(line) if not sig:is_closing() then sig:close() end return got(line) end)
    ]], {
      { wait_for = "> " }, { send = "abc" }, { sleep = 0.1 }, { resize = { 24, 40 } },
      { wait_for = "RESIZED" }, { sleep = 0.1 }, { send = keys.enter }, { wait_for = "GOT[abc]" },
      { send = keys.ctrl_d }, { wait_exit = true },
    }))
    assert.equal(0, r.status)
  end)

  it("answers isatty, and refuses to open a pipe", function()
    local r = proc.resi { "-e", [[
      local le = require "resi.lineedit_core"
      print(le.isatty(0), le.open { fd_in = 0 })
    ]] }
    assert.equal("false\tnil\tresi.lineedit: fd 0 is not a terminal\tnotty\n", r.stdout)
    local t = ok(pty.run { argv = { proc.resi_path(), "-e", [[print(require("resi.lineedit_core").isatty(0))]] } })
    assert.truthy(t.output:find("true", 1, true), t.output)
  end)
end)
