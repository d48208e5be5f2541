-- resi.proxylist's streaming paths (issue 17): load reads a file in chunks
-- into the list (reader:pump), list:format(fmt, file) and list:save write
-- without a string of the whole text, list:entries() reads through one
-- reused view, and the parser's "clean credentials" mark lets the writer
-- skip checks only where they cannot fail.
local proxylist = require "resi.proxylist"
local files = require "spec.support.files"

describe("resi.proxylist streaming", function()
  local dir
  before_each(function() dir = files.dir("resi-plstream") end)
  after_each(function() files.remove_dir(dir) end)

  -- Writes text to a file in dir and returns its path.
  local function write(name, text) return files.write(dir, name, text) end

  -- Reads a whole file.
  local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
  end

  it("load reads a file bigger than a chunk, a line cut across chunks included", function()
    local lines = {}
    for i = 1, 40000 do lines[i] = ("gw.example.net:%d:user-session-%06d:pw%d"):format(1000 + i % 50000, i, i) end
    local text = table.concat(lines, "\n") .. "\n"
    assert.is_true(#text > 1024 * 1024) -- more than one 1 MiB chunk
    local list = proxylist.load(write("big.txt", text), { format = "list" })
    assert.equal(40000, #list)
    assert.equal(0, #list.errors)
    assert.same({ scheme = "http", host = "gw.example.net", port = 1001, user = "user-session-000001", pass = "pw1" },
      list[1])
    assert.same({ scheme = "http", host = "gw.example.net", port = 1000 + 40000 % 50000, user = "user-session-040000",
      pass = "pw40000" }, list[40000])
    assert.equal(text, list:format("list")) -- every entry kept, in order (hosts shared in the arena)
  end)

  it("load reports rejected lines with their line numbers, never their text", function()
    local list = proxylist.load(write("bad.txt", "h:1:u:p\nh:99999:u:s3cretpw\n\nh:2\n"))
    assert.equal(2, #list)
    assert.equal(1, #list.errors)
    assert.equal(2, list.errors[1].line)
    assert.is_nil(list.errors[1].reason:find("s3cretpw", 1, true))
    assert.is_nil(list.errors[1].text:find("s3cretpw", 1, true))
  end)

  it("format writes to a file what it returns as a string", function()
    local list = proxylist.parse("h:1:u:p\nsocks5://a:b@[::1]:2\nx.y:3\n")
    for _, fmt in ipairs(proxylist.formats) do
      if fmt ~= "proxychains" then
        local path = dir .. "/out." .. fmt
        local f = assert(io.open(path, "wb"))
        assert.is_true(list:format(fmt, f))
        f:close()
        assert.equal(list:format(fmt), read(path))
      end
    end
    local f = assert(io.open(dir .. "/closed", "wb"))
    f:close()
    assert.has_error(function() list:format("url", f) end, "resi.proxylist: format to a closed file")
  end)

  it("format to a file raises naming the entry the format cannot carry, never its credentials", function()
    local list = proxylist.from { { host = "h", port = 1, user = "u", pass = "ok" },
      { host = "h2", port = 2, user = "a:b", pass = "s3cretpw" } }
    local f = assert(io.open(dir .. "/x", "wb"))
    local ok, err = pcall(list.format, list, "list", f)
    f:close()
    assert.is_false(ok)
    assert.equal("resi.proxylist: entry 2 (h2:2): the list format cannot carry a ':' in the username (use url or json)",
      err)
    assert.is_nil(err:find("s3cretpw", 1, true))
  end)

  it("save streams to a temp file, renames it, and leaves the old file on a bad entry (sync or not)", function()
    local path = dir .. "/saved.txt"
    local list = proxylist.parse("h:1:u:p\nh:2:v:q\n")
    assert.is_true(list:save(path, "userpass"))
    assert.equal("u:p@h:1\nv:q@h:2\n", read(path))
    assert.is_true(list:save(path, "list", { sync = false }))
    assert.equal("h:1:u:p\nh:2:v:q\n", read(path))
    local bad = proxylist.from { { host = "h", port = 1, user = "a:b" } }
    assert.has_error(function() bad:save(path, "list", { sync = false }) end,
      "resi.proxylist: entry 1 (h:1): the list format cannot carry a ':' in the username (use url or json)")
    assert.equal("h:1:u:p\nh:2:v:q\n", read(path))
    local left = {}
    for name in io.popen("ls " .. dir):lines() do left[#left + 1] = name end
    assert.same({ "saved.txt" }, left) -- no temp file left behind
    assert.has_error(function() list:save(path, "list", 5) end, "resi.proxylist: options must be a table")
  end)

  it("entries() walks every entry through one view, fields read as list[i] gives them", function()
    local list = proxylist.parse("h:1:u:p\nsocks5://a:b@[::1]:2\nx.y:3\n")
    local seen, views = {}, {}
    for i, p in list:entries() do
      seen[i] = { scheme = p.scheme, host = p.host, port = p.port, user = p.user, pass = p.pass }
      views[p] = true
      assert.same(list[i], p:copy())
    end
    assert.same({ list[1], list[2], list[3] }, seen)
    local n = 0
    for _ in pairs(views) do n = n + 1 end
    assert.equal(1, n) -- the same view at every step
    local step, state, start = list:entries()
    local _, p = step(state, start)
    assert.equal("resi.proxylist.entry 1 (http://h:1)", tostring(p)) -- no credentials
    assert.has_error(function() p.host = "x" end, "resi.proxylist: an entry view is read-only (p:copy() gives a table)")
    assert.is_nil(p.nosuchfield)
    local count = 0
    for _ in proxylist.parse(""):entries() do count = count + 1 end
    assert.equal(0, count)
  end)

  it("keeps rejecting credentials the line formats cannot carry, whatever form they were read in", function()
    -- a DEL or a control byte in a list line's username: read, but not writable as list or userpass
    for _, user in ipairs { "us\127er", "us\1er" } do
      local list = proxylist.parse("h:1:" .. user .. ":p\n", { format = "list" })
      assert.equal(1, #list)
      assert.equal(user, list[1].user)
      assert.has_error(function() list:format("list") end,
        "resi.proxylist: entry 1 (h:1): the list format cannot carry spaces or control characters in credentials "
          .. "(use url or json)")
      assert.equal("http://us%" .. ("%02X"):format(user:byte(3)) .. "er:p@h:1\n", list:format("url"))
    end
    -- a URL's decoded username may hold ':' and spaces
    local list = proxylist.parse("http://a%3Ab%20c:p@h:1\n")
    assert.equal("a:b c", list[1].user)
    assert.has_error(function() list:format("userpass") end,
      "resi.proxylist: entry 1 (h:1): the userpass format cannot carry a ':' in the username (use url or json)")
    -- clean lines convert as before, through the converter too
    local out = proxylist.convert("h:1:user-x:p@ss:w\n", { from = "list", to = "userpass" })
    assert.equal("user-x:p@ss:w@h:1\n", out)
  end)
end)
