--- spec/support/postgres.lua: a throw-away real PostgreSQL for a spec
--- (Debian's postgresql: initdb + pg_ctl from /usr/lib/postgresql/*/bin) in
--- a scratch directory, on a free loopback TCP port, its unix socket in that
--- directory. The superuser `resi` has a random password and TCP clients
--- must give it (scram-sha-256), so specs about secrets use a real one.
--- When the suite runs as root (CI does), the server runs as the system
--- user `postgres` (made by the postgresql package), else `nobody`:
--- PostgreSQL refuses to run as root.
---
---   local pg_server = require("spec.support.postgres").start()   -- or .for_block(), in setup/teardown
---   pg_server.url            -- postgresql://resi:PASSWORD@127.0.0.1:PORT/postgres
---   pg_server.admin(sql, params) -- runs SQL through resi.pg, raises on failure
---   pg_server.fresh_url()    -- a new empty database (db1, db2, ...): its URL
---   pg_server.restart()      -- fast shutdown, start again (same port, same data)
---   pg_server.stop_fast() / pg_server.start()  -- down, and up again
---   pg_server.kill()         -- SIGKILL the postmaster (its backends then exit)
---   pg_server.stop()         -- shut down and delete everything
local uv = require "luv"
local resi = require "resi"
local proc = require "spec.support.proc"
local files = require "spec.support.files"
local sockets = require "spec.support.sockets"
local random = require "resi.random"

local M = {}

-- The newest /usr/lib/postgresql/N/bin with the server programs, or nil.
local function find_bin()
  local best, best_n
  local dir = uv.fs_scandir("/usr/lib/postgresql")
  if not dir then return nil end
  while true do
    local name = uv.fs_scandir_next(dir)
    if not name then break end
    local n = tonumber(name)
    local bin = "/usr/lib/postgresql/" .. name .. "/bin"
    if n and uv.fs_access(bin .. "/initdb", "X") and uv.fs_access(bin .. "/pg_ctl", "X") and (not best_n or n > best_n) then
      best, best_n = bin, n
    end
  end
  return best
end

-- Whether a system user exists.
local function user_exists(name)
  return proc.run({ "id", "-u", name }).status == 0
end

-- Runs argv (as the server's user when set), in dir; raises with its
-- output when it fails.
local function must(server, argv, what)
  if server.run_as then
    local wrapped = { "runuser", "-u", server.run_as, "--" }
    for _, a in ipairs(argv) do wrapped[#wrapped + 1] = a end
    argv = wrapped
  end
  local r = proc.run(argv, { cwd = server.dir })
  if r.status ~= 0 then
    local log = io.open(server.dir .. "/server.log")
    local tail = log and log:read("a"):sub(-2000) or ""
    if log then log:close() end
    error(("postgres: %s failed (status %s): %s%s\n%s"):format(what, tostring(r.status), r.stdout, r.stderr, tail), 0)
  end
  return r
end

local CONF = [[
listen_addresses = '127.0.0.1'
port = PORT
unix_socket_directories = 'DIR'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
dynamic_shared_memory_type = mmap
log_min_messages = warning
]]

-- pg_ctl start, waiting until it accepts connections.
local function pg_start(server)
  must(server, { server.bin .. "/pg_ctl", "-D", server.data, "-l", server.dir .. "/server.log",
    "-w", "-t", "30", "start" }, "pg_ctl start")
end

--- Starts a new server. opts.user (root only): the system user to run it as.
---@param opts? {user?: string}
---@return table server
function M.start(opts)
  opts = opts or {}
  local bin = find_bin()
  if not bin then
    error("postgres: no PostgreSQL server in /usr/lib/postgresql/*/bin (initdb, pg_ctl): "
      .. "install Debian's postgresql (make deps)", 2)
  end
  local server = { bin = bin, dir = files.dir("resi-pg"), user = "resi" }
  server.data = server.dir .. "/data"
  if uv.getuid() == 0 then
    server.run_as = opts.user or (user_exists("postgres") and "postgres" or "nobody")
    proc.run { "chown", server.run_as, server.dir }
  end
  server.password = "pw-" .. random.hex(8) .. "-S3cr3t"
  server.port = sockets.closed_port()
  files.write(server.dir, "pwfile", server.password .. "\n")
  if server.run_as then proc.run { "chown", server.run_as, server.dir .. "/pwfile" } end
  must(server, { bin .. "/initdb", "-D", server.data, "-U", "resi", "--pwfile=" .. server.dir .. "/pwfile",
    "--auth-local=trust", "--auth-host=scram-sha-256", "--no-locale", "-E", "UTF8", "--no-sync" }, "initdb")
  os.remove(server.dir .. "/pwfile")
  local conf = io.open(server.data .. "/postgresql.conf", "a")
  conf:write((CONF:gsub("PORT", tostring(server.port)):gsub("DIR", server.dir)))
  conf:close()
  pg_start(server)
  server.url = ("postgresql://resi:%s@127.0.0.1:%d/postgres"):format(server.password, server.port)
  server.url_without_password = ("postgresql://resi@127.0.0.1:%d/postgres"):format(server.port)

  --- Starts the server again after stop_fast or kill (same port and data);
  --- retries while the killed server's backends are still exiting.
  function server.start()
    local ok, err
    for _ = 1, 50 do
      ok, err = pcall(pg_start, server)
      if ok then return end
      resi.sleep(0.1)
    end
    error(err, 0)
  end

  --- Fast shutdown (sessions are terminated), keeping the data.
  function server.stop_fast()
    must(server, { bin .. "/pg_ctl", "-D", server.data, "-m", "fast", "-w", "stop" }, "pg_ctl stop")
  end

  --- Fast shutdown and start again.
  function server.restart()
    server.stop_fast()
    server.start()
  end

  --- The postmaster's pid (from postmaster.pid), or nil when it is down.
  function server.pid()
    local f = io.open(server.data .. "/postmaster.pid")
    if not f then return nil end
    local pid = tonumber(f:read("l"))
    f:close()
    return pid
  end

  --- SIGKILLs the postmaster, as a crash would; waits until it is gone.
  function server.kill()
    local pid = assert(server.pid(), "postgres: not running")
    uv.kill(pid, "sigkill")
    proc.eventually(function() return proc.run({ "kill", "-0", tostring(pid) }).status ~= 0 end, 10)
  end

  --- Runs one statement through resi.pg on a new connection; returns the
  --- result, raising on failure (admin SQL without psql).
  function server.admin(sql, params)
    local pg = require "resi.pg"
    local conn = assert(pg.connect(server.url, { timeout = 10 }))
    local res, msg = conn:query(sql, params)
    conn:close()
    if not res then error("postgres: admin SQL failed: " .. msg, 2) end
    return res
  end

  --- Creates a new, empty database (db1, db2, ...) and returns its URL:
  --- base's (default server.url, e.g. a pooler's) with /postgres replaced.
  local n_db = 0
  function server.fresh_url(base)
    n_db = n_db + 1
    server.admin("CREATE DATABASE db" .. n_db)
    return ((base or server.url):gsub("/postgres$", "/db" .. n_db))
  end

  --- Shuts the server down and deletes its directory.
  function server.stop()
    if server.pid() then pcall(server.stop_fast) end
    if server.pid() then uv.kill(server.pid(), "sigkill") end
    files.remove_dir(server.dir)
  end

  return server
end

--- A server for the enclosing describe block, or the whole file at its top
--- level (spec.support.block): started in its setup, stopped (and deleted)
--- in its teardown. Returns the server table, whose fields are there once
--- setup has run.
---@param opts? {user?: string}
---@return table server
function M.for_block(opts)
  return require("spec.support.block").resource(function() return M.start(opts) end,
    function(server) server.stop() end)
end

return M
