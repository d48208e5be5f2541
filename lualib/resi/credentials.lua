--- resi.credentials: where a credential (UNKNOWNPROXIES_PASSWORD, RF_API_KEY,
--- ...) comes from, in one place, for every provider, script and the jobs
--- daemon. In order:
---   1. the environment variable NAME;
---   2. the file named by NAME_FILE (the Docker/Kubernetes secrets convention);
---   3. $CREDENTIALS_DIRECTORY/NAME (systemd's LoadCredential=).
--- A trailing newline is dropped. Values are never logged or put in an error
--- message; only names and file paths are.
local M = {}

-- Reads a credential file; the value without its trailing newline, or nil
-- and why (naming the file).
local function read_file(path)
  local v, err = require("resi.fs").read(path)
  if not v then return nil, err end
  return (v:gsub("\r?\n$", ""))
end

--- The credential NAME, or nil when it is set nowhere. A NAME_FILE that
--- cannot be read is an error naming the variable and the file.
---@param name string an environment variable name, e.g. "RF_API_KEY"
---@return string|nil
function M.get(name)
  local v = os.getenv(name)
  if v and v ~= "" then return v end
  local file = os.getenv(name .. "_FILE")
  if file and file ~= "" then
    local value, err = read_file(file)
    if not value then error(("%s_FILE: cannot read %s (%s)"):format(name, file, tostring(err)), 2) end
    return value
  end
  local dir = os.getenv("CREDENTIALS_DIRECTORY")
  if dir and dir ~= "" and name:match("^[%w_]+$") then return (read_file(dir .. "/" .. name)) end
  return nil
end

--- Exports every $CREDENTIALS_DIRECTORY/NAME file (NAME an environment
--- variable name not set already) as the variable NAME, so scripts that read
--- os.getenv see systemd's credentials too. Returns the names exported.
---@return string[]
function M.export_directory()
  local uv = require "luv"
  local dir = os.getenv("CREDENTIALS_DIRECTORY")
  local h = dir and dir ~= "" and uv.fs_scandir(dir)
  local names = {}
  while h do
    local name = uv.fs_scandir_next(h)
    if not name then break end
    if name:match("^[A-Z][A-Z0-9_]*$") and not os.getenv(name) then
      local v = read_file(dir .. "/" .. name)
      if v then
        uv.os_setenv(name, v)
        names[#names + 1] = name
      end
    end
  end
  table.sort(names)
  return names
end

return M
