--- resi.ratelimit.headers: reads what a server says about its limits.
--- Pure functions (no clock of their own: the caller passes wall time), so
--- every header form can be tested on its own.
---
--- Forms understood:
---   Retry-After: 120 | Retry-After: Fri, 31 Dec 1999 23:59:59 GMT (also the
---     RFC 850 and asctime date forms); negative or garbage values are ignored.
---   RateLimit-Limit / -Remaining / -Reset (and X-RateLimit-*): Reset as delta
---     seconds, epoch seconds or epoch milliseconds (detected, or as told).
---   IETF structured fields: RateLimit-Policy: "default";q=100;w=60 and
---     RateLimit: "default";r=50;t=30; the older drafts' `10;w=1` policies and
---     `limit=10, remaining=5, reset=3` dictionary are accepted too.
--- Dates are read as GMT whatever the local zone; when the response has a
--- Date header, absolute times are measured against it (server clock skew).
local M = {}

local MONTHS = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6,
  jul = 7, aug = 8, sep = 9, oct = 10, nov = 11, dec = 12 }

-- Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- Epoch seconds of a broken-down GMT time, or nil when a field is out of range.
local function epoch(y, mon, d, h, mi, s)
  y, d, h, mi, s = tonumber(y), tonumber(d), tonumber(h), tonumber(mi), tonumber(s)
  local m = MONTHS[mon:lower()]
  if not m or d < 1 or d > 31 or h > 23 or mi > 59 or s > 60 then return nil end
  return days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + s
end

--- Parses an HTTP-date (IMF-fixdate, RFC 850 or asctime) to epoch seconds.
---@param s string
---@return integer|nil
function M.http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, h, mi, sec = s:match("^%s*%a+,%s*(%d%d?)%s+(%a%a%a)%s+(%d%d%d%d)%s+(%d%d):(%d%d):(%d%d)%s+GMT%s*$")
  if d then return epoch(y, mon, d, h, mi, sec) end
  d, mon, y, h, mi, sec = s:match("^%s*%a+,%s*(%d%d)%-(%a%a%a)%-(%d%d)%s+(%d%d):(%d%d):(%d%d)%s+GMT%s*$")
  if d then
    y = tonumber(y)
    y = y < 70 and 2000 + y or 1900 + y -- RFC 850 two-digit years
    return epoch(y, mon, d, h, mi, sec)
  end
  mon, d, h, mi, sec, y = s:match("^%s*%a+%s+(%a%a%a)%s+(%d%d?)%s+(%d%d):(%d%d):(%d%d)%s+(%d%d%d%d)%s*$")
  if mon then return epoch(y, mon, d, h, mi, sec) end
  return nil
end

-- A non-negative decimal number written as digits (with an optional fraction).
local function plain_number(s)
  if type(s) ~= "string" then return nil end
  local n = s:match("^%s*(%d+%.?%d*)%s*$")
  n = n and tonumber(n)
  if n and n < math.huge then return n end -- a 400-digit value is garbage, not forever
  return nil
end

--- Reads Retry-After: seconds to wait (>= 0), or nil and why it was ignored.
--- `now` is the wall clock (epoch s); `server_now` the response's Date if any.
---@param value string|nil
---@param now number
---@param server_now number|nil
---@return number|nil seconds
---@return string|nil ignored_reason
function M.retry_after(value, now, server_now)
  if value == nil then return nil end
  local n = plain_number(value)
  if n then return n end
  if type(value) == "string" and value:match("^%s*%-") then return nil, "negative" end
  local at = M.http_date(value)
  if not at then return nil, "garbage" end
  local d = at - (server_now or now)
  return d > 0 and d or 0
end

