--- resi.cmdline.output: how the provider commands (resi up, oxy, rf) print.
--- A table of aligned columns on a terminal; tab-separated values with the
--- same header line when stdout is not one (a pipe or a file: cut -f and
--- awk -F'\t' read it); one JSON document with sorted keys for --json.
---
---   output.rows({ {"ID"}, {"USED", right = true} }, { {"a1", "2.00 GB"} })
---   output.json({ id = "a1", used_bytes = 2000000000 })
local json = require "resi.json"

local M = {}

--- True when file descriptor fd (default 1, stdout) is a terminal.
---@param fd? integer
---@return boolean
function M.is_tty(fd)
  return require("luv").guess_handle(fd or 1) == "tty"
end

--- A value for a JSON document: nil becomes null, so every documented key
--- is always present.
---@param v any
---@return any
function M.value(v)
  if v == nil then return json.null end
  return v
end

--- A value as table text: nil and JSON null become nil (printed "-").
---@param v any
---@return string|nil
function M.text(v)
  if v == nil or v == json.null then return nil end
  return tostring(v)
end

--- Writes v as one JSON document (sorted keys) and a newline to stdout.
---@param v any
function M.json(v)
  io.stdout:write(json.encode(v, { sort_keys = true }), "\n")
end

-- The width of a cell in characters (UTF-8 aware).
local function width(s)
  return utf8.len(s) or #s
end

-- Text padded to n characters, on the left when right is true.
local function pad(s, n, right)
  local fill = (" "):rep(n - width(s))
  return right and (fill .. s) or (s .. fill)
end

--- Writes rows (lists of strings; nil cells print as "-") under the
--- columns' titles ({title, right = true for numbers}): aligned with two
--- spaces between columns on a terminal, tab-separated otherwise (tty
--- forces one: true or false).
---@param columns {[1]: string, right?: boolean}[]
---@param rows (string|nil)[][]
---@param tty? boolean
function M.rows(columns, rows, tty)
  if tty == nil then tty = M.is_tty(1) end
  local cells = { {} }
  for i, c in ipairs(columns) do cells[1][i] = c[1] end
  for r, row in ipairs(rows) do
    cells[r + 1] = {}
    for i = 1, #columns do cells[r + 1][i] = row[i] == nil and "-" or tostring(row[i]) end
  end
  local out = {}
  if not tty then
    for _, row in ipairs(cells) do out[#out + 1] = table.concat(row, "\t") end
  else
    local widths = {}
    for _, row in ipairs(cells) do
      for i, s in ipairs(row) do widths[i] = math.max(widths[i] or 0, width(s)) end
    end
    for _, row in ipairs(cells) do
      local line = {}
      for i, s in ipairs(row) do
        line[i] = i == #row and not columns[i].right and s or pad(s, widths[i], columns[i].right)
      end
      out[#out + 1] = table.concat(line, "  ")
    end
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
end

--- Writes a list of records: with as_json a JSON array of to_json(r),
--- else a table of columns with to_row(r) as each row.
---@param list table[]
---@param as_json boolean|nil
---@param to_json fun(r: table): table
---@param columns {[1]: string, right?: boolean}[]
---@param to_row fun(r: table): (string|nil)[]
function M.records(list, as_json, to_json, columns, to_row)
  local out = {}
  for i, r in ipairs(list) do out[i] = as_json and to_json(r) or to_row(r) end
  if as_json then return M.json(json.array(out)) end
  M.rows(columns, out)
end

--- Writes one record as FIELD VALUE rows (pairs: {{"id", "a1"}, ...}).
---@param pairs_list {[1]: string, [2]: any}[]
---@param tty? boolean
function M.fields(pairs_list, tty)
  M.rows({ { "FIELD" }, { "VALUE" } }, pairs_list, tty)
end

--- Bytes as GB (10^9) with two decimals: "4.20 GB"; nil stays nil.
---@param bytes integer|nil
---@return string|nil
function M.gb(bytes)
  if bytes == nil then return nil end
  return ("%.2f GB"):format(bytes / 1e9)
end

--- A share as a whole percentage: "42%"; nil stays nil.
---@param share number|nil
---@return string|nil
function M.percent(share)
  if share == nil then return nil end
  return ("%d%%"):format(math.floor(share * 100 + 0.5))
end

--- Epoch seconds as "YYYY-MM-DD HH:MM" UTC; other values as they are.
---@param t any
---@return string|nil
function M.time(t)
  if math.type(t) == "integer" or math.type(t) == "float" then return os.date("!%Y-%m-%d %H:%M", math.floor(t)) end
  if t == nil or t == json.null then return nil end
  return tostring(t)
end

--- A list of strings as "a,b" (nil or empty: nil).
---@param list string[]|nil
---@return string|nil
function M.list(list)
  if type(list) ~= "table" or #list == 0 then return nil end
  return table.concat(list, ",")
end

return M
