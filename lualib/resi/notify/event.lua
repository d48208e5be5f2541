--- resi.notify.event: what a notification says, checked once and shared by
--- every target. An event given to notifier:send is
---   {kind = "rotation", title = "2 tokens rotated", text = "...",
---    fields = {rotated = 2, out = "proxies.txt"} | {{name=, value=}, ...},
---    severity = "info" | "success" | "warning" | "error",
---    credentials = {...}}   -- new proxy credentials, sent only with include_credentials
--- and becomes {id, kind, title, text, fields = {{name, value}...},
--- severity, time, credentials?, withheld?}: fields in a stable order (a
--- map's keys sorted), every value a string. Unless the notifier has
--- include_credentials = true, a field named like a secret shows its
--- masked form, text and values are scrubbed of credentials (URL
--- passwords, user:pass@host), and `credentials` is dropped (its count is
--- kept as `withheld`).
local secret = require "resi.secret"

local M = {}

--- The severities, in rising order.
M.SEVERITIES = { info = 1, success = 1, warning = 2, error = 3 }

-- A value as text for a field.
local function text_of(v)
  if type(v) == "table" then
    local ok, s = pcall(require("resi.json").encode, v)
    return ok and s or tostring(v)
  end
  return tostring(v)
end

-- The fields as a list of {name=, value=} (a map's keys sorted).
local function field_list(fields)
  local out = {}
  if fields == nil then return out end
  if type(fields) ~= "table" then error("event.fields must be a table", 0) end
  if #fields > 0 then
    for i, f in ipairs(fields) do
      if type(f) ~= "table" then error(("event.fields[%d] must be {name=, value=}"):format(i), 0) end
      local name, value = f.name or f[1], f.value
      if value == nil then value = f[2] end
      if name == nil then error(("event.fields[%d] has no name"):format(i), 0) end
      out[#out + 1] = { name = tostring(name), value = text_of(value) }
    end
    return out
  end
  local keys = {}
  for k in pairs(fields) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do out[#out + 1] = { name = tostring(k), value = text_of(fields[k]) } end
  return out
end

-- The credentials of an event as a list of strings.
local function credential_list(c)
  if c == nil then return nil end
  if type(c) == "string" then c = { c } end
  if type(c) ~= "table" then error("event.credentials must be a string or a list", 0) end
  local out = {}
  for i, v in ipairs(c) do out[i] = type(v) == "table" and text_of(v) or tostring(v) end
  return out
end

-- A field value or text, masked unless credentials may be sent.
local function guard(name, value, include)
  if include then return value end
  if name and secret.is_secret_field(name) then return secret.mask_field(name, value) end
  return secret.scrub(value)
end

--- Checks and normalises an event. Raises a message naming the field when
--- it is not an event (the caller, notifier:send, turns that into a
--- logged failure).
---@param e table
---@param opts? {include_credentials?: boolean, now?: number}
---@return table
function M.normalize(e, opts)
  opts = opts or {}
  if type(e) ~= "table" then error("an event must be a table {kind=, title=, text=, fields=, severity=}", 0) end
  local include = opts.include_credentials == true
  local severity = e.severity or "info"
  if not M.SEVERITIES[severity] then
    error(("event.severity must be info, success, warning or error, got %s"):format(tostring(severity)), 0)
  end
  local title = e.title ~= nil and tostring(e.title) or nil
  local text = e.text ~= nil and tostring(e.text) or nil
  if not title and not text then error("an event needs a title or a text", 0) end
  local kind = tostring(e.kind or "notice")
  if not kind:match("^[%w_.:-]+$") then error("event.kind must be letters, digits, _ . : - (got " .. kind .. ")", 0) end
  local out = {
    id = e.id and tostring(e.id) or require("resi.random").hex(16),
    kind = kind,
    title = guard(nil, title or kind, include),
    text = text and guard(nil, text, include) or nil,
    severity = severity,
    time = e.time or opts.now or require("resi.core").now(),
    fields = {},
  }
  for _, f in ipairs(field_list(e.fields)) do
    out.fields[#out.fields + 1] = { name = f.name, value = guard(f.name, f.value, include) }
  end
  local creds = credential_list(e.credentials)
  if creds and #creds > 0 then
    if include then out.credentials = creds else out.withheld = #creds end
  end
  return out
end

--- The event's time as RFC 3339 UTC ("2026-03-29T06:00:00Z").
---@param e table a normalised event
---@return string
function M.iso(e)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(e.time))
end

--- The note shown in place of withheld credentials, or nil.
---@param e table
---@return string|nil
function M.withheld_note(e)
  if not e.withheld then return nil end
  return ("%d credential%s withheld (include_credentials is off)"):format(e.withheld, e.withheld == 1 and "" or "s")
end

--- The event as plain text: title, text, one "name: value" line per field
--- and the credentials (or the withheld note). Used by email and the CLI.
---@param e table
---@return string
function M.plain(e)
  local lines = { e.title }
  if e.text then lines[#lines + 1] = ""; lines[#lines + 1] = e.text end
  if #e.fields > 0 then
    lines[#lines + 1] = ""
    for _, f in ipairs(e.fields) do lines[#lines + 1] = f.name .. ": " .. f.value end
  end
  if e.credentials then
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Credentials:"
    for _, c in ipairs(e.credentials) do lines[#lines + 1] = c end
  elseif e.withheld then
    lines[#lines + 1] = ""
    lines[#lines + 1] = M.withheld_note(e)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = ("severity: %s | event: %s | %s | id %s"):format(e.severity, e.kind, M.iso(e), e.id)
  return table.concat(lines, "\n")
end

--- Cuts s to at most n bytes on a UTF-8 boundary, marking the cut with "…".
---@param s string
---@param n integer
---@return string
function M.cut(s, n)
  if #s <= n then return s end
  local stop = n - 3 -- room for "…" (3 bytes)
  while stop > 0 and (s:byte(stop + 1) or 0) >= 0x80 and (s:byte(stop + 1) or 0) < 0xC0 do stop = stop - 1 end
  return s:sub(1, stop) .. "…"
end

return M
