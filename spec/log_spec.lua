-- resi.log: levels, text and JSON lines, and secrets masked in fields.
local log = require "resi.log"
local json = require "resi.json"
local secret = require "resi.secret"

-- Captures what log writes during fn.
local function capture(opts, fn)
  local path = os.tmpname()
  local f = assert(io.open(path, "w+"))
  log.configure { file = f, format = opts.format, level = opts.level or "debug" }
  fn()
  log.configure { file = io.stderr, level = "info" }
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
end)
