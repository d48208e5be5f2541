--- resi.repl.pretty: how the REPL shows a value. Tables print nested with
--- keys sorted (the array part first, in order), short tables and arrays on
--- one line, cycles as <cycle>, tables past the depth limit as a count, long
--- tables and long output cut with a count of what was left out. Proxy lists
--- print as a summary plus their first entries; error objects as their
--- message plus their fields; objects with a __tostring (clients, tasks) as
--- that text.
---
--- Secrets are masked exactly as resi.log masks them (resi.secret): a field
--- named like a secret shows secret.mask_field's form (rf_live_…x7kQ, …)
--- and every other string is scrubbed of what looks like a credential. This
--- is the REPL's echo only: print(x) still prints x raw.
---
--- Why not Debian's lua-inspect (3.1.1): it is packaged for Lua 5.1-5.3
--- only (no 5.4 path), and although its `process` hook could mask fields,
--- it has no way to cut long output with a count, prints metatables and
--- table ids as noise around error objects and clients, and shows userdata
--- (proxy lists) as an opaque `<userdata 1>`. This module is one file.
local secret = require "resi.secret"

local M = {}

--- Default limits; any of them can be given per call.
M.defaults = {
  depth = 4,         -- nesting shown before a table becomes "{…N}"
  items = 40,        -- entries shown per table before "… N more"
  lines = 200,       -- lines of output before "… N more lines"
  width = 78,        -- a table fits on one line up to this width
  list_entries = 5,  -- proxy-list entries shown under the summary
  mask = true,       -- mask secrets (the REPL's echo)
}

local IDENT = "^[%a_][%w_]*$"
local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or repeat return then true
  until while]]):gmatch("%a+") do KEYWORDS[w] = true end

-- Escapes a string as a Lua double-quoted literal (one line).
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == "\n" then return "\\n" elseif c == "\t" then return "\\t" elseif c == "\r" then return "\\r"
    elseif c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return ("\\%d"):format(c:byte())
  end) .. '"'
end

-- A string shown as a value: scrubbed when masking, then quoted.
local function show_string(s, o)
  if o.mask then s = secret.scrub(s) end
  return quote(s)
end

-- A number as Lua writes it (floats keep a point: 1.0).
local function show_number(n)
  if math.type(n) == "integer" then return tostring(n) end
  if n ~= n then return "nan" end
  return ("%.14g"):format(n):find("[%.eEn]") and ("%.14g"):format(n) or ("%.1f"):format(n)
end

-- Where a Lua function was defined: "function (file.lua:12)" (no call made).
local function show_function(f)
  local info = debug.getinfo(f, "S")
  if info.what == "C" then return "function (builtin)" end
  return ("function (%s:%d)"):format(info.short_src, info.linedefined)
end

-- tostring(v) without letting a failing __tostring escape.
local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return "<" .. type(v) .. ": __tostring failed>"
end

-- The metatable's field, read raw (a __index on the metatable is not run).
local function meta_field(v, name)
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return nil end
  return rawget(mt, name)
end

--- Is v a proxy list (resi.proxylist)?
---@param v any
---@return boolean
function M.is_list(v)
  return type(v) == "userdata" and meta_field(v, "__name") == "resi.proxylist.list"
end

--- Is v an error object: a table with kind and message fields (the
--- providers' errors, resi.task.cancelled), or one whose class is named
--- like an error?
---@param v any
---@return boolean
function M.is_error(v)
  if type(v) ~= "table" then return false end
  local name = meta_field(v, "__name")
  if type(name) == "string" and (name:find("error$") or name:find("cancelled$")) then return true end
  return rawget(v, "kind") ~= nil and rawget(v, "message") ~= nil and getmetatable(v) ~= nil
end

-- Orders keys: integers first (by value), then strings, then the rest by type.
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then return a < b end
  if ta == "number" then return true end
  if tb == "number" then return false end
  if ta == "string" and tb == "string" then return a < b end
  if ta == "string" then return true end
  if tb == "string" then return false end
  if ta ~= tb then return ta < tb end
  return safe_tostring(a) < safe_tostring(b)
end

-- The table's length as a sequence (raw: no __len, no __index).
local function raw_len(t)
  local n = 0
  while rawget(t, n + 1) ~= nil do n = n + 1 end
  return n
end

-- The keys of t past its sequence part, sorted (raw next: no __pairs).
local function other_keys(t, n)
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_less)
  return keys
end

local render -- forward: renders any value as a list of lines

-- A key as written in a table constructor.
local function show_key(k, o)
  if type(k) == "string" and k:match(IDENT) and not KEYWORDS[k] then return k end
  if type(k) == "string" then return "[" .. show_string(k, o) .. "]" end
  if type(k) == "number" then return "[" .. show_number(k) .. "]" end
  return "[" .. safe_tostring(k) .. "]"
end

-- A field's value; secret-named fields show only their masked form.
local function field_lines(k, v, o, depth, path)
  if o.mask and type(v) ~= "table" and v ~= nil and secret.is_secret_field(k) then
    return { quote(secret.mask_field(k, v)) }
  end
  return render(v, o, depth, path)
end

