--- resi.cron.parse: the cron expression parser. It turns text into sets of
--- values per field plus the day-field specials (L, W, #); resi.cron builds
--- the lookup tables and does the searching. Errors are values: nil and a
--- message that names the field and the bad token, e.g.
---   minute: bad token "60" (out of range 0-59)
local M = {}

local MONTHS = { JAN = 1, FEB = 2, MAR = 3, APR = 4, MAY = 5, JUN = 6,
  JUL = 7, AUG = 8, SEP = 9, OCT = 10, NOV = 11, DEC = 12 }
local DAYS = { SUN = 0, MON = 1, TUE = 2, WED = 3, THU = 4, FRI = 5, SAT = 6 }

-- The fields in the order of a 6-field expression. `top` is where `*` and
-- `a/n` end (day-of-week accepts 7 for Sunday, but `*` means 0-6).
local FIELDS = {
  { key = "second", name = "second", min = 0, max = 59 },
  { key = "minute", name = "minute", min = 0, max = 59 },
  { key = "hour", name = "hour", min = 0, max = 23 },
  { key = "dom", name = "day-of-month", min = 1, max = 31, day = true },
  { key = "month", name = "month", min = 1, max = 12, names = MONTHS, hint = "JAN-DEC or 1-12" },
  { key = "dow", name = "day-of-week", min = 0, max = 7, top = 6, names = DAYS, day = true,
    hint = "SUN-SAT or 0-7" },
}
M.FIELDS = FIELDS

-- The macros (cronie's list, plus Cronos' two sub-minute ones).
local MACROS = {
  ["@yearly"] = "0 0 0 1 1 *", ["@annually"] = "0 0 0 1 1 *",
  ["@monthly"] = "0 0 0 1 * *", ["@weekly"] = "0 0 0 * * 0",
  ["@daily"] = "0 0 0 * * *", ["@midnight"] = "0 0 0 * * *",
  ["@hourly"] = "0 0 * * * *",
  ["@every_minute"] = "0 * * * * *", ["@every_second"] = "* * * * * *",
}
local MACRO_LIST = "@yearly @annually @monthly @weekly @daily @midnight @hourly @every_minute @every_second"

-- The error message for a bad token of a field.
local function bad(spec, token, reason)
  return ("%s: bad token %q (%s)"):format(spec.name, token, reason)
end

-- A number or (for month and day-of-week) a name, checked against the
-- field's range. Returns the value, or nil and the reason.
local function value(spec, tok)
  if tok == "" then return nil, "missing number" end
  if tok:find("^%d+$") then
    local n = #tok <= 4 and tonumber(tok) or math.huge
    if n < spec.min or n > spec.max then
      return nil, ("out of range %d-%d"):format(spec.min, spec.max)
    end
    return math.tointeger(n)
  end
  local v = spec.names and spec.names[tok:upper()]
  if v then return v end
  if spec.names then return nil, "unknown name; use " .. spec.hint end
  return nil, "not a number"
end

-- Parses the step after a "/": 1 up to the field's maximum.
local function step_of(spec, tok)
  local n = tok:find("^%d+$") and #tok <= 4 and tonumber(tok)
  if not n or n < 1 or n > spec.max then
    return nil, ("step must be 1-%d"):format(spec.max)
  end
  return math.tointeger(n)
end

-- The first and last value of a range "a-b", "a" or "*", before any step.
local function bounds(spec, base, stepped)
  local top = spec.top or spec.max
  if base == "*" then return spec.min, top end
  local a, b = base:match("^([^-]*)%-([^-]*)$")
  if not a then
    local v, why = value(spec, base)
    if not v then return nil, why end
    return v, stepped and math.max(v, top) or v -- a/n runs from a to the field's end
  end
  local lo, why = value(spec, a)
  if not lo then return nil, why end
  local hi, why2 = value(spec, b)
  if not hi then return nil, why2 end
  if spec.key == "dow" and hi == 0 and lo > 0 then hi = 7 end -- FRI-SUN, 5-0
  if lo > hi then return nil, "range runs backwards; split it, like 22-23,0-1" end
  return lo, hi
end

-- Adds the values of a plain item ("*", "a", "a-b", with an optional "/n").
local function plain(spec, item, out)
  local base, step = item:match("^([^/]*)/(.*)$")
  if not base then base = item end
  local n = 1
  if step then
    local why
    n, why = step_of(spec, step)
    if not n then return nil, why end
  end
  local lo, hi = bounds(spec, base, step ~= nil)
  if not lo then return nil, hi end
  for v = lo, hi, n do out.set[spec.key == "dow" and v % 7 or v] = true end
  return true
end

-- The day-of-month specials with a number: the pattern, the set of the
-- compiled field it adds to, the range of the number, and the message
-- when the number is out of it.
local DOM_NUMBERED = {
  { "^L%-(%d+)$", "last", 0, 30, "L-n needs n of 0-30" },
  { "^L%-(%d+)W$", "lastw", 0, 30, "L-nW needs n of 0-30" },
  { "^(%d+)W$", "w", 1, 31, "nW needs a day of 1-31" },
}

-- Adds a day-of-month special: L, L-n, LW, L-nW, nW.
local function dom_special(spec, up, out)
  if up == "L" then out.last[0] = true return true end
  if up == "LW" then out.lastw[0] = true return true end
  for _, form in ipairs(DOM_NUMBERED) do
    local digits = up:match(form[1])
    if digits then
      local n = tonumber(digits)
      if n < form[3] or n > form[4] then return nil, form[5] end
      out[form[2]][n] = true
      return true
    end
  end
  return nil, "L and W take the forms L, L-3, LW, L-3W, 15W"
end

-- Adds a day-of-week special: nL (last weekday n of the month), n#k (k-th).
local function dow_special(spec, up, out)
  local d = up:match("^(%w+)L$")
  if d then
    local v, why = value(spec, d)
    if not v then return nil, why end
    out.lastdow[v % 7] = true
    return true
  end
  local k
  d, k = up:match("^(%w+)#(%d+)$")
  if d then
    local v, why = value(spec, d)
    if not v then return nil, why end
    k = #k <= 2 and tonumber(k) or 0
    if k < 1 or k > 5 then return nil, "#k needs k of 1-5" end
    out.nth[(v % 7) * 8 + k] = true
    return true
  end
  return nil, "L and # take the forms 5L (last Friday) and 1#2 (second Monday)"
end

-- Parses one comma-separated item into out. Returns true or nil, reason.
local function item(spec, it, out)
  if it == "" then return nil, "empty list item" end
  local up = it:upper()
  if spec.key == "dom" and up:find("[LW]") then return dom_special(spec, up, out) end
  if spec.key == "dow" and (up:find("#", 1, true) or up:find("%wL$")) then
    return dow_special(spec, up, out)
  end
  if it == "?" then return nil, "? stands alone, for the whole field" end
  return plain(spec, it, out)
end

-- Parses one field's text. Returns its description: set (value -> true),
-- star (the field starts with `*` or is `?`, Vixie's DOM_STAR/DOW_STAR/
-- MIN_STAR/HR_STAR flags) and the specials; or nil, message.
local function field(spec, text)
  local out = { text = text, set = {}, star = text:sub(1, 1) == "*" }
  if spec.key == "dom" then out.last, out.lastw, out.w = {}, {}, {} end
  if spec.key == "dow" then out.lastdow, out.nth = {}, {} end
  if text == "?" then
    if not spec.day then return nil, bad(spec, text, "? is only for day-of-month and day-of-week") end
    out.star = true
    return plain(spec, "*", out) and out
  end
  for it in (text .. ","):gmatch("([^,]*),") do
    local ok, why = item(spec, it, out)
    if not ok then return nil, bad(spec, it == "" and text or it, why) end
  end
  return out
end

-- Parsed fields are immutable and shared by text (a daemon's jobs repeat
-- `*` and `0` a lot); weak values, so unused ones are collected.
local field_cache = setmetatable({}, { __mode = "v" })

-- field(), once per (field, text).
local function shared_field(spec, text)
  local id = spec.key .. " " .. text
  local out = field_cache[id]
  if out then return out end
  local err
  out, err = field(spec, text)
  if out then field_cache[id] = out end
  return out, err
end

-- Splits text on blanks.
local function words(text)
  local out = {}
  for w in text:gmatch("%S+") do out[#out + 1] = w end
  return out
end

--- Parses a cron expression: 5 fields (minute hour day-of-month month
--- day-of-week), 6 with seconds first, or a macro. Returns a table with one
--- entry per field key (second, minute, hour, dom, month, dow) and
--- `wildcard` (cronie's rule: the minute or hour field starts with `*`), or
--- nil and a message naming the field and the bad token.
---@param expr string
---@return table|nil spec
---@return string|nil err
function M.parse(expr)
  if type(expr) ~= "string" then return nil, "expected the expression as a string, got " .. type(expr) end
  local text = expr:match("^%s*(.-)%s*$")
  if text == "" then return nil, "empty expression" end
  if text:sub(1, 1) == "@" then
    local macro = MACROS[text:lower()]
    if not macro then return nil, ("unknown macro %q (known: %s)"):format(text, MACRO_LIST) end
    text = macro
  end
  local f = words(text)
  if #f == 5 then table.insert(f, 1, "0") end
  if #f ~= 6 then
    return nil, ("expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), got %d"):format(#f)
  end
  local spec = { expr = expr }
  for i, fs in ipairs(FIELDS) do
    local out, err = shared_field(fs, f[i])
    if not out then return nil, err end
    spec[fs.key] = out
  end
  spec.wildcard = spec.minute.star or spec.hour.star
  return spec
end

return M
