-- resi.http against Debian's nginx on loopback, plus sockets that misbehave.
local http = require "resi.http"
local json = require "resi.json"
local nginx = require "spec.support.nginx"
local sockets = require "spec.support.sockets"
local proc = require "spec.support.proc"

describe("resi.http", function()
  local srv = nginx.for_block()

  describe("requests", function()
    it("GETs a document with status, lower-case headers and body", function()
      local res, err, code = http.get(srv.url .. "/small.json")
      assert.is_nil(err)
      assert.is_nil(code)
      assert.equal(200, res.status)
      assert.equal("application/json", res.headers["content-type"])
      assert.equal(tostring(#srv.small), res.headers["content-length"])
      assert.equal(srv.small, res.body)
      assert.equal(srv.url .. "/small.json", res.url)
    end)

    it("decodes JSON bodies with exact integers and [] kept", function()
      local res = assert(http.get(srv.url .. "/small.json"))
      local doc = assert(res:json())
      assert.equal(123456789012345, doc.used)
      assert.equal(math.type(doc.used), "integer")
      assert.equal(5000000000, doc.dataLimit)
      assert.equal("[]", json.encode(doc.allowedPools))
    end)

    it("returns nil and an error from res:json() on a bad body", function()
      local res = assert(http.get(srv.url .. "/bad.json"))
      local value, err = res:json()
      assert.is_nil(value)
      assert.is_string(err)
      assert.truthy(#err > 0)
    end)

    it("treats 4xx as a normal response", function()
      local res, err = http.get(srv.url .. "/status/404")
      assert.is_nil(err)
      assert.equal(404, res.status)
      assert.equal("not found", res:json().error)
    end)

    it("sends method, query, headers and a JSON body", function()
      local res = assert(http.request {
        method = "post",
        url = srv.url .. "/echo",
        query = { b = "x y", a = 1, list = { "p", "q" } },
        headers = { ["X-Test"] = "hello", Authorization = "Basic dTpw" },
        json = { dataLimit = 123456789012345, allowedPools = json.array() },
      })
      assert.equal(200, res.status)
      assert.equal("POST", res.headers["x-echo-method"])
      assert.equal("a=1&b=x%20y&list=p&list=q", res.headers["x-echo-query"])
      assert.equal("hello", res.headers["x-echo-test"])
      assert.equal("application/json", res.headers["x-echo-content-type"])
      local sent = json.decode(res.headers["x-echo-body"])
      assert.equal(123456789012345, sent.dataLimit)
      assert.truthy(res.headers["x-echo-body"]:find('"allowedPools":[]', 1, true))
      assert.truthy(res.headers["x-echo-user-agent"]:match("^resi/"))
    end)

    it("sends PUT, PATCH and DELETE with bodies, and HEAD without one", function()
      for _, m in ipairs { "put", "patch", "delete" } do
        local res = assert(http[m](srv.url .. "/echo", { body = "payload-" .. m }))
        assert.equal(m:upper(), res.headers["x-echo-method"])
        assert.equal("payload-" .. m, res.headers["x-echo-body"])
      end
      local head = assert(http.head(srv.url .. "/small.json"))
      assert.equal(200, head.status)
      assert.equal("", head.body)
      assert.equal(tostring(#srv.small), head.headers["content-length"])
    end)

    it("accepts headers as a list of lines and appends query to an existing one", function()
      local res = assert(http.get(srv.url .. "/echo?z=1", { headers = { "X-Test: from-list" }, query = { y = 2 } }))
      assert.equal("from-list", res.headers["x-echo-test"])
      assert.equal("z=1&y=2", res.headers["x-echo-query"])
    end)

    it("advertises gzip alone, and nothing with gzip = false", function()
      local res = assert(http.get(srv.url .. "/echo"))
      assert.equal("gzip", res.headers["x-echo-accept-encoding"])
      local plain = assert(http.get(srv.url .. "/echo", { gzip = false }))
      assert.equal("", plain.headers["x-echo-accept-encoding"] or "")
    end)

    it("sends its User-Agent and Accept-Encoding once, or the caller's instead", function()
      local seen = {}
      local port, stop = sockets.scripted("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
        function(request) seen[#seen + 1] = request end)
      local url = ("http://127.0.0.1:%d/x"):format(port)
      assert(http.get(url))
      assert(http.get(url, { headers = { ["user-agent"] = "mine/2", ["Accept-Encoding"] = "identity" } }))
      assert(http.get(url, { headers = { "X-Other: 1" }, gzip = false }))
      stop()
      local function lines(request, name) -- the values of every header called name
        local found = {}
        for n, v in request:gmatch("\r\n([^:\r\n]+): ([^\r\n]*)") do
          if n:lower() == name then found[#found + 1] = v end
        end
        return table.concat(found, "|")
      end
      assert.equal(3, #seen)
      assert.equal("resi/" .. resi.version, lines(seen[1], "user-agent"))
      assert.equal("gzip", lines(seen[1], "accept-encoding"))
      assert.equal("mine/2", lines(seen[2], "user-agent"))
      assert.equal("identity", lines(seen[2], "accept-encoding"))
      assert.equal("resi/" .. resi.version, lines(seen[3], "user-agent"))
      assert.equal("", lines(seen[3], "accept-encoding"))
      assert.equal("1", lines(seen[3], "x-other"))
    end)

    it("asks for gzip and hands back the decoded body", function()
      local res = assert(http.get(srv.url .. "/gzip.json"))
      assert.equal("gzip", res.headers["content-encoding"])
      local doc = assert(res:json())
      assert.equal(2000, #doc)
      assert.equal(12000, doc[2000].port)
      local plain = assert(http.get(srv.url .. "/gzip.json", { gzip = false }))
      assert.is_nil(plain.headers["content-encoding"])
      assert.equal(plain.body, res.body)
    end)
  end)

  describe("connections", function()
    it("reuses one connection for sequential requests to one host", function()
      local first = assert(http.get(srv.url .. "/conn"))
      local serial = first.body:match("^(%d+) ")
      local n0 = tonumber(first.body:match(" (%d+)$"))
      for i = 1, 20 do
        local res = assert(http.get(srv.url .. "/conn"))
        -- nginx's own connection serial number stays the same, its request count grows
        assert.equal(serial, res.body:match("^(%d+) "))
        assert.equal(n0 + i, tonumber(res.body:match(" (%d+)$")))
        assert.is_true(res.reused)
      end
    end)

    it("counts real sockets: sequential requests open one, 10 loops in flight open 10", function()
      assert(http.get(srv.url .. "/small.json")) -- a connection to reuse (or one already cached)
      local before = http.stats().sockets_opened
      for _ = 1, 20 do assert(http.get(srv.url .. "/small.json")) end
      assert.equal(before, http.stats().sockets_opened)
      local tasks = {}
      for i = 1, 10 do
        tasks[i] = resi.spawn(function()
          for _ = 1, 20 do assert(http.get(srv.url .. "/small.json")) end
        end)
      end
      for i = 1, 10 do tasks[i]:wait() end
      local opened = http.stats().sockets_opened - before
      assert.is_true(opened <= 10, opened .. " sockets for 10 loops")
    end)

    it("carries no option over to the next request on a reused transfer handle", function()
      local function echo(method, opts)
        local res = assert(http[method](srv.url .. "/echo", opts))
        local h = res.headers
        return h["x-echo-method"], h["x-echo-test"] or "", h["x-echo-body"] or "", h["x-echo-accept-encoding"] or ""
      end
      local m, test, body, enc = echo("get", { headers = { ["X-Test"] = "one" }, gzip = false })
      assert.same({ "GET", "one", "", "" }, { m, test, body, enc })
      m, test, body, enc = echo("get")
      assert.same({ "GET", "", "" }, { m, test, body })
      assert.is_true(enc ~= "")
      m, test, body = echo("post", { body = "payload" })
      assert.same({ "POST", "", "payload" }, { m, test, body })
      m, test, body = echo("get")
      assert.same({ "GET", "", "" }, { m, test, body })
      m, test, body = echo("delete")
      assert.same({ "DELETE", "", "" }, { m, test, body })
      assert.equal("", assert(http.head(srv.url .. "/small.json")).body)
      assert.equal(srv.small, assert(http.get(srv.url .. "/small.json")).body)
    end)

    it("recovers when the server closes an idle keep-alive connection", function()
      -- a keep-alive server that answers every request and can drop its idle connections
      local port, drop_all, stop = sockets.keep_alive("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
      local url = ("http://127.0.0.1:%d/"):format(port)
      local before = http.stats().sockets_opened
      for round = 1, 3 do
        assert.equal("ok", assert(http.get(url)).body)
        assert.equal("ok", assert(http.get(url)).body) -- the same connection
        drop_all()
        if round == 2 then resi.sleep(0.05) end -- the close reaches the idle watcher first
      end
      local res = assert(http.get(url)) -- after a close seen or not seen by the watcher
      assert.equal("ok", res.body)
      assert.equal(before + 4, http.stats().sockets_opened)
      stop()
    end)

    it("runs 1,000 requests in flight at once", function()
      local before = http.stats().transfers_started
      local ok, peak = 0, 0
      local tasks = {}
      for i = 1, 1000 do
        tasks[i] = resi.spawn(function()
          local res = http.get(srv.url .. "/small.json")
          if res and res.status == 200 and res.body == srv.small then ok = ok + 1 end
        end)
      end
      -- all 1,000 are started before any completes
      resi.sleep(0)
      peak = http.stats().in_flight
      for i = 1, 1000 do tasks[i]:wait() end
      assert.equal(1000, ok)
      assert.equal(1000, peak)
      assert.equal(before + 1000, http.stats().transfers_started)
      assert.equal(0, http.stats().in_flight)
    end)

    it("does not keep the process alive for idle keep-alive connections", function()
      local r = proc.run { "timeout", "20", proc.resi_path(), "-e",
        ("local r = require('resi.http').get(%q) print(r.status)"):format(srv.url .. "/small.json") }
      assert.equal(0, r.status) -- 124 would mean the idle connection held the process
      assert.equal("200\n", r.stdout)
    end)
  end)

  describe("rules", function()
    it("refuses plain http:// to a non-loopback host", function()
      local ok, err = pcall(function() local r = http.get("http://example.com/") return r end)
      assert.is_false(ok)
      assert.truthy(err:find("refuses plain http:// to \"example.com\"", 1, true))
      assert.truthy(err:find("http_spec.lua:%d+:"), err) -- points at the caller's line
    end)

    it("allows plain http:// to every loopback form", function()
      for _, host in ipairs { "127.0.0.1", "127.1.2.3", "localhost", "[::1]" } do
        assert.is_true(http.is_loopback(select(2, http.split_url("http://" .. host .. ":1/"))), host)
      end
      assert.is_false(http.is_loopback("128.0.0.1"))
      assert.is_false(http.is_loopback("localhost.example.com"))
    end)

    it("rejects unknown schemes, header injection and bad options with clear errors", function()
      local cases = {
        { { url = "ftp://127.0.0.1/" }, "scheme \"ftp\" is not supported" },
        { { url = "127.0.0.1/x" }, "must be an absolute http(s) URL" },
        { { url = srv.url, headers = { ["X-A"] = "a\r\nX-B: b" } }, "X-A contains a line break" },
        { { url = srv.url, headers = { ["Bad Name"] = "v" } }, "invalid name" },
        { { url = srv.url, timeout = 0 }, "timeout must be a positive number" },
        { { url = srv.url, body = {} }, "body must be a string" },
        { { url = srv.url, body = "x", json = {} }, "json and body cannot both be given" },
        { {}, "url is required" },
      }
      for _, case in ipairs(cases) do
        local ok, err = pcall(http.request, case[1])
        assert.is_false(ok)
        assert.truthy(err:find(case[2], 1, true), err)
      end
    end)

    it("does not follow redirects unless asked", function()
      local res = assert(http.get(srv.url .. "/redirect"))
      assert.equal(302, res.status)
      assert.equal("/small.json", res.headers.location)
      local followed = assert(http.get(srv.url .. "/redirect", { follow = true }))
      assert.equal(200, followed.status)
      assert.equal(srv.url .. "/small.json", followed.url)
      assert.equal(srv.small, followed.body)
    end)

    it("turns a redirected POST into a GET and stops redirect loops", function()
      local res = assert(http.post(srv.url .. "/post-redirect", { body = "x", follow = true }))
      assert.equal("GET", res.headers["x-echo-method"])
      local none, err, code = http.get(srv.url .. "/redirect-loop", { follow = 3 })
      assert.is_nil(none)
      assert.equal("protocol", code)
      assert.truthy(err:find("more than 3 redirects", 1, true))
    end)

    it("never follows a redirect to plain http:// off loopback", function()
      local ok, err = pcall(http.get, srv.url .. "/redirect-out", { follow = true })
      assert.is_false(ok)
      assert.truthy(err:find("refuses plain http:// to \"example.com\"", 1, true))
    end)
  end)

  describe("TLS", function()
    it("verifies the server against the given CA bundle", function()
      local res, err = http.get(srv.https_url .. "/small.json", { ca_file = srv.ca_file })
      assert.is_nil(err)
      assert.equal(200, res.status)
      assert.equal("2", res.http_version) -- ALPN picked HTTP/2
      assert.equal(srv.small, res.body)
    end)

    it("fails with code tls when the certificate is not trusted", function()
      local res, err, code = http.get(srv.https_url .. "/small.json")
      assert.is_nil(res)
      assert.equal("tls", code)
      assert.truthy(err:lower():find("certificate", 1, true), err)
    end)

    it("reads the CA bundle from SSL_CERT_FILE and CURL_CA_BUNDLE", function()
      for _, var in ipairs { "SSL_CERT_FILE", "CURL_CA_BUNDLE" } do
        local r = proc.run({ proc.resi_path(), "-e",
          ("local r, e = require('resi.http').get(%q) print(r and r.status or e)"):format(srv.https_url .. "/small.json") },
          { env = { "SSL_CERT_FILE=", "CURL_CA_BUNDLE=", var .. "=" .. srv.ca_file } })
        assert.equal(0, r.status, r.stderr)
        assert.equal("200\n", r.stdout, var)
      end
    end)
  end)

  describe("failures", function()
    it("returns code connect for a closed port", function()
      local res, err, code = http.get("http://127.0.0.1:" .. sockets.closed_port() .. "/")
      assert.is_nil(res)
      assert.equal("connect", code)
      assert.truthy(err:find("onnect", 1, true))
    end)

    it("returns code resolve for a name that does not resolve", function()
      local res, err, code = http.get("https://no-such-host.invalid/")
      assert.is_nil(res)
      assert.equal("resolve", code)
      assert.truthy(err:find("no-such-host.invalid", 1, true))
    end)

    it("returns code timeout when the server never answers", function()
      local port, stop = sockets.silent()
      local t0 = resi.monotonic()
      local res, err, code = http.get("http://127.0.0.1:" .. port .. "/", { timeout = 0.3 })
      local took = resi.monotonic() - t0
      stop()
      assert.is_nil(res)
      assert.equal("timeout", code)
      assert.truthy(err:lower():find("timed out", 1, true), err)
      assert.is_true(took >= 0.29)
    end)

    it("times out a transfer that is too slow as a whole", function()
      local res, _, code = http.get(srv.url .. "/slow", { timeout = 0.5 })
      assert.is_nil(res)
      assert.equal("timeout", code)
    end)

    it("returns code reset when the server closes without answering", function()
      local port, stop = sockets.slammer()
      local res, _, code = http.get("http://127.0.0.1:" .. port .. "/")
      stop()
      assert.is_nil(res)
      assert.equal("reset", code)
    end)

    it("fails with a stable code for each kind of broken response", function()
      for _, case in ipairs {
        { "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", "truncated" }, -- body cut short
        -- closed inside the headers: libcurl takes that for their end and reports success
        { "HTTP/1.1 200 OK\r\nContent-Type: application/js", "truncated",
          "the connection closed before the response headers ended" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "protocol" },    -- a bad chunk size
        { "HTTP/1.1 200 OK\r\n" .. ("X-A: " .. ("a"):rep(1000) .. "\r\n"):rep(400) .. "\r\n", "protocol" }, -- 400 KB of headers
        { "NOT HTTP AT ALL\r\n\r\n", "protocol" },
      } do
        local port, stop = sockets.scripted(case[1])
        local res, err, code = http.get("http://127.0.0.1:" .. port .. "/")
        stop()
        assert.is_nil(res)
        assert.equal(case[2], code, err)
        if case[3] then assert.equal(case[3], err) end
      end
    end)

    it("refuses a body larger than max_body", function()
      local res, err, code = http.get(srv.url .. "/big.bin", { max_body = 1024 * 1024 })
      assert.is_nil(res)
      assert.equal("too_large", code)
      assert.truthy(err:find("1048576", 1, true))
      local ok = assert(http.get(srv.url .. "/big.bin"))
      assert.equal(2 * 1024 * 1024, #ok.body)
    end)
  end)

  describe("cancellation", function()
    it("aborts the transfer when its task is cancelled", function()
      local port, stop = sockets.silent()
      local t = resi.spawn(function() return http.get("http://127.0.0.1:" .. port .. "/", { timeout = 30 }) end)
      resi.sleep(0.05)
      assert.equal(1, http.stats().in_flight)
      assert.is_true(t:cancel())
      assert.equal(0, http.stats().in_flight) -- removed at once, not at the timeout
      local ok, err = pcall(t.wait, t)
      assert.is_false(ok)
      assert.is_true(resi.is_cancelled(err))
      stop()
    end)

    it("aborts the transfer when resi.timeout runs out", function()
      local port, stop = sockets.silent()
      local res, err, code = resi.timeout(0.1, http.get, "http://127.0.0.1:" .. port .. "/")
      assert.is_nil(res)
      assert.equal("timeout", err)
      assert.equal("timeout", code)
      assert.equal(0, http.stats().in_flight)
      stop()
    end)

    it("lets coroutine.wrap iterators make requests", function()
      local pages = coroutine.wrap(function()
        for _ = 1, 3 do coroutine.yield(assert(http.get(srv.url .. "/small.json")).status) end
      end)
      assert.same({ 200, 200, 200 }, { pages(), pages(), pages() })
    end)
  end)
end)
