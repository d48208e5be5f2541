-- resi.notify against real receivers on loopback: a Python webhook receiver
-- that checks the signature with README.md's own verify(), resi.server
-- receivers checking the Slack, Discord and Telegram request shapes, and
-- faults (a 429 storm, a hanging receiver, a receiver that is down).
local notify = require "resi.notify"
local json = require "resi.json"
local sign = require "resi.notify.sign"
local http = require "resi.http"
local R = require "spec.support.notify_receivers"
local sockets = require "spec.support.sockets"
local proc = require "spec.support.proc"

-- A secret long enough to be masked, that must never be printed.
local SECRET = "whsec_S3cr3tV4lueThatMustNeverLeak0001"
local SLACK_TOKEN = "XoXoSlackTokenThatMustNeverLeak42"
local TG_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"

-- Decodes a request body as JSON (failing the spec when it is not).
local function body_json(req)
  local v = json.decode(req.body)
  assert.is_table(v)
  return v
end

describe("resi.notify", function()
  before_each(function() notify.reset() end)

  describe("webhook", function()
    local py, url

    setup(function()
      py = R.python("notify_webhook.py", { SECRET, R.root() .. "/README.md" })
      url = ("http://127.0.0.1:%d/hook"):format(py.port)
    end)
    teardown(function() py.stop() end)

    -- The requests the receiver accepted so far.
    local function accepted()
      local res = assert(http.get(("http://127.0.0.1:%d/events"):format(py.port)))
      return json.decode(res.body)
    end

    it("signs the body with HMAC-SHA256 so README's verify() accepts it, with an Idempotency-Key", function()
      local n = notify.new("webhook", { url = url, secret = SECRET })
      local ok, err = n:send { id = "evt-1", kind = "rotation", title = "2 tokens rotated", text = "see proxies.txt",
        fields = { rotated = 2, out = "proxies.txt" }, severity = "success" }
      assert.is_true(ok, err)
      local got = accepted()
      local last = got[#got]
      assert.equal("evt-1", last.headers["idempotency-key"])
      assert.equal("rotation", last.headers["x-resi-event"])
      assert.matches("^sha256=%x+$", last.headers["x-resi-signature"])
      local body = json.decode(last.body)
      assert.same({ "evt-1", "rotation", "2 tokens rotated", "success", "resi" },
        { body.id, body.kind, body.title, body.severity, body.source })
      assert.same({ { name = "out", value = "proxies.txt" }, { name = "rotated", value = "2" } }, body.fields)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", body.time)
      -- the signature is HMAC(secret, timestamp "." body), as resi's own verify agrees
      assert.is_true(sign.verify(SECRET, last.headers, last.body))
      assert.same({ false, "bad signature" }, { sign.verify("another secret", last.headers, last.body) })
      assert.equal(1, notify.stats().webhook.sent)
    end)

    it("is refused with a wrong secret: not retried, logged and counted as failed", function()
      local n = notify.new("webhook", { url = url, secret = "not the receiver's secret at all" })
      local before = #accepted()
      local log, res = R.capture_log(function() return { n:send { title = "wrong key" } } end)
      assert.is_false(res[1])
      assert.matches("status 401", res[2])
      assert.matches("bad signature", res[2])
      assert.equal(before, #accepted())
      assert.same({ sent = 0, failed = 1, retries = 0, pending = 0 }, notify.stats().webhook)
      assert.matches('"msg":"notification failed"', log, 1, true)
      assert.is_nil(log:find("not the receiver's secret", 1, true))
    end)

    it("a replayed request and a stale timestamp are rejected by the receiver", function()
      local n = notify.new("webhook", { url = url, secret = SECRET })
      assert.is_true((n:send { title = "to be replayed" }))
      local last = accepted()[#accepted()]
      local replay_headers = { ["Content-Type"] = "application/json",
        ["X-Resi-Timestamp"] = last.headers["x-resi-timestamp"], ["X-Resi-Signature"] = last.headers["x-resi-signature"] }
      local res = assert(http.post(url, { body = last.body, headers = replay_headers }))
      assert.equal(409, res.status)
      assert.equal("replayed", json.decode(res.body).error)
      -- correctly signed, but ten minutes old
      local old = math.floor(resi.now()) - 600
      res = assert(http.post(url, { body = last.body, headers = { ["Content-Type"] = "application/json",
        ["X-Resi-Timestamp"] = tostring(old), ["X-Resi-Signature"] = sign.signature(SECRET, old, last.body) } }))
      assert.equal(401, res.status)
      assert.equal("stale", json.decode(res.body).error)
      -- a body changed after signing
      local fresh = math.floor(resi.now())
      res = assert(http.post(url, { body = last.body:gsub("to be replayed", "tampered"), headers = {
        ["X-Resi-Timestamp"] = tostring(fresh), ["X-Resi-Signature"] = sign.signature(SECRET, fresh, last.body) } }))
      assert.equal(401, res.status)
    end)
  end)

  describe("slack", function()
    it("posts Block Kit: header, mrkdwn section escaped, fields, context; a fallback text", function()
      local r = R.http()
      local n = notify.new("slack", { url = r.url .. "/services/T000/B000/" .. SLACK_TOKEN })
      local ok, err = n:send { kind = "low_balance", title = "Balance <low> & falling", text = "pool *a* < 2 GB",
        fields = { pool = "walmart_premium", gb = "1.50" }, severity = "warning" }
      r.close()
      assert.is_true(ok, err)
      local req = r.requests[1]
      assert.equal("POST", req.method)
      assert.equal("/services/T000/B000/" .. SLACK_TOKEN, req.path)
      assert.matches("^application/json", req.headers["content-type"])
      local p = body_json(req)
      assert.equal("Balance &lt;low&gt; &amp; falling: pool *a* &lt; 2 GB", p.text)
      local types = {}
      for i, b in ipairs(p.blocks) do types[i] = b.type end
      assert.same({ "header", "section", "section", "context" }, types)
      assert.same({ type = "plain_text", text = "Balance <low> & falling", emoji = true }, p.blocks[1].text)
      assert.same({ type = "mrkdwn", text = "pool *a* &lt; 2 GB" }, p.blocks[2].text)
      assert.same({ { type = "mrkdwn", text = "*gb*\n1.50" }, { type = "mrkdwn", text = "*pool*\nwalmart_premium" } },
        p.blocks[3].fields)
      assert.matches("warning · low_balance", p.blocks[4].elements[1].text)
    end)

    it("puts at most 10 fields in a section", function()
      local r = R.http()
      local fields = {}
      for i = 1, 23 do fields[i] = { name = "f" .. i, value = i } end
      assert.is_true((notify.new("slack", { url = r.url .. "/s" }):send { title = "many", fields = fields }))
      r.close()
      local counts = {}
      for _, b in ipairs(body_json(r.requests[1]).blocks) do if b.fields then counts[#counts + 1] = #b.fields end end
      assert.same({ 10, 10, 3 }, counts)
    end)
  end)

  describe("discord", function()
    it("posts one embed with title, escaped description, colour, fields, timestamp; mentions off; takes 204", function()
      local r = R.http(function() return { status = 204, body = "" } end)
      local n = notify.new("discord", { url = r.url .. "/api/webhooks/123/" .. SLACK_TOKEN, username = "resi bot" })
      local ok, err = n:send { kind = "job_failed", title = "job rotate failed", text = "**boom** @everyone",
        fields = { { name = "job", value = "rotate" }, { name = "attempts", value = 3 } }, severity = "error",
        time = 1774764000 }
      r.close()
      assert.is_true(ok, err)
      local p = body_json(r.requests[1])
      assert.equal("resi bot", p.username)
      assert.same({}, p.allowed_mentions.parse)
      assert.equal(1, #p.embeds)
      local e = p.embeds[1]
      assert.equal("job rotate failed", e.title)
      assert.equal("\\*\\*boom\\*\\* @everyone", e.description)
      assert.equal(0xE74C3C, e.color)
      assert.equal("2026-03-29T06:00:00Z", e.timestamp)
      assert.same({ { name = "job", value = "rotate", inline = true }, { name = "attempts", value = "3", inline = true } },
        e.fields)
      assert.equal("resi · error · job_failed", e.footer.text)
    end)
  end)

  describe("telegram", function()
    it("calls sendMessage with the chat id, HTML parse mode and the text escaped", function()
      local r = R.http(function() return { json = { ok = true, result = { message_id = 7 } } } end)
      local n = notify.new("telegram", { token = TG_TOKEN, chat_id = "-1001234567890", api_url = r.url })
      local ok, err = n:send { kind = "rotation", title = "<b>rotated</b> & done", text = "a < b",
        fields = { token = "tok_1" }, severity = "info" }
      r.close()
      assert.is_true(ok, err)
      local req = r.requests[1]
      assert.equal("/bot" .. TG_TOKEN .. "/sendMessage", req.path)
      local p = body_json(req)
      assert.equal(-1001234567890, p.chat_id)
      assert.equal("HTML", p.parse_mode)
      assert.is_true(p.link_preview_options.is_disabled)
      local lines = {}
      for l in (p.text .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
      assert.equal("<b>&lt;b&gt;rotated&lt;/b&gt; &amp; done</b>", lines[1])
      assert.equal("a &lt; b", lines[3])
      -- a field named like a secret is masked unless include_credentials
      assert.equal("<b>token</b>: tok_…", lines[5])
    end)

    it("treats {ok:false} as a failure and honours parameters.retry_after on a 429", function()
      local r = R.http(function(_, n)
        if n == 1 then
          return { status = 429, json = { ok = false, error_code = 429, description = "Too Many Requests: retry after 1",
            parameters = { retry_after = 1 } } }
        end
        return { json = { ok = true, result = {} } }
      end)
      local n = notify.new("telegram", { token = TG_TOKEN, chat_id = "42", api_url = r.url })
      assert.is_true((n:send { title = "after a pause" }))
      r.close()
      assert.equal(2, #r.requests)
      assert.is_true(r.times[2] - r.times[1] >= 0.95, ("retried after %.3fs"):format(r.times[2] - r.times[1]))
      assert.equal(42, body_json(r.requests[2]).chat_id)
    end)
  end)

  describe("faults", function()
    it("a 429 storm: every event arrives, Retry-After and Slack's 1/s are honoured", function()
      local storm = 3
      local r = R.http(function(_, n)
        if n <= storm then return { status = 429, headers = { ["Retry-After"] = "1" }, body = "rate_limited" } end
        return { status = 200, body = "ok" }
      end)
      local n = notify.new("slack", { url = r.url .. "/services/storm" })
      local tasks = {}
      for i = 1, 4 do tasks[i] = resi.spawn(function() return n:send { title = "event " .. i, id = "e" .. i } end) end
      for i = 1, 4 do assert.is_true((tasks[i]:wait())) end
      r.close()
      local titles = {}
      for i = storm + 1, #r.requests do titles[#titles + 1] = body_json(r.requests[i]).blocks[1].text.text end
      table.sort(titles)
      assert.same({ "event 1", "event 2", "event 3", "event 4" }, titles) -- zero lost, none twice
      for i = 2, #r.times do
        local gap = r.times[i] - r.times[i - 1]
        assert.is_true(gap >= 0.95, ("request %d came %.3fs after the previous one"):format(i, gap))
      end
      assert.equal(4, notify.stats().slack.sent)
      assert.equal(storm, notify.stats().slack.retries)
    end)

    it("a hanging receiver: send returns on time, the event is retried and arrives once", function()
      local release = false
      local r = R.http(function(req, n)
        if n == 1 then
          local t0 = resi.monotonic()
          while not release and resi.monotonic() - t0 < 5 do resi.sleep(0.05) end
          return { status = 200, body = "too late" }
        end
        return { status = 200, body = "ok" }
      end)
      local n = notify.new("webhook", { url = r.url .. "/hook", secret = SECRET, timeout = 0.5, wait = 0.2 })
      local t0 = resi.monotonic()
      local ok, err = n:send { id = "hang-1", title = "while the receiver hangs" }
      local took = resi.monotonic() - t0
      assert.is_false(ok)
      assert.equal("pending", err)
      assert.is_true(took < 0.4, ("send held its caller %.3fs"):format(took))
      assert.is_true(n:flush(10))
      release = true
      r.close()
      assert.equal(2, #r.requests)
      assert.equal("hang-1", r.requests[1].headers["idempotency-key"])
      assert.equal("hang-1", r.requests[2].headers["idempotency-key"])
      assert.same({ sent = 1, failed = 0, retries = 1, pending = 0 }, notify.stats().webhook)
    end)

    it("a receiver down for the whole run: the caller goes on, the failure is logged and counted", function()
      local port = sockets.closed_port()
      local n = notify.new("slack", { url = ("http://127.0.0.1:%d/services/%s"):format(port, SLACK_TOKEN),
        attempts = 3, wait = 5 })
      local t0 = resi.monotonic()
      local log, res = R.capture_log(function() return { n:send { title = "nobody listens" } } end)
      assert.is_true(resi.monotonic() - t0 < 5)
      assert.is_false(res[1])
      assert.matches("connect", res[2])
      assert.same({ sent = 0, failed = 1, retries = 2, pending = 0 }, notify.stats().slack)
      local line
      for l in log:gmatch("[^\n]+") do if l:find('"notification failed"', 1, true) then line = json.decode(l) end end
      assert.is_table(line)
      assert.equal("slack", line.target)
      assert.equal(3, line.attempts)
      assert.is_nil(log:find(SLACK_TOKEN, 1, true))
      assert.is_nil(res[2]:find(SLACK_TOKEN, 1, true))
    end)

    it("never raises, even for something that is not an event", function()
      local n = notify.new("slack", { url = "http://127.0.0.1:9/x" })
      local _, res = R.capture_log(function() return { n:send("not a table") } end)
      assert.is_false(res[1])
      assert.matches("not an event", res[2])
      _, res = R.capture_log(function() return { n:send { title = "x", severity = "panic" } } end)
      assert.matches("severity must be", res[2])
    end)
  end)

  describe("fan-out and configuration", function()
    it("from_config sends one event to every target it names; nil when it names none", function()
      local a, b = R.http(), R.http(function() return { status = 204, body = "" } end)
      local n = notify.from_config { slack = { url = a.url .. "/s" }, discord = { url = b.url .. "/d" }, wait = 5 }
      assert.equal(2, #n:targets())
      assert.is_true((n:send { title = "to both" }))
      a.close(); b.close()
      assert.equal(1, #a.requests)
      assert.equal(1, #b.requests)
      assert.is_nil(notify.from_config {})
      assert.has_error(function() notify.from_config { slak = {} } end)
    end)

    it("from_env builds the targets RESI_NOTIFY_* configure, secrets read from NAME_FILE", function()
      local dir = R.tmpdir()
      local r = R.http()
      local f = assert(io.open(dir .. "/slack_url", "w"))
      f:write(r.url .. "/services/" .. SLACK_TOKEN .. "\n")
      f:close()
      local script = [[
        local n = require("resi.notify").from_env()
        print(tostring(n))
        print(require("resi.repl.pretty").render(n))
        print(n:send{title = "from the environment"})
      ]]
      local p = proc.resi({ "-e", script }, { env = { "RESI_NOTIFY_SLACK_URL_FILE=" .. dir .. "/slack_url",
        "RESI_NOTIFY_SLACK_URL=", "RESI_NOTIFY_WEBHOOK_URL=", "RESI_NOTIFY_DISCORD_URL=", "RESI_NOTIFY_TELEGRAM_TOKEN=",
        "RESI_NOTIFY_SMTP_URL=" } })
      r.close()
      proc.run { "rm", "-r", dir }
      assert.equal(0, p.status, p.stderr)
      assert.matches("resi.notify(slack http://127.0.0.1:" .. r.srv.port .. "/…)", p.stdout, 1, true)
      assert.matches("true", p.stdout)
      assert.equal(1, #r.requests)
      assert.is_nil((p.stdout .. p.stderr):find(SLACK_TOKEN, 1, true))
      local none = proc.resi({ "-e", "print(require('resi.notify').from_env())" }, { env = { "RESI_NOTIFY_SLACK_URL=",
        "RESI_NOTIFY_WEBHOOK_URL=", "RESI_NOTIFY_DISCORD_URL=", "RESI_NOTIFY_TELEGRAM_TOKEN=", "RESI_NOTIFY_SMTP_URL=" } })
      assert.equal("nil\n", none.stdout)
    end)

    it("names a bad option without its value; refuses plain http off loopback", function()
      local ok, err = pcall(notify.new, "webhook", { url = "https://example.com/hook" })
      assert.is_false(ok)
      assert.matches("webhook: secret is required", err)
      ok, err = pcall(notify.new, "slack", { url = "http://hooks.example.com/services/" .. SLACK_TOKEN })
      assert.is_false(ok)
      assert.matches("must be https://", err)
      assert.is_nil(err:find(SLACK_TOKEN, 1, true))
      ok, err = pcall(notify.new, "pager", {})
      assert.matches("unknown target kind pager", err)
      ok, err = pcall(notify.new, "slack", { url_env = "RESI_SPEC_NOT_SET_ANYWHERE" })
      assert.matches("credential RESI_SPEC_NOT_SET_ANYWHERE is not set", err)
    end)

    it("withholds credentials unless include_credentials = true", function()
      local r = R.http(function() return { status = 204, body = "" } end)
      local creds = { "http://user1:s3cretpass@gw.example.com:8000" }
      local off = notify.new("webhook", { url = r.url .. "/h", secret = SECRET })
      local on = notify.new("webhook", { url = r.url .. "/h", secret = SECRET, include_credentials = true })
      assert.is_true((off:send { title = "rotated", text = "see http://u:pw0rd@gw.example.com:1", credentials = creds }))
      assert.is_true((on:send { title = "rotated", credentials = creds }))
      r.close()
      local a, b = body_json(r.requests[1]), body_json(r.requests[2])
      assert.is_nil(a.credentials)
      assert.equal(1, a.withheld)
      assert.equal("see http://u:…@gw.example.com:1", a.text)
      assert.is_nil(r.requests[1].body:find("s3cretpass", 1, true))
      assert.same(creds, b.credentials)
    end)
  end)

  describe("metrics and the CLI", function()
    it("resi.metrics.notify exports the counters", function()
      local reg = require("resi.metrics").new_registry()
      require("resi.metrics.notify").register(reg)
      local r = R.http()
      local n = notify.new("slack", { url = r.url .. "/m" })
      n:send { title = "one" }
      r.close()
      local text = reg:render()
      assert.matches('resi_notify_sent_total{target="slack"} 1\n', text, 1, true)
      assert.matches('resi_notify_failed_total{target="slack"} 0\n', text, 1, true)
      assert.matches("# TYPE resi_notify_pending gauge", text, 1, true)
    end)

    it("resi notify test TARGET sends a test event and prints the answer", function()
      local r = R.http(function() return { status = 200, body = "ok" } end)
      local env = { "RESI_NOTIFY_SLACK_URL=" .. r.url .. "/services/" .. SLACK_TOKEN }
      local p = proc.resi({ "notify", "test", "slack", "--title", "hello from the spec" }, { env = env })
      local down = proc.resi({ "notify", "test", "webhook" }, { env = {
        "RESI_NOTIFY_WEBHOOK_URL=http://127.0.0.1:" .. sockets.closed_port() .. "/h", "RESI_NOTIFY_WEBHOOK_SECRET=" .. SECRET } })
      local unset = proc.resi({ "notify", "test", "discord" }, { env = { "RESI_NOTIFY_DISCORD_URL=" } })
      r.close()
      assert.equal(0, p.status, p.stderr)
      assert.equal(("slack http://127.0.0.1:%d/…: delivered (status 200: ok, 1 attempt)\n"):format(r.srv.port), p.stdout)
      assert.equal("hello from the spec", body_json(r.requests[1]).blocks[1].text.text)
      assert.equal(1, down.status)
      assert.matches("FAILED", down.stdout)
      assert.equal(2, unset.status)
      assert.matches("discord: url is required", unset.stderr)
      for _, out in ipairs { p.stdout, p.stderr, down.stdout, down.stderr } do
        assert.is_nil(out:find(SLACK_TOKEN, 1, true))
        assert.is_nil(out:find(SECRET, 1, true))
      end
    end)
  end)
end)
