--- resi.fs: file helpers that keep the previous file intact on failure.
local uv = require "luv"

local M = {}

-- Raises "what path: message" for a failed luv call.
local function check(what, path, ok, err)
  if not ok then error(("%s %s: %s"):format(what, path, tostring(err)), 0) end
  return ok
end

--- Writes data to path atomically: a temp file in the same directory,
--- fsync, then rename over the old file. mode defaults to 0644 (octal 420);
--- use 384 (0600) for files holding credentials.
---@param path string
---@param data string
---@param mode? integer
function M.write_atomic(path, data, mode)
  local tmp = ("%s.tmp-%d-%d"):format(path, uv.os_getpid(), math.random(0, 0x7fffffff))
  local fd = check("cannot create", tmp, uv.fs_open(tmp, "w", mode or 420))
  local ok, err = uv.fs_write(fd, data, 0)
  if ok then ok, err = uv.fs_fsync(fd) end
  uv.fs_close(fd)
  if not ok then
    uv.fs_unlink(tmp)
    error(("cannot write %s: %s"):format(tmp, tostring(err)), 0)
  end
  ok, err = uv.fs_rename(tmp, path)
  if not ok then
    uv.fs_unlink(tmp)
    error(("cannot replace %s: %s"):format(path, tostring(err)), 0)
  end
end

--- Reads a whole file; nil and a message when it cannot.
---@param path string
---@return string|nil, string|nil
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("a")
  f:close()
  return data
end

--- True when path exists.
function M.exists(path) return uv.fs_stat(path) ~= nil end

return M
