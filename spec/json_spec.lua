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

  it("reports bad input: decode raises, safe_decode returns nil and the reason", function()
    local v, err = json.safe_decode("[1,2")
    assert.is_nil(v)
    assert.truthy(err:find("^resi.json.decode: "))
    assert.truthy(err:find("character 5", 1, true))
    assert.has_error(function() json.decode("{bad") end)
    assert.is_nil((json.safe_decode("NaN")))
    assert.is_nil((json.safe_decode(42)))
  end)

  it("pretty-prints with indent", function()
    assert.equal('{\n  "a": [\n    1\n  ]\n}', json.encode({ a = { 1 } }, { indent = true }))
  end)
end)
