-- resi.json: exact integers both ways, [] kept, errors that say where.
local json = require "resi.json"

describe("resi.json", function()
  it("round-trips integers exactly and writes them as digits", function()
    for _, n in ipairs { 0, -1, 123456789012345, 9007199254740992, 9007199254740993,
      math.maxinteger, math.mininteger, 5000000000 } do
      local text = json.encode(n)
      assert.equal(("%d"):format(n), text)
      local back = json.decode(text)
      assert.equal("integer", math.type(back))
      assert.equal(n, back)
    end
  end)

  it("decodes integers inside objects and arrays as integers", function()
    local doc = json.decode('{"dataUsage": 123456789012345, "list": [1, 2.5, -3, 1e3], "nested": {"n": [[7]]}}')
    assert.equal("integer", math.type(doc.dataUsage))
    assert.equal(123456789012345, doc.dataUsage)
    assert.equal("integer", math.type(doc.list[1]))
    assert.equal("float", math.type(doc.list[2]))
    assert.equal(-3, doc.list[3])
    assert.equal("float", math.type(doc.list[4])) -- 1e3 is written as a float
    assert.equal("integer", math.type(doc.nested.n[1][1]))
  end)

  it("keeps [] as [] and {} as {} through decode and encode", function()
    local text = '{"allowedPools":[],"meta":{},"nested":[[],{}]}'
    assert.equal(text, json.encode(json.decode(text), { sort_keys = true }))
    assert.is_true(json.is_array(json.decode(text).allowedPools))
    assert.is_false(json.is_array(json.decode(text).meta))
  end)

  it("marks arrays with json.array, empty or not", function()
    assert.equal("[]", json.encode(json.array()))
    assert.equal("{}", json.encode({}))
    assert.equal('{"allowedPools":[]}', json.encode({ allowedPools = json.array() }))
    assert.equal("[1,2]", json.encode(json.array { 1, 2 }))
    assert.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
  end)

  it("encodes null, booleans, strings with escapes and unicode", function()
    assert.equal('{"a":null}', json.encode({ a = json.null }))
    assert.equal(json.null, json.decode("null"))
    assert.equal('[true,false]', json.encode({ true, false }))
    assert.equal('"q\\"b\\\\n\\nt\\tc\\u0001é"', json.encode('q"b\\n\nt\tc\1é'))
    assert.equal("é😀", json.decode('"\\u00e9\\ud83d\\ude00"'))
  end)

  it("round-trips floats", function()
    for _, x in ipairs { 0.1, 1.5, -2.25, 1e300, 1 / 3, 123456.789 } do
      assert.equal(x, json.decode(json.encode(x)))
    end
  end)

  it("writes object keys sorted when asked and numeric keys as text", function()
    assert.equal('{"a":1,"b":2,"c":3}', json.encode({ c = 3, a = 1, b = 2 }, { sort_keys = true }))
    -- (a table of only positive integer keys is an array: see "sequences with holes")
    assert.equal('{"0":"z","1":"a","3":"c"}', json.encode({ [0] = "z", [1] = "a", [3] = "c" }, { sort_keys = true }))
  end)

  it("writes a sequence with holes as an array with null in each hole", function()
    assert.equal("[1,2,null,4]", json.encode({ 1, 2, nil, 4 }))
    assert.equal("[null,2]", json.encode({ nil, 2 }))
    assert.equal('["a",null,"c"]', json.encode({ [1] = "a", [3] = "c" }))
    assert.equal('{"list":[1,null,[null,null,5]]}', json.encode({ list = { 1, nil, { nil, nil, 5 } } }))
    -- it decodes back with json.null where the holes were
    local back = json.decode(json.encode({ 1, 2, nil, 4 }))
    assert.equal(json.null, back[3])
    assert.equal(4, back[4])
  end)

  it("drops a trailing nil (Lua keeps no length past it) and keeps a trailing json.null", function()
    assert.equal("[1]", json.encode({ 1, nil }))
    assert.equal("[1,null]", json.encode({ 1, json.null }))
    assert.equal("{}", json.encode({ nil, nil })) -- no keys at all: the empty table, an object
    assert.equal("[]", json.encode(json.array { nil, nil }))
  end)

  it("allows any holes up to index 10, then at most one per value, and raises beyond", function()
    assert.equal("[null,null,null,null,null,null,null,null,null,1]", json.encode({ [10] = 1 }))
    assert.equal("[1,null,3,null,5,null,7,null,9,null,11,null]",
      json.encode({ 1, nil, 3, nil, 5, nil, 7, nil, 9, nil, 11, [12] = json.null }))
    assert.equal("[1,null,3,null,5,null,7,null,9,null,11]", json.encode({ 1, nil, 3, nil, 5, nil, 7, nil, 9, nil, 11 }))
    assert.has_error(function() json.encode({ 1, nil, 3, nil, 5, nil, 7, nil, 9, nil, nil, nil, 13 }) end,
      "resi.json.encode: excessively sparse array (largest index 13, 6 values; use string keys for a map) at $")
    assert.has_error(function() json.encode({ [11] = 1 }) end,
      "resi.json.encode: excessively sparse array (largest index 11, 1 value; use string keys for a map) at $")
    assert.has_error(function() json.encode({ ids = { [1] = "a", [1000000000] = "b" } }) end,
      "resi.json.encode: excessively sparse array (largest index 1000000000, 2 values; use string keys for a map) at $.ids")
    -- a map keyed by ids is written with string keys
    assert.equal('{"1":"a","1000000000":"b"}', json.encode({ ["1"] = "a", ["1000000000"] = "b" }, { sort_keys = true }))
  end)

  it("writes tables with any key other than a positive integer as objects", function()
    assert.equal('{"1":1,"3":3,"x":true}', json.encode({ 1, nil, 3, x = true }, { sort_keys = true }))
    assert.equal('{"-1":"m","1":"a"}', json.encode({ [-1] = "m", "a" }, { sort_keys = true }))
    assert.equal('{"1":1,"1.5":2}', json.encode({ 1, [1.5] = 2 }, { sort_keys = true }))
    assert.equal('{"1":1,"3":3,"n":3}', json.encode(table.pack(1, nil, 3), { sort_keys = true }))
  end)

  it("applies the same rules to json.array and rejects a key that is not an index", function()
    assert.equal("[1,null,3]", json.encode(json.array { 1, nil, 3 }))
    assert.equal("[null,null,7]", json.encode(json.array { [3] = 7 }))
    assert.has_error(function() json.encode(json.array { [20] = 1 }) end,
      "resi.json.encode: excessively sparse array (largest index 20, 1 value; use string keys for a map) at $")
    assert.has_error(function() json.encode({ pools = json.array { "a", n = 1 } }) end,
      "resi.json.encode: json.array has a key that is not an index ('n') at $.pools")
    assert.has_error(function() json.encode(json.array { [0] = 1 }) end,
      "resi.json.encode: json.array has a key that is not an index ('0') at $")
    assert.has_error(function() json.encode(json.array { [true] = 1 }) end,
      "resi.json.encode: json.array has a key that is not an index (a boolean) at $")
  end)

  it("decodes escaped object keys", function()
    assert.equal(5, json.decode('{"k\\u0041":5}').kA)
    assert.equal("integer", math.type(json.decode('{"k\\u0041":5}').kA))
  end)

  it("gives the right keys from its key cache: alike keys, evictions, long, empty and escaped keys", function()
    -- "abcde" and "axcye" share length, first, middle and last byte: one cache slot
    for _ = 1, 3 do
      assert.same({ abcde = 1 }, json.decode('{"abcde":1}'))
      assert.same({ axcye = 2 }, json.decode('{"axcye":2}'))
    end
    -- far more distinct keys than the cache holds, twice over, each with its own value
    local parts = {}
    for i = 1, 2000 do parts[i] = ('"key_%d_%s":%d'):format(i, ("x"):rep(i % 40), i) end
    local text = "{" .. table.concat(parts, ",") .. "}"
    for _ = 1, 2 do
      local v = json.decode(text)
      local n = 0
      for k, x in pairs(v) do
        n = n + 1
        assert.equal(("key_%d_%s"):format(x, ("x"):rep(x % 40)), k)
      end
      assert.equal(2000, n)
    end
    local long = ("k"):rep(33)
    assert.same({ [long] = 1, [""] = 2, kA = 3, ["k\\"] = 4 },
      json.decode('{"' .. long .. '":1,"":2,"k\\u0041":3,"k\\\\":4}'))
    assert.same({ kA = 5 }, json.decode('{"kA":5}')) -- the same key unescaped, after its escaped form
  end)

  it("raises on values JSON cannot hold, naming where", function()
    assert.has_error(function() json.encode({ a = { b = { print } } }) end,
      "resi.json.encode: cannot encode a function at $.a.b[1]")
    assert.has_error(function() json.encode({ x = 0 / 0 }) end, "resi.json.encode: cannot encode NaN or infinity at $.x")
    local cycle = {}
    cycle.self = cycle
    local ok, err = pcall(json.encode, cycle)
    assert.is_false(ok)
    assert.truthy(err:find("nesting deeper than 1000", 1, true))
  end)

  it("names a bad key before a bad value, and paths are cut at 255 characters", function()
    assert.has_error(function() json.encode({ a = print, [true] = 1 }) end,
      "resi.json.encode: object keys must be strings or numbers at $")
    assert.has_error(function() json.encode({ outer = { { x = print, [print] = 2 } } }) end,
      "resi.json.encode: object keys must be strings or numbers at $.outer[1]")
    local deep, cur = {}, nil
    cur = deep
    for i = 1, 40 do cur["level" .. i] = {}; cur = cur["level" .. i] end
    cur.f = print
    local _, err = pcall(json.encode, deep)
    local path = err:match(" at %$(.*)$")
    assert.are.equal(255, #path)
    assert.are.equal(".level1.level2.level3.", path:sub(1, 22))
  end)

  it("encodes right after a failed encode, after a large one and inside a finalizer", function()
    assert.has_error(function() json.encode({ { { print } } }) end)
    assert.are.equal('{"a":[1,"x"]}', json.encode({ a = { 1, "x" } }))
    local big = json.encode({ s = ("y"):rep(200000) })
    assert.are.equal(200008, #big)
    assert.are.equal('["after"]', json.encode({ "after" }))
    -- finalizers may run while an encode allocates (number keys become
    -- text) or when it pushes its result: an encode inside one gets its own
    -- encoder, and both texts are whole
    local inner = {}
    collectgarbage("stop")
    for i = 1, 200 do
      setmetatable({}, { __gc = function()
        inner[#inner + 1] = json.encode({ i = i, k = { "v" } }, { sort_keys = true })
      end })
    end
    local keyed = {}
    for i = 1, 20000 do keyed[i + 0.5] = i end
    collectgarbage("restart")
    local out = json.encode(keyed)
    collectgarbage("collect")
    assert.are.equal(20000, select(2, out:gsub(":", ":")))
    assert.are.equal(2499, json.decode(out)["2499.5"])
    assert.are.equal(200, #inner)
    for _, text in ipairs(inner) do assert.matches('^{"i":%d+,"k":%["v"%]}$', text) end
  end)

  it("reports bad input: decode raises, safe_decode returns nil and the reason", function()
    local v, err = json.safe_decode("[1,2")
    assert.is_nil(v)
    assert.truthy(err:find("^resi.json.decode: "))
    assert.truthy(err:find("character 5", 1, true))
    assert.has_error(function() json.decode("{bad") end)
    assert.is_nil((json.safe_decode("NaN")))
    assert.is_nil((json.safe_decode(42)))
  end)

  it("takes strict JSON outside strings: no leading zeros, bare dots, signs, trailing commas or words", function()
    for _, text in ipairs { "01", "1.", ".5", "+1", "-", "1e", "1e+", "0x10", "NaN", "Infinity", "-Infinity",
      "[1,]", '{"a":1,}', "[1 2]", '{"a" 1}', '{a:1}', "tru", "nul", "[1]]", "// c\n1", "'a'", "" } do
      local v, err = json.safe_decode(text)
      assert.is_nil(v, text)
      assert.matches("^resi%.json%.decode: .* at character %d+$", err, nil, false, text)
    end
    assert.equal(0, json.decode("-0"))
    assert.equal("integer", math.type(json.decode("-0")))
    assert.equal(100.0, json.decode("1E+2"))
    assert.equal("float", math.type(json.decode("1E+2")))
    assert.equal(-0.25, json.decode(" \t\r\n-2.5e-1 \n"))
  end)

  it("decodes integers exactly up to 64 bits and larger ones as floats", function()
    assert.equal(math.maxinteger, json.decode("9223372036854775807"))
    assert.equal(math.mininteger, json.decode("-9223372036854775808"))
    assert.equal("integer", math.type(json.decode("-9223372036854775808")))
    assert.equal("integer", math.type(json.decode("1234567890123456789")))
    local big = json.decode("9223372036854775808")
    assert.equal("float", math.type(big))
    assert.equal(2.0 ^ 63, big)
    assert.equal(1e30, json.decode("1000000000000000000000000000000"))
  end)

  it("names the position of bad input and never quotes it (it can hold a secret)", function()
    local secret = "sk_live_SecretThatMustNeverLeak42"
    for _, text in ipairs { '{"password":"' .. secret .. '" x}', '{"k":"' .. secret .. '\\q"}',
      '["' .. secret, '{"' .. secret .. '":}', '[1, ' .. secret .. ']' } do
      local v, err = json.safe_decode(text)
      assert.is_nil(v)
      assert.is_nil(err:find(secret, 1, true), err)
      assert.is_nil(err:find("SecretThat", 1, true), err)
    end
    assert.equal("resi.json.decode: expected ',' or '}' at character 49",
      select(2, json.safe_decode('{"password":"' .. secret .. '" x}')))
    assert.equal("resi.json.decode: expected ',' or ']', but the text ended at character 5",
      select(2, json.safe_decode("[1,2")))
    assert.equal("resi.json.decode: unexpected text after the value at character 4",
      select(2, json.safe_decode("[1]\0{}")))
  end)

  it("decodes escapes, surrogate pairs and raw bytes in strings, and refuses lone surrogates", function()
    assert.equal('"/\b\f\n\r\t\0', json.decode('"\\"\\/\\b\\f\\n\\r\\t\\u0000"'))
    assert.equal("tab\there", json.decode('"tab\there"')) -- a raw tab, as sloppy servers send
    assert.equal("\u{10FFFF}", json.decode('"\\udbff\\udfff"'))
    assert.equal("x\u{1F600}y\u{20AC}", json.decode('"x\\uD83D\\uDE00y\\u20ac"'))
    for _, text in ipairs { '"\\ud83d"', '"\\ud83dx"', '"\\ude00"', '"\\ud83d\\u0041"', '"\\u12"', '"\\x41"', '"abc' } do
      assert.is_nil((json.safe_decode(text)), text)
    end
  end)

  it("keeps member order for repeated keys and element order past the gathered first chunk", function()
    local parts, keys = {}, {}
    for i = 1, 1000 do parts[i] = tostring(i * 7) end
    local list = json.decode("[" .. table.concat(parts, ",") .. "]")
    assert.equal(1000, #list)
    for i = 1, 1000 do assert.equal(i * 7, list[i]) end
    for i = 1, 100 do keys[#keys + 1] = ('"k%d":%d'):format(i % 40, i) end -- each of k0..k39 repeats
    local obj = json.decode("{" .. table.concat(keys, ",") .. "}")
    local n = 0
    for _ in pairs(obj) do n = n + 1 end
    assert.equal(40, n)
    for k = 0, 39 do assert.equal(k <= 20 and 80 + k or 40 + k, obj["k" .. k]) end
    assert.equal(2, json.decode('{"a":1,"a":2}').a)
  end)

  it("nests 1000 deep and refuses 1001, naming the limit", function()
    assert.equal(1, json.decode(("["):rep(1000) .. "1" .. ("]"):rep(1000)) and 1)
    local v, err = json.safe_decode(("["):rep(1001) .. ("]"):rep(1001))
    assert.is_nil(v)
    assert.equal("resi.json.decode: more than 1000 nested arrays and objects at character 1001", err)
    assert.is_nil((json.safe_decode(('{"a":'):rep(1001) .. "1" .. ("}"):rep(1001))))
  end)

  it("gives the value Debian's lua-cjson gives wherever both accept the text", function()
    local cjson = require("cjson.safe").new()
    cjson.decode_invalid_numbers(false)
    cjson.decode_max_depth(1000)
    -- Is a (resi's) the same JSON value as b (cjson's, all numbers doubles)?
    local function same(a, b)
      if type(a) == "table" then
        if type(b) ~= "table" then return false end
        for k, v in pairs(a) do if not same(v, b[k]) then return false end end
        for k in pairs(b) do if a[k] == nil then return false end end
        return true
      elseif math.type(a) == "integer" then
        return a + 0.0 == b
      end
      return a == b
    end
    local texts = {
      '{"token":"tk_live_7Hq2mZ9xP4vLr8Ka","dataLimit":10737418240,"bytesIn":123456789012345,'
        .. '"sessions":{"active":12,"max":100},"allowedPools":["residential","mobile"],"x":[],"y":{}}',
      '[1, -2.5e3, 0.1, 1e-7, 12345678901234567890, -0, 0.0, true, false, null, "\\u00e9", [[[]]], {"":{}}]',
      '{"users":[{"id":1,"name":"a\\"b","traffic":{"rx":5e9,"tx":1.5}},{"id":2,"name":"\\ud83d\\ude00"}]}',
      "  42  ", '"just a string"', "null", "-9223372036854775808", "1e400",
    }
    local big = {}
    for i = 1, 300 do big[i] = ('{"i":%d,"f":%d.5,"s":"v%d","a":[%d,"%d"]}'):format(i, i, i, i, i) end
    texts[#texts + 1] = "[" .. table.concat(big, ",") .. "]"
    for _, text in ipairs(texts) do
      local mine, err = json.safe_decode(text)
      assert.is_nil(err, text)
      local theirs = cjson.decode(text)
      assert.is_not_nil(theirs, text)
      assert.is_true(same(mine, theirs), text)
    end
  end)

  it("pretty-prints with indent", function()
    assert.equal('{\n  "a": [\n    1\n  ]\n}', json.encode({ a = { 1 } }, { indent = true }))
  end)
end)
