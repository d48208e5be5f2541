--- resi.metrics: a registry of Prometheus metrics (counters, gauges,
--- histograms) rendered in the text exposition format 0.0.4.
---
---   local reg = metrics.new_registry()
---   local runs = reg:counter("resi_job_runs_total", "Runs by outcome.", { "job", "outcome" })
---   runs:init { job = "rotate", outcome = "failed" }        -- exported as 0 from now on
---   runs:inc { job = "rotate", outcome = "succeeded" }      -- +1
---   reg:collect(function(r) ... end)                        -- runs at every render
---   io.write(reg:render())
---
--- Order: families in registration order; within a family, series in the
--- order they were created (init or first update). A family with no series
--- yet is left out. Labels are a table keyed by label name; every declared
--- label must be given, no other. Values are strings or numbers (a number
--- becomes its exposition text). Programmer errors (a bad name, a missing
--- label, a negative increment) raise, naming the metric.
---
--- Storage is flat: one array of values per family and one array of escaped
--- label values per label name, indexed by a tree of label values, so a
--- counter or gauge series costs about 120 bytes of Lua heap (bench/metrics_render.lua).
--- render{yield_every = N} lets the loop run while a large registry is
--- written (resi.health does): a big scrape then holds the loop for short
--- stretches (a few tens of ms) instead of for the whole render.
local M = {}

local math_type, tostring, type, next, format = math.type, tostring, type, next, string.format
local huge = math.huge
local task = require "resi.task"
local sleep = task.sleep

--- The Content-Type of render()'s output.
M.CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

--- client_golang's default histogram buckets (seconds).
M.default_buckets = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }

local METRIC_NAME = "^[A-Za-z_:][A-Za-z0-9_:]*$"
local LABEL_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"

-- Raises msg at the caller's line: the first stack level outside this file.
local bad = require("resi.caller_error")("resi.metrics")

--- Formats a sample value so that Go's ParseFloat reads back the same
--- number: integers as digits, NaN, +Inf, -Inf, whole floats without a
--- fraction, others in the shortest of %.15g/%.16g/%.17g that round-trips.
---@param v number
---@return string
function M.format_value(v)
  if math_type(v) == "integer" then return tostring(v) end
  if v ~= v then return "NaN" end
  if v == huge then return "+Inf" end
  if v == -huge then return "-Inf" end
  if v == math.floor(v) and v > -1e15 and v < 1e15 then return format("%d", v) end
  for digits = 15, 16 do
    local s = format("%." .. digits .. "g", v)
    if tonumber(s) == v then return s end
  end
  return format("%.17g", v)
end
local format_value = M.format_value

local LABEL_ESCAPES = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }

--- Escapes a label value: backslash, double quote and newline.
---@param s string
---@return string
function M.escape_label_value(s) return (s:gsub('[\\"\n]', LABEL_ESCAPES)) end
local escape_label_value = M.escape_label_value

--- Escapes HELP text: backslash and newline.
---@param s string
---@return string
function M.escape_help(s) return (s:gsub("[\\\n]", LABEL_ESCAPES)) end

--- Bucket bounds growing by a factor: start, start*factor, ... (count of them).
---@param start number
---@param factor number
---@param count integer
---@return number[]
function M.exponential_buckets(start, factor, count)
  if not (type(start) == "number" and start > 0 and type(factor) == "number" and factor > 1
      and math_type(count) == "integer" and count >= 1) then
    bad("exponential_buckets: needs start > 0, factor > 1 and an integer count >= 1")
  end
  local out = {}
  for i = 1, count do out[i] = start * factor ^ (i - 1) end
  return out
end

-- Series storage ---------------------------------------------------------

