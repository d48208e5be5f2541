--- spec/support/text.lua: reading program output in specs.
local M = {}

--- How many times needle (plain text, not a pattern) occurs in s, without
--- overlaps.
---@param s string
---@param needle string
---@return integer
function M.count(s, needle)
  local n, at = 0, 1
  while true do
    local i = s:find(needle, at, true)
    if not i then return n end
    n, at = n + 1, i + #needle
  end
end

--- The non-empty lines of s, in order.
---@param s string
---@return string[]
function M.lines(s)
  local out = {}
  for l in s:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

return M
