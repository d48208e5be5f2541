-- resi.notify's email target against a real SMTP server (Debian's
-- python3-aiosmtpd, spec/support/notify_smtp.py): the spec reads the
-- message the server received, headers and body; AUTH, STARTTLS with a
-- certificate the client verifies, and refusals.
local notify = require "resi.notify"
local json = require "resi.json"
local email = require "resi.notify.email"
local R = require "spec.support.notify_receivers"
local proc = require "spec.support.proc"
local uv = require "luv"

local USER, PASSWORD = "resi-mailer", "SmtpPassw0rdThatMustNeverLeak"

-- The headers (name lower-cased -> value, folded lines joined) and body of a message.
local function parse_message(text)
  local head, body = text:match("^(.-)\r\n\r\n(.*)$")
  assert.is_string(head, "no blank line between headers and body")
  local headers = {}
  for line in (head:gsub("\r\n[ \t]+", " ") .. "\r\n"):gmatch("(.-)\r\n") do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    headers[name:lower()] = value
  end
  return headers, body
end

-- The nth message the server in dir received: headers, body, envelope.
local function received(dir, n)
  local text = assert(R.read(("%s/%d.eml"):format(dir, n)), "no message " .. n)
  local headers, body = parse_message(text)
  return headers, body, json.decode(assert(R.read(("%s/%d.json"):format(dir, n))))
end

