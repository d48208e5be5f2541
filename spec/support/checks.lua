--- spec/support/checks.lua: assertions the specs share: a call that must
--- raise, functions that refuse bad input as a value (nil and a message)
--- rather than by raising, and tables whose named fields must have given
--- values.
local assert = require "luassert"

local M = {}

--- Runs fn(...), which must raise (the test fails when it returns); the
--- error value it raised, as raised (a string or an error object).
---@param fn function
---@return any
function M.raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

--- Asserts for each input that fn(input) refuses it: it returns nil and a
--- message that contains needle (plain text, not a pattern).
---@param fn fun(input: any): any, string?
---@param inputs any[]
---@param needle string
function M.refuses_each(fn, inputs, needle)
  for _, input in ipairs(inputs) do
    local value, err = fn(input)
    assert.is_nil(value, tostring(input))
    assert.is_string(err, tostring(input))
    assert.truthy(err:find(needle, 1, true), ("%q: %s"):format(tostring(input), err))
  end
end

--- Asserts that every field named in want has that value in got (nested
--- tables are compared field by field the same way; fields of got that
--- want does not name are not looked at). path names got in messages.
---@param want table
---@param got table
---@param path? string
function M.fields(want, got, path)
  path = path or "got"
  assert.is_table(got, path)
  for k, v in pairs(want) do
    local at = path .. "." .. tostring(k)
    if type(v) == "table" then M.fields(v, got[k], at) else assert.equal(v, got[k], at) end
  end
end

return M
