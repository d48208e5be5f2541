--- resi.secret: keeps credentials out of output. mask() shows enough of a
--- secret to tell two apart (a known prefix and the last four characters of
--- long ones: rf_live_…x7kQ), never the secret itself.
---
--- Two ways a secret is found. By name: a field (or URL query parameter)
--- named like a secret is masked wherever it appears (is_secret_field).
--- By shape, in any string (scrub): the password of a URL's userinfo
--- (scheme://user:PASS@host; a lone userinfo, scheme://TOKEN@host, is
--- masked whole), the same without a scheme (user:PASS@host:port, as proxy
--- lists write it), secret-named query and fragment parameters
--- (?api_key=…), and the credentials of an Authorization or
--- Proxy-Authorization header written as text ("Authorization: Basic …").
--- Usernames stay: they name which account or token a line is about, and
--- resi prints them elsewhere too (client descriptions, check results).
local M = {}

-- Field names whose values are secrets wherever they appear.
local SECRET_FIELDS = {
  password = true, pass = true, passwd = true, pwd = true, secret = true, api_key = true, apikey = true,
  key = true, token = true, access_token = true, refresh_token = true, jwt = true, auth = true,
  sig = true, signature = true, credential = true, credentials = true,
  authorization = true, ["proxy-authorization"] = true, proxy_authorization = true,
  cookie = true, ["set-cookie"] = true,
}

-- Fields that carry credentials with no part worth showing: all of the value
-- is masked (an Authorization value keeps only its scheme word: "Basic …";
-- the tail of base64 "user:pass" would be the end of the password).
local OPAQUE_FIELDS = {
  authorization = true, ["proxy-authorization"] = true, proxy_authorization = true,
  cookie = true, ["set-cookie"] = true,
}

-- Characters that end a URL (or a user:pass@host token) inside text.
local TOKEN_END = "[%s\"'<>`]"

--- Is a field with this name a secret?
---@param name any
---@return boolean
function M.is_secret_field(name)
  if type(name) ~= "string" then return false end
  local n = name:lower()
  return SECRET_FIELDS[n] or n:find("password", 1, true) ~= nil or n:find("secret", 1, true) ~= nil
    or n:find("signature", 1, true) ~= nil or n:match("[_%-]key$") ~= nil or n:match("token$") ~= nil
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

-- Authorization schemes (lower case) whose name is kept in front of the
-- mask; an unknown first word may be the credential itself.
local AUTH_SCHEMES = {
  basic = true, bearer = true, digest = true, negotiate = true, ntlm = true, token = true,
  oauth = true, apikey = true, jwt = true, hoba = true, mutual = true, ["aws4-hmac-sha256"] = true,
}

-- The scheme word at the start of an Authorization value, if it is one.
local function auth_scheme(v)
  local word = v:match("^(%a[%w%-]*)%s+%S")
  return word and AUTH_SCHEMES[word:lower()] and word or nil
end

-- An Authorization value masked whole, keeping a known scheme ("Basic …").
local function mask_authorization(v)
  local scheme = auth_scheme((tostring(v):gsub("^%s+", "")))
  return scheme and (scheme .. " …") or "…"
end

--- The masked form of the value of a secret field (or query parameter)
--- called name: passwords and credential headers show nothing, keys and
--- tokens what mask() shows.
---@param name string
---@param v any
---@return string
function M.mask_field(name, v)
  local n = tostring(name):lower()
  if n:find("authorization", 1, true) then return mask_authorization(v) end
  if OPAQUE_FIELDS[n] or n:find("pass", 1, true) or n:find("pwd", 1, true) then return "…" end
  return M.mask(v)
end

-- Decodes %XX escapes (for query parameter names).
local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Masks the values of secret-named parameters in a query or fragment.
local function scrub_params(q)
  return (q:gsub("([^&;=?#]+)=([^&;?#]*)", function(name, value)
    if value ~= "" and M.is_secret_field(unescape(name)) then return name .. "=" .. M.mask_field(unescape(name), value) end
  end))
end

-- A URL's userinfo masked: "user:pass" -> "user:…", a lone "token" -> "…".
local function mask_userinfo(info)
  local user = info:match("^([^:]*):")
  return user and (user .. ":…") or "…"
end

