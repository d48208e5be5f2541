--- resi.log: levelled logging to stderr. Text lines on a terminal, JSON lines
--- otherwise (or as RESI_LOG_FORMAT=text|json says); the level comes from
--- RESI_LOG_LEVEL (debug|info|warn|error, default info). Secrets are masked
--- by resi.secret before anything is written: fields named like secrets
--- (password, api_key, token, authorization ...) at any depth, and in every
--- other string, the message included, what looks like a credential: a URL's
--- password (http://user:…@host:80), user:pass@host, secret-named query
--- parameters (?api_key=…) and Authorization headers (Basic …). A field value
--- JSON cannot hold is written as a note saying why, never raised.
local core = require "resi.core"
local secret = require "resi.secret"

local M = {}

---@alias resi.log.level "debug"|"info"|"warn"|"error"

local LEVELS = { debug = 10, info = 20, warn = 30, error = 40 }

-- Settings from the environment; change them with M.configure.
local threshold = LEVELS[(os.getenv("RESI_LOG_LEVEL") or "info"):lower()] or LEVELS.info
local format = os.getenv("RESI_LOG_FORMAT")
if format ~= "text" and format ~= "json" then format = core.isatty(2) and "text" or "json" end
local sink = io.stderr

--- Changes the level, format or output file of the log; returns the settings
--- it replaced, so `log.configure(previous)` restores them.
---@param opts {level?: resi.log.level, format?: "text"|"json", file?: file*}
---@return {level: resi.log.level, format: "text"|"json", file: file*} previous
function M.configure(opts)
  local previous = { format = format, file = sink }
  for name, n in pairs(LEVELS) do if n == threshold then previous.level = name end end
  if opts.level then
    threshold = LEVELS[opts.level] or error("resi.log.configure: unknown level " .. tostring(opts.level), 2)
  end
  if opts.format then
    if opts.format ~= "text" and opts.format ~= "json" then
      error("resi.log.configure: format must be text or json", 2)
    end
    format = opts.format
  end
  if opts.file then sink = opts.file end
  return previous
end

--- Would a message at this level be written?
---@param level resi.log.level
---@return boolean
function M.enabled(level) return (LEVELS[level] or 0) >= threshold end

-- A value as JSON, or nil and why it cannot be.
local function try_json(v, opts)
  local ok, text = pcall(require("resi.json").encode, v, opts)
  if ok then return text end
  return nil, text
end

-- A field value as text for the text format.
local function text_value(v)
  if type(v) == "table" then
    local text, err = try_json(v)
    if text then return text end
    v = "<" .. err .. ">"
  end
  if type(v) == "string" then
    return v:find("[%s\"=]") and ("%q"):format(v) or v
  end
  return tostring(v)
end

-- The record as one JSON line; a field JSON cannot hold becomes a note.
local function json_line(rec)
  local text = try_json(rec, { sort_keys = true })
  if text then return text end
  for k, v in pairs(rec) do
    local _, err = try_json(v)
    if err then rec[k] = "<" .. err .. ">" end
  end
  return (try_json(rec, { sort_keys = true })) or '{"msg":"resi.log: record not encodable"}'
end

-- Writes one record.
local function write(level, msg, fields)
  if LEVELS[level] < threshold then return end
  fields = fields and secret.redact(fields) or nil
  msg = secret.scrub(tostring(msg))
  local now = core.now()
  local stamp = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(now)) .. ("%.3fZ"):format(now % 1):sub(2)
  if format == "json" then
    local rec = { ts = stamp, level = level, msg = msg }
    if fields then for k, v in pairs(fields) do if rec[k] == nil then rec[k] = v end end end
    sink:write(json_line(rec), "\n")
  else
    local parts = { stamp, level:upper(), msg }
    if fields then
      local keys = {}
      for k in pairs(fields) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. text_value(fields[k]) end
    end
    sink:write(table.concat(parts, " "), "\n")
  end
  sink:flush()
end

--- Writes a debug line (when RESI_LOG_LEVEL=debug); fields are masked.
---@param msg string
---@param fields? table
function M.debug(msg, fields) write("debug", msg, fields) end
--- Writes an info line; fields are masked.
---@param msg string
---@param fields? table
function M.info(msg, fields) write("info", msg, fields) end
--- Writes a warning line; fields are masked.
---@param msg string
---@param fields? table
function M.warn(msg, fields) write("warn", msg, fields) end
--- Writes an error line; fields are masked.
---@param msg string
---@param fields? table
function M.error(msg, fields) write("error", msg, fields) end

return M
