--- resi.test.output: busted's terminal output plus the closing line
--- "N passed, N failed[, N skipped]" that make test and CI read, and a
--- watchdog: a test that waits longer than RESI_TEST_TIMEOUT seconds
--- (default 300, 0 turns it off) stops the run with its name and exit
--- status 1, rather than leaving CI waiting on it.
local term = require "term"

-- Starts the watchdog; returns the function that notes the running test.
local function watchdog(limit, counts)
  local uv = require "luv"
  local name, started
  local timer = uv.new_timer()
  timer:start(1000, 1000, function()
    if not started or uv.now() - started < limit * 1000 then return end
    io.stdout:write(("\n\nresi test: %q has waited for %d s (RESI_TEST_TIMEOUT); stopping the run\n\n")
      :format(name, limit))
    local passed, failed = counts()
    io.stdout:write(("%d passed, %d failed\n"):format(passed, failed + 1))
    io.stdout:flush();
    (package.loaded["resi.test.exit"] or os.exit)(1) -- busted's os.exit is diverted while it runs
  end)
  timer:unref() -- the watchdog alone keeps nothing running
  return function(running)
    name = running
    started = running and uv.now() or nil
  end
end

-- Charges errors in tasks nobody waited for to the test that was running
-- (or to the gap between tests): each is one more failure, named at the end.
local function orphan_ledger()
  local task = require "resi.task"
  local lines = {}
  local ledger = {}
  function ledger.close(test_name)
    for _, what in ipairs(task.take_orphans()) do
      lines[#lines + 1] = ("  %s, in %s"):format(what, test_name and ("%q"):format(test_name) or "no test")
    end
  end
  function ledger.count() return #lines end
  function ledger.write(out)
    if #lines == 0 then return end
    out:write("\nresi test: ", #lines, " error(s) in tasks nobody waited for (counted as failures):\n",
      table.concat(lines, "\n"), "\n")
  end
  return ledger
end

-- Captures resi.log's lines per test, so JSON log lines do not land between
-- busted's progress marks; the lines of a test that failed are printed at
-- the end, under its name. RESI_TEST_LOG=stderr keeps them on stderr as
-- they happen.
local function log_capture()
  local lines, kept = {}, {}
  local capture = {}
  local sink = { write = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end, flush = function() end }
  if os.getenv("RESI_TEST_LOG") ~= "stderr" then require("resi.log").configure { file = sink } end
  function capture.start() lines = {} end
  function capture.close(test_name, failed)
    if failed and #lines > 0 then kept[#kept + 1] = { name = test_name, text = table.concat(lines) } end
    lines = {}
  end
  function capture.write(out)
    for _, k in ipairs(kept) do out:write(("\nresi.log lines of %q:\n"):format(k.name), k.text) end
  end
  return capture
end

--- busted's output handler for resi test (busted calls it with its options).
---@param options table
return function(options)
  local busted = require "busted"
  local tty = io.type(io.stdout) == "file" and term.isatty(io.stdout)
  local handler = require("busted.outputHandlers." .. (tty and "utfTerminal" or "plainTerminal"))(options)
  local subscribe = handler.subscribe

  handler.subscribe = function(h, opts)
    subscribe(h, opts)
    local orphans, logs = orphan_ledger(), log_capture()
    busted.subscribe({ "test", "start" }, function()
      logs.start()
      return nil, true
    end)
    busted.subscribe({ "test", "end" }, function(element, _, status)
      local name = h.getFullName and h.getFullName(element) or element.name
      local before = orphans.count()
      orphans.close(name)
      logs.close(name, status == "failure" or status == "error" or orphans.count() > before)
      return nil, true
    end)
    local limit = tonumber(os.getenv("RESI_TEST_TIMEOUT") or "300") or 300
    if limit > 0 then
      local note = watchdog(limit, function()
        return h.successesCount, h.failuresCount + h.errorsCount + orphans.count()
      end)
      busted.subscribe({ "test", "start" }, function(element)
        note(element.name)
        return nil, true
      end)
      busted.subscribe({ "test", "end" }, function()
        note(nil)
        return nil, true
      end)
    end
    -- subscribed after the terminal handler, so this line comes last
    busted.subscribe({ "suite", "end" }, function()
      orphans.close(nil)
      logs.write(io.stdout)
      orphans.write(io.stdout)
      local failed = h.failuresCount + h.errorsCount + orphans.count()
      local line = ("%d passed, %d failed"):format(h.successesCount, failed)
      if h.pendingsCount > 0 then line = line .. (", %d skipped"):format(h.pendingsCount) end
      io.stdout:write("\n", line, "\n")
      io.stdout:flush()
      return nil, true
    end)
  end
  return handler
end
