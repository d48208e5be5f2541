-- resi.server: requests in tasks, keep-alive, limits, malformed input,
-- pipelining, graceful stop. Clients are resi.http, the curl command line,
-- and raw TCP for bytes no well-behaved client would send.
local server = require "resi.server"
local http = require "resi.http"
local proc = require "spec.support.proc"
local uv = require "luv"

local raw_exchange = require("spec.support.sockets").exchange

describe("resi.server", function()
  local srv, seen

  setup(function()
    seen = {}
    srv = assert(server.serve {
      max_header = 2048,
      max_body = 4096,
      handler = function(req)
        seen[#seen + 1] = req
        if req.path == "/slow" then resi.sleep(0.2) end
        if req.path == "/boom" then error("handler exploded") end
        if req.path == "/json" then return { json = { path = req.path, n = 123456789012345, list = require("resi.json").array() } } end
        if req.path == "/nothing" then return nil end
        if req.path == "/typed" then return { status = 299, headers = { ["X-Num"] = 12, ["X-Bool"] = true }, body = "t" } end
        if req.path == "/badheader" then return { headers = { ["X-Bad"] = "a\r\nInjected: 1" }, body = "no" } end
        return {
          status = tonumber(req.query.status) or 200,
          headers = { ["X-Method"] = req.method, ["X-Query-A"] = tostring(req.query.a) },
          body = req.body ~= "" and ("echo:" .. req.body) or ("path:" .. req.path),
        }
      end,
    })
  end)
  teardown(function() srv:close() end)

  it("binds a free loopback port when asked for port 0", function()
    assert.equal("127.0.0.1", srv.host)
    assert.is_true(srv.port > 0)
    assert.equal("http://127.0.0.1:" .. srv.port, srv.url)
  end)

  it("hands the handler method, path, decoded query, headers and body", function()
    local res = assert(http.post(srv.url .. "/a%20b/c?a=x%2By&a=2&flag&e=", {
      headers = { ["X-Custom"] = "v1" }, body = "payload",
    }))
    assert.equal(200, res.status)
    assert.equal("echo:payload", res.body)
    local req = seen[#seen]
    assert.equal("POST", req.method)
    assert.equal("/a b/c", req.path)
    assert.same({ "x+y", "2" }, req.query.a)
    assert.equal("", req.query.flag)
    assert.equal("", req.query.e)
    assert.equal("v1", req.headers["x-custom"])
    assert.equal("payload", req.body)
    assert.equal("127.0.0.1", req.remote)
    assert.equal("1.1", req.http_version)
  end)

  it("encodes json responses and sets the content type", function()
    local res = assert(http.get(srv.url .. "/json"))
    assert.equal("application/json", res.headers["content-type"])
    local doc = assert(res:json())
    assert.equal(123456789012345, doc.n)
    assert.equal("/json", doc.path)
    assert.truthy(res.body:find('"list":[]', 1, true))
  end)

  it("keeps connections alive across requests", function()
    local before = srv:stats().accepted
    for i = 1, 10 do
      local res = assert(http.get(srv.url .. "/k" .. i))
      assert.equal("path:/k" .. i, res.body)
    end
    assert.is_true(srv:stats().accepted - before <= 1)
  end)

  it("serves many clients at once, each request in its own task", function()
    local t0 = resi.monotonic()
    local tasks = {}
    for i = 1, 20 do tasks[i] = resi.spawn(http.get, srv.url .. "/slow") end
    for i = 1, 20 do assert.equal(200, tasks[i]:wait().status) end
    assert.is_true(resi.monotonic() - t0 < 2) -- 20 x 0.2 s in sequence would be 4 s
  end)

  it("answers 500 when the handler fails or returns nothing, and keeps serving", function()
    local res = assert(http.get(srv.url .. "/boom"))
    assert.equal(500, res.status)
    assert.equal("internal server error", res:json().error)
    local none = assert(http.get(srv.url .. "/nothing"))
    assert.equal(500, none.status)
    assert.equal(200, assert(http.get(srv.url .. "/after")).status)
    -- to HEAD, the 500 has no body: the next response on the connection follows its head
    local out = raw_exchange(srv.port, "HEAD /boom HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert.truthy(out:match("^HTTP/1.1 500 [^\r]*\r\n.-\r\n\r\nHTTP/1.1 200 "), out)
    assert.is_nil(out:find("internal server error", 1, true))
  end)

  it("writes header values of any type as text and refuses ones that would break the head", function()
    local res = assert(http.get(srv.url .. "/typed"))
    assert.equal(299, res.status)
    assert.equal("12", res.headers["x-num"])
    assert.equal("true", res.headers["x-bool"])
    assert.equal("1", res.headers["content-length"])
    assert.equal("t", res.body)
    local bad = assert(http.get(srv.url .. "/badheader"))
    assert.equal(500, bad.status)
    assert.is_nil(bad.headers["injected"])
    assert.equal(200, assert(http.get(srv.url .. "/after")).status)
  end)

  it("answers HEAD without a body", function()
    local res = assert(http.head(srv.url .. "/h"))
    assert.equal(200, res.status)
    assert.equal("", res.body)
    assert.equal(tostring(#"path:/h"), res.headers["content-length"])
  end)

  it("works with the curl command line", function()
    local r = proc.run { "curl", "-sS", "-i", "-X", "PUT", "--data-binary", "from-curl", srv.url .. "/c?a=1" }
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:match("^HTTP/1.1 200 OK\r\n"))
    assert.truthy(r.stdout:find("X-Method: PUT\r\n", 1, true))
    assert.truthy(r.stdout:find("X-Query-A: 1\r\n", 1, true))
    assert.equal("\r\n\r\necho:from-curl", r.stdout:sub(-#"\r\n\r\necho:from-curl"))
  end)

  it("accepts chunked request bodies", function()
    local out = raw_exchange(srv.port, "POST /ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      .. "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert.truthy(out:find("\r\n\r\necho:hello world$"), out)
  end)

  it("answers pipelined requests in order", function()
    local out = raw_exchange(srv.port, "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
      .. "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    local bodies = {}
    for body in out:gmatch("\r\n\r\n(path:/[a-z]+)") do bodies[#bodies + 1] = body end
    assert.same({ "path:/one", "path:/slow", "path:/three" }, bodies)
  end)

  it("answers 400 to malformed requests and closes the connection", function()
    for _, bad in ipairs {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "\0\1\2\3\r\n\r\n",
    } do
      local out = raw_exchange(srv.port, bad)
      assert.truthy(out:match("^HTTP/1.1 400 Bad Request\r\n"), ("%q -> %q"):format(bad, out))
      assert.truthy(out:find("Connection: close\r\n", 1, true))
    end
    local version = raw_exchange(srv.port, "GET / HTTP/9.9\r\n\r\n")
    assert.truthy(version:match("^HTTP/1.1 505 HTTP Version Not Supported\r\n"), version)
    assert.equal(200, assert(http.get(srv.url .. "/still-up")).status)
  end)

  it("answers 431 to oversized headers and 413 to oversized bodies", function()
    local big = assert(http.get(srv.url .. "/h", { headers = { ["X-Big"] = ("x"):rep(4000) } }))
    assert.equal(431, big.status)
    local body = assert(http.post(srv.url .. "/b", { body = ("y"):rep(5000) }))
    assert.equal(413, body.status)
    local chunked = raw_exchange(srv.port, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      .. "1388\r\n" .. ("z"):rep(5000) .. "\r\n0\r\n\r\n")
    assert.truthy(chunked:match("^HTTP/1.1 413 "), chunked:sub(1, 40))
  end)

  it("survives clients that disconnect mid-request or before the answer", function()
    assert.equal("", (raw_exchange(srv.port, "GET /partial HTTP/1.1\r\nHo", true)))
    local sock = uv.new_tcp()
    resi.await(function(done)
      sock:connect("127.0.0.1", srv.port, function()
        sock:write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", function() sock:close() done() end)
      end)
    end)
    resi.sleep(0.3) -- the handler finishes and finds the client gone
    assert.equal(200, assert(http.get(srv.url .. "/alive")).status)
  end)

  it("stops gracefully: a request in progress is answered, new ones are refused", function()
    local s2 = assert(server.serve { handler = function() resi.sleep(0.2) return { body = "done" } end })
    local inflight = resi.spawn(http.get, s2.url .. "/")
    resi.sleep(0.05)
    s2:close()
    local res = assert(inflight:wait())
    assert.equal("done", res.body)
    assert.equal("close", res.headers.connection)
    local none, _, code = http.get(s2.url .. "/", { timeout = 2 })
    assert.is_nil(none)
    assert.equal("connect", code)
  end)

  it("reports a port in use as an error value", function()
    local s2, err, code = server.serve { port = srv.port, handler = function() end }
    assert.is_nil(s2)
    assert.equal("EADDRINUSE", code)
    assert.truthy(err:find("cannot listen on 127.0.0.1:" .. srv.port, 1, true))
  end)

  it("checks its options", function()
    assert.has_error(function() server.serve {} end, "resi.server.serve: handler must be a function")
    assert.has_error(function() server.serve { handler = print, port = 70000 } end,
      "resi.server.serve: port must be an integer 0..65535")
  end)
end)
