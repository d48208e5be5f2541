--- spec/support/provider.lua: helpers for the provider client specs.
local common = require "resi.providers.common"
local assert = require "luassert"
local raised = require("spec.support.checks").raised

local M = {}

--- Runs fn(...), which must raise a provider error object; returns it.
function M.raises(fn, ...)
  local err = raised(fn, ...)
  assert.is_true(common.is_error(err), tostring(err))
  return err
end

--- Asserts, for each case {method, args, field, needle}, that
--- client[method](client, args[1], args[2]) raises a validation error naming
--- field, with needle in its message (rules checked before any request).
---@param client table
---@param cases table[]
function M.refuses_each(client, cases)
  for _, c in ipairs(cases) do
    local err = M.raises(client[c[1]], client, table.unpack(c[2], 1, 2))
    assert.are.equal("validation", err.kind)
    assert.are.equal(c[3], err.field)
    assert.matches(c[4], err.message, 1, true)
  end
end

return M
