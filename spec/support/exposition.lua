-- A strict parser of the Prometheus text exposition format 0.0.4
-- (prometheus/docs, docs/instrumenting/exposition_formats.md), written for
-- the specs so that resi's /metrics output is checked by code that shares
-- nothing with resi.metrics. parse(text) returns the families or raises
-- "line N: what is wrong". Beyond the format's own rules it refuses what a
-- tolerant reader would skip and resi never writes: empty lines, comments
-- other than HELP and TYPE, a sample whose family has no HELP and TYPE
-- before it, anything but one space between tokens.
--
-- Checked: every line ends with \n (the last included); HELP and TYPE at most
-- once per family and before its first sample; a family's lines form one
-- group; metric and label names match the grammar; label values use only
-- the \\ \" \n escapes; no label name twice in a sample; no sample (name and
-- labels) twice; values in the subset of Go's ParseFloat syntax that the
-- format's examples use (decimal digits, exponent, +Inf, -Inf, NaN: not
-- "Inf", "inf" or hex); counters >= 0; histograms: le on _bucket only, le ascending
-- within a series, the last bucket +Inf, cumulative counts never falling,
-- +Inf equal to _count, _sum and _count present for every series.
local M = {}

local METRIC_NAME = "^[A-Za-z_:][A-Za-z0-9_:]*"
local LABEL_NAME = "^[A-Za-z_][A-Za-z0-9_]*"
local TYPES = { counter = true, gauge = true, histogram = true, summary = true, untyped = true }

-- Raises the error of line n.
local function fail(n, fmt, ...)
  error(("line %d: " .. fmt):format(n, ...), 0)
end

--- Parses a sample value (see above for the forms accepted); nil if bad.
---@param s string
---@return number|nil
function M.number(s)
  if s == "+Inf" then return math.huge end
  if s == "-Inf" then return -math.huge end
  if s == "NaN" then return 0 / 0 end
  local mantissa, exp = s:match("^([+-]?[%d.]+)(.*)$")
  if not mantissa or not (mantissa:match("^[+-]?%d+%.?%d*$") or mantissa:match("^[+-]?%.%d+$")) then return nil end
  if exp ~= "" and not exp:match("^[eE][+-]?%d+$") then return nil end
  return tonumber(s)
end

-- Unescapes HELP text (\\ and \n only).
local function unescape_help(n, s)
  return (s:gsub("\\(.?)", function(c)
    if c == "\\" then return "\\" elseif c == "n" then return "\n" end
    fail(n, "bad escape \\%s in HELP", c)
  end))
end