-- The entries of t as (prefix, lines) pairs, with the "… N more" tail.
local function table_entries(t, o, depth, path)
  local n = raw_len(t)
  local keys = other_keys(t, n)
  local total, shown, out = n + #keys, 0, {}
  for i = 1, n do
    if shown >= o.items then break end
    shown = shown + 1
    out[#out + 1] = { "", render(rawget(t, i), o, depth, path) }
  end
  for _, k in ipairs(keys) do
    if shown >= o.items then break end
    shown = shown + 1
    out[#out + 1] = { show_key(k, o) .. " = ", field_lines(k, rawget(t, k), o, depth, path) }
  end
  return out, total - shown
end

-- Joins entries on one line when every entry is one line and it fits.
local function one_line(entries, more, o, indent)
  local parts = {}
  for i, e in ipairs(entries) do
    if #e[2] ~= 1 then return nil end
    parts[i] = e[1] .. e[2][1]
  end
  if more > 0 then parts[#parts + 1] = ("… %d more"):format(more) end
  local text = "{ " .. table.concat(parts, ", ") .. " }"
  if #parts == 0 then text = "{}" end
  if utf8.len(text) and utf8.len(text) + indent <= o.width then return text end
  return nil
end

-- A table as lines: one line when short, else one entry per line.
local function render_table(t, o, depth, path)
  if path[t] then return { "<cycle>" } end
  if depth >= o.depth then
    local count = 0
    for _ in next, t do count = count + 1 end
    return { count == 0 and "{}" or ("{…%d}"):format(count) }
  end
  path[t] = true
  local entries, more = table_entries(t, o, depth + 1, path)
  path[t] = nil
  local line = one_line(entries, more, o, depth * 2)
  if line then return { line } end
  local lines = { "{" }
  for i, e in ipairs(entries) do
    local sep = (i < #entries or more > 0) and "," or ""
    local sub = e[2]
    lines[#lines + 1] = "  " .. e[1] .. sub[1] .. (#sub == 1 and sep or "")
    for j = 2, #sub do lines[#lines + 1] = "  " .. sub[j] .. (j == #sub and sep or "") end
  end
  if more > 0 then lines[#lines + 1] = ("  … %d more"):format(more) end
  lines[#lines + 1] = "}"
  return lines
end

-- A proxy entry as one line, its password masked when masking.
local function list_entry(e, o)
  local auth = ""
  if e.user then auth = e.user .. (e.pass and (":" .. (o.mask and "…" or e.pass)) or "") .. "@" end
  return ("%s://%s%s:%s"):format(e.scheme or "http", auth, tostring(e.host), tostring(e.port))
end

-- A proxy list: "<proxy list: N entries>" and its first entries.
local function render_list(l, o)
  local n = #l
  local lines = { ("<proxy list: %d entr%s>"):format(n, n == 1 and "y" or "ies") }
  for i = 1, math.min(n, o.list_entries) do lines[#lines + 1] = "  " .. list_entry(l[i], o) end
  if n > o.list_entries then lines[#lines + 1] = ("  … %d more"):format(n - o.list_entries) end
  local ok, errors = pcall(function() return l.errors end)
  if ok and type(errors) == "table" and #errors > 0 then
    lines[#lines + 1] = ("  (%d line%s not parsed: see .errors)"):format(#errors, #errors == 1 and "" or "s")
  end
  return lines
end

-- An error object: its message, then its fields.
local function render_error(e, o, depth, path)
  local text = safe_tostring(e)
  if o.mask then text = secret.scrub(text) end
  local name = meta_field(e, "__name")
  local lines = { (type(name) == "string" and (name .. ": ") or "error: ") .. text }
  for _, l in ipairs(render_table(e, o, depth, path)) do lines[#lines + 1] = l end
  return lines
end

-- Any value as a list of lines.
function render(v, o, depth, path)
  local t = type(v)
  if t == "string" then return { show_string(v, o) } end
  if t == "number" then return { show_number(v) } end
  if t == "function" then return { show_function(v) } end
  if t == "table" then
    if M.is_error(v) then return render_error(v, o, depth, path) end
    if meta_field(v, "__tostring") then
      local s = safe_tostring(v)
      return { o.mask and secret.scrub(s) or s }
    end
    return render_table(v, o, depth, path)
  end
  if M.is_list(v) then return render_list(v, o) end
  if t == "userdata" then
    if v == require("resi.json").null then return { "json.null" } end
    return { secret.scrub(safe_tostring(v)) }
  end
  return { safe_tostring(v) }
end

-- The options of a call with the defaults filled in.
local function options(opts)
  local o = {}
  for k, v in pairs(M.defaults) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

--- The value as text (no final newline), masked unless opts.mask = false;
--- opts override M.defaults (depth, items, lines, width, list_entries).
---@param v any
---@param opts? {depth?: integer, items?: integer, lines?: integer, width?: integer, list_entries?: integer, mask?: boolean}
---@return string
function M.render(v, opts)
  local o = options(opts)
  local lines = render(v, o, 0, {})
  if #lines > o.lines then
    local more = #lines - o.lines
    lines = table.move(lines, 1, o.lines, 1, {})
    lines[#lines + 1] = ("… %d more lines"):format(more)
  end
  return table.concat(lines, "\n")
end

--- Several values (an entry's results) as text: on one line separated by
--- tabs when each is one line, else one value after the other.
---@param n integer
---@param values table
---@param opts? table
---@return string
function M.render_results(n, values, opts)
  local parts, multi = {}, false
  for i = 1, n do
    parts[i] = M.render(values[i], opts)
    multi = multi or parts[i]:find("\n", 1, true) ~= nil
  end
  return table.concat(parts, multi and "\n" or "\t")
end

return M
