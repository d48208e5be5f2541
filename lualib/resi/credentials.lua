--- resi.credentials: where a credential (UNKNOWNPROXIES_PASSWORD, RF_API_KEY,
--- ...) comes from, in one place, for every provider, script, CLI command and
--- the jobs daemon. In order:
---   1. the environment variable NAME;
---   2. the file named by NAME_FILE (the Docker/Compose secrets convention);
---   3. $CREDENTIALS_DIRECTORY/NAME, or the same name in lower case
---      (systemd's LoadCredential=).
--- NAME and NAME_FILE both set is an error naming both (which one is meant
--- cannot be guessed). A trailing newline is dropped. A credential file that
--- group or others may read gets a warning on stderr (resi.log) naming the
--- file, once per file. Values are never logged or put in an error message;
--- only names and file paths are.
local M = {}

--- Every credential variable resi reads (each also as NAME_FILE and in
--- $CREDENTIALS_DIRECTORY): the providers' logins and key, the proxy
--- user's password of `resi proxies sticky`, and the notification targets'.
M.NAMES = {
  "UNKNOWNPROXIES_USERNAME", "UNKNOWNPROXIES_PASSWORD", "OXYLABS_USERNAME", "OXYLABS_PASSWORD", "RF_API_KEY",
  "RESI_PROXY_PASSWORD",
  "RESI_NOTIFY_WEBHOOK_URL", "RESI_NOTIFY_WEBHOOK_SECRET", "RESI_NOTIFY_SLACK_URL", "RESI_NOTIFY_DISCORD_URL",
  "RESI_NOTIFY_TELEGRAM_TOKEN", "RESI_NOTIFY_TELEGRAM_CHAT_ID", "RESI_NOTIFY_SMTP_URL", "RESI_NOTIFY_SMTP_USERNAME",
  "RESI_NOTIFY_SMTP_PASSWORD", "RESI_NOTIFY_EMAIL_TO", "RESI_NOTIFY_EMAIL_FROM",
}

-- The files already warned about (one warning per file and process).
local warned = {}

-- Warns (once) when the credential file at path may be read by group or
-- others: a secret there is not the owner's alone.
local function check_mode(path, name)
  if warned[path] then return end
  local st = require("luv").fs_stat(path)
  if st and st.mode & 0x24 ~= 0 then -- 0044: group or other read
    warned[path] = true
    require("resi.log").warn(("credential file %s (%s) is readable by group or others; chmod 600 it"):format(path, name),
      { file = path, variable = name, mode = ("%04o"):format(st.mode & 0xfff) })
  end
end

-- Reads a credential file; the value without its trailing newline, or nil
-- and why (naming the file, never a value).
local function read_file(path, name)
  local v, err = require("resi.fs").read(path)
  if not v then return nil, err or "not a readable file" end
  check_mode(path, name)
  return (v:gsub("\r?\n$", ""))
end

-- The file in $CREDENTIALS_DIRECTORY that holds NAME (NAME, else its lower
-- case), or nil when there is none.
local function directory_file(name)
  local dir = os.getenv("CREDENTIALS_DIRECTORY")
  if not dir or dir == "" or not name:match("^[%w_]+$") then return nil end
  local fs = require "resi.fs"
  for _, n in ipairs { name, name:lower() } do
    local path = dir .. "/" .. n
    if fs.exists(path) then return path end
  end
  return nil
end

--- The credential NAME, or nil when it is set nowhere. Raises an error
--- naming the variables (never a value) when NAME and NAME_FILE are both
--- set, or when NAME_FILE or the directory's file cannot be read.
---@param name string an environment variable name, e.g. "RF_API_KEY"
---@return string|nil
function M.get(name)
  local v = os.getenv(name)
  local file = os.getenv(name .. "_FILE")
  if v and v ~= "" and file and file ~= "" then
    error(("%s and %s_FILE are both set: keep one (the value, or the file %s)"):format(name, name, file), 0)
  end
  if v and v ~= "" then return v end
  if file and file ~= "" then
    local value, err = read_file(file, name)
    if not value then error(("%s_FILE: cannot read %s (%s)"):format(name, file, tostring(err)), 0) end
    return value
  end
  local path = directory_file(name)
  if not path then return nil end
  local value, err = read_file(path, name)
  if not value then error(("%s: cannot read $CREDENTIALS_DIRECTORY file %s (%s)"):format(name, path, tostring(err)), 0) end
  return value
end

-- The known credential names by their lower-case spelling.
local KNOWN_LOWER = {}
for _, n in ipairs(M.NAMES) do KNOWN_LOWER[n:lower()] = n end

--- Exports every $CREDENTIALS_DIRECTORY/NAME file (NAME an environment
--- variable name, or the lower-case name of one of M.NAMES; neither NAME
--- nor NAME_FILE set already) as the variable NAME, so scripts that read os.getenv see
--- systemd's credentials too. Returns the names exported.
---@return string[]
function M.export_directory()
  local uv = require "luv"
  local dir = os.getenv("CREDENTIALS_DIRECTORY")
  local h = dir and dir ~= "" and uv.fs_scandir(dir)
  local names = {}
  while h do
    local file = uv.fs_scandir_next(h)
    if not file then break end
    local name = file:match("^[A-Z][A-Z0-9_]*$") and file or KNOWN_LOWER[file]
    if name and not os.getenv(name) and not os.getenv(name .. "_FILE") then
      local v = read_file(dir .. "/" .. file, name)
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