--- Converts a reset value to seconds from now. unit: "auto" (a value above
--- 10^12 is epoch milliseconds, above 10^9 epoch seconds, else a delta),
--- "delta", "epoch" or "epoch_ms". An HTTP-date is accepted too.
---@param value string|number|nil
---@param unit string|nil
---@param now number
---@param server_now number|nil
---@return number|nil seconds
function M.reset_seconds(value, unit, now, server_now)
  if value == nil then return nil end
  local n = type(value) == "number" and value or plain_number(value)
  local base = server_now or now
  if not n then
    local at = M.http_date(value)
    if not at then return nil end
    return math.max(0, at - base)
  end
  unit = unit or "auto"
  if unit == "auto" then
    unit = (n >= 1e12 and "epoch_ms") or (n >= 1e9 and "epoch") or "delta"
  end
  if unit == "epoch_ms" then n = n / 1000 - base
  elseif unit == "epoch" then n = n - base end
  return n > 0 and n or 0
end

-- Structured-field members, leniently: `a;k=v, "b";k=v` (lists) and
-- `k=v;p=1, k2=v2` (dictionaries). Each member: {value=, key=?, params={}}.
local TOKEN = "^[%w%*%-%._:/%%!#%$&'%+%^`|~]+"
---@param s string|nil
---@return table[]
local function sf_members(s)
  local out = {}
  if type(s) ~= "string" then return out end
  local i, n = 1, #s
  local function ws() i = s:find("[^ \t]", i) or n + 1 end
  local function item()
    ws()
    if s:sub(i, i) == '"' then
      local buf, j = {}, i + 1
      while j <= n do
        local c = s:sub(j, j)
        if c == "\\" then buf[#buf + 1] = s:sub(j + 1, j + 1); j = j + 2
        elseif c == '"' then break
        else buf[#buf + 1] = c; j = j + 1 end
      end
      i = j + 1
      return table.concat(buf)
    end
    if s:sub(i, i) == ":" then -- byte sequence :base64:
      local j = s:find(":", i + 1, true) or n
      local v = s:sub(i + 1, j - 1)
      i = j + 1
      return v
    end
    local tok = s:match(TOKEN, i)
    if not tok then return nil end
    i = i + #tok
    return tonumber(tok) or tok
  end
  while i <= n do
    local m = { params = {} }
    m.value = item()
    ws()
    if s:sub(i, i) == "=" then -- dictionary member: key=value
      i = i + 1
      m.key, m.value = m.value, item()
      ws()
    end
    while s:sub(i, i) == ";" do
      i = i + 1
      local k = item()
      ws()
      local v = true
      if s:sub(i, i) == "=" then
        i = i + 1
        v = item()
        ws()
      end
      if type(k) == "string" then m.params[k:lower()] = v end
    end
    if m.value ~= nil then out[#out + 1] = m end
    local comma = s:find(",", i, true)
    if not comma then break end
    i = comma + 1
  end
  return out
end
--- Structured-field members, leniently: `a;k=v, "b";k=v` (lists) and
--- `k=v;p=1, k2=v2` (dictionaries). Each member: {value=, key=?, params={}}.
---@param s string|nil
---@return table[]
M.sf_members = sf_members

-- A non-negative number from a header value or an SF item, else nil.
local function num(v)
  if type(v) == "number" then return v >= 0 and v or nil end
  local n = plain_number(v)
  if n then return n end
  -- draft <= 06 RateLimit-Limit carried a policy after the number: "100, 100;w=60"
  if type(v) == "string" then return plain_number(v:match("^%s*(%d+%.?%d*)%s*[,;]")) end
  return nil
end

--- Policies from RateLimit-Policy: {{name=, quota=, window=, unit=, partition=}}.
---@param value string|nil
---@return table
function M.policies(value)
  local out = {}
  for _, m in ipairs(sf_members(value)) do
    local p = m.params
    local quota = num(p.q) or num(p.l)
    local name = m.value
    if type(name) == "number" and not quota then quota, name = name, nil end -- draft <= 06: 10;w=1
    local window = num(p.w)
    if quota and window and window > 0 then
      out[#out + 1] = { name = name and tostring(name) or nil, quota = quota, window = window,
        unit = p.qu, partition = p.pk }
    end
  end
  return out
end

-- The binding entry of an IETF RateLimit field: the one with the least
-- remaining (ties: the longest wait). {name=, remaining=, reset=} or nil.
local function ietf_ratelimit(value)
  local members = sf_members(value)
  local dict = {}
  for _, m in ipairs(members) do if m.key then dict[tostring(m.key):lower()] = m.value end end
  if dict.remaining or dict.limit or dict.reset then -- draft-07 dictionary form
    return { limit = num(dict.limit), remaining = num(dict.remaining), reset = num(dict.reset) }
  end
  local best
  for _, m in ipairs(members) do
    local r, t = num(m.params.r), num(m.params.t)
    if r then
      if not best or r < best.remaining or (r == best.remaining and (t or 0) > (best.reset or 0)) then
        best = { name = m.value ~= nil and tostring(m.value) or nil, remaining = r, reset = t }
      end
    end
  end
  return best
end

-- A header by lower-case name (resi.http gives lower-case keys; be lenient).
local function get(h, name)
  local v = h[name]
  if v == nil then
    for k, x in pairs(h) do if type(k) == "string" and k:lower() == name then return x end end
  end
  if type(v) == "table" then v = v[#v] end
  return v
end

--- Everything a response's headers say about limits. Returns a table:
--- retry_after (s, or nil), limit, remaining, reset (seconds from now),
--- window (s, when a policy names one), policy (name), policies (all
--- RateLimit-Policy entries), date (the server's Date, epoch s), and
--- ignored = {field = reason} for values that were present but unusable.
---@param h table<string,string>
---@param now number wall clock, epoch seconds
---@param opts? {reset_unit?: string}
---@return table
function M.parse(h, now, opts)
  h = h or {}
  local info = { ignored = {} }
  info.date = M.http_date(get(h, "date"))
  local ra = get(h, "retry-after")
  if ra ~= nil then
    local why
    info.retry_after, why = M.retry_after(ra, now, info.date)
    if why then info.ignored["retry-after"] = why .. ": " .. tostring(ra) end
    info.retry_after_raw = ra
  end
  info.policies = M.policies(get(h, "ratelimit-policy"))
  local rl = get(h, "ratelimit")
  local unit = opts and opts.reset_unit
  local entry = rl and ietf_ratelimit(rl)
  if entry then
    info.remaining, info.policy = entry.remaining, entry.name
    if entry.reset then info.reset = M.reset_seconds(entry.reset, "delta", now) end -- IETF: always delta
    info.limit = entry.limit
    for _, p in ipairs(info.policies) do
      if p.name == entry.name or (entry.name == nil and #info.policies == 1) then
        info.limit, info.window = p.quota, p.window
      end
    end
  elseif rl then
    info.ignored.ratelimit = "unreadable: " .. tostring(rl)
  end
  for _, prefix in ipairs { "ratelimit-", "x-ratelimit-" } do
    if info.remaining == nil then
      local lim, rem, rst = get(h, prefix .. "limit"), get(h, prefix .. "remaining"), get(h, prefix .. "reset")
      if lim ~= nil or rem ~= nil or rst ~= nil then
        info.limit = num(lim)
        info.remaining = num(rem)
        info.reset = M.reset_seconds(rst, unit, now, info.date)
        if lim ~= nil and not info.limit then info.ignored[prefix .. "limit"] = "garbage: " .. tostring(lim) end
        if rem ~= nil and not info.remaining then info.ignored[prefix .. "remaining"] = "garbage: " .. tostring(rem) end
        if rst ~= nil and not info.reset then info.ignored[prefix .. "reset"] = "garbage: " .. tostring(rst) end
      end
    end
  end
  if info.window == nil and info.limit and #info.policies > 0 then
    for _, p in ipairs(info.policies) do
      if p.quota == info.limit then info.window = p.window break end
    end
  end
  if next(info.ignored) == nil then info.ignored = nil end
  return info
end

return M
