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

---@class resi.fs.lock
---@field unlock fun(self: resi.fs.lock)  releases it (also at exit, on collection and when a <close> variable ends)
---@field held fun(self: resi.fs.lock): boolean

--- Takes an exclusive advisory lock (flock) on path, creating the file
--- (mode 0600) when missing. Returns the lock, or nil, message, code where
--- code is "busy" (another process holds it) or "error". With opts.wait
--- (seconds) it retries until then, suspending only this task. The kernel
--- releases the lock when the process ends, even when it is killed.
---@param path string
---@param opts? {wait?: number}
---@return resi.fs.lock|nil, string|nil, string|nil
function M.lock(path, opts)
  if type(path) ~= "string" then error("resi.fs.lock: path must be a string", 2) end
  local core = require "resi.fs_core"
  local wait = opts and opts.wait or 0
  local deadline = uv.hrtime() / 1e9 + wait
  local delay = 0.01
  while true do
    local lock, err, code = core.lock(path)
    if lock or code ~= "busy" or uv.hrtime() / 1e9 >= deadline then return lock, err, code end
    require("resi").sleep(math.min(delay, math.max(0, deadline - uv.hrtime() / 1e9)))
    delay = math.min(delay * 2, 0.25)
  end
end

return M
