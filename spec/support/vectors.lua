--- spec/support/vectors.lua: reads the published test vectors kept as text
--- in spec/vectors/*.tsv (rows copied from other projects' test suites, so
--- that they can be compared with the upstream file line for line).
---
--- The format: `# ...` lines are comments and blank lines are skipped;
--- `[NAME] comment` starts a section; every other line is a row of the
--- current section, its columns separated by one tab. A column `key=value`
--- is a named field of the row, any other a positional one; `true` and
--- `false` are booleans; a column in double quotes keeps its blanks
--- (`"  @daily  "`). load(name) returns {NAME = {row, ...}, ...}.
local M = {}

-- The directory spec/vectors, found from this file's own path.
local function dir()
  local src = debug.getinfo(1, "S").source
  local here = src:sub(2):match("^(.*)/[^/]*$") or "."
  return here .. "/../vectors"
end

-- The value of one column's text.
local function value(text)
  if text == "true" then return true end
  if text == "false" then return false end
  return text:match('^"(.*)"$') or text
end

-- One row from a line: positional columns in order, key=value ones by key.
local function row(line)
  local out = {}
  for text in (line .. "\t"):gmatch("([^\t]*)\t") do
    local key, v = text:match("^(%a+)=(.*)$")
    if key then out[key] = value(v) else out[#out + 1] = value(text) end
  end
  return out
end

--- Reads spec/vectors/<name>.tsv; returns its sections by name.
---@param name string
---@return table<string, table[]>
function M.load(name)
  local path = dir() .. "/" .. name .. ".tsv"
  local sections, current = {}, nil
  local n = 0
  for line in io.lines(path) do
    n = n + 1
    local section = line:match("^%[([%w_]+)%]")
    if section then
      current = {}
      sections[section] = current
    elseif line ~= "" and not line:find("^#") then
      assert(current, ("%s:%d: a row before the first [SECTION]"):format(path, n))
      current[#current + 1] = row(line)
    end
  end
  return sections
end

return M
