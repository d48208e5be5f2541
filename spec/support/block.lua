--- spec/support/block.lua: a resource (a server, a sandbox) that lives as
--- long as the enclosing describe block, or the whole file when called at
--- its top level: made in the block's setup, released in its teardown.
---
---   local srv = block.resource(nginx.start, function(s) s.stop() end)
---   it("...", function() http.get(srv.url .. "/ok") end)
local M = {}

--- Registers start() for the enclosing block's setup and stop(resource)
--- for its teardown (skipped when setup failed). Returns a table that,
--- once setup has run, holds the fields and metatable of what start
--- returned, so a spec can keep it in a local before setup runs.
---@param start fun(): table
---@param stop fun(resource: table)
---@return table
function M.resource(start, stop)
  local busted, resource, started = require "busted", {}, false
  busted.setup(function()
    local r = start()
    for k, v in pairs(r) do resource[k] = v end
    setmetatable(resource, getmetatable(r))
    started = true
  end)
  busted.teardown(function() if started then stop(resource) end end)
  return resource
end

return M
