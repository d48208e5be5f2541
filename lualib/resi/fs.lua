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

--- Seconds of clock slack when comparing a process's start with a file's
--- mtime or a run's start (the start time comes from boot time plus clock
--- ticks).
M.START_SLACK = 2

-- The directory and the last component of a path ("." for a bare name).
local function split_path(path)
  local dir, base = path:match("^(.*)/([^/]*)$")
  if not dir then return ".", path end
  return dir == "" and "/" or dir, base
end

-- The PID in a temp file name of base ("base.tmp-PID-HEX"), or nil.
local function temp_pid(name, base)
  if name:sub(1, #base + 5) ~= base .. ".tmp-" then return nil end
  local pid = name:sub(#base + 6):match("^(%d+)%-%x+$")
  pid = pid and math.tointeger(tonumber(pid))
  return pid and pid > 0 and pid <= 0x7fffffff and pid or nil -- never 0 or a group
end

--- Is pid held by a process that was already running at time t (epoch
--- seconds)? False when no process has the pid (ESRCH), or when the one that
--- has it now started more than START_SLACK after t: a later process that
--- reused the pid. Without t (or without /proc), any process counts.
---@param pid integer
---@param t? number
---@return boolean
function M.process_since(pid, t)
  local ok, _, code = uv.kill(pid, 0)
  if not ok and code == "ESRCH" then return false end -- EPERM: alive, someone else's
  local started = t and require("resi.fs_core").process_start(pid)
  return not (started and started > t + M.START_SLACK)
end

-- True when the writer of a temp file is gone: no process has its PID any
-- more, or the one that has it started after the file was last written.
local function writer_gone(pid, file)
  local st = uv.fs_stat(file)
  return not M.process_since(pid, st and st.mtime.sec)
end

--- Removes the temp files that killed writers left for path (they may
--- hold credentials): "path.tmp-PID-*" whose writer is gone (see
--- writer_gone). Temp files of live writers, ours included, are kept.
--- Returns the names removed.
---@param path string
---@return string[]
function M.remove_stale_temps(path)
  local dir, base = split_path(path)
  local removed = {}
  local scan = uv.fs_scandir(dir)
  if not scan then return removed end
  for name in function() return uv.fs_scandir_next(scan) end do
    local pid = temp_pid(name, base)
    local file = dir .. "/" .. name
    if pid and writer_gone(pid, file) and uv.fs_unlink(file) then removed[#removed + 1] = name end
  end
  return removed
end

-- Targets swept of stale temp files by this process (once each).
local swept = {}

--- A file replaced atomically: writes go to a temp file in the same
--- directory (created with opts.mode, default 0644 = 420; use 384 = 0600
--- for credentials), and commit() renames it over path after an fsync
--- (opts.sync = false skips the fsync: a bulk output that may be lost in a
--- power cut, as with cp or a shell redirect). Whatever fails, path holds
--- either its old content or all of the new. The first writer of a path in
--- a process also removes the temp files killed writers left for it
--- (remove_stale_temps).
---@param path string
---@param opts? {mode?: integer, sync?: boolean}
---@return resi.fs.atomic_writer
function M.atomic_writer(path, opts)
  opts = opts or {}
  if not swept[path] then
    swept[path] = true
    M.remove_stale_temps(path)
  end
  local tmp = ("%s.tmp-%d-%s"):format(path, uv.os_getpid(), require("resi.random").hex(4))
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
---@return string|nil data
---@return string|nil err
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("a")
  f:close()
  return data
end

--- True when path exists.
---@param path string
---@return boolean
function M.exists(path) return uv.fs_stat(path) ~= nil end

--- Checks, before any work is done, that a file can be written at path
--- (atomically: a temp file is made next to it): its directory exists, is
--- a directory and is writable, and path itself is not a directory.
--- Returns true, or nil and the cause ("directory /x does not exist").
---@param path string
---@return true|nil ok
---@return string|nil err
function M.check_writable(path)
  local dir = split_path(path)
  local st = uv.fs_stat(dir)
  if not st then return nil, ("directory %s does not exist"):format(dir) end
  if st.type ~= "directory" then return nil, ("%s is not a directory"):format(dir) end
  if not uv.fs_access(dir, "W") then return nil, ("directory %s is not writable"):format(dir) end
  local target = uv.fs_stat(path)
  if target and target.type == "directory" then return nil, "it is a directory" end
  return true
end

---@class resi.fs.lock
---@field unlock fun(self: resi.fs.lock)  releases it (also at exit, on collection and when a <close> variable ends)
---@field held fun(self: resi.fs.lock): boolean

--- Takes an exclusive advisory lock (flock) on path, creating the file
--- (mode 0600) when missing. Returns the lock, or nil, message, code where
--- code is "busy" (another process holds it) or "error" (the file cannot be
--- opened or locked at all: ENOENT, EACCES, EISDIR...; the message names the
--- path and the cause, and waiting would not help, so it is said at once).
--- With opts.wait (seconds) a busy lock is retried until then, suspending
--- only this task. The kernel
--- releases the lock when the process ends, even when it is killed.
---@param path string
---@param opts? {wait?: number}
---@return resi.fs.lock|nil lock
---@return string|nil err
---@return "busy"|"error"|nil code
---@async
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
