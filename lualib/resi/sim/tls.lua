--- resi.sim.tls: HTTPS in front of the sandbox's ports, for `resi sim --tls`.
---
--- resi's own HTTP server speaks plain HTTP (libuv + http-parser), and resi's
--- clients refuse plain http:// to any host but loopback (DESIGN §9). To let
--- another machine use the sandbox without weakening that rule, `--tls`:
---   1. makes a private directory (mode 0700) and in it, with Debian's
---      `openssl` command, a CA and a server certificate signed by it whose
---      subject alternative names are this machine's names and addresses
---      (localhost, the host name, 127.0.0.1, ::1, every interface address,
---      and --host). The CA's key is deleted once it has signed: the CA can
---      vouch for nothing else, so trusting it is harmless;
---   2. writes ca.pem: that CA followed by the system's CA bundle, so that
---      `export SSL_CERT_FILE=.../ca.pem` for the sandbox does not break HTTPS
---      to real hosts in the same shell;
---   3. runs Debian's `stunnel4` (under `setpriv --pdeathsig TERM` when it is
---      there, so stunnel dies with resi even on kill -9), one service per
---      provider: TLS on HOST:PORT, forwarded to the sandbox's own listener
---      on 127.0.0.1;
---   4. waits until every front answers HTTPS verified against ca.pem, then
---      watches stunnel: if it exits, on_exit(message) is called (resi sim
---      then stops with status 1). stop() ends stunnel and removes the
---      directory.
---
---   local front = assert(tls.start{host = "0.0.0.0", ports = {8401, 0, 0},
---     backends = {40001, 40002, 40003}, names = {"unknownproxies", "oxylabs", "resifactory"}})
---   -- front.urls[1] = "https://192.0.2.2:8401", front.ca_file, front.names
---   front:stop()
local uv = require "luv"
local task = require "resi.task"

local M = {}

--- Seconds the front may take to answer its first HTTPS request.
M.STARTUP_TIMEOUT = 15
--- Days the certificates are valid.
M.DAYS = 30
--- Where the system's CA bundle may be (Debian's first).
M.SYSTEM_BUNDLES = { "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem" }
--- Lines of stunnel's log kept for error messages.
M.LOG_LINES = 20

-- The path of an executable named `name` on PATH, or nil.
local function which(name)
  for dir in (os.getenv("PATH") or "/usr/local/bin:/usr/bin:/bin"):gmatch("[^:]+") do
    local path = dir .. "/" .. name
    if uv.fs_access(path, "X") then return path end
  end
  return nil
end

