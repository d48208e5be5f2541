-- resi.random: bytes, hex, strings over a charset and v4 UUIDs from the kernel's generator.
local random = require "resi.random"

-- How often each character of s occurs.
local function counts(s)
  local n = {}
  for c in s:gmatch(".") do n[c] = (n[c] or 0) + 1 end
  return n
end

describe("resi.random", function()
  it("gives n bytes, different each time", function()
    assert.equal(0, #random.bytes(0))
    assert.equal(32, #random.bytes(32))
    assert.equal(100000, #random.bytes(100000))
    assert.not_equal(random.bytes(16), random.bytes(16))
  end)

  it("writes n bytes as 2n lower-case hex digits", function()
    assert.equal("", random.hex(0))
    local h = random.hex(16)
    assert.equal(32, #h)
    assert.truthy(h:match("^[0-9a-f]+$"), h)
    assert.not_equal(h, random.hex(16))
  end)

  it("draws strings from the charset only (alphanumerics by default)", function()
    local s = random.string(1000)
    assert.equal(1000, #s)
    assert.truthy(s:match("^[A-Za-z0-9]+$"), s)
    local t = random.string(500, "xyz-")
    assert.equal(500, #t)
    assert.truthy(t:match("^[xyz%-]+$"), t)
    assert.equal("", random.string(0, "ab"))
    assert.equal(("q"):rep(9), random.string(9, "q"))
    assert.not_equal(random.string(24), random.string(24))
  end)

  it("draws each character of the charset about equally often", function()
    local n = counts(random.string(20000, "abc"))
    for _, c in ipairs { "a", "b", "c" } do
      -- 6667 expected, one standard deviation is ~67: 5% is five of them
      assert.truthy(math.abs(n[c] - 20000 / 3) < 20000 / 3 * 0.05, c .. ": " .. tostring(n[c]))
    end
  end)

  it("has no modulo bias: with 129 characters the last is as likely as the first", function()
    local set = {}
    for i = 0, 128 do set[#set + 1] = string.char(i) end
    local n = counts(random.string(20000, table.concat(set)))
    -- 155 expected for each (sd ~12); byte % 129 would give the last only ~78
    assert.truthy((n["\128"] or 0) > 115, "last: " .. tostring(n["\128"]))
    assert.truthy((n["\0"] or 0) < 195, "first: " .. tostring(n["\0"]))
  end)

  it("makes version 4 UUIDs, all distinct", function()
    local seen = {}
    for _ = 1, 1000 do
      local u = random.uuid()
      assert.truthy(u:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"), u)
      assert.equal(u:lower(), u)
      assert.is_nil(seen[u])
      seen[u] = true
    end
  end)

  it("refuses a bad count or charset, naming the function", function()
    assert.has_error(function() random.bytes(-1) end, "resi.random.bytes: expected a count >= 0, got -1")
    assert.has_error(function() random.hex(1.5) end, "resi.random.hex: expected a count >= 0, got 1.5")
    assert.has_error(function() random.string("x") end, "resi.random.string: expected a count >= 0, got x")
    assert.has_error(function() random.string(3, "") end, "resi.random.string: charset must be a string of 1 to 256 bytes")
    assert.has_error(function() random.string(3, ("x"):rep(257)) end,
      "resi.random.string: charset must be a string of 1 to 256 bytes")
  end)
end)
