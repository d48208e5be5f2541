--- resi.fs: file helpers that keep the previous file intact on failure.
local uv = require "luv"

local M = {}

-- Raises "what path: message" for a failed luv call.
local function check(what, path, ok, err)
  if not ok then error(("%s %s: %s"):format(what, path, tostring(err)), 0) end
  return ok
end

---@class resi.fs.atomic_writer
---@field file file*  the temp file, for code that writes to a Lua file (e.g. a converter's pump)
local Writer = {}
Writer.__index = Writer

--- Appends s to the temp file.
---@param s string
function Writer:write(s)
  local ok, err = self.file:write(s)
  if not ok then
    self:abort()
    error(("cannot write %s: %s"):format(self.tmp, tostring(err)), 0)
  end
end

--- Flushes, fsyncs (unless opts.sync was false) and renames the temp file
--- over the path. On failure the temp file is removed, the path is left as
--- it was, and the error names the path.
function Writer:commit()
  if self.done then error("resi.fs: this writer is already committed or aborted", 2) end
  self.done = true
  local ok, err = self.file:flush()
  if ok and self.sync then ok, err = uv.fs_fsync(self.fd) end
  self.file:close()
  uv.fs_close(self.fd)
  if ok then ok, err = uv.fs_rename(self.tmp, self.path) end
  if not ok then
    uv.fs_unlink(self.tmp)
    error(("cannot replace %s: %s"):format(self.path, tostring(err)), 0)
  end
end

--- Drops the temp file; the path is left as it was. Safe to call twice.
function Writer:abort()
  if self.done then return end
  self.done = true
  pcall(self.file.close, self.file)
  uv.fs_close(self.fd)
  uv.fs_unlink(self.tmp)
end

--- A file replaced atomically: writes go to a temp file in the same
--- directory (created with opts.mode, default 0644 = 420; use 384 = 0600
--- for credentials), and commit() renames it over path after an fsync
--- (opts.sync = false skips the fsync: a bulk output that may be lost in a
--- power cut, as with cp or a shell redirect). Whatever fails, path holds
--- either its old content or all of the new.
---@param path string
---@param opts? {mode?: integer, sync?: boolean}
---@return resi.fs.atomic_writer
function M.atomic_writer(path, opts)
  opts = opts or {}
  local tmp = ("%s.tmp-%d-%08x"):format(path, uv.os_getpid(), math.random(0, 0x7fffffff))
  local fd = check("cannot create", tmp, uv.fs_open(tmp, "wx", opts.mode or 420))
  local file, err = io.open(tmp, "r+b") -- buffered writes; fd is kept for fsync
  if not file then
    uv.fs_close(fd)
    uv.fs_unlink(tmp)
    error(("cannot open %s: %s"):format(tmp, tostring(err)), 0)
  end
  return setmetatable({ path = path, tmp = tmp, fd = fd, file = file, sync = opts.sync ~= false }, Writer)
end

--- Writes data to path atomically (see atomic_writer: temp file, fsync,
--- rename). mode defaults to 0644 (420); use 384 (0600) for credentials.
---@param path string
---@param data string
---@param mode? integer
function M.write_atomic(path, data, mode)
  local w = M.atomic_writer(path, { mode = mode })
  w:write(data)
  w:commit()
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
