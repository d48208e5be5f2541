--- resi.sim.util: small pieces the sandbox's providers share: a seeded
--- random generator (so `--seed` gives the same accounts and ids every run),
--- Basic-auth parsing, dates, and reading a JSON request body.
local json = require "resi.json"

local M = {}

local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

---@class resi.sim.rng
local Rng = {}
Rng.__index = Rng

--- A splitmix64 generator: deterministic for a seed, independent of the
--- global math.random that scripts may reseed.
---@param seed integer
---@return resi.sim.rng
function M.rng(seed)
  return setmetatable({ state = math.tointeger(seed) or 0 }, Rng)
end

--- The next 64-bit value.
---@return integer
function Rng:next()
  self.state = self.state + 0x9E3779B97F4A7C15
  local z = self.state
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return z ~ (z >> 31)
end

--- An integer in [lo, hi].
---@param lo integer
---@param hi integer
---@return integer
function Rng:int(lo, hi)
  return lo + (self:next() >> 1) % (hi - lo + 1)
end

--- A float in [0, 1).
---@return number
function Rng:float()
  return (self:next() >> 11) * (1.0 / 9007199254740992.0)
end

--- A random string of n characters from charset (alphanumeric by default).
---@param n integer
---@param charset? string
---@return string
function Rng:string(n, charset)
  charset = charset or ALNUM
  local out = {}
  for i = 1, n do
    local k = (self:next() >> 1) % #charset + 1
    out[i] = charset:sub(k, k)
  end
  return table.concat(out)
end

--- A UUID-shaped string (version 4 layout).
---@return string
function Rng:uuid()
  local hex = self:string(32, "0123456789abcdef")
  return ("%s-%s-4%s-a%s-%s"):format(hex:sub(1, 8), hex:sub(9, 12), hex:sub(14, 16), hex:sub(18, 20), hex:sub(21, 32))
end

M.ALNUM = ALNUM

local base64 = require "resi.base64"
M.base64_decode = base64.decode
M.base64url = base64.encode_url

-- Decoded Basic headers: header text -> { user, pass }. A client sends the
-- same header on every request, so it is decoded once, not per request;
-- the cache holds at most AUTH_CACHE_MAX headers (then starts over) and
-- lives only in this process's memory.
local AUTH_CACHE_MAX = 64
local auth_cache, auth_cached = {}, 0

-- Decodes a Basic Authorization header; the user and password, or nil.
local function decode_basic(h)
  local b64 = h:match("^[Bb]asic%s+(%S+)%s*$")
  local plain = b64 and M.base64_decode(b64)
  if not plain then return nil end
  return plain:match("^([^:]*):(.*)$")
end

--- The user and password of a request's Basic Authorization header, or nil.
---@param req table
---@return string|nil
---@return string|nil
function M.basic_auth(req)
  local h = req.headers.authorization
  if not h then return nil end
  local hit = auth_cache[h]
  if hit then return hit[1], hit[2] end
  local user, pass = decode_basic(h)
  if not user then return nil end
  if auth_cached >= AUTH_CACHE_MAX then auth_cache, auth_cached = {}, 0 end
  auth_cache[h], auth_cached = { user, pass }, auth_cached + 1
  return user, pass
end

--- The token of a request's Bearer Authorization header, or nil.
---@param req table
---@return string|nil
function M.bearer(req)
  local h = req.headers.authorization
  return h and h:match("^Bearer (%S+)$")
end

--- Bytes in a gigabyte, as the providers count them (10^9).
M.GB = 1000000000

--- Decodes a JSON object body: the table, or nil and a reason.
---@param req table
---@return table|nil
---@return string|nil
function M.json_body(req)
  if req.body == nil or req.body == "" then return nil, "the request body is empty; send a JSON object" end
  local v, err = json.safe_decode(req.body)
  if err then return nil, "the request body is not valid JSON: " .. err end
  if type(v) ~= "table" or json.is_array(v) or v[1] ~= nil then return nil, "the request body must be a JSON object" end
  return v
end

--- "YYYY-MM-DD" of an epoch time (UTC).
---@param t number
---@return string
function M.date(t) return os.date("!%Y-%m-%d", math.floor(t)) end

--- "YYYY-MM-DD HH" of an epoch time (UTC): the hour bucket of usage history.
---@param t number
---@return string
function M.hour(t) return os.date("!%Y-%m-%d %H", math.floor(t)) end

--- Parses "YYYY-MM-DD" or "YYYY-MM-DD HH" (UTC) to epoch seconds, or nil.
---@param s string
---@return integer|nil
function M.parse_date(s)
  if type(s) ~= "string" then return nil end
  local y, m, d, h = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then y, m, d, h = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[ T](%d%d)$") end
  if not y then return nil end
  y, m, d, h = tonumber(y), tonumber(m), tonumber(d), tonumber(h) or 0
  if m < 1 or m > 12 or d < 1 or d > 31 or h > 23 then return nil end
  -- days since the epoch (civil calendar, proleptic Gregorian)
  local yy = m <= 2 and y - 1 or y
  local era = yy // 400
  local yoe = yy - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  local t = days * 86400 + h * 3600
  if M.date(t) ~= ("%04d-%02d-%02d"):format(y, m, d) then return nil end -- 31 February
  return t
end

--- True for an integer-valued number (JSON 5 and 5.0 alike).
---@param v any
---@return boolean
function M.is_int(v) return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v) and v == v and v ~= math.huge and v ~= -math.huge) end

--- True when the request came over loopback (the admin API's only clients).
---@param req table
---@return boolean
function M.from_loopback(req)
  local r = req.remote or ""
  return r == "127.0.0.1" or r:match("^127%.") ~= nil or r == "::1" or r == "::ffff:127.0.0.1"
end

--- Copies a table one level deep.
---@param t table
---@return table
function M.copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return setmetatable(c, getmetatable(t))
end

return M
