-- resi sim's proxy gateways (resi.sim.gateway): HTTP proxy and SOCKS5 with
-- the credentials the sandbox issued, each provider's dialect, every
-- refusal, billing into usage, the echo target, tunnels with backpressure.
local uv = require "luv"
local http = require "resi.http"
local json = require "resi.json"
local proc = require "spec.support.proc"
local simh = require "spec.support.sim"
local sockets = require "spec.support.sockets"

-- A raw TCP client of "HOST:PORT": c.data (all read), c:send(bytes),
-- c:wait(pattern) (true once data matches), c:close().
local function raw(address)
  local host, port = address:match("^(.*):(%d+)$")
  local c = { data = "", sock = uv.new_tcp(), eof = false, queued = {} }
  c.sock:connect(host, tonumber(port), function(err)
    if err then c.eof = true return end
    c.connected = true
    for _, b in ipairs(c.queued) do c.sock:write(b) end
    c.sock:read_start(function(rerr, chunk)
      if rerr or not chunk then c.eof = true return end
      c.data = c.data .. chunk
    end)
  end)
  function c.send(_, bytes)
    if c.connected then c.sock:write(bytes) else c.queued[#c.queued + 1] = bytes end
  end
  function c.wait(_, pattern, limit)
    return proc.eventually(function() return c.data:find(pattern) ~= nil or c.eof end, limit or 5)
      and c.data:find(pattern) ~= nil
  end
  function c.close() if not c.sock:is_closing() then c.sock:close() end end
  return c
end

-- Fetches url through proxy; the response (status, decoded body) or nil, error.
local function via(proxy, url)
  local res, err = http.request { url = url or "http://ip.sim/", proxy = proxy, allow_plain_http = true, timeout = 5 }
  if not res then return nil, err end
  return res.status, res:json(), res
end

-- Proxy-Authorization header value for user:pass.
local function basic(user, pass) return "Basic " .. require("resi.base64").encode(user .. ":" .. pass) end

-- The first active UnknownProxies token of the generated account.
local function up_token(h)
  local up = h:client("unknownproxies")
  local list = assert(up:list_tokens())
  for _, t in ipairs(list) do if t.status == "active" then return t, up end end
end

-- Starts a sandbox (seed) before each test of the enclosing block and
-- stops it after; ctx.h is the harness, ctx.t its first active token.
local function per_test_sim(seed)
  local ctx = {}
  before_each(function()
    ctx.h = simh.start { seed = seed }
    ctx.t = up_token(ctx.h)
  end)
  after_each(function() ctx.h:stop() end)
  return ctx
end

describe("sim gateway: UnknownProxies over HTTP proxy", function()
  local ctx = per_test_sim(11)

  it("answers absolute-form requests from the echo target; a session keeps its exit, rotating ones change", function()
    local h, t = ctx.h, ctx.t
    local status, body = via(h:proxy_url(t.username, t.password .. "-123456789"))
    assert.are.equal(200, status)
    assert.are.equal("unknownproxies", body.provider)
    assert.are.equal("123456789", body.session)
    assert.are.equal("US", body.country)
    assert.are.equal("ip.sim", body.target)
    local _, again = via(h:proxy_url(t.username, t.password .. "-123456789"))
    assert.are.equal(body.ip, again.ip)
    local _, other = via(h:proxy_url(t.username, t.password .. "-987654321"))
    assert.are_not.equal(body.ip, other.ip)
    local _, r1 = via(h:proxy_url(t.username, t.password))
    local _, r2 = via(h:proxy_url(t.username, t.password))
    assert.are_not.equal(r1.ip, r2.ip)
    -- the session outlives nothing: 31 simulated minutes later it has a new exit
    h:clock(31 * 60)
    local _, later = via(h:proxy_url(t.username, t.password .. "-123456789"))
    assert.are_not.equal(body.ip, later.ip)
  end)

  it("refuses with 407 and the reason, never the password: wrong, unknown, none, expired, deleted", function()
    local h, t = ctx.h, ctx.t
    local secret = t.password
    local status, body, res = via(h:proxy_url(t.username, "Wrong" .. secret))
    assert.are.equal(407, status)
    assert.are.equal("wrong password", body.error)
    assert.matches('Basic realm="resi sim unknownproxies"', res.headers["proxy-authenticate"], 1, true)
    assert.is_nil(res.body:find(secret, 1, true))
    assert.are.equal("unknown proxy username", select(2, via(h:proxy_url("nobody12", secret))).error)
    local c = raw(h:gateway())
    c:send("GET http://ip.sim/ HTTP/1.1\r\nHost: ip.sim\r\n\r\n")
    assert.is_true(c:wait("\r\n\r\n.*}"))
    assert.matches("^HTTP/1.1 407", c.data)
    assert.matches("proxy credentials required", c.data, 1, true)
    c:close()
    h:usage { id = t.token, bytes = t.dataLimit }
    assert.are.equal("token expired: data limit reached", select(2, via(h:proxy_url(t.username, secret))).error)
    local t2, up = up_token(h)
    assert(up:delete_token(t2.token))
    assert.are.equal("token deleted", select(2, via(h:proxy_url(t2.username, t2.password))).error)
  end)

  it("bills the bytes both ways into the token's usage; crossing the limit expires it and refuses the next one", function()
    local h, t = ctx.h, ctx.t
    local before = h:state().providers.unknownproxies.accounts[1]
    local function usage()
      for _, a in ipairs(h:state().providers.unknownproxies.accounts) do
        for _, x in ipairs(a.tokens) do if x.token == t.token then return x end end
      end
    end
    assert(before)
    local u0 = usage().dataUsage
    local _, _, res = via(h:proxy_url(t.username, t.password))
    local u1 = usage().dataUsage
    assert.is_true(u1 - u0 > #res.body, "billed " .. (u1 - u0))
    assert.is_true(u1 - u0 < 2000)
    assert.is_false(h.world.config.traffic) -- the generator is off once a gateway bills
    h:usage { id = t.token, bytes = t.dataLimit - 10 }
    assert.are.equal(200, (via(h:proxy_url(t.username, t.password)))) -- this one crosses the limit
    assert.are.equal("expired", usage().status)
    assert.are.equal(407, (via(h:proxy_url(t.username, t.password))))
  end)

  it("tunnels CONNECT to a loopback upstream byte for byte, and CONNECT elsewhere reaches the echo target", function()
    local h, t = ctx.h, ctx.t
    local port, stop = sockets.echo()
    finally(stop)
    local c = raw(h:gateway())
    c:send(("CONNECT 127.0.0.1:%d HTTP/1.1\r\nProxy-Authorization: %s\r\n\r\nhello"):format(port, basic(t.username, t.password)))
    assert.is_true(c:wait("established\r\n\r\nhello$"))
    c:send(" world")
    assert.is_true(c:wait("hello world$"))
    c:close()
    local e = raw(h:gateway())
    e:send("CONNECT 10.1.2.3:80 HTTP/1.1\r\nProxy-Authorization: " .. basic(t.username, t.password) .. "\r\n\r\n"
      .. "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.is_true(e:wait('"path":"/b".*}'))
    local ips = {}
    for body in e.data:gmatch("\r\n\r\n({.-})") do ips[#ips + 1] = json.decode(body).ip end
    assert.are.equal(2, #ips)
    -- rotating, but one tunnel is one connection out of one exit: it keeps it
    assert.are.equal(ips[1], ips[2])
    local headers = {}
    for ip in e.data:gmatch("X%-Sim%-Exit%-Ip: ([%d.]+)\r\n") do headers[#headers + 1] = ip end
    assert.are.same({ ips[1], ips[1] }, headers)
    assert.matches('"target":"10.1.2.3"', e.data, 1, true)
    e:close()
    -- the next tunnel is a new connection: a new exit
    local f = raw(h:gateway())
    f:send("CONNECT 10.1.2.3:80 HTTP/1.1\r\nProxy-Authorization: " .. basic(t.username, t.password) .. "\r\n\r\n"
      .. "GET /c HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.is_true(f:wait('"path":"/c".*}'))
    assert.are_not.equal(ips[1], json.decode(f.data:match("\r\n\r\n({.-})$")).ip)
    f:close()
  end)

  it("answers bad requests with 400 naming the problem", function()
    local h, t = ctx.h, ctx.t
    local c = raw(h:gateway())
    c:send("GET ftp://x/ HTTP/1.1\r\nProxy-Authorization: " .. basic(t.username, t.password) .. "\r\n\r\n")
    assert.is_true(c:wait("}"))
    assert.matches("^HTTP/1.1 400", c.data)
    assert.matches("only http:// URLs", c.data, 1, true)
    c:close()
    local d = raw(h:gateway())
    d:send("CONNECT nohost HTTP/1.1\r\n\r\n")
    assert.is_true(d:wait("}"))
    assert.matches("^HTTP/1.1 400", d.data)
    d:close()
  end)
end)

describe("sim gateway: SOCKS5", function()
  local ctx = per_test_sim(12)

  it("offers only username/password (RFC 1929) and refuses wrong credentials", function()
    local h, t = ctx.h, ctx.t
    local c = raw(h:gateway())
    c:send("\5\1\0")
    assert.is_true(c:wait("^\5\255"))
    c:close()
    local d = raw(h:gateway())
    d:send("\5\1\2" .. "\1" .. string.char(#t.username) .. t.username .. "\5wrong")
    assert.is_true(d:wait("^\5\2\1\1"))
    d:close()
    local ok, err = via(h:proxy_url(t.username, "wrong", "socks5h"))
    assert.is_nil(ok)
    assert.matches("rejected", err)
  end)

  it("CONNECTs to a loopback upstream (split across reads) and to the echo target by name", function()
    local h, t = ctx.h, ctx.t
    local port, stop = sockets.echo()
    finally(stop)
    local c = raw(h:gateway())
    local msg = "\5\1\2" .. "\1" .. string.char(#t.username) .. t.username .. string.char(#t.password) .. t.password
      .. "\5\1\0\1\127\0\0\1" .. string.char(port >> 8, port & 255) .. "ping"
    for i = 1, #msg do c:send(msg:sub(i, i)) end
    assert.is_true(c:wait("ping$"))
    assert.are.equal("\5\2\1\0\5\0\0\1\0\0\0\0\0\0ping", c.data)
    c:close()
    local status, body = via(h:proxy_url(t.username, t.password .. "-111111111", "socks5h"))
    assert.are.equal(200, status)
    assert.are.equal("111111111", body.session)
    assert.are.equal("ip.sim", body.target)
    local b = raw(h:gateway())
    b:send("\5\1\2" .. "\1" .. string.char(#t.username) .. t.username .. string.char(#t.password) .. t.password
      .. "\5\2\0\1\127\0\0\1\0\80")
    assert.is_true(b:wait("\5\7"))
    b:close()
  end)
end)

describe("sim gateway: Oxylabs dialect", function()
  local h
  before_each(function()
    h = simh.start { seed = 13, provider = "oxylabs", accounts = { oxylabs = { { username = "main_user", password = "Main_pass123",
      user_id = "u-1", sub_users = { { username = "cust_a", password = "Sub_pass1234", traffic_limit = 1 },
        { username = "cust_b", password = "Sub_pass5678", traffic_limit = 0 },
        { username = "cust_c", password = "Sub_pass9012", status = "disabled" } } } } } }
  end)
  after_each(function() h:stop() end)

  it("targets the country, keeps a sessid for sesstime minutes, and counts the real target in target-stats", function()
    local user = "customer-cust_a-cc-DE-sessid-abc123-sesstime-5"
    local status, body = via(h:proxy_url(user, "Sub_pass1234"), "http://shop.example/p")
    assert.are.equal(200, status)
    assert.are.equal("DE", body.country)
    assert.are.equal("abc123", body.session)
    local _, same = via(h:proxy_url(user, "Sub_pass1234"))
    assert.are.equal(body.ip, same.ip)
    h:clock(6 * 60)
    local _, rotated = via(h:proxy_url(user, "Sub_pass1234"))
    assert.are_not.equal(body.ip, rotated.ip)
    local ox = h:client()
    local id = assert(ox:find_sub_user("cust_a")).id
    local stats = assert(ox:target_stats(id, os.date("!%Y-%m-%d", math.floor(h.world.clock:now()))))
    local targets = {}
    for _, r in ipairs(stats.results) do targets[r.target] = r end
    assert.is_truthy(targets["shop.example"], json.encode(stats))
    assert.is_truthy(targets["ip.sim"])
  end)

  it("refuses wrong, blocked (traffic_limit 0), disabled, exhausted and deleted sub-users with 407", function()
    assert.are.equal("wrong password", select(2, via(h:proxy_url("customer-cust_a", "Sub_pass9999"))).error)
    assert.are.equal("traffic limit reached", select(2, via(h:proxy_url("customer-cust_b", "Sub_pass5678"))).error)
    assert.are.equal("sub-user disabled", select(2, via(h:proxy_url("customer-cust_c", "Sub_pass9012"))).error)
    assert.matches("customer%-USER", select(2, via(h:proxy_url("cust_a", "Sub_pass1234"))).error)
    local ox = h:client()
    local id = assert(ox:find_sub_user("cust_a")).id
    h:usage { id = id, gb = 1 }
    assert.are.equal("traffic limit reached", select(2, via(h:proxy_url("customer-cust_a", "Sub_pass1234"))).error)
    assert(ox:delete_sub_user(id))
    assert.are.equal("sub-user deleted", select(2, via(h:proxy_url("customer-cust_a", "Sub_pass1234"))).error)
    -- to a wrong password a deleted sub-user is as unknown as a name that never was
    assert.are.equal("unknown proxy username", select(2, via(h:proxy_url("customer-cust_a", "Sub_pass0000"))).error)
  end)
end)

describe("sim gateway: ResiFactory dialect", function()
  local KEY = "rf_live_gatewaySpecKey01"
  local h
  before_each(function()
    h = simh.start { seed = 14, provider = "resifactory", accounts = { resifactory = { { api_key = KEY, username = "gw",
      balances = { walmart_premium = 2 }, proxy_password = "ProxyPw123" }, { api_key = KEY .. "x", username = "empty",
      balances = { walmart_premium = 0 } } } } }
  end)
  after_each(function() h:stop() end)

  -- Generates one line with the given key; the decoded answer.
  local function generate(key, body)
    local res = assert(http.request { method = "POST", url = h.urls.resifactory .. "/proxies", json = body,
      headers = { authorization = "Bearer " .. key } })
    assert.are.equal(200, res.status, res.body)
    return res:json()
  end

  it("works with generated sticky lines (country, session), bills the pool balance and usage by domain", function()
    local doc = generate(KEY, { quantity = 1, country = "gb", proxyType = "sticky", sessionDuration = 10, format = "json" })
    local p = doc.proxies[1]
    assert.is_false(doc.is_demo)
    local status, body = via(h:proxy_url(p.username, p.password), "http://target.example/")
    assert.are.equal(200, status)
    assert.are.equal("GB", body.country)
    assert.is_string(body.session)
    local _, again = via(h:proxy_url(p.username, p.password), "http://target.example/")
    assert.are.equal(body.ip, again.ip)
    local me = assert(http.request { url = h.urls.resifactory .. "/usage", headers = { authorization = "Bearer " .. KEY } }):json()
    local found
    for _, d in ipairs(me.top_domains) do if d.domain == "target.example" then found = d end end
    assert.is_truthy(found, json.encode(me))
    assert.is_true(found.bytes > 0, json.encode(found))
    assert.are.equal(2, found.requests)
    -- GET /balance rounds to 4 decimals (0.0001 GB): the exact balance is the world's
    local acct = h.world.providers.resifactory.by_key[KEY]
    assert.are.equal(2 - acct.domains["target.example"].bytes / 1073741824, acct.balances.walmart_premium)
  end)

  it("bills a SOCKS5 or CONNECT tunnel to the echo as one request to its destination, no byte to 'unknown'", function()
    local p = generate(KEY, { quantity = 1, country = "us", format = "json" }).proxies[1]
    local get = "GET / HTTP/1.1\r\nHost: ip.sim\r\nConnection: close\r\n\r\n"
    local s = raw(h:gateway())
    s:send("\5\1\2" .. "\1" .. string.char(#p.username) .. p.username .. string.char(#p.password) .. p.password
      .. "\5\1\0\3\6ip.sim\0\80" .. get)
    assert.is_true(s:wait('"target":"ip.sim".*}'))
    s:close()
    local c = raw(h:gateway())
    c:send(("CONNECT ip.sim:80 HTTP/1.1\r\nProxy-Authorization: %s\r\n\r\n"):format(basic(p.username, p.password)) .. get)
    assert.is_true(c:wait('"target":"ip.sim".*}'))
    c:close()
    local domains = h.world.providers.resifactory.by_key[KEY].domains
    assert.is_nil(domains.unknown, json.encode(domains))
    assert.are.equal(2, domains["ip.sim"].requests)
    assert.is_true(domains["ip.sim"].bytes > #s.data + #c.data, json.encode(domains))
  end)

  it("never accepts demo credentials, nor a pool with no balance left", function()
    local doc = generate(KEY .. "x", { quantity = 1, format = "json" })
    assert.is_true(doc.is_demo)
    local p = doc.proxies[1]
    local status, body = via(h:proxy_url(p.username, p.password))
    assert.are.equal(407, status)
    assert.matches("demo credentials", body.error)
    local live = generate(KEY, { quantity = 1, format = "json" }).proxies[1]
    h:usage { api_key = KEY, pool = "walmart_premium", balance = 0 }
    assert.matches("no balance", select(2, via(h:proxy_url(live.username, live.password))).error)
    assert.are.equal("wrong password", select(2, via(h:proxy_url(live.username, "nope"))).error)
  end)
end)

describe("sim gateway: tunnels at scale", function()
  local ctx = per_test_sim(15)

  it("carries 1,000 concurrent CONNECT tunnels", function()
    local h, t = ctx.h, ctx.t
    local port, stop = sockets.echo()
    finally(stop)
    local head = ("CONNECT 127.0.0.1:%d HTTP/1.1\r\nProxy-Authorization: %s\r\n\r\n"):format(port, basic(t.username, t.password))
    local clients = {}
    for i = 1, 1000 do
      local c = raw(h:gateway())
      clients[i] = c
      c:send(head .. "tunnel " .. i .. ";")
    end
    assert.is_true(proc.eventually(function()
      for i, c in ipairs(clients) do if not c.data:find("tunnel " .. i .. ";", 1, true) then return false end end
      return true
    end, 30))
    assert.are.equal(1000, h.sim.gateways.unknownproxies:counters().active)
    for _, c in ipairs(clients) do c:close() end
    assert.is_true(proc.eventually(function() return h.sim.gateways.unknownproxies:counters().active == 0 end))
  end)

  it("a client that stops reading holds back only its own tunnel, with bounded buffers", function()
    local h, t = ctx.h, ctx.t
    -- an upstream that sends 64 MB as fast as it may
    local blaster = uv.new_tcp()
    local sent_queue = 0
    local peer
    assert(blaster:bind("127.0.0.1", 0))
    assert(blaster:listen(8, function()
      peer = uv.new_tcp()
      blaster:accept(peer)
      local chunk = ("x"):rep(1024 * 1024)
      for _ = 1, 64 do peer:write(chunk) end
      sent_queue = peer:get_write_queue_size()
    end))
    finally(function()
      if peer and not peer:is_closing() then peer:close() end
      blaster:close()
    end)
    local slow = raw(h:gateway())
    slow:send(("CONNECT 127.0.0.1:%d HTTP/1.1\r\nProxy-Authorization: %s\r\n\r\n")
      :format(blaster:getsockname().port, basic(t.username, t.password)))
    assert.is_true(slow:wait("established"))
    slow.sock:read_stop() -- the slow client stops reading
    assert.is_true(proc.eventually(function() return peer ~= nil end))
    resi.sleep(0.5)
    -- the upstream is held back: most of its 64 MB is still queued at the sender
    assert.is_true(peer:get_write_queue_size() > 32 * 1024 * 1024, "upstream queue " .. peer:get_write_queue_size())
    assert.is_true(sent_queue > 0)
    -- another tunnel meanwhile answers at once
    local port, stop = sockets.echo()
    finally(stop)
    local t0 = uv.hrtime()
    local fast = raw(h:gateway())
    fast:send(("CONNECT 127.0.0.1:%d HTTP/1.1\r\nProxy-Authorization: %s\r\n\r\nquick"):format(port, basic(t.username, t.password)))
    assert.is_true(fast:wait("quick$"))
    assert.is_true((uv.hrtime() - t0) / 1e9 < 2)
    fast:close()
    slow:close()
  end)

  it("a client that pipelines echo requests and stops reading gets no more answers queued than the bound", function()
    local h, t = ctx.h, ctx.t
    local gw = h.sim.gateways.unknownproxies
    local c = raw(h:gateway())
    c:send(("CONNECT ip.sim:80 HTTP/1.1\r\nProxy-Authorization: %s\r\n\r\n"):format(basic(t.username, t.password)))
    assert.is_true(c:wait("established\r\n\r\n$"))
    c.sock:read_stop() -- never reads its answers
    c:send(("GET /bytes/1048576 HTTP/1.1\r\nHost: ip.sim\r\n\r\n"):rep(48))
    resi.sleep(0.5)
    local conn = next(gw.conns)
    assert.is_truthy(conn)
    local queued = conn.sock:get_write_queue_size()
    -- without the bound all 48 MB would be queued in the sandbox
    assert.is_true(queued > 0 and queued < 4 * 1024 * 1024, "queued " .. queued)
    -- once the client reads again, every answer arrives
    local n = 0
    c.sock:read_start(function(err, chunk)
      if err or not chunk then c.eof = true return end
      n = n + #chunk
    end)
    assert.is_true(proc.eventually(function() return n >= 48 * 1048576 end, 20), "read " .. n)
    c:close()
  end)
end)

describe("sim gateway: never an open proxy", function()
  -- This machine's first non-loopback IPv4 address, or nil.
  local function outside_address()
    for _, list in pairs(uv.interface_addresses()) do
      for _, a in ipairs(list) do
        if a.family == "inet" and not a.internal then return a.ip end
      end
    end
  end

  it("gives a client from another address the echo target, even for a loopback destination", function()
    local ip = outside_address()
    if not ip then return pending("no non-loopback IPv4 address on this machine") end
    local h = simh.start { seed = 16, host = "0.0.0.0" }
    finally(function() h:stop() end)
    local t = up_token(h)
    local port, stop = sockets.echo()
    finally(stop)
    local c = raw(ip .. ":" .. h:gateway():match(":(%d+)$"))
    c:send(("CONNECT 127.0.0.1:%d HTTP/1.1\r\nProxy-Authorization: %s\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
      :format(port, basic(t.username, t.password)))
    assert.is_true(c:wait("}"))
    assert.matches("X-Sim-Exit-Ip", c.data, 1, true) -- the echo answered: nothing was connected
    assert.matches('"target":"127.0.0.1"', c.data, 1, true)
    c:close()
  end)
end)

describe("resi sim command: gateways", function()
  local files = require "spec.support.files"

  it("names a bad --gateway-ports or --bill-scale as a usage error", function()
    local r = proc.resi { "sim", "--gateway-ports", "1,2" }
    assert.are.equal(2, r.status)
    assert.matches("--gateway-ports expects three ports UP,OXY,RF, got 2", r.stderr, 1, true)
    r = proc.resi { "sim", "--bill-scale", "0", "--traffic", "--no-traffic" }
    assert.are.equal(2, r.status)
    assert.matches("--bill-scale must be a finite number > 0", r.stderr, 1, true)
    assert.matches("--traffic and --no-traffic exclude each other", r.stderr, 1, true)
  end)

  it("prints RESI_SIM_*_GATEWAY lines (in --env-file too), started from another directory", function()
    local dir = files.dir("resi-gw-cli")
    finally(function() files.remove_dir(dir) end)
    local env = dir .. "/sim.env"
    local handle
    handle = uv.spawn(proc.resi_path(), { args = { "sim", "--ports", "0,0,0", "--no-traffic", "--env-file", env },
      cwd = "/", stdio = { nil, nil, nil } }, function() handle:close() end)
    finally(function() if not handle:is_closing() then handle:kill("sigterm") end end)
    assert.is_true(proc.eventually(function() return uv.fs_stat(env) ~= nil end))
    local r = proc.run { "bash", "-c", ". " .. env .. [[ && env | grep -c '^RESI_SIM_[A-Z]*_GATEWAY=127\.0\.0\.1:[0-9]*$'
      curl -sf "http://$RESI_SIM_OXYLABS_GATEWAY/"; echo
      curl -s -o /dev/null -w '%{http_code}\n' -x "http://customer-nobody:Secret_pw123@$RESI_SIM_OXYLABS_GATEWAY" http://ip.sim/
      curl -s -o /dev/null -w '%{http_code}\n' --socks5-hostname "x:y@$RESI_SIM_RESIFACTORY_GATEWAY" http://ip.sim/ || true]] }
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("3", lines[1], r.stderr)
    assert.are.equal("direct", json.decode(lines[2]).target)
    assert.are.equal("407", lines[3])
    assert.are.equal("000", lines[4]) -- SOCKS5 auth refused: no HTTP answer at all
  end)
end)
