--- resi.metrics.process: the standard process_* metrics (the names and
--- meanings of the Prometheus client libraries' process collector, Linux
--- only) and resi_build_info, registered on a resi.metrics registry:
---
---   require("resi.metrics.process").register(reg)
---
--- CPU time comes from getrusage (microseconds, no clock-tick guess); memory,
--- descriptors and the start time from /proc/self. A figure that cannot be
--- read at a scrape (no /proc, descriptors exhausted) keeps its last value.
local uv = require "luv"

local M = {}

local read = require("resi.fs").read

--- The process's start time in seconds since the epoch (resi.fs_core's
--- process_start: /proc/self/stat's start, in clock ticks since boot).
---@return number|nil
function M.start_time()
  return require("resi.fs_core").process_start(uv.os_getpid())
end

--- Resident and virtual memory in bytes, from /proc/self/status.
---@return integer|nil rss
---@return integer|nil vsize
function M.memory()
  local s = read("/proc/self/status")
  if not s then return nil end
  local rss, vsize = tonumber(s:match("VmRSS:%s*(%d+) kB")), tonumber(s:match("VmSize:%s*(%d+) kB"))
  return rss and rss * 1024, vsize and vsize * 1024
end

--- Open file descriptors: the entries of /proc/self/fd, less the one the
--- listing itself holds open while it reads.
---@return integer|nil
function M.open_fds()
  local dir = uv.fs_scandir("/proc/self/fd")
  if not dir then return nil end
  local n = 0
  while uv.fs_scandir_next(dir) do n = n + 1 end
  return math.max(0, n - 1)
end

--- The soft limit on open descriptors, from /proc/self/limits.
---@return integer|nil
function M.max_fds()
  local s = read("/proc/self/limits")
  local soft = s and s:match("\nMax open files%s+(%S+)")
  if soft == "unlimited" then return math.maxinteger end
  return tonumber(soft)
end

--- User plus system CPU time in seconds (getrusage).
---@return number|nil
function M.cpu_seconds()
  local ru = uv.getrusage()
  if not ru then return nil end
  return ru.utime.sec + ru.stime.sec + (ru.utime.usec + ru.stime.usec) / 1e6
end

--- resi's version and those of the libraries it runs on.
---@return {version: string, lua: string, libuv: string, libcurl: string}
function M.build_info()
  local curl = require("resi.http").curl_version
  return { version = require("resi").version, lua = _VERSION:match("%d[%d.]*") or _VERSION,
    libuv = uv.version_string(), libcurl = curl }
end

-- Sets a gauge or counter without labels when the figure was read.
local function put(fam, v)
  if v then fam:set(nil, v) end
end

--- Registers process_cpu_seconds_total, process_resident_memory_bytes,
--- process_virtual_memory_bytes, process_start_time_seconds,
--- process_open_fds, process_max_fds and resi_build_info (a gauge of 1)
--- on reg, and a collector that refreshes them at every scrape.
---@param reg resi.metrics.registry
function M.register(reg)
  local cpu = reg:counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
  local rss = reg:gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
  local vsz = reg:gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
  local start = reg:gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
  local fds = reg:gauge("process_open_fds", "Number of open file descriptors.")
  local max = reg:gauge("process_max_fds", "Maximum number of open file descriptors.")
  local info = reg:gauge("resi_build_info", "A metric with a constant '1' value labeled by resi's version and "
    .. "the versions of Lua, libuv and libcurl it runs on.", { "version", "lua", "libuv", "libcurl" })
  info:set(M.build_info(), 1)
  put(start, M.start_time())
  reg:collect(function()
    put(cpu, M.cpu_seconds())
    local r, v = M.memory()
    put(rss, r)
    put(vsz, v)
    put(fds, M.open_fds())
    put(max, M.max_fds())
  end)
end

return M