-- The text of a label value given as a string or a number.
local function label_text(fam, name, v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return format_value(v) end
  if v == nil then bad(("%s: label %q is missing"):format(fam.name, name)) end
  bad(("%s: label %q must be a string or a number, got a %s"):format(fam.name, name, t))
end

-- Raises the error for a labels table with a wrong set of names.
local function wrong_labels(fam, labels)
  for k in pairs(labels) do
    if type(k) ~= "string" or not fam.has_label[k] then
      bad(("%s: unknown label %s (labels are: %s)"):format(fam.name, tostring(k),
        table.concat(fam.labelnames, ", ")))
    end
  end
  for _, name in ipairs(fam.labelnames) do label_text(fam, name, labels[name]) end
end

-- Checks labels against the family's names: a table with exactly them (or
-- nothing for a family without labels).
local function check_labels(fam, labels)
  if fam.nlabels == 0 then
    if labels == nil or (type(labels) == "table" and next(labels) == nil) then return end
    bad(fam.name .. ": has no labels; pass nil or {}")
  end
  if type(labels) ~= "table" then
    bad(("%s: expects a table of labels {%s}"):format(fam.name, table.concat(fam.labelnames, ", ")))
  end
  local count = 0
  for _ in next, labels do count = count + 1 end
  if count ~= fam.nlabels then wrong_labels(fam, labels) end
end

-- Creates the series for labels (checked already); returns its slot.
local function create(fam, labels)
  local names, nl = fam.labelnames, fam.nlabels
  local texts = {}
  for k = 1, nl do
    if labels[names[k]] == nil then wrong_labels(fam, labels) end -- an unknown label before a missing one
    local v = label_text(fam, names[k], labels[names[k]])
    if not utf8.len(v) then bad(("%s: label %q is not valid UTF-8"):format(fam.name, names[k])) end
    texts[k] = v
  end
  local i = fam.n + 1
  if nl > 0 then
    local node = fam.index
    for k = 1, nl - 1 do
      local child = node[texts[k]]
      if child == nil then child = {}; node[texts[k]] = child end
      node = child
    end
    node[texts[nl]] = i
  end
  for k = 1, nl do fam.lv[k][i] = escape_label_value(texts[k]) end
  fam.n = i
  fam.zero(fam, i)
  return i
end

-- The slot of the series for labels: created when create is true, else nil
-- when there is none.
local function find(fam, labels, want_create)
  check_labels(fam, labels)
  local nl = fam.nlabels
  if nl == 0 then return 1 end
  local names, node = fam.labelnames, fam.index
  for k = 1, nl do
    local v = labels[names[k]]
    if type(v) ~= "string" then
      if v == nil then wrong_labels(fam, labels) end -- names an unknown label before the missing one
      v = label_text(fam, names[k], v)
    end
    node = node[v]
    if node == nil then return want_create and create(fam, labels) or nil end
  end
  return node
end

-- Deletes labels' leaf from the index tree, pruning emptied nodes.
local function unindex(fam, labels)
  local path, node = {}, fam.index
  local names = fam.labelnames
  for k = 1, fam.nlabels do
    local v = label_text(fam, names[k], labels[names[k]])
    path[k] = { node, v }
    node = node[v]
  end
  for k = fam.nlabels, 1, -1 do
    local parent, key = path[k][1], path[k][2]
    if k < fam.nlabels and next(parent[key]) ~= nil then break end
    parent[key] = nil
  end
end

-- Renumbers the index tree's leaves after compaction.
local function remap(node, depth, map)
  for k, child in pairs(node) do
    if depth == 1 then node[k] = map[child] else remap(child, depth - 1, map) end
  end
end

-- Drops removed series from the arrays, keeping the others' order.
local function compact(fam)
  local map, j = {}, 0
  for i = 1, fam.n do
    if fam.alive(fam, i) then
      j = j + 1
      map[i] = j
      if i ~= j then
        fam.move(fam, i, j)
        for k = 1, fam.nlabels do fam.lv[k][j] = fam.lv[k][i] end
      end
    end
  end
  for i = j + 1, fam.n do
    fam.move(fam, i, nil)
    for k = 1, fam.nlabels do fam.lv[k][i] = nil end
  end
  remap(fam.index, fam.nlabels, map)
  fam.n, fam.dead = j, 0
end

-- Family methods shared by every type -------------------------------------

---@class resi.metrics.family
---@field name string
---@field help string
---@field type "counter"|"gauge"|"histogram"
---@field labelnames string[]
local Family = {}

--- Creates the series for labels (at 0) so that it is exported before its
--- first update ("avoid missing metrics"); does nothing when it exists.
---@param labels? table<string, string|number>
---@return resi.metrics.family self
function Family:init(labels)
  find(self, labels, true)
  return self
end

