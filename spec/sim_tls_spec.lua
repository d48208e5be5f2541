-- resi sim --tls and --host: HTTPS through a stunnel front with a CA made at
-- start-up (printed as SSL_CERT_FILE), real requests with resi.http against
-- it, the warning for a plain-HTTP non-loopback host, and the front's life
-- cycle (removed on exit, dies with resi, its death stops resi sim).
local http = require "resi.http"
local json = require "resi.json"
local base64 = require "resi.base64"
local proc = require "spec.support.proc"
local uv = require "luv"

local RESI = proc.resi_path()

---@class spec.sim_process
local Sim = {}
Sim.__index = Sim

-- Polls until cond(self) is true; fails after `seconds` showing the output.
function Sim:wait(cond, seconds)
  local deadline = resi.monotonic() + (seconds or 20)
  while not cond(self) do
    if resi.monotonic() > deadline then
      error(("timed out waiting for resi sim; stdout:\n%s\nstderr:\n%s"):format(self.out, self.err), 2)
    end
    resi.sleep(0.05)
  end
end

-- The complete stdout lines so far.
function Sim:lines()
  local list = {}
  for l in self.out:gmatch("([^\n]*)\n") do list[#list + 1] = l end
  return list
end

-- Waits for n stdout lines (or the exit) and returns them.
function Sim:wait_lines(n)
  self:wait(function(s) return #s:lines() >= n or s.status ~= nil end)
  return self:lines()
end

-- Sends a signal (SIGTERM by default) and returns the exit status.
function Sim:stop(signal)
  if self.status == nil then self.handle:kill(signal or "sigterm") end
  self:wait(function(s) return s.status ~= nil end)
  return self.status
end

-- Starts `resi sim ARGS` with stdout and stderr collected.
local function spawn_sim(args)
  local self = setmetatable({ out = "", err = "" }, Sim)
  local out, err = uv.new_pipe(), uv.new_pipe()
  self.handle = assert(uv.spawn(RESI, { args = { "sim", table.unpack(args) }, stdio = { nil, out, err } },
    function(code, signal)
      self.status, self.signal = code, signal
      self.handle:close()
    end))
  for _, p in ipairs({ { out, "out" }, { err, "err" } }) do
    p[1]:read_start(function(_, data)
      if data then self[p[2]] = self[p[2]] .. data else p[1]:close() end
    end)
  end
  return self
end

-- The value of NAME=VALUE lines.
local function value(lines, name)
  for _, l in ipairs(lines) do
    local v = l:match("^" .. name .. "=(.*)$")
    if v then return v end
  end
  return nil
end

-- Basic-auth header value.
local function basic(user, pass) return "Basic " .. base64.encode(user .. ":" .. pass) end

-- The root (scheme://host:port) of a provider URL.
local function root(url) return url:match("^(https?://[^/]+)") end

-- Names in a directory, sorted.
local function listing(dir)
  local names, req = {}, uv.fs_scandir(dir)
  while req do
    local name = uv.fs_scandir_next(req)
    if not name then break end
    names[#names + 1] = name
  end
  table.sort(names)
  return names
end

-- The pid of the stunnel serving the config in dir (pgrep), or nil.
local function stunnel_pid(dir)
  local r = proc.run { "pgrep", "-f", dir .. "/stunnel.conf" }
  return math.tointeger(tonumber(r.stdout:match("%d+") or ""))
end

-- Is pid gone (or a zombie nobody reaped: it runs nothing)?
local function dead(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "rb")
  if not f then return true end
  local stat = f:read("a")
  f:close()
  return stat:match("^%d+ %b() (%a)") == "Z"
end

describe("resi sim --tls", function()
  it("serves every provider over HTTPS verified against the CA it printed as SSL_CERT_FILE", function()
    local sim = spawn_sim { "--tls", "--ports", "0,0,0", "--seed", "9" }
    local lines = sim:wait_lines(9)
    assert.matches("^RESI_UNKNOWNPROXIES_URL=https://127%.0%.0%.1:%d+/api/v1$", lines[1])
    assert.matches("^RESI_OXYLABS_URL=https://127%.0%.0%.1:%d+/v2$", lines[2])
    assert.matches("^RESI_RESIFACTORY_URL=https://127%.0%.0%.1:%d+/api/v1$", lines[3])
    assert.matches("^SSL_CERT_FILE=/.+/ca%.pem$", lines[4])
    assert.matches("^UNKNOWNPROXIES_USERNAME=", lines[5])
    local ca, dir = value(lines, "SSL_CERT_FILE"), value(lines, "SSL_CERT_FILE"):match("^(.*)/ca%.pem$")
    assert.are.equal(448, uv.fs_stat(dir).mode & 511) -- 0700: private to this user
    -- the CA's key is gone once it signed; what stunnel needs stays
    assert.are.same({ "ca.pem", "owner", "server.key", "server.pem", "stunnel.conf" }, listing(dir))
    local san = proc.run { "openssl", "x509", "-in", dir .. "/server.pem", "-noout", "-ext", "subjectAltName" }
    assert.matches("DNS:localhost", san.stdout, 1, true)
    assert.matches("IP Address:127.0.0.1", san.stdout, 1, true)

    local up_url, oxy_url, rf_url = value(lines, "RESI_UNKNOWNPROXIES_URL"), value(lines, "RESI_OXYLABS_URL"),
      value(lines, "RESI_RESIFACTORY_URL")
    local auth = basic(value(lines, "UNKNOWNPROXIES_USERNAME"), value(lines, "UNKNOWNPROXIES_PASSWORD"))
    local res = assert(http.get(up_url .. "/resi/tokens", { ca_file = ca, headers = { authorization = auth } }))
    assert.are.equal(200, res.status)
    assert.are.equal(3, #res:json().tokens)
    res = assert(http.post(oxy_url .. "/login", { ca_file = ca, headers = {
      authorization = basic(value(lines, "OXYLABS_USERNAME"), value(lines, "OXYLABS_PASSWORD")) } }))
    assert.are.equal(200, res.status)
    assert.is_string(res:json().token)
    res = assert(http.get(rf_url .. "/me", { ca_file = ca, headers = { authorization = "Bearer " .. value(lines, "RF_API_KEY") } }))
    assert.are.equal(200, res.status)
    -- a loopback front: every client is on this machine, so the admin API answers
    res = assert(http.get(root(up_url) .. "/_sim/state", { ca_file = ca }))
    assert.are.equal(200, res.status)

    -- without the CA the certificate is not trusted
    local none, msg, code = http.get(up_url .. "/resi/tokens", { headers = { authorization = auth } })
    assert.is_nil(none)
    assert.are.equal("tls", code, msg)

    assert.are.equal(0, sim:stop())
    assert.is_nil(uv.fs_stat(dir)) -- certificates and key removed on exit
    local gone, _, gone_code = http.get(up_url .. "/resi/tokens", { ca_file = ca, timeout = 2 })
    assert.is_nil(gone)
    assert.are.equal("connect", gone_code) -- stunnel is gone too
  end)

  it("on a non-loopback host names a real address, refuses the admin API through the front, serves it on loopback", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(json.encode { unknownproxies = { { username = "acme", password = "s3cret-acme" } } })
    f:close()
    local sim = spawn_sim { "--tls", "--host", "0.0.0.0", "--ports", "0,0,0", "--accounts", path }
    local lines = sim:wait_lines(4)
    os.remove(path)
    local url, ca = value(lines, "RESI_UNKNOWNPROXIES_URL"), value(lines, "SSL_CERT_FILE")
    assert.matches("^https://[%w%.:%[%]]+:%d+/api/v1$", url)
    assert.is_nil(url:find("0.0.0.0", 1, true)) -- an address clients can reach, not the wildcard
    local res = assert(http.get(url .. "/resi/tokens", { ca_file = ca, headers = { authorization = basic("acme", "s3cret-acme") } }))
    assert.are.equal(200, res.status)
    res = assert(http.get(root(url) .. "/_sim/state", { ca_file = ca }))
    assert.are.equal(403, res.status)
    assert.matches("TLS front", res:json().error.message, 1, true)
    sim:wait(function(s) return s.err:find("admin API", 1, true) end)
    local admin = sim.err:match("admin API %(this machine only%): (http://127%.0%.0%.1:%d+/_sim)")
    assert.is_string(admin, sim.err)
    res = assert(http.get(admin .. "/state"))
    assert.are.equal(200, res.status)
    assert.are.equal(0, sim:stop())
  end)

  it("stops with status 1 naming stunnel when the front dies, and the front dies with resi (kill -9)", function()
    local sim = spawn_sim { "--tls", "--ports", "0,0,0" }
    local dir = value(sim:wait_lines(4), "SSL_CERT_FILE"):match("^(.*)/ca%.pem$")
    local pid = assert(stunnel_pid(dir))
    uv.kill(pid, "sigterm")
    sim:wait(function(s) return s.status ~= nil end)
    assert.are.equal(1, sim.status)
    assert.matches("stunnel %(the TLS front%) exited", sim.err)
    assert.is_nil(uv.fs_stat(dir))

    sim = spawn_sim { "--tls", "--ports", "0,0,0" }
    dir = value(sim:wait_lines(4), "SSL_CERT_FILE"):match("^(.*)/ca%.pem$")
    pid = assert(stunnel_pid(dir))
    sim:stop("sigkill")
    sim:wait(function() return dead(pid) end, 5) -- setpriv --pdeathsig: no orphaned stunnel
    assert.is_table(uv.fs_stat(dir)) -- kill -9 skips the clean-up...
    require("resi.sim.tls").remove_stale()
    assert.is_nil(uv.fs_stat(dir)) -- ...which the next --tls start does
  end)

  it("reports a port in use and missing commands, exit status 1", function()
    local tcp = uv.new_tcp()
    assert(tcp:bind("127.0.0.1", 0))
    assert(tcp:listen(1, function() end))
    local port = tcp:getsockname().port
    local r = proc.run { RESI, "sim", "--tls", "--ports", "0," .. port .. ",0" }
    tcp:close()
    assert.are.equal(1, r.status)
    assert.matches("Binding service [oxylabs]", r.stderr, 1, true)
    assert.matches("Address already in use", r.stderr, 1, true)
    r = proc.run({ RESI, "sim", "--tls", "--ports", "0,0,0" }, { env = { "PATH=/nonexistent" } })
    assert.are.equal(1, r.status)
    assert.matches("--tls needs the openssl and stunnel4 commands (Debian: apt install openssl stunnel4)", r.stderr, 1, true)
  end)
end)

describe("resi sim --host", function()
  it("warns that resi clients refuse plain http:// off loopback, suggests --tls, prints loopback URLs", function()
    local sim = spawn_sim { "--host", "0.0.0.0", "--ports", "0,0,0" }
    local lines = sim:wait_lines(3)
    sim:wait(function(s) return s.err:find("warning", 1, true) end)
    assert.matches("^RESI_UNKNOWNPROXIES_URL=http://127%.0%.0%.1:%d+/api/v1$", lines[1])
    assert.matches("resi clients refuse plain http:// to any host but loopback", sim.err, 1, true)
    assert.matches("--tls", sim.err, 1, true)
    local res = assert(http.get(value(lines, "RESI_UNKNOWNPROXIES_URL") .. "/resi/tokens"))
    assert.are.equal(401, res.status) -- the printed URL works for resi on this machine
    assert.are.equal(0, sim:stop())
    -- loopback: no warning
    sim = spawn_sim { "--ports", "0,0,0" }
    sim:wait_lines(3)
    assert.are.equal(0, sim:stop())
    assert.is_nil(sim.err:find("warning", 1, true))
  end)

  it("takes IP addresses (and localhost) only, naming --host", function()
    local r = proc.run { RESI, "sim", "--host", "sandbox.example" }
    assert.are.equal(2, r.status)
    assert.matches('--host must be an IP address to listen on', r.stderr, 1, true)
    assert.is_nil(r.stderr:find("traceback", 1, true))
    local sim = spawn_sim { "--host", "localhost", "--ports", "0,0,0" }
    assert.matches("^RESI_UNKNOWNPROXIES_URL=http://127%.0%.0%.1:", sim:wait_lines(3)[1])
    sim:stop()
  end)
end)
