--- resi.notify.secrets: where a target's secrets come from, and how they
--- are kept out of output.
---
--- A secret option X of a target (a webhook's `secret`, a Slack or Discord
--- `url`, a Telegram `token`, an SMTP `password`) is taken, in order, from:
---   opts.X            the value itself (a script that has it already);
---   opts.X_env        the name of a credential: resi.credentials.get(NAME),
---                     so NAME, NAME_FILE or $CREDENTIALS_DIRECTORY/NAME;
---   the target's default credential name (RESI_NOTIFY_SLACK_URL ...).
--- Values are kept in a table only this module's callers hold (never in a
--- field a REPL print or resi.log could reach), and hide() takes every
--- known value out of a text before it is logged or returned as an error.
local credentials = require "resi.credentials"
local secret = require "resi.secret"

local M = {}

--- The value of option `name`: opts[name], else the credential named by
--- opts[name .. "_env"], else the credential `default_env`. Nil when unset;
--- a *_FILE that cannot be read raises (naming the variable, not the value).
---@param opts table
---@param name string
---@param default_env? string
---@return string|nil value
---@return string|nil source  where it came from (a variable name or "option")
function M.option(opts, name, default_env)
  local v = opts[name]
  if v ~= nil then
    if type(v) ~= "string" or v == "" then error(("%s must be a non-empty string"):format(name), 0) end
    return v, "option"
  end
  local env = opts[name .. "_env"]
  if env ~= nil then
    if type(env) ~= "string" or not env:match("^[%w_]+$") then
      error(("%s_env must be the name of a credential (letters, digits, _)"):format(name), 0)
    end
    local value = credentials.get(env)
    if value == nil then error(("%s_env: credential %s is not set (nor %s_FILE, nor in $CREDENTIALS_DIRECTORY)")
      :format(name, env, env), 0) end
    return value, env
  end
  if default_env then
    local value = credentials.get(default_env)
    if value then return value, default_env end
  end
  return nil
end

--- Text with every value of `values` (a list of secrets) replaced by its
--- masked form, then scrubbed of what looks like a credential (resi.secret).
--- Values shorter than 4 characters are left alone (they would mask
--- ordinary words); non-strings come back as tostring does.
---@param text any
---@param values string[]
---@return string
function M.hide(text, values)
  local s = tostring(text)
  for _, v in ipairs(values or {}) do
    if type(v) == "string" and #v >= 4 then
      local start = 1
      while true do
        local i, j = s:find(v, start, true)
        if not i then break end
        local masked = "…"
        s = s:sub(1, i - 1) .. masked .. s:sub(j + 1)
        start = i + #masked
      end
    end
  end
  return secret.scrub(s)
end

--- A URL shown without its secret parts: scheme, host and port, then "/…"
--- when it has a path ("https://hooks.slack.com/…").
---@param url string
---@return string
function M.show_url(url)
  local head, rest = tostring(url):match("^(%a[%w+.-]*://[^/?#]*)(.*)$")
  if not head then return "…" end
  head = head:gsub("^(%a[%w+.-]*://)[^@]*@", "%1…@")
  return head .. ((rest ~= "" and rest ~= "/") and "/…" or "")
end

return M
