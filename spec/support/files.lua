--- spec/support/files.lua: scratch files and directories for specs.
local uv = require "luv"

local M = {}

--- A new scratch directory /tmp/PREFIX.XXXXXX (mode 0700); the caller
--- removes it (M.remove_dir).
---@param prefix string  e.g. "resi-rotate"
---@return string dir
function M.dir(prefix)
  return assert(uv.fs_mkdtemp("/tmp/" .. prefix .. ".XXXXXX"))
end

--- Removes a scratch directory and everything in it.
---@param dir string
function M.remove_dir(dir)
  assert(dir:match("^/tmp/."), "not a scratch directory: " .. tostring(dir))
  require("spec.support.proc").run { "rm", "-rf", dir }
end

-- Writes text to path (created or replaced); returns path.
local function put(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

--- Writes text to a new scratch file (os.tmpname, with suffix appended if
--- given, e.g. ".lua"); returns its path. The caller removes it (os.remove).
---@param text string
---@param suffix? string
---@return string path
function M.scratch(text, suffix)
  local path = os.tmpname()
  if suffix then
    os.remove(path)
    path = path .. suffix
  end
  return put(path, text)
end

--- Writes text to the file name in directory dir (created or replaced);
--- returns its path.
---@param dir string
---@param name string
---@param text string
---@return string path
function M.write(dir, name, text)
  return put(dir .. "/" .. name, text)
end

return M