-- Reads a label value from pos (just after the opening quote); returns the
-- value and the position after the closing quote.
local function label_value(line, pos, n)
  local out = {}
  while true do
    local c = line:sub(pos, pos)
    if c == "" then fail(n, "unterminated label value") end
    if c == '"' then return table.concat(out), pos + 1 end
    if c == "\\" then
      local e = line:sub(pos + 1, pos + 1)
      local map = { ["\\"] = "\\", ['"'] = '"', n = "\n" }
      if not map[e] then fail(n, "bad escape \\%s in a label value", e) end
      out[#out + 1] = map[e]
      pos = pos + 2
    else
      out[#out + 1] = c
      pos = pos + 1
    end
  end
end

-- Reads {name="value",...} from pos; returns the labels and the position after "}".
local function label_set(line, pos, n)
  local labels, order = {}, {}
  pos = pos + 1
  while true do
    local name = line:match(LABEL_NAME, pos)
    if not name then fail(n, "expected a label name at column %d", pos) end
    if labels[name] ~= nil then fail(n, "label %s given twice", name) end
    pos = pos + #name
    if line:sub(pos, pos + 1) ~= '="' then fail(n, 'expected =" after label %s', name) end
    labels[name], pos = label_value(line, pos + 2, n)
    order[#order + 1] = name
    local c = line:sub(pos, pos)
    if c == "}" then return labels, order, pos + 1 end
    if c ~= "," then fail(n, "expected , or } at column %d", pos) end
    pos = pos + 1
    if line:sub(pos, pos) == "}" then return labels, order, pos + 1 end -- trailing comma (allowed)
  end
end

-- Parses a sample line: name, labels, label order, value, timestamp text.
local function sample(line, n)
  local name = line:match(METRIC_NAME)
  if not name then fail(n, "not a sample: %q", line) end
  local pos, labels, order = #name + 1, {}, {}
  if line:sub(pos, pos) == "{" then labels, order, pos = label_set(line, pos, n) end
  local rest = line:sub(pos)
  local value, ts = rest:match("^ (%S+)$")
  if not value then value, ts = rest:match("^ (%S+) (%S+)$") end
  if not value then fail(n, "expected one space, a value and an optional timestamp after %s", name) end
  local v = M.number(value)
  if v == nil then fail(n, "bad value %q", value) end
  if ts and not ts:match("^-?%d+$") then fail(n, "bad timestamp %q", ts) end
  return name, labels, order, v, value
end

-- The canonical key of a label set, le left out: sorted name=value pairs.
local function series_key(labels)
  local names = {}
  for k in pairs(labels) do if k ~= "le" then names[#names + 1] = k end end
  table.sort(names)
  local parts = {}
  for i, k in ipairs(names) do parts[i] = k .. "=" .. ("%q"):format(labels[k]) end
  return table.concat(parts, ",")
end

-- The family a sample name belongs to, and its role (value, bucket, sum, count).
local function family_of(fams, name)
  if fams[name] and fams[name].type ~= "histogram" and fams[name].type ~= "summary" then return fams[name], "value" end
  local base, suffix = name:match("^(.*)_(bucket)$")
  if not base then base, suffix = name:match("^(.*)_(sum)$") end
  if not base then base, suffix = name:match("^(.*)_(count)$") end
  local fam = base and fams[base]
  if fam and (fam.type == "histogram" or (fam.type == "summary" and suffix ~= "bucket")) then return fam, suffix end
  if fams[name] and fams[name].type == "summary" then return fams[name], "quantile" end
  return nil
end

-- Opens family name for the current line: one group per family.
local function enter(state, name, n)
  if state.current == name then return end
  if state.closed[name] then fail(n, "lines of %s are not in one group", name) end
  if state.current then state.closed[state.current] = true end
  state.current = name
end

-- Handles a # HELP or # TYPE line.
local function comment(state, line, n)
  local kind, name, rest = line:match("^# (%u+) ([^ ]+)(.*)$")
  if kind ~= "HELP" and kind ~= "TYPE" then fail(n, "comment other than HELP or TYPE: %q", line) end
  if not name:match(METRIC_NAME .. "$") then fail(n, "bad metric name %q", name) end
  if rest ~= "" and rest:sub(1, 1) ~= " " then fail(n, "bad %s line", kind) end
  rest = rest:sub(2)
  enter(state, name, n)
  local fam = state.fams[name]
  if not fam then
    fam = { name = name, samples = {}, series = {} }
    state.fams[name] = fam
    state.order[#state.order + 1] = name
  end
  if #fam.samples > 0 then fail(n, "%s of %s after its samples", kind, name) end
  if kind == "HELP" then
    if fam.help then fail(n, "second HELP for %s", name) end
    fam.help = unescape_help(n, rest)
  else
    if fam.type then fail(n, "second TYPE for %s", name) end
    if not TYPES[rest] then fail(n, "unknown type %q for %s", rest, name) end
    fam.type = rest
  end
end

-- Records a bucket/sum/count line of a histogram series.
local function histogram_line(fam, role, labels, v, value_text, n)
  local key = series_key(labels)
  local s = fam.series[key]
  if not s then
    s = { buckets = {}, key = key }
    fam.series[key] = s
    fam.series_order[#fam.series_order + 1] = key
  end
  if role == "bucket" then
    if labels.le == nil then fail(n, "%s_bucket without le", fam.name) end
    local le = M.number(labels.le)
    if le == nil or le ~= le then fail(n, "bad le %q", labels.le) end
    local last = s.buckets[#s.buckets]
    if last and le <= last.le then fail(n, "le %s not above the previous bucket's", labels.le) end
    if last and v < last.count then fail(n, "bucket le=%s counts fewer than the one before", labels.le) end
    s.buckets[#s.buckets + 1] = { le = le, count = v, le_text = labels.le }
  else
    if labels.le ~= nil then fail(n, "le on %s_%s", fam.name, role) end
    if s[role] ~= nil then fail(n, "second %s_%s for {%s}", fam.name, role, key) end
    s[role] = v
    if role == "count" and value_text:find("[.eE]") then fail(n, "_count %s is not an integer", value_text) end
  end
end

-- Handles a sample line.
local function sample_line(state, line, n)
  local name, labels, order, v, value_text = sample(line, n)
  local fam, role = family_of(state.fams, name)
  if not fam then fail(n, "sample %s belongs to no family declared by TYPE before it", name) end
  if not fam.help or not fam.type then fail(n, "%s lacks HELP or TYPE before its first sample", fam.name) end
  enter(state, fam.name, n)
  local id = name .. "{" .. series_key(labels) .. (labels.le and (",le=" .. M.number(labels.le)) or "") .. "}"
  if state.seen[id] then fail(n, "sample %s given twice", id) end
  state.seen[id] = true
  if fam.type == "counter" and (v ~= v or v < 0) then fail(n, "counter %s has value %s", name, value_text) end
  if fam.type == "histogram" then
    fam.series_order = fam.series_order or {}
    histogram_line(fam, role, labels, v, value_text, n)
  elseif labels.le ~= nil and fam.type ~= "untyped" then
    fail(n, "le label on a %s", fam.type)
  end
  fam.samples[#fam.samples + 1] = { name = name, labels = labels, order = order, value = v, text = value_text }
end

-- Checks every histogram series once the text is read.
local function finish_histograms(state)
  for _, name in ipairs(state.order) do
    local fam = state.fams[name]
    for _, key in ipairs(fam.series_order or {}) do
      local s = fam.series[key]
      local last = s.buckets[#s.buckets]
      local where = ("%s{%s}"):format(name, key)
      if not last or last.le ~= math.huge then error(where .. ": no le=\"+Inf\" bucket", 0) end
      if s.count == nil or s.sum == nil then error(where .. ": _sum or _count missing", 0) end
      if last.count ~= s.count then
        error(("%s: +Inf bucket %s differs from _count %s"):format(where, last.count, s.count), 0)
      end
    end
  end
end

--- Parses text; returns {order = {family names}, families = {name = {name,
--- type, help, samples = {{name, labels, order, value, text}}, series =
--- {histogram series by label key}}}} or raises "line N: ...".
---@param text string
---@return table
function M.parse(text)
  assert(type(text) == "string", "parse: expects a string")
  local state = { fams = {}, order = {}, closed = {}, seen = {} }
  if text == "" then return { order = {}, families = {} } end
  if text:sub(-1) ~= "\n" then error("the text does not end with a newline", 0) end
  local n = 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    if line == "" then fail(n, "empty line") end
    if line:sub(1, 1) == "#" then comment(state, line, n) else sample_line(state, line, n) end
  end
  finish_histograms(state)
  return { order = state.order, families = state.fams }
end

--- The value of the sample name{labels} in a parsed text, or nil.
---@param parsed table  what parse returned
---@param name string   the sample's name (x_bucket, x_sum ... for a histogram)
---@param labels? table<string, string>
---@return number|nil
function M.value(parsed, name, labels)
  for _, fname in ipairs(parsed.order) do
    for _, s in ipairs(parsed.families[fname].samples) do
      if s.name == name and series_key(s.labels) == series_key(labels or {})
          and s.labels.le == (labels or {}).le then
        return s.value
      end
    end
  end
  return nil
end

return M
