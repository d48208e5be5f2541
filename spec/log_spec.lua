-- resi.log: levels, text and JSON lines, and secrets masked in fields.
local log = require "resi.log"
local json = require "resi.json"
local secret = require "resi.secret"

-- Captures what log writes during fn.
local function capture(opts, fn)
  local path = os.tmpname()
  local f = assert(io.open(path, "w+"))
  local previous = log.configure { file = f, format = opts.format, level = opts.level or "debug" }
  fn()
  log.configure(previous) -- resi test's own capture, not stderr
  f:seek("set")
  local text = f:read("a")
  f:close()
  os.remove(path)
  return text
end

describe("resi.log", function()
  it("writes JSON lines with the message, level, time and fields", function()
    local out = capture({ format = "json" }, function()
      log.info("token rotated", { token = "tk_1234567890abcdefXYZW", id = 42, provider = "up" })
    end)
    local rec = json.decode(out)
    assert.equal("token rotated", rec.msg)
    assert.equal("info", rec.level)
    assert.equal(42, rec.id)
    assert.equal("up", rec.provider)
    assert.equal("tk_…XYZW", rec.token)
    assert.truthy(rec.ts:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"), rec.ts)
  end)

  it("writes text lines with sorted key=value fields", function()
    local out = capture({ format = "text" }, function()
      log.warn("slow", { b = 2, a = "x y", password = "hunter2hunter2" })
    end)
    assert.truthy(out:match("^%S+ WARN slow a=\"x y\" b=2 password=…\n$"), out)
    assert.falsy(out:find("hunter2", 1, true))
  end)

  it("drops messages below the level", function()
    local out = capture({ format = "text", level = "warn" }, function()
      log.debug("hidden")
      log.info("hidden too")
      log.error("shown")
    end)
    assert.falsy(out:find("hidden", 1, true))
    assert.truthy(out:find("ERROR shown", 1, true))
  end)

  -- Logs rec (msg and fields) in both formats; returns the text and JSON output.
  local function both(msg, fields)
    local text = capture({ format = "text" }, function() log.info(msg, fields) end)
    local jsonl = capture({ format = "json" }, function() log.info(msg, fields) end)
    return text, jsonl
  end

  -- Asserts that none of secrets and all of kept appear in each output.
  local function check(outputs, secrets, kept)
    for _, out in ipairs(outputs) do
      for _, s in ipairs(secrets) do assert.falsy(out:find(s, 1, true), s .. " leaked in " .. out) end
      for _, s in ipairs(kept) do assert.truthy(out:find(s, 1, true), s .. " missing in " .. out) end
    end
  end

  it("masks the password of a URL in any field, keeping user, host and path", function()
    local text, jsonl = both("proxy in use", { proxy = "http://user:PWsecret2@host.example:80/p", n = 1 })
    check({ text, jsonl }, { "PWsecret2" }, { "http://user:…@host.example:80/p" })
    assert.equal("http://user:…@host.example:80/p", json.decode(jsonl).proxy)
  end)

  it("masks a lone userinfo, a password with a space and a scheme-less user:pass@host", function()
    local text, jsonl = both("m", { a = "https://ghp_TOKENVALUE123@github.com/o/r.git",
      b = "http://bob:Leak PW9@host.example:80", c = "carol:Pa55word@5.6.7.8:8080" })
    check({ text, jsonl }, { "ghp_TOKENVALUE123", "Leak", "PW9", "Pa55word" },
      { "https://…@github.com/o/r.git", "http://bob:…@host.example:80", "carol:…@5.6.7.8:8080" })
  end)

  it("masks secret-named query and fragment parameters, any case, keeping the rest of the URL", function()
    local text, jsonl = both("m", { url = "https://x.example/v1/list?api_key=QSECRET&page=2",
      other = "https://x.example/cb?Password=PWquery1&Signature=SIGvalue1&api%5Fkey=QSECRET2&sort=asc#access_token=FRAGtok1" })
    check({ text, jsonl }, { "QSECRET", "PWquery1", "SIGvalue1", "QSECRET2", "FRAGtok1" },
      { "https://x.example/v1/list?api_key=…&page=2", "x.example/cb?Password=…&Signature=…&api%5Fkey=…&sort=asc#access_token=…" })
  end)

  it("masks all of an Authorization value, keeping only the scheme word", function()
    local basic = "Basic " .. require("resi.base64").encode("user:PWsecret2")
    local text, jsonl = both("m", { authorization = basic, headers = { ["Proxy-Authorization"] = "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
      Authorization = "RAWtoken0123456789 x" } })
    check({ text, jsonl }, { basic:sub(7), basic:sub(-4), "eyJ", "payload", "RAWtoken", "0123456789" }, { "Basic …", "Bearer …" })
    assert.equal("…", json.decode(jsonl).headers.Authorization)
  end)

  it("masks URLs and Authorization headers inside the message text", function()
    local text, jsonl = both("GET http://bob:PWmsg77@host.example:8080/path?token=TKmsg12 with Proxy-Authorization: Basic dXNlcjpQV21zZzc3")
    check({ text, jsonl }, { "PWmsg77", "TKmsg12", "dXNlcjpQV21zZzc3" },
      { "GET http://bob:…@host.example:8080/path?token=… with Proxy-Authorization: Basic …" })
  end)

  it("masks secrets in nested tables, lists and keys, and keeps json.array", function()
    local text, jsonl = both("m", { req = { headers = { authorization = "Basic QUJDOlBXbmVzdGVkMQ==" },
      proxies = { "http://u1:PWnested2@h1:1", "socks5://u2:PWnested3@h2:2" } }, pools = json.array(),
      by_url = { ["http://k:PWkey4@h3:3"] = 1 } })
    check({ text, jsonl }, { "QUJDOlBXbmVzdGVkMQ", "PWnested2", "PWnested3", "PWkey4" },
      { "http://u1:…@h1:1", "socks5://u2:…@h2:2", "http://k:…@h3:3" })
    assert.truthy(text:find("pools=[]", 1, true), text)
    assert.truthy(jsonl:find('"pools":[]', 1, true), jsonl)
  end)

  it("leaves text without credentials as it was", function()
    local plain = "see https://docs.example/a/b?page=2&q=x and mail bob@example.com; authorization failed"
    local text, jsonl = both(plain, { note = plain })
    assert.equal(plain, json.decode(jsonl).msg)
    assert.equal(plain, json.decode(jsonl).note)
    assert.truthy(text:find(plain, 1, true), text)
  end)

  it("writes a field JSON cannot hold as a note instead of raising", function()
    local text, jsonl = both("m", { f = print, sparse = { [1000000000] = 1 }, ok = 1 })
    local rec = json.decode(jsonl)
    assert.equal(1, rec.ok)
    assert.equal("<resi.json.encode: cannot encode a function at $>", rec.f)
    assert.truthy(rec.sparse:find("excessively sparse array", 1, true), rec.sparse)
    assert.truthy(text:find('sparse="<resi.json.encode: excessively sparse array', 1, true), text)
  end)

  it("rejects an unknown level", function()
    assert.has_error(function() log.configure { level = "loud" } end, "resi.log.configure: unknown level loud")
  end)
end)

describe("resi.secret", function()
  it("masks secrets, keeping a known prefix and the last four of long ones", function()
    assert.equal("rf_live_…x7kQ", secret.mask("rf_live_abcdefghijklx7kQ"))
    assert.equal("…", secret.mask("short"))
    assert.equal("…", secret.mask("hunter2hunter"))
  end)

  it("redacts nested secret fields and leaves the rest", function()
    local r = secret.redact { user = "bob", auth = { password = "p4ssw0rd-long-enough!", n = 1 }, api_key = "rf_live_0123456789abcdefgh" }
    assert.equal("bob", r.user)
    assert.equal(1, r.auth.n)
    assert.equal("…", r.auth.password)
    assert.equal("rf_live_…efgh", r.api_key)
  end)

  it("names secret fields by exact name, part of the name or suffix, any case", function()
    for _, name in ipairs { "password", "PWD", "Authorization", "proxy-authorization", "auth", "sig", "Signature",
      "x_amz_signature", "X-Api-Key", "client_secret", "session_token", "credential" } do
      assert.is_true(secret.is_secret_field(name), name)
    end
    for _, name in ipairs { "author", "host", "user", "username", "keys", "monkey", "page", 1 } do
      assert.is_false(secret.is_secret_field(name), tostring(name))
    end
  end)

  it("masks a field's value by its kind: passwords and credential headers whole", function()
    assert.equal("…", secret.mask_field("password", "rf_live_0123456789abcdefgh"))
    assert.equal("Basic …", secret.mask_field("Authorization", "Basic dXNlcjpwYXNzd29yZDEyMzQ1Njc4"))
    assert.equal("…", secret.mask_field("Proxy-Authorization", "dXNlcjpwYXNzd29yZDEyMzQ1Njc4"))
    assert.equal("…", secret.mask_field("cookie", "session=0123456789abcdefghij"))
    assert.equal("rf_live_…efgh", secret.mask_field("api_key", "rf_live_0123456789abcdefgh"))
  end)

  it("scrubs credentials by shape and leaves non-strings alone", function()
    assert.equal("https://u:…@[::1]:8080/p?Password=…", secret.scrub("https://u:PW@[::1]:8080/p?Password=xx"))
    assert.equal('{"Authorization":"Bearer …"}', secret.scrub('{"Authorization":"Bearer eyJabc.def"}'))
    assert.equal("authorization=…", secret.scrub("authorization=RAWtok"))
    assert.equal("https://x.example/@user?q=1", secret.scrub("https://x.example/@user?q=1"))
    assert.equal(42, secret.scrub(42))
  end)
end)
