-- resi.proxy_proto_core: the sandbox gateways' SOCKS5 parsers and their
-- HTTP request head, which must be the table resi.server gives for the same
-- bytes (one rule for both, http_request_lua.c).
local pp = require "resi.proxy_proto_core"
local server = require "resi.server"
local raw_exchange = require("spec.support.sockets").exchange

-- A head with a repeated header, trailing blanks and a body, then a second request.
local HEAD = "POST /p?q=1 HTTP/1.1\r\nHost: up.example\r\nX-Tag: a \t\r\nx-tag: b\r\n"
  .. "Content-Length: 4\r\nConnection: close\r\n\r\nbodyGET / HTTP/1.1\r\n\r\n"
local FIRST = #HEAD - #"GET / HTTP/1.1\r\n\r\n"

describe("resi.proxy_proto_core", function()
  describe("http_head", function()
    it("reads one request: repeats joined, trailing blanks gone, version, body, bytes used", function()
      local head, used = pp.http_head(HEAD, 1024, 64)
      assert.are.equal(FIRST, used)
      assert.are.equal("POST", head.method)
      assert.are.equal("/p?q=1", head.url)
      assert.are.equal("a, b", head.headers["x-tag"])
      assert.are.equal("up.example", head.headers.host)
      assert.are.equal("1.1", head.http_version)
      assert.are.equal("body", head.body)
      assert.is_false(head.keep_alive)
    end)

    it("gives the very table resi.server's handler gets for the same bytes", function()
      local got
      local srv = assert(server.serve { port = 0, handler = function(req)
        got = req
        return { status = 204 }
      end })
      local answer = raw_exchange(srv.port, HEAD:sub(1, FIRST))
      srv:close()
      assert.matches("^HTTP/1.1 204", answer)
      local head = pp.http_head(HEAD, 1024, 64)
      assert.are.same(head.headers, got.headers)
      for _, k in ipairs { "method", "url", "body", "http_version", "keep_alive" } do
        assert.are.equal(head[k], got[k], k)
      end
      assert.is_nil(head.remote) -- the server's own field
    end)

    it("returns nothing while the head is incomplete, and false, why, status past a limit", function()
      for cut = 0, FIRST - 1, 7 do assert.are.equal(0, select("#", pp.http_head(HEAD:sub(1, cut), 1024, 64))) end
      local ok, why, status = pp.http_head(HEAD, 1024, 2)
      assert.is_false(ok)
      assert.are.equal(413, status)
      assert.is_string(why)
      assert.has_error(function() pp.http_head(HEAD, 0) end)
    end)
  end)

  describe("socks", function()
    it("reads a greeting, and nothing of one cut short", function()
      local methods, used = pp.socks_greeting("\5\2\0\2rest")
      assert.are.equal("\0\2", methods)
      assert.are.equal(4, used)
      assert.are.equal(0, select("#", pp.socks_greeting("\5\2\0")))
      assert.are.same({ false, "not SOCKS version 5" }, { pp.socks_greeting("\4\1\0") })
      assert.are.same({ false, "SOCKS5 greeting offers no methods" }, { pp.socks_greeting("\5\0") })
    end)

    it("reads username and password, and refuses a NUL without echoing the secret", function()
      local secret = "Sub_pass1234-secret"
      local msg = "\1\4user" .. string.char(#secret) .. secret
      local user, pass, used = pp.socks_auth(msg .. "x")
      assert.are.same({ "user", secret, #msg }, { user, pass, used })
      for cut = 0, #msg - 1 do assert.are.equal(0, select("#", pp.socks_auth(msg:sub(1, cut)))) end
      local bad = "\1\4user" .. string.char(#secret + 1) .. secret .. "\0"
      local ok, why = pp.socks_auth(bad)
      assert.is_false(ok)
      assert.are.equal("NUL byte in SOCKS5 credentials", why)
      assert.is_nil(why:find(secret, 1, true))
      assert.are.same({ false, "not RFC 1929 username/password version 1" }, { pp.socks_auth("\5\4user") })
    end)

    it("reads requests for a domain, IPv4 and IPv6, and refuses a bad reserved byte", function()
      local req, used = pp.socks_request("\5\1\0\3\11example.com\1\187")
      assert.are.same({ cmd = 1, atyp = 3, host = "example.com", port = 443 }, req)
      assert.are.equal(18, used)
      assert.are.same({ cmd = 1, atyp = 1, host = "127.0.0.1", port = 80 },
        (pp.socks_request("\5\1\0\1\127\0\0\1\0\80")))
      assert.are.equal("::1", pp.socks_request("\5\1\0\4" .. ("\0"):rep(15) .. "\1\0\80").host)
      assert.are.equal(0, select("#", pp.socks_request("\5\1\0")))
      assert.are.same({ false, "SOCKS5 request: reserved byte is not 0" }, { pp.socks_request("\5\1\1\1") })
      assert.are.same({ false, "not SOCKS version 5" }, { pp.socks_request("\4") })
    end)
  end)
end)
