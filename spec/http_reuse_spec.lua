-- resi.http's per-request savings (issue 17) keep the behaviour: a pooled
-- transfer handle that skips re-setting unchanged options still takes every
-- changed one, and res.headers, made from the header block on first read,
-- is the same table the eager version gave. Against Debian's nginx.
local http = require "resi.http"
local nginx = require "spec.support.nginx"

describe("resi.http handle reuse and lazy headers", function()
  local srv = nginx.for_block()

  it("takes a changed timeout on a reused handle, each way", function()
    for _ = 1, 3 do assert(http.get(srv.url .. "/small.json")) end -- handles pooled with the default timeout
    local t0 = resi.monotonic()
    local res, _, code = http.get(srv.url .. "/slow", { timeout = 0.5 })
    assert.is_nil(res)
    assert.equal("timeout", code)
    assert.is_true(resi.monotonic() - t0 < 3) -- not the default 30 s, not the whole 5 s body
    assert(http.get(srv.url .. "/small.json", { timeout = 0.5 })) -- a handle now pooled with 0.5 s
    local slow = assert(http.get(srv.url .. "/slow", { timeout = 20 }))
    assert.equal(200, slow.status)
    assert.equal(1024, #slow.body)
  end)

  it("takes a changed ca_file on a reused handle, each way", function()
    for _ = 1, 2 do
      local ok = assert(http.get(srv.https_url .. "/small.json", { ca_file = srv.ca_file })) -- pooled with it
      assert.equal(srv.small, ok.body)
      local res, _, code = http.get(srv.https_url .. "/small.json") -- the default bundle: not trusted
      assert.is_nil(res)
      assert.equal("tls", code)
      assert(http.get(srv.url .. "/small.json")) -- pooled with the default bundle
    end
  end)

  it("fetches the URL it is given on a handle that kept its last URL parsed", function()
    -- one request at a time: each takes the handle the last one gave back
    local seq = { "/echo?q=1", "/echo?q=1", "/echo?q=2", "/small.json", "/small.json", "/echo?q=1" }
    for _, path in ipairs(seq) do
      local url = srv.url .. path
      local res = assert(http.get(url))
      assert.equal(url, res.url)
      if path == "/small.json" then
        assert.equal(srv.small, res.body)
      else
        assert.equal(path:match("%?(.*)$"), res.headers["x-echo-query"])
      end
    end
    -- res.url is the URL as asked for, not libcurl's normalised form (which adds the "/")
    local bare = assert(http.get(srv.url))
    assert.equal(srv.url, bare.url)
    -- a URL libcurl refuses still fails with its message, and the next request is unharmed
    local res, err, code = http.get("http://127.0.0.1:99999/small.json")
    assert.is_nil(res)
    assert.equal("error", code)
    assert.matches("URL", err)
    assert.equal(srv.small, assert(http.get(srv.url .. "/small.json")).body)
  end)

  it("switches gzip off and on again on reused handles", function()
    for _, gzip in ipairs { true, false, false, true, true } do
      local res = assert(http.get(srv.url .. "/gzip.json", { gzip = gzip }))
      assert.equal(gzip and "gzip" or nil, res.headers["content-encoding"])
      assert.equal(2000, #assert(res:json()))
    end
  end)

  it("closes the connection after a keep_alive = false request, and keeps it otherwise", function()
    local function conn(opts) return (assert(http.get(srv.url .. "/conn", opts)).body:match("^(%d+) ")) end
    local kept = conn()
    assert.equal(kept, conn()) -- the default: the same nginx connection
    local opened = http.stats().sockets_opened
    assert.equal(kept, conn { keep_alive = false }) -- may use the cached connection, but closes it after
    local after = conn()
    assert.are_not.equal(kept, after) -- a new connection: the last one was closed
    assert.equal(opened + 1, http.stats().sockets_opened)
    assert.equal(after, conn()) -- on a reused handle keep_alive is back to true: kept
    assert.equal(after, conn())
    assert.equal(opened + 1, http.stats().sockets_opened)
  end)

  it("makes res.headers on first read, once, with lower-case names", function()
    local res = assert(http.get(srv.url .. "/small.json"))
    assert.is_nil(rawget(res, "headers"))
    local h = res.headers
    assert.equal("table", type(h))
    assert.equal(h, res.headers) -- the same table every time
    assert.equal("application/json", h["content-type"])
    assert.equal(tostring(#srv.small), h["content-length"])
    for name in pairs(h) do assert.equal(name:lower(), name) end
    assert.is_nil(h["content-type:"])
    assert.equal(res:json(), res:json()) -- decoded once
  end)
end)
