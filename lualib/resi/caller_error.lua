--- resi.caller_error: errors about a caller's arguments, raised at the
--- caller's line rather than inside resi. A module makes its raiser once:
---
---   local bad = require("resi.caller_error")("resi.http")
---   bad("timeout must be a number")  -- "x.lua:12: resi.http: timeout must be a number"
---
--- The level is the first stack frame outside the module's own file, so
--- helpers inside the module may call the raiser at any depth.

--- Returns a function raising "prefix: msg" at the first stack level outside
--- the file that called this.
---@param prefix string
---@return fun(msg: string)
return function(prefix)
  local file = debug.getinfo(2, "S").source
  return function(msg)
    local level = 2
    while true do
      local info = debug.getinfo(level, "S")
      if not info or info.source ~= file then break end
      level = level + 1
    end
    error(prefix .. ": " .. msg, level)
  end
end
