--- spec/support/files.lua: scratch files for specs.
local M = {}

--- Writes text to a new scratch file (os.tmpname); returns its path. The
--- caller removes it (os.remove).
---@param text string
---@return string path
function M.scratch(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

--- Writes text to the file name in directory dir (created or replaced);
--- returns its path.
---@param dir string
---@param name string
---@param text string
---@return string path
function M.write(dir, name, text)
  local path = dir .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

return M
