--- resi.json: JSON with exact integers and arrays that stay arrays.
---
--- Decoding is resi's own, one pass in C (runtime/json_decode.c says why it
--- is not Debian's lua-cjson, which it is tested against): integer literals
--- come back as Lua integers (exact to 64 bits), other numbers as floats, and
--- `[]` comes back marked as an array, so decode -> encode keeps `[]` as `[]`.
--- Encoding is resi's own too (see runtime/json.c for why).
local core = require "resi.json_core"

local M = {}

--- The value that stands for JSON null (a light userdata; the same value
--- lua-cjson decodes null to).
M.null = core.null

local ARRAY = core.array_mt()
local decode_core = core.decode

--- Marks t (or a new table) as a JSON array, so an empty one encodes as [].
---@param t? table
---@return table
function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

--- Is t marked as an array (made by json.array or decoded from [...])?
---@param t any
---@return boolean
function M.is_array(t)
  return type(t) == "table" and getmetatable(t) == ARRAY
end

--- Decodes JSON text; returns nil and a message naming the problem on bad input.
---@param text string
---@return any|nil value
---@return string|nil err
function M.safe_decode(text)
  if type(text) ~= "string" then return nil, "resi.json.decode: expected a string, got " .. type(text) end
  return decode_core(text) -- value, or nil and the message
end

--- Decodes JSON text; raises an error naming the problem on bad input.
---@param text string
---@return any
function M.decode(text)
  local value, err = M.safe_decode(text)
  if err then error(err, 2) end
  return value
end

local encode = core.encode
local pcall, error = pcall, error

--- Encodes a value. opts.sort_keys writes object keys in order (stable
--- output); opts.indent pretty-prints. Raises on values JSON cannot hold,
--- naming where they are (e.g. "cannot encode a function at $.a[2]").
---
--- Arrays: a table made by json.array, or one whose keys are all positive
--- integers, is an array; a hole is written as null ({1, 2, nil, 4} ->
--- [1,2,null,4]) and a trailing nil is not there at all (Lua keeps no length
--- past the last value: write json.null to end with null). An array may have
--- any holes up to index 10 and beyond that at most one hole per value; a
--- sparser one ({[1e9] = 1}) raises "excessively sparse array" rather than
--- write a billion nulls or turn into an object. Any other table is an
--- object, numeric keys written as text ({[0] = 1, x = 2} -> {"0":1,"x":2});
--- for a map keyed by ids, use string keys. The empty table is {}, an empty
--- json.array is [], and a json.array with a key that is not an index raises.
---@param value any
---@param opts? {sort_keys?: boolean, indent?: boolean}
---@return string
function M.encode(value, opts)
  local ok, out
  if opts then
    ok, out = pcall(encode, value, M.null, opts.sort_keys, opts.indent)
  else
    ok, out = pcall(encode, value, M.null)
  end
  if not ok then error(out:gsub("^[^:]*:%d+: ", ""), 2) end -- point at the caller, not here
  return out
end

return M
