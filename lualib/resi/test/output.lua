--- resi.test.output: busted's terminal output plus the closing line
--- "N passed, N failed[, N skipped]" that make test and CI read.
local term = require "term"

return function(options)
  local busted = require "busted"
  local tty = io.type(io.stdout) == "file" and term.isatty(io.stdout)
  local handler = require("busted.outputHandlers." .. (tty and "utfTerminal" or "plainTerminal"))(options)
  local subscribe = handler.subscribe

  handler.subscribe = function(h, opts)
    subscribe(h, opts)
    -- subscribed after the terminal handler, so this line comes last
    busted.subscribe({ "suite", "end" }, function()
      local failed = h.failuresCount + h.errorsCount
      local line = ("%d passed, %d failed"):format(h.successesCount, failed)
      if h.pendingsCount > 0 then line = line .. (", %d skipped"):format(h.pendingsCount) end
      io.stdout:write("\n", line, "\n")
      io.stdout:flush()
      return nil, true
    end)
  end
  return handler
end