-- The end of the userinfo in s, whose authority starts at a: the last "@"
-- before the path, or nil. Whitespace may be in it (a password with a space)
-- only when a ":" comes before the first whitespace (user:pass word@host).
local function userinfo_end(s, a)
  local stop = (s:find("[/?#\"'<>`\r\n]", a) or #s + 1) - 1
  local at = s:sub(a, stop):match(".*()@")
  if not at then return nil end
  local info = s:sub(a, a + at - 2)
  local first_space = info:find("%s")
  if first_space and not info:sub(1, first_space - 1):find(":", 1, true) then return nil end
  return a + at - 1
end

-- Masks the URL whose "://" ends at a - 1 in s: userinfo and secret
-- parameters. Returns the masked rest of the URL and the index after it.
local function scrub_url_at(s, a)
  local head = ""
  local at = userinfo_end(s, a)
  if at then
    head = mask_userinfo(s:sub(a, at - 1)) .. "@"
    a = at + 1
  end
  local stop = (s:find(TOKEN_END, a) or #s + 1) - 1
  local rest = s:sub(a, stop)
  local before, query = rest:match("^([^?#]*)(.*)$")
  return head .. before .. scrub_params(query), stop + 1
end

-- Masks every URL in s (anything with "://").
local function scrub_urls(s)
  local out, pos = {}, 1
  while true do
    local j = s:find("://", pos, true)
    if not j then break end
    local masked, after = scrub_url_at(s, j + 3)
    out[#out + 1] = s:sub(pos, j + 2) .. masked
    pos = after
  end
  out[#out + 1] = s:sub(pos)
  return table.concat(out)
end

-- Masks the password of scheme-less user:pass@host tokens (URLs are done).
local function scrub_userpass(s)
  return (s:gsub("[^%s\"'<>`]+", function(tok)
    if not tok:find("@", 1, true) or tok:find("://", 1, true) then return nil end
    local user, pass, host = tok:match("^([^:@/]+):(.*)@([^@]+)$")
    if user and pass ~= "" and pass ~= "…" and user:lower() ~= "mailto" then return user .. ":…@" .. host end
  end))
end

-- Masks the credentials after "Authorization:" (or "authorization=", or a
-- JSON "Authorization":"...") in text, keeping the scheme word.
local function scrub_auth_headers(s)
  local lower, out, pos = s:lower(), {}, 1
  while true do
    local _, e = lower:find("authorization[\"']?%s*[:=]%s*[\"']?", pos)
    if not e then break end
    local scheme, gap, cred = s:match("^(%a[%w%-]*)(%s+)([^%s\"',;]+)", e + 1)
    local masked, len
    if scheme and auth_scheme(scheme .. gap .. cred) then
      masked, len = scheme .. gap .. "…", #scheme + #gap + #cred
    else
      cred = s:match("^[^%s\"',;]+", e + 1) or ""
      masked, len = cred ~= "" and "…" or "", #cred
    end
    out[#out + 1] = s:sub(pos, e) .. masked
    pos = e + 1 + len
  end
  out[#out + 1] = s:sub(pos)
  return table.concat(out)
end

--- Text with the secrets it carries by shape masked: URL userinfo
--- passwords, user:pass@host, secret-named query parameters, Authorization
--- headers (see the top of this file). Non-strings come back unchanged.
---@param s any
---@return any
function M.scrub(s)
  if type(s) ~= "string" then return s end
  if s:find("://", 1, true) then s = scrub_urls(s) end
  if s:find("@", 1, true) then s = scrub_userpass(s) end
  if s:find("[Aa][Uu][Tt][Hh][Oo][Rr][Ii][Zz][Aa][Tt][Ii][Oo][Nn]") then s = scrub_auth_headers(s) end
  return s
end

--- A copy of t (recursively) with secret fields masked (by name) and every
--- other string scrubbed (by shape), for logs and errors. A json.array stays
--- one; other metatables are not copied.
---@param t any
---@param seen? table
---@return any
function M.redact(t, seen)
  if type(t) ~= "table" then return M.scrub(t) end
  seen = seen or {}
  if seen[t] then return seen[t] end
  local out = {}
  seen[t] = out
  for k, v in pairs(t) do
    if M.is_secret_field(k) and type(v) ~= "table" then
      out[k] = M.mask_field(k, v)
    else
      out[M.scrub(k)] = M.redact(v, seen)
    end
  end
  if getmetatable(t) ~= nil and require("resi.json").is_array(t) then require("resi.json").array(out) end
  return out
end

return M
