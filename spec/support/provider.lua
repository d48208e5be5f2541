--- spec/support/provider.lua: helpers for the provider client specs.
local common = require "resi.providers.common"
local assert = require "luassert"

local M = {}

--- Runs fn(...), which must raise a provider error object; returns it.
function M.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok)
  assert.is_true(common.is_error(err), tostring(err))
  return err
end

return M
