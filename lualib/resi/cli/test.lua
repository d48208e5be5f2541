--- resi test [busted args]: runs busted inside resi, so specs use the real
--- scheduler, loop and HTTP client. The whole run is one task; specs call
--- resi.sleep, resi.http and friends directly.
local task = require "resi.task"

local help = [[
usage: resi test [BUSTED OPTIONS] [PATHS...]

Runs busted (Debian's lua-busted) inside resi: every spec runs in a task and
may wait on timers and HTTP. PATHS default to ./spec. The last line printed is
"N passed, N failed" (", N skipped" when some are pending); the exit status is
0 when nothing failed, 1 otherwise. A test that waits longer than
RESI_TEST_TIMEOUT seconds (default 300; 0 turns the watchdog off) stops the
run, named, with exit status 1; what a failed spec left open (a server, a
timer) does not keep the run going after the last spec.

Busted's options work as usual, for example:
  --filter=PATTERN     run only tests whose name matches
  --pattern=PATTERN    spec file name pattern (default _spec)
  -o, --output=NAME    another output handler (TAP, json, ...)
  --shuffle            randomize test order
  --busted-help        busted's full option list]]

-- Checks busted's options the way busted will; returns its message for a bad
-- one (an unknown flag), so that a usage error exits 2 as everywhere in resi.
local function usage_problem(args)
  local cli = require("busted.modules.cli")({ standalone = false, output = "resi.test.output" })
  cli:set_name("resi test")
  local argv = { [0] = "resi test", table.unpack(args) }
  local parsed, err = cli:parse(argv)
  if parsed then return nil end
  return err
end

--- Runs `resi test` with the command line's arguments.
---@param ... string
return function(...)
  local args = { ... }
  if args[1] == "--help" or args[1] == "-h" then
    io.stdout:write(help, "\n")
    return
  end
  if args[1] == "--busted-help" then
    args[1] = "--help"
  else
    local problem = usage_problem(args)
    if problem then
      io.stderr:write(problem, "\n")
      task.set_exit_status(2)
      return
    end
  end
  -- busted reads the global arg; arg[0] names the program in its messages
  _G.arg = { [0] = "resi test", table.unpack(args) }
  -- busted ends with os.exit; unwind instead, so the host shuts down cleanly
  local exit_mark = {}
  local real_exit = os.exit
  os.exit = function(code) error({ [exit_mark] = true, code = code }, 0) end
  package.loaded["resi.test.exit"] = real_exit -- for the watchdog (resi.test.output), which must end the run
  local ok, err = pcall(require("busted.runner"), { standalone = false, output = "resi.test.output" })
  os.exit = real_exit
  if not ok then
    if type(err) ~= "table" or not err[exit_mark] then error(err, 0) end
    local code = err.code
    if code == true or code == nil then code = 0 elseif code == false then code = 1 end
    task.set_exit_status(code)
  end
  -- the specs are over: what a failed spec left open (a server, a timer)
  -- must not keep the runner waiting; the host closes it on the way out
  require("resi.core").stop()
end