describe("resi.notify email", function()
  local dir, plain, tls_server, cert

  setup(function()
    dir = R.tmpdir()
    assert(uv.fs_mkdir(dir .. "/plain", 448))
    assert(uv.fs_mkdir(dir .. "/tls", 448))
    cert = dir .. "/cert.pem"
    local gen = proc.run { "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", dir .. "/key.pem", "-out", cert }
    assert.equal(0, gen.status, gen.stderr)
    plain = R.python("notify_smtp.py", { dir .. "/plain", USER, PASSWORD })
    tls_server = R.python("notify_smtp.py", { dir .. "/tls", USER, PASSWORD, cert, dir .. "/key.pem" })
  end)
  teardown(function()
    plain.stop()
    tls_server.stop()
    proc.run { "rm", "-r", dir }
  end)
  before_each(function() notify.reset() end)

  -- Options for the plain (loopback, no STARTTLS) server.
  local function plain_opts(extra)
    local o = { url = ("smtp://127.0.0.1:%d"):format(plain.port), from = "resi@example.com",
      to = "ops@example.com, oncall@example.org", username = USER, password = PASSWORD }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  it("delivers a plain-text mail with Date, Message-ID, From, To, Subject; the server reads it back", function()
    local n = notify.new("email", plain_opts())
    local ok, err = n:send { id = "rot-7", kind = "rotation", title = "2 tokens rotated", text = "New list: proxies.txt",
      fields = { rotated = 2, retired = 1 }, severity = "success", time = 1774764000 }
    assert.is_true(ok, err)
    local h, body, env = received(dir .. "/plain", 1)
    assert.matches("^%a%a%a, %d%d %a%a%a %d%d%d%d %d%d:%d%d:%d%d %+0000$", h.date)
    assert.equal("<rot-7.1774764000@example.com>", h["message-id"])
    assert.equal("resi@example.com", h.from)
    assert.equal("ops@example.com, oncall@example.org", h.to)
    assert.equal("[resi] 2 tokens rotated", h.subject)
    assert.equal("text/plain; charset=utf-8", h["content-type"])
    assert.equal("1.0", h["mime-version"])
    assert.equal("rotation", h["x-resi-event"])
    assert.matches("2 tokens rotated\r\n\r\nNew list: proxies.txt\r\n\r\nretired: 1\r\nrotated: 2\r\n", body, 1, true)
    assert.matches("severity: success | event: rotation | 2026-03-29T06:00:00Z | id rot-7", body, 1, true)
    assert.equal("resi@example.com", env.mail_from)
    assert.same({ "ops@example.com", "oncall@example.org" }, env.rcpt_tos)
    assert.equal(USER, env.login)
    assert.equal(1, notify.stats().email.sent)
  end)

  it("encodes a UTF-8 subject (RFC 2047) and body (quoted-printable)", function()
    local n = notify.new("email", plain_opts())
    assert.is_true((n:send { title = "Guthaben für Pool ü unter 2 GB", text = "Straße = " .. ("x"):rep(100) }))
    local h, body = received(dir .. "/plain", 2)
    local words = {}
    for w in h.subject:gmatch("=%?UTF%-8%?B%?([^?]*)%?=") do words[#words + 1] = require("resi.base64").decode(w) end
    assert.equal("[resi] Guthaben für Pool ü unter 2 GB", table.concat(words))
    assert.equal("quoted-printable", h["content-transfer-encoding"])
    assert.matches("Stra=C3=9Fe =3D x", body, 1, true)
    for line in body:gmatch("[^\r\n]+") do assert.is_true(#line <= 76, line) end
  end)

  it("a wrong password is refused by the server: final, logged and counted, the password never printed", function()
    local n = notify.new("email", plain_opts { password = "wrong-" .. PASSWORD })
    local log, res = R.capture_log(function() return { n:send { title = "with a bad password" } } end)
    assert.is_false(res[1])
    assert.matches("auth", res[2])
    assert.same({ sent = 0, failed = 1, retries = 0, pending = 0 }, notify.stats().email)
    assert.is_nil(log:find(PASSWORD, 1, true))
    assert.is_nil(res[2]:find(PASSWORD, 1, true))
    assert.is_nil(R.read(dir .. "/plain/3.eml"))
  end)

  it("STARTTLS with a verified certificate, the password from a credential", function()
    uv.os_setenv("RESI_SPEC_SMTP_PASSWORD", PASSWORD)
    local n = notify.new("email", { url = ("smtp://localhost:%d"):format(tls_server.port), from = "resi@example.com",
      to = { "ops@example.com" }, username = USER, password_env = "RESI_SPEC_SMTP_PASSWORD", tls = true, ca_file = cert })
    uv.os_unsetenv("RESI_SPEC_SMTP_PASSWORD")
    local ok, err = n:send { title = "over TLS" }
    assert.is_true(ok, err)
    local h, _, env = received(dir .. "/tls", 1)
    assert.equal("[resi] over TLS", h.subject)
    assert.is_true(env.tls)
    assert.equal(USER, env.login)
  end)

  it("requires STARTTLS when asked (and off loopback): a server without it gets nothing", function()
    local n = notify.new("email", plain_opts { tls = true })
    local _, res = R.capture_log(function() return { n:send { title = "must not go in clear" } } end)
    assert.is_false(res[1])
    assert.matches("%(tls%)", res[2])
    assert.is_nil(R.read(dir .. "/plain/3.eml"))
    -- a certificate the client cannot verify is refused too
    local unverified = notify.new("email", { url = ("smtp://localhost:%d"):format(tls_server.port), from = "resi@example.com",
      to = "ops@example.com", username = USER, password = PASSWORD })
    _, res = R.capture_log(function() return { unverified:send { title = "unverified" } } end)
    assert.is_false(res[1])
    assert.is_nil(R.read(dir .. "/tls/2.eml"))
    -- off loopback STARTTLS is the rule, and cannot be turned off
    local remote = notify.new("email", { url = "smtp://mail.example.com", from = "a@example.com", to = "b@example.com" })
    assert.is_true(remote._targets[1].require_tls)
    local ok, err = pcall(notify.new, "email", { url = "smtp://mail.example.com", tls = false, from = "a@example.com",
      to = "b@example.com" })
    assert.is_false(ok)
    assert.matches("tls = false is allowed for a loopback server only", err)
  end)

  it("builds headers that cannot be injected", function()
    assert.equal("a b", email.header_text("a\r\nb"))
    local ok, err = pcall(notify.new, "email", { url = "smtp://127.0.0.1:25", from = "x@example.com",
      to = "ops@example.com\r\nBcc: evil@example.com" })
    assert.is_false(ok)
    assert.matches("is not an address", err)
  end)
end)
