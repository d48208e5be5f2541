--- resi.repl.history: the REPL's own history file, never the line editor's
--- format (a readline <-> libedit switch cannot corrupt it).
---
--- The file is $RESI_HISTORY, else $XDG_STATE_HOME/resi/history, else
--- ~/.local/state/resi/history; RESI_HISTORY= (set, empty) turns history
--- off. Directory 0700, file 0600. One entry a line, appended when the entry
--- is accepted, before it runs (a crash keeps it): a one-line entry as
--- typed, an entry with a newline (or a leading `"`) as a JSON string.
--- The last RESI_HISTORY_SIZE (default 1,000) are kept: older ones are cut
--- when the file is loaded. Entries that carry a secret are not written: an
--- `rf_live_` key, a literal value given to a secret-named field
--- (`password = "..."`, `api_key = '...'`, `token = [[...]]`), a Bearer or
--- Basic credential, or any entry starting with a space (as shells do).
local json = require "resi.json"
local secret = require "resi.secret"

local M = {}

--- Entries kept when RESI_HISTORY_SIZE is not set.
M.SIZE = 1000

local DIR_MODE, FILE_MODE = 448, 384 -- 0700, 0600

--- The history file's path, or nil when history is off (RESI_HISTORY=).
---@param getenv? fun(name: string): string|nil
---@return string|nil
function M.path(getenv)
  getenv = getenv or os.getenv
  local explicit = getenv("RESI_HISTORY")
  if explicit then return explicit ~= "" and explicit or nil end
  local state = getenv("XDG_STATE_HOME")
  if state and state ~= "" then return state .. "/resi/history" end
  local home = getenv("HOME")
  if not home or home == "" then return nil end
  return home .. "/.local/state/resi/history"
end

-- Does the text give a literal value to a secret-named field?
local function literal_secret(entry)
  for name in entry:gmatch("([%a_][%w_]*)[\"'%]]*%s*=%s*[\"'%[]") do
    if secret.is_secret_field(name) then return true end
  end
  return false
end

--- May this entry be written to the history file?
---@param entry string
---@return boolean
function M.allowed(entry)
  if entry:match("^%s*$") or entry:sub(1, 1) == " " then return false end
  if entry:find("rf_live_", 1, true) then return false end
  if entry:find("[Bb]earer%s+[%w%-_.]") or entry:find("[Bb]asic%s+[%w+/=]") then return false end
  return not literal_secret(entry)
end

--- One entry as one line of the file.
---@param entry string
---@return string
function M.encode(entry)
  if entry:find("[%c]") or entry:sub(1, 1) == '"' then return json.encode(entry) end
  return entry
end

--- One line of the file as the entry (a line that looks like JSON but is
--- not is taken as typed).
---@param line string
---@return string
function M.decode(line)
  if line:sub(1, 1) == '"' then
    local ok, v = pcall(json.decode, line)
    if ok and type(v) == "string" then return v end
  end
  return line
end

-- Creates the directory of path (and its parents) with mode 0700.
local function make_dirs(path)
  local uv = require "luv"
  local dir = path:match("^(.*)/[^/]*$")
  if not dir or dir == "" or uv.fs_stat(dir) then return end
  make_dirs(dir)
  uv.fs_mkdir(dir, DIR_MODE)
end

local History = {}
History.__index = History

--- Reads the file: the entries, oldest first, the last `size` of them (the
--- file is rewritten without the older ones when it had more).
---@return string[]
function History:load()
  local f = io.open(self.path, "rb")
  if not f then return {} end
  local entries = {}
  for line in f:lines() do
    if line ~= "" then entries[#entries + 1] = M.decode(line) end
  end
  f:close()
  if #entries > self.size then
    entries = table.move(entries, #entries - self.size + 1, #entries, 1, {})
    self:rewrite(entries)
  end
  self.last = entries[#entries]
  return entries
end

--- Replaces the file's content with these entries (atomically, 0600).
---@param entries string[]
function History:rewrite(entries)
  local lines = {}
  for i, e in ipairs(entries) do lines[i] = M.encode(e) end
  local text = #lines > 0 and (table.concat(lines, "\n") .. "\n") or ""
  pcall(require("resi.fs").write_atomic, self.path, text, FILE_MODE)
end

--- Appends an accepted entry (unless it carries a secret, or repeats the
--- previous one). Returns true when it was written.
---@param entry string
---@return boolean
function History:add(entry)
  if not M.allowed(entry) or entry == self.last then return false end
  local uv = require "luv"
  make_dirs(self.path)
  local fd = uv.fs_open(self.path, "a", FILE_MODE)
  if not fd then return false end
  uv.fs_fchmod(fd, FILE_MODE)
  uv.fs_write(fd, M.encode(entry) .. "\n", -1)
  uv.fs_close(fd)
  self.last = entry
  return true
end

--- The history of this session: nil when history is off. opts.path
--- overrides the environment; opts.size the number of entries kept.
---@param opts? {path?: string, size?: integer}
---@return table|nil
function M.open(opts)
  opts = opts or {}
  local path = opts.path or M.path()
  if not path then return nil end
  local size = opts.size or math.tointeger(tonumber(os.getenv("RESI_HISTORY_SIZE") or "")) or M.SIZE
  return setmetatable({ path = path, size = size }, History)
end

return M
