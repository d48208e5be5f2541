--- resi.secret: keeps credentials out of output. mask() shows enough of a
--- secret to tell two apart (a known prefix and the last four characters of
--- long ones: rf_live_…x7kQ), never the secret itself.
local M = {}

-- Field names whose values are secrets wherever they appear.
local SECRET_FIELDS = {
  password = true, pass = true, passwd = true, secret = true, api_key = true, apikey = true,
  key = true, token = true, access_token = true, refresh_token = true, jwt = true,
  authorization = true, ["proxy-authorization"] = true, cookie = true, ["set-cookie"] = true,
}

--- Is a field with this name a secret?
---@param name any
---@return boolean
function M.is_secret_field(name)
  if type(name) ~= "string" then return false end
  local n = name:lower()
  return SECRET_FIELDS[n] or n:match("password") ~= nil or n:match("secret") ~= nil
    or n:match("_key$") ~= nil or n:match("token$") ~= nil
end

--- Masks a secret: "rf_live_<32 chars>x7kQ" -> "rf_live_…x7kQ"; anything
--- under 16 characters after its prefix -> "…" (the tail would say too much).
---@param s any
---@return string
function M.mask(s)
  s = tostring(s)
  local prefix = s:match("^(%a+_%a+_)") or s:match("^(%a+_)") or ""
  local rest = s:sub(#prefix + 1)
  if #rest >= 16 then return prefix .. "…" .. rest:sub(-4) end
  return prefix .. "…"
end

--- A copy of t (recursively) with secret fields masked, for logs and errors.
---@param t any
---@return any
function M.redact(t, seen)
  if type(t) ~= "table" then return t end
  seen = seen or {}
  if seen[t] then return seen[t] end
  local out = {}
  seen[t] = out
  for k, v in pairs(t) do
    if M.is_secret_field(k) and type(v) ~= "table" then
      -- passwords show nothing; keys and tokens show enough to tell them apart
      out[k] = tostring(k):lower():find("pass", 1, true) and "…" or M.mask(v)
    else
      out[k] = M.redact(v, seen)
    end
  end
  return out
end

return M