--- Forgets the series for labels (a job that was removed, say). Returns
--- whether there was one. A family without labels cannot lose its series.
---@param labels table<string, string|number>
---@return boolean
function Family:remove(labels)
  if self.nlabels == 0 then bad(self.name .. ": has no labels; its one series cannot be removed") end
  local i = find(self, labels, false)
  if not i then return false end
  unindex(self, labels)
  self.kill(self, i)
  self.dead = self.dead + 1
  return true
end

-- Tombstones the series under node whose labels match want (label position
-- -> value, nil for any) from depth k on; prunes emptied nodes; returns the count.
local function remove_under(fam, node, k, want)
  local removed = 0
  local function visit(v, child)
    if k == fam.nlabels then
      fam.kill(fam, child)
      removed = removed + 1
      node[v] = nil
      return
    end
    removed = removed + remove_under(fam, child, k + 1, want)
    if next(child) == nil then node[v] = nil end
  end
  local only = want[k]
  if only ~= nil then
    if node[only] ~= nil then visit(only, node[only]) end
  else
    for v, child in pairs(node) do visit(v, child) end
  end
  return removed
end

--- Forgets every series whose labels include all of partial ({job =
--- "rotate"} drops every outcome of that job). Returns how many went.
---@param partial table<string, string|number>
---@return integer
function Family:remove_where(partial)
  if self.nlabels == 0 then bad(self.name .. ": has no labels; its one series cannot be removed") end
  if type(partial) ~= "table" then bad(self.name .. ":remove_where: expects a table of labels") end
  local want = {}
  for name, v in pairs(partial) do
    local k = type(name) == "string" and self.has_label[name]
    if not k then bad(("%s: unknown label %s"):format(self.name, tostring(name))) end
    want[k] = label_text(self, name, v)
  end
  local removed = remove_under(self, self.index, 1, want)
  self.dead = self.dead + removed
  return removed
end

--- Forgets every series (a family without labels goes back to 0).
function Family:clear()
  if self.nlabels == 0 then return self.zero(self, 1) end
  for i = 1, self.n do
    if self.alive(self, i) then
      self.kill(self, i)
      self.dead = self.dead + 1
    end
  end
  self.index = {}
end

--- Number of series exported.
---@return integer
function Family:size() return self.n - self.dead end

-- Counter and gauge ------------------------------------------------------

-- Slot helpers of a scalar family (value false marks a removed series).
-- A new series starts at 0.
local function scalar_zero(fam, i) fam.value[i] = 0 end
-- Is slot i a live series?
local function scalar_alive(fam, i) return fam.value[i] ~= false end
-- Marks slot i removed (dropped at the next compaction).
local function scalar_kill(fam, i) fam.value[i] = false end
-- Moves slot i to j (j nil: just frees i).
local function scalar_move(fam, i, j)
  if j then fam.value[j] = fam.value[i] end
  fam.value[i] = nil
end

-- Checks that v is a number (not NaN when no_nan), naming the method.
local function check_number(fam, what, v, no_nan)
  if type(v) ~= "number" or (no_nan and v ~= v) then
    bad(("%s:%s: expects a number%s, got %s"):format(fam.name, what, no_nan and " (not NaN)" or "", tostring(v)))
  end
end

---@class resi.metrics.counter: resi.metrics.family
local Counter = setmetatable({}, { __index = Family })
Counter.__index = Counter

--- Adds n (default 1, never negative) to the series for labels.
---@param labels? table<string, string|number>
---@param n? number
function Counter:inc(labels, n)
  if n == nil then n = 1 elseif not (type(n) == "number" and n >= 0) then
    bad(("%s:inc: a counter only goes up; got %s"):format(self.name, tostring(n)))
  end
  local i = find(self, labels, true)
  self.value[i] = self.value[i] + n
end

--- Sets the series to v: for collectors mirroring a count kept elsewhere
--- (the HTTP client's, a limiter's). v must be a number >= 0.
---@param labels? table<string, string|number>
---@param v number
function Counter:set(labels, v)
  if not (type(v) == "number" and v >= 0) then
    bad(("%s:set: a counter's value is a number >= 0; got %s"):format(self.name, tostring(v)))
  end
  self.value[find(self, labels, true)] = v
end