--- The commands --tls needs: {openssl=, stunnel=, setpriv=?}, or nil and a
--- message saying what to install.
---@return table|nil tools
---@return string|nil err
function M.tools()
  local t = { openssl = which("openssl"), stunnel = which("stunnel4") or which("stunnel"), setpriv = which("setpriv") }
  local missing = {}
  if not t.openssl then missing[#missing + 1] = "openssl" end
  if not t.stunnel then missing[#missing + 1] = "stunnel4" end
  if #missing > 0 then
    return nil, ("--tls needs the %s command%s (Debian: apt install %s)"):format(table.concat(missing, " and "),
      #missing > 1 and "s" or "", table.concat(missing, " "))
  end
  return t
end

--- Is s a numeric IPv4 ("4") or IPv6 ("6") address? nil otherwise.
---@param s string
---@return "4"|"6"|nil
function M.ip_version(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a then
    for _, n in ipairs({ a, b, c, d }) do if #n > 3 or tonumber(n) > 255 then return nil end end
    return "4"
  end
  if s:find(":", 1, true) and s:match("^[%x:%.]+$") and #s <= 45 then return "6" end
  return nil
end

-- Is host a wildcard address (every interface)?
local function is_wildcard(host) return host == "0.0.0.0" or host == "::" end

-- The addresses of every interface, interfaces in name order, without the
-- link-local ones (fe80...: they need a zone id in URLs).
local function interface_addresses()
  local addrs = uv.interface_addresses() or {}
  local names = {}
  for name in pairs(addrs) do names[#names + 1] = name end
  table.sort(names)
  local out = {}
  for _, name in ipairs(names) do
    for _, a in ipairs(addrs[name]) do
      if not a.ip:lower():match("^fe80") then out[#out + 1] = a end
    end
  end
  return out
end

--- The names and addresses the server certificate covers for a listen
--- host: {dns = {...}, ip = {...}}, without duplicates.
---@param host string
---@return {dns: string[], ip: string[]}
function M.cert_names(host)
  local out, seen = { dns = {}, ip = {} }, {}
  local function add(kind, v)
    if v and v ~= "" and not seen[v] then seen[v] = true; out[kind][#out[kind] + 1] = v end
  end
  add("dns", "localhost")
  local ok, hostname = pcall(uv.os_gethostname)
  if ok and hostname and hostname:match("^[%w%.%-]+$") then add("dns", hostname) end
  add("ip", "127.0.0.1")
  add("ip", "::1")
  for _, a in ipairs(interface_addresses()) do add("ip", a.ip) end
  if not is_wildcard(host) then add(M.ip_version(host) and "ip" or "dns", host) end
  return out
end

-- The first external, non-link-local address of a family ("inet" or
-- "inet6"), interfaces in name order; nil when there is none.
local function external_address(family)
  for _, a in ipairs(interface_addresses()) do
    if a.family == family and not a.internal then return a.ip end
  end
  return nil
end

--- The host to print in URLs: --host itself, or for a wildcard the first
--- external address of its family (what another machine would use), else
--- loopback. IPv6 in brackets.
---@param host string
---@return string
function M.url_host(host)
  local chosen = host
  if host == "0.0.0.0" then chosen = external_address("inet") or "127.0.0.1" end
  if host == "::" then chosen = external_address("inet6") or "::1" end
  return chosen:find(":", 1, true) and "[" .. chosen .. "]" or chosen
end

-- Runs argv to completion without blocking the loop; returns the exit
-- code and what it wrote to stderr.
local function run(argv)
  return task.await(function(done)
    local err_pipe = uv.new_pipe()
    local chunks, code, pending = {}, nil, 2
    local function step() pending = pending - 1; if pending == 0 then done(code, table.concat(chunks)) end end
    local handle, spawn_err
    handle, spawn_err = uv.spawn(argv[1], { args = { table.unpack(argv, 2) }, stdio = { nil, nil, err_pipe } },
      function(c) code = c; handle:close(); step() end)
    if not handle then
      err_pipe:close()
      return done(127, tostring(spawn_err))
    end
    err_pipe:read_start(function(_, data)
      if data then chunks[#chunks + 1] = data else err_pipe:close(); step() end
    end)
  end)
end

-- The last non-empty line of a command's stderr (what went wrong).
local function last_line(text)
  local last = ""
  for line in text:gmatch("[^\n]+") do if line:match("%S") then last = line end end
  return last
end

-- Writes text to path (mode 0600); true or nil, message.
local function write_file(path, text)
  local fd, err = uv.fs_open(path, "w", 384)
  if not fd then return nil, err end
  local ok, werr = uv.fs_write(fd, text, 0)
  uv.fs_close(fd)
  if not ok then return nil, werr end
  return true
end

-- Runs openssl with args in dir; true or nil, message naming the step.
local function openssl(tools, step, args)
  local code, err = run({ tools.openssl, table.unpack(args) })
  if code ~= 0 then return nil, ("openssl could not %s: %s"):format(step, last_line(err)) end
  return true
end

--- Makes dir/ca.crt (a CA) and dir/server.pem + dir/server.key (signed by
--- it, with names as subject alternative names); deletes the CA's key and
--- the intermediate files. True or nil, message.
---@param tools table
---@param dir string
---@param names {dns: string[], ip: string[]}
function M.make_certs(tools, dir, names)
  local sans = {}
  for _, n in ipairs(names.dns) do sans[#sans + 1] = "DNS:" .. n end
  for _, n in ipairs(names.ip) do sans[#sans + 1] = "IP:" .. n end
  local ext = dir .. "/server.ext"
  local ok, err = write_file(ext, "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    .. "extendedKeyUsage=serverAuth\nsubjectAltName=" .. table.concat(sans, ",") .. "\n")
  if not ok then return nil, err end
  local days, key = tostring(M.DAYS), { "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes" }
  local steps = {
    { "make the sandbox CA", { "req", "-x509", key[1], key[2], key[3], key[4], key[5], "-keyout", dir .. "/ca.key",
      "-out", dir .. "/ca.crt", "-days", days, "-subj", "/CN=resi sim sandbox CA", "-addext",
      "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign" } },
    { "make the server key", { "req", "-new", key[1], key[2], key[3], key[4], key[5], "-keyout", dir .. "/server.key",
      "-out", dir .. "/server.csr", "-subj", "/CN=resi sim" } },
    { "sign the server certificate", { "x509", "-req", "-in", dir .. "/server.csr", "-CA", dir .. "/ca.crt",
      "-CAkey", dir .. "/ca.key", "-CAcreateserial", "-out", dir .. "/server.pem", "-days", days, "-extfile", ext } },
  }
  for _, s in ipairs(steps) do
    ok, err = openssl(tools, s[1], s[2])
    if not ok then break end
  end
  for _, f in ipairs({ "ca.key", "ca.srl", "server.csr", "server.ext" }) do uv.fs_unlink(dir .. "/" .. f) end
  return ok, err
end

-- The system's CA bundle (text), or "" when none is found. Read once at
-- start-up; a bundle is a few hundred kB.
local function system_bundle()
  for _, path in ipairs(M.SYSTEM_BUNDLES) do
    local f = io.open(path, "rb")
    if f then
      local text = f:read("a") or ""
      f:close()
      if text:find("BEGIN CERTIFICATE", 1, true) then return text end
    end
  end
  return ""
end

-- Writes dir/ca.pem: the sandbox CA, then the system's CAs; its path.
local function write_bundle(dir)
  local f = assert(io.open(dir .. "/ca.crt", "rb"))
  local ca = f:read("a")
  f:close()
  uv.fs_unlink(dir .. "/ca.crt")
  local path = dir .. "/ca.pem"
  local ok, err = write_file(path, "# resi sim sandbox CA (its key is deleted), then the system's CAs\n"
    .. ca .. "\n" .. system_bundle())
  if not ok then return nil, err end
  return path
end

-- A port on host that is free now (bound, read, released), or nil, message.
local function free_port(host)
  local tcp = uv.new_tcp()
  local ok, err = tcp:bind(host, 0)
  local port = ok and tcp:getsockname().port
  tcp:close()
  if not port then return nil, ("cannot bind %s: %s"):format(host, tostring(err)) end
  return port
end

-- stunnel's configuration: one TLS service per provider.
local function stunnel_config(dir, host, services)
  local lines = { "; written by resi sim --tls", "foreground = yes", "pid =", "syslog = no", "debug = 4", "" }
  for _, s in ipairs(services) do
    lines[#lines + 1] = "[" .. s.name .. "]"
    lines[#lines + 1] = ("accept = %s:%d"):format(host, s.port) -- split at the last ':' (IPv6 too)
    lines[#lines + 1] = ("connect = 127.0.0.1:%d"):format(s.backend)
    lines[#lines + 1] = "cert = " .. dir .. "/server.pem"
    lines[#lines + 1] = "key = " .. dir .. "/server.key"
    lines[#lines + 1] = "sslVersionMin = TLSv1.2"
    lines[#lines + 1] = "TIMEOUTclose = 0"
    lines[#lines + 1] = ""
  end
  return table.concat(lines, "\n")
end

---@class resi.sim.tls
---@field urls string[]     "https://HOST:PORT" per service, in order
---@field ca_file string    the CA bundle to trust (print as SSL_CERT_FILE)
---@field dir string        the private directory
---@field names {dns: string[], ip: string[]}
local Front = {}
Front.__index = Front

-- Is a line of stunnel's log worth showing when it fails? Errors and
-- warnings, and notices that name a failure ("Binding service [x] to
-- 127.0.0.1:8401: Address already in use"); not the harmless warning that
-- no client CA is configured.
local function important(line)
  if line:find("No trusted certificates found", 1, true) then return false end
  return line:match("^%[!%]") or line:match("LOG[0-4]%[") or line:find("[Ff]ailed") or line:find("[Ee]rror")
    or line:find("in use", 1, true) or line:find("denied", 1, true)
end

-- Keeps the last lines stunnel logged, and the important ones apart.
function Front:_log(data)
  self.partial = self.partial .. data
  for line in self.partial:gmatch("([^\n]*)\n") do
    local keep = important(line) and self.important or self.log
    keep[#keep + 1] = line
    if #keep > M.LOG_LINES then table.remove(keep, 1) end
  end
  self.partial = self.partial:match("[^\n]*$")
end

-- Why stunnel is gone: its status and what it said went wrong.
function Front:_exit_message()
  local lines = #self.important > 0 and self.important or self.log
  local tail = {}
  for i = math.max(1, #lines - 4), #lines do tail[#tail + 1] = "  stunnel: " .. lines[i] end
  return ("stunnel (the TLS front) exited with status %s%s"):format(tostring(self.exit_code),
    #tail > 0 and (":\n" .. table.concat(tail, "\n")) or "")
end

-- Starts stunnel on dir/stunnel.conf; true or nil, message.
function Front:_spawn(tools)
  local argv = { tools.stunnel, self.dir .. "/stunnel.conf" }
  if tools.setpriv then argv = { tools.setpriv, "--pdeathsig", "TERM", table.unpack(argv) } end
  local pipe = uv.new_pipe()
  local handle, err
  handle, err = uv.spawn(argv[1], { args = { table.unpack(argv, 2) }, stdio = { nil, nil, pipe } }, function(code, signal)
    self.exit_code = signal ~= 0 and ("signal " .. signal) or code
    handle:close()
    if not self.stopping and self.on_exit then self.on_exit(self:_exit_message()) end
  end)
  if not handle then pipe:close(); return nil, "cannot run stunnel: " .. tostring(err) end
  self.handle, self.pipe = handle, pipe
  pipe:read_start(function(_, data) if data then self:_log(data) else pipe:close() end end)
  return true
end

-- Waits until every front answers an HTTPS request verified against the
-- CA; true or nil, message.
function Front:_wait_ready()
  local http = require "resi.http"
  local deadline = uv.now() + M.STARTUP_TIMEOUT * 1000
  for _, url in ipairs(self.urls) do
    while true do
      if self.exit_code then return nil, self:_exit_message() end
      local res, err, code = http.get(url .. "/", { ca_file = self.ca_file, timeout = 2 })
      if res then break end
      if code ~= "connect" and code ~= "reset" and code ~= "timeout" then
        return nil, ("the TLS front at %s does not answer HTTPS: %s"):format(url, err)
      end
      if uv.now() > deadline then
        return nil, ("the TLS front at %s did not start within %d s: %s"):format(url, M.STARTUP_TIMEOUT, err)
      end
      task.sleep(0.05)
    end
  end
  return true
end

-- Removes a directory of plain files.
local function remove_dir(dir)
  local req = uv.fs_scandir(dir)
  while req do
    local name = uv.fs_scandir_next(req)
    if not name then break end
    uv.fs_unlink(dir .. "/" .. name)
  end
  uv.fs_rmdir(dir)
end

--- Stops stunnel and removes the directory (certificates, key, config).
function Front:stop()
  self.stopping = true
  if self.handle and not self.exit_code and not self.handle:is_closing() then self.handle:kill("sigterm") end
  remove_dir(self.dir)
end

-- The directory certificate directories are made in ($TMPDIR or /tmp).
local function temp_base()
  local base = (os.getenv("TMPDIR") or ""):gsub("/+$", "")
  return base ~= "" and base or "/tmp"
end

--- Removes certificate directories left by a resi sim that was killed
--- (kill -9 skips stop()): ours, with an `owner` pid that is not running.
function M.remove_stale()
  local base = temp_base()
  local req = uv.fs_scandir(base)
  while req do
    local name, kind = uv.fs_scandir_next(req)
    if not name then break end
    local dir = base .. "/" .. name
    local st = kind == "directory" and name:match("^resi%-sim%-tls%-") and uv.fs_stat(dir)
    local f = st and st.uid == uv.getuid() and io.open(dir .. "/owner", "rb")
    if f then
      local pid = math.tointeger(tonumber(f:read("l") or ""))
      f:close()
      if pid and not uv.kill(pid, 0) then remove_dir(dir) end
    end
  end
end

-- Makes the directory (with an `owner` file naming this process), the
-- certificates and the CA bundle; true or nil, message.
function Front:_prepare(tools, host)
  M.remove_stale()
  local dir, err = uv.fs_mkdtemp(temp_base() .. "/resi-sim-tls-XXXXXX")
  if not dir then return nil, "cannot make a private directory for the certificates: " .. tostring(err) end
  self.dir = dir
  write_file(dir .. "/owner", ("%d\n"):format(math.tointeger(uv.os_getpid()) or 0))
  self.names = M.cert_names(host)
  local ok, cerr = M.make_certs(tools, dir, self.names)
  if not ok then return nil, cerr end
  self.ca_file, err = write_bundle(dir)
  if not self.ca_file then return nil, "cannot write the CA bundle: " .. tostring(err) end
  return true
end

-- Picks free ports for 0s and writes stunnel's config; true or nil, message.
function Front:_configure(host, ports, backends, names)
  local services, shown = {}, M.url_host(host)
  for i, name in ipairs(names) do
    local port = ports[i] or 0
    if port == 0 then
      local err
      port, err = free_port(host)
      if not port then return nil, err end
    end
    services[i] = { name = name, port = port, backend = backends[i] }
    self.urls[i] = ("https://%s:%d"):format(shown, port)
  end
  return write_file(self.dir .. "/stunnel.conf", stunnel_config(self.dir, host, services))
end

--- Starts the TLS front. opts: host (numeric address to listen on), ports
--- (0 picks a free one), backends (the sandbox's 127.0.0.1 ports, same
--- order), names (service names, same order), on_exit(message) (stunnel
--- died on its own). Returns the front, or nil and a message (nothing left
--- running, nothing left on disk).
---@param opts {host: string, ports: integer[], backends: integer[], names: string[], on_exit?: fun(msg: string)}
---@return resi.sim.tls|nil
---@return string|nil
function M.start(opts)
  local tools, err = M.tools()
  if not tools then return nil, err end
  local self = setmetatable({ urls = {}, log = {}, important = {}, partial = "", on_exit = opts.on_exit }, Front)
  local ok
  ok, err = self:_prepare(tools, opts.host)
  if ok then ok, err = self:_configure(opts.host, opts.ports, opts.backends, opts.names) end
  if ok then ok, err = self:_spawn(tools) end
  if ok then ok, err = self:_wait_ready() end
  if not ok then
    if self.dir then self:stop() end
    return nil, err
  end
  return self
end

return M
