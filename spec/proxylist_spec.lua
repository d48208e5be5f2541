-- resi.proxylist: the codec (every format, auto-detection, the edge cases of
-- anchors-ecosystem.md §3.4), lists and their operations, sticky sessions and
-- the `resi proxies` command line. The checker is in proxylist_check_spec.lua.
local proxylist = require "resi.proxylist"
local json = require "resi.json"
local tablex = require "pl.tablex"
local proc = require "spec.support.proc"
local files = require "spec.support.files"

-- The entries of a list as plain tables.
local function entries(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = e end
  return out
end

-- Parses one line and returns its entry (fails the test on an error).
local function one(line, opts)
  local list = proxylist.parse(line, opts)
  assert.equal(0, #list.errors, list.errors[1] and list.errors[1].reason)
  assert.equal(1, #list)
  return list[1]
end

-- Parses one line that must be rejected; returns the reason.
local function reject(line, opts)
  local list = proxylist.parse(line, opts)
  assert.equal(0, #list, line)
  assert.equal(1, #list.errors, line)
  assert.equal(1, list.errors[1].line)
  return list.errors[1].reason
end

describe("resi.proxylist", function()
  local dir
  setup(function() dir = files.dir("resi-proxylist") end)
  teardown(function() files.remove_dir(dir) end)

  describe("parsing", function()
    it("reads each format into {scheme, host, port, user, pass}", function()
      assert.same({ scheme = "http", host = "proxy.resifactory.net", port = 8000, user = "user-country-us", pass = "pw" },
        one "proxy.resifactory.net:8000:user-country-us:pw")
      assert.same({ scheme = "http", host = "proxy.resifactory.net", port = 8000, user = "user-s-abc", pass = "pass" },
        one "user-s-abc:pass@proxy.resifactory.net:8000")
      assert.same({ scheme = "socks5", host = "1.2.3.4", port = 1080, user = "u", pass = "p" },
        one "socks5://u:p@1.2.3.4:1080")
      assert.same({ scheme = "http", host = "188.226.89.87", port = 8080 }, one "188.226.89.87:8080")
      assert.same({ scheme = "http", host = "h.example", port = 1, user = "u" }, one "u@h.example:1")
      local e = one "h.example:3128"
      assert.equal("integer", math.type(e.port))
      assert.is_nil(e.user)
      assert.is_nil(e.pass)
    end)

    it("accepts every scheme, in any case, and refuses unknown ones", function()
      for _, s in ipairs { "http", "https", "socks4", "socks4a", "socks5", "socks5h" } do
        assert.equal(s, one(s:upper() .. "://h:1").scheme)
      end
      assert.equal("socks5", one("socks://h:1").scheme)
      assert.equal("unknown scheme (expected http, https, socks4, socks4a, socks5, socks5h)", reject "ftp://h:1")
      assert.equal("socks5", one("h:1", { scheme = "socks5" }).scheme)
      assert.has_error(function() proxylist.parse("h:1", { scheme = "gopher" }) end)
    end)

    it("handles IPv6 in brackets, with zones", function()
      assert.same({ scheme = "http", host = "2001:db8::1", port = 8080 }, one "[2001:DB8::1]:8080")
      assert.same({ scheme = "socks5", host = "fe80::1%eth0", port = 1080, user = "u", pass = "p" },
        one "socks5://u:p@[fe80::1%25eth0]:1080")
      assert.same({ scheme = "http", host = "::1", port = 1, user = "u", pass = "p" }, one "[::1]:1:u:p")
      assert.truthy(reject("[2001:db8::zz]:80"):find("not a valid IPv6 address", 1, true))
      assert.equal("'[' without ']' in the host", reject "[::1:80")
    end)

    it("checks ports and hosts", function()
      assert.equal("port is out of range 1-65535", reject "h:0")
      assert.equal("port is out of range 1-65535", reject "h:65536")
      assert.equal(65535, one("h:65535").port)
      assert.equal("port is not a number", reject("h:http", { format = "hostport" }))
      assert.equal("missing port", reject("http://h", { format = "url" }))
      assert.equal("host is an IPv4 address with a leading zero (octal or decimal?)", reject "010.1.1.1:80")
      assert.equal("host is not a valid IPv4 address (four numbers 0-255 and dots)", reject "1.2.3:80")
      assert.equal("host is not a valid host name (letters, digits, '-', '_' and '.' only)", reject "bad!host:80")
      assert.equal("host is not a valid host name (an empty label: '..', or a '.' at an end)", reject "a..b:80")
      assert.equal("host is not a valid host name (a label longer than 63 characters)", reject(("x"):rep(64) .. ".a:80"))
      assert.equal("example.com", one("EXAMPLE.Com:80").host)
    end)

    it("skips comments and blank lines, handles CRLF, a BOM, annotations and a missing last newline", function()
      local text = "\239\187\191# header\r\n\r\n; another comment\r\n  1.1.1.1:80   CZ-H-S -  \r\n\t2.2.2.2:81\r\n"
        .. "3.3.3.3:82|Ireland|Leinster|Dublin\n4.4.4.4:83"
      local list = proxylist.parse(text)
      assert.equal(0, #list.errors)
      assert.same({ "1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4" }, {
        list[1].host, list[2].host, list[3].host, list[4].host })
      assert.same({ 80, 81, 82, 83 }, { list[1].port, list[2].port, list[3].port, list[4].port })
    end)

    it("reports every rejected line with its number, masked text and reason", function()
      local text = "1.1.1.1:80\nIP address:Port CountryCode-Anonymity\nh:99999\n\n# c\nftp://x:1\nh:1:u:p\n"
      local list = proxylist.parse(text)
      assert.equal(2, #list)
      assert.same({
        { line = 2, text = "*** ***:*** ***", reason = "missing port (expected host:port:user:pass)" },
        { line = 3, text = "***:***", reason = "port is out of range 1-65535" },
        { line = 6, text = "***://***:***", reason = "unknown scheme (expected http, https, socks4, socks4a, socks5, socks5h)" },
      }, list.errors)
      local ok, err = pcall(proxylist.parse, text, { strict = true })
      assert.is_false(ok)
      assert.truthy(err:find("resi.proxylist: 3 rejected line(s): text line 2: missing port (expected "
        .. "host:port:user:pass); text line 3: port is out of range 1-65535; text line 6: unknown scheme "
        .. "(expected http, https, socks4, socks4a, socks5, socks5h)", 1, true), err)
    end)

    it("splits credentials where each format allows ':' and '@' in passwords", function()
      assert.same({ "u", "p:a@ss" }, { one("h:1:u:p:a@ss", { format = "list" }).user, one("h:1:u:p:a@ss", { format = "list" }).pass })
      local e = one "u:p:a@ss@h.example:1"
      assert.same({ "u", "p:a@ss", "h.example" }, { e.user, e.pass, e.host })
      e = one "socks5://us%40er:p%3Aa%40s%25s@h:1"
      assert.same({ "us@er", "p:a@s%s" }, { e.user, e.pass })
      assert.equal("bad percent-escape in the password (write % as %25)", reject "http://u:100%@h:1")
      assert.equal("bad percent-escape in the username (write % as %25)", reject "http://u%6q:p@h:1")
      assert.equal("a proxy URL has no path, query or fragment", reject "http://u:p@h:1/x")
      assert.equal(1, one("http://u:p@h:1/").port)
    end)

    it("auto-detects the other orders by where the valid port is", function()
      assert.same({ scheme = "http", host = "h.example", port = 8080, user = "user", pass = "pw" },
        one "user:pw:h.example:8080")
      assert.same({ scheme = "http", host = "h.example", port = 8080, user = "user", pass = "pw" },
        one "h.example:8080@user:pw")
    end)

    it("reads ResiFactory's JSON: the array and the whole response", function()
      local arr = '[{"host":"proxy.resifactory.net","port":8000,"username":"user-s-abc","password":"pa\\"ss\\u00e9"},'
        .. '\n {"host":"h2","port":"8001","username":null,"extra":{"x":[1,2]}}]'
      local list = proxylist.parse(arr)
      assert.same({
        { scheme = "http", host = "proxy.resifactory.net", port = 8000, user = "user-s-abc", pass = 'pa"ssé' },
        { scheme = "http", host = "h2", port = 8001 },
      }, entries(list))
      local wrapped = json.encode { proxies = { { host = "a.b", port = 1, username = "u", password = "p" } },
        count = 1, is_demo = false, format = "json" }
      assert.same({ { scheme = "http", host = "a.b", port = 1, user = "u", pass = "p" } },
        entries(proxylist.parse(wrapped, { format = "json" })))
    end)

    it("reads proxychains lines (type host port [user [pass]]) and says what is wrong with one", function()
      local text = "# proxychains.conf [ProxyList]\nsocks5 192.168.67.78 1080 lamer secret\n"
        .. "http\t10.0.0.1\t8080\nSOCKS4  fe80::1%eth0  9  u\nsocks5 [::1] 1080 u p:a@ss\n"
        .. "raw 1.2.3.4 80\nsocks5 h 1080 u p extra\nsocks5 h 99999\n"
      local list = proxylist.parse(text)
      assert.same({
        { scheme = "socks5", host = "192.168.67.78", port = 1080, user = "lamer", pass = "secret" },
        { scheme = "http", host = "10.0.0.1", port = 8080 },
        { scheme = "socks4", host = "fe80::1%eth0", port = 9, user = "u" },
        { scheme = "socks5", host = "::1", port = 1080, user = "u", pass = "p:a@ss" },
      }, entries(list))
      assert.same({
        { line = 6, text = "raw *** ***", reason = "proxy type 'raw' is a direct connection, not a proxy" },
        { line = 7, text = "socks5 *** *** *** *** ***",
          reason = "a field after the password (expected TYPE HOST PORT [USER [PASS]])" },
        { line = 8, text = "socks5 *** ***", reason = "port is out of range 1-65535" },
      }, list.errors)
      -- the explicit format reads nothing else, and says what the first field is not (never quoting it)
      assert.equal("unknown proxy type (the first field holds a ':': a host:port line? expected TYPE HOST PORT "
        .. "[USER [PASS]])", reject("h.example:1", { format = "proxychains" }))
      assert.equal("unknown proxy type (expected TYPE HOST PORT [USER [PASS]], TYPE http, socks4 or socks5)",
        reject("gopher h.example 1", { format = "proxychains" }))
      -- prose that starts like a type is still only a rejected line
      assert.equal(1, #proxylist.parse("Socks5 proxies below: enjoy").errors)
    end)

    it("reads a list or userpass answer, whose proxies is one string of lines", function()
      -- what POST /proxies returns for format list (the default) and userpass, saved whole
      local answer = json.encode { proxies = "proxy.resifactory.net:8000:user-country-us:p@ss\r\n"
        .. "user-b:pw@proxy.resifactory.net:8001\nnot a proxy\n\n", count = 2, country = "us", is_demo = false,
        format = "list" }
      local list = proxylist.parse(answer)
      assert.same({
        { scheme = "http", host = "proxy.resifactory.net", port = 8000, user = "user-country-us", pass = "p@ss" },
        { scheme = "http", host = "proxy.resifactory.net", port = 8001, user = "user-b", pass = "pw" },
      }, entries(list))
      assert.equal(1, #list.errors)
      assert.same({ 1, "*** *** ***" }, { list.errors[1].line, list.errors[1].text })
      assert.truthy(list.errors[1].reason:find('^"proxies" line 3: '), list.errors[1].reason)
      -- fed a byte at a time, the converter gives the same
      local conv, out = proxylist.converter { to = "url" }, {}
      for i = 1, #answer do out[#out + 1] = conv:feed(answer:sub(i, i)) end
      out[#out + 1] = conv:finish()
      assert.equal(list:format("url"), table.concat(out))
    end)

    it("reports bad JSON objects by line and stops at a syntax error", function()
      local text = '[\n{"host":"a","port":1},\n{"host":"b"},\n{"host":"c","port":70000},\n{"host":"d","port":2}\n'
      local list = proxylist.parse(text)
      assert.same({ "a", "d" }, { list[1].host, list[2].host })
      assert.equal(3, #list.errors)
      assert.same({ 3, 'missing "port"' }, { list.errors[1].line, list.errors[1].reason })
      assert.same({ 4, "port is out of range 1-65535" }, { list.errors[2].line, list.errors[2].reason })
      assert.equal('{"host":"c","port":70000}', list.errors[2].text)
      assert.same({ 6, "JSON: the document ends early" }, { list.errors[3].line, list.errors[3].reason })
      list = proxylist.parse('[{"host":"a","port":1} {"host":"b","port":2}]')
      assert.equal(1, #list)
      assert.equal("JSON: expected ',' or ']' between proxies", list.errors[1].reason)
    end)

    it("gives the same result whatever the chunk boundaries", function()
      local text = "\239\187\191# c\r\nh.example:1:u:p\r\nsocks5://a:b@[::1]:2\nbad\n" .. ("x"):rep(70000)
        .. "\n5.5.5.5:5"
      local whole = proxylist.parse(text)
      assert.equal(3, #whole)
      assert.same({ 4, 5 }, { whole.errors[1].line, whole.errors[2].line })
      assert.equal("line longer than 65536 bytes", whole.errors[2].reason)
      for _, size in ipairs { 1, 2, 3, 7, 64, 4096 } do
        local conv = proxylist.converter { to = "url" }
        local out, errs = {}, {}
        for i = 1, #text, size do
          local o, e = conv:feed(text:sub(i, i + size - 1))
          out[#out + 1] = o
          for _, x in ipairs(e or {}) do errs[#errs + 1] = x.line end
        end
        local o, e, count = conv:finish()
        out[#out + 1] = o
        for _, x in ipairs(e or {}) do errs[#errs + 1] = x.line end
        assert.equal(whole:format("url"), table.concat(out), "chunk size " .. size)
        assert.same({ 4, 5 }, errs)
        assert.equal(3, count)
      end
      local js = whole:format("json")
      for _, size in ipairs { 1, 5, 33 } do
        local conv = proxylist.converter { to = "list" }
        local out = {}
        for i = 1, #js, size do out[#out + 1] = conv:feed(js:sub(i, i + size - 1)) end
        out[#out + 1] = conv:finish()
        assert.equal(whole:format("list"), table.concat(out), "json chunk size " .. size)
      end
    end)

    it("reads text that comes in pieces into one list (proxylist.reader)", function()
      local text = "h.example:1:u:p\nbad\nsocks5://a:b@[::1]:2\n5.5.5.5:5"
      local whole = proxylist.parse(text, { scheme = "socks4" })
      assert.equal(3, #whole)
      for _, size in ipairs { 1, 3, 64 } do
        local r = proxylist.reader { scheme = "socks4" }
        for i = 1, #text, size do assert.equal(0, select("#", r:feed(text:sub(i, i + size - 1)))) end
        local list, errors, count = r:finish()
        assert.same(entries(whole), entries(list), "chunk size " .. size)
        assert.equal(list.errors, errors)
        assert.same({ 2, "***" }, { errors[1].line, errors[1].text })
        assert.equal(3, count)
      end
      local r = proxylist.reader { format = "json" }
      r:feed('[{"host":"a",')
      r:feed('"port":1}]')
      assert.same({ { scheme = "http", host = "a", port = 1 } }, entries((r:finish())))
      assert.has_error(function() r:feed("x") end, "resi.proxylist: the reader is finished")
      assert.has_error(function() proxylist.reader { format = "yaml" } end)
    end)
  end)

  describe("formatting", function()
    local tricky = {
      { scheme = "http", host = "proxy.resifactory.net", port = 8000, user = "user-country-us-session-x", pass = "pw" },
      { scheme = "http", host = "h.example", port = 1, user = "u", pass = "p:a@s#s;w" },
      { scheme = "http", host = "1.2.3.4", port = 65535 },
      { scheme = "http", host = "2001:db8::1", port = 80, user = "v6", pass = "" },
      { scheme = "http", host = "h", port = 2, user = "only-user" },
      { scheme = "http", host = "h", port = 3, user = "u@x", pass = "%41" },
    }

    it("writes each format", function()
      local list = proxylist.from { tricky[1], tricky[2], tricky[4] }
      assert.equal("proxy.resifactory.net:8000:user-country-us-session-x:pw\nh.example:1:u:p:a@s#s;w\n[2001:db8::1]:80:v6:\n",
        list:format("list"))
      assert.equal("user-country-us-session-x:pw@proxy.resifactory.net:8000\nu:p:a@s#s;w@h.example:1\nv6:@[2001:db8::1]:80\n",
        list:format("userpass"))
      assert.equal("http://user-country-us-session-x:pw@proxy.resifactory.net:8000\n"
        .. "http://u:p%3Aa%40s%23s%3Bw@h.example:1\nhttp://v6:@[2001:db8::1]:80\n", list:format("url"))
      assert.equal("proxy.resifactory.net:8000\nh.example:1\n[2001:db8::1]:80\n", list:format("hostport"))
      assert.equal('[\n{"host":"proxy.resifactory.net","port":8000,"username":"user-country-us-session-x","password":"pw"},\n'
        .. '{"host":"h.example","port":1,"username":"u","password":"p:a@s#s;w"},\n'
        .. '{"host":"2001:db8::1","port":80,"username":"v6","password":""}\n]\n', list:format("json"))
      assert.equal("[]\n", proxylist.from({}):format("json"))
      assert.equal("http proxy.resifactory.net 8000 user-country-us-session-x pw\nhttp h.example 1 u p:a@s#s;w\n",
        proxylist.from({ tricky[1], tricky[2] }):format("proxychains"))
      assert.equal("socks5 h 1\nsocks4 ::1 2 u\n", proxylist.from({ { scheme = "socks5h", host = "h", port = 1 },
        { scheme = "socks4a", host = "::1", port = 2, user = "u" } }):format("proxychains"))
      assert.equal('[\n{"scheme":"socks5h","host":"h","port":1}\n]\n',
        proxylist.from({ { scheme = "socks5h", host = "h", port = 1 } }):format("json"))
    end)

    it("round-trips parse -> format -> parse for every format", function()
      local list = proxylist.from(tricky)
      for _, fmt in ipairs { "list", "userpass", "url", "json" } do
        local text = list:format(fmt)
        local back = proxylist.parse(text, { format = fmt })
        assert.equal(0, #back.errors, fmt)
        assert.same(entries(list), entries(back), fmt)
        assert.equal(text, back:format(fmt), fmt)
      end
      local socks = proxylist.from { { scheme = "socks5", host = "h", port = 1, user = "a:b", pass = "c d\n" } }
      for _, fmt in ipairs { "url", "json" } do
        assert.same(entries(socks), entries(proxylist.parse(socks:format(fmt), { format = fmt })), fmt)
      end
      -- formats without a scheme: the scheme comes back from opts.scheme
      local s5 = proxylist.from { { scheme = "socks5", host = "h", port = 1, user = "u", pass = "p" } }
      assert.same(entries(s5), entries(proxylist.parse(s5:format("list"), { format = "list", scheme = "socks5" })))
      local pc = proxylist.from { tricky[1], tricky[2], tricky[3], tricky[5], tricky[6],
        { scheme = "socks5", host = "::1", port = 3, user = "a:b", pass = "p" } }
      local back = proxylist.parse(pc:format("proxychains"), { format = "proxychains" })
      assert.equal(0, #back.errors)
      assert.same(entries(pc), entries(back))
      local hp = proxylist.from { { host = "h", port = 1 }, { host = "::1", port = 2 } }
      assert.same(entries(hp), entries(proxylist.parse(hp:format("hostport"), { format = "hostport" })))
    end)

    it("says which entry a format cannot carry, and why", function()
      local list = proxylist.from { tricky[1], { host = "h", port = 1, user = "a:b", pass = "p" } }
      assert.has_error(function() list:format("list") end,
        "resi.proxylist: entry 2 (h:1): the list format cannot carry a ':' in the username (use url or json)")
      assert.has_error(function() proxylist.from({ { host = "h", port = 1, user = "u", pass = "with space" } }):format("userpass") end,
        "resi.proxylist: entry 1 (h:1): the userpass format cannot carry spaces or control characters in credentials (use url or json)")
      assert.has_error(function() proxylist.from({ { host = "h", port = 1, user = "#u", pass = "p" } }):format("userpass") end,
        "resi.proxylist: entry 1 (h:1): the userpass format cannot carry a username starting with '#' (use url or json)")
      for _, case in ipairs {
        { { scheme = "https", host = "h", port = 1 }, "the proxychains format has no https proxies (http, socks4, socks5 only)" },
        { tricky[4], "the proxychains format cannot carry an empty password (use url or json)" },
        { { host = "h", port = 1, user = "u", pass = "p q" },
          "the proxychains format cannot carry spaces or control characters in credentials (use url or json)" },
      } do
        assert.has_error(function() proxylist.from({ case[1] }):format("proxychains") end,
          ("resi.proxylist: entry 1 (%s): %s"):format(case[1].host:find(":") and "[" .. case[1].host .. "]:80" or "h:1", case[2]))
      end
      local text, errs, count = proxylist.convert("http://a%3Ab:p@h:1\nh:2\n", { to = "userpass" })
      assert.equal("h:2\n", text)
      assert.equal(1, count)
      assert.same({ { line = 1, text = "http://***:***@***:***",
        reason = "the userpass format cannot carry a ':' in the username (use url or json)" } }, errs)
    end)
  end)

  describe("lists", function()
    it("are compact userdata that build entry tables on access", function()
      local lines = {}
      for i = 1, 100000 do lines[i] = ("10.%d.%d.%d:%d:user%d:pass%d"):format(i >> 16, (i >> 8) & 255, i & 255, 1000 + i % 60000, i, i) end
      local text = table.concat(lines, "\n")
      lines = nil
      collectgarbage()
      local before = collectgarbage("count")
      local list = proxylist.parse(text)
      collectgarbage()
      local grown_kb = collectgarbage("count") - before
      assert.equal("userdata", type(list))
      assert.equal(100000, #list)
      assert.truthy(grown_kb < 64, grown_kb) -- 100,000 tables would take megabytes of Lua heap
      assert.same({ scheme = "http", host = "10.1.134.160", port = 1000 + 100000 % 60000, user = "user100000", pass = "pass100000" },
        list[100000])
      assert.is_nil(list[0])
      assert.is_nil(list[100001])
      assert.not_equal(list[1], list[1]) -- a fresh table each time
      assert.equal("resi.proxylist.list (100000 entries)", tostring(list))
      assert.has_error(function() list[1] = {} end)
    end)

    it("dedupe keeps the first of each proxy, after normalisation", function()
      local list = proxylist.parse("H.example:1:u:p\nhttp://u:p@h.example:1\nh.example:1:u:q\nsocks5://u:p@h.example:1\nh.example:1:u:p\n")
      local d = list:dedupe()
      assert.equal(5, #list)
      assert.equal("http://u:p@h.example:1\nhttp://u:q@h.example:1\nsocks5://u:p@h.example:1\n", d:format("url"))
    end)

    it("filter, map, chunk, sample and shuffle return new lists", function()
      local list = proxylist.parse("a:1\nb:2\nc:3\nd:4\ne:5\n")
      assert.equal("b:2\nd:4\n", list:filter(function(e) return e.port % 2 == 0 end):format("hostport"))
      assert.equal("a:2:u:p\nc:4:u:p\ne:6:u:p\n", list:map(function(e, i)
        if i % 2 == 0 then return nil end
        e.port, e.user, e.pass = e.port + 1, "u", "p"
        return e
      end):format("list"))
      local chunks = list:chunk(2)
      assert.equal(3, #chunks)
      assert.same({ 2, 2, 1 }, { #chunks[1], #chunks[2], #chunks[3] })
      assert.equal("e:5\n", chunks[3]:format("hostport"))
      local s1, s2 = list:shuffle(42), list:shuffle(42)
      assert.equal(s1:format("hostport"), s2:format("hostport"))
      assert.equal(5, #s1)
      assert.equal(5, #s1:dedupe())
      local orders = {}
      for seed = 1, 20 do orders[list:shuffle(seed):format("hostport")] = true end
      local distinct = 0
      for _ in pairs(orders) do distinct = distinct + 1 end
      assert.truthy(distinct > 5, distinct)
      local sample = list:sample(3, 7)
      assert.equal(3, #sample)
      assert.equal(3, #sample:dedupe())
      assert.equal(5, #list:sample(10))
      assert.equal("a:1\nb:2\nc:3\nd:4\ne:5\n", list:format("hostport")) -- unchanged
      assert.has_error(function() list:chunk(0) end, "resi.proxylist: chunk expects a size (an integer >= 1)")
      assert.has_error(function() list:map(function() return { host = "h" } end) end,
        "resi.proxylist: entry 1: port must be an integer 1-65535")
    end)

    it("save writes atomically and leaves the old file when it cannot", function()
      local path = dir .. "/saved.txt"
      local list = proxylist.parse("h:1:u:p\nsocks5://u:p@h:2\n")
      assert.is_true(list:save(path, "url"))
      assert.equal("http://u:p@h:1\nsocks5://u:p@h:2\n", io.open(path):read("a"))
      local bad = proxylist.from { { host = "h", port = 1, user = "a:b" } }
      assert.has_error(function() bad:save(path, "list") end)
      assert.equal("http://u:p@h:1\nsocks5://u:p@h:2\n", io.open(path):read("a"))
      assert.has_error(function() list:save(dir .. "/no/such/dir/x.txt") end)
      local leftovers = proc.run({ "sh", "-c", "ls " .. dir .. " | grep -c tmp || true" }).stdout
      assert.equal("0\n", leftovers)
      local back = proxylist.load(path)
      assert.equal(2, #back)
      assert.equal("socks5", back[2].scheme)
    end)
  end)

  describe("sticky", function()
    -- Asserts that every entry of list has the fields of want and that its
    -- field `key` matches pattern, whose capture (the session id) is unique
    -- in the list; returns the ids in order.
    local function session_ids(list, want, key, pattern)
      local ids, seen = {}, {}
      for i, e in ipairs(list) do
        for k, v in pairs(want) do assert.equal(v, e[k], k) end
        local id = e[key]:match(pattern)
        assert.truthy(id, e[key])
        assert.is_nil(seen[id], id)
        seen[id], ids[i] = true, id
      end
      return ids
    end

    it("builds Oxylabs usernames with unique session ids", function()
      local list = proxylist.sticky { provider = "oxylabs", username = "acme_1", password = "Pw#1", country = "us",
        city = "Los Angeles", state = "California", sessions = 500, minutes = 30 }
      assert.equal(500, #list)
      local ids = session_ids(list, { host = "pr.oxylabs.io", port = 7777, pass = "Pw#1" }, "user",
        "^customer%-acme_1%-cc%-US%-city%-los_angeles%-st%-us_california%-sessid%-(%w+)%-sesstime%-30$")
      for _, id in ipairs(ids) do assert.truthy(id:match("^[a-z0-9]+$") and #id == 12, id) end
      local plain = proxylist.sticky { provider = "oxylabs", username = "u", password = "p", sessions = 1 }
      assert.truthy(plain[1].user:match("^customer%-u%-sessid%-[a-z0-9]+$"), plain[1].user)
    end)

    it("enforces each dialect's limits", function()
      local base = { provider = "oxylabs", username = "u", password = "p", sessions = 1 }
      -- base with extra's fields added or replaced
      local function with(extra) return tablex.merge(base, extra, true) end
      assert.has_error(function() proxylist.sticky(with { minutes = 1441 }) end,
        "resi.proxylist.sticky: minutes must be 1..1440, got 1441")
      assert.has_error(function() proxylist.sticky(with { minutes = 0 }) end)
      assert.has_error(function() proxylist.sticky(with { city = "new-york" }) end)
      assert.has_error(function() proxylist.sticky(with { country = "usa" }) end)
      assert.has_error(function() proxylist.sticky(with { username = "has-dash" }) end)
      assert.has_error(function() proxylist.sticky(with { provider = "nope" }) end)
      assert.has_error(function() proxylist.sticky(with { sessions = 0 }) end)
      assert.has_error(function() proxylist.sticky { provider = "unknownproxies", username = "abcd1234",
        password = "pw123456", pool = "tickets-us-s", port = 14004, sessions = 1, minutes = 5 } end,
        "resi.proxylist.sticky: unknownproxies documents no session lifetime parameter: leave minutes out")
      assert.has_error(function() proxylist.sticky { provider = "template", template = "u-{session}", host = "h",
        port = 1, sessions = 20, charset = "digits", length = 1 } end)
    end)

    it("builds UnknownProxies session passwords", function()
      local list = proxylist.sticky { provider = "unknownproxies", username = "abcd1234", password = "pw123456",
        pool = "tickets-us-s", port = 14004, sessions = 50, seed = 9 }
      assert.equal(50, #session_ids(list, { host = "tickets-us-s.reserve2.resi.unknownproxies.com", port = 14004,
        user = "abcd1234" }, "pass", "^pw123456%-([1-9]%d%d%d%d%d%d%d%d)$"))
      local again = proxylist.sticky { provider = "unknownproxies", username = "abcd1234", password = "pw123456",
        pool = "tickets-us-s", port = 14004, sessions = 50, seed = 9 }
      assert.equal(list:format("url"), again:format("url"))
    end)

    it("refreshes the session ids of an existing list and keeps everything else", function()
      local oxy = proxylist.sticky { provider = "oxylabs", username = "bob_1", password = "pw", sessions = 2,
        country = "us", city = "new york", minutes = 30 }
      local up = proxylist.sticky { provider = "unknownproxies", username = "abcd1234", password = "pw123456",
        pool = "tickets-us-s", port = 14004, sessions = 2 }
      local rotating = { host = "pr.oxylabs.io", port = 7777, user = "customer-bob_1-cc-US", pass = "pw" }
      local other = { host = "h", port = 1, user = "u", pass = "p-123456789" } -- not an unknownproxies host
      local list = proxylist.from { oxy[1], oxy[2], up[1], up[2], rotating, other }
      local fresh, n = proxylist.refresh(list)
      assert.equal(4, n)
      assert.equal(6, #fresh)
      for i = 1, 2 do
        local before = oxy[i].user:match("sessid%-(%w+)")
        local after = fresh[i].user:match("^customer%-bob_1%-cc%-US%-city%-new_york%-sessid%-(%w+)%-sesstime%-30$")
        assert.truthy(after, fresh[i].user)
        assert.equal(12, #after)
        assert.are_not.equal(before, after)
        assert.equal("pw", fresh[i].pass)
        local p_before, p_after = up[i].pass, fresh[i + 2].pass
        assert.truthy(p_after:match("^pw123456%-[1-9]%d%d%d%d%d%d%d%d$"), p_after)
        assert.are_not.equal(p_before, p_after)
        assert.equal(up[i].host, fresh[i + 2].host)
      end
      assert.are_not.equal(fresh[1].user, fresh[2].user)
      assert.same({ rotating.host, rotating.port, rotating.user, rotating.pass },
        { fresh[5].host, fresh[5].port, fresh[5].user, fresh[5].pass })
      assert.equal("p-123456789", fresh[6].pass)
      -- a new lifetime for Oxylabs sessions, added where there was none
      local longer = proxylist.refresh(proxylist.from { oxy[1],
        { host = "pr.oxylabs.io", port = 7777, user = "customer-bob_1-sessid-abc", pass = "pw" } }, { minutes = 90 })
      assert.truthy(longer[1].user:match("%-sesstime%-90$"), longer[1].user)
      assert.truthy(longer[2].user:match("^customer%-bob_1%-sessid%-%w+%-sesstime%-90$"), longer[2].user)
      assert.has_error(function() proxylist.refresh(list, { minutes = 5 }) end,
        "resi.proxylist.sticky: unknownproxies documents no session lifetime parameter: leave minutes out")
      assert.has_error(function() proxylist.refresh(proxylist.from { oxy[1] }, { minutes = 2000 }) end,
        "resi.proxylist.sticky: minutes must be 1..1440, got 2000")
      -- what is not an Oxylabs username is left alone
      for _, u in ipairs { "customer-a-cc", "customer-a--cc-US", "customer-a-cc-US-", "xcustomer-a-sessid-1" } do
        assert.is_nil(require("resi.proxylist.sticky").parse_oxylabs(u), u)
      end
    end)

    it("fills a generic template", function()
      local list = proxylist.sticky { provider = "template", template = "user-{country}-session-{session}-ttl-{minutes}",
        password_template = "pw_session-{session}", country = "de", host = "gw.example.com", port = 1000,
        sessions = 3, minutes = 15, max_minutes = 60, charset = "hex", length = 10, scheme = "socks5h" }
      for _, e in ipairs(list) do
        local id = e.user:match("^user%-de%-session%-(%x+)%-ttl%-15$")
        assert.truthy(id and #id == 10, e.user)
        assert.equal("pw_session-" .. id, e.pass)
        assert.equal("socks5h", e.scheme)
      end
      assert.has_error(function() proxylist.sticky { provider = "template", template = "u-{session}", host = "h",
        port = 1, sessions = 1, minutes = 90, max_minutes = 60 } end, "resi.proxylist.sticky: minutes must be 1..60, got 90")
      assert.has_error(function() proxylist.sticky { provider = "template", template = "u-{session}-{zone}", host = "h",
        port = 1, sessions = 1 } end, "resi.proxylist.sticky: template uses {zone}, which has no value")
    end)
  end)

  describe("resi proxies", function()
    -- Writes text to a file in dir; returns its path.
    local function write(name, text) return files.write(dir, name, text) end

    it("converts stdin to stdout and files to a file", function()
      local r = proc.resi({ "proxies", "convert", "--to", "userpass" }, { stdin = "h:1:u:p\r\nsocks5://a:b@h:2\n" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("u:p@h:1\na:b@h:2\n", r.stdout)
      assert.equal("", r.stderr)
      local a, b = write("a.txt", "h:1:u:p\nbad\n"), write("b.json", '[{"host":"j","port":2,"username":"x","password":"y"}]')
      local out = dir .. "/out.json"
      r = proc.resi { "proxies", "convert", "--to", "json", "-o", out, a, b }
      assert.equal(1, r.status)
      assert.equal("", r.stdout)
      assert.equal("resi proxies: " .. a .. ":2: missing port (expected host:port:user:pass)\n"
        .. "resi proxies: 2 entries written, 1 lines rejected\n", r.stderr)
      assert.same({ { host = "h", port = 1, username = "u", password = "p" }, { host = "j", port = 2, username = "x", password = "y" } },
        json.decode(io.open(out):read("a")))
    end)

    -- sticky lists and their refresh: spec/sticky_spec.lua
    it("dedupes lists", function()
      local r = proc.resi({ "proxies", "dedupe", "--from", "list" }, { stdin = "h:1:u:p\nH:1:u:p\nh:2\n" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("h:1:u:p\nh:2\n", r.stdout)
      assert.equal("resi proxies: 3 entries, 2 unique\n", r.stderr)
    end)

    it("has help and usage errors with exit status 2", function()
      for _, cmd in ipairs { "convert", "dedupe", "sticky", "refresh", "check" } do
        local r = proc.resi { "proxies", cmd, "--help" }
        assert.equal(0, r.status)
        assert.truthy(r.stdout:find("usage: resi proxies " .. cmd, 1, true), cmd)
      end
      assert.equal(0, proc.resi({ "proxies", "--help" }).status)
      local unknown = proc.resi { "proxies", "frobnicate" }
      assert.equal(1, unknown.stderr:find("resi proxies: unknown command 'frobnicate'\n\nusage: resi proxies COMMAND", 1,
        true), unknown.stderr)
      local after_dashes = proc.resi { "proxies", "convert", "--to", "url", "--", "--help" } -- a file, not the flag
      assert.equal(1, after_dashes.status)
      assert.equal("resi proxies: cannot read --help: No such file or directory\n", after_dashes.stderr)
      for _, args in ipairs {
        { "proxies" }, { "proxies", "frobnicate" }, { "proxies", "convert" }, { "proxies", "convert", "--to", "xml" },
        { "proxies", "convert", "--to", "url", "--bogus" }, { "proxies", "sticky", "--provider", "oxylabs" },
        { "proxies", "sticky", "--provider", "oxylabs", "--sessions", "2", "--minutes", "5000", "--username", "u" },
      } do
        local r = proc.resi(args, { stdin = "", env = { "RESI_PROXY_PASSWORD=p" } })
        assert.equal(2, r.status, table.concat(args, " ") .. ": " .. r.stderr)
        assert.truthy(#r.stderr > 0)
      end
    end)

    it("streams: memory stays bounded whatever the input size", function()
      local line = "proxy.resifactory.net:8000:user-country-us-session-abcdef12:secretpw\n"
      local big = line:rep(600000) -- 41 MB
      local r = proc.run({ "/usr/bin/time", "-f", "maxrss=%M", proc.resi_path(), "proxies", "convert", "--from", "list",
        "--to", "userpass", "-o", dir .. "/big.out" }, { stdin = big })
      assert.equal(0, r.status, r.stderr)
      local kb = tonumber(r.stderr:match("maxrss=(%d+)"))
      assert.truthy(kb and kb < 24 * 1024, r.stderr) -- well under the 41 MB input
      local f = io.open(dir .. "/big.out", "rb")
      assert.equal(#big, f:seek("end"))
      f:seek("set")
      assert.equal("user-country-us-session-abcdef12:secretpw@proxy.resifactory.net:8000\n", f:read("l") .. "\n")
      f:close()
    end)
  end)
  it("lower-cases and checks a host repeated on many lines the same way as a new one", function()
    local list = proxylist.parse("GW.Example.COM:1:u:p\nGW.Example.COM:2:u:p\ngw.example.com:3:u:p\nbad_host!:4:u:p\nGW.Example.COM:5:u:p\n", { format = "list" })
    assert.are.equal(4, #list)
    for i = 1, #list do assert.are.equal("gw.example.com", list[i].host) end
    assert.are.equal(5, list[4].port)
    assert.are.equal(1, #list.errors)
    assert.are.equal(4, list.errors[1].line)
  end)
end)