--- The value of the series for labels, or nil when it does not exist.
---@param labels? table<string, string|number>
---@return number|nil
function Counter:get(labels)
  local i = find(self, labels, false)
  return i and self.value[i] or nil
end

---@class resi.metrics.gauge: resi.metrics.family
local Gauge = setmetatable({}, { __index = Family })
Gauge.__index = Gauge

--- Sets the series for labels to v (any number, NaN and infinities too).
---@param labels? table<string, string|number>
---@param v number
function Gauge:set(labels, v)
  check_number(self, "set", v)
  self.value[find(self, labels, true)] = v
end

--- Adds n (default 1; may be negative) to the series for labels.
---@param labels? table<string, string|number>
---@param n? number
function Gauge:inc(labels, n)
  if n == nil then n = 1 else check_number(self, "inc", n) end
  local i = find(self, labels, true)
  self.value[i] = self.value[i] + n
end

--- Subtracts n (default 1) from the series for labels.
---@param labels? table<string, string|number>
---@param n? number
function Gauge:dec(labels, n)
  if n == nil then n = 1 else check_number(self, "dec", n) end
  local i = find(self, labels, true)
  self.value[i] = self.value[i] - n
end

Gauge.get = Counter.get

-- Histogram --------------------------------------------------------------

-- Slot helpers of a histogram: count[i] (false once removed), sum[i], and
-- nb1 = #buckets + 1 per-bucket (not cumulative) counts from bc[(i-1)*nb1+1].
-- A new series: no observations.
local function hist_zero(fam, i)
  fam.count[i], fam.sum[i] = 0, 0
  local base = (i - 1) * fam.nb1
  for b = 1, fam.nb1 do fam.bc[base + b] = 0 end
end
-- Is slot i a live series?
local function hist_alive(fam, i) return fam.count[i] ~= false end
-- Marks slot i removed (dropped at the next compaction).
local function hist_kill(fam, i) fam.count[i] = false end
-- Moves slot i's counts to j (j nil: just frees i).
local function hist_move(fam, i, j)
  local nb1, bc = fam.nb1, fam.bc
  local from, to = (i - 1) * nb1, j and (j - 1) * nb1
  for b = 1, nb1 do
    if to then bc[to + b] = bc[from + b] end
    bc[from + b] = nil
  end
  if j then fam.count[j], fam.sum[j] = fam.count[i], fam.sum[i] end
  fam.count[i], fam.sum[i] = nil, nil
end

---@class resi.metrics.histogram: resi.metrics.family
---@field buckets number[]  upper bounds, ascending, without +Inf
local Histogram = setmetatable({}, { __index = Family })
Histogram.__index = Histogram

--- Records one observation v (a number, not NaN) in the series for labels:
--- it counts in every bucket whose bound is >= v.
---@param labels? table<string, string|number>
---@param v number
function Histogram:observe(labels, v)
  check_number(self, "observe", v, true)
  local i = find(self, labels, true)
  local bounds = self.buckets
  local b = 1
  while bounds[b] and v > bounds[b] do b = b + 1 end
  local slot = (i - 1) * self.nb1 + b
  self.bc[slot] = self.bc[slot] + 1
  self.count[i] = self.count[i] + 1
  self.sum[i] = self.sum[i] + v
end

--- The series for labels as {count, sum, buckets = {cumulative counts,
--- the last one for +Inf}}, or nil when it does not exist.
---@param labels? table<string, string|number>
---@return {count: integer, sum: number, buckets: integer[]}|nil
function Histogram:get(labels)
  local i = find(self, labels, false)
  if not i then return nil end
  local out, cum, base = {}, 0, (i - 1) * self.nb1
  for b = 1, self.nb1 do
    cum = cum + self.bc[base + b]
    out[b] = cum
  end
  return { count = self.count[i], sum = self.sum[i], buckets = out }
end

-- Rendering --------------------------------------------------------------

-- The text before a value of slot i: name{a="x",b="y"} followed by a space
-- (one concatenation per line: a buffer of many small pieces is slower).
local function head_of(fam, i)
  local nl, frag, lv, close = fam.nlabels, fam.frag, fam.lv, fam.close
  if nl == 0 then return close end
  if nl == 1 then return frag[1] .. lv[1][i] .. close end
  if nl == 2 then return frag[1] .. lv[1][i] .. frag[2] .. lv[2][i] .. close end
  local parts = {}
  for k = 1, nl do parts[2 * k - 1], parts[2 * k] = frag[k], lv[k][i] end
  parts[2 * nl + 1] = close
  return table.concat(parts)
