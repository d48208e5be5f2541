-- proxylist.check and `resi proxies check` against real proxies started here:
-- Debian's tinyproxy (HTTP, BasicAuth) and microsocks (SOCKS5, user and
-- password), stunnel4 putting TLS in front of tinyproxy (an https:// proxy),
-- dead addresses (a closed port, a listener that never answers), and nginx as
-- the target (plain, and HTTPS with a certificate from the suite's own CA).
local uv = require "luv"
local resi = require "resi"
local proxylist = require "resi.proxylist"
local nginx = require "spec.support.nginx"
local sockets = require "spec.support.sockets"
local proc = require "spec.support.proc"
local files = require "spec.support.files"

local TP_USER, TP_PASS = "puser", "tinyPass_123"
local MS_USER, MS_PASS = "suser", "s3cr:et@Pw" -- ':' and '@' travel percent-encoded

-- Starts a program in the background; returns a stop function.
local function background(cmd, args)
  local handle
  handle = uv.spawn(cmd, { args = args, stdio = { nil, nil, nil } }, function() handle:close() end)
  assert(handle, "cannot start " .. cmd .. " (make deps installs it)")
  return function()
    if not handle:is_closing() then handle:kill("sigterm") end
    for _ = 1, 200 do
      if handle:is_closing() then break end
      resi.sleep(0.01)
    end
  end
end

-- Starts resi with args, calling on_stderr(text so far) as its stderr
-- arrives. Returns the process handle and a function that waits for the
-- exit and returns {status=, signal=, stdout=, stderr=}.
local function resi_async(args, on_stderr)
  local out, err = uv.new_pipe(), uv.new_pipe()
  local result, chunks, pending, waiter = {}, { stdout = {}, stderr = {} }, 3, nil
  local function step()
    pending = pending - 1
    if pending == 0 and waiter then waiter() end
  end
  local handle
  handle = uv.spawn(proc.resi_path(), { args = args, stdio = { nil, out, err } }, function(code, signal)
    result.status, result.signal = code, signal
    handle:close()
    step()
  end)
  assert(handle, "cannot start resi")
  for name, pipe in pairs { stdout = out, stderr = err } do
    pipe:read_start(function(_, data)
      if data then
        chunks[name][#chunks[name] + 1] = data
        if name == "stderr" and on_stderr then on_stderr(table.concat(chunks.stderr)) end
      else
        pipe:close()
        result[name] = table.concat(chunks[name])
        step()
      end
    end)
  end
  return handle, function()
    if pending > 0 then resi.await(function(done) waiter = done end) end
    return result
  end
end

-- Waits (polling) until pred() is true, for at most seconds.
local function wait_until(pred, seconds)
  local t0 = resi.monotonic()
  while not pred() do
    if resi.monotonic() - t0 > seconds then return false end
    resi.sleep(0.02)
  end
  return true
end

-- Waits until something accepts TCP connections on 127.0.0.1:port.
local function wait_port(port)
  for _ = 1, 200 do
    local ok = resi.await(function(done)
      local tcp = uv.new_tcp()
      tcp:connect("127.0.0.1", port, function(err)
        tcp:close()
        done(err == nil)
      end)
    end)
    if ok then return end
    resi.sleep(0.02)
  end
  error("nothing listens on port " .. port)
end

describe("resi.proxylist.check", function()
  local srv, dir, tp_port, ms_port, tls_port, silent_port, stop_tp, stop_ms, stop_tls, stop_silent, list

  setup(function()
    srv = nginx.start()
    dir = files.dir("resi-proxies")
    tp_port, ms_port = sockets.closed_port(), sockets.closed_port()
    local f = assert(io.open(dir .. "/tinyproxy.conf", "w"))
    -- names under .resi-check.test (no DNS: a plain-http target that is not
    -- loopback) go on to nginx, as to an upstream proxy
    f:write(("Port %d\nListen 127.0.0.1\nTimeout 10\nMaxClients 50\nLogLevel Error\nBasicAuth %s %s\n"
      .. "Upstream http %s \".resi-check.test\"\n"):format(tp_port, TP_USER, TP_PASS, srv.url:match("//(.*)$")))
    f:close()
    stop_tp = background("tinyproxy", { "-d", "-c", dir .. "/tinyproxy.conf" })
    stop_ms = background("microsocks", { "-i", "127.0.0.1", "-p", tostring(ms_port), "-u", MS_USER, "-P", MS_PASS })
    -- an https:// proxy: TLS with nginx's certificate (signed by the suite's CA), then tinyproxy
    tls_port = sockets.closed_port()
    f = assert(io.open(dir .. "/stunnel.conf", "w"))
    f:write(("foreground = yes\npid =\n[proxy]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\ncert = %s\nkey = %s\n")
      :format(tls_port, tp_port, srv.dir .. "/server.pem", srv.dir .. "/server.key"))
    f:close()
    stop_tls = background("stunnel4", { dir .. "/stunnel.conf" })
    wait_port(tp_port)
    wait_port(ms_port)
    wait_port(tls_port)
    silent_port, stop_silent = sockets.silent()
    local enc = function(s) return (s:gsub("[^%w]", function(c) return ("%%%02X"):format(c:byte()) end)) end
    list = proxylist.parse(table.concat({
      ("http://%s:%s@127.0.0.1:%d"):format(TP_USER, TP_PASS, tp_port),           -- 1 ok
      ("http://%s:wrongpass@127.0.0.1:%d"):format(TP_USER, tp_port),             -- 2 auth
      ("socks5://%s:%s@127.0.0.1:%d"):format(MS_USER, enc(MS_PASS), ms_port),    -- 3 ok
      ("socks5://%s:wrongpass@127.0.0.1:%d"):format(MS_USER, ms_port),           -- 4 auth
      ("http://u:p@127.0.0.1:%d"):format(sockets.closed_port()),                 -- 5 connect
      ("http://u:p@127.0.0.1:%d"):format(silent_port),                           -- 6 timeout
      ("socks5h://%s:%s@127.0.0.1:%d"):format(MS_USER, enc(MS_PASS), ms_port),   -- 7 ok
    }, "\n"))
    assert.equal(7, #list)
    assert.equal(0, #list.errors)
  end)

  teardown(function()
    if stop_tp then stop_tp() end
    if stop_ms then stop_ms() end
    if stop_tls then stop_tls() end
    if stop_silent then stop_silent() end
    if srv then srv.stop() end
    if dir then files.remove_dir(dir) end
  end)

  it("tells working proxies from refused logins, dead and silent ones", function()
    local t0 = resi.monotonic()
    local results = proxylist.check(list, { url = srv.url .. "/ok", concurrency = 7, timeout = 1.5 })
    local elapsed = resi.monotonic() - t0
    assert.equal(7, #results)
    local expect = { { true }, { false, "auth" }, { true }, { false, "auth" }, { false, "connect" },
      { false, "timeout" }, { true } }
    for i, want in ipairs(expect) do
      local r = results[i]
      assert.equal(i, r.index)
      assert.equal(want[1], r.ok, ("entry %d: %s %s"):format(i, tostring(r.error), tostring(r.message)))
      assert.equal(want[2], r.error, "entry " .. i)
      assert.is_number(r.latency)
      assert.truthy(r.latency >= 0)
    end
    assert.equal(200, results[1].status)
    assert.equal(200, results[3].status)
    assert.equal(401, results[2].status) -- tinyproxy 1.11 answers a wrong password with 401
    assert.is_nil(results[5].status)
    assert.truthy(results[6].latency >= 1.0, results[6].latency)
    -- concurrently: the silent proxy's timeout does not add to the others
    assert.truthy(elapsed < 4, elapsed)
  end)

  it("checks through an https:// proxy and classes TLS failures as tls", function()
    local tp = ("%s:%s@127.0.0.1:"):format(TP_USER, TP_PASS)
    local tls_list = proxylist.parse(table.concat({
      "https://" .. tp .. tls_port, -- 1: TLS to the proxy, verified with the suite's CA
      "http://" .. tp .. tp_port,   -- 2: plain proxy, CONNECT to an https target
    }, "\n"))
    -- with the CA: both work, the target fetched over TLS through the proxy
    local results = proxylist.check(tls_list, { url = srv.https_url .. "/ok", ca_file = srv.ca_file, timeout = 5 })
    for i = 1, 2 do
      assert.equal(true, results[i].ok, ("entry %d: %s %s"):format(i, tostring(results[i].error), tostring(results[i].message)))
      assert.equal(200, results[i].status)
    end
    -- without it (the system bundle does not know the suite's CA): the proxy's
    -- certificate, then the target's, is refused
    results = proxylist.check(tls_list, { url = srv.url .. "/ok", timeout = 5 })
    assert.equal("tls", results[1].error, results[1].message)
    assert.equal(true, results[2].ok)
    results = proxylist.check(proxylist.parse("http://" .. tp .. tp_port), { url = srv.https_url .. "/ok", timeout = 5, preflight = false })
    assert.equal("tls", results[1].error, results[1].message)
    assert.truthy(results[1].message:lower():find("certificate", 1, true), results[1].message)
    assert.falsy(results[1].message:find(TP_PASS, 1, true))
  end)

  it("never puts a password into results or messages", function()
    local results = proxylist.check(list, { url = srv.url .. "/ok", concurrency = 3, timeout = 1 })
    for _, r in ipairs(results) do
      for _, v in pairs(r) do
        local s = tostring(v)
        assert.falsy(s:find(TP_PASS, 1, true), s)
        assert.falsy(s:find("s3cr", 1, true), s)
        assert.falsy(s:find("wrongpass", 1, true), s)
      end
    end
    assert.equal(("http://%s:…@127.0.0.1:%d"):format(TP_USER, tp_port), results[1].proxy)
  end)

  it("keeps to the concurrency limit", function()
    local many = {}
    for i = 1, 6 do many[i] = { host = "127.0.0.1", port = silent_port, user = "u" .. i, pass = "p" } end
    local t0 = resi.monotonic()
    local results = proxylist.check(proxylist.from(many), { url = srv.url .. "/ok", concurrency = 2, timeout = 0.3 })
    local elapsed = resi.monotonic() - t0
    for _, r in ipairs(results) do assert.equal("timeout", r.error) end
    -- 6 timeouts of 0.3 s, two at a time: three rounds
    assert.truthy(elapsed >= 0.85, elapsed)
    assert.truthy(elapsed < 3, elapsed)
  end)

  it("paces checks through a rate limiter", function()
    local lim = require("resi.ratelimit").new { name = "gateway", limit = 2, window = 0.5 }
    local same = {}
    for i = 1, 6 do same[i] = list[1] end -- the working tinyproxy, six times
    local t0 = resi.monotonic()
    local results = proxylist.check(proxylist.from(same), { url = srv.url .. "/ok", concurrency = 6, timeout = 5,
      limiter = lim })
    local elapsed = resi.monotonic() - t0
    for _, r in ipairs(results) do assert.is_true(r.ok, r.message) end
    assert.equal(6, lim:stats().granted)
    assert.truthy(elapsed >= 0.95, elapsed) -- 2 at 0, 2 at 0.5, 2 at 1.0 s
    assert.has_error(function() proxylist.check(list, { url = srv.url, limiter = {} }) end,
      "resi.proxylist.check: limiter must be a resi.ratelimit limiter")
    local r = proc.resi { "proxies", "check", "--url", srv.url .. "/ok", "--rate", "two/1", "/dev/null" }
    assert.equal(2, r.status)
    assert.truthy(r.stderr:find("--rate two/1: expected N/SECONDS", 1, true), r.stderr)
  end)

  it("rejects bad options with a clear message", function()
    assert.has_error(function() proxylist.check(list, {}) end,
      "resi.proxylist.check: opts.url is required (the URL to fetch through each proxy)")
    assert.has_error(function() proxylist.check({}, { url = srv.url }) end, "resi.proxylist.check: expects a proxy list")
    assert.has_error(function() proxylist.check(list, { url = srv.url, concurrency = 0 }) end,
      "resi.proxylist.check: concurrency must be an integer >= 1")
  end)

  it("runs from the command line, with a masked report, --ok file and a progress bar", function()
    local input = dir .. "/in.txt"
    local f = assert(io.open(input, "w"))
    f:write(list:format("url"))
    f:close()
    local r = proc.resi { "proxies", "check", "--url", srv.url .. "/ok", "--timeout", "1", "--concurrency", "7",
      "--progress", "--ok", dir .. "/ok.txt", input }
    assert.equal(1, r.status, r.stderr) -- some failed
    local lines = {}
    for line in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(7, #lines)
    assert.truthy(lines[1]:match("^ok "), lines[1])
    assert.truthy(lines[2]:match("^failed auth"), lines[2])
    assert.truthy(lines[5]:match("^failed connect"), lines[5])
    assert.truthy(lines[6]:match("^failed timeout"), lines[6])
    assert.truthy(r.stderr:find("checking [", 1, true), r.stderr)
    assert.truthy(r.stderr:find("7/7", 1, true), r.stderr)
    for _, out in ipairs { r.stdout, r.stderr } do
      assert.falsy(out:find(TP_PASS, 1, true))
      assert.falsy(out:find("s3cr", 1, true))
      assert.falsy(out:find("wrongpass", 1, true))
    end
    local ok = proxylist.load(dir .. "/ok.txt")
    assert.equal(3, #ok)
    assert.equal(TP_PASS, ok[1].pass) -- the --ok file is data: real credentials
    assert.equal(MS_PASS, ok[2].pass)
    assert.equal("socks5h", ok[3].scheme)
  end)

  it("draws progress as checks complete, whatever their order in the list", function()
    -- a silent proxy first, the working ones after it: all start at once,
    -- the last three finish at once and the first only at its timeout
    local tp = list[1]
    local mixed = proxylist.from { { host = "127.0.0.1", port = silent_port, user = "u", pass = "p" }, tp, tp, tp }
    local draws, t0 = {}, resi.monotonic()
    local stream = { write = function(_, s) draws[#draws + 1] = { s, resi.monotonic() - t0 } end, flush = function() end }
    local results = proxylist.check(mixed, { url = srv.url .. "/ok", concurrency = 4, timeout = 1.5, progress = true,
      progress_stream = stream })
    assert.equal("timeout", results[1].error)
    local seen
    for _, d in ipairs(draws) do
      if d[1]:find("3/4  ok 3  failed 0", 1, true) then seen = seen or d[2] end
    end
    assert.truthy(seen, "no draw showed the three finished checks")
    assert.truthy(seen < 1.0, seen) -- drawn while the silent one was still in flight
    assert.truthy(draws[#draws - 1][1]:find("4/4  ok 3  failed 1", 1, true), draws[#draws - 1][1])
    assert.equal("\n", draws[#draws][1])
  end)

  it("writes what was checked when interrupted by SIGINT or SIGTERM, and says so", function()
    local tp = ("http://%s:%s@127.0.0.1:%d"):format(TP_USER, TP_PASS, tp_port)
    local silent = ("http://u:SilentPW9@127.0.0.1:%d"):format(silent_port)
    local input = dir .. "/interrupt.txt"
    local f = assert(io.open(input, "w"))
    f:write(table.concat({ silent, tp, silent, tp, tp }, "\n"), "\n")
    f:close()
    for _, sig in ipairs { { "sigint", 130, "SIGINT" }, { "sigterm", 143, "SIGTERM" } } do
      local ok_file = dir .. "/interrupted-ok.txt"
      f = assert(io.open(ok_file, "w"))
      f:write("stale\n") -- from an earlier run: replaced
      f:close()
      local stderr = ""
      local t0 = resi.monotonic()
      local handle, wait = resi_async({ "proxies", "check", "--url", srv.url .. "/ok", "--timeout", "30",
        "--concurrency", "5", "--progress", "--ok", ok_file, input }, function(text) stderr = text end)
      assert.truthy(wait_until(function() return stderr:find("3/5  ok 3", 1, true) end, 10), stderr)
      handle:kill(sig[1])
      local r = wait()
      assert.truthy(resi.monotonic() - t0 < 10, "the checks in flight were waited for, not abandoned")
      assert.equal(sig[2], r.status, r.stderr)
      assert.truthy(r.stderr:find(("interrupted (%s): 3 of 5 checked, 3 ok, 0 failed, 2 not checked"):format(sig[3]), 1,
        true), r.stderr)
      assert.truthy(r.stderr:find(ok_file .. " has the 3 that work", 1, true), r.stderr)
      local lines = {}
      for line in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.equal(3, #lines, r.stdout)
      for _, line in ipairs(lines) do assert.truthy(line:match("^ok "), line) end
      local ok = proxylist.load(ok_file)
      assert.equal(3, #ok)
      for i = 1, 3 do
        assert.equal(tp_port, ok[i].port)
        assert.equal(TP_PASS, ok[i].pass) -- the --ok file is data: real credentials
      end
      for _, out in ipairs { r.stdout, r.stderr } do
        assert.falsy(out:find(TP_PASS, 1, true), out)
        assert.falsy(out:find("SilentPW9", 1, true), out)
      end
    end
  end)

  it("says when the input holds no proxies, exit status 1", function()
    local ok_file = dir .. "/empty-ok.txt"
    for _, text in ipairs { "", "# only a comment\n\n" } do
      local r = proc.resi({ "proxies", "check", "--url", srv.url .. "/ok", "--ok", ok_file }, { stdin = text })
      assert.equal(1, r.status, r.stderr)
      assert.equal("resi proxies check: no proxies in input\n", r.stderr)
      assert.equal("", r.stdout)
    end
    local r = proc.resi({ "proxies", "check", "--url", srv.url .. "/ok" }, { stdin = "h.example:notaport:u:Secr3tPW\n" })
    assert.equal(1, r.status)
    assert.truthy(r.stderr:find("no proxies in input (1 lines rejected)", 1, true), r.stderr)
    assert.falsy(r.stderr:find("Secr3tPW", 1, true), r.stderr)
    assert.falsy(io.open(ok_file), "an --ok file was written for empty input")
  end)

  it("checks a plain-http target that is not loopback through a proxy, and refuses it directly", function()
    local http = require "resi.http"
    local url = "http://target.resi-check.test/ok" -- tinyproxy hands it on to nginx
    local results = proxylist.check(proxylist.from { list[1] }, { url = url, timeout = 5 })
    assert.is_true(results[1].ok, tostring(results[1].error) .. " " .. tostring(results[1].message))
    assert.equal(200, results[1].status)
    -- without a proxy the rule holds: refused, also after the proxied request
    -- passed, and allow_plain_http alone changes nothing
    local refused = 'resi.http: url refuses plain http:// to "target.resi-check.test": use https://'
    assert.has_error(function() http.get(url) end, refused .. " (plain HTTP is allowed only to loopback "
      .. "addresses: 127.0.0.0/8, ::1, localhost)")
    local ok, err = pcall(http.get, url, { allow_plain_http = true })
    assert.is_false(ok)
    assert.truthy(err:find(refused, 1, true), err)
    assert.truthy(err:find("allow_plain_http applies only to requests through a proxy", 1, true), err)
    ok = pcall(http.request, { url = url, proxy = "", allow_plain_http = true })
    assert.is_false(ok)
    -- through the proxy, and only with the option
    local res = http.get(url, { proxy = list:line(1, "url"), allow_plain_http = true, timeout = 5 })
    assert.equal(200, res.status)
    assert.has_error(function() http.get(url, { proxy = list:line(1, "url") }) end)
    -- from the command line
    local input = dir .. "/plain.txt"
    local f = assert(io.open(input, "w"))
    f:write(list:line(1, "url"), "\n")
    f:close()
    local r = proc.resi { "proxies", "check", "--url", url, "--timeout", "5", input }
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:match("^ok "), r.stdout)
    assert.equal("resi proxies: 1 checked, 1 ok, 0 failed\n", r.stderr)
  end)

  it("names a bad URL without internal file paths", function()
    local r = proc.resi({ "proxies", "check", "--url", "ftp://example.com/x", "/dev/null" })
    assert.equal(2, r.status)
    assert.equal('resi proxies check: --url: scheme "ftp" is not supported (use https:// or http://)\n'
      .. "(see resi proxies check --help)\n", r.stderr)
    r = proc.resi({ "proxies", "check", "--url", "not a url", "/dev/null" })
    assert.equal(2, r.status)
    assert.falsy(r.stderr:find(".lua", 1, true), r.stderr)
    assert.truthy(r.stderr:find("--url: must be an absolute http:// or https:// URL", 1, true), r.stderr)
    -- in Lua the error points at the caller's line, not into resi
    local ok, err = pcall(function()
      local results = proxylist.check(list, { url = "ftp://example.com/x" })
      return results
    end)
    assert.is_false(ok)
    assert.truthy(err:find("proxylist_check_spec.lua:%d+: resi.proxylist.check: url scheme \"ftp\""), err)
  end)

  it("refuses a check without --url as a usage error", function()
    local r = proc.resi({ "proxies", "check" }, { stdin = "" })
    assert.equal(2, r.status)
    assert.truthy(r.stderr:find("--url", 1, true), r.stderr)
  end)
end)

-- The sandbox's own gateways (resi sim): real issued credentials, real
-- refusals, stickiness and geo-targeting, and the bytes billed.
describe("resi.proxylist.check through the sandbox gateways", function()
  local simh = require "spec.support.sim"
  local http = require "resi.http"
  local h, tok, up
  before_each(function()
    h = simh.start { seed = 31, accounts = { unknownproxies = { { username = "reseller1", password = "ResellerPw1",
      tokens = { { dataLimit = 5000000000 }, { dataLimit = 1000000000, dataUsage = 1000000000 } } } },
      oxylabs = { { username = "main_user", password = "Main_pass123", user_id = "u-31",
        sub_users = { { username = "geo_user", password = "Geo_pass1234", traffic_limit = 2 } } } } } }
    up = h:client("unknownproxies")
    local tokens = assert(up:list_tokens())
    tok = tokens[1].status == "active" and tokens[1] or tokens[2]
  end)
  after_each(function() h:stop() end)

  -- Sticky UnknownProxies entries on the sandbox gateway.
  local function up_list(n, password)
    local gw_host, gw_port = h:gateway():match("^(.*):(%d+)$")
    return proxylist.sticky { provider = "unknownproxies", sessions = n, username = tok.username,
      password = password or tok.password, host = gw_host, port = tonumber(gw_port), scheme = "http", seed = 5 }
  end

  it("passes issued credentials and fails wrong and expired ones as auth, over HTTP and SOCKS5", function()
    local tokens = assert(up:list_tokens())
    local expired = tokens[1].status == "expired" and tokens[1] or tokens[2]
    local gw = h:gateway()
    local entries = {}
    for i, e in ipairs(up_list(2)) do entries[i] = e end
    entries[#entries + 1] = { scheme = "socks5h", host = gw:match("^(.*):"), port = tonumber(gw:match(":(%d+)$")),
      user = tok.username, pass = tok.password }
    entries[#entries + 1] = { scheme = "http", host = entries[1].host, port = entries[1].port, user = tok.username,
      pass = "wrongPass1" }
    entries[#entries + 1] = { scheme = "socks5h", host = entries[1].host, port = entries[1].port,
      user = expired.username, pass = expired.password }
    local results = proxylist.check(proxylist.from(entries), { url = "http://ip.sim/", timeout = 5, progress = false })
    assert.same({ true, true, true, false, false }, { results[1].ok, results[2].ok, results[3].ok, results[4].ok, results[5].ok })
    assert.equal("auth", results[4].error)
    assert.equal("auth", results[5].error)
    for _, r in ipairs(results) do
      assert.falsy((r.message or ""):find(tok.password, 1, true))
      assert.falsy(r.proxy:find(tok.password, 1, true))
    end
  end)

  it("sees each sticky session keep its exit and Oxylabs geo-targeting hold", function()
    local list = up_list(3)
    local first, second = {}, {}
    for i = 1, #list do
      local res = assert(http.request { url = "http://ip.sim/", proxy = list:line(i, "url"), allow_plain_http = true })
      first[i] = res:json().ip
      second[i] = assert(http.request { url = "http://ip.sim/", proxy = list:line(i, "url"), allow_plain_http = true }):json().ip
    end
    assert.same(first, second)
    assert.are_not.equal(first[1], first[2])
    local oxy = proxylist.sticky { provider = "oxylabs", sessions = 2, username = "geo_user", password = "Geo_pass1234",
      country = "fr", host = h:gateway("oxylabs"):match("^(.*):"), port = tonumber(h:gateway("oxylabs"):match(":(%d+)$")),
      scheme = "http", seed = 3 }
    local results = proxylist.check(oxy, { url = "http://ip.sim/", progress = false })
    assert.is_true(results[1].ok and results[2].ok)
    for i = 1, #oxy do
      local body = assert(http.request { url = "http://ip.sim/", proxy = oxy:line(i, "url"), allow_plain_http = true }):json()
      assert.equal("FR", body.country)
    end
  end)

  it("runs `resi proxies check` against the gateway's loopback echo URL; an expired token then fails", function()
    local dir = files.dir("gw-check")
    finally(function() files.remove_dir(dir) end)
    local input = files.write(dir, "in.txt", up_list(2):format("url"))
    local url = "http://" .. h:gateway() .. "/"
    local r = proc.resi { "proxies", "check", "--url", url, "--timeout", "5", input }
    assert.equal(0, r.status, r.stderr)
    assert.equal(2, select(2, r.stdout:gsub("ok ", "")))
    assert.falsy(r.stdout:find(tok.password, 1, true))
    h:usage { id = tok.token, bytes = 5000000000 }
    local again = proc.resi { "proxies", "check", "--url", url, "--timeout", "5", input }
    assert.equal(1, again.status)
    assert.equal(2, select(2, again.stdout:gsub("failed auth", "")), again.stdout)
  end)
end)
