-- resi.proxylist: a rejected line never shows its password (DESIGN §9), and a
-- field after a proxy is read or rejected, never dropped. Every format, auto
-- mode, strict mode, list.errors and the `resi proxies` command line.
local proxylist = require "resi.proxylist"
local proc = require "spec.support.proc"
local files = require "spec.support.files"

local PASS = "Secr3tPass"
-- pieces of the password that a reason quoting part of a field would show
local PIECES = { PASS, "Secr3t", "cr3tPa", "3tPass" }

-- The piece of the password that s shows, or nil.
local function leak(s)
  for _, p in ipairs(PIECES) do
    if s:find(p, 1, true) then return p end
  end
  return nil
end

-- Asserts that s shows no piece of the password (what names where).
local function no_leak(s, what)
  local p = leak(s)
  assert(p == nil, ("%s shows %q: %s"):format(what, p, s))
end

-- Every order of the fields of a proxy joined by every pair of separators
-- (and the forms people write), so each format meets a password in every
-- column: the lines a wrong --from or a garbled file gives the parser.
local function garbled_lines()
  local fields = { "h.example", "8080", "user1", PASS }
  local seps = { ":", "@", " ", "\t", "://", "|" }
  local lines, seen = {}, {}
  local function add(l)
    if not seen[l] then
      seen[l] = true
      lines[#lines + 1] = l
    end
  end
  local function permute(a, k)
    if k > #a then
      for _, s1 in ipairs(seps) do
        for _, s2 in ipairs(seps) do
          for _, s3 in ipairs(seps) do add(a[1] .. s1 .. a[2] .. s2 .. a[3] .. s3 .. a[4]) end
        end
      end
      return
    end
    for i = k, #a do
      a[k], a[i] = a[i], a[k]
      permute(a, k + 1)
      a[k], a[i] = a[i], a[k]
    end
  end
  permute(fields, 1)
  for _, l in ipairs {
    "h.example:8080:user1:" .. PASS, "user1:" .. PASS .. "@h.example:8080", "http://user1:" .. PASS .. "@h.example:8080",
    "socks5 h.example 8080 user1 " .. PASS, "h.example:8080@user1:" .. PASS, "user1:" .. PASS .. ":h.example:8080",
    "http://user1:Secr3t Pass@h.example:8080", "user1:" .. PASS .. "@5.6.7.8:8080", "h.example:8080 user1 " .. PASS,
    "h.example:99999:user1:" .. PASS, "ftp://user1:" .. PASS .. "@h.example:8080", "user1:" .. PASS .. "@bad!host:8080",
    "h.example:8080:user1:" .. PASS .. " trailing", "[::1]:8080:user1:" .. PASS, "socks5 h.example 8080 user1 " .. PASS .. " x",
    PASS, PASS .. " h.example 8080", "raw h.example 8080 user1 " .. PASS, "http://user1:" .. PASS .. "@h.example:8080/path",
    "http://user1:" .. PASS .. "%zz@h.example:8080", "h.example:0:user1:" .. PASS,
  } do add(l) end
  return lines
end

local FORMATS = { "auto", "list", "userpass", "url", "hostport", "proxychains" }

describe("resi.proxylist and secrets", function()
  local dir
  setup(function() dir = files.dir("resi-plsecrets") end)
  teardown(function() files.remove_dir(dir) end)

  -- Writes text to a file in dir; returns its path.
  local function write(name, text) return files.write(dir, name, text) end

  describe("a rejected line's reason and text", function()
    local lines = garbled_lines()
    local text = table.concat(lines, "\n") .. "\n"

    it("never show the password, in any format or auto mode", function()
      assert.truthy(#lines > 1000, #lines)
      for _, fmt in ipairs(FORMATS) do
        local list = proxylist.parse(text, { format = fmt })
        assert.truthy(#list.errors > 100, fmt) -- the check below looks at many rejected lines
        for _, e in ipairs(list.errors) do
          no_leak(e.reason, fmt .. " line " .. e.line .. " (" .. lines[e.line] .. ") reason")
          no_leak(e.text, fmt .. " line " .. e.line .. " text")
          assert.truthy(#e.text > 0, lines[e.line])
        end
        -- the password really goes through the parser: accepted lines carry it
        local carried = 0
        for _, p in ipairs(list) do
          if p.pass == PASS then carried = carried + 1 end
        end
        if fmt ~= "hostport" then assert.truthy(carried > 0, fmt) end
      end
    end)

    it("never show the password in strict mode's error, from parse or load", function()
      local path = write("garbled.txt", text)
      for _, fmt in ipairs(FORMATS) do
        local ok, err = pcall(proxylist.parse, text, { format = fmt, strict = true })
        assert.is_false(ok, fmt)
        assert.truthy(tostring(err):find("rejected line(s)", 1, true), err)
        no_leak(tostring(err), fmt .. " strict parse error")
        ok, err = pcall(proxylist.load, path, { format = fmt, strict = true })
        assert.is_false(ok, fmt)
        assert.truthy(tostring(err):find(path .. " line ", 1, true), err)
        no_leak(tostring(err), fmt .. " strict load error")
      end
    end)

    it("never show the password on resi proxies' stderr", function()
      local path = write("garbled-cli.txt", text)
      for _, fmt in ipairs(FORMATS) do
        local r = proc.resi { "proxies", "convert", "--from", fmt, "--to", "url", "-o", dir .. "/out-" .. fmt .. ".txt", path }
        assert.equal(1, r.status, fmt .. ": " .. r.stderr)
        assert.truthy(select(2, r.stderr:gsub("\n", "")) > 100, fmt) -- one line per rejected line
        no_leak(r.stderr, "resi proxies convert --from " .. fmt .. " stderr")
        assert.equal("", r.stdout)
      end
    end)

    it("describe the fault by field, for the lines the issue found", function()
      local cases = {
        -- a userpass line read as list: the port field holds the password
        { "list", "user1:Pa55word@5.6.7.8:8080", "port is not a number (the field holds a '@': is the line "
          .. "user:pass@host:port?)", "Pa55word" },
        -- a list line read as proxychains: one field, credentials and all
        { "proxychains", "1.2.3.4:8080:user1:" .. PASS, "unknown proxy type (the first field holds a ':': a "
          .. "host:port line? expected TYPE HOST PORT [USER [PASS]])", PASS },
        -- a URL with a space in its password
        { "auto", "http://bob:Leak PW9@host:80", "whitespace inside a URL (write a space in a username or password "
          .. "as %20)", "Leak" },
        { "url", "http://bob:Leak PW9@host:80", "whitespace inside a URL (write a space in a username or password "
          .. "as %20)", "PW9" },
        -- a numeric password in the port column
        { "list", "user1:123456:h.example:8080", "port is out of range 1-65535", "123456" },
        -- a scheme-like password before "://"
        { "auto", "h.example:1:u:Pw://x", "unknown scheme (expected http, https, socks4, socks4a, socks5, socks5h)", "Pw" },
      }
      for _, c in ipairs(cases) do
        local list = proxylist.parse(c[2], { format = c[1] })
        assert.equal(0, #list, c[2])
        assert.equal(1, #list.errors, c[2])
        assert.equal(c[3], list.errors[1].reason)
        assert.falsy(list.errors[1].reason:find(c[4], 1, true), c[2])
        assert.falsy(list.errors[1].text:find(c[4], 1, true), list.errors[1].text)
      end
      -- not even the host is quoted: an unexpected separator puts the password there
      for _, line in ipairs { "h.example@user1|" .. PASS .. ":8080", "u:p@" .. PASS .. "!:80" } do
        assert.equal("host is not a valid host name (letters, digits, '-', '_' and '.' only)",
          proxylist.parse(line).errors[1].reason)
      end
    end)

    it("mask credentials in list.errors[i].text and keep the line's shape", function()
      local function text_of(line, opts) return proxylist.parse(line, opts).errors[1].text end
      assert.equal("***:***:***:***", text_of("user1:" .. PASS .. ":h.example:8080", { format = "list" }))
      assert.equal("http://***:*** ***@***:***", text_of "http://bob:Leak PW9@host:80")
      assert.equal("socks5 *** *** *** *** ***", text_of("socks5 h 1080 u " .. PASS .. " extra"))
      assert.equal("***:*** *** ***", text_of "host.example:8080 bob LeakPW3")
      assert.equal("***://***:***@***:***", text_of("ftp://u:" .. PASS .. "@h:1"))
      assert.equal("[::***]:***", text_of "[::zz]:80")
      -- JSON: keys, structure, host, port and scheme stay; credentials go
      local list = proxylist.parse('[{"host":"h.example","port":"x","username":"user1","password":"' .. PASS .. '"},\n'
        .. '{"scheme":"socks5","host":"b","port":1,"password":"' .. PASS .. '"}]')
      assert.same({
        { line = 1, text = '{"host":"h.example","port":"x","username":"***","password":"***"}', reason = "port is not a number" },
        { line = 2, text = '{"scheme":"socks5","host":"b","port":1,"password":"***"}', reason = "a password without a username" },
      }, list.errors)
      -- ResiFactory's "proxies" string: a rejected line inside it is masked too
      list = proxylist.parse('{"proxies":"h.example:8080:u:' .. PASS .. '\\nuser1:' .. PASS .. ':h.example:x\\n"}')
      assert.equal(1, #list)
      assert.equal(1, #list.errors)
      no_leak(list.errors[1].reason, "proxies string reason")
      no_leak(list.errors[1].text, "proxies string text")
      -- a converter's rejects (a format that cannot carry the entry) are masked the same way
      local _, errs = proxylist.convert("http://a%3Ab:" .. PASS .. "@h:1\n", { to = "list" })
      assert.same({ { line = 1, text = "http://***:***@***:***",
        reason = "the list format cannot carry a ':' in the username (use url or json)" } }, errs)
    end)
  end)

  describe("what follows a proxy on its line", function()
    it("is an annotation only when it is a comment or a free-proxy list's status columns", function()
      local text = table.concat({
        "1.1.1.1:80 # from the March list",
        "2.2.2.2:81\t; checked",
        "3.3.3.3:82 AR-N-S! +",
        "4.4.4.4:83   CZ-H-S -  ",
        "5.5.5.5:84 -N! -",
        "6.6.6.6:85 US-A",
        "u:p@7.7.7.7:86 # note with user:pass@ inside",
        "http://u:p@8.8.8.8:87 #",
        "9.9.9.9:88|Ireland|Leinster|Dublin",
      }, "\n")
      local list = proxylist.parse(text)
      assert.same({}, list.errors)
      assert.equal(9, #list)
      assert.same({ 80, 81, 82, 83, 84, 85, 86, 87, 88 }, { list[1].port, list[2].port, list[3].port, list[4].port,
        list[5].port, list[6].port, list[7].port, list[8].port, list[9].port })
      assert.same({ "u", "p" }, { list[7].user, list[7].pass })
      assert.is_nil(list[1].user)
    end)

    it("rejects host:port user pass (and any other field) with a reason that does not quote it", function()
      local cases = {
        { "host.example:8080 bob LeakPW3",
          "2 fields after the proxy (credentials? write host:port:user:pass; a note starts with '#')" },
        { "host.example:8080 LeakPW3", "1 field after the proxy (credentials? write host:port:user:pass; a note starts with '#')" },
        { "1.2.3.4:8080 elite LeakPW3 proxy",
          "3 fields after the proxy (credentials? write host:port:user:pass; a note starts with '#')" },
        { "h.example:8080:bob:pw LeakPW3", "1 field after the proxy (a note after a proxy starts with '#')" },
        { "http://bob:pw@h.example:8080 LeakPW3", "1 field after the proxy (a note after a proxy starts with '#')" },
        { "3.3.3.3:82 AR-N-S! + LeakPW3",
          "3 fields after the proxy (credentials? write host:port:user:pass; a note starts with '#')" },
        { "9.9.9.9:88|bob|pw LeakPW3", "1 field after the proxy (credentials? write host:port:user:pass; a note starts with '#')" },
      }
      for _, c in ipairs(cases) do
        local list = proxylist.parse(c[1])
        assert.equal(0, #list, c[1])
        assert.same({ { line = 1, text = list.errors[1] and list.errors[1].text, reason = c[2] } }, list.errors)
        assert.falsy(list.errors[1].text:find("LeakPW3", 1, true), list.errors[1].text)
      end
      -- the same in every explicit text format that reads a token
      for _, fmt in ipairs { "list", "userpass", "hostport", "url" } do
        local line = fmt == "url" and "http://host.example:8080 bob LeakPW3" or "host.example:8080 bob LeakPW3"
        local list = proxylist.parse(line, { format = fmt })
        assert.equal(0, #list, fmt)
        assert.equal("2 fields after the proxy (credentials? write host:port:user:pass; a note starts with '#')",
          list.errors[1] and list.errors[1].reason, fmt)
      end
      -- strict mode raises instead of reading the line without its credentials
      local ok, err = pcall(proxylist.parse, "host.example:8080 bob LeakPW3\n", { strict = true })
      assert.is_false(ok)
      assert.truthy(err:find("text line 1: 2 fields after the proxy", 1, true), err)
      assert.falsy(err:find("LeakPW3", 1, true), err)
    end)

    it("makes resi proxies convert exit 1 and say so instead of writing the proxy without its credentials", function()
      local r = proc.resi({ "proxies", "convert", "--to", "url" }, { stdin = "host.example:8080 bob LeakPW3\n" })
      assert.equal(1, r.status)
      assert.equal("", r.stdout)
      assert.equal("resi proxies: stdin:1: 2 fields after the proxy (credentials? write host:port:user:pass; a note "
        .. "starts with '#')\nresi proxies: 0 entries written, 1 lines rejected\n", r.stderr)
      -- written as the codec reads it, the same proxy converts with its credentials
      r = proc.resi({ "proxies", "convert", "--to", "url" }, { stdin = "host.example:8080:bob:LeakPW3 # was spaced\n" })
      assert.equal(0, r.status, r.stderr)
      assert.equal("http://bob:LeakPW3@host.example:8080\n", r.stdout)
      -- the issue's other lines, on the command line
      local two = write("two.txt", "h.example:1:u:p\nuser1:Pa55word@5.6.7.8:8080\n")
      r = proc.resi { "proxies", "convert", "--from", "list", "--to", "url", two }
      assert.equal(1, r.status)
      assert.equal("http://u:p@h.example:1\n", r.stdout)
      assert.equal("resi proxies: " .. two .. ":2: port is not a number (the field holds a '@': is the line "
        .. "user:pass@host:port?)\nresi proxies: 1 entries written, 1 lines rejected\n", r.stderr)
      r = proc.resi({ "proxies", "convert", "--from", "proxychains", "--to", "url" },
        { stdin = "1.2.3.4:8080:user1:" .. PASS .. "\n" })
      assert.equal(1, r.status)
      no_leak(r.stderr, "proxychains stderr")
      assert.truthy(r.stderr:find("stdin:1: unknown proxy type (the first field holds a ':'", 1, true), r.stderr)
    end)
  end)
end)