end

-- Lines rendered into one chunk before it is joined (and, when the render
-- yields, before the loop gets a turn): joining small pieces as they come
-- keeps the buffer short and the final join a few large copies.
local CHUNK_LINES = 2000

-- Joins the lines buffered so far into a chunk; lets the loop run when the
-- render yields.
local function flush(out)
  out.chunks[#out.chunks + 1] = table.concat(out.buf, "", 1, out.n)
  out.n = 0
  if out.yield then sleep(0) end
end

-- Appends the samples of a counter or gauge. Slots removed while a render
-- waits (value false) are skipped.
local function render_scalar(fam, out)
  local value, buf, n, every = fam.value, out.buf, out.n, out.every
  for i = 1, fam.n do
    local v = value[i]
    if v then
      if math_type(v) ~= "integer" then v = format_value(v) end
      n = n + 1
      buf[n] = head_of(fam, i) .. v .. "\n"
      if n >= every then
        out.n = n
        flush(out)
        n = 0
      end
    end
  end
  out.n = n
end

-- The label pairs of slot i without braces: job="a",outcome="b".
local function inner_labels(fam, i)
  local parts = {}
  for k = 1, fam.nlabels do
    parts[k] = fam.labelnames[k] .. '="' .. fam.lv[k][i] .. '"'
  end
  return table.concat(parts, ",")
end

-- Appends one histogram series (buckets, _sum, _count); returns the new length.
local function render_histogram_series(fam, i, buf, n)
  local name, le = fam.name, fam.le_frag
  local inner = fam.nlabels > 0 and inner_labels(fam, i) or nil
  local head = inner and (name .. "_bucket{" .. inner .. ",") or (name .. "_bucket{")
  local bc, cum, base = fam.bc, 0, (i - 1) * fam.nb1
  for b = 1, fam.nb1 do
    cum = cum + bc[base + b]
    buf[n + b] = head .. le[b] .. cum .. "\n"
  end
  n = n + fam.nb1
  local braces = inner and ("{" .. inner .. "} ") or " "
  local sum = fam.sum[i]
  if math_type(sum) ~= "integer" then sum = format_value(sum) end
  buf[n + 1] = name .. "_sum" .. braces .. sum .. "\n"
  buf[n + 2] = name .. "_count" .. braces .. fam.count[i] .. "\n"
  return n + 2
end

-- Appends a histogram's samples (skipping slots removed meanwhile).
local function render_histogram(fam, out)
  local count = fam.count
  for i = 1, fam.n do
    if count[i] then
      out.n = render_histogram_series(fam, i, out.buf, out.n)
      if out.n >= out.every then flush(out) end
    end
  end
end

-- Appends a family (HELP, TYPE, samples) unless it has no series.
local function render_family(fam, out)
  if fam.dead > 0 then compact(fam) end
  if fam.n == 0 then return end
  out.n = out.n + 1
  out.buf[out.n] = fam.header
  fam.render(fam, out)
end

-- Registry ---------------------------------------------------------------

---@class resi.metrics.registry
local Registry = {}
Registry.__index = Registry

--- A new, empty registry.
---@return resi.metrics.registry
function M.new_registry()
  return setmetatable({ families = {}, by_name = {}, samples = {}, collectors = {}, render_queue = {},
    rendering = false }, Registry)
end

-- Checks the label names of a new family; returns a set of them.
local function check_labelnames(name, labelnames, kind)
  if labelnames == nil then return {} end
  if type(labelnames) ~= "table" then bad(name .. ": label names must be a list of strings") end
  local set = {}
  for i, l in ipairs(labelnames) do
    if type(l) ~= "string" or not l:match(LABEL_NAME) then
      bad(("%s: label name %s is not valid (%s)"):format(name, tostring(l), LABEL_NAME))
    end
    if l:sub(1, 2) == "__" then bad(("%s: label name %q is reserved (starts with __)"):format(name, l)) end
    if set[l] then bad(("%s: label name %q is given twice"):format(name, l)) end
    if kind == "histogram" and l == "le" then bad(name .. ": a histogram cannot have a label named le") end
    set[l] = i
  end
  local count = 0
  for _ in pairs(labelnames) do count = count + 1 end
  if count ~= #labelnames then bad(name .. ": label names must be a list (no holes, no keys)") end
  return set
end

-- The sorted, checked bucket bounds of a histogram (+Inf dropped: it is always added).
local function check_buckets(name, buckets)
  buckets = buckets or M.default_buckets
  if type(buckets) ~= "table" then bad(name .. ": buckets must be a list of numbers") end
  local out = {}
  for _, b in ipairs(buckets) do
    if type(b) ~= "number" or b ~= b then bad(("%s: bucket %s is not a number"):format(name, tostring(b))) end
    if b ~= huge then out[#out + 1] = b end
  end
  table.sort(out)
  for i = 2, #out do
    if out[i] == out[i - 1] then bad(("%s: bucket %s is given twice"):format(name, format_value(out[i]))) end
  end
  if #out == 0 or out[1] == -huge then bad(name .. ": needs at least one finite bucket bound") end
  return out
end

-- The sample names a family writes.
local function sample_names(name, kind)
  if kind == "histogram" then return { name .. "_bucket", name .. "_sum", name .. "_count" } end
  return { name }
end

-- Is an existing family the same as the one asked for?
local function same_family(fam, kind, help, labelnames, buckets)
  if fam.type ~= kind or fam.help ~= help or #fam.labelnames ~= #labelnames then return false end
  for i, l in ipairs(labelnames) do if fam.labelnames[i] ~= l then return false end end
  if kind ~= "histogram" then return true end
  if #fam.buckets ~= #buckets then return false end
  for i, b in ipairs(buckets) do if fam.buckets[i] ~= b then return false end end
  return true
end

-- The fixed text of a family: HELP/TYPE lines, label fragments, le fragments.
local function precompute(fam)
  local name, names = fam.name, fam.labelnames
  fam.header = ("# HELP %s %s\n# TYPE %s %s\n"):format(name, M.escape_help(fam.help), name, fam.type)
  fam.frag = {}
  for k, l in ipairs(names) do fam.frag[k] = (k == 1 and name .. "{" or '",') .. l .. '="' end
  fam.close = #names > 0 and '"} ' or name .. " "
  if fam.type == "histogram" then
    fam.le_frag = {}
    for b, bound in ipairs(fam.buckets) do fam.le_frag[b] = 'le="' .. format_value(bound) .. '"} ' end
    fam.le_frag[#fam.buckets + 1] = 'le="+Inf"} '
  end
end

-- The storage and slot helpers of a new family of the given type.
local function storage(fam)
  if fam.type == "histogram" then
    fam.nb1, fam.count, fam.sum, fam.bc = #fam.buckets + 1, {}, {}, {}
    fam.zero, fam.alive, fam.kill, fam.move, fam.render = hist_zero, hist_alive, hist_kill, hist_move, render_histogram
  else
    fam.value = {}
    fam.zero, fam.alive, fam.kill, fam.move, fam.render = scalar_zero, scalar_alive, scalar_kill, scalar_move, render_scalar
  end
  fam.lv = {}
  for k = 1, fam.nlabels do fam.lv[k] = {} end
end

-- Registers a family, or returns the same one registered before.
local function register(reg, kind, mt, name, help, labelnames, buckets)
  if type(name) ~= "string" or not name:match(METRIC_NAME) then
    bad(("metric name %s is not valid (%s)"):format(tostring(name), METRIC_NAME))
  end
  if type(help) ~= "string" or not utf8.len(help) then bad(name .. ": help must be a UTF-8 string") end
  if kind == "counter" and not name:match("_total$") then bad(name .. ": a counter's name must end in _total") end
  local has_label = check_labelnames(name, labelnames, kind)
  labelnames = labelnames or {}
  if kind == "histogram" then buckets = check_buckets(name, buckets) end
  local old = reg.by_name[name]
  if old then
    if same_family(old, kind, help, labelnames, buckets) then return old end
    bad(name .. ": registered already with another type, help, labels or buckets")
  end
  for _, s in ipairs(sample_names(name, kind)) do
    if reg.samples[s] then bad(("%s: its samples %s clash with metric %s"):format(name, s, reg.samples[s])) end
  end
  local copy = {}
  for i, l in ipairs(labelnames) do copy[i] = l end
  local fam = setmetatable({ name = name, help = help, type = kind, labelnames = copy, has_label = has_label,
    nlabels = #copy, buckets = buckets, index = {}, n = 0, dead = 0 }, mt)
  storage(fam)
  precompute(fam)
  if fam.nlabels == 0 then create(fam, nil) end
  for _, s in ipairs(sample_names(name, kind)) do reg.samples[s] = name end
  reg.by_name[name] = fam
  reg.families[#reg.families + 1] = fam
  return fam
end

--- Registers a counter (its name ends in _total). Registering the same
--- name again with the same help and labels returns the same counter.
---@param name string
---@param help string
---@param labelnames? string[]
---@return resi.metrics.counter
function Registry:counter(name, help, labelnames)
  return register(self, "counter", Counter, name, help, labelnames)
end

--- Registers a gauge.
---@param name string
---@param help string
---@param labelnames? string[]
---@return resi.metrics.gauge
function Registry:gauge(name, help, labelnames)
  return register(self, "gauge", Gauge, name, help, labelnames)
end

--- Registers a histogram with upper bounds `buckets` (default
--- metrics.default_buckets; sorted here; +Inf is always added).
---@param name string
---@param help string
---@param labelnames? string[]
---@param buckets? number[]
---@return resi.metrics.histogram
function Registry:histogram(name, help, labelnames, buckets)
  return register(self, "histogram", Histogram, name, help, labelnames, buckets)
end

--- The family registered under name, or nil.
---@param name string
---@return resi.metrics.family|nil
function Registry:get(name) return self.by_name[name] end

--- Adds a collector: fn(registry) runs at every render, before the text is
--- written, in the order collectors were added; it sets the families it
--- registered (process figures, the HTTP client's and limiters' counters).
--- A collector's error is raised by render.
---@param fn fun(reg: resi.metrics.registry)
function Registry:collect(fn)
  if type(fn) ~= "function" then bad("collect: expects a function") end
  self.collectors[#self.collectors + 1] = fn
end

-- Waits until no other render is in progress, then takes the registry.
local function take_turn(reg)
  while reg.rendering do
    task.await(function(done) reg.render_queue[#reg.render_queue + 1] = done end)
  end
  reg.rendering = true
end

-- Frees the registry and wakes the renders waiting for it: the first to
-- run takes it, the others wait again (a waiter cancelled meanwhile holds
-- nothing: its wake-up is stale and ignored).
local function pass_turn(reg)
  reg.rendering = false
  local waiting = reg.render_queue
  reg.render_queue = {}
  for _, done in ipairs(waiting) do done() end
end

-- Runs the collectors and writes every family; returns the text.
local function render_all(reg, yield_every)
  for _, fn in ipairs(reg.collectors) do fn(reg) end
  local out = { buf = {}, n = 0, chunks = {}, every = yield_every or CHUNK_LINES, yield = yield_every ~= nil }
  for _, fam in ipairs(reg.families) do render_family(fam, out) end
  if #out.chunks == 0 then return table.concat(out.buf, "", 1, out.n) end
  out.yield = false
  flush(out)
  return table.concat(out.chunks)
end

--- Runs the collectors, then returns the exposition text (format 0.0.4):
--- families in registration order, each as one group, HELP and TYPE first,
--- a newline after every line. With opts.yield_every = N the render lets the
--- loop run every N lines (a registry of 10,000 jobs takes a few hundred ms
--- to write, which must not delay the jobs' timers); a render that yields
--- holds the registry, so a second render waits for it (renders never
--- interleave). Updates made meanwhile land in this render or the next.
---@param opts? {yield_every?: integer}
---@return string
function Registry:render(opts)
  local every = opts and opts.yield_every
  if every ~= nil and not (math_type(every) == "integer" and every > 0) then
    bad("render: yield_every must be a positive integer")
  end
  take_turn(self)
  local ok, text = pcall(render_all, self, every)
  pass_turn(self)
  if not ok then error(text, 0) end
  return text
end

return M
